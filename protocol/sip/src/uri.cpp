#include "p2psip/sip/uri.hpp"

#include "text.hpp"

namespace p2psip::sip {

using namespace detail;

const param* find_param(const std::vector<param>& params, std::string_view name) noexcept {
  for (const auto& p : params)
    if (iequals(p.name, name)) return &p;
  return nullptr;
}

namespace {

parse_error bad_uri(std::string_view why) {
  return bad_request("Malformed URI: " + std::string(why));
}

bool is_one_of(char c, std::string_view set) noexcept {
  return set.find(c) != std::string_view::npos;
}

// Checks that every byte is unreserved, in `extra`, or part of a valid %HH escape.
bool valid_escaped(std::string_view s, std::string_view extra) noexcept {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return false;
      if (!is_hex(s[i + 1]) || !is_hex(s[i + 2])) return false;
      i += 2;
      continue;
    }
    if (!is_unreserved(c) && !is_one_of(c, extra)) return false;
  }
  return true;
}

constexpr std::string_view user_extra = "&=+$,;?/";
constexpr std::string_view password_extra = "&=+$,";
constexpr std::string_view param_extra = "[]/:&+$";
constexpr std::string_view header_extra = "[]/?:+$";

bool parse_uri_params(std::string_view s, std::vector<param>& out) {
  // s is what follows the first ';' (empty means a trailing ';', which the grammar forbids).
  std::size_t start = 0;
  for (;;) {
    const std::size_t semi = s.find(';', start);
    const std::string_view item =
        s.substr(start, semi == std::string_view::npos ? std::string_view::npos : semi - start);
    const std::size_t eq = item.find('=');
    param p;
    p.name = std::string(item.substr(0, eq));
    if (p.name.empty() || !valid_escaped(p.name, param_extra)) return false;
    if (eq != std::string_view::npos) {
      p.has_value = true;
      p.value = std::string(item.substr(eq + 1));
      if (p.value.empty() || !valid_escaped(p.value, param_extra)) return false;
    }
    out.push_back(std::move(p));
    if (semi == std::string_view::npos) return true;
    start = semi + 1;
  }
}

bool parse_uri_headers(std::string_view s, std::vector<param>& out) {
  std::size_t start = 0;
  for (;;) {
    const std::size_t amp = s.find('&', start);
    const std::string_view item =
        s.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) return false;
    param p;
    p.name = std::string(item.substr(0, eq));
    p.value = std::string(item.substr(eq + 1));
    p.has_value = true;
    if (p.name.empty() || !valid_escaped(p.name, header_extra) ||
        !valid_escaped(p.value, header_extra))
      return false;
    out.push_back(std::move(p));
    if (amp == std::string_view::npos) return true;
    start = amp + 1;
  }
}

// params ["?" headers], as they follow the host or the tel number.
bool parse_tail(std::string_view tail, uri& u, bool allow_headers) {
  if (tail.empty()) return true;
  std::string_view params, headers;
  bool has_headers = false;
  if (tail.front() == ';') {
    const std::size_t q = tail.find('?');
    params = tail.substr(1, q == std::string_view::npos ? std::string_view::npos : q - 1);
    if (q != std::string_view::npos) {
      headers = tail.substr(q + 1);
      has_headers = true;
    }
    if (!parse_uri_params(params, u.params)) return false;
  } else if (tail.front() == '?') {
    headers = tail.substr(1);
    has_headers = true;
  } else {
    return false;
  }
  if (has_headers) {
    if (!allow_headers) return false;
    if (!parse_uri_headers(headers, u.headers)) return false;
  }
  return true;
}

}  // namespace

result<uri, parse_error> parse_uri(std::string_view text) {
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || !is_alpha(text.front()))
    return bad_uri("no scheme");
  for (std::size_t i = 1; i < colon; ++i) {
    const char c = text[i];
    if (!is_alnum(c) && c != '+' && c != '-' && c != '.') return bad_uri("bad scheme");
  }
  uri u;
  u.scheme = to_lower(text.substr(0, colon));
  const std::string_view rest = text.substr(colon + 1);
  if (u.is_sip()) {
    std::string_view hostpart = rest;
    const std::size_t at = rest.find('@');
    if (at != std::string_view::npos) {
      const std::string_view userinfo = rest.substr(0, at);
      hostpart = rest.substr(at + 1);
      const std::size_t pc = userinfo.find(':');
      const std::string_view user = userinfo.substr(0, pc);
      if (user.empty() || !valid_escaped(user, user_extra)) return bad_uri("bad user part");
      u.user = std::string(user);
      if (pc != std::string_view::npos) {
        const std::string_view pw = userinfo.substr(pc + 1);
        if (!valid_escaped(pw, password_extra)) return bad_uri("bad password");
        u.password = std::string(pw);
      }
    }
    const std::size_t tail_at = hostpart.find_first_of(";?");
    const std::string_view hostport = hostpart.substr(0, tail_at);
    if (!parse_hostport(hostport, u.host, u.port)) return bad_uri("bad host or port");
    if (tail_at != std::string_view::npos && !parse_tail(hostpart.substr(tail_at), u, true))
      return bad_uri("bad parameters or headers");
    return u;
  }
  if (u.scheme == "tel") {
    const std::size_t semi = rest.find(';');
    const std::string_view number = rest.substr(0, semi);
    if (number.empty()) return bad_uri("empty telephone number");
    for (char c : number)
      if (!is_alnum(c) && !is_one_of(c, "+-.()*#")) return bad_uri("bad telephone number");
    u.user = std::string(number);
    if (semi != std::string_view::npos && !parse_tail(rest.substr(semi), u, false))
      return bad_uri("bad tel parameters");
    return u;
  }
  // Any other absolute URI (RFC 3261 25.1 absoluteURI): kept opaque, characters checked.
  if (rest.empty() || !valid_escaped(rest, ";/?:@&=+$,#[]")) return bad_uri("bad characters");
  u.opaque = std::string(rest);
  return u;
}

