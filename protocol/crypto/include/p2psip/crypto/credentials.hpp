#pragma once
// A node's credentials and how they live on disk.
//
// A node has two certificates issued by the overlay CA, carrying the same Node-IDs and user name:
//   - the link certificate, presented in TLS: ECDSA P-256 (Botan 2's TLS refuses Ed25519) or RSA;
//   - the signing certificate, whose key signs every message and stored value: Ed25519 by
//     default: a peer verifies each request and signs each answer, and Ed25519 (libsodium)
//     does that pair about 5.7 times faster than ECDSA P-256 (Botan 2.19)
//     (tests/bench/crypto_bench.cpp).
// The signing certificate may be left out: then the link certificate also signs.
//
// On disk, two PEM files (p2psip-admin writes them; an operator copies two files per node):
//   <name>.crt  "CERTIFICATE" blocks: the link certificate first, then the signing certificate,
//               then any intermediate CA certificates (CA certificates are recognised by their
//               basicConstraints, wherever they are). The root is not included: it comes from
//               the overlay configuration.
//   <name>.key  "PRIVATE KEY" blocks (unencrypted PKCS#8), one per certificate, in any order:
//               each key is matched to its certificate by public key. Mode 0600.
// Both may be one file holding all the blocks. Other PEM blocks are ignored.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "p2psip/crypto/identity.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/protocol/errors.hpp"

namespace p2psip::crypto {

/// The default signature algorithm of new identities (p2psip-admin issues it).
inline constexpr key_type default_signing_key = key_type::ed25519;
/// The key type of link (TLS) certificates.
inline constexpr key_type default_link_key = key_type::ecdsa_p256;

/// A node's credential bundle.
struct credentials {
  node_identity link;     ///< the TLS certificate and key
  node_identity signing;  ///< signs messages and StoredData (may be the same as link)
};

/// Builds a bundle from its parts, checking that both identities carry the same Node-IDs and
/// user name (credentials_mismatch) and that the link key can do TLS (unusable_link_key).
/// When `trust` is given, both certificates must also chain to its roots at `now`.
result<credentials> make_credentials(node_identity link, node_identity signing,
                                     trust_store* trust = nullptr, time_point now = {});

/// Reads <cert_file> and <key_file> (format above) for `overlay`. Errors are a crypto_errc code
/// with a message naming the file ("node.key: no PRIVATE KEY block matches the certificate ..."):
/// file_unreadable, bad_pem, no_certificate_in_file, no_key_in_file, malformed_certificate /
/// no_node_id / wrong_overlay (a certificate), key_mismatch (a certificate without its key, or a
/// key without its certificate), bad_private_key, credentials_mismatch, unusable_link_key, and when
/// `trust` is given the chain errors. Never throws.
result<credentials, protocol::error_record> load_credentials(const std::filesystem::path& cert_file,
                                                             const std::filesystem::path& key_file,
                                                             const overlay_params& overlay,
                                                             trust_store* trust = nullptr,
                                                             time_point now = {});

/// The two files' contents for `c` (the signing certificate and key are left out when they are
/// the link's).
struct credentials_pem {
  std::string certificates;
  std::string keys;
};
credentials_pem encode_credentials(const credentials& c);

/// Writes the two files (the key file created with mode 0600). file_unreadable on failure.
result<void, protocol::error_record> save_credentials(const credentials& c,
                                                      const std::filesystem::path& cert_file,
                                                      const std::filesystem::path& key_file);

}  // namespace p2psip::crypto
