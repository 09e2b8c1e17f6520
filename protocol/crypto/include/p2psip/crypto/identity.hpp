#pragma once
// A node's private key with its certificate: what signs messages and stored values (and, for the
// link identity, what TLS presents).

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/crypto/certificate.hpp"

namespace Botan {
class Private_Key;
}  // namespace Botan

namespace p2psip::crypto {

/// A fresh private key of `type` as unencrypted PKCS#8 DER (for tools and tests; the overlay CA
/// certifies its public key). unsupported_algorithm for key_type::unknown; RSA keys are 2048
/// bits. Never throws.
result<protocol::bytes> generate_private_key(key_type type);

/// The subjectPublicKeyInfo (DER) of a PKCS#8 private key: what a certificate request carries.
result<protocol::bytes> public_key_info(protocol::byte_view pkcs8_der);

/// A certificate and its private key. Immutable; copies share the key (cheap); every member may
/// be called from several threads at once.
class node_identity {
 public:
  /// From a parsed certificate, its private key (unencrypted PKCS#8, DER or PEM) and the
  /// intermediate CA certificates between it and the root, if any (DER). Errors:
  /// bad_private_key, key_mismatch (the key is not the certificate's), unsupported_algorithm
  /// (a key we cannot sign with). Never throws.
  static result<node_identity> create(certificate cert, protocol::byte_view pkcs8,
                                      std::vector<protocol::bytes> chain = {});

  const certificate& cert() const noexcept;
  /// Intermediate CA certificates (DER), sent along with the certificate.
  const std::vector<protocol::bytes>& chain() const noexcept;
  key_type key() const noexcept;
  /// The SignatureAndHashAlgorithm of every signature this identity makes: {4,3} for ECDSA
  /// P-256 with SHA-256, {8,7} for Ed25519 (RFC 8422), {4,1} for RSA PKCS#1 v1.5 with SHA-256.
  protocol::signature_and_hash_algorithm algorithm() const noexcept;
  /// The Node-ID signatures are made as unless another is asked for: node_ids().front().
  const protocol::node_id& default_node_id() const noexcept;

  /// The raw signature over `data`: ECDSA as a DER Ecdsa-Sig-Value (as TLS carries it),
  /// Ed25519 as 64 bytes (by libsodium, with the key derived once at create(); the same bytes
  /// Botan would make), RSA as the modulus-sized PKCS#1 v1.5 value. signing_failed if the
  /// crypto library fails.
  result<protocol::bytes> sign(protocol::byte_view data) const;

  /// The private key as unencrypted PKCS#8 PEM ("PRIVATE KEY"): for writing credential files.
  std::string private_key_pem() const;
  /// Botan's key, for TLS.
  const Botan::Private_Key& private_key() const noexcept;
  /// The same key, owned with this identity (the pointer keeps the identity's state alive): TLS
  /// credentials hold it instead of a copy.
  std::shared_ptr<const Botan::Private_Key> shared_private_key() const noexcept;

 private:
  struct impl;
  explicit node_identity(std::shared_ptr<const impl> p) noexcept : impl_(std::move(p)) {}
  std::shared_ptr<const impl> impl_;
};

}  // namespace p2psip::crypto
