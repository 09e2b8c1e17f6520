#pragma once
// The Node-IDs a peer's certificate binds (RFC 6940 section 11.3: subjectAltName URIs
// reload://<Destination hex>@<overlay>/). The one place the link reads certificates for
// identities; it delegates to protocol/crypto's certificate parser.

#include <string>
#include <system_error>
#include <vector>

#include <botan/x509cert.h>

#include "p2psip/crypto/certificate.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::transport::detail {

/// What the certificate yields: its Node-IDs for the overlay (never empty on success).
struct peer_identity {
  std::vector<protocol::node_id> node_ids;
  std::string user;  ///< the rfc822Name, if any
};

/// The Node-IDs `cert` binds for `overlay`. On failure the crypto library's reason
/// (no_node_id, wrong_overlay, bad_reload_uri, malformed_certificate, multiple_user_names).
protocol::result<peer_identity> certificate_identity(const Botan::X509_Certificate& cert,
                                                     const crypto::overlay_params& overlay);

}  // namespace p2psip::transport::detail
