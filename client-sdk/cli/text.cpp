#include "text.hpp"

#include <algorithm>
#include <charconv>

#include "p2psip/tool/encoding.hpp"
#include "p2psip/tool/log.hpp"

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
  return tool::to_hex(b);
}

std::optional<bytes> unhex(std::string_view s) {
  return tool::from_hex(s);
}

std::string base64(const bytes& b) {
  return tool::to_base64(b);
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

bool is_text(const bytes& b) {
  return valid_utf8(b) && std::find(b.begin(), b.end(), std::uint8_t{0}) == b.end();
}

std::string display_value(const bytes& b) {
  const std::string_view s(reinterpret_cast<const char*>(b.data()), b.size());
  const bool looks_quoted = s.rfind('"', 0) == 0 || s.rfind("base64:", 0) == 0;
  if (printable_utf8(b) && !looks_quoted) return std::string(s);
  if (!is_text(b)) return "base64:" + base64(b);
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      default:
        if (const auto byte = static_cast<std::uint8_t>(c); byte < 0x20 || byte == 0x7F) {
          out += "\\x" + tool::to_hex(std::span(&byte, 1));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string display_key(const bytes& b) {
  const std::string_view prefix = "hex:";
  const bool looks_hex =
      b.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), b.begin());
  if (printable_utf8(b) && !looks_hex && !b.empty()) return std::string(b.begin(), b.end());
  return "hex:" + hex(b);
}

std::string iso_time(std::uint64_t ms) {
  return tool::utc_time_text_ms(ms);
}

std::string one_line(std::string_view s) {
  return tool::one_line(s);
}

}  // namespace p2psip::client_cli
