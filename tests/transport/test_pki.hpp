#pragma once
// A tiny overlay CA for the transport tests, made with Botan at test time: a self-signed root and
// node certificates it signs, binding Node-IDs as reload:// URIs. Nothing is ever written to disk.

#include <memory>
#include <string>
#include <vector>

#include <botan/auto_rng.h>
#include <botan/pk_keys.h>
#include <botan/x509cert.h>

#include "p2psip/protocol/ids.hpp"
#include "p2psip/transport/credentials.hpp"

namespace p2psip::transport_test {

inline constexpr const char* test_overlay = "example.org";

enum class key_kind { ecdsa, rsa };

/// A node certificate and its key.
struct issued_certificate {
  Botan::X509_Certificate certificate;
  std::shared_ptr<Botan::Private_Key> key;
};

/// A random Node-ID of the default length.
protocol::node_id random_node_id();

class test_ca {
 public:
  explicit test_ca(const std::string& name = "p2psip transport test root");

  const Botan::X509_Certificate& certificate() const noexcept { return cert_; }

  /// A certificate for `ids` (reload://0110<id>@<overlay>/ each) and user "node@<overlay>".
  /// No ids gives a certificate without any Node-ID.
  issued_certificate issue(const std::vector<protocol::node_id>& ids,
                           const std::string& overlay = test_overlay,
                           key_kind kind = key_kind::ecdsa);

  /// Link credentials for `ids`, trusting this CA (and `extra_roots`).
  std::shared_ptr<const transport::tls_credentials> credentials(
      const std::vector<protocol::node_id>& ids, key_kind kind = key_kind::ecdsa,
      const std::vector<Botan::X509_Certificate>& extra_roots = {});

 private:
  Botan::AutoSeeded_RNG rng_;
  std::unique_ptr<Botan::Private_Key> key_;
  Botan::X509_Certificate cert_;
};

/// Credentials from an issued certificate, trusting `roots`.
std::shared_ptr<const transport::tls_credentials> make_credentials(
    const issued_certificate& cert, const std::vector<Botan::X509_Certificate>& roots);

}  // namespace p2psip::transport_test
