#pragma once
// A throwaway RELOAD identity for tests: an ECDSA P-256 key and a self-signed X.509 certificate
// binding a Node-ID (subjectAltName URI reload://0110<hex>@<overlay>/, RFC 6940 section 11.3) and
// a user name (rfc822Name). Generated at run time by the test PKI (test_pki.hpp); nothing is ever
// committed.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/data.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/message.hpp"
#include "p2psip/protocol/security.hpp"

namespace Botan {
class Private_Key;
class X509_Certificate;
}  // namespace Botan

namespace p2psip::test_support {

/// A key pair and certificate for one node. Copies share the key (cheap); every method is safe to
/// call from several threads at once.
class test_identity {
 public:
  /// Generates a fresh key and a certificate valid from one hour ago for `valid_days` days.
  /// Throws only if the crypto library fails.
  static test_identity generate(const protocol::node_id& node,
                                std::string_view user = "alice@example.org",
                                std::string_view overlay = "example.org",
                                unsigned valid_days = 365);

  const protocol::node_id& node() const noexcept;
  /// The rfc822Name of the certificate ("alice@example.org").
  const std::string& user() const noexcept;
  /// The overlay name in the reload:// URI ("example.org").
  const std::string& overlay() const noexcept;
  /// "reload://0110<node hex>@example.org/": the Destination encoding of the Node-ID, as a URI.
  const std::string& reload_uri() const noexcept;

  /// The certificate in DER.
  const protocol::bytes& certificate_der() const noexcept;
  /// GenericCertificate {x509, DER} for a security block.
  protocol::generic_certificate generic_certificate() const;
  /// SignerIdentity cert_hash: SHA-256 over the certificate DER.
  const protocol::signer_identity& signer() const noexcept;
  /// {sha256, ecdsa}: the SignatureAndHashAlgorithm of every signature this identity makes.
  static constexpr protocol::signature_and_hash_algorithm algorithm() noexcept {
    return {protocol::hash_algorithm::sha256, protocol::signature_algorithm::ecdsa};
  }

  /// ECDSA with SHA-256 over `data`; the DER-encoded (r, s) as TLS writes it.
  protocol::bytes sign(protocol::byte_view data) const;
  /// Checks a signature made by sign() (or by anyone holding this key).
  bool verify(protocol::byte_view data, protocol::byte_view signature) const;
  /// A whole Signature structure (algorithm, signer, value) over `input`.
  protocol::signature make_signature(protocol::byte_view input) const;

  /// For TLS tests that need Botan's own objects.
  const Botan::Private_Key& private_key() const noexcept;
  const Botan::X509_Certificate& certificate() const noexcept;

 private:
  struct impl;
  explicit test_identity(std::shared_ptr<impl> p) noexcept : impl_(std::move(p)) {}
  std::shared_ptr<impl> impl_;
};

/// Signs `m` as `id`: the security block gets id's certificate and a signature over
/// message_signature_input(overlay, transaction_id, contents, signer).
void sign_message(protocol::message& m, const test_identity& id);

/// Signs a StoredData value as `id` over data_signature_input(resource, kind, storage_time, value).
void sign_stored_data(protocol::stored_data& d, const protocol::resource_id& resource,
                      std::uint32_t kind, const test_identity& id);

/// Checks the signature of a message signed by `id` (security block signer and value).
bool verify_message(const protocol::message& m, const test_identity& id);

/// Checks the signature of a StoredData signed by `id` for (resource, kind).
bool verify_stored_data(const protocol::stored_data& d, const protocol::resource_id& resource,
                        std::uint32_t kind, const test_identity& id);

}  // namespace p2psip::test_support
