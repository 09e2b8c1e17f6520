#include "test_pki_tls.hpp"

#include <stdexcept>

namespace p2psip::test_pki {

std::shared_ptr<const transport::tls_credentials> link_credentials(
    const issued_certificate& cert, std::vector<Botan::X509_Certificate> roots) {
  auto c = transport::tls_credentials::create({cert.certificate}, cert.key, std::move(roots),
                                              example_overlay());
  if (!c) throw std::runtime_error("test credentials: " + c.error().message());
  return *c;
}

std::shared_ptr<const transport::tls_credentials> link_credentials(
    const test_ca& ca, std::vector<protocol::node_id> nodes, key_type key,
    const std::vector<Botan::X509_Certificate>& extra_roots) {
  std::vector<Botan::X509_Certificate> roots{ca.certificate()};
  roots.insert(roots.end(), extra_roots.begin(), extra_roots.end());
  return link_credentials(ca.issue(link_spec(std::move(nodes)), key), std::move(roots));
}

}  // namespace p2psip::test_pki
