// HTTP Digest for SIP (RFC 3261 22, RFC 7616, RFC 8760): hashes and HMAC through Botan.

#include "p2psip/sip/digest.hpp"

#include <botan/hash.h>
#include <botan/hex.h>
#include <botan/mac.h>
#include <botan/mem_ops.h>
#include <botan/system_rng.h>

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include "text.hpp"

namespace p2psip::sip {

namespace {

using detail::iequals;
using detail::quote;

// Sizes of a nonce's parts, in bytes: timestamp (seconds since the epoch, big-endian, two's
// complement), salt (makes every nonce unique), tag (HMAC-SHA256 cut to 128 bits).
constexpr std::size_t nonce_time_bytes = 8;
constexpr std::size_t nonce_salt_bytes = 8;
constexpr std::size_t nonce_tag_bytes = 16;
constexpr std::size_t nonce_bytes = nonce_time_bytes + nonce_salt_bytes + nonce_tag_bytes;
constexpr std::size_t min_secret_bytes = 16;
// Domain separation: the secret may one day key other MACs too.
constexpr std::string_view nonce_label = "p2psip digest nonce v1";

const char* botan_name(digest_algorithm a) noexcept {
  return a == digest_algorithm::sha256 ? "SHA-256" : "MD5";
}

// Creating a Botan hash or MAC looks its name up and allocates, which cost more than hashing the
// few dozen bytes of a digest or a nonce (the REGISTER profile showed the creations, not the
// hashing). One object per algorithm and thread, reused: final() leaves it ready for the next.
Botan::HashFunction& reused_hash(digest_algorithm a) {
  thread_local std::unique_ptr<Botan::HashFunction> md5;
  thread_local std::unique_ptr<Botan::HashFunction> sha256;
  auto& slot = a == digest_algorithm::sha256 ? sha256 : md5;
  if (!slot) slot = Botan::HashFunction::create_or_throw(botan_name(a));
  return *slot;
}

// H(data) in lower-case hex.
std::string hash_hex(digest_algorithm a, std::string_view data) {
  auto& h = reused_hash(a);
  h.update(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  std::array<std::uint8_t, 32> digest{};  // SHA-256's 32 bytes or MD5's 16
  const std::size_t length = h.output_length();
  h.final(digest.data());
  std::string out(2 * length, '\0');
  Botan::hex_encode(out.data(), digest.data(), length, false);
  return out;
}

bool is_lower_hex(std::string_view s) noexcept {
  for (char c : s) {
    if (!detail::is_digit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

// Equal in time that depends only on the lengths (which are public: fixed by the algorithm).
bool equal_constant_time(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  return Botan::constant_time_compare(reinterpret_cast<const std::uint8_t*>(a.data()),
                                      reinterpret_cast<const std::uint8_t*>(b.data()), a.size());
}

std::array<std::uint8_t, nonce_tag_bytes> nonce_tag(const std::vector<std::byte>& secret,
                                                    const std::uint8_t* time_and_salt) {
  // Reused per thread like the hashes above; keyed on every call (sources differ in secret).
  thread_local std::unique_ptr<Botan::MessageAuthenticationCode> reused_mac;
  if (!reused_mac) reused_mac = Botan::MessageAuthenticationCode::create_or_throw("HMAC(SHA-256)");
  auto& mac = *reused_mac;
  mac.set_key(reinterpret_cast<const std::uint8_t*>(secret.data()), secret.size());
  mac.update(reinterpret_cast<const std::uint8_t*>(nonce_label.data()), nonce_label.size());
  mac.update(time_and_salt, nonce_time_bytes + nonce_salt_bytes);
  std::array<std::uint8_t, 32> full{};
  mac.final(full.data());
  std::array<std::uint8_t, nonce_tag_bytes> tag{};
  std::copy_n(full.begin(), tag.size(), tag.begin());
  return tag;
}

std::int64_t seconds_since_epoch(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

parse_error malformed(std::string_view what) {
  return bad_request("Malformed Authorization: " + std::string(what));
}

}  // namespace

std::string_view digest_algorithm_name(digest_algorithm a) noexcept {
  return a == digest_algorithm::sha256 ? "SHA-256" : "MD5";
}

std::optional<digest_algorithm> parse_digest_algorithm(std::string_view token) noexcept {
  if (iequals(token, "MD5")) return digest_algorithm::md5;
  if (iequals(token, "SHA-256")) return digest_algorithm::sha256;
  return std::nullopt;
}

std::size_t digest_hex_length(digest_algorithm a) noexcept {
  return a == digest_algorithm::sha256 ? 64 : 32;
}

std::string digest_ha1(digest_algorithm a, std::string_view username, std::string_view realm,
                       std::string_view password) {
  std::string input;
  input.reserve(username.size() + realm.size() + password.size() + 2);
  input.append(username).append(":").append(realm).append(":").append(password);
  std::string out = hash_hex(a, input);
  // The input holds the password: do not leave it in freed memory.
  Botan::secure_scrub_memory(input.data(), input.size());
  return out;
}

// ---- nonces ----

nonce_source::nonce_source(std::span<const std::byte> secret)
    : secret_(secret.begin(), secret.end()) {
  if (secret_.size() < min_secret_bytes) {
    throw std::invalid_argument("nonce_source: the secret must have at least 16 bytes");
  }
}

std::string nonce_source::issue(std::chrono::system_clock::time_point now) const {
  std::array<std::uint8_t, nonce_bytes> raw{};
  const auto t = static_cast<std::uint64_t>(seconds_since_epoch(now));
  for (std::size_t i = 0; i < nonce_time_bytes; ++i) {
    raw[i] = static_cast<std::uint8_t>(t >> (8 * (nonce_time_bytes - 1 - i)));
  }
  Botan::system_rng().randomize(raw.data() + nonce_time_bytes, nonce_salt_bytes);
  const auto tag = nonce_tag(secret_, raw.data());
  std::copy(tag.begin(), tag.end(), raw.begin() + nonce_time_bytes + nonce_salt_bytes);
  return Botan::hex_encode(raw.data(), raw.size(), false);
}

nonce_source::nonce_check nonce_source::check(std::string_view nonce,
                                              std::chrono::system_clock::time_point now,
                                              std::chrono::seconds max_age) const {
  // Only what issue() writes: lower-case hex of the exact length.
  if (nonce.size() != 2 * nonce_bytes || !is_lower_hex(nonce)) return nonce_check::invalid;
  std::array<std::uint8_t, nonce_bytes> raw{};
  if (Botan::hex_decode(raw.data(), nonce.data(), nonce.size(), false) != raw.size()) {
    return nonce_check::invalid;
  }
  const auto tag = nonce_tag(secret_, raw.data());
  if (!Botan::constant_time_compare(tag.data(), raw.data() + nonce_time_bytes + nonce_salt_bytes,
                                    tag.size())) {
    return nonce_check::invalid;
  }
  std::uint64_t t = 0;
  for (std::size_t i = 0; i < nonce_time_bytes; ++i) t = (t << 8) | raw[i];
  const auto issued = static_cast<std::int64_t>(t);
  const std::int64_t current = seconds_since_epoch(now);
  // 64-bit seconds: a difference of two real times cannot overflow; a forged one never gets here.
  const std::int64_t age = current >= issued ? current - issued : issued - current;
  return age <= max_age.count() ? nonce_check::valid : nonce_check::stale;
}

// ---- challenge ----

std::string make_challenge(digest_algorithm a, std::string_view realm, std::string_view nonce,
                           bool stale, std::string_view opaque) {
  std::string out = "Digest realm=" + quote(realm) + ", nonce=" + quote(nonce);
  if (!opaque.empty()) out += ", opaque=" + quote(opaque);
  if (stale) out += ", stale=true";
  out += ", algorithm=";
  out += digest_algorithm_name(a);
  out += ", qop=\"auth\"";
  return out;
}

// ---- credentials ----

result<digest_credentials, parse_error> parse_digest_credentials(const auth_value& value) {
  if (!iequals(value.scheme, "Digest")) {
    return parse_error{401, "Authorization scheme '" + value.scheme + "' is not Digest"};
  }
  digest_credentials c;
  if (const auto alg = value.get("algorithm")) {
    const auto a = parse_digest_algorithm(*alg);
    if (!a) return parse_error{401, "Unsupported digest algorithm '" + *alg + "'"};
    c.algorithm = *a;
  }
  // username* (RFC 8187 encoding) and userhash are HTTP features: refused rather than misread.
  if (value.get("username*")) return malformed("username* is not supported");
  if (const auto h = value.get("userhash"); h && iequals(*h, "true")) {
    return malformed("userhash is not supported");
  }
  struct required {
    std::string_view name;
    std::string* out;
  };
  for (const required& r :
       {required{"username", &c.username}, required{"realm", &c.realm}, required{"nonce", &c.nonce},
        required{"uri", &c.uri}, required{"response", &c.response}}) {
    auto v = value.get(r.name);
    if (!v) return malformed("no " + std::string(r.name));
    *r.out = std::move(*v);
  }
  if (c.username.empty()) return malformed("empty username");
  if (c.nonce.empty()) return malformed("empty nonce");
  if (c.uri.empty()) return malformed("empty uri");
  c.response = detail::to_lower(c.response);
  if (c.response.size() != digest_hex_length(c.algorithm) || !is_lower_hex(c.response)) {
    return malformed("response is not " + std::to_string(digest_hex_length(c.algorithm)) +
                     " hex digits");
  }
  c.opaque = value.get("opaque");
  if (auto qop = value.get("qop")) {
    if (!iequals(*qop, "auth")) return parse_error{401, "Unsupported qop '" + *qop + "'"};
    c.qop = "auth";
    c.cnonce = value.get("cnonce");
    c.nc = value.get("nc");
    if (!c.cnonce || c.cnonce->empty()) return malformed("qop without cnonce");
    if (!c.nc) return malformed("qop without nc");
    // nc-value = 8LHEX (upper case read too: some clients write it so).
    *c.nc = detail::to_lower(*c.nc);
    if (c.nc->size() != 8 || !is_lower_hex(*c.nc)) return malformed("nc is not 8 hex digits");
  } else if (value.get("cnonce") || value.get("nc")) {
    // RFC 7616 3.4: cnonce and nc MUST NOT be sent without qop.
    return malformed("cnonce or nc without qop");
  }
  return c;
}

std::string digest_response(const digest_credentials& c, std::string_view ha1_hex,
                            std::string_view method) {
  const std::string ha2 = hash_hex(c.algorithm, std::string(method) + ":" + c.uri);
  std::string input(ha1_hex);
  input += ":" + c.nonce + ":";
  if (c.qop) input += c.nc.value_or("") + ":" + c.cnonce.value_or("") + ":" + *c.qop + ":";
  input += ha2;
  return hash_hex(c.algorithm, input);
}

bool check_digest_response(const digest_credentials& c, std::string_view ha1_hex,
                           std::string_view method) {
  if (ha1_hex.size() != digest_hex_length(c.algorithm)) return false;
  return equal_constant_time(digest_response(c, ha1_hex, method), c.response);
}

}  // namespace p2psip::sip
