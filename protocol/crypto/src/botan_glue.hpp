#pragma once
// Private helpers shared by the crypto sources: hashes, the per-thread RNG, X.509 times, and the
// one place that maps TLS signature algorithm numbers to how we compute them (Botan's padding
// names, or libsodium for Ed25519).

#include <botan/asn1_time.h>
#include <botan/pk_keys.h>
#include <botan/rng.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/crypto/certificate.hpp"
#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/security.hpp"

namespace p2psip::crypto::detail {

using sha256_digest = std::array<std::uint8_t, 32>;

sha256_digest sha256(protocol::byte_view data);

/// Botan's name of a TLS HashAlgorithm we accept in signatures and SignerIdentity
/// ("SHA-256", "SHA-384", "SHA-512"); nullopt for anything else (MD5, SHA-1, SHA-224 are refused).
std::optional<std::string> hash_name(std::uint8_t tls_hash) noexcept;

/// H(prefix || data) with the named hash.
protocol::bytes hash(const std::string& name, protocol::byte_view prefix, protocol::byte_view data);

/// A random number generator for the calling thread (Botan's RNGs are not thread-safe).
Botan::RandomNumberGenerator& thread_rng();

/// A certificate time as a system_clock time point, clamped to the clock's range (a notAfter of
/// 9999-12-31 does not fit system_clock's nanoseconds).
std::chrono::system_clock::time_point to_time_point(const Botan::X509_Time& t);

/// One PEM block: its label ("CERTIFICATE", "PRIVATE KEY") and decoded bytes.
struct pem_block {
  std::string label;
  protocol::bytes der;
};
/// Every PEM block of `text`, in order; text outside blocks is ignored. nullopt when a block
/// is not closed or its base64 does not decode.
std::optional<std::vector<pem_block>> pem_blocks(std::string_view text);
/// A PEM block with `label` around `der`.
std::string pem_encode(protocol::byte_view der, const std::string& label);

/// What a key is, from Botan's algorithm name and (for ECDSA) its curve.
key_type classify(const Botan::Public_Key& key);

/// Which library computes a message or StoredData signature.
enum class signature_engine : std::uint8_t {
  botan,   ///< Botan's PK_Signer / PK_Verifier with the scheme's padding (ECDSA, RSA)
  sodium,  ///< libsodium's Ed25519 (ed25519.hpp): about twice Botan 2.19's rate, same bytes
};

/// How we sign or verify for the signature algorithm of a key type: the engine, and for Botan
/// the padding/EMSA name and whether the value is DER (ECDSA, as in TLS) or raw.
struct scheme {
  protocol::signature_and_hash_algorithm algorithm;
  std::string padding;
  bool der_sequence = false;
  signature_engine engine = signature_engine::botan;
};
/// The scheme we sign with for a key type; nullopt when we cannot sign with it.
std::optional<scheme> signing_scheme(key_type key) noexcept;
/// The scheme to verify `alg` with a key of type `key`; nullopt when they do not fit.
std::optional<scheme> verification_scheme(protocol::signature_and_hash_algorithm alg,
                                          key_type key) noexcept;

}  // namespace p2psip::crypto::detail
