#include "text.hpp"

namespace p2psip::sip::detail {

bool is_token_char(char c) noexcept {
  if (is_alnum(c)) return true;
  switch (c) {
    case '-':
    case '.':
    case '!':
    case '%':
    case '*':
    case '_':
    case '+':
    case '`':
    case '\'':
    case '~': return true;
    default: return false;
  }
}

bool is_unreserved(char c) noexcept {
  if (is_alnum(c)) return true;
  switch (c) {
    case '-':
    case '_':
    case '.':
    case '!':
    case '~':
    case '*':
    case '\'':
    case '(':
    case ')': return true;
    default: return false;
  }
}

bool is_word_char(char c) noexcept {
  if (is_alnum(c)) return true;
  switch (c) {
    case '-':
    case '.':
    case '!':
    case '%':
    case '*':
    case '_':
    case '+':
    case '`':
    case '\'':
    case '~':
    case '(':
    case ')':
    case '<':
    case '>':
    case ':':
    case '\\':
    case '"':
    case '/':
    case '[':
    case ']':
    case '?':
    case '{':
    case '}': return true;
    default: return false;
  }
}

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_token_char(c)) return false;
  return true;
}

namespace {
char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
char upper(char c) noexcept {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = upper(c);
  return out;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

std::optional<std::uint64_t> parse_number(std::string_view s, std::uint64_t max) noexcept {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (max - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::optional<std::uint64_t> parse_saturated(std::string_view s, std::uint64_t max) noexcept {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (max - d) / 10)
      v = max;
    else
      v = v * 10 + d;
  }
  return v;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::optional<std::string> read_quoted(std::string_view s, std::size_t& pos) {
  std::string out;
  std::size_t i = pos + 1;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '"') {
      pos = i + 1;
      return out;
    }
    if (c == '\\') {
      // quoted-pair = "\\" (%x00-09 / %x0B-0C / %x0E-7F)
      if (i + 1 >= s.size()) return std::nullopt;
      const auto n = static_cast<unsigned char>(s[i + 1]);
      if (n > 0x7F || n == '\n' || n == '\r') return std::nullopt;
      out.push_back(s[i + 1]);
      i += 2;
      continue;
    }
    // qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII: no control octets (RFC 3261 25.1).
    const auto u = static_cast<unsigned char>(c);
    if (u != ' ' && u != '\t' && (u < 0x21 || u == 0x7F || u > 0xFD)) return std::nullopt;
    out.push_back(c);
    ++i;
  }
  return std::nullopt;
}

namespace {
void skip_ws(std::string_view s, std::size_t& i) noexcept {
  while (i < s.size() && is_ws(s[i])) ++i;
}
// gen-value = token / host / quoted-string; host adds ':' '[' ']' to the token characters.
bool is_gen_value_char(char c) noexcept {
  return is_token_char(c) || c == ':' || c == '[' || c == ']';
}
}  // namespace

bool parse_generic_params(std::string_view s, std::vector<param>& out) {
  std::size_t i = 0;
  for (;;) {
    skip_ws(s, i);
    if (i == s.size()) return true;
    if (s[i] != ';') return false;
    ++i;
    skip_ws(s, i);
    const std::size_t name_start = i;
    while (i < s.size() && is_token_char(s[i])) ++i;
    if (i == name_start) return false;  // ";;" or ";" at the end
    param p;
    p.name = std::string(s.substr(name_start, i - name_start));
    skip_ws(s, i);
    if (i < s.size() && s[i] == '=') {
      ++i;
      skip_ws(s, i);
      p.has_value = true;
      if (i < s.size() && s[i] == '"') {
        auto q = read_quoted(s, i);
        if (!q) return false;
        p.value = std::move(*q);
        p.quoted = true;
      } else {
        const std::size_t v = i;
        while (i < s.size() && is_gen_value_char(s[i])) ++i;
        if (i == v) return false;
        p.value = std::string(s.substr(v, i - v));
      }
    }
    out.push_back(std::move(p));
  }
}

bool parse_hostport(std::string_view s, std::string& host, std::optional<std::uint16_t>& port) {
  if (s.empty()) return false;
  std::size_t end = 0;
  if (s.front() == '[') {
    end = s.find(']');
    if (end == std::string_view::npos || end < 2) return false;
    for (std::size_t i = 1; i < end; ++i) {
      const char c = s[i];
      if (!is_hex(c) && c != ':' && c != '.') return false;
    }
    ++end;
  } else {
    while (end < s.size() && (is_alnum(s[end]) || s[end] == '-' || s[end] == '.')) ++end;
    if (end == 0) return false;
  }
  host = std::string(s.substr(0, end));
  port.reset();
  if (end == s.size()) return true;
  if (s[end] != ':') return false;
  const auto p = parse_number(s.substr(end + 1), 65535);
  if (!p) return false;
  port = static_cast<std::uint16_t>(*p);
  return true;
}

parse_error malformed(std::string_view header_name) {
  return bad_request("Malformed " + std::string(header_name) + " header");
}

}  // namespace p2psip::sip::detail
