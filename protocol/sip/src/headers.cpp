#include "p2psip/sip/headers.hpp"

#include <algorithm>

#include "text.hpp"

namespace p2psip::sip {

using namespace detail;

bool is_rfc3261_branch(std::string_view branch) noexcept {
  return branch.size() > branch_cookie.size() &&
         branch.substr(0, branch_cookie.size()) == branch_cookie;
}

namespace {
std::optional<std::string> value_of(const std::vector<param>& params, std::string_view name) {
  const param* p = find_param(params, name);
  if (p == nullptr) return std::nullopt;
  return p->value;
}
void skip_ws(std::string_view s, std::size_t& i) noexcept {
  while (i < s.size() && is_ws(s[i])) ++i;
}
}  // namespace

std::optional<std::string> name_addr::tag() const {
  return value_of(params, "tag");
}
std::optional<std::string> via::branch() const {
  return value_of(params, "branch");
}
std::optional<std::string> via::received() const {
  return value_of(params, "received");
}
std::optional<std::string> via::maddr() const {
  return value_of(params, "maddr");
}

std::optional<std::uint8_t> via::ttl() const {
  const param* p = find_param(params, "ttl");
  if (p == nullptr) return std::nullopt;
  const auto v = parse_number(p->value, 255);
  if (!v) return std::nullopt;
  return static_cast<std::uint8_t>(*v);
}

std::optional<std::optional<std::uint16_t>> via::rport() const {
  const param* p = find_param(params, "rport");
  if (p == nullptr) return std::nullopt;
  if (!p->has_value) return std::optional<std::uint16_t>{};
  const auto v = parse_number(p->value, 65535);
  if (!v) return std::optional<std::uint16_t>{};
  return std::optional<std::uint16_t>{static_cast<std::uint16_t>(*v)};
}

std::optional<std::uint32_t> contact_expires(const name_addr& c) {
  const param* p = find_param(c.params, "expires");
  if (p == nullptr) return std::nullopt;
  const auto v = parse_saturated(p->value, 0xFFFFFFFFu);
  if (!v) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

std::optional<std::uint16_t> contact_q(const name_addr& c) {
  const param* p = find_param(c.params, "q");
  if (p == nullptr) return std::nullopt;
  // qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
  const std::string_view v = p->value;
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return std::nullopt;
  unsigned whole = static_cast<unsigned>(v[0] - '0');
  unsigned frac = 0;
  if (v.size() > 1) {
    if (v[1] != '.' || v.size() > 5) return std::nullopt;
    unsigned scale = 100;
    for (std::size_t i = 2; i < v.size(); ++i) {
      if (!is_digit(v[i])) return std::nullopt;
      frac += static_cast<unsigned>(v[i] - '0') * scale;
      scale /= 10;
    }
  }
  const unsigned q = whole * 1000 + frac;
  if (q > 1000) return std::nullopt;
  return static_cast<std::uint16_t>(q);
}

std::optional<std::string> contact_instance(const name_addr& c) {
  return value_of(c.params, "+sip.instance");
}

std::optional<std::uint32_t> contact_reg_id(const name_addr& c) {
  const param* p = find_param(c.params, "reg-id");
  if (p == nullptr) return std::nullopt;
  const auto v = parse_number(p->value, 0xFFFFFFFFu);
  if (!v) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

std::optional<std::string> auth_value::get(std::string_view name) const {
  return value_of(params, name);
}

std::vector<std::string_view> split_list(std::string_view value) {
  std::vector<std::string_view> out;
  bool quoted = false;
  int angle = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (quoted) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        quoted = false;
      continue;
    }
    if (c == '"') {
      quoted = true;
    } else if (c == '<') {
      ++angle;
    } else if (c == '>') {
      if (angle > 0) --angle;
    } else if (c == ',' && angle == 0) {
      out.push_back(trim(value.substr(start, i - start)));
      start = i + 1;
    }
  }
  out.push_back(trim(value.substr(std::min(start, value.size()))));
  return out;
}

namespace {

result<name_addr, parse_error> name_addr_impl(std::string_view value, bool require_brackets,
                                              std::string_view header) {
  const std::string_view s = trim(value);
  if (s.empty()) return malformed(header);
  name_addr out;
  std::size_t i = 0;
  bool angle = false;
  if (s[0] == '"') {
    auto q = read_quoted(s, i);
    if (!q) return bad_request("Unterminated quoted string in " + std::string(header) + " header");
    out.display_name = std::move(*q);
    skip_ws(s, i);
    if (i >= s.size() || s[i] != '<') return malformed(header);
    angle = true;
  } else {
    // *(token LWS) "<" ; RFC 4475 lwsdisp: a token glued to '<' is tolerated.
    std::size_t j = 0;
    std::string display;
    for (;;) {
      const std::size_t t = j;
      while (j < s.size() && is_token_char(s[j])) ++j;
      if (j == t) break;
      const std::string_view tok = s.substr(t, j - t);
      skip_ws(s, j);
      if (!display.empty()) display += ' ';
      display += tok;
      if (j < s.size() && s[j] == '<') {
        angle = true;
        i = j;
        out.display_name = std::move(display);
        break;
      }
      if (j < s.size() && !is_token_char(s[j])) break;
    }
    if (!angle && !s.empty() && s[0] == '<') angle = true;  // "<uri>" with no display name
  }
  std::string_view rest;
  if (angle) {
    const std::size_t close = s.find('>', i);
    if (close == std::string_view::npos) return malformed(header);
    const std::string_view inside = s.substr(i + 1, close - i - 1);
    // RFC 4475 badaspec: no LWS inside <> (RAQUOT and LAQUOT take no inner whitespace).
    if (inside.find_first_of(" \t") != std::string_view::npos)
      return bad_request("LWS inside <> in " + std::string(header) + " header");
    auto u = parse_uri(inside);
    if (!u) return bad_request(u.error().reason + " in " + std::string(header) + " header");
    out.address = std::move(*u);
    out.bracketed = true;
    rest = s.substr(close + 1);
  } else {
    if (require_brackets) return malformed(header);
    // A '<' before any parameter means a display name that is not *(token LWS) (RFC 4475 baddn);
    // one inside a quoted parameter value is fine.
    if (s.find('<') < s.find_first_of(";\""))
      return bad_request("Malformed display name in " + std::string(header) + " header");
    // addr-spec: the URI ends at the first ';' or LWS; then header parameters (RFC 3261 20).
    const std::size_t end = s.find_first_of("; \t");
    const std::string_view text = s.substr(0, end);
    if (text.find('?') != std::string_view::npos || text.find(',') != std::string_view::npos)
      return bad_request("URI with headers not enclosed in <> in " + std::string(header) +
                         " header");
    auto u = parse_uri(text);
    if (!u) return bad_request(u.error().reason + " in " + std::string(header) + " header");
    out.address = std::move(*u);
    rest = end == std::string_view::npos ? std::string_view{} : s.substr(end);
  }
  if (!parse_generic_params(rest, out.params))
    return bad_request("Malformed parameters in " + std::string(header) + " header");
  return out;
}

}  // namespace

result<name_addr, parse_error> parse_name_addr(std::string_view value) {
  return name_addr_impl(value, false, "address");
}

result<name_addr, parse_error> parse_bracketed_name_addr(std::string_view value) {
  return name_addr_impl(value, true, "route");
}

namespace detail {
result<name_addr, parse_error> parse_address_header(std::string_view value, bool brackets,
                                                    std::string_view header) {
  return name_addr_impl(value, brackets, header);
}
}  // namespace detail

result<via, parse_error> parse_via(std::string_view value) {
  const std::string_view s = trim(value);
  via v;
  std::size_t i = 0;
  auto token = [&](std::string& out) {
    skip_ws(s, i);
    const std::size_t t = i;
    while (i < s.size() && is_token_char(s[i])) ++i;
    out = std::string(s.substr(t, i - t));
    skip_ws(s, i);
    return !out.empty();
  };
  auto slash = [&] {
    if (i >= s.size() || s[i] != '/') return false;
    ++i;
    return true;
  };
  if (!token(v.protocol_name) || !slash() || !token(v.protocol_version) || !slash() ||
      !token(v.transport))
    return malformed("Via");
  v.transport = to_upper(v.transport);
  if (i == 0 || i >= s.size() || !is_ws(s[i - 1])) return malformed("Via");
  const std::size_t end = s.find_first_of("; \t", i);
  if (!parse_hostport(s.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i),
                      v.host, v.port))
    return malformed("Via");
  if (end != std::string_view::npos && !parse_generic_params(s.substr(end), v.params))
    return malformed("Via");
  if (const param* p = find_param(v.params, "ttl"); p && !parse_number(p->value, 255))
    return malformed("Via");
  if (const param* p = find_param(v.params, "rport");
      p && p->has_value && !parse_number(p->value, 65535))
    return malformed("Via");
  if (const param* p = find_param(v.params, "branch"); p && p->value.empty())
    return malformed("Via");
  return v;
}

