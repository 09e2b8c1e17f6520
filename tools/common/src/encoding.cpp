#include "p2psip/tool/encoding.hpp"

#include <botan/base64.h>
#include <botan/exceptn.h>
#include <botan/hex.h>

namespace p2psip::tool {

std::string to_hex(std::span<const std::uint8_t> b) {
  return Botan::hex_encode(b.data(), b.size(), false);
}

std::optional<std::vector<std::uint8_t>> from_hex(std::string_view s) {
  // Botan skips whitespace when asked and accepts an odd count as a leading nibble; our
  // inputs (--dict-key hex:...) take neither.
  if (s.size() % 2 != 0) return std::nullopt;
  std::vector<std::uint8_t> out(s.size() / 2);
  if (s.empty()) return out;
  try {
    const std::size_t n = Botan::hex_decode(out.data(), s.data(), s.size(), false);
    out.resize(n);
  } catch (const Botan::Exception&) {
    return std::nullopt;
  }
  if (out.size() * 2 != s.size()) return std::nullopt;
  return out;
}

std::string to_base64(std::span<const std::uint8_t> b) {
  return Botan::base64_encode(b.data(), b.size());
}

}  // namespace p2psip::tool
