#pragma once
// A RELOAD node certificate (RFC 6940 section 11.3): an X.509 certificate whose subjectAltName
// holds one or more Node-IDs as reload:// URIs and one user name as an rfc822Name.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/crypto/errors.hpp"
#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/result.hpp"
#include "p2psip/protocol/security.hpp"

namespace Botan {
class X509_Certificate;
class Public_Key;
}  // namespace Botan

namespace p2psip::crypto {

using protocol::result;
using time_point = std::chrono::system_clock::time_point;

/// What an overlay's certificates are read against: its name (the host part of the reload://
/// URIs) and NodeIdLength (the <node-id-length> of the configuration, 16..20).
struct overlay_params {
  std::string name;
  std::size_t node_id_length = protocol::default_node_id_length;
};

/// The public key algorithm of a certificate.
enum class key_type : std::uint8_t {
  unknown = 0,
  rsa,
  ecdsa_p256,
  ecdsa_p384,
  ecdsa_p521,
  ed25519,
};
/// "RSA", "ECDSA-P256", "ECDSA-P384", "ECDSA-P521", "Ed25519", "unknown".
std::string_view key_type_name(key_type k) noexcept;

/// The Node-ID of a reload:// URI naming a peer of `overlay` (RFC 6940 section 14.15). Both
/// `reload://<hex of Destination 01 len id>@<overlay>/` (the RFC's form) and
/// `reload://<hex of id>@<overlay>` (danpascu/reload's form) are read; hex is case-insensitive,
/// the overlay name is compared without regard to ASCII case. A URI with a specifier (addressing
/// data, not a peer) or a destination list other than one node entry is bad_reload_uri; another
/// overlay is wrong_overlay.
result<protocol::node_id> parse_reload_uri(std::string_view uri, const overlay_params& overlay);
/// The RFC form: "reload://0110<id hex>@<overlay>/".
std::string make_reload_uri(const protocol::node_id& id, std::string_view overlay);

/// A parsed node certificate, in full (parse) or compact (parse_compact) form. Immutable; copies
/// share the parsed state (cheap); safe to use from several threads at once.
class certificate {
 public:
  /// Parses DER. Fails with malformed_certificate, no_node_id (no reload:// URI for any overlay),
  /// wrong_overlay (reload:// URIs only for other overlays), bad_reload_uri (a URI for this
  /// overlay that cannot be read) or multiple_user_names. Never throws.
  static result<certificate> parse(protocol::byte_view der, const overlay_params& overlay);
  /// Parses like parse() (same checks, same errors) but keeps only what identifying a signer and
  /// verifying its signatures need, as plain fields: the DER and its SHA-256, the Node-IDs, the
  /// user, the validity, the key type and the public key (Ed25519: its 32 raw bytes; ECDSA and
  /// RSA: Botan's public key object). Botan's parsed X.509 certificate (its subject, issuer and
  /// extensions as string maps, about 6 KiB) is dropped; botan_certificate() parses the DER again
  /// on its first call and keeps that (avoid it on a cached certificate: the trust store's chain
  /// check does). ECDSA and RSA verifications build their Botan verifier each time instead of
  /// keeping one (its precomputed tables would cost more than the rest). What a trust store's
  /// cache holds for every node that signs. Never throws.
  static result<certificate> parse_compact(protocol::byte_view der, const overlay_params& overlay);
  /// Like parse() (compact false) or parse_compact() (true), on Botan's parse of `der` that the
  /// caller made already (loading credentials asks of each block whether it is a CA first): the
  /// DER is not parsed again. A full certificate keeps a copy of `parsed` (Botan shares its
  /// decoded fields between copies). Never throws.
  static result<certificate> from_parsed(protocol::byte_view der,
                                         const Botan::X509_Certificate& parsed,
                                         const overlay_params& overlay, bool compact);
  /// Whether this certificate came from parse_compact (its Botan certificate is not kept).
  bool compact() const noexcept;

  /// The certificate's Node-IDs for this overlay, without duplicates, in the order the
  /// subjectAltName lists them as Botan reports them (sorted by URI text). Never empty.
  const std::vector<protocol::node_id>& node_ids() const noexcept;
  bool has_node_id(const protocol::node_id& id) const noexcept;
  /// The rfc822Name (user name); empty when the certificate has none.
  const std::string& user() const noexcept;
  time_point not_before() const noexcept;
  time_point not_after() const noexcept;
  /// not_before <= now <= not_after (this certificate only; the trust store checks the chain).
  bool valid_at(time_point now) const noexcept;
  key_type key() const noexcept;
  /// The DER bytes as given.
  const protocol::bytes& der() const noexcept;
  /// SHA-256 of the DER: the cert_hash of a SignerIdentity and the trust store's cache key.
  const std::array<std::uint8_t, 32>& sha256() const noexcept;
  /// GenericCertificate {X.509, DER} for a security block.
  protocol::generic_certificate generic() const;

  /// The SignerIdentity for signing as `node` (RFC 6940 section 6.3.4): cert_hash (SHA-256 of
  /// the DER) when the certificate holds one Node-ID, cert_hash_node_id (SHA-256 of
  /// Node-ID || DER) when it holds several. node_id_not_in_certificate if it lacks `node`.
  result<protocol::signer_identity> signer_identity_for(const protocol::node_id& node) const;
  /// The Node-ID `id` designates if it designates this certificate: cert_hash -> the single
  /// Node-ID (wrong_signer_identity_type when there are several); cert_hash_node_id -> the
  /// Node-ID whose hash matches. signer_not_found when it designates another certificate,
  /// unsupported_signer_identity for a type or hash algorithm we do not accept.
  result<protocol::node_id> match(const protocol::signer_identity& id) const;

  /// Verifies a raw signature value over `data` with this certificate's public key under `alg`
  /// (ECDSA values DER-encoded, Ed25519 64 bytes, RSA PKCS#1 v1.5). unsupported_algorithm when
  /// `alg` is unknown or not this key's algorithm, bad_signature when the value does not verify.
  /// Never throws; safe from several threads. Ed25519 is verified by libsodium with the public
  /// key taken once at parse (stateless; a value that is not 64 bytes is bad_signature); for
  /// ECDSA and RSA one Botan verifier is kept per certificate and used by one thread at a time
  /// (others build their own).
  result<void> verify(protocol::signature_and_hash_algorithm alg, protocol::byte_view data,
                      protocol::byte_view signature) const;

  /// Botan's objects, for TLS and for the rest of this library. On a compact certificate the
  /// first call parses the DER again (it parsed before, so it parses again; only running out of
  /// memory could fail it, which terminates) and keeps the result.
  const Botan::X509_Certificate& botan_certificate() const noexcept;
  const Botan::Public_Key& public_key() const noexcept;

  friend bool operator==(const certificate& a, const certificate& b) noexcept {
    return a.sha256() == b.sha256();
  }

 private:
  struct impl;
  explicit certificate(std::shared_ptr<const impl> p) noexcept : impl_(std::move(p)) {}
  static result<certificate> parse_as(protocol::byte_view der, const overlay_params& overlay,
                                      bool compact);
  static result<certificate> from_botan(protocol::byte_view der,
                                        std::unique_ptr<Botan::X509_Certificate> cert,
                                        const overlay_params& overlay, bool compact);
  std::shared_ptr<const impl> impl_;
};

}  // namespace p2psip::crypto
