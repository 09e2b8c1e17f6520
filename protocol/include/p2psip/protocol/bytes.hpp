#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace p2psip::protocol {

/// Owned bytes of a decoded opaque field or an encoded message.
using bytes = std::vector<std::uint8_t>;
/// A read-only view of bytes owned elsewhere.
using byte_view = std::span<const std::uint8_t>;

inline bytes to_bytes(byte_view v) {
  return bytes(v.begin(), v.end());
}
inline bytes to_bytes(std::string_view s) {
  return bytes(s.begin(), s.end());
}
inline std::string_view as_string_view(byte_view v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};  // NOLINT: byte-to-char view
}

/// Lowercase hex without separators.
std::string to_hex(byte_view v);
/// Parses hex, ignoring ASCII whitespace and ':' separators; nothing on odd length or a bad digit.
bool from_hex(std::string_view text, bytes& out);

}  // namespace p2psip::protocol
