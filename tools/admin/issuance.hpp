#pragma once
// The overlay CA of p2psip-admin: creating it, and issuing node certificates (RFC 6940 section
// 11.3): an empty subject, a critical subjectAltName with one reload:// URI per Node-ID and the
// user name as rfc822Name, and nothing else in it. Botan stays behind this interface.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::admin {

/// A failure of the tool, one line: "ca.key: not a PKCS#8 private key".
struct admin_error {
  std::string message;
  /// The overlay's configuration document or the CA's files could not be loaded (missing,
  /// unreadable, invalid): the tools' "bad configuration" exit status, not a plain failure.
  bool configuration = false;
};
template <class T>
using result = protocol::result<T, admin_error>;

/// A certificate and its private key, both PEM ("CERTIFICATE", unencrypted PKCS#8 "PRIVATE KEY").
struct pem_pair {
  std::string certificate;
  std::string private_key;
};

/// An overlay name as a host name: dot-separated labels of letters, digits and '-' (not at a
/// label's ends), at most 253 characters.
bool valid_overlay_name(std::string_view name);
/// A user name for the rfc822Name: local@domain, local part of letters, digits and
/// ".!#$%&'*+/=?^_`{|}~-" (no leading, trailing or doubled '.'), domain a valid_overlay_name.
/// RFC 6940 11.3: "allow only legal characters in the name".
bool valid_user_name(std::string_view user);

/// "reload://0110<hex>@<overlay>/": the Node-ID as a one-entry Destination list (RFC 6940 14.15).
std::string reload_uri(const protocol::node_id& id, std::string_view overlay);

/// `count` cryptographically random Node-IDs of `length` bytes (RFC 6940 11.3), none zero, none
/// the wildcard, none in `taken`, no two equal.
std::vector<protocol::node_id> random_node_ids(std::size_t count, std::size_t length,
                                               const std::vector<protocol::node_id>& taken = {});

/// A new overlay CA: an ECDSA P-256 key and a self-signed certificate (CN "<overlay> overlay CA",
/// basicConstraints CA with path length 0, keyCertSign and cRLSign), valid from an hour ago for
/// `validity`.
result<pem_pair> create_overlay_ca(std::string_view overlay, std::chrono::hours validity);

/// The DER of the (first) certificate in a PEM or DER text.
result<std::vector<std::uint8_t>> certificate_der(std::string_view pem_or_der);

/// What to put into a node's certificates.
struct node_request {
  std::string overlay;
  std::string user;
  std::vector<protocol::node_id> node_ids;
  std::chrono::hours validity{24 * 365};
};

/// A node's credentials: the link certificate (ECDSA P-256, for TLS: digitalSignature,
/// serverAuth and clientAuth) and the signing certificate (Ed25519, digitalSignature), both
/// issued by the CA with the same subjectAltName.
struct issued_node {
  pem_pair link;
  pem_pair signing;
  /// notAfter, clamped to the CA's own notAfter.
  std::chrono::system_clock::time_point not_after;
};

/// Issues both certificates with `ca` (its certificate and key, PEM). Errors: the CA files do not
/// hold a CA certificate and its key, or the crypto library failed.
result<issued_node> issue_node(const pem_pair& ca, const node_request& request);

/// Local part of the configuration signer's rfc822Name ("configuration-signer@<overlay>").
inline constexpr std::string_view configuration_signer_user = "configuration-signer";

/// The certificate that signs the configuration document and its kind-blocks (RFC 6940 11.1:
/// the signer is named by Node-ID in configuration-signer and kind-signer): Ed25519,
/// digitalSignature, the Document Signing extended key usage (RFC 9336; nodes require it of a
/// document signer, see config_signature.hpp), subjectAltName the reload:// URI of `id` and
/// "configuration-signer@<overlay>", issued by `ca` for `validity` (clamped to the CA's).
result<pem_pair> issue_configuration_signer(const pem_pair& ca, std::string_view overlay,
                                            const protocol::node_id& id,
                                            std::chrono::hours validity);

/// The Node-IDs for `overlay` in the reload:// URIs of the (first) certificate of a PEM or DER
/// text.
result<std::vector<protocol::node_id>> certificate_node_ids(std::string_view pem_or_der,
                                                            std::string_view overlay);

/// Human-readable lines for every certificate in a PEM or DER file (p2psip-admin show):
/// subject, issuer, user, Node-IDs with their overlay, validity, key type, CA flag, SHA-256.
result<std::string> describe_certificates(std::string_view pem_or_der);

/// One line about a root certificate: its subject and SHA-256 fingerprint, or why it is
/// unreadable.
std::string certificate_summary(const std::vector<std::uint8_t>& der);

}  // namespace p2psip::admin
