#pragma once
// Signatures over the configuration document (RFC 6940 section 11.1, ConfigUpdate in 6.5.4.2).
//
// What is signed: the exact bytes of <configuration ...>...</configuration>, from its first '<'
// to the '>' of its end tag, with nothing added (parsed_document::configuration_text); and for
// each kind-block the exact bytes of its <kind>...</kind> (parsed_document::kind_texts). The
// value of <signature> and <kind-signature> is a SecurityBlock (section 6.3.4: the certificate
// bucket, then a Signature whose SignerIdentity names the signer's certificate), base64. The
// configuration's text includes the kind-signatures, so they are made first.
//
// Who may sign (our reading of 11.1, "Any configuration file MUST be signed by one of the
// configuration-signer elements from the previous extant configuration"): a certificate that
//   - chains to a root-cert of the authorising configuration and is valid now,
//   - designates (through the SignerIdentity) a Node-ID listed in its configuration-signer (for
//     a kind-block: kind-signer) and not in its bad-node,
//   - and carries the Document Signing extended key usage (RFC 9336, document_signing_usage).
// The last rule is p2psip's: the overlay CA gives that mark only to the certificate it issues
// for signing documents, never to a node. Without it, any enrolled node could sign a document
// that lists its own Node-ID as configuration-signer, and a node loading its first document
// (which has no previous configuration, so the document authorises itself) would accept it.
// For a ConfigUpdate the node's current configuration is the authority. Kind-blocks are checked
// against the kind-signers and roots of the (already verified) document that carries them.
//
// p2psip-admin signs with such a certificate, issued by the overlay CA and kept in the CA
// directory (config-signer.crt, config-signer.key), and lists its Node-ID as
// configuration-signer and kind-signer.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/config/config_document.hpp"
#include "p2psip/config/overlay_config.hpp"

namespace p2psip::config {

/// The extended key usage a document signer's certificate must carry: id-kp-documentSigning
/// (RFC 9336).
inline constexpr std::string_view document_signing_usage = "1.3.6.1.5.5.7.3.36";

/// The certificate and key that sign documents: a certificate issued under one of the
/// configuration's root-certs, holding a Node-ID of the overlay and the Document Signing
/// extended key usage, and its private key.
struct document_signer {
  protocol::bytes certificate;  ///< DER
  std::string private_key;      ///< unencrypted PKCS#8, PEM or DER
  /// Intermediate CA certificates (DER), carried in the SecurityBlock's certificate bucket.
  std::vector<protocol::bytes> chain;
};

/// What decides whether a signature is authorised: taken from a configuration (authority_of).
struct signing_authority {
  std::string overlay_name;  ///< the overlay of the signer's reload:// URI
  std::size_t node_id_length = protocol::default_node_id_length;
  std::vector<protocol::bytes> root_certs;  ///< trust anchors (DER)
  /// Self-signed signer certificates pass the chain check when permitted (RFC 6940 11.3.1).
  std::optional<self_signed_policy> self_signed;
  std::vector<protocol::bytes> configuration_signers;  ///< Node-IDs that may sign configurations
  std::vector<protocol::bytes> kind_signers;           ///< Node-IDs that may sign kind-blocks
  std::vector<protocol::bytes> bad_nodes;              ///< Node-IDs that sign nothing
};

/// The authority a configuration grants: its instance-name, node-id-length, root-certs,
/// self-signed-permitted, configuration-signers, kind-signers and bad-nodes.
signing_authority authority_of(const overlay_config& config);

/// Writes the document for `config` (write_document) signed by `signer`: a kind-signature in
/// every kind-block, then one <signature> after the configuration (signatures already in
/// `config` are replaced). The signer's Node-ID must be listed in configuration-signer and
/// kind-signer: the written document is verified against authority_of(config) at `now` before it
/// is returned. Errors: signing_failed ("signer certificate: ...", "signer key: ..."), or the
/// verification's.
result<std::string> write_signed_document(overlay_config config, const document_signer& signer,
                                          std::chrono::system_clock::time_point now);

/// Verifies `doc` before a node uses it: at least one <signature> after the configuration must
/// be a SecurityBlock whose signature over doc.configuration_text verifies with a certificate
/// authorised by `authority` at `now`; then every kind-block must carry a kind-signature over its
/// <kind> text by a kind-signer of the document itself. The error is one line naming the element:
///   "overlay/signature: none (the configuration is unsigned)"
///   "overlay/signature: signature does not verify"
///   "overlay/signature: signer 0a1b... is not a configuration-signer"
///   "overlay/signature: signer's certificate: certificate does not chain to a root of the overlay"
///   "configuration/required-kinds/kind-block[2]/kind-signature: none"
/// Codes: unsigned_document (no signature), bad_signature (every other refusal). When several
/// <signature>s fail, the first one's reason is given. Never throws.
result<void> verify_configuration_signature(const parsed_document& doc,
                                            const signing_authority& authority,
                                            std::chrono::system_clock::time_point now);
/// The document authorising itself (authority_of(doc.config)): what a node checks when it loads
/// its first configuration.
result<void> verify_configuration_signature(const parsed_document& doc,
                                            std::chrono::system_clock::time_point now);

/// Whether configuration sequence `a` is newer than `b`: modulo 65535 as TCP compares sequence
/// numbers (RFC 6940 6.3.2.1), i.e. 1..32767 steps ahead.
bool sequence_newer(std::uint16_t a, std::uint16_t b) noexcept;

/// The checks before a node takes the document of a ConfigUpdate (RFC 6940 6.5.4.2): same
/// instance-name as `current`, a newer sequence, and signed as verify_configuration_signature
/// requires with authority_of(current) as the authority. Codes: wrong_overlay, not_newer, or the
/// verification's.
result<void> check_config_update(const overlay_config& current, const parsed_document& update,
                                 std::chrono::system_clock::time_point now);

}  // namespace p2psip::config
