#pragma once
// RELOAD fragmentation and reassembly (RFC 6940 section 6.7). Any hop may split a message; only the
// final destination puts it back together, holding partial messages under hard bounds.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/limits.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::protocol {

/// Bits of the forwarding header's `fragment` field (RFC 6940 section 6.3.2).
namespace fragment_bits {
inline constexpr std::uint32_t always = 0x80000000u;  ///< must be set (historical)
inline constexpr std::uint32_t last = 0x40000000u;    ///< last (or only) fragment
inline constexpr std::uint32_t reserved = 0x3F000000u;
inline constexpr std::uint32_t offset = 0x00FFFFFFu;  ///< bytes after the forwarding header
}  // namespace fragment_bits

/// Body bytes every fragment but the last carries at least (RFC 6940 section 6.7).
inline constexpr std::size_t min_fragment_body = 256;
/// Room RFC 6940 section 6.7 leaves below the path MTU so the via list can grow on the way:
/// pass `pmtu - fragment_headroom` as max_fragment_size.
inline constexpr std::size_t fragment_headroom = 32;

/// Splits an encoded message (or a fragment of one: a hop may refragment) into fragments of at most
/// `max_fragment_size` bytes. Each is a copy of the forwarding header with `fragment` and `length`
/// rewritten, followed by a chunk of the bytes after the header; the chunks are as equal in size as
/// the 256-byte minimum allows. A message that already fits comes back as its single element,
/// unchanged. Fails when the header does not decode under `lim` (decode_forwarding_header), or with
/// limit_exceeded ("max_fragment_size") when a fragment could not hold the header and 256 body
/// bytes: RELOAD then leaves fragmentation to IP.
result<std::vector<bytes>, decode_error> fragment_message(byte_view message,
                                                          std::size_t max_fragment_size,
                                                          const limits& lim);

/// Reassembles fragmented messages at their final destination, keyed by (link, transaction id):
/// the link is a number the caller gives each connection, so equal transaction ids on two links
/// never mix. Bounded by `lim`:
///  - max_fragments_in_flight partial messages over all links;
///  - max_fragments_per_message fragments that add bytes to one message;
///  - max_message_size for the reassembled message, header included;
///  - reassembly_timeout from a partial message's first fragment (not extended by later ones, so a
///    trickle of fragments cannot hold a buffer forever).
/// Any error drops the partial message the fragment belongs to (when its header decoded).
///
/// Decisions (RFC 6940 section 6.7 leaves them open):
///  - Fragments must repeat the same forwarding header byte for byte except `ttl`, `fragment` and
///    `length` (TTL may differ when fragments took paths of different length). The reassembled
///    message carries the header of the first fragment that arrived, with fragment 0xC0000000 and
///    its whole length.
///  - Overlapping fragments are accepted when the bytes they share agree (a retransmission may be
///    refragmented differently on the way); bytes that disagree are an error (invalid_value,
///    "fragment.data"). An exact duplicate is ignored.
///  - A second last fragment with another end, data past the end a last fragment set, or a last
///    fragment ending before data already held: bad_length ("fragment.last").
///  - A non-last fragment with no body: invalid_value ("fragment.offset").
///  - Fragments smaller than 256 body bytes are accepted (the minimum binds the sender).
///  - When max_fragments_in_flight are held, a new message takes the slot of the oldest partial
///    message of the link holding the most, if that link holds at least two more than the new
///    message's link; otherwise the new message is refused (limit_exceeded, "reassembly.in_flight";
///    section 6.7: out of buffer space, drop the message). One flooding link can thus fill the
///    table but not keep other links out of it.
class reassembler {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit reassembler(const limits& lim);

  /// Feeds one message or fragment received on `link`. Returns the whole message when this
  /// completed it (an unfragmented message comes straight back), nothing while more fragments are
  /// needed, or an error. Partial messages whose time ran out by `now` are dropped first.
  result<std::optional<bytes>, decode_error> put(std::uint64_t link, byte_view fragment,
                                                 time_point now);
  /// Drops partial messages whose deadline is at or before `now`; returns how many.
  std::size_t expire(time_point now);
  /// The earliest deadline of a partial message, or nothing when none is held.
  std::optional<time_point> next_deadline() const;
  /// Drops every partial message of `link` (it closed); returns how many.
  std::size_t drop_link(std::uint64_t link);

  /// Partial messages held.
  std::size_t in_flight() const noexcept { return partials_.size(); }
  /// Body bytes held over all partial messages.
  std::size_t buffered_bytes() const noexcept;

 private:
  struct partial {
    bytes header;  ///< first fragment's header; ttl/fragment/length as received
    bytes body;    ///< bytes after the header, as far as the highest end seen
    std::vector<std::pair<std::size_t, std::size_t>> have;  ///< disjoint sorted [begin, end)
    std::optional<std::size_t> end;  ///< body size, once the last fragment arrived
    std::size_t fragments = 0;       ///< fragments that added bytes
    time_point deadline{};
    std::uint64_t arrival = 0;  ///< order of creation, to find the oldest
  };
  using key = std::pair<std::uint64_t, std::uint64_t>;  ///< (link, transaction id)

  bool make_room(std::uint64_t link);

  limits lim_;
  std::map<key, partial> partials_;
  std::uint64_t arrivals_ = 0;
};

}  // namespace p2psip::protocol
