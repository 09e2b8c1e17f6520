#pragma once
// The forwarding header (RFC 6940 section 6.3.2): the part every hop parses.

#include <cstddef>
#include <cstdint>
#include <variant>
#include <vector>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/limits.hpp"
#include "p2psip/protocol/reader.hpp"
#include "p2psip/protocol/result.hpp"
#include "p2psip/protocol/writer.hpp"

namespace p2psip::protocol {

inline constexpr std::uint32_t relo_token = 0xD2454C4F;
inline constexpr std::uint8_t reload_version = 0x0A;
/// Size of the forwarding header before its three lists.
inline constexpr std::size_t fixed_header_size = 38;
/// The `fragment` field of an unfragmented message: bit 31 set, last-fragment bit set, offset 0.
inline constexpr std::uint32_t unfragmented = 0xC0000000;

enum class destination_type : std::uint8_t { node = 1, resource = 2, opaque_id = 3 };

/// `opaque opaque_id<0..2^8-1>`: an id a node minted to stand for a list of hops.
struct opaque_id {
  bytes value;
  friend bool operator==(const opaque_id&, const opaque_id&) = default;
};
/// The 2-byte compressed form (first bit 1); the value keeps that bit.
struct compressed_id {
  std::uint16_t value = 0x8000;
  friend bool operator==(const compressed_id&, const compressed_id&) = default;
};

/// One entry of a via or destination list (RFC 6940 section 6.3.2.2).
struct destination {
  std::variant<node_id, resource_id, opaque_id, compressed_id> value;

  bool is_node() const noexcept { return value.index() == 0; }
  bool is_resource() const noexcept { return value.index() == 1; }
  const node_id* node() const noexcept { return std::get_if<node_id>(&value); }
  const resource_id* resource() const noexcept { return std::get_if<resource_id>(&value); }
  friend bool operator==(const destination&, const destination&) = default;
};

inline destination to_destination(const node_id& id) {
  return destination{id};
}
inline destination to_destination(const resource_id& id) {
  return destination{id};
}

/// Forwarding option flags (RFC 6940 section 6.3.2.3).
namespace option_flags {
inline constexpr std::uint8_t forward_critical = 0x01;
inline constexpr std::uint8_t destination_critical = 0x02;
inline constexpr std::uint8_t response_copy = 0x04;
}  // namespace option_flags

/// Forwarding option types: 0 invalid, 1 exp-forward, 2 extensive routing mode (RFC 7263/7264).
struct forwarding_option {
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  bytes value;
  friend bool operator==(const forwarding_option&, const forwarding_option&) = default;
};

struct forwarding_header {
  std::uint32_t overlay = 0;
  std::uint16_t configuration_sequence = 0;
  std::uint8_t version = reload_version;
  std::uint8_t ttl = 100;
  std::uint32_t fragment = unfragmented;
  /// Bytes of this message (or fragment), header included. The encoder fills it in.
  std::uint32_t length = 0;
  std::uint64_t transaction_id = 0;
  std::uint32_t max_response_length = 0;
  std::vector<destination> via_list;
  std::vector<destination> destination_list;
  std::vector<forwarding_option> options;

  bool is_fragment() const noexcept { return fragment != unfragmented; }
  bool is_last_fragment() const noexcept { return (fragment & 0x40000000u) != 0; }
  std::uint32_t fragment_offset() const noexcept { return fragment & 0x00FFFFFFu; }
  friend bool operator==(const forwarding_header&, const forwarding_header&) = default;
};

/// Decodes one destination entry; node ids must be `lim.node_id_length` bytes.
destination decode_destination(reader& r, const limits& lim);
void encode_destination(writer& w, const destination& d);
/// Decodes a whole destination list (the contents of a length-prefixed list).
std::vector<destination> decode_destination_list(reader& r, const limits& lim,
                                                 std::size_t max_entries, const char* field);
void encode_destination_list(writer& w, const std::vector<destination>& list);

/// A decoded header and how many bytes it took.
struct decoded_header {
  forwarding_header header;
  std::size_t size = 0;
};

/// Decodes and checks the forwarding header at the start of `in`: token, version, length equal to
/// in.size() (a fragment's length too), list sizes and entries within `lim`;
/// the TTL is left for the receiver to judge. Trailing contents are not looked at.
result<decoded_header, decode_error> decode_forwarding_header(byte_view in, const limits& lim);
/// Appends the header with length set to `total_length`.
void encode_forwarding_header(writer& w, const forwarding_header& h, std::uint32_t total_length);

}  // namespace p2psip::protocol