result<cseq, parse_error> parse_cseq(std::string_view value) {
  const std::string_view s = trim(value);
  std::size_t i = 0;
  while (i < s.size() && !is_ws(s[i])) ++i;
  const auto n = parse_number(s.substr(0, i), 0xFFFFFFFFu);
  if (!n) return bad_request("Malformed CSeq header (sequence number)");
  const std::string_view method = trim(s.substr(i));
  if (i == s.size() || !is_token(method)) return malformed("CSeq");
  return cseq{static_cast<std::uint32_t>(*n), std::string(method)};
}

result<contact_list, parse_error> parse_contact(std::string_view value) {
  contact_list out;
  if (trim(value) == "*") {
    out.star = true;
    return out;
  }
  for (auto item : split_list(value)) {
    if (item.empty()) return bad_request("Empty value in Contact header");
    auto c = name_addr_impl(item, false, "Contact");
    if (!c) return c.error();
    out.contacts.push_back(std::move(*c));
  }
  return out;
}

result<media_type, parse_error> parse_media_type(std::string_view value) {
  const std::string_view s = trim(value);
  media_type m;
  std::size_t i = 0;
  while (i < s.size() && is_token_char(s[i])) ++i;
  m.type = to_lower(s.substr(0, i));
  skip_ws(s, i);
  if (m.type.empty() || i >= s.size() || s[i] != '/') return malformed("Content-Type");
  ++i;
  skip_ws(s, i);
  const std::size_t t = i;
  while (i < s.size() && is_token_char(s[i])) ++i;
  m.subtype = to_lower(s.substr(t, i - t));
  if (m.subtype.empty() || !parse_generic_params(s.substr(i), m.params))
    return malformed("Content-Type");
  return m;
}

