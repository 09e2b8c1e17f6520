#include "botan_glue.hpp"

#include <botan/auto_rng.h>
#include <botan/ecc_key.h>
#include <botan/hash.h>
#include <botan/pem.h>

#include <cstdio>
#include <limits>

namespace p2psip::crypto::detail {

namespace pr = p2psip::protocol;

sha256_digest sha256(pr::byte_view data) {
  // One hash object per thread: creating one per call costs more than hashing a certificate.
  thread_local const std::unique_ptr<Botan::HashFunction> h =
      Botan::HashFunction::create_or_throw("SHA-256");
  sha256_digest out{};
  h->update(data.data(), data.size());
  h->final(out.data());
  return out;
}

std::optional<std::string> hash_name(std::uint8_t tls_hash) noexcept {
  switch (tls_hash) {
    case pr::hash_algorithm::sha256: return std::string("SHA-256");
    case pr::hash_algorithm::sha384: return std::string("SHA-384");
    case pr::hash_algorithm::sha512: return std::string("SHA-512");
    default: return std::nullopt;
  }
}

pr::bytes hash(const std::string& name, pr::byte_view prefix, pr::byte_view data) {
  auto h = Botan::HashFunction::create_or_throw(name);
  h->update(prefix.data(), prefix.size());
  h->update(data.data(), data.size());
  const auto digest = h->final();
  return pr::bytes(digest.begin(), digest.end());
}

Botan::RandomNumberGenerator& thread_rng() {
  thread_local Botan::AutoSeeded_RNG rng;
  return rng;
}

std::chrono::system_clock::time_point to_time_point(const Botan::X509_Time& t) {
  using namespace std::chrono;
  // readable_string() is "YYYY/MM/DD HH:MM:SS UTC" for both UTCTime and GeneralizedTime.
  const std::string text = t.readable_string();
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (std::sscanf(text.c_str(), "%u/%u/%u %u:%u:%u", &y, &mo, &d, &h, &mi, &s) != 6) {
    return system_clock::time_point{};
  }
  const sys_days day{year{static_cast<int>(y)} / month{mo} / std::chrono::day{d}};
  const std::int64_t secs = std::int64_t{day.time_since_epoch().count()} * 86400 +
                            std::int64_t{h} * 3600 + std::int64_t{mi} * 60 + std::int64_t{s};
  const std::int64_t max_secs =
      duration_cast<seconds>(system_clock::time_point::max().time_since_epoch()).count() - 1;
  const std::int64_t min_secs =
      duration_cast<seconds>(system_clock::time_point::min().time_since_epoch()).count() + 1;
  if (secs >= max_secs) return system_clock::time_point::max();
  if (secs <= min_secs) return system_clock::time_point::min();
  return system_clock::time_point{duration_cast<system_clock::duration>(seconds{secs})};
}

std::optional<std::vector<pem_block>> pem_blocks(std::string_view text) {
  constexpr std::string_view begin = "-----BEGIN ";
  constexpr std::string_view dashes = "-----";
  std::vector<pem_block> out;
  std::size_t pos = 0;
  while ((pos = text.find(begin, pos)) != std::string_view::npos) {
    const std::size_t label_start = pos + begin.size();
    const std::size_t label_end = text.find(dashes, label_start);
    if (label_end == std::string_view::npos) return std::nullopt;
    const std::string label(text.substr(label_start, label_end - label_start));
    const std::string end_line = "-----END " + label + "-----";
    const std::size_t end = text.find(end_line, label_end);
    if (end == std::string_view::npos) return std::nullopt;
    const std::string block(text.substr(pos, end + end_line.size() - pos));
    try {
      std::string got_label;
      const auto der = Botan::PEM_Code::decode(block, got_label);
      out.push_back(pem_block{label, pr::bytes(der.begin(), der.end())});
    } catch (const std::exception&) {
      return std::nullopt;
    }
    pos = end + end_line.size();
  }
  return out;
}

std::string pem_encode(pr::byte_view der, const std::string& label) {
  return Botan::PEM_Code::encode(der.data(), der.size(), label);
}

key_type classify(const Botan::Public_Key& key) {
  const std::string alg = key.algo_name();
  if (alg == "RSA") return key_type::rsa;
  if (alg == "Ed25519") return key_type::ed25519;
  if (alg == "ECDSA") {
    const auto* ec = dynamic_cast<const Botan::EC_PublicKey*>(&key);
    if (ec == nullptr) return key_type::unknown;
    const std::string curve = ec->domain().get_curve_oid().to_formatted_string();
    if (curve == "secp256r1") return key_type::ecdsa_p256;
    if (curve == "secp384r1") return key_type::ecdsa_p384;
    if (curve == "secp521r1") return key_type::ecdsa_p521;
  }
  return key_type::unknown;
}

namespace {

std::optional<scheme> ecdsa_scheme(std::uint8_t tls_hash) {
  const auto name = hash_name(tls_hash);
  if (!name) return std::nullopt;
  // EMSA1 is Botan 2's "hash, then sign the digest", i.e. ECDSA as TLS uses it; DER_SEQUENCE
  // gives the ASN.1 Ecdsa-Sig-Value that TLS 1.2 (and so RELOAD) carries.
  return scheme{{tls_hash, pr::signature_algorithm::ecdsa}, "EMSA1(" + *name + ")", true};
}

std::optional<scheme> rsa_scheme(std::uint8_t tls_hash) {
  const auto name = hash_name(tls_hash);
  if (!name) return std::nullopt;
  // EMSA3 is PKCS#1 v1.5 (RSASSA-PKCS1-v1_5), the RFC's mandatory-to-implement algorithm.
  return scheme{{tls_hash, pr::signature_algorithm::rsa}, "EMSA3(" + *name + ")", false};
}

}  // namespace

std::optional<scheme> signing_scheme(key_type key) noexcept {
  try {
    switch (key) {
      case key_type::ed25519:
        // Botan's padding name stays for reference (TLS may still use Botan's Ed25519); messages
        // and values are signed and verified by libsodium.
        return scheme{{pr::hash_algorithm::intrinsic, pr::signature_algorithm::ed25519},
                      "Pure",
                      false,
                      signature_engine::sodium};
      case key_type::ecdsa_p256: return ecdsa_scheme(pr::hash_algorithm::sha256);
      case key_type::ecdsa_p384: return ecdsa_scheme(pr::hash_algorithm::sha384);
      case key_type::ecdsa_p521: return ecdsa_scheme(pr::hash_algorithm::sha512);
      case key_type::rsa: return rsa_scheme(pr::hash_algorithm::sha256);
      case key_type::unknown: return std::nullopt;
    }
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::optional<scheme> verification_scheme(pr::signature_and_hash_algorithm alg,
                                          key_type key) noexcept {
  try {
    switch (alg.signature) {
      case pr::signature_algorithm::ed25519:
        // RFC 8422: ed25519 is used with HashAlgorithm "intrinsic" (8).
        if (key != key_type::ed25519 || alg.hash != pr::hash_algorithm::intrinsic) break;
        return signing_scheme(key);
      case pr::signature_algorithm::ecdsa:
        if (key != key_type::ecdsa_p256 && key != key_type::ecdsa_p384 &&
            key != key_type::ecdsa_p521) {
          break;
        }
        return ecdsa_scheme(alg.hash);
      case pr::signature_algorithm::rsa:
        if (key != key_type::rsa) break;
        return rsa_scheme(alg.hash);
      default: break;
    }
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

}  // namespace p2psip::crypto::detail
