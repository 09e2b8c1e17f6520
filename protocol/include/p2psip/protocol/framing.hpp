#pragma once
// The per-hop framing layer (RFC 6940 section 6.6.2): data and ack frames, an incremental frame
// decoder for stream links, the received-sequence bitmask of acks, and the sender-side bookkeeping
// that turns ack timing into an RFC 6298 retransmission timeout (sections 6.6.3.1 and 6.6.5).
// Sans-I/O: bytes and `now` in, frames and deadlines out.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/fifo.hpp"
#include "p2psip/protocol/forwarding.hpp"
#include "p2psip/protocol/limits.hpp"
#include "p2psip/protocol/result.hpp"
#include "p2psip/protocol/writer.hpp"

namespace p2psip::protocol {

/// FramedMessageType (RFC 6940 section 6.6.2).
enum class frame_type : std::uint8_t { data = 128, ack = 129 };

/// Bytes a data frame adds in front of its message: type, sequence, 24-bit length.
inline constexpr std::size_t data_frame_overhead = 8;
/// Size of a whole ack frame: type, ack_sequence, received.
inline constexpr std::size_t ack_frame_size = 9;
/// The largest message the 24-bit length of a data frame can carry.
inline constexpr std::size_t max_frame_message = 0xFFFFFF;

/// A data frame: one RELOAD message (or fragment) with the link's sequence number.
struct data_frame {
  std::uint32_t sequence = 0;
  bytes message;
  friend bool operator==(const data_frame&, const data_frame&) = default;
};

/// An ack frame: the acknowledged sequence and the bitmask of recently received ones.
/// Bit k (value 1 << k, k = 0..31) of `received` stands for sequence ack_sequence - (k + 1); see
/// receive_window for the reading of RFC 6940 section 6.6.2 behind this.
struct ack_frame {
  std::uint32_t ack_sequence = 0;
  std::uint32_t received = 0;
  friend bool operator==(const ack_frame&, const ack_frame&) = default;
};

using frame = std::variant<data_frame, ack_frame>;

/// Appends a data frame carrying `message`; fails the writer (value_too_long) above 2^24-1 bytes.
void encode_data_frame(writer& w, std::uint32_t sequence, byte_view message);
/// Appends an ack frame (always 9 bytes).
void encode_ack_frame(writer& w, const ack_frame& a);
/// Appends either kind of frame.
void encode_frame(writer& w, const frame& f);
/// One frame as bytes; an error when a data frame's message exceeds 2^24-1 bytes.
result<bytes> encode_frame(const frame& f);
/// The 8 bytes that precede a message in a data frame, for writers that gather the header and the
/// message without copying the message; an error when `message_size` exceeds 2^24-1.
result<std::array<std::uint8_t, data_frame_overhead>> data_frame_header(std::uint32_t sequence,
                                                                        std::size_t message_size);

/// Decodes exactly one frame filling `in` (a datagram link carries one frame per record). A data
/// frame's message is limited to lim.max_message_size bytes.
result<frame, decode_error> decode_frame(byte_view in, const limits& lim);

/// What frame_decoder does with a data frame whose message exceeds lim.max_message_size.
enum class oversize_policy {
  /// Fail the stream as soon as the frame's length is read (codec_errc::limit_exceeded).
  fail,
  /// Keep the message's forwarding header, hand it out as an oversized_frame, then stop: RFC 6940
  /// section 6.6 has the receiver answer Error_Message_Too_Large and close the session, and the
  /// answer needs the header (transaction id, via list) to be addressed.
  keep_header,
};

/// The start of a data frame whose message is larger than the limit (oversize_policy::keep_header).
struct oversized_frame {
  std::uint32_t sequence = 0;
  /// The message length the frame declares: more than lim.max_message_size.
  std::uint32_t message_length = 0;
  /// The message's first bytes: exactly its forwarding header (fixed part and the three lists),
  /// checked by decode_oversized_header. Never more than oversized_header_limit() bytes.
  bytes header;
  friend bool operator==(const oversized_frame&, const oversized_frame&) = default;
};

/// The most bytes of an oversized message that frame_decoder keeps for its forwarding header: the
/// fixed part plus the largest via list, destination list and options `lim` allows (each list at
/// most 2^16-1 bytes), and never more than lim.max_message_size, because a forwarding header larger
/// than max-message-size closes the session without an error (RFC 6940 section 6.6).
std::size_t oversized_header_limit(const limits& lim) noexcept;

/// Decodes the forwarding header at the start of `prefix`, the first bytes of a message of
/// `message_length` bytes that was not received whole (an oversized_frame's header). The checks are
/// those of decode_forwarding_header, except that the header's length field must equal
/// `message_length` (which may exceed lim.max_message_size) instead of the bytes given; the header
/// itself must fit lim.max_message_size. The result's header.length is `message_length` and its
/// size the header's bytes; bytes after the header are not looked at.
result<decoded_header, decode_error> decode_oversized_header(byte_view prefix,
                                                             std::uint32_t message_length,
                                                             const limits& lim);

/// Splits a byte stream (TLS over TCP) into frames. Feed it whatever the link delivered with put();
/// drain the complete frames with next(). Every byte is copied once, however the stream is split.
/// Memory: one partial message of at most the limit, plus the frames completed and not yet taken,
/// which are no more than the bytes given to put() since the last drain; drain after every put()
/// and read into a bounded buffer. After an error the decoder stays failed: the link is to be
/// closed.
///
/// A data frame longer than lim.max_message_size (RFC 6940 section 6.6: the session is closed):
///  - oversize_policy::fail: fails as soon as its length is read, before any of its message is
///    buffered.
///  - oversize_policy::keep_header: reads on only until the message's forwarding header is
///    complete (at most oversized_header_limit() bytes), then makes it available once through
///    take_oversized() and stops: put() consumes and drops all further input, next() yields only
///    the frames before the oversized one. The decoder fails instead (with the header's own error,
///    oversized_length() still set) when the header does not decode under `lim` or would be longer
///    than that bound.
class frame_decoder {
 public:
  /// Takes the message size limit from lim.max_message_size (capped at 2^24-1).
  explicit frame_decoder(const limits& lim,
                         oversize_policy policy = oversize_policy::fail) noexcept;

