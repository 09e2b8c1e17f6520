#include "test_pki.hpp"

#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/pkcs10.h>
#include <botan/pkix_types.h>
#include <botan/rsa.h>
#include <botan/system_rng.h>
#include <botan/x509_ca.h>
#include <botan/x509_ext.h>
#include <botan/x509self.h>

#include <chrono>
#include <stdexcept>

#include "p2psip/crypto/certificate.hpp"

namespace p2psip::transport_test {

namespace pr = p2psip::protocol;

pr::node_id random_node_id() {
  pr::bytes raw(pr::default_node_id_length);
  Botan::system_rng().randomize(raw.data(), raw.size());
  raw[0] = static_cast<std::uint8_t>(raw[0] & 0x7F);  // never the wildcard
  return *pr::node_id::from_bytes(raw);
}

namespace {

std::unique_ptr<Botan::Private_Key> make_key(key_kind kind, Botan::RandomNumberGenerator& rng) {
  if (kind == key_kind::rsa) return std::make_unique<Botan::RSA_PrivateKey>(rng, 2048);
  return std::make_unique<Botan::ECDSA_PrivateKey>(rng, Botan::EC_Group("secp256r1"));
}

Botan::X509_Certificate make_root(const std::string& name, const Botan::Private_Key& key,
                                  Botan::RandomNumberGenerator& rng) {
  Botan::X509_Cert_Options opts;
  opts.common_name = name;
  opts.organization = "p2psip tests";
  opts.CA_key();
  const auto now = std::chrono::system_clock::now();
  opts.start = Botan::X509_Time(now - std::chrono::hours(1));
  opts.end = Botan::X509_Time(now + std::chrono::hours(24));
  return Botan::X509::create_self_signed_cert(opts, key, "SHA-256", rng);
}

}  // namespace

test_ca::test_ca(const std::string& name)
    : key_(make_key(key_kind::ecdsa, rng_)), cert_(make_root(name, *key_, rng_)) {}

issued_certificate test_ca::issue(const std::vector<pr::node_id>& ids, const std::string& overlay,
                                  key_kind kind) {
  std::shared_ptr<Botan::Private_Key> key = make_key(kind, rng_);
  Botan::X509_Cert_Options opts;
  opts.common_name = "node@" + overlay;
  opts.organization = "p2psip tests";
  opts.email = "node@" + overlay;
  // Several reload:// URIs need a subjectAltName of our own; Botan takes it from the request.
  Botan::AlternativeName san("node@" + overlay, "", "", "");
  for (const auto& id : ids) san.add_attribute("URI", crypto::make_reload_uri(id, overlay));
  opts.extensions.add(new Botan::Cert_Extension::Subject_Alternative_Name(san));
  const auto req = Botan::X509::create_cert_req(opts, *key, "SHA-256", rng_);
  Botan::X509_CA ca(cert_, *key_, "SHA-256", rng_);
  const auto now = std::chrono::system_clock::now();
  auto cert = ca.sign_request(req, rng_, Botan::X509_Time(now - std::chrono::hours(1)),
                              Botan::X509_Time(now + std::chrono::hours(24)));
  return issued_certificate{std::move(cert), std::move(key)};
}

std::shared_ptr<const transport::tls_credentials> make_credentials(
    const issued_certificate& cert, const std::vector<Botan::X509_Certificate>& roots) {
  auto c = transport::tls_credentials::create({cert.certificate}, cert.key, roots,
                                              crypto::overlay_params{test_overlay, 16});
  if (!c) throw std::runtime_error("test credentials: " + c.error().message());
  return *c;
}

std::shared_ptr<const transport::tls_credentials> test_ca::credentials(
    const std::vector<pr::node_id>& ids, key_kind kind,
    const std::vector<Botan::X509_Certificate>& extra_roots) {
  std::vector<Botan::X509_Certificate> roots{cert_};
  roots.insert(roots.end(), extra_roots.begin(), extra_roots.end());
  return make_credentials(issue(ids, test_overlay, kind), roots);
}

}  // namespace p2psip::transport_test
