#pragma once
// Botan objects behind tls_credentials: the TLS policy every link uses, the credentials manager
// that hands out the node's chain and the overlay roots, and a no-op session cache.

#include <memory>
#include <string>
#include <vector>

#include <botan/certstor.h>
#include <botan/credentials_manager.h>
#include <botan/pk_keys.h>
#include <botan/tls_policy.h>
#include <botan/tls_session_manager.h>
#include <botan/x509cert.h>

#include "p2psip/crypto/certificate.hpp"

namespace p2psip::transport::detail {

/// TLS 1.2 only; ECDHE key exchange only (Botan's default prefers CECPQ1, which Wireshark cannot
/// decrypt); ECDSA or RSA signatures; AEAD ciphers (AES-GCM, ChaCha20-Poly1305); the server
/// requires a client certificate (RFC 6940 section 6.6.1: mutual authentication) unless made
/// with client_certificates false (a stream_listener for clients without certificates: plain SIP
/// user agents); no renegotiation; no revocation lookups (overlay certificates are short-lived
/// and checked against the overlay root only).
class link_policy final : public Botan::TLS::Policy {
 public:
  explicit link_policy(bool client_certificates = true) noexcept
      : client_certificates_(client_certificates) {}
  std::vector<std::string> allowed_ciphers() const override;
  std::vector<std::string> allowed_signature_hashes() const override;
  std::vector<std::string> allowed_macs() const override;
  std::vector<std::string> allowed_key_exchange_methods() const override;
  std::vector<std::string> allowed_signature_methods() const override;
  bool allow_tls10() const override { return false; }
  bool allow_tls11() const override { return false; }
  bool allow_tls12() const override { return true; }
  bool allow_dtls10() const override { return false; }
  bool allow_dtls12() const override { return false; }
  bool acceptable_protocol_version(Botan::TLS::Protocol_Version version) const override;
  bool require_cert_revocation_info() const override { return false; }
  bool allow_client_initiated_renegotiation() const override { return false; }
  bool allow_server_initiated_renegotiation() const override { return false; }
  bool require_client_certificate_authentication() const override { return client_certificates_; }
  bool request_client_certificate_authentication() const override { return client_certificates_; }
  std::size_t maximum_certificate_chain_size() const override { return 32 * 1024; }
  std::uint32_t session_ticket_lifetime() const override { return 0; }

 private:
  bool client_certificates_;
};

/// Hands Botan the node's chain and key and the overlay roots, for both TLS roles.
class link_credentials_manager final : public Botan::Credentials_Manager {
 public:
  /// `client_certificates` false: as a TLS server, ask the client for no certificate (no
  /// CertificateRequest naming the roots).
  link_credentials_manager(const std::vector<Botan::X509_Certificate>& chain,
                           std::shared_ptr<Botan::Private_Key> key, Botan::Certificate_Store& roots,
                           bool client_certificates = true);

  std::vector<Botan::Certificate_Store*> trusted_certificate_authorities(
      const std::string& type, const std::string& context) override;
  std::vector<Botan::X509_Certificate> cert_chain(const std::vector<std::string>& cert_key_types,
                                                  const std::string& type,
                                                  const std::string& context) override;
  Botan::Private_Key* private_key_for(const Botan::X509_Certificate& cert, const std::string& type,
                                      const std::string& context) override;

 private:
  const std::vector<Botan::X509_Certificate>& chain_;
  std::shared_ptr<Botan::Private_Key> key_;
  Botan::Certificate_Store& roots_;
  bool client_certificates_;
};

/// Everything a link's TLS engine borrows from the credentials. Only const use after creation
/// (the Botan interfaces take non-const references but none of these overrides mutate).
struct credentials_state {
  /// Overlay credentials: peers are verified against `r` and read for Node-IDs of `o`.
  credentials_state(std::vector<Botan::X509_Certificate> c, std::shared_ptr<Botan::Private_Key> k,
                    std::vector<Botan::X509_Certificate> r, crypto::overlay_params o);
  /// Named-server credentials (tls_credentials::for_named_servers): servers are verified against
  /// `r`, or `system` when given, and by host name. `c` and `k` may be empty (no client
  /// certificate).
  credentials_state(std::vector<Botan::X509_Certificate> c, std::shared_ptr<Botan::Private_Key> k,
                    std::vector<Botan::X509_Certificate> r,
                    std::unique_ptr<Botan::Certificate_Store> system);

  std::vector<Botan::X509_Certificate> chain;
  std::shared_ptr<Botan::Private_Key> key;
  std::vector<Botan::X509_Certificate> roots;
  crypto::overlay_params overlay;
  /// Named-server credentials: servers are checked by host name instead of Node-ID.
  bool named_servers = false;
  /// The system's trust store, for named-server credentials without anchors of their own.
  std::unique_ptr<Botan::Certificate_Store> system_store;
  Botan::Certificate_Store_In_Memory root_store;
  link_policy policy;
  link_credentials_manager manager;
  /// The same for a server that asks no client certificate (stream_config's
  /// client_certificate_required false).
  link_policy anonymous_client_policy{false};
  link_credentials_manager anonymous_client_manager;
  Botan::TLS::Session_Manager_Noop sessions;
};

}  // namespace p2psip::transport::detail