  /// Consumes all of `in`. Returns the number of complete frames waiting in next() (zero means
  /// "need more bytes", never an error), or the error that failed the stream. Frames completed
  /// before the failing byte stay available through next(). Once failed, put() returns the same
  /// error without reading `in`. Offsets in errors count bytes from the start of the stream.
  result<std::size_t, decode_error> put(byte_view in);
  /// The oldest complete frame not yet taken, or nothing.
  std::optional<frame> next();

  /// keep_header: the oversized frame, once its forwarding header is complete; nothing before
  /// that and after it was taken. Every frame that preceded it in the stream is already in next().
  std::optional<oversized_frame> take_oversized();
  /// keep_header: the length declared by an oversized data frame, from the moment its length is
  /// read; it stays set after the decoder stopped or failed inside that frame. A stream that ends
  /// while this is set and stopped() is not ends inside an oversized message.
  std::optional<std::uint32_t> oversized_length() const noexcept { return oversized_length_; }
  /// keep_header: true once an oversized frame's header was complete; no frames follow.
  bool stopped() const noexcept { return stopped_; }

  /// Complete frames waiting in next().
  std::size_t ready() const noexcept { return ready_.size(); }
  /// True between frames: no partial frame is buffered (false once an oversized frame began).
  bool at_boundary() const noexcept { return header_len_ == 0 && !in_body_ && !oversized_length_; }
  bool failed() const noexcept { return error_.code != codec_errc::ok; }
  const decode_error& error() const noexcept { return error_; }
  /// Stream bytes consumed so far.
  std::uint64_t consumed() const noexcept { return consumed_; }

 private:
  void fail(codec_errc code, const char* field, std::uint64_t at);
  /// Checks the oversized header bytes gathered so far; completes it when all have come.
  void advance_oversized();

  limits lim_;
  oversize_policy policy_;
  std::size_t max_message_;
  std::array<std::uint8_t, ack_frame_size> header_{};
  std::size_t header_len_ = 0;
  bool in_body_ = false;
  std::uint32_t sequence_ = 0;
  std::size_t body_len_ = 0;
  bytes body_;         ///< a message being received, or the header of an oversized one
  fifo<frame> ready_;  ///< no memory while empty (between reads, always)
  std::uint64_t consumed_ = 0;
  decode_error error_{};

  std::optional<std::uint32_t> oversized_length_;
  std::uint64_t oversized_start_ = 0;  ///< stream offset of the oversized message's first byte
  std::size_t oversized_want_ = 0;     ///< header bytes needed: the fixed part, then all of it
  std::optional<oversized_frame> oversized_;
  bool stopped_ = false;
};

/// True when `a` says `sequence` was received: it is ack_sequence itself or its bit is set.
bool ack_covers(const ack_frame& a, std::uint32_t sequence) noexcept;

/// Receiver side of the acks (RFC 6940 section 6.6.2): remembers the 32 most recently received
/// data-frame sequence numbers and builds the ack for each new one.
///
/// Reading of the RFC: for a frame with sequence N, every remembered M (received before this
/// frame) with N-32 < M < N contributes "the N-M bit". N-M is then 1..31 and is numbered from the
/// least significant bit, bit 1 meaning value 1 (so N-1 is 0x00000001 and N-31 is 0x40000000); the
/// top bit (N-32) is never set because the RFC's inequality is strict. "Less than" and "greater
/// than" are taken modulo 2^32 (serial-number arithmetic), so acks stay right across the wrap of
/// the uint32 sequence. The reading agrees with Wireshark's reload-framing dissector, which shows
/// bit 0x00000001 as N-1 and 0x80000000 as N-32.
class receive_window {
 public:
  /// Records data frame `sequence` and returns the ack to send for it.
  ack_frame on_data(std::uint32_t sequence) noexcept;

