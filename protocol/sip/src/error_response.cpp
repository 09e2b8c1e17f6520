#include "p2psip/sip/error_response.hpp"
#include "p2psip/sip/transaction.hpp"

#include <array>
#include <cstdint>
#include <vector>

namespace p2psip::sip {

namespace {

/// RFC 3261's reason phrase of `status`, or "Error" for a code it does not name.
std::string reason_or_error(int status) {
  const auto r = default_reason(status);
  return r.empty() ? std::string("Error") : std::string(r);
}

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool is_lws(char c) noexcept {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_lws(s.front())) s.remove_prefix(1);
  while (!s.empty() && (is_lws(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

/// True when the value can be echoed on a header line: no control characters but HT.
bool echoable(std::string_view v) noexcept {
  for (const char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
  }
  return !v.empty();
}

/// FNV-1a over the parts: a stable To tag for a given transaction.
std::string derived_tag(std::string_view call_id, std::string_view cseq, std::string_view via) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](std::string_view s) {
    for (const char c : s) {
      h ^= static_cast<unsigned char>(c);
      h *= 0x100000001b3ULL;
    }
    h ^= 0xff;
    h *= 0x100000001b3ULL;
  };
  mix(call_id);
  mix(cseq);
  mix(via);
  static constexpr std::array<char, 16> hex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                               '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  std::string out = "p2ps";
  for (int shift = 60; shift >= 0; shift -= 4) out.push_back(hex[(h >> shift) & 0xf]);
  return out;
}

/// True when a From/To value carries a tag header parameter: a ';' outside quotes and <>
/// followed by "tag" (any case) and '='.
bool has_tag_param(std::string_view v) noexcept {
  bool quoted = false;
  int angle = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
    } else if (c == '<') {
      ++angle;
    } else if (c == '>') {
      if (angle > 0) --angle;
    } else if (c == ';' && angle == 0) {
      std::size_t j = i + 1;
      while (j < v.size() && is_lws(v[j])) ++j;
      std::size_t k = j;
      while (k < v.size() && v[k] != '=' && v[k] != ';' && !is_lws(v[k])) ++k;
      if (!iequals(v.substr(j, k - j), "tag")) continue;
      while (k < v.size() && is_lws(v[k])) ++k;
      if (k < v.size() && v[k] == '=') return true;
    }
  }
  return false;
}

/// The reason phrase to send: printable ASCII of `reason`, or the default one.
std::string reason_phrase(int status, std::string_view reason) {
  std::string out;
  for (const char c : reason) {
    if (c >= 0x20 && c <= 0x7e) out.push_back(c);
  }
  if (trim(out).empty()) return reason_or_error(status);
  return out;
}

}  // namespace

std::optional<std::string> error_response_bytes(std::string_view raw, const parse_error& error) {
  if (error.response) return std::nullopt;
  // Leading CRLFs are skipped, as parse_datagram does (RFC 3261 7.5).
  while (!raw.empty() && (raw.front() == '\r' || raw.front() == '\n')) raw.remove_prefix(1);
  if (raw.size() >= 4 && iequals(raw.substr(0, 4), "SIP/")) return std::nullopt;

  // The header section: up to the first empty line, or everything.
  std::size_t end = raw.size();
  for (const std::string_view blank : {std::string_view("\r\n\r\n"), std::string_view("\n\n")}) {
    const std::size_t at = raw.find(blank);
    if (at != std::string_view::npos && at < end) end = at;
  }
  const std::string_view head = raw.substr(0, end);

  // Header lines, unfolded; the first line (the start line) is skipped.
  std::vector<std::string> lines;
  bool first = true;
  std::size_t pos = 0;
  while (pos <= head.size()) {
    std::size_t nl = head.find('\n', pos);
    if (nl == std::string_view::npos) nl = head.size();
    std::string_view line = head.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    if (first) {
      first = false;
      continue;
    }
    if (!line.empty() && is_lws(line.front()) && !lines.empty()) {
      lines.back() += ' ';
      lines.back() += trim(line);
    } else {
      lines.emplace_back(line);
    }
  }

  std::vector<std::string_view> vias;
  std::optional<std::string_view> from, to, call_id, cseq;
  for (const std::string& line : lines) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string_view name = trim(std::string_view(line).substr(0, colon));
    const std::string_view value = trim(std::string_view(line).substr(colon + 1));
    if (!echoable(value)) continue;
    if (iequals(name, "via") || iequals(name, "v")) {
      vias.push_back(value);
    } else if (iequals(name, "from") || iequals(name, "f")) {
      if (!from) from = value;
    } else if (iequals(name, "to") || iequals(name, "t")) {
      if (!to) to = value;
    } else if (iequals(name, "call-id") || iequals(name, "i")) {
      if (!call_id) call_id = value;
    } else if (iequals(name, "cseq")) {
      if (!cseq) cseq = value;
    }
  }
  if (vias.empty()) return std::nullopt;

  const int status = (error.status >= 400 && error.status <= 699) ? error.status : 400;
  std::string out = "SIP/2.0 " + std::to_string(status) + " " + reason_phrase(status, error.reason);
  out += "\r\n";
  for (const std::string_view v : vias) {
    out += "Via: ";
    out += v;
    out += "\r\n";
  }
  if (from) {
    out += "From: ";
    out += *from;
    out += "\r\n";
  }
  if (to) {
    out += "To: ";
    out += *to;
    if (!has_tag_param(*to)) {
      out += ";tag=";
      out += derived_tag(call_id.value_or(""), cseq.value_or(""), vias.front());
    }
    out += "\r\n";
  }
  if (call_id) {
    out += "Call-ID: ";
    out += *call_id;
    out += "\r\n";
  }
  if (cseq) {
    out += "CSeq: ";
    out += *cseq;
    out += "\r\n";
  }
  out += "Content-Length: 0\r\n\r\n";
  return out;
}

message error_response(const message& request, int status, std::string reason) {
  message r;
  r.status = status;
  r.reason = reason.empty() ? reason_or_error(status) : std::move(reason);
  std::string_view call_id_value, cseq_value, top_via;
  for (const header& h : request.headers) {
    if (h.name == "Call-ID") call_id_value = h.value;
    if (h.name == "CSeq") cseq_value = h.value;
    if (h.name == "Via" && top_via.empty()) top_via = h.value;
  }
  for (const header& h : request.headers) {
    if (h.name == "Via" || h.name == "From" || h.name == "Call-ID" || h.name == "CSeq") {
      r.headers.push_back(header{h.name, h.name, h.value});
    } else if (h.name == "To") {
      std::string value = h.value;
      if (!has_tag_param(value)) value += ";tag=" + derived_tag(call_id_value, cseq_value, top_via);
      r.headers.push_back(header{h.name, h.name, std::move(value)});
    }
  }
  return r;
}

}  // namespace p2psip::sip
