#pragma once
// The STUN Binding exchange (RFC 5389) that SIP outbound clients use as their keepalive on UDP
// (RFC 5626 section 4.4.2): a datagram test, the Binding request decoder and the success
// response encoder with XOR-MAPPED-ADDRESS, plus the other direction for tests. Sans-I/O: bytes
// in, bytes out. Internal to p2psip::peer_sip_transport (tests include this folder).

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <asio/ip/address.hpp>

namespace p2psip::peer::stun {

inline constexpr std::uint32_t magic_cookie = 0x2112A442;
inline constexpr std::size_t header_size = 20;
inline constexpr std::uint16_t binding_request_type = 0x0001;
inline constexpr std::uint16_t binding_success_type = 0x0101;
inline constexpr std::uint16_t xor_mapped_address_type = 0x0020;
inline constexpr std::uint16_t fingerprint_type = 0x8028;

using transaction_id = std::array<std::uint8_t, 12>;

/// True when `datagram` is a STUN message (RFC 5389 section 6): at least 20 bytes, the first two
/// bits zero, the magic cookie at offset 4, and a length (a multiple of 4) equal to the bytes
/// after the header. A SIP message starts with a letter or CRLF and never passes.
bool is_stun(std::span<const std::uint8_t> datagram) noexcept;

/// A Binding request (class request, method Binding) with well-formed attributes (each one inside
/// the message; a FINGERPRINT, when present, last and correct). Its transaction id; nullopt for
/// anything else.
std::optional<transaction_id> decode_binding_request(std::span<const std::uint8_t> datagram);

/// The Binding success response to `id`: XOR-MAPPED-ADDRESS of `address`:`port` (the request's
/// source), and a FINGERPRINT when `fingerprint` (RFC 5389 7.3.1: answer in kind).
std::vector<std::uint8_t> encode_binding_success(const transaction_id& id,
                                                 const asio::ip::address& address,
                                                 std::uint16_t port, bool fingerprint = false);

/// A Binding request with `id` (and a FINGERPRINT when asked): what a UA's keepalive sends.
std::vector<std::uint8_t> encode_binding_request(const transaction_id& id,
                                                 bool fingerprint = false);

/// The address a Binding success response reports.
struct mapped_address {
  transaction_id id{};
  asio::ip::address address;
  std::uint16_t port = 0;
};

/// Decodes a Binding success response and its XOR-MAPPED-ADDRESS; nullopt when it is not one.
std::optional<mapped_address> decode_binding_success(std::span<const std::uint8_t> datagram);

/// True when the message carries a FINGERPRINT attribute (its last one).
bool has_fingerprint(std::span<const std::uint8_t> datagram) noexcept;

/// CRC-32 (ISO-HDLC, as zlib) of `data`.
std::uint32_t crc32(std::span<const std::uint8_t> data) noexcept;

}  // namespace p2psip::peer::stun
