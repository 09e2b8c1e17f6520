#pragma once
// What a node presents on its TLS links and what it trusts: its certificate chain and key, and
// the overlay's root certificate(s). Built once, shared (read-only) by every link of the node.

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <botan/pk_keys.h>
#include <botan/x509cert.h>

#include "p2psip/crypto/certificate.hpp"
#include "p2psip/crypto/identity.hpp"
#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::transport {

namespace detail {
struct credentials_state;
}

/// The node's TLS identity and trust anchors for one overlay. Immutable after creation; safe to
/// share between threads and links.
class tls_credentials {
 public:
  /// `chain`: the node's link certificate first, then any intermediates up to (not including) a
  /// root. `key`: the private key of the first certificate (ECDSA P-256 or RSA; Botan 2's TLS does
  /// not take Ed25519). `roots`: the overlay root(s) peer chains must verify against. `overlay`:
  /// the overlay name and NodeIdLength with which peer certificates are read for Node-IDs. Fails
  /// with transport_errc::invalid_credentials when a list is empty, the overlay name is empty, the
  /// key does not match the certificate, or the key type cannot sign TLS 1.2 handshakes.
  static protocol::result<std::shared_ptr<const tls_credentials>> create(
      std::vector<Botan::X509_Certificate> chain, std::shared_ptr<Botan::Private_Key> key,
      std::vector<Botan::X509_Certificate> roots, crypto::overlay_params overlay);

  /// The same from PEM text: one or more certificates (node first), an unencrypted PKCS #8 key,
  /// and one or more root certificates.
  static protocol::result<std::shared_ptr<const tls_credentials>> from_pem(
      std::string_view chain_pem, std::string_view key_pem, std::string_view roots_pem,
      crypto::overlay_params overlay);

  /// From the crypto library's link identity (crypto::credentials::link) and the overlay's root
  /// certificates in DER (the configuration's <root-cert> elements).
  static protocol::result<std::shared_ptr<const tls_credentials>> from_identity(
      const crypto::node_identity& link_identity, std::span<const protocol::bytes> roots_der,
      crypto::overlay_params overlay);
  /// The same with the roots parsed already (several nodes of one process share their parse).
  static protocol::result<std::shared_ptr<const tls_credentials>> from_identity(
      const crypto::node_identity& link_identity, std::vector<Botan::X509_Certificate> roots,
      crypto::overlay_params overlay);

  /// For a TLS client that reaches servers named by host, not by Node-ID (a SIP trunk: RFC 3261
  /// 26.3.1, RFC 5922 7): the server's chain must verify against `trusted`, or, when it is
  /// empty, the system's store (Botan::System_Certificate_Store: /etc/ssl/certs on Debian), and
  /// its certificate must name the host given as stream_config::server_name (sent as SNI unless
  /// it is an IP address). `chain` and `key`: a client certificate for servers that ask for one
  /// (mutual TLS), or both empty. Such credentials serve only the client role. Errors
  /// (transport_errc::invalid_credentials, the message saying why): a key without chain or the
  /// reverse, a key that does not match the certificate or cannot sign TLS 1.2 handshakes, a
  /// system store that cannot be read.
  static protocol::result<std::shared_ptr<const tls_credentials>, protocol::error_record>
  for_named_servers(std::vector<Botan::X509_Certificate> trusted,
                    std::vector<Botan::X509_Certificate> chain = {},
                    std::shared_ptr<Botan::Private_Key> key = nullptr);

  /// The same from PEM text: `trusted_pem` one or more CA certificates (empty: the system store),
  /// `chain_pem` the client certificate first then intermediates, `key_pem` its unencrypted
  /// PKCS #8 key (both empty: no client certificate).
  static protocol::result<std::shared_ptr<const tls_credentials>, protocol::error_record>
  for_named_servers_pem(std::string_view trusted_pem, std::string_view chain_pem = {},
                        std::string_view key_pem = {});

  /// True for credentials made by for_named_servers(): peers are checked by host name, never by
  /// Node-ID.
  bool verifies_server_names() const noexcept;

  /// The overlay peer certificates are read for (empty for named-server credentials).
  const crypto::overlay_params& overlay() const noexcept;

  const std::vector<Botan::X509_Certificate>& chain() const noexcept;
  const std::vector<Botan::X509_Certificate>& roots() const noexcept;

  /// Internal state shared with the links (Botan policy, credentials manager).
  detail::credentials_state& state() const noexcept { return *state_; }

  explicit tls_credentials(std::unique_ptr<detail::credentials_state> s) noexcept;
  ~tls_credentials();
  tls_credentials(const tls_credentials&) = delete;
  tls_credentials& operator=(const tls_credentials&) = delete;

 private:
  std::unique_ptr<detail::credentials_state> state_;
};

}  // namespace p2psip::transport
