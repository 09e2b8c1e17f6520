#include "p2psip/protocol/framing.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "p2psip/protocol/reader.hpp"

namespace p2psip::protocol {

namespace {

constexpr std::uint8_t data_type = static_cast<std::uint8_t>(frame_type::data);
constexpr std::uint8_t ack_type = static_cast<std::uint8_t>(frame_type::ack);

std::uint32_t load_u32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

std::uint32_t load_u24(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 16) | (std::uint32_t{p[1]} << 8) | std::uint32_t{p[2]};
}

std::size_t message_limit(const limits& lim) noexcept {
  return std::min(lim.max_message_size, max_frame_message);
}

}  // namespace

void encode_data_frame(writer& w, std::uint32_t sequence, byte_view message) {
  w.u8(data_type);
  w.u32(sequence);
  w.opaque(3, max_frame_message, message, "framed_message.message");
}

void encode_ack_frame(writer& w, const ack_frame& a) {
  w.u8(ack_type);
  w.u32(a.ack_sequence);
  w.u32(a.received);
}

void encode_frame(writer& w, const frame& f) {
  if (const auto* d = std::get_if<data_frame>(&f)) {
    encode_data_frame(w, d->sequence, d->message);
  } else {
    encode_ack_frame(w, std::get<ack_frame>(f));
  }
}

result<bytes> encode_frame(const frame& f) {
  bytes out;
  if (const auto* d = std::get_if<data_frame>(&f)) {
    out.reserve(data_frame_overhead + d->message.size());
  }
  writer w(out);
  encode_frame(w, f);
  if (!w.ok()) return unexpected(w.error());
  return out;
}

result<std::array<std::uint8_t, data_frame_overhead>> data_frame_header(std::uint32_t sequence,
                                                                        std::size_t message_size) {
  if (message_size > max_frame_message) {
    return unexpected(make_error_code(codec_errc::value_too_long));
  }
  std::array<std::uint8_t, data_frame_overhead> h{};
  h[0] = data_type;
  for (std::size_t i = 0; i < 4; ++i) {
    h[1 + i] = static_cast<std::uint8_t>(sequence >> (24 - 8 * i));
  }
  for (std::size_t i = 0; i < 3; ++i) {
    h[5 + i] = static_cast<std::uint8_t>(message_size >> (16 - 8 * i));
  }
  return h;
}