namespace {
void append_params(std::string& out, const std::vector<param>& params) {
  for (const auto& p : params) {
    out += ';';
    out += p.name;
    if (p.has_value) {
      out += '=';
      out += p.value;
    }
  }
}
}  // namespace

std::string to_string(const uri& u) {
  std::string out = u.scheme;
  out += ':';
  if (!u.is_sip() && u.scheme != "tel") return out + u.opaque;
  if (u.scheme == "tel") {
    out += u.user;
    append_params(out, u.params);
    return out;
  }
  if (!u.user.empty()) {
    out += u.user;
    if (u.password) {
      out += ':';
      out += *u.password;
    }
    out += '@';
  }
  out += u.host;
  if (u.port) {
    out += ':';
    out += std::to_string(*u.port);
  }
  append_params(out, u.params);
  for (std::size_t i = 0; i < u.headers.size(); ++i) {
    out += i == 0 ? '?' : '&';
    out += u.headers[i].name;
    out += '=';
    out += u.headers[i].value;
  }
  return out;
}

std::string unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) {
    return is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && is_hex(text[i + 1]) && is_hex(text[i + 2])) {
      out.push_back(static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

namespace {

bool param_values_equal(const param& a, const param& b) {
  if (a.has_value != b.has_value) return false;
  return iequals(unescape(a.value), unescape(b.value));
}

const param* find_unescaped(const std::vector<param>& params, std::string_view name) {
  for (const auto& p : params)
    if (iequals(unescape(p.name), name)) return &p;
  return nullptr;
}

// RFC 3261 19.1.4: parameters in both must match; user, ttl, method, maddr and transport must
// be in both or in neither; other parameters in only one are ignored.
bool params_match(const std::vector<param>& a, const std::vector<param>& b) {
  for (const auto& pa : a) {
    const std::string name = to_lower(unescape(pa.name));
    const param* pb = find_unescaped(b, name);
    if (pb == nullptr) {
      if (name == "user" || name == "ttl" || name == "method" || name == "maddr" ||
          name == "transport")
        return false;
      continue;
    }
    if (!param_values_equal(pa, *pb)) return false;
  }
  for (const auto& pb : b) {
    const std::string name = to_lower(unescape(pb.name));
    if (find_unescaped(a, name) == nullptr &&
        (name == "user" || name == "ttl" || name == "method" || name == "maddr" ||
         name == "transport"))
      return false;
  }
  return true;
}

bool headers_match(const std::vector<param>& a, const std::vector<param>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& ha : a) {
    bool found = false;
    for (const auto& hb : b) {
      if (iequals(unescape(ha.name), unescape(hb.name)) &&
          unescape(ha.value) == unescape(hb.value)) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

}  // namespace

bool uri_equal(const uri& a, const uri& b) {
  if (a.scheme != b.scheme) return false;
  if (a.is_sip()) {
    if (unescape(a.user) != unescape(b.user)) return false;
    if (a.password.has_value() != b.password.has_value()) return false;
    if (a.password && unescape(*a.password) != unescape(*b.password)) return false;
    if (!iequals(a.host, b.host) || a.port != b.port) return false;
    return params_match(a.params, b.params) && headers_match(a.headers, b.headers);
  }
  if (a.scheme == "tel") {
    if (unescape(a.user) != unescape(b.user) || a.params.size() != b.params.size()) return false;
    for (const auto& pa : a.params) {
      const param* pb = find_unescaped(b.params, to_lower(unescape(pa.name)));
      if (pb == nullptr || !param_values_equal(pa, *pb)) return false;
    }
    return true;
  }
  return unescape(a.opaque) == unescape(b.opaque);
}

}  // namespace p2psip::sip
