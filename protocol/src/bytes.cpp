#include "p2psip/protocol/bytes.hpp"

namespace p2psip::protocol {

std::string to_hex(byte_view v) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(v.size() * 2);
  for (const auto b : v) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0F]);
  }
  return out;
}

namespace {
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool from_hex(std::string_view text, bytes& out) {
  bytes result;
  result.reserve(text.size() / 2);
  int high = -1;
  for (const char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == ':') continue;
    const int v = hex_value(c);
    if (v < 0) return false;
    if (high < 0) {
      high = v;
    } else {
      result.push_back(static_cast<std::uint8_t>((high << 4) | v));
      high = -1;
    }
  }
  if (high >= 0) return false;
  out = std::move(result);
  return true;
}

}  // namespace p2psip::protocol
