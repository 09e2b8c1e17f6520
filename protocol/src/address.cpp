// IpAddressPort (RFC 6940 section 6.3.1.1): wire codec and the text forms used in logs,
// configuration and the command line.

#include "p2psip/protocol/address.hpp"

#include <cstddef>

namespace p2psip::protocol {

namespace {

constexpr std::uint8_t address_type_ipv4 = 1;
constexpr std::uint8_t address_type_ipv6 = 2;
// `length` counts the bytes after itself: address plus the 2-byte port.
constexpr std::uint8_t ipv4_body_length = 4 + 2;
constexpr std::uint8_t ipv6_body_length = 16 + 2;

// ---- text helpers ----

constexpr bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A decimal number of at most `max_digits` digits without a sign, and without leading zeros so
// that "010" (octal to inet_aton) never reads as 10.
std::optional<std::uint32_t> parse_decimal(std::string_view s, std::size_t max_digits,
                                           std::uint32_t max_value) noexcept {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  if (s.size() > 1 && s[0] == '0') return std::nullopt;
  std::uint32_t v = 0;
  for (const char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v > max_value) return std::nullopt;
  return v;
}

std::optional<std::array<std::uint8_t, 4>> parse_ipv4(std::string_view s) noexcept {
  std::array<std::uint8_t, 4> out{};
  for (std::size_t i = 0; i < 4; ++i) {
    const std::size_t dot = s.find('.');
    const bool last = i == 3;
    // Exactly three dots: the last octet has none after it, the others end at one.
    if (last != (dot == std::string_view::npos)) return std::nullopt;
    const auto octet = parse_decimal(s.substr(0, dot), 3, 255);
    if (!octet) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(*octet);
    if (!last) s.remove_prefix(dot + 1);
  }
  return out;
}

// Parses one side of an IPv6 address (the part before or after "::") into 16-bit groups.
// `may_end_in_ipv4` allows a dotted quad as the last piece (RFC 4291 section 2.2, form 3).
bool parse_ipv6_groups(std::string_view s, bool may_end_in_ipv4, std::array<std::uint16_t, 8>& out,
                       std::size_t& count) noexcept {
  count = 0;
  if (s.empty()) return true;
  while (true) {
    const std::size_t colon = s.find(':');
    const std::string_view piece = s.substr(0, colon);
    const bool last = colon == std::string_view::npos;
    if (piece.find('.') != std::string_view::npos) {
      if (!last || !may_end_in_ipv4 || count + 2 > out.size()) return false;
      const auto v4 = parse_ipv4(piece);
      if (!v4) return false;
      out[count++] = static_cast<std::uint16_t>(((*v4)[0] << 8) | (*v4)[1]);
      out[count++] = static_cast<std::uint16_t>(((*v4)[2] << 8) | (*v4)[3]);
      return true;
    }
    if (piece.empty() || piece.size() > 4 || count == out.size()) return false;
    unsigned group = 0;
    for (const char c : piece) {
      const int h = hex_value(c);
      if (h < 0) return false;
      group = (group << 4) | static_cast<unsigned>(h);
    }
    out[count++] = static_cast<std::uint16_t>(group);
    if (last) return true;
    s.remove_prefix(colon + 1);
  }
}

// Any RFC 4291 section 2.2 text form (without a zone index).
std::optional<std::array<std::uint8_t, 16>> parse_ipv6(std::string_view s) noexcept {
  const std::size_t gap = s.find("::");
  std::array<std::uint16_t, 8> head{};
  std::array<std::uint16_t, 8> tail{};
  std::size_t head_count = 0;
  std::size_t tail_count = 0;
  if (gap == std::string_view::npos) {
    if (!parse_ipv6_groups(s, true, head, head_count) || head_count != 8) return std::nullopt;
  } else {
    const std::string_view before = s.substr(0, gap);
    const std::string_view after = s.substr(gap + 2);
    if (after.find("::") != std::string_view::npos) return std::nullopt;
    if (!parse_ipv6_groups(before, false, head, head_count)) return std::nullopt;
    if (!parse_ipv6_groups(after, true, tail, tail_count)) return std::nullopt;
    // "::" stands for at least one zero group.
    if (head_count + tail_count > 7) return std::nullopt;
  }
  std::array<std::uint16_t, 8> groups{};
  for (std::size_t i = 0; i < head_count; ++i) groups[i] = head[i];
  for (std::size_t i = 0; i < tail_count; ++i) groups[8 - tail_count + i] = tail[i];
  std::array<std::uint8_t, 16> out{};
  for (std::size_t i = 0; i < 8; ++i) {
    out[2 * i] = static_cast<std::uint8_t>(groups[i] >> 8);
    out[2 * i + 1] = static_cast<std::uint8_t>(groups[i]);
  }
  return out;
}

void append_decimal(std::string& out, unsigned v) {
  out += std::to_string(v);
}

void append_hex_group(std::string& out, unsigned v) {
  static constexpr char digits[] = "0123456789abcdef";
  bool started = false;
  for (int shift = 12; shift >= 0; shift -= 4) {
    const unsigned nibble = (v >> shift) & 0xFu;
    if (nibble != 0 || started || shift == 0) {
      out += digits[nibble];
      started = true;
    }
  }
}

void append_ipv4(std::string& out, const std::uint8_t* a) {
  for (std::size_t i = 0; i < 4; ++i) {
    if (i != 0) out += '.';
    append_decimal(out, a[i]);
  }
}

// RFC 5952 section 4: lowercase, no leading zeros, the longest run of two or more zero groups
// (the first of equal runs) as "::"; section 5: IPv4-mapped addresses end in a dotted quad.
std::string ipv6_text(const std::array<std::uint8_t, 16>& a) {
  std::array<unsigned, 8> g{};
  for (std::size_t i = 0; i < 8; ++i) g[i] = (unsigned{a[2 * i]} << 8) | a[2 * i + 1];

  const bool ipv4_mapped =
      g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xFFFFu;
  const std::size_t hex_groups = ipv4_mapped ? 6 : 8;

  std::size_t best_start = hex_groups;
  std::size_t best_len = 0;
  for (std::size_t i = 0; i < hex_groups;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < hex_groups && g[j] == 0) ++j;
    if (j - i > best_len) {
      best_start = i;
      best_len = j - i;
    }
    i = j;
  }
  if (best_len < 2) best_start = hex_groups;

