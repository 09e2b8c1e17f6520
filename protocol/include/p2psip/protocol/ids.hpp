#pragma once
// Node-IDs, Resource-IDs and the Chord ring arithmetic over them (RFC 6940 sections 6.3.1.1, 10).
// A Node-ID is NodeIdLength bytes (16..20, from the configuration; 16 by default), read as an
// unsigned big-endian integer modulo 2^(8*length).

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "p2psip/protocol/bytes.hpp"

namespace p2psip::protocol {

inline constexpr std::size_t min_node_id_length = 16;
inline constexpr std::size_t max_node_id_length = 20;
inline constexpr std::size_t default_node_id_length = 16;

/// A fixed-length identifier on the ring: a Node-ID, or a Chord Resource-ID seen as a ring point.
class node_id {
 public:
  /// The all-zero id of the default length (invalid on the wire, useful as "unset").
  node_id() noexcept = default;
  /// From exactly 16..20 bytes; nullopt for any other length.
  static std::optional<node_id> from_bytes(byte_view v) noexcept;
  /// From hex text of 32..40 digits.
  static std::optional<node_id> from_hex(std::string_view hex) noexcept;
  /// The wildcard Node-ID (all 0xFF), addressed to whichever node receives it.
  static node_id wildcard(std::size_t length = default_node_id_length) noexcept;
  /// 2^bit as an id of `length` bytes (bit 0 = least significant); bit >= 8*length gives zero.
  static node_id power_of_two(unsigned bit, std::size_t length = default_node_id_length) noexcept;

  std::size_t size() const noexcept { return size_; }
  byte_view view() const noexcept { return {bytes_.data(), size_}; }
  const std::uint8_t* data() const noexcept { return bytes_.data(); }
  bool is_wildcard() const noexcept;
  bool is_zero() const noexcept;
  /// Position of the highest set bit (0 = least significant), -1 for zero: which finger
  /// interval a ring distance falls in.
  int highest_bit() const noexcept;
  std::string hex() const { return to_hex(view()); }

  /// (this + other) mod 2^(8*size); both must have the same size.
  node_id operator+(const node_id& other) const noexcept;
  /// (this - other) mod 2^(8*size).
  node_id operator-(const node_id& other) const noexcept;
  /// this + 1 mod 2^(8*size): where a joining node sends its Attach (RFC 6940 section 10.5).
  node_id next() const noexcept;

  friend bool operator==(const node_id& a, const node_id& b) noexcept {
    return a.size_ == b.size_ && a.bytes_ == b.bytes_;
  }
  friend std::strong_ordering operator<=>(const node_id& a, const node_id& b) noexcept;

 private:
  std::array<std::uint8_t, max_node_id_length> bytes_{};
  std::uint8_t size_ = default_node_id_length;
};

/// Clockwise distance from `from` to `to` on the ring: (to - from) mod 2^n.
node_id ring_distance(const node_id& from, const node_id& to) noexcept;
/// x in the open interval (a, b) going clockwise; (a, a) is the whole ring except a.
bool in_open_interval(const node_id& x, const node_id& a, const node_id& b) noexcept;
/// x in (a, b] clockwise: "peer b is responsible for x when its predecessor is a".
bool in_half_open_interval(const node_id& x, const node_id& a, const node_id& b) noexcept;
/// Start of finger interval i (1-based, RFC 6940 section 10.3): self + 2^(8n - i).
node_id finger_target(const node_id& self, unsigned i) noexcept;

/// A Resource-ID: `opaque ResourceId<0..2^8-1>`. For CHORD-RELOAD it is 16 bytes.
struct resource_id {
  bytes value;

  friend bool operator==(const resource_id&, const resource_id&) = default;
  friend auto operator<=>(const resource_id&, const resource_id&) = default;
  std::string hex() const { return to_hex(value); }
  /// The ring point of this id when its length equals NodeIdLength.
  std::optional<node_id> as_ring_point() const noexcept { return node_id::from_bytes(value); }
};

/// Resource-ID of a resource name for CHORD-RELOAD: the first NodeIdLength bytes of SHA-1(name)
/// (RFC 6940 section 10.2; 16 bytes for the default length).
resource_id hash_resource_name(byte_view name, std::size_t length = default_node_id_length);
inline resource_id hash_resource_name(std::string_view name,
                                      std::size_t length = default_node_id_length) {
  return hash_resource_name(byte_view(reinterpret_cast<const std::uint8_t*>(name.data()),  // NOLINT
                                      name.size()),
                            length);
}

/// Resource-ID under which a node stores its certificate by Node-ID (CERTIFICATE_BY_NODE, RFC 6940
/// section 8): the resource name is the raw Node-ID bytes, hashed like any name.
inline resource_id certificate_by_node_resource(const node_id& node) {
  return hash_resource_name(node.view(), node.size());
}

/// The forwarding header's `overlay` field: the low-order 32 bits of SHA-1(overlay name).
std::uint32_t overlay_hash(std::string_view overlay_name);

/// Kind-IDs of the IANA registry (RFC 6940 section 14.6, RFC 7904, RFC 7374).
namespace kinds {
inline constexpr std::uint32_t invalid = 0;
inline constexpr std::uint32_t sip_registration = 1;
inline constexpr std::uint32_t turn_service = 2;
inline constexpr std::uint32_t certificate_by_node = 3;
inline constexpr std::uint32_t certificate_by_user = 0x10;
inline constexpr std::uint32_t redir = 0x104;
/// p2psip's generic put/get kind, in the private range (see docs/conformance.md).
inline constexpr std::uint32_t p2psip_generic = 0xF0000101;
/// p2psip's SIP gateways (docs/conformance.md): at the Resource Name "sip-gateway@<overlay>",
/// one dictionary entry per gateway peer, keyed by a Node-ID of the gateway role's certificate
/// (USER-NODE-MATCH), whose value is a SipRegistration route to that peer.
inline constexpr std::uint32_t p2psip_sip_gateway = 0xF0000102;
}  // namespace kinds

}  // namespace p2psip::protocol

template <>
struct std::hash<p2psip::protocol::node_id> {
  std::size_t operator()(const p2psip::protocol::node_id& id) const noexcept;
};
