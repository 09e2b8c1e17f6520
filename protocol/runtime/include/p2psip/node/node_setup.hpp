#pragma once
// Everything a node (peer or client) reads before it can talk to an overlay: the configuration
// document checked for the expected overlay, the trust store of its roots, the node's
// credentials checked against them, and the TLS credentials of its link certificate. Shared by
// p2psip-peer and the client SDK so both refuse the same things with the same words.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "p2psip/config/config_document.hpp"
#include "p2psip/config/overlay_config.hpp"
#include "p2psip/crypto/credentials.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/node/message_transport.hpp"
#include "p2psip/protocol/result.hpp"
#include "p2psip/transport/credentials.hpp"

namespace p2psip::node {

/// What failed, in one line naming the file ("overlay.xml: ...", "node.key: ...").
struct setup_error {
  enum class part : std::uint8_t { configuration, credentials } what = part::configuration;
  std::string message;
};

struct node_setup {
  config::overlay_config config;
  std::unique_ptr<crypto::trust_store> trust;
  crypto::credentials creds;
  std::shared_ptr<const transport::tls_credentials> tls;
  /// Where the configuration came from, and its bytes as the file holds them (what a
  /// ConfigUpdate hands on).
  std::filesystem::path config_file;
  protocol::bytes document;

  /// The message transport's settings for this node: self, overlay hash, the document's
  /// sequence, limits and kinds.
  transport_config transport() const;

  /// A document offered in a ConfigUpdate (RFC 6940 6.5.4.2): taken when it is for our overlay,
  /// newer, and signed by the current document's authority (config::check_config_update). Then
  /// `config` and `document` are the new ones and, with `write_file`, config_file is replaced
  /// (written aside and renamed, so a crash leaves one whole document). Returns the new
  /// sequence, or why the document was refused. Root certificates and credentials stay as they
  /// are: a document that changes them needs a restart.
  protocol::result<std::uint16_t, std::string> take_update(protocol::byte_view offered,
                                                           bool write_file);
  /// take_update's checks alone: the offered document's sequence, or why it would be refused.
  protocol::result<std::uint16_t, std::string> check_update(protocol::byte_view offered) const;
};

/// Reads and checks the three files. The configuration must be signed by one of its own
/// configuration-signers with a certificate under its own root-cert, and every kind-block by a
/// kind-signer (config::verify_configuration_signature): an unsigned or tampered document is
/// refused ("overlay.xml: overlay/signature: signature does not verify"). `overlay_name` empty:
/// the document's own instance-name is accepted. Never throws.
protocol::result<node_setup, setup_error> load_node_setup(const std::filesystem::path& config_file,
                                                          const std::filesystem::path& cert_file,
                                                          const std::filesystem::path& key_file,
                                                          const std::string& overlay_name = {});

}  // namespace p2psip::node
