#include "text.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>

namespace p2psip::client_cli {

std::optional<std::uint64_t> parse_unsigned(std::string_view s, std::uint64_t max) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc{} || end != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

std::optional<std::pair<std::uint32_t, std::uint32_t>> parse_range(std::string_view s) {
  constexpr std::uint64_t max = 0xFFFFFFFF;
  const auto dash = s.find('-');
  if (dash == std::string_view::npos) {
    const auto v = parse_unsigned(s, max);
    if (!v) return std::nullopt;
    return std::pair{static_cast<std::uint32_t>(*v), static_cast<std::uint32_t>(*v)};
  }
  const auto a = parse_unsigned(s.substr(0, dash), max);
  const auto b = parse_unsigned(s.substr(dash + 1), max);
  if (!a || !b || *a > *b) return std::nullopt;
  return std::pair{static_cast<std::uint32_t>(*a), static_cast<std::uint32_t>(*b)};
}

std::string hex(const bytes& b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(b.size() * 2);
  for (const auto c : b) {
    out += digits[c >> 4];
    out += digits[c & 0xF];
  }
  return out;
}

std::optional<bytes> unhex(std::string_view s) {
  if (s.size() % 2 != 0) return std::nullopt;
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  bytes out;
  out.reserve(s.size() / 2);
  for (std::size_t i = 0; i < s.size(); i += 2) {
    const int hi = nibble(s[i]);
    const int lo = nibble(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  return out;
}

std::string base64(const bytes& b) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((b.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= b.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{b[i]} << 16) | (std::uint32_t{b[i + 1]} << 8) | b[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const std::size_t rest = b.size() - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t{b[i]} << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t{b[i]} << 16) | (std::uint32_t{b[i + 1]} << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool valid_utf8(const bytes& b) {
  std::size_t i = 0;
  while (i < b.size()) {
    const std::uint8_t c = b[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    std::uint32_t cp = 0;
    std::uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
      min = 0x10000;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= b.size()) return false;
      const std::uint8_t cc = b[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

bool printable_utf8(const bytes& b) {
  if (!valid_utf8(b)) return false;
  return std::none_of(b.begin(), b.end(),
                      [](std::uint8_t c) { return (c < 0x20 && c != '\t') || c == 0x7F; });
}

std::string display_value(const bytes& b) {
  if (printable_utf8(b)) return std::string(b.begin(), b.end());
  return "base64:" + base64(b);
}

std::string display_key(const bytes& b) {
  const std::string_view prefix = "hex:";
  const bool looks_hex =
      b.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), b.begin());
  if (printable_utf8(b) && !looks_hex && !b.empty()) return std::string(b.begin(), b.end());
  return "hex:" + hex(b);
}

std::string iso_time(std::uint64_t ms) {
  const auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

std::string one_line(std::string_view s) {
  std::string out(s);
  std::replace(out.begin(), out.end(), '\n', ' ');
  std::replace(out.begin(), out.end(), '\r', ' ');
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace p2psip::client_cli