result<frame, decode_error> decode_frame(byte_view in, const limits& lim) {
  reader r(in);
  const std::uint8_t type = r.u8("framed_message.type");
  frame out;
  if (!r.ok()) return unexpected(r.error());
  if (type == data_type) {
    data_frame d;
    d.sequence = r.u32("framed_message.sequence");
    d.message = to_bytes(r.opaque(3, 0, message_limit(lim), "framed_message.message"));
    out = std::move(d);
  } else if (type == ack_type) {
    ack_frame a;
    a.ack_sequence = r.u32("framed_message.ack_sequence");
    a.received = r.u32("framed_message.received");
    out = a;
  } else {
    r.fail_at(0, codec_errc::unknown_type, "framed_message.type");
  }
  r.expect_done("framed_message");
  if (!r.ok()) {
    decode_error e = r.error();
    // The reader calls a too-long prefix bad_length; against the configured size it is our limit.
    if (type == data_type && e.offset == 5 && e.code == codec_errc::bad_length && in.size() >= 8 &&
        load_u24(in.data() + 5) > message_limit(lim)) {
      e.code = codec_errc::limit_exceeded;
    }
    return unexpected(e);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// frame_decoder

namespace {

/// Offsets in the fixed part of the forwarding header (RFC 6940 section 6.3.2).
constexpr std::size_t length_offset = 16;
constexpr std::size_t via_length_offset = 32;
constexpr std::size_t destination_length_offset = 34;
constexpr std::size_t options_length_offset = 36;

std::uint16_t load_u16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

/// Fixed part plus the three lists, from the fixed part's length fields.
std::size_t header_size_from_lengths(const std::uint8_t* fixed) noexcept {
  return fixed_header_size + load_u16(fixed + via_length_offset) +
         load_u16(fixed + destination_length_offset) + load_u16(fixed + options_length_offset);
}

/// The most bytes a destination list of at most `entries` entries can take under `lim`: the
/// longest entry is a resource or opaque id (type, a length of at most 255 holding the id); a node
/// id is 2 + NodeIdLength. The list's 16-bit length caps it too.
std::size_t list_bound(std::size_t entries, const limits& lim) noexcept {
  const std::uint64_t entry =
      std::max<std::uint64_t>(2 + 255, 2 + std::uint64_t{lim.node_id_length});
  const std::uint64_t n = std::min<std::uint64_t>(entries, 0xFFFF);
  return static_cast<std::size_t>(std::min<std::uint64_t>(0xFFFF, n * entry));
}

/// Forwarding options have no per-entry bound: any option area fits 2^16-1 unless none is allowed.
std::size_t options_bound(const limits& lim) noexcept {
  return lim.max_options == 0 ? 0 : 0xFFFF;
}

}  // namespace

std::size_t oversized_header_limit(const limits& lim) noexcept {
  const std::uint64_t header = std::uint64_t{fixed_header_size} +
                               list_bound(lim.max_via_entries, lim) +
                               list_bound(lim.max_destination_entries, lim) + options_bound(lim);
  return static_cast<std::size_t>(std::min<std::uint64_t>(header, message_limit(lim)));
}

result<decoded_header, decode_error> decode_oversized_header(byte_view prefix,
                                                             std::uint32_t message_length,
                                                             const limits& lim) {
  if (prefix.size() < fixed_header_size) {
    return unexpected(decode_error{codec_errc::truncated, "forwarding_header", prefix.size()});
  }
  const std::size_t size = header_size_from_lengths(prefix.data());
  if (prefix.size() < size) {
    return unexpected(decode_error{codec_errc::truncated, "forwarding_header", prefix.size()});
  }
  if (load_u32(prefix.data() + length_offset) != message_length) {
    return unexpected(
        decode_error{codec_errc::bad_length, "forwarding_header.length", length_offset});
  }
  // decode_forwarding_header wants the length field to match the bytes it is given: give it the
  // header alone with the length field saying so, then put the declared length back.
  bytes header(prefix.begin(), prefix.begin() + static_cast<std::ptrdiff_t>(size));
  for (std::size_t i = 0; i < 4; ++i) {
    header[length_offset + i] = static_cast<std::uint8_t>(size >> (24 - 8 * i));
  }
  auto decoded = decode_forwarding_header(header, lim);
  if (!decoded) return decoded;
  decoded->header.length = message_length;
  return decoded;
}

frame_decoder::frame_decoder(const limits& lim, oversize_policy policy) noexcept
    : lim_(lim), policy_(policy), max_message_(message_limit(lim)) {}

std::optional<oversized_frame> frame_decoder::take_oversized() {
  std::optional<oversized_frame> out = std::move(oversized_);
  oversized_.reset();
  return out;
}

void frame_decoder::advance_oversized() {
  const std::uint64_t at = oversized_start_;
  // The token first, byte by byte: a stream of garbage fails on its first wrong byte.
  for (std::size_t i = 0; i < std::min<std::size_t>(4, body_.size()); ++i) {
    if (body_[i] != static_cast<std::uint8_t>(relo_token >> (24 - 8 * i))) {
      fail(codec_errc::bad_token, "forwarding_header.relo_token", at);
      return;
    }
  }
  if (body_.size() < oversized_want_) return;
  if (oversized_want_ == fixed_header_size) {
    // The fixed part is here: its list lengths say how much more the header takes.
    const auto too_long = [&](std::size_t offset, std::size_t bound) {
      return load_u16(body_.data() + offset) > bound;
    };
    if (too_long(via_length_offset, list_bound(lim_.max_via_entries, lim_))) {
      fail(codec_errc::limit_exceeded, "forwarding_header.via_list_length", at + via_length_offset);
      return;
    }
    if (too_long(destination_length_offset, list_bound(lim_.max_destination_entries, lim_))) {
      fail(codec_errc::limit_exceeded, "forwarding_header.destination_list_length",
           at + destination_length_offset);
      return;
    }
    if (too_long(options_length_offset, options_bound(lim_))) {
      fail(codec_errc::limit_exceeded, "forwarding_header.options_length",
           at + options_length_offset);
      return;
    }
    // The limit is below the message's length, so a header within it also fits the message.
    const std::size_t size = header_size_from_lengths(body_.data());
    if (size > oversized_header_limit(lim_)) {
      fail(codec_errc::limit_exceeded, "forwarding_header", at);
      return;
    }
    oversized_want_ = size;
    body_.reserve(size);
    if (body_.size() < oversized_want_) return;
  }
  auto decoded = decode_oversized_header(body_, *oversized_length_, lim_);
  if (!decoded) {
    fail(decoded.error().code, decoded.error().field, at + decoded.error().offset);
    return;
  }
  oversized_ = oversized_frame{sequence_, *oversized_length_, std::move(body_)};
  body_ = bytes{};
  stopped_ = true;
}

void frame_decoder::fail(codec_errc code, const char* field, std::uint64_t at) {
  error_ = decode_error{code, field, static_cast<std::size_t>(at)};
  body_ = bytes{};  // the link is going away; give the memory back now
}

result<std::size_t, decode_error> frame_decoder::put(byte_view in) {
  if (failed()) return unexpected(error_);
  if (stopped_) {
    consumed_ += in.size();  // after an oversized frame: read and dropped
    return ready_.size();
  }
  const std::uint8_t* p = in.data();
  std::size_t left = in.size();
  while (left > 0) {
    if (oversized_length_) {
      // Gathering an oversized message's forwarding header: no more than it needs.
      const std::size_t take = std::min(left, oversized_want_ - body_.size());
      body_.insert(body_.end(), p, p + take);
      p += take;
      left -= take;
      consumed_ += take;
      advance_oversized();
      if (failed()) return unexpected(error_);
      if (stopped_) {
        consumed_ += left;
        break;
      }
      continue;
    }
    if (in_body_) {
      // Copy straight into the message buffer: each byte once, however finely the stream is cut.
      const std::size_t take = std::min(left, body_len_ - body_.size());
      body_.insert(body_.end(), p, p + take);
      p += take;
      left -= take;
      consumed_ += take;
      if (body_.size() == body_len_) {
        ready_.push_back(data_frame{sequence_, std::move(body_)});
        body_ = bytes{};
        in_body_ = false;
      }
      continue;
    }
    const std::uint64_t frame_start = consumed_ - header_len_;
    if (header_len_ == 0 && *p != data_type && *p != ack_type) {
      // Reject on the first byte: nothing after an unknown type can be framed.
      fail(codec_errc::unknown_type, "framed_message.type", consumed_);
      return unexpected(error_);
    }
    const std::uint8_t type = header_len_ == 0 ? *p : header_[0];
    const std::size_t want = type == ack_type ? ack_frame_size : data_frame_overhead;
    const std::size_t take = std::min(left, want - header_len_);
    std::memcpy(header_.data() + header_len_, p, take);
    header_len_ += take;
    p += take;
    left -= take;
    consumed_ += take;
    if (header_len_ < want) break;  // the whole input went into the header; need more

    header_len_ = 0;
    if (header_[0] == ack_type) {
      ready_.push_back(ack_frame{load_u32(header_.data() + 1), load_u32(header_.data() + 5)});
      continue;
    }
    sequence_ = load_u32(header_.data() + 1);
    body_len_ = load_u24(header_.data() + 5);
    if (body_len_ > max_message_) {
      if (policy_ == oversize_policy::fail || oversized_header_limit(lim_) < fixed_header_size) {
        fail(codec_errc::limit_exceeded, "framed_message.message", frame_start + 5);
        return unexpected(error_);
      }
      oversized_length_ = static_cast<std::uint32_t>(body_len_);
      oversized_start_ = consumed_;
      oversized_want_ = fixed_header_size;
      body_.clear();
      body_.reserve(fixed_header_size);
      continue;
    }
    if (body_len_ == 0) {
      ready_.push_back(data_frame{sequence_, {}});
      continue;
    }
    body_.reserve(body_len_);
    in_body_ = true;
  }
  return ready_.size();
}

std::optional<frame> frame_decoder::next() {
  if (ready_.empty()) return std::nullopt;
  frame f = std::move(ready_.front());
  ready_.pop_front();
  return f;
}

// ---------------------------------------------------------------------------------------------
// acks

bool ack_covers(const ack_frame& a, std::uint32_t sequence) noexcept {
  const std::uint32_t distance = a.ack_sequence - sequence;  // modulo 2^32
  if (distance == 0) return true;
  if (distance > 32) return false;
  // The top bit (distance 32) is never set by our own receive_window, but a peer reading the RFC
  // with a non-strict inequality may set it; it is still positive information.
  return (a.received >> (distance - 1)) & 1u;
}

ack_frame receive_window::on_data(std::uint32_t sequence) noexcept {
  ack_frame a{sequence, 0};
  bool seen = false;
  for (std::size_t i = 0; i < count_; ++i) {
    const std::uint32_t distance = sequence - recent_[i];  // N - M modulo 2^32
    if (distance == 0) seen = true;
    // M < N and M > N - 32 in serial arithmetic: N - M in 1..31.
    if (distance >= 1 && distance <= 31) a.received |= std::uint32_t{1} << (distance - 1);
  }
  // A duplicate (a datagram link may deliver one twice) does not push out a distinct entry.
  if (!seen) {
    recent_[next_] = sequence;
    next_ = (next_ + 1) % recent_.size();
    count_ = std::min(count_ + 1, recent_.size());
  }
  return a;
}

// ---------------------------------------------------------------------------------------------
// RFC 6298 estimator

namespace {

std::chrono::milliseconds ceil_ms(steady_duration d) noexcept {
  return std::chrono::ceil<std::chrono::milliseconds>(d);
}

}  // namespace

rto_estimator::rto_estimator(const rto_config& cfg) noexcept : cfg_(cfg), rto_(cfg.initial_rto) {
  update_rto(cfg.initial_rto);
}

void rto_estimator::update_rto(std::chrono::milliseconds raw) noexcept {
  rto_ = std::clamp(raw, cfg_.min_rto, std::max(cfg_.min_rto, cfg_.max_rto));
}

void rto_estimator::on_sample(steady_duration rtt) noexcept {
  using namespace std::chrono;
  // Anything beyond the ceiling cannot change the clamped RTO and would risk overflow below.
  const steady_duration cap =
      duration_cast<steady_duration>(std::min<milliseconds>(cfg_.max_rto, hours{24})) * 4;
  const steady_duration r = std::clamp(rtt, steady_duration::zero(), cap);
  if (!measured_) {
    srtt_ = r;  // formula 2.2
    rttvar_ = r / 2;
    measured_ = true;
  } else {
    // Formula 2.3, RTTVAR first since it uses the old SRTT.
    const steady_duration err = srtt_ > r ? srtt_ - r : r - srtt_;
    rttvar_ = rttvar_ - rttvar_ / 4 + err / 4;
    srtt_ = srtt_ - srtt_ / 8 + r / 8;
  }
  const steady_duration granularity = milliseconds{1};
  update_rto(ceil_ms(srtt_ + std::max(granularity, 4 * rttvar_)));
}

void rto_estimator::backoff() noexcept {
  // Saturating: doubling stops at the ceiling (never overflows, never wraps to a small value).
  const auto ceiling = std::max(cfg_.min_rto, cfg_.max_rto);
  rto_ = rto_ >= ceiling / 2 ? ceiling : rto_ * 2;
}

std::optional<steady_duration> rto_estimator::srtt() const noexcept {
  if (!measured_) return std::nullopt;
  return srtt_;
}

std::optional<steady_duration> rto_estimator::rttvar() const noexcept {
  if (!measured_) return std::nullopt;
  return rttvar_;
}

// ---------------------------------------------------------------------------------------------
// send_window

namespace {

std::size_t ring_capacity(std::size_t history) noexcept {
  // A power of two divides 2^32, so sequence % capacity stays consecutive across the uint32 wrap.
  constexpr std::size_t most = std::size_t{1} << 16;
  return std::bit_ceil(std::clamp<std::size_t>(history, 1, most));
}

}  // namespace

send_window::send_window(const rto_config& cfg, std::size_t history)
    : rto_(cfg), history_(ring_capacity(history)) {}

std::optional<std::size_t> send_window::slot_of(std::uint32_t sequence) const noexcept {
  const std::uint32_t age = next_ - sequence;  // 1 for the newest frame, modulo 2^32
  const std::uint64_t remembered = std::min<std::uint64_t>(sent_count_, sent_at_.size());
  if (age == 0 || age > remembered) return std::nullopt;
  return sequence & (sent_at_.size() - 1);
}

void send_window::grow() {
  // Twice the slots (a power of two still), each remembered frame moved to its new slot.
  const std::size_t slots = std::min(history_, std::max<std::size_t>(4, sent_at_.size() * 2));
  std::vector<steady_time> at(slots);
  std::vector<bool> acked(slots, false);
  const std::uint64_t remembered = std::min<std::uint64_t>(sent_count_, sent_at_.size());
  for (std::uint64_t age = 1; age <= remembered; ++age) {
    const std::uint32_t sequence = next_ - static_cast<std::uint32_t>(age);
    const std::size_t from = sequence & (sent_at_.size() - 1);
    at[sequence & (slots - 1)] = sent_at_[from];
    acked[sequence & (slots - 1)] = acked_[from];
  }
  sent_at_ = std::move(at);
  acked_ = std::move(acked);
}

std::uint32_t send_window::on_send(steady_time now) {
  if (sent_count_ >= sent_at_.size() && sent_at_.size() < history_) grow();
  const std::uint32_t sequence = next_++;
  const std::size_t slot = sequence & (sent_at_.size() - 1);
  sent_at_[slot] = now;
  acked_[slot] = false;
  ++sent_count_;
  return sequence;
}

ack_outcome send_window::on_ack(const ack_frame& a, steady_time now) noexcept {
  ack_outcome out;
  if (const auto slot = slot_of(a.ack_sequence)) {
    out.known = true;
    last_ack_ = now;
    if (!acked_[*slot]) {
      acked_[*slot] = true;
      ++out.newly_acked;
      out.rtt = now - sent_at_[*slot];
      rto_.on_sample(*out.rtt);
    }
  }
  // The bitmask confirms earlier frames whose own acks may have been lost; it gives no RTT, since
  // its time says nothing about when those frames arrived.
  for (std::uint32_t k = 0; k < 32; ++k) {
    if (((a.received >> k) & 1u) == 0) continue;
    if (const auto slot = slot_of(a.ack_sequence - (k + 1))) {
      if (!acked_[*slot]) {
        acked_[*slot] = true;
        ++out.newly_acked;
      }
    }
  }
  return out;
}

bool send_window::acked(std::uint32_t sequence) const noexcept {
  const auto slot = slot_of(sequence);
  return slot && acked_[*slot];
}

std::optional<steady_time> send_window::oldest_outstanding() const noexcept {
  std::optional<steady_time> oldest;
  const std::uint64_t remembered = std::min<std::uint64_t>(sent_count_, sent_at_.size());
  // Walk from the newest frame back to the newest acknowledged one: frames before that whose acks
  // never came were lost or their acks were, and say nothing about whether the link lives now.
  for (std::uint64_t age = 1; age <= remembered; ++age) {
    const auto slot = slot_of(next_ - static_cast<std::uint32_t>(age));
    if (!slot || acked_[*slot]) break;
    oldest = sent_at_[*slot];
  }
  return oldest;
}

std::optional<steady_time> send_window::next_deadline() const noexcept {
  const auto oldest = oldest_outstanding();
  if (!oldest) return std::nullopt;
  return *oldest + rto_.rto();
}

bool send_window::overdue(steady_time now) const noexcept {
  const auto deadline = next_deadline();
  return deadline && now >= *deadline;
}

}  // namespace p2psip::protocol
