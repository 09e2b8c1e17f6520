#include "p2psip/crypto/errors.hpp"

namespace p2psip::crypto {

namespace {

class crypto_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "p2psip.crypto"; }
  std::string message(int value) const override {
    switch (static_cast<crypto_errc>(value)) {
      case crypto_errc::ok: return "success";
      case crypto_errc::malformed_certificate: return "malformed X.509 certificate";
      case crypto_errc::unsupported_certificate_type: return "certificate type is not X.509";
      case crypto_errc::no_node_id: return "certificate holds no Node-ID for this overlay";
      case crypto_errc::wrong_overlay: return "certificate belongs to another overlay";
      case crypto_errc::bad_reload_uri: return "certificate holds an unreadable reload:// URI";
      case crypto_errc::multiple_user_names: return "certificate holds several user names";
      case crypto_errc::not_a_ca: return "root certificate is not a CA certificate";
      case crypto_errc::untrusted_certificate:
        return "certificate does not chain to a root of the overlay";
      case crypto_errc::invalid_certificate_chain: return "certificate chain is invalid";
      case crypto_errc::certificate_expired: return "certificate has expired";
      case crypto_errc::certificate_not_yet_valid: return "certificate is not yet valid";
      case crypto_errc::self_signed_node_id_mismatch:
        return "self-signed certificate: Node-ID does not match the public key";
      case crypto_errc::unsigned_signature: return "value or message is unsigned";
      case crypto_errc::unsupported_signer_identity: return "unsupported SignerIdentity";
      case crypto_errc::signer_not_found: return "no certificate matches the SignerIdentity";
      case crypto_errc::wrong_signer_identity_type:
        return "cert_hash used with a certificate holding several Node-IDs";
      case crypto_errc::unsupported_algorithm: return "unsupported signature algorithm";
      case crypto_errc::bad_signature: return "signature does not verify";
      case crypto_errc::node_id_not_in_certificate: return "Node-ID is not in the certificate";
      case crypto_errc::signing_failed: return "signing failed";
      case crypto_errc::bad_private_key: return "unreadable private key";
      case crypto_errc::key_mismatch: return "private key does not match the certificate";
      case crypto_errc::file_unreadable: return "file cannot be read";
      case crypto_errc::no_certificate_in_file: return "no certificate in file";
      case crypto_errc::no_key_in_file: return "no private key in file";
      case crypto_errc::bad_pem: return "malformed PEM";
      case crypto_errc::credentials_mismatch:
        return "link and signing certificates differ in Node-IDs or user name";
      case crypto_errc::unusable_link_key: return "link certificate key cannot be used for TLS";
    }
    return "unknown crypto error";
  }
};

}  // namespace

const std::error_category& crypto_category() noexcept {
  static const crypto_category_impl category;
  return category;
}

std::error_code make_error_code(crypto_errc e) noexcept {
  return {static_cast<int>(e), crypto_category()};
}

protocol::reload_errc to_reload_errc(const std::error_code& ec) noexcept {
  if (ec.category() == protocol::reload_category()) {
    return static_cast<protocol::reload_errc>(ec.value());
  }
  if (ec.category() == protocol::codec_category()) return protocol::reload_errc::invalid_message;
  return protocol::reload_errc::forbidden;
}

}  // namespace p2psip::crypto