result<auth_value, parse_error> parse_auth(std::string_view value) {
  const std::string_view s = trim(value);
  auth_value a;
  std::size_t i = 0;
  while (i < s.size() && is_token_char(s[i])) ++i;
  a.scheme = std::string(s.substr(0, i));
  if (a.scheme.empty() || (i < s.size() && !is_ws(s[i]))) return malformed("authentication");
  const std::string_view rest = trim(s.substr(i));
  if (rest.empty()) return a;
  for (auto item : split_list(rest)) {
    std::size_t j = 0;
    while (j < item.size() && is_token_char(item[j])) ++j;
    param p;
    p.name = std::string(item.substr(0, j));
    skip_ws(item, j);
    if (p.name.empty() || j >= item.size() || item[j] != '=') return malformed("authentication");
    ++j;
    skip_ws(item, j);
    p.has_value = true;
    if (j < item.size() && item[j] == '"') {
      auto q = read_quoted(item, j);
      if (!q || j != item.size()) return malformed("authentication");
      p.value = std::move(*q);
      p.quoted = true;
    } else {
      p.value = std::string(item.substr(j));
      if (!is_token(p.value)) return malformed("authentication");
    }
    a.params.push_back(std::move(p));
  }
  return a;
}

result<std::uint8_t, parse_error> parse_max_forwards(std::string_view value) {
  const auto v = parse_number(trim(value), 255);
  if (!v) return malformed("Max-Forwards");
  return static_cast<std::uint8_t>(*v);
}

result<std::uint32_t, parse_error> parse_delta_seconds(std::string_view value) {
  const auto v = parse_saturated(trim(value), 0xFFFFFFFFu);
  if (!v) return bad_request("Malformed delta-seconds");
  return static_cast<std::uint32_t>(*v);
}

result<std::string, parse_error> parse_call_id(std::string_view value) {
  const std::string_view s = trim(value);
  const std::size_t at = s.find('@');
  auto word = [](std::string_view w) {
    if (w.empty()) return false;
    for (char c : w)
      if (!is_word_char(c)) return false;
    return true;
  };
  if (!word(s.substr(0, at)) || (at != std::string_view::npos && !word(s.substr(at + 1))))
    return malformed("Call-ID");
  return std::string(s);
}

result<std::vector<std::string>, parse_error> parse_option_tags(std::string_view value) {
  std::vector<std::string> out;
  if (trim(value).empty()) return out;
  for (auto item : split_list(value)) {
    if (!is_token(item)) return bad_request("Malformed option tag");
    out.emplace_back(item);
  }
  return out;
}

namespace {
void append_header_params(std::string& out, const std::vector<param>& params) {
  for (const auto& p : params) {
    out += ';';
    out += p.name;
    if (p.has_value) {
      out += '=';
      out += p.quoted ? quote(p.value) : p.value;
    }
  }
}
}  // namespace

std::string to_string(const name_addr& v) {
  std::string out;
  if (!v.display_name.empty()) out = quote(v.display_name) + ' ';
  if (v.bracketed || !v.display_name.empty() || !v.address.headers.empty() ||
      !v.address.params.empty()) {
    out += '<' + to_string(v.address) + '>';
  } else {
    out += to_string(v.address);
  }
  append_header_params(out, v.params);
  return out;
}

std::string to_string(const via& v) {
  std::string out = v.protocol_name + '/' + v.protocol_version + '/' + v.transport + ' ' + v.host;
  if (v.port) out += ':' + std::to_string(*v.port);
  append_header_params(out, v.params);
  return out;
}

}  // namespace p2psip::sip
