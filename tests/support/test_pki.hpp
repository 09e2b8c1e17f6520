#pragma once
// The one throwaway PKI of the tests and benchmarks (p2psip::test_pki): overlay CAs (roots and
// intermediates) and node certificates they issue, with reload:// Node-ID URIs and rfc822Name
// users (RFC 6940 section 11.3), for ECDSA P-256, Ed25519 and RSA keys, plus self-signed node
// certificates. Everything is made with Botan at test time; nothing is committed or written to
// disk. TLS link credentials built on it are in test_pki_tls.hpp (p2psip::test_pki_tls).

#include <botan/pk_keys.h>
#include <botan/x509cert.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "p2psip/crypto/certificate.hpp"
#include "p2psip/crypto/identity.hpp"
#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/ids.hpp"

namespace Botan {
class RandomNumberGenerator;
}  // namespace Botan

namespace p2psip::test_pki {

using time_point = std::chrono::system_clock::time_point;
using crypto::key_type;

/// The overlay of the tests: "example.org" with 16-byte Node-IDs.
const crypto::overlay_params& example_overlay();

/// "Now" for certificate validity: fixed for the process, in whole seconds (X.509 times have no
/// fractions), so tests can ask about exact instants around a certificate's validity.
time_point test_now();

/// This thread's random generator (an AutoSeeded_RNG, as the crypto library uses): for test code
/// that calls Botan itself. Each thread has its own; do not hand it to another thread.
Botan::RandomNumberGenerator& rng();

/// Botan's object for an unencrypted PKCS#8 key (DER), as crypto::generate_private_key makes.
/// Throws (Botan exceptions) if the bytes are not a key.
std::unique_ptr<Botan::Private_Key> load_key(const protocol::bytes& pkcs8);

/// A Node-ID (default length) derived from `seed`: the same seed always gives the same id.
protocol::node_id test_node(std::uint8_t seed);
/// A random Node-ID of the default length (first byte below 0x80, so never all ones).
protocol::node_id random_node_id();

/// How a certificate writes a Node-ID: the RFC's reload://0110<hex>@<overlay>/ or the bare
/// reload://<hex>@<overlay> that danpascu/reload writes.
enum class uri_form { rfc, bare };
/// The reload:// URI of `id` in `overlay`, written in `form`.
std::string uri_for(const protocol::node_id& id, const std::string& overlay, uri_form form);

/// What a node certificate holds.
struct cert_spec {
  std::vector<protocol::node_id> nodes;    ///< one reload:// URI each (none: no Node-ID)
  std::string user = "alice@example.org";  ///< the rfc822Name; none when empty
  std::string overlay = "example.org";     ///< the host part of the reload:// URIs
  uri_form form = uri_form::rfc;
  time_point not_before = test_now() - std::chrono::hours(1);
  time_point not_after = test_now() + std::chrono::hours(24 * 30);
  std::vector<std::string> extra_uris;   ///< more SAN URIs, verbatim
  std::vector<std::string> extra_users;  ///< more rfc822Names
  /// Extended key usages (OIDs, dotted or by Botan's name); none: no such extension.
  std::vector<std::string> extended_usages;
  /// dNSName and iPAddress (IPv4) subjectAltNames: a TLS server named by host (a SIP trunk).
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
};

/// A TLS server certificate's spec: no Node-ID, no user, the DNS names `dns` and IPv4
/// addresses `ips`.
cert_spec server_spec(std::vector<std::string> dns, std::vector<std::string> ips = {});

/// A spec for `nodes` and `user`, the rest default.
cert_spec spec_for(std::vector<protocol::node_id> nodes, std::string user = "alice@example.org");
/// What the links of the transport tests present: `nodes` of `overlay` and the user
/// "node@<overlay>".
cert_spec link_spec(std::vector<protocol::node_id> nodes, std::string overlay = "example.org");

/// A certificate and its private key as Botan objects (what TLS takes).
struct issued_certificate {
  Botan::X509_Certificate certificate;
  std::shared_ptr<Botan::Private_Key> key;
};

/// An overlay CA. Copies share the key (cheap); every method may be called from several threads
/// at once. Throws only if the crypto library fails.
class test_ca {
 public:
  /// A self-signed root CA named `name` with a `key` key, valid from `not_before` to `not_after`.
  explicit test_ca(const std::string& name = "p2psip test root",
                   key_type key = key_type::ecdsa_p256,
                   time_point not_before = test_now() - std::chrono::hours(2),
                   time_point not_after = test_now() + std::chrono::hours(24 * 365));

  /// An intermediate CA (ECDSA P-256, path length 0) signed by this one.
  test_ca intermediate(const std::string& name) const;

  /// A node certificate (DER) for the public key of `pkcs8` per `spec`: empty subject DN
  /// (RFC 6940 section 11.3), the Node-IDs and users as subjectAltNames, digitalSignature and
  /// spec.extended_usages.
  protocol::bytes certify(const protocol::bytes& pkcs8, const cert_spec& spec) const;
  /// The same for a fresh `key` key, both as Botan objects.
  issued_certificate issue(const cert_spec& spec, key_type key = key_type::ecdsa_p256) const;

  /// This CA's certificate.
  const protocol::bytes& der() const noexcept;
  const Botan::X509_Certificate& certificate() const noexcept;

 private:
  struct impl;
  explicit test_ca(std::shared_ptr<const impl> p) noexcept : impl_(std::move(p)) {}
  std::shared_ptr<const impl> impl_;
};

/// A fresh `key` key with a certificate from `ca` per `spec`, as a node identity of
/// spec.overlay (16-byte Node-IDs) sending `chain` along. Throws std::runtime_error if the
/// crypto library refuses it.
crypto::node_identity make_identity(const test_ca& ca, const cert_spec& spec,
                                    key_type key = key_type::ecdsa_p256,
                                    std::vector<protocol::bytes> chain = {});

/// A self-signed node certificate (DER) for the public key of `pkcs8` per `spec` (the overlay's
/// self-signed mode): the subject and issuer are CN=<user> (or "p2psip test node" without one).
protocol::bytes self_signed(const protocol::bytes& pkcs8, const cert_spec& spec);

}  // namespace p2psip::test_pki
