#pragma once
// IpAddressPort (RFC 6940 section 6.3.1.1 / 6.5.1.1).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/reader.hpp"
#include "p2psip/protocol/writer.hpp"

namespace p2psip::protocol {

struct ipv4_address_port {
  std::array<std::uint8_t, 4> address{};
  std::uint16_t port = 0;
  friend bool operator==(const ipv4_address_port&, const ipv4_address_port&) = default;
};
struct ipv6_address_port {
  std::array<std::uint8_t, 16> address{};
  std::uint16_t port = 0;
  friend bool operator==(const ipv6_address_port&, const ipv6_address_port&) = default;
};

/// `AddressType type; uint8 length; select(type) {...}`: 1 = IPv4, 2 = IPv6.
struct ip_address_port {
  std::variant<ipv4_address_port, ipv6_address_port> value;
  std::uint16_t port() const noexcept;
  /// "192.0.2.1:6084" or "[2001:db8::1]:6084".
  std::string to_string() const;
  /// Parses the forms to_string() writes; nullopt on anything else.
  static std::optional<ip_address_port> parse(std::string_view text);
  friend bool operator==(const ip_address_port&, const ip_address_port&) = default;
};

ip_address_port decode_ip_address_port(reader& r);
void encode_ip_address_port(writer& w, const ip_address_port& a);

}  // namespace p2psip::protocol
