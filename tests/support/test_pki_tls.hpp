#pragma once
// TLS link credentials from the test PKI (test_pki.hpp), for the tests and benchmarks of
// p2psip::transport (p2psip::test_pki_tls; built only where p2psip::transport is).

#include <botan/x509cert.h>

#include <memory>
#include <vector>

#include "p2psip/protocol/ids.hpp"
#include "p2psip/transport/credentials.hpp"
#include "test_pki.hpp"

namespace p2psip::test_pki {

/// Credentials presenting `cert` with its key for example_overlay(), trusting `roots`. Throws
/// std::runtime_error if the transport refuses them.
std::shared_ptr<const transport::tls_credentials> link_credentials(
    const issued_certificate& cert, std::vector<Botan::X509_Certificate> roots);

/// Credentials with a fresh `key` certificate from `ca` for `nodes` (link_spec: user
/// "node@example.org"), trusting `ca` and `extra_roots`.
std::shared_ptr<const transport::tls_credentials> link_credentials(
    const test_ca& ca, std::vector<protocol::node_id> nodes, key_type key = key_type::ecdsa_p256,
    const std::vector<Botan::X509_Certificate>& extra_roots = {});

}  // namespace p2psip::test_pki
