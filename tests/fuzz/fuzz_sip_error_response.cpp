// Fuzz target: sip::error_response_bytes, the best-effort answer of the SIP transport to bytes that
// failed to parse (RFC 3261 8.2.6 on what can be recovered). The input goes through parse_datagram
// with small limits; on a parse error, the answer is built from the bytes and that error, and once
// more with an error made from the input's first bytes (any status, a reason with control
// characters). Invariants: nothing crashes; no answer to something that starts like a response
// nor for an error that is itself a response's; an answer is CRLF-terminated lines of printable
// text (no header injection), starts "SIP/2.0 <4xx..6xx> ", carries at least one Via and ends
// with Content-Length: 0; the same input gives the same bytes (the derived To tag); an answer that
// parses is a response with that status.

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "p2psip/sip/error_response.hpp"
#include "p2psip/sip/message.hpp"

namespace sip = p2psip::sip;

namespace {

bool starts_like_response(std::string_view raw) {
  while (!raw.empty() && (raw.front() == '\r' || raw.front() == '\n')) raw.remove_prefix(1);
  if (raw.size() < 4) return false;
  const auto up = [](char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; };
  return up(raw[0]) == 'S' && up(raw[1]) == 'I' && up(raw[2]) == 'P' && raw[3] == '/';
}

void check_answer(std::string_view raw, const sip::parse_error& error) {
  const auto out = sip::error_response_bytes(raw, error);
  if (error.response || starts_like_response(raw)) {
    if (out) std::abort();
    return;
  }
  if (!out) return;
  const std::string& a = *out;
  if (sip::error_response_bytes(raw, error) != out) std::abort();

  if (a.size() < 12 || a.compare(0, 8, "SIP/2.0 ") != 0) std::abort();
  const int status = (a[8] - '0') * 100 + (a[9] - '0') * 10 + (a[10] - '0');
  if (status < 400 || status > 699 || a[11] != ' ') std::abort();
  const int expected = (error.status >= 400 && error.status <= 699) ? error.status : 400;
  if (status != expected) std::abort();

  static constexpr std::string_view tail = "Content-Length: 0\r\n\r\n";
  if (a.size() < tail.size() || a.compare(a.size() - tail.size(), tail.size(), tail) != 0)
    std::abort();
  if (a.find("\r\nVia: ") == std::string::npos) std::abort();
  // Only CRLF line ends, and nothing else below 0x20 but HT.
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto c = static_cast<unsigned char>(a[i]);
    if (c == '\r') {
      if (i + 1 >= a.size() || a[i + 1] != '\n') std::abort();
    } else if (c == '\n') {
      if (i == 0 || a[i - 1] != '\r') std::abort();
    } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
      std::abort();
    }
  }
  // One empty line, at the end: the header section cannot be cut short by an echoed value.
  if (a.find("\r\n\r\n") != a.size() - 4) std::abort();

  if (auto parsed = sip::parse_datagram(a)) {
    if (parsed->is_request() || parsed->status != status) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  sip::sip_limits limits;
  limits.max_start_line = 512;
  limits.max_uri = 256;
  limits.max_headers = 32;
  limits.max_header_bytes = 4096;
  limits.max_body = 2048;

  if (auto m = sip::parse_datagram(bytes, limits); !m) {
    const auto& e = m.error();
    if (e.status < 400 || e.status > 599 || e.reason.empty()) std::abort();
    check_answer(bytes, e);
  }

  // Any error the caller might pass: status from two bytes, a reason from the next few (control
  // characters and all), the response flag from a bit.
  if (size >= 3) {
    const int status = (data[0] << 8) | data[1];
    const std::size_t reason_length = data[2] % 16 < size - 3 ? data[2] % 16 : size - 3;
    sip::parse_error e(status, std::string(bytes.substr(3, reason_length)), (data[2] & 0x80) != 0);
    check_answer(bytes.substr(3), e);
  }
  return 0;
}
