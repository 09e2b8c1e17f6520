// Fuzz target: the registrar's digest path (RFC 3261 22, RFC 7616, RFC 8760) on an Authorization
// header value as a UA sends it: parse_auth, parse_digest_credentials, then check_digest_response
// against a fixed HA1 of the credentials' algorithm (the first input byte picks the method).
// Invariants: nothing crashes; errors carry a status (400 or 401 for the credentials) and a
// reason; accepted credentials are what the header promises (response of the algorithm's length
// in lower-case hex, username, nonce and uri not empty, qop "auth" exactly with cnonce and 8
// hex-digit nc); the check is false for an HA1 of the other length and true once the response is
// the one digest_response computes; a challenge made with the credentials' realm and nonce (when
// free of control characters) parses back to them.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "p2psip/sip/digest.hpp"
#include "p2psip/sip/headers.hpp"

namespace sip = p2psip::sip;

namespace {

bool lower_hex(std::string_view s) {
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool has_control(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return true;
  }
  return false;
}

// digest_ha1(..., "alice", "example.org", "secret"): fixed, so the fuzzer can only match it by
// computing a hash.
const std::string& ha1_of(sip::digest_algorithm a) {
  static const std::string md5 =
      sip::digest_ha1(sip::digest_algorithm::md5, "alice", "example.org", "secret");
  static const std::string sha256 =
      sip::digest_ha1(sip::digest_algorithm::sha256, "alice", "example.org", "secret");
  return a == sip::digest_algorithm::md5 ? md5 : sha256;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static constexpr std::string_view methods[] = {"REGISTER", "INVITE", "BYE", "OPTIONS"};
  const std::string_view method = methods[data[0] % 4];
  const std::string_view value(reinterpret_cast<const char*>(data) + 1, size - 1);

  auto auth = sip::parse_auth(value);
  if (!auth) {
    if (auth.error().status < 400 || auth.error().status > 599 || auth.error().reason.empty())
      std::abort();
    return 0;
  }
  auto cred = sip::parse_digest_credentials(*auth);
  if (!cred) {
    const int s = cred.error().status;
    if ((s != 400 && s != 401) || cred.error().reason.empty()) std::abort();
    return 0;
  }
  const auto& c = *cred;
  if (c.response.size() != sip::digest_hex_length(c.algorithm) || !lower_hex(c.response))
    std::abort();
  if (c.username.empty() || c.nonce.empty() || c.uri.empty()) std::abort();
  if (c.qop.has_value() != c.cnonce.has_value() || c.qop.has_value() != c.nc.has_value())
    std::abort();
  if (c.qop && (*c.qop != "auth" || c.cnonce->empty() || c.nc->size() != 8 || !lower_hex(*c.nc)))
    std::abort();

  const std::string& ha1 = ha1_of(c.algorithm);
  const bool ok = sip::check_digest_response(c, ha1, method);
  if (ok != (sip::digest_response(c, ha1, method) == c.response)) std::abort();
  const auto other = c.algorithm == sip::digest_algorithm::md5 ? sip::digest_algorithm::sha256
                                                               : sip::digest_algorithm::md5;
  if (sip::check_digest_response(c, ha1_of(other), method)) std::abort();

  auto fixed = c;
  fixed.response = sip::digest_response(c, ha1, method);
  if (fixed.response.size() != sip::digest_hex_length(c.algorithm) || !lower_hex(fixed.response))
    std::abort();
  if (!sip::check_digest_response(fixed, ha1, method)) std::abort();

  // The challenge the registrar would send with these values parses back to them. Only for
  // values without control characters: parse_auth takes them inside quoted strings (a raw NUL,
  // a quoted-pair of LF) and make_challenge does not escape them
  // (corpus/digest/control_chars_in_quoted_strings.txt).
  if (has_control(c.realm) || has_control(c.nonce)) return 0;
  const std::string challenge = sip::make_challenge(c.algorithm, c.realm, c.nonce, true, "op");
  auto back = sip::parse_auth(challenge);
  if (!back || back->get("realm") != c.realm || back->get("nonce") != c.nonce ||
      back->get("opaque") != std::string("op"))
    std::abort();
  const auto algorithm = back->get("algorithm");
  if (!algorithm || sip::parse_digest_algorithm(*algorithm) != c.algorithm) std::abort();
  return 0;
}