 private:
  std::array<std::uint32_t, 32> recent_{};
  std::size_t count_ = 0;  ///< entries of recent_ in use
  std::size_t next_ = 0;   ///< slot the next sequence overwrites (the oldest once full)
};

using steady_time = std::chrono::steady_clock::time_point;
using steady_duration = std::chrono::steady_clock::duration;

/// Parameters of the RFC 6298 estimator.
struct rto_config {
  /// RTO before the first measurement (RFC 6298 section 2.1 says 1 s; RFC 6940 section 6.6.3.1
  /// names 500 ms as the static default for Simple Reliability).
  std::chrono::milliseconds initial_rto{1000};
  /// Floor of the RTO. RFC 6940 section 6.6.3.1 replaces RFC 6298's 1-second floor with rounding
  /// up to the millisecond, so the default floor is one millisecond.
  std::chrono::milliseconds min_rto{1};
  /// Ceiling of the RTO, also for back-off (RFC 6298 section 2.5 allows a ceiling of 60 s or more).
  std::chrono::milliseconds max_rto{60000};
};

/// RFC 6298 smoothed RTT, RTT variance and RTO (alpha 1/8, beta 1/4, K 4, G 1 ms); the RTO is
/// rounded up to the millisecond and clamped to [min_rto, max_rto].
class rto_estimator {
 public:
  explicit rto_estimator(const rto_config& cfg = {}) noexcept;

  /// Feeds one RTT measurement (formula 2.2 for the first, 2.3 afterwards). Negative samples count
  /// as zero. Ends any back-off.
  void on_sample(steady_duration rtt) noexcept;
  /// Doubles the RTO after a retransmission timeout (RFC 6298 section 5.5), up to max_rto.
  void backoff() noexcept;

  std::chrono::milliseconds rto() const noexcept { return rto_; }
  std::optional<steady_duration> srtt() const noexcept;
  std::optional<steady_duration> rttvar() const noexcept;

 private:
  void update_rto(std::chrono::milliseconds raw) noexcept;

  rto_config cfg_;
  bool measured_ = false;
  steady_duration srtt_{};
  steady_duration rttvar_{};
  std::chrono::milliseconds rto_;
};

/// What one ack told the sender.
struct ack_outcome {
  /// ack_sequence names a frame this link sent and still remembers.
  bool known = false;
  /// The RTT measured from it (first ack of that sequence only); already fed to the estimator.
  std::optional<steady_duration> rtt;
  /// Remembered frames learned as received for the first time (ack_sequence and bitmask bits).
  std::size_t newly_acked = 0;
};

/// Sender side of a link's framing: hands out sequence numbers (0, 1, 2, ... per connection,
/// RFC 6940 section 6.6.2), remembers when each of the last `history` frames was sent, and turns
/// acks into RTT samples for the estimator (every ack counts, since retransmissions get new
/// sequence numbers; RFC 6940 section 6.6.3.1). On TLS/TCP the RTO is only a link-failure timeout
/// (section 6.6.5): next_deadline() is when the oldest outstanding frame has waited one RTO.
class send_window {
 public:
  explicit send_window(const rto_config& cfg = {}, std::size_t history = 64);

  /// Sequence number for a data frame sent at `now`; records the send time.
  std::uint32_t on_send(steady_time now);
  /// Applies a received ack.
  ack_outcome on_ack(const ack_frame& a, steady_time now) noexcept;
  /// True when a remembered frame `sequence` is known to have been received; false when unknown or
  /// forgotten.
  bool acked(std::uint32_t sequence) const noexcept;

  /// Sequence number the next on_send() returns.
  std::uint32_t next_sequence() const noexcept { return next_; }
  /// Send time of the oldest outstanding frame: of the frames sent after the newest acknowledged
  /// one (all of them if none was acknowledged), the first. Nothing when every frame since the
  /// newest acknowledged one is acknowledged, or nothing was sent.
  std::optional<steady_time> oldest_outstanding() const noexcept;
  /// Time of the last ack that named a remembered frame.
  std::optional<steady_time> last_ack() const noexcept { return last_ack_; }
  /// oldest_outstanding() + RTO: when the link counts as failing unless an ack arrives first.
  std::optional<steady_time> next_deadline() const noexcept;
  /// True when next_deadline() has passed.
  bool overdue(steady_time now) const noexcept;

  const rto_estimator& estimator() const noexcept { return rto_; }
  rto_estimator& estimator() noexcept { return rto_; }

 private:
  /// The slot of a remembered frame; nothing when `sequence` is unknown or forgotten.
  std::optional<std::size_t> slot_of(std::uint32_t sequence) const noexcept;
  /// Doubles the slots (4 at first), up to history_.
  void grow();

  rto_estimator rto_;
  /// The slots grow with the frames sent, up to history_ (a power of two): a link that sent a few
  /// frames keeps a few. Slot = sequence % slots. Send times and acked flags apart (8 bytes and
  /// one bit a frame; a struct of both with the sequence took 24 bytes).
  std::size_t history_;
  std::vector<steady_time> sent_at_;
  std::vector<bool> acked_;
  std::uint32_t next_ = 0;
  std::uint64_t sent_count_ = 0;
  std::optional<steady_time> last_ack_;
};

}  // namespace p2psip::protocol