  std::string out;
  for (std::size_t i = 0; i < hex_groups;) {
    if (i == best_start) {
      out += "::";
      i += best_len;
      continue;
    }
    if (i != 0 && i != best_start + best_len) out += ':';
    append_hex_group(out, g[i]);
    ++i;
  }
  if (ipv4_mapped) {
    if (out.back() != ':') out += ':';
    append_ipv4(out, a.data() + 12);
  }
  return out;
}

}  // namespace

std::uint16_t ip_address_port::port() const noexcept {
  return std::visit([](const auto& v) { return v.port; }, value);
}

std::string ip_address_port::to_string() const {
  std::string out;
  if (const auto* v4 = std::get_if<ipv4_address_port>(&value)) {
    append_ipv4(out, v4->address.data());
  } else {
    out += '[';
    out += ipv6_text(std::get<ipv6_address_port>(value).address);
    out += ']';
  }
  out += ':';
  append_decimal(out, port());
  return out;
}

std::optional<ip_address_port> ip_address_port::parse(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  const bool bracketed = !text.empty() && text.front() == '[';
  if (bracketed) {
    const std::size_t close = text.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const std::size_t colon = text.find(':');
    // An unbracketed IPv6 address would leave more colons in the port; reject rather than guess.
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  const auto port = parse_decimal(port_text, 5, 0xFFFF);
  if (!port) return std::nullopt;
  if (bracketed) {
    const auto a = parse_ipv6(host);
    if (!a) return std::nullopt;
    return ip_address_port{ipv6_address_port{*a, static_cast<std::uint16_t>(*port)}};
  }
  const auto a = parse_ipv4(host);
  if (!a) return std::nullopt;
  return ip_address_port{ipv4_address_port{*a, static_cast<std::uint16_t>(*port)}};
}

ip_address_port decode_ip_address_port(reader& r) {
  const std::size_t type_at = r.offset();
  const std::uint8_t type = r.u8("ip_address_port.type");
  const std::size_t length_at = r.offset();
  const std::uint8_t length = r.u8("ip_address_port.length");
  if (!r.ok()) return {};
  switch (type) {
    case address_type_ipv4: {
      if (length != ipv4_body_length) {
        r.fail_at(length_at, codec_errc::bad_length, "ip_address_port.length");
        return {};
      }
      ipv4_address_port v4;
      const byte_view a = r.fixed(v4.address.size(), "ip_address_port.address");
      v4.port = r.u16("ip_address_port.port");
      if (!r.ok()) return {};
      for (std::size_t i = 0; i < v4.address.size(); ++i) v4.address[i] = a[i];
      return ip_address_port{v4};
    }
    case address_type_ipv6: {
      if (length != ipv6_body_length) {
        r.fail_at(length_at, codec_errc::bad_length, "ip_address_port.length");
        return {};
      }
      ipv6_address_port v6;
      const byte_view a = r.fixed(v6.address.size(), "ip_address_port.address");
      v6.port = r.u16("ip_address_port.port");
      if (!r.ok()) return {};
      for (std::size_t i = 0; i < v6.address.size(); ++i) v6.address[i] = a[i];
      return ip_address_port{v6};
    }
    case 0: r.fail_at(type_at, codec_errc::invalid_value, "ip_address_port.type"); return {};
    default:
      // The length would let us skip an unknown family, but ip_address_port cannot hold one and
      // every place that carries an address needs a usable one (docs/conformance.md).
      r.fail_at(type_at, codec_errc::unknown_type, "ip_address_port.type");
      return {};
  }
}

void encode_ip_address_port(writer& w, const ip_address_port& a) {
  if (const auto* v4 = std::get_if<ipv4_address_port>(&a.value)) {
    w.u8(address_type_ipv4);
    w.u8(ipv4_body_length);
    w.raw(v4->address);
    w.u16(v4->port);
  } else {
    const auto& v6 = std::get<ipv6_address_port>(a.value);
    w.u8(address_type_ipv6);
    w.u8(ipv6_body_length);
    w.raw(v6.address);
    w.u16(v6.port);
  }
}

}  // namespace p2psip::protocol
