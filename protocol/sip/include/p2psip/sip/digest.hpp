#pragma once
// HTTP Digest for SIP, sans-I/O: the registrar's side of RFC 3261 section 22 with the hashes of
// RFC 7616 and RFC 8760 (MD5 and SHA-256, qop "auth" or none). Values in, values out: HA1 from a
// password (done once, by the admin tool), stateless nonces bound to a secret and a time, the
// WWW-Authenticate value, the Authorization credentials as a typed value, and the check.
//
// Not supported, by design: the -sess algorithms (parsed, then refused like an unknown algorithm:
// a registrar never offers them and a client may only use what was offered), qop "auth-int",
// userhash and username* (RFC 7616 3.4.4, 3.4.5: HTTP features no SIP user agent sends).

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/sip/error.hpp"
#include "p2psip/sip/headers.hpp"

namespace p2psip::sip {

/// The digest hash functions a registrar offers: MD5 (RFC 3261) and SHA-256 (RFC 8760).
enum class digest_algorithm { md5, sha256 };

/// The algorithm's token as on the wire: "MD5" or "SHA-256".
std::string_view digest_algorithm_name(digest_algorithm a) noexcept;

/// Reads an algorithm token, case-insensitively: "MD5", "SHA-256". Everything else, the -sess
/// variants included, is nullopt (the caller challenges again with what it supports).
std::optional<digest_algorithm> parse_digest_algorithm(std::string_view token) noexcept;

/// Lower-case hex digits of a digest of the algorithm: 32 for MD5, 64 for SHA-256.
std::size_t digest_hex_length(digest_algorithm a) noexcept;

/// HA1 = H(username ":" realm ":" password) in lower-case hex (RFC 7616 3.4.2). What a users file
/// stores instead of the password; it is a password equivalent within `realm`.
std::string digest_ha1(digest_algorithm a, std::string_view username, std::string_view realm,
                       std::string_view password);

/// Issues and checks nonces that need no server state: hex(timestamp || salt || tag) where the tag
/// is HMAC-SHA256(secret, label || timestamp || salt) cut to 128 bits. A nonce proves that this
/// secret's holder issued it, and when; a forged or altered one is refused, an old one is stale
/// (answered with a new challenge carrying stale=true, RFC 7616 3.3). Replays within max_age are
/// not detected here (that would need state: nonce counts per nonce).
class nonce_source {
 public:
  /// At least 16 bytes of secret (random, per peer); shorter throws std::invalid_argument.
  explicit nonce_source(std::span<const std::byte> secret);

  /// A fresh nonce (64 lower-case hex digits) for `now`; two calls never return the same one.
  std::string issue(std::chrono::system_clock::time_point now) const;

  enum class nonce_check {
    valid,    ///< issued with this secret no more than max_age from now
    stale,    ///< issued with this secret, but more than max_age before (or after) now
    invalid,  ///< not a nonce of this secret: malformed, forged or altered
  };
  /// Checks a nonce from an Authorization header. The tag is compared in constant time. A nonce
  /// from the future (the clock stepped back) is judged by the same window.
  nonce_check check(std::string_view nonce, std::chrono::system_clock::time_point now,
                    std::chrono::seconds max_age) const;

 private:
  std::vector<std::byte> secret_;
};

/// The WWW-Authenticate value of a challenge (RFC 7616 3.3, RFC 8760 2.4):
/// `Digest realm="R", nonce="N", [opaque="O", ][stale=true, ]algorithm=SHA-256, qop="auth"`.
/// Quoted values are escaped. A registrar sends one header per algorithm, SHA-256 first.
std::string make_challenge(digest_algorithm a, std::string_view realm, std::string_view nonce,
                           bool stale, std::string_view opaque = {});

/// The Authorization (or Proxy-Authorization) credentials of the Digest scheme, checked for form.
struct digest_credentials {
  std::string username;
  std::string realm;
  std::string nonce;
  std::string uri;       ///< the digest-uri as sent (the caller compares it to the Request-URI)
  std::string response;  ///< lower-cased hex, of the algorithm's length
  digest_algorithm algorithm = digest_algorithm::md5;  ///< MD5 when the parameter is absent
  std::optional<std::string> qop;                      ///< "auth" when present
  std::optional<std::string> cnonce;                   ///< present exactly when qop is
  std::optional<std::string> nc;  ///< 8 hex digits, present exactly when qop is
  std::optional<std::string> opaque;
};

/// Reads Digest credentials. Errors carry the status to act on:
///  - 400: a required parameter (username, realm, nonce, uri, response; cnonce and nc with qop) is
///    missing or malformed, or userhash=true / username* is used;
///  - 401: not the Digest scheme, an algorithm other than MD5 or SHA-256 (the -sess variants
///    included), or a qop other than "auth": the caller answers with a new challenge.
result<digest_credentials, parse_error> parse_digest_credentials(const auth_value& value);

/// The response the credentials should carry (lower-case hex), from HA1 in hex and the request's
/// method (RFC 7616 3.4.1): H(HA1:nonce:nc:cnonce:qop:H(method:uri)) with qop=auth, and
/// H(HA1:nonce:H(method:uri)) without qop (RFC 2069). Also what a client computes.
std::string digest_response(const digest_credentials& c, std::string_view ha1_hex,
                            std::string_view method);

/// True when the credentials' response is the one `ha1_hex` (of the credentials' algorithm) gives
/// for `method`. Compared in constant time. False for an HA1 of the wrong length. The caller has
/// already checked the nonce (nonce_source::check), the realm, the user and the digest-uri.
bool check_digest_response(const digest_credentials& c, std::string_view ha1_hex,
                           std::string_view method);

}  // namespace p2psip::sip
