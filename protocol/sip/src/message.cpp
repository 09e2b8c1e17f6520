#include "p2psip/sip/message.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "text.hpp"

namespace p2psip::sip {

using namespace detail;

namespace {

struct known_header {
  std::string_view name;
  char compact;  // 0 when there is none
};

// RFC 3261 section 20 and 7.3.3, RFC 3262, 3265, 3515, 3892, 4028, 4474, 5626, 3327, 3841.
constexpr std::array<known_header, 60> known_headers{{
    {"Accept", 0},
    {"Accept-Contact", 'a'},
    {"Accept-Encoding", 0},
    {"Accept-Language", 0},
    {"Alert-Info", 0},
    {"Allow", 0},
    {"Allow-Events", 'u'},
    {"Authentication-Info", 0},
    {"Authorization", 0},
    {"Call-ID", 'i'},
    {"Call-Info", 0},
    {"Contact", 'm'},
    {"Content-Disposition", 0},
    {"Content-Encoding", 'e'},
    {"Content-Language", 0},
    {"Content-Length", 'l'},
    {"Content-Type", 'c'},
    {"CSeq", 0},
    {"Date", 0},
    {"Error-Info", 0},
    {"Event", 'o'},
    {"Expires", 0},
    {"Flow-Timer", 0},
    {"From", 'f'},
    {"Identity", 'y'},
    {"Identity-Info", 'n'},
    {"In-Reply-To", 0},
    {"Max-Forwards", 0},
    {"Min-Expires", 0},
    {"MIME-Version", 0},
    {"Organization", 0},
    {"Path", 0},
    {"Priority", 0},
    {"Proxy-Authenticate", 0},
    {"Proxy-Authorization", 0},
    {"Proxy-Require", 0},
    {"RAck", 0},
    {"Record-Route", 0},
    {"Refer-To", 'r'},
    {"Referred-By", 'b'},
    {"Reject-Contact", 'j'},
    {"Reply-To", 0},
    {"Request-Disposition", 'd'},
    {"Require", 0},
    {"Retry-After", 0},
    {"Route", 0},
    {"RSeq", 0},
    {"Server", 0},
    {"Session-Expires", 'x'},
    {"Subject", 's'},
    {"Subscription-State", 0},
    {"Supported", 'k'},
    {"Timestamp", 0},
    {"To", 't'},
    {"Unsupported", 0},
    {"User-Agent", 0},
    {"Via", 'v'},
    {"Warning", 0},
    {"WWW-Authenticate", 0},
    {"Min-SE", 0},
}};

bool is_known_method(std::string_view m) noexcept {
  for (std::string_view k :
       {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY",
        "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE"})
    if (m == k) return true;
  return false;
}

}  // namespace

std::string canonical_header_name(std::string_view name) {
  if (name.size() == 1) {
    const char c = to_lower(name)[0];
    for (const auto& k : known_headers)
      if (k.compact == c) return std::string(k.name);
    return std::string(name);
  }
  for (const auto& k : known_headers)
    if (iequals(k.name, name)) return std::string(k.name);
  return std::string(name);
}

const header* message::find(std::string_view name) const {
  const std::string canon = canonical_header_name(name);
  for (const auto& h : headers)
    if (iequals(h.name, canon)) return &h;
  return nullptr;
}

std::vector<std::string_view> message::values(std::string_view name) const {
  const std::string canon = canonical_header_name(name);
  std::vector<std::string_view> out;
  for (const auto& h : headers)
    if (iequals(h.name, canon))
      for (auto v : split_list(h.value)) out.push_back(v);
  return out;
}

void message::add(std::string_view name, std::string value) {
  headers.push_back(header{std::string(name), canonical_header_name(name), std::move(value)});
}

void message::set(std::string_view name, std::string value) {
  const std::string canon = canonical_header_name(name);
  for (auto it = headers.begin(); it != headers.end(); ++it) {
    if (iequals(it->name, canon)) {
      it->value = std::move(value);
      ++it;
      while (it != headers.end()) {
        if (iequals(it->name, canon))
          it = headers.erase(it);
        else
          ++it;
      }
      return;
    }
  }
  add(name, std::move(value));
}

std::size_t message::remove(std::string_view name) {
  const std::string canon = canonical_header_name(name);
  return std::erase_if(headers, [&](const header& h) { return iequals(h.name, canon); });
}

// ---- typed accessors ----

result<uri, parse_error> request_uri_of(const message& m) {
  return parse_uri(m.request_uri);
}

result<std::vector<via>, parse_error> vias(const message& m) {
  std::vector<via> out;
  for (auto v : m.values("Via")) {
    if (v.empty()) return bad_request("Empty value in Via header");
    auto parsed = parse_via(v);
    if (!parsed) return parsed.error();
    out.push_back(std::move(*parsed));
  }
  return out;
}

namespace {
const header* single(const message& m, std::string_view name) {
  return m.find(name);
}
parse_error missing(std::string_view name) {
  return bad_request("Missing " + std::string(name) + " header");
}
}  // namespace

result<cseq, parse_error> cseq_of(const message& m) {
  const header* h = single(m, "CSeq");
  if (h == nullptr) return missing("CSeq");
  return parse_cseq(h->value);
}

result<std::string, parse_error> call_id(const message& m) {
  const header* h = single(m, "Call-ID");
  if (h == nullptr) return missing("Call-ID");
  return parse_call_id(h->value);
}

result<name_addr, parse_error> from(const message& m) {
  const header* h = single(m, "From");
  if (h == nullptr) return missing("From");
  return parse_address_header(h->value, false, "From");
}

result<name_addr, parse_error> to(const message& m) {
  const header* h = single(m, "To");
  if (h == nullptr) return missing("To");
  return parse_address_header(h->value, false, "To");
}

result<std::optional<std::uint8_t>, parse_error> max_forwards(const message& m) {
  const header* h = single(m, "Max-Forwards");
  if (h == nullptr) return std::optional<std::uint8_t>{};
  auto v = parse_max_forwards(h->value);
  if (!v) return v.error();
  return std::optional<std::uint8_t>{*v};
}

result<contact_list, parse_error> contacts(const message& m) {
  contact_list out;
  std::size_t headers_seen = 0;
  for (const auto& h : m.headers) {
    if (h.name != "Contact") continue;
    ++headers_seen;
    auto c = parse_contact(h.value);
    if (!c) return c.error();
    out.star = out.star || c->star;
    for (auto& v : c->contacts) out.contacts.push_back(std::move(v));
  }
  if (out.star && (headers_seen > 1 || !out.contacts.empty()))
    return bad_request("Contact '*' mixed with other Contact values");
  return out;
}

result<std::vector<name_addr>, parse_error> route_set(const message& m, std::string_view name) {
  std::vector<name_addr> out;
  const std::string canon = canonical_header_name(name);
  for (auto v : m.values(name)) {
    auto r = parse_address_header(v, true, canon);
    if (!r) return r.error();
    out.push_back(std::move(*r));
  }
  return out;
}

result<std::vector<std::string>, parse_error> option_tags(const message& m, std::string_view name) {
  std::vector<std::string> out;
  const std::string canon = canonical_header_name(name);
  for (const auto& h : m.headers) {
    if (!iequals(h.name, canon)) continue;
    auto tags = parse_option_tags(h.value);
    if (!tags) return bad_request("Malformed " + canon + " header");
    for (auto& t : *tags) out.push_back(std::move(t));
  }
  return out;
}

result<std::optional<std::uint32_t>, parse_error> delta_seconds(const message& m,
                                                                std::string_view name) {
  const header* h = m.find(name);
  if (h == nullptr) return std::optional<std::uint32_t>{};
  auto v = parse_delta_seconds(h->value);
  if (!v) return malformed(h->name);
  return std::optional<std::uint32_t>{*v};
}

result<std::optional<media_type>, parse_error> content_type(const message& m) {
  const header* h = m.find("Content-Type");
  if (h == nullptr) return std::optional<media_type>{};
  auto v = parse_media_type(h->value);
  if (!v) return v.error();
  return std::optional<media_type>{std::move(*v)};
}

result<std::vector<auth_value>, parse_error> auth_values(const message& m, std::string_view name) {
  std::vector<auth_value> out;
  const std::string canon = canonical_header_name(name);
  for (const auto& h : m.headers) {
    if (!iequals(h.name, canon)) continue;
    auto a = parse_auth(h.value);
    if (!a) return malformed(canon);
    out.push_back(std::move(*a));
  }
  return out;
}

// ---- validation ----

namespace {

bool is_single_valued(std::string_view name) noexcept {
  for (std::string_view s : {"Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length",
                             "Content-Type", "Expires", "Flow-Timer", "Min-Expires"})
    if (name == s) return true;
  return false;
}

result<void, parse_error> check_header(const header& h, const sip_limits& limits) {
  const std::string& n = h.name;
  auto fail = [](const parse_error& e) { return result<void, parse_error>(e); };
  if (n == "Via") {
    for (auto v : split_list(h.value)) {
      if (v.empty()) return bad_request("Empty value in Via header");
      if (auto r = parse_via(v); !r) return fail(r.error());
    }
  } else if (n == "CSeq") {
    if (auto r = parse_cseq(h.value); !r) return fail(r.error());
  } else if (n == "Call-ID") {
    if (auto r = parse_call_id(h.value); !r) return fail(r.error());
  } else if (n == "From" || n == "To" || n == "Reply-To") {
    if (auto r = parse_address_header(h.value, false, n); !r) return fail(r.error());
  } else if (n == "Max-Forwards") {
    if (auto r = parse_max_forwards(h.value); !r) return fail(r.error());
  } else if (n == "Contact") {
    if (auto r = parse_contact(h.value); !r) return fail(r.error());
  } else if (n == "Route" || n == "Record-Route" || n == "Path") {
    for (auto v : split_list(h.value))
      if (auto r = parse_address_header(v, true, n); !r) return fail(r.error());
  } else if (n == "Supported" || n == "Require" || n == "Proxy-Require" || n == "Unsupported") {
    if (auto r = parse_option_tags(h.value); !r) return malformed(n);
  } else if (n == "Expires" || n == "Flow-Timer" || n == "Min-Expires") {
    if (auto r = parse_delta_seconds(h.value); !r) return malformed(n);
  } else if (n == "Content-Type") {
    if (auto r = parse_media_type(h.value); !r) return fail(r.error());
  } else if (n == "WWW-Authenticate" || n == "Proxy-Authenticate" || n == "Authorization" ||
             n == "Proxy-Authorization") {
    if (auto r = parse_auth(h.value); !r) return malformed(n);
  } else if (n == "Content-Length") {
    const auto v = parse_number(trim(h.value), ~std::uint64_t{0} >> 1);
    if (!v) return malformed(n);
    if (*v > limits.max_body)
      return parse_error{
          413, "Request Entity Too Large: body over " + std::to_string(limits.max_body) + " bytes"};
  }
  return {};
}

}  // namespace

result<void, parse_error> validate(const message& m, const sip_limits& limits) {
  auto fail = [&](parse_error e) {
    e.response = !m.is_request();
    return result<void, parse_error>(std::move(e));
  };
  if (m.is_request()) {
    if (!is_token(m.method)) return fail(bad_request("Malformed method"));
    if (m.request_uri.size() > limits.max_uri)
      return fail(parse_error{
          414, "Request-URI Too Long: over " + std::to_string(limits.max_uri) + " bytes"});
    auto u = parse_uri(m.request_uri);
    if (!u) return fail(bad_request("Malformed Request-URI"));
    // RFC 3261 19.1.1: headers are not allowed in a Request-URI (RFC 4475 escruri).
    if (u->is_sip() && !u->headers.empty())
      return fail(bad_request("Request-URI carries escaped headers"));
  } else if (m.status < 100 || m.status > 699) {
    return fail(bad_request("Malformed status code"));
  }
  if (m.headers.size() > limits.max_headers)
    return fail(parse_error{
        513, "Message Too Large: over " + std::to_string(limits.max_headers) + " header fields"});
  for (std::size_t i = 0; i < m.headers.size(); ++i) {
    const header& h = m.headers[i];
    if (is_single_valued(h.name)) {
      for (std::size_t j = 0; j < i; ++j)
        if (m.headers[j].name == h.name)
          return fail(bad_request("Multiple " + h.name + " headers"));
    }
    if (auto r = check_header(h, limits); !r) return fail(r.error());
  }
  if (auto c = contacts(m); !c) return fail(c.error());
  for (std::string_view required : {"Via", "From", "To", "Call-ID", "CSeq"})
    if (m.find(required) == nullptr) return fail(missing(required));
  if (m.is_request()) {
    auto c = cseq_of(m);
    if (!c) return fail(c.error());
    if (c->method != m.method) {
      // RFC 4475 mismatch02: an unknown method is answered 501 before its CSeq is judged.
      if (!is_known_method(m.method))
        return fail(parse_error{501, "Not Implemented: unknown method with CSeq mismatch"});
      return fail(bad_request("CSeq method does not match the Request-Line"));
    }
  }
  return {};
}

std::optional<parse_error> check_request_uri_scheme(const message& m) {
  if (!m.is_request()) return std::nullopt;
  auto u = parse_uri(m.request_uri);
  if (!u) return bad_request("Malformed Request-URI");
  if (u->is_sip() || u->scheme == "tel") return std::nullopt;
  return parse_error{416, "Unsupported URI Scheme"};
}

// ---- parsing ----

namespace detail {

bool looks_like_response(std::string_view bytes) noexcept {
  return bytes.size() >= 4 && iequals(bytes.substr(0, 4), "SIP/");
}

parse_error start_line_too_long(std::string_view bytes, const sip_limits& limits) {
  parse_error e;
  e.response = looks_like_response(bytes);
  if (e.response) {
    e.status = 400;
    e.reason = "Status-Line over " + std::to_string(limits.max_start_line) + " bytes";
  } else {
    // Only the Request-URI is long in practice, so answer 414 (RFC 3261 21.4.12).
    e.status = 414;
    e.reason = "Request-URI Too Long: Request-Line over " + std::to_string(limits.max_start_line) +
               " bytes";
  }
  return e;
}

namespace {

// "SIP/2.0" -> nullopt on success, 505 for another SIP version, 400 otherwise.
std::optional<parse_error> check_version(std::string_view v) {
  if (v.size() < 7 || !iequals(v.substr(0, 4), "SIP/")) return bad_request("Malformed SIP-Version");
  const std::string_view num = v.substr(4);
  const std::size_t dot = num.find('.');
  if (dot == std::string_view::npos || !parse_number(num.substr(0, dot), 1000000) ||
      !parse_number(num.substr(dot + 1), 1000000))
    return bad_request("Malformed SIP-Version");
  if (num != "2.0") return parse_error{505, "Version Not Supported"};
  return std::nullopt;
}

std::optional<parse_error> parse_start_line(std::string_view line, const sip_limits& limits,
                                            message& m) {
  if (line.size() > limits.max_start_line) return start_line_too_long(line, limits);
  if (line.find_first_of("\r\n") != std::string_view::npos)
    return bad_request("Bare CR or LF in start line");
  if (looks_like_response(line)) {
    const std::size_t sp = line.find(' ');
    if (auto e = check_version(line.substr(0, sp))) return e;
    if (sp == std::string_view::npos) return bad_request("Malformed Status-Line");
    const std::string_view rest = line.substr(sp + 1);
    const std::size_t sp2 = rest.find(' ');
    const std::string_view code = rest.substr(0, sp2);
    const auto n = parse_number(code, 999);
    if (code.size() != 3 || !n || *n < 100 || *n > 699) return bad_request("Malformed status code");
    m.status = static_cast<int>(*n);
    m.reason = sp2 == std::string_view::npos ? std::string() : std::string(rest.substr(sp2 + 1));
    return std::nullopt;
  }
  // Method SP Request-URI SP SIP-Version. Runs of SP and trailing SP are tolerated (RFC 4475
  // lwsstart, trws); a fourth element is an error (lwsruri).
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    if (i == line.size()) break;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    parts.push_back(line.substr(start, i - start));
  }
  if (parts.size() != 3) {
    if (parts.size() > 3 && check_version(parts.back()) == std::nullopt)
      return bad_request("Malformed Request-Line (LWS in Request-URI)");
    return bad_request("Malformed Request-Line");
  }
  if (!is_token(parts[0])) return bad_request("Malformed method");
  if (auto e = check_version(parts[2])) return e;
  if (parts[1].size() > limits.max_uri)
    return parse_error{414,
                       "Request-URI Too Long: over " + std::to_string(limits.max_uri) + " bytes"};
  m.method = std::string(parts[0]);
  m.request_uri = std::string(parts[1]);
  return std::nullopt;
}

result<std::optional<std::size_t>, parse_error> parse_head_impl(std::string_view head,
                                                                const sip_limits& limits,
                                                                message& m) {
  std::size_t line_end = head.find("\r\n");
  const std::string_view start = head.substr(0, line_end);
  if (start.size() > limits.max_start_line) return start_line_too_long(start, limits);
  if (head.size() + 4 > limits.max_header_bytes)
    return parse_error{513, "Message Too Large: header section over " +
                                std::to_string(limits.max_header_bytes) + " bytes"};
  if (start.empty()) return bad_request("Empty start line");
  if (auto e = parse_start_line(start, limits, m)) return *e;
  std::size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
  std::size_t count = 0;
  while (pos < head.size()) {
    line_end = head.find("\r\n", pos);
    const std::string_view line = head.substr(
        pos, line_end == std::string_view::npos ? std::string_view::npos : line_end - pos);
    pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
    if (line.find_first_of("\r\n") != std::string_view::npos)
      return bad_request("Bare CR or LF in header section");
    if (!line.empty() && is_ws(line.front())) {
      if (m.headers.empty()) return bad_request("Continuation line before the first header");
      auto& v = m.headers.back().value;
      v += ' ';
      v += trim(line);
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return bad_request("Header line without a colon");
    const std::string_view name = trim(line.substr(0, colon));
    if (!is_token(name)) return bad_request("Malformed header name");
    if (++count > limits.max_headers)
      return parse_error{
          513, "Message Too Large: over " + std::to_string(limits.max_headers) + " header fields"};
    m.headers.push_back(header{std::string(name), canonical_header_name(name),
                               std::string(trim(line.substr(colon + 1)))});
  }
  for (auto& h : m.headers) h.value = std::string(trim(h.value));
  if (auto v = validate(m, limits); !v) return v.error();
  const header* cl = m.find("Content-Length");
  if (cl == nullptr) return std::optional<std::size_t>{};
  const auto n = parse_number(trim(cl->value), limits.max_body);
  return std::optional<std::size_t>{static_cast<std::size_t>(n.value_or(0))};
}

}  // namespace

result<std::optional<std::size_t>, parse_error> parse_head(std::string_view head,
                                                           const sip_limits& limits, message& m) {
  auto r = parse_head_impl(head, limits, m);
  if (!r) {
    parse_error e = r.error();
    e.response = e.response || looks_like_response(head);
    return e;
  }
  return r;
}

}  // namespace detail

result<message, parse_error> parse_datagram(std::string_view d, const sip_limits& limits) {
  while (d.size() >= 2 && d[0] == '\r' && d[1] == '\n') d.remove_prefix(2);
  if (d.empty()) return bad_request("Empty datagram");
  const bool response = looks_like_response(d);
  auto fail = [&](parse_error e) {
    e.response = response;
    return result<message, parse_error>(std::move(e));
  };
  const std::size_t first_crlf = d.find("\r\n");
  if (std::min(first_crlf, d.size()) > limits.max_start_line) return start_line_too_long(d, limits);
  const std::size_t end = d.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (d.size() + 4 > limits.max_header_bytes)
      return fail(parse_error{513, "Message Too Large: header section over " +
                                       std::to_string(limits.max_header_bytes) + " bytes"});
    return fail(bad_request("Header section not terminated by an empty line"));
  }
  message m;
  auto cl = parse_head(d.substr(0, end), limits, m);
  if (!cl) return cl.error();
  const std::string_view rest = d.substr(end + 4);
  if (*cl) {
    if (**cl > rest.size()) return fail(bad_request("Content-Length larger than the datagram"));
    // Octets after the body are ignored (RFC 3261 18.3; RFC 4475 dblreq).
    m.body = std::string(rest.substr(0, **cl));
  } else {
    if (rest.size() > limits.max_body)
      return fail(parse_error{413, "Request Entity Too Large: body over " +
                                       std::to_string(limits.max_body) + " bytes"});
    m.body = std::string(rest);
  }
  return m;
}

result<message, parse_error> parse_datagram(std::span<const std::byte> datagram,
                                            const sip_limits& limits) {
  return parse_datagram(
      std::string_view(reinterpret_cast<const char*>(datagram.data()), datagram.size()), limits);
}

std::string serialize(const message& m) {
  std::string out;
  out.reserve(256 + m.body.size());
  if (m.is_request()) {
    out += m.method;
    out += ' ';
    out += m.request_uri;
    out += " SIP/2.0\r\n";
  } else {
    out += "SIP/2.0 ";
    out += std::to_string(m.status);
    out += ' ';
    out += m.reason;
    out += "\r\n";
  }
  for (const auto& h : m.headers) {
    if (iequals(h.name, "Content-Length")) continue;
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  out += "Content-Length: ";
  out += std::to_string(m.body.size());
  out += "\r\n\r\n";
  out += m.body;
  return out;
}

}  // namespace p2psip::sip
