#pragma once
// Everything a node (peer or client) reads before it can talk to an overlay: the configuration
// document checked for the expected overlay, the trust store of its roots, the node's
// credentials checked against them, and the TLS credentials of its link certificate. Shared by
// p2psip-peer and the client SDK so both refuse the same things with the same words.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <botan/x509cert.h>

#include "p2psip/config/config_document.hpp"
#include "p2psip/config/overlay_config.hpp"
#include "p2psip/crypto/credentials.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/node/message_transport.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/result.hpp"
#include "p2psip/transport/credentials.hpp"

namespace p2psip::node {

/// Which of a node's files load_node_setup refused: the code of its protocol::error_record, whose
/// message names the file ("overlay.xml: ...", "node.key: ...").
enum class setup_errc {
  ok = 0,
  configuration = 1,  ///< the configuration document (unreadable, invalid, unsigned, expired...)
  credentials,        ///< the certificate or key file (unreadable, untrusted, unusable for TLS)
};
const std::error_category& setup_category() noexcept;
std::error_code make_error_code(setup_errc e) noexcept;

/// What a node reads from its configuration file, apart from its own credentials: the checked
/// configuration, the trust store of its roots, the roots parsed for TLS and the document's
/// bytes. Nothing in it depends on the node's identity, so the clients of one process that use
/// the same document can share one (the SDK does: client-sdk/src/shared_overlay.hpp).
struct overlay_setup {
  config::overlay_config config;
  /// Thread-safe; shared by everything that verifies for this overlay.
  std::shared_ptr<crypto::trust_store> trust;
  /// config.root_certs parsed once for TLS (every link of every node sharing this setup).
  std::vector<Botan::X509_Certificate> tls_roots;
  /// Where the configuration came from, and its bytes as the file holds them (what a
  /// ConfigUpdate hands on).
  std::filesystem::path config_file;
  protocol::bytes document;
};

/// A node's own credentials, checked against an overlay_setup's trust store, and the TLS
/// credentials of its link certificate.
struct node_credentials {
  crypto::credentials creds;
  std::shared_ptr<const transport::tls_credentials> tls;
};

struct node_setup {
  config::overlay_config config;
  std::shared_ptr<crypto::trust_store> trust;
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
  /// sequence, or why the document was refused (a config_errc: the checks' codes, write_failed
  /// for the file). Root certificates and credentials stay as they are: a document that changes
  /// them needs a restart.
  protocol::result<std::uint16_t, protocol::error_record> take_update(protocol::byte_view offered,
                                                                      bool write_file);
  /// take_update's checks alone: the offered document's sequence, or why it would be refused.
  protocol::result<std::uint16_t, protocol::error_record> check_update(
      protocol::byte_view offered) const;
};

/// The message transport's settings for a node of `config` with `creds`: self, overlay hash,
/// the document's sequence, limits and kinds (node_setup::transport()).
transport_config transport_config_of(const config::overlay_config& config,
                                     const crypto::credentials& creds);

/// node_setup::check_update's checks for a node whose configuration is `current`.
protocol::result<std::uint16_t, protocol::error_record> check_update(
    const config::overlay_config& current, protocol::byte_view offered);

/// The first half of load_node_setup: reads and checks the configuration file and builds its
/// trust store (same checks, errors and `certificate_cache` as below; only
/// setup_errc::configuration).
protocol::result<overlay_setup, protocol::error_record> load_overlay_setup(
    const std::filesystem::path& config_file, const std::string& overlay_name = {},
    std::size_t certificate_cache = 4096);

/// The second half: reads the node's certificate and key files and checks them against
/// `overlay`'s trust store (setup_errc::credentials).
protocol::result<node_credentials, protocol::error_record> load_node_credentials(
    const overlay_setup& overlay, const std::filesystem::path& cert_file,
    const std::filesystem::path& key_file);

/// Reads and checks the three files. The configuration must be signed by one of its own
/// configuration-signers with a certificate under its own root-cert, and every kind-block by a
/// kind-signer (config::verify_configuration_signature): an unsigned or tampered document is
/// refused ("overlay.xml: overlay/signature: signature does not verify"). `overlay_name` empty:
/// the document's own instance-name is accepted. Errors: setup_errc::configuration or
/// ::credentials, the message naming the file. `certificate_cache`: how many node certificates
/// the trust store keeps parsed and checked (crypto::trust_store's cache_capacity); a peer sizes
/// it to its link budget, since a certificate evicted is parsed and its chain validated again
/// at that node's next message (an ECDSA verification). Never throws.
protocol::result<node_setup, protocol::error_record> load_node_setup(
    const std::filesystem::path& config_file, const std::filesystem::path& cert_file,
    const std::filesystem::path& key_file, const std::string& overlay_name = {},
    std::size_t certificate_cache = 4096);

}  // namespace p2psip::node

template <>
struct std::is_error_code_enum<p2psip::node::setup_errc> : std::true_type {};
