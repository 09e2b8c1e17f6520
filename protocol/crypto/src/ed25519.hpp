#pragma once
// Ed25519 (RFC 8032, pure) for RELOAD message and StoredData signatures, computed by libsodium:
// about twice as fast as Botan 2.19's for signing and verifying on our machines (issue 14).
// Ed25519 is deterministic, so a signature is the same bytes whichever library makes it; Botan
// still parses the keys (PKCS#8, X.509) and does TLS. botan_glue's signing/verification_scheme
// decide when this is used; node_identity and certificate hold the keys below, made once each.

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "p2psip/protocol/bytes.hpp"

namespace p2psip::crypto::detail {

inline constexpr std::size_t ed25519_seed_size = 32;
inline constexpr std::size_t ed25519_public_key_size = 32;
inline constexpr std::size_t ed25519_signature_size = 64;

using ed25519_public_key = std::array<std::uint8_t, ed25519_public_key_size>;

/// libsodium's signing key (seed || public key, 64 bytes) derived once from the RFC 8032 seed;
/// wiped when destroyed. Stateless to sign with, so any number of threads may sign at once.
class ed25519_signing_key {
 public:
  /// The key for a 32-byte seed (the PKCS#8 private key of RFC 8410); nullopt if libsodium
  /// cannot be initialised. Never throws.
  static std::optional<ed25519_signing_key> from_seed(
      std::span<const std::uint8_t, ed25519_seed_size> seed) noexcept;

  ed25519_signing_key(const ed25519_signing_key& other) noexcept;
  ed25519_signing_key& operator=(const ed25519_signing_key& other) noexcept;
  ~ed25519_signing_key();

  /// The public key the seed derives (what the certificate must carry).
  ed25519_public_key public_key() const noexcept;

  /// The 64-byte signature over `data`.
  protocol::bytes sign(protocol::byte_view data) const;

 private:
  ed25519_signing_key() noexcept = default;
  std::array<std::uint8_t, 64> secret_{};
};

/// Whether `signature` is a valid Ed25519 signature of `data` under `key`. A value that is not
/// 64 bytes, a non-canonical S, a small-order R or key are refused (libsodium is stricter than
/// Botan here; honest signers never produce those). Never throws; thread-safe.
bool ed25519_verify(const ed25519_public_key& key, protocol::byte_view data,
                    protocol::byte_view signature) noexcept;

}  // namespace p2psip::crypto::detail
