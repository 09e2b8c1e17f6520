#include "stun.hpp"

#include <algorithm>

namespace p2psip::peer::stun {

namespace {

std::uint16_t get16(std::span<const std::uint8_t> b, std::size_t at) noexcept {
  return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}
std::uint32_t get32(std::span<const std::uint8_t> b, std::size_t at) noexcept {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) |
         (std::uint32_t{b[at + 2]} << 8) | std::uint32_t{b[at + 3]};
}
void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}
void put32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void set16(std::vector<std::uint8_t>& out, std::size_t at, std::uint16_t v) {
  out[at] = static_cast<std::uint8_t>(v >> 8);
  out[at + 1] = static_cast<std::uint8_t>(v);
}

constexpr std::uint32_t fingerprint_xor = 0x5354554e;

std::vector<std::uint8_t> header(std::uint16_t type, const transaction_id& id) {
  std::vector<std::uint8_t> out;
  out.reserve(64);
  put16(out, type);
  put16(out, 0);  // length, set once the attributes are in
  put32(out, magic_cookie);
  out.insert(out.end(), id.begin(), id.end());
  return out;
}

/// Appends FINGERPRINT (RFC 5389 15.5): the length field already counts it when the CRC is taken.
void add_fingerprint(std::vector<std::uint8_t>& out) {
  set16(out, 2, static_cast<std::uint16_t>(out.size() - header_size + 8));
  const std::uint32_t crc = crc32(out) ^ fingerprint_xor;
  put16(out, fingerprint_type);
  put16(out, 4);
  put32(out, crc);
}

/// Walks the attributes: each must fit, FINGERPRINT (when present) must be last and correct.
/// Calls `f(type, offset of value, length)` for each; false when malformed.
template <class F>
bool walk_attributes(std::span<const std::uint8_t> m, F&& f) {
  std::size_t at = header_size;
  while (at < m.size()) {
    if (m.size() - at < 4) return false;
    const std::uint16_t type = get16(m, at);
    const std::uint16_t len = get16(m, at + 2);
    const std::size_t padded = (static_cast<std::size_t>(len) + 3) & ~std::size_t{3};
    if (m.size() - at - 4 < padded) return false;
    if (type == fingerprint_type) {
      if (len != 4 || at + 8 != m.size()) return false;
      if ((crc32(m.first(at)) ^ fingerprint_xor) != get32(m, at + 4)) return false;
    }
    f(type, at + 4, std::size_t{len});
    at += 4 + padded;
  }
  return true;
}

}  // namespace

std::uint32_t crc32(std::span<const std::uint8_t> data) noexcept {
  std::uint32_t crc = 0xffffffffU;
  for (const std::uint8_t b : data) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320U & (0U - (crc & 1U)));
  }
  return ~crc;
}

bool is_stun(std::span<const std::uint8_t> m) noexcept {
  if (m.size() < header_size) return false;
  if ((m[0] & 0xc0) != 0) return false;
  if (get32(m, 4) != magic_cookie) return false;
  const std::uint16_t len = get16(m, 2);
  return (len % 4) == 0 && len == m.size() - header_size;
}

bool has_fingerprint(std::span<const std::uint8_t> m) noexcept {
  if (!is_stun(m) || m.size() < header_size + 8) return false;
  return get16(m, m.size() - 8) == fingerprint_type && get16(m, m.size() - 6) == 4;
}

std::optional<transaction_id> decode_binding_request(std::span<const std::uint8_t> m) {
  if (!is_stun(m) || get16(m, 0) != binding_request_type) return std::nullopt;
  if (!walk_attributes(m, [](std::uint16_t, std::size_t, std::size_t) {})) return std::nullopt;
  transaction_id id{};
  std::copy_n(m.begin() + 8, id.size(), id.begin());
  return id;
}

std::vector<std::uint8_t> encode_binding_success(const transaction_id& id,
                                                 const asio::ip::address& address,
                                                 std::uint16_t port, bool fingerprint) {
  auto out = header(binding_success_type, id);
  put16(out, xor_mapped_address_type);
  if (address.is_v4()) {
    put16(out, 8);
    out.push_back(0);
    out.push_back(0x01);
    put16(out, static_cast<std::uint16_t>(port ^ (magic_cookie >> 16)));
    put32(out, address.to_v4().to_uint() ^ magic_cookie);
  } else {
    put16(out, 20);
    out.push_back(0);
    out.push_back(0x02);
    put16(out, static_cast<std::uint16_t>(port ^ (magic_cookie >> 16)));
    const auto bytes = address.to_v6().to_bytes();
    // XOR with the magic cookie followed by the transaction id (RFC 5389 15.2).
    std::array<std::uint8_t, 16> key{};
    for (std::size_t i = 0; i < 4; ++i) {
      key[i] = static_cast<std::uint8_t>(magic_cookie >> (24 - 8 * i));
    }
    std::copy(id.begin(), id.end(), key.begin() + 4);
    for (std::size_t i = 0; i < 16; ++i) out.push_back(bytes[i] ^ key[i]);
  }
  set16(out, 2, static_cast<std::uint16_t>(out.size() - header_size));
  if (fingerprint) add_fingerprint(out);
  return out;
}

std::vector<std::uint8_t> encode_binding_request(const transaction_id& id, bool fingerprint) {
  auto out = header(binding_request_type, id);
  if (fingerprint) add_fingerprint(out);
  return out;
}

std::optional<mapped_address> decode_binding_success(std::span<const std::uint8_t> m) {
  if (!is_stun(m) || get16(m, 0) != binding_success_type) return std::nullopt;
  mapped_address result;
  std::copy_n(m.begin() + 8, result.id.size(), result.id.begin());
  bool found = false;
  bool bad = false;
  const bool ok = walk_attributes(m, [&](std::uint16_t type, std::size_t at, std::size_t len) {
    if (type != xor_mapped_address_type || found) return;
    if (len < 2) {  // the family byte must be inside the attribute
      bad = true;
      return;
    }
    const std::uint8_t family = m[at + 1];
    if ((family == 0x01 && len != 8) || (family == 0x02 && len != 20) ||
        (family != 0x01 && family != 0x02)) {
      bad = true;
      return;
    }
    result.port = static_cast<std::uint16_t>(get16(m, at + 2) ^ (magic_cookie >> 16));
    if (family == 0x01) {
      result.address = asio::ip::address_v4(get32(m, at + 4) ^ magic_cookie);
    } else {
      asio::ip::address_v6::bytes_type bytes{};
      for (std::size_t i = 0; i < 16; ++i) bytes[i] = m[at + 4 + i] ^ m[4 + i];
      result.address = asio::ip::address_v6(bytes);
    }
    found = true;
  });
  if (!ok || bad || !found) return std::nullopt;
  return result;
}

}  // namespace p2psip::peer::stun
