#include "peer_identity.hpp"

#include <exception>

#include "p2psip/crypto/errors.hpp"

namespace p2psip::transport::detail {

namespace pr = p2psip::protocol;

pr::result<peer_identity> certificate_identity(const Botan::X509_Certificate& cert,
                                               const crypto::overlay_params& overlay) {
  pr::bytes der;
  try {
    der = cert.BER_encode();
  } catch (const std::exception&) {
    return make_error_code(crypto::crypto_errc::malformed_certificate);
  }
  auto parsed = crypto::certificate::parse(der, overlay);
  if (!parsed) return parsed.error();
  return peer_identity{parsed->node_ids(), parsed->user()};
}

}  // namespace p2psip::transport::detail
