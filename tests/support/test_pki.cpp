#include "test_pki.hpp"

#include <botan/auto_rng.h>
#include <botan/data_src.h>
#include <botan/pkcs8.h>
#include <botan/pubkey.h>
#include <botan/x509_ca.h>
#include <botan/x509_ext.h>
#include <botan/x509self.h>

#include <stdexcept>

namespace p2psip::test_pki {

namespace cr = p2psip::crypto;
namespace pr = p2psip::protocol;
using std::chrono::hours;

const cr::overlay_params& example_overlay() {
  static const cr::overlay_params o{"example.org", 16};
  return o;
}

time_point test_now() {
  static const auto now =
      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  return now;
}

Botan::RandomNumberGenerator& rng() {
  // One per thread, like the crypto library's own (Botan's RNGs are not thread-safe).
  thread_local Botan::AutoSeeded_RNG r;
  return r;
}

std::unique_ptr<Botan::Private_Key> load_key(const pr::bytes& pkcs8) {
  Botan::DataSource_Memory src(pkcs8.data(), pkcs8.size());
  return Botan::PKCS8::load_key(src);
}

pr::node_id test_node(std::uint8_t seed) {
  pr::bytes raw(pr::default_node_id_length);
  for (std::size_t i = 0; i < raw.size(); ++i)
    raw[i] = static_cast<std::uint8_t>(seed * 31 + i + 1);
  return *pr::node_id::from_bytes(raw);
}

pr::node_id random_node_id() {
  pr::bytes raw(pr::default_node_id_length);
  rng().randomize(raw.data(), raw.size());
  raw[0] = static_cast<std::uint8_t>(raw[0] & 0x7F);  // never the all-ones wildcard
  return *pr::node_id::from_bytes(raw);
}

std::string uri_for(const pr::node_id& id, const std::string& overlay, uri_form form) {
  if (form == uri_form::rfc) return cr::make_reload_uri(id, overlay);
  return "reload://" + id.hex() + "@" + overlay;
}

cert_spec spec_for(std::vector<pr::node_id> nodes, std::string user) {
  cert_spec s;
  s.nodes = std::move(nodes);
  s.user = std::move(user);
  return s;
}

cert_spec link_spec(std::vector<pr::node_id> nodes, std::string overlay) {
  cert_spec s;
  s.nodes = std::move(nodes);
  s.user = "node@" + overlay;
  s.overlay = std::move(overlay);
  return s;
}

cert_spec server_spec(std::vector<std::string> dns, std::vector<std::string> ips) {
  cert_spec s;
  s.user.clear();
  s.dns_names = std::move(dns);
  s.ip_addresses = std::move(ips);
  return s;
}

namespace {

std::unique_ptr<Botan::Private_Key> new_key(key_type type, pr::bytes* pkcs8_out = nullptr) {
  auto pkcs8 = cr::generate_private_key(type);
  if (!pkcs8) throw std::runtime_error("test key: " + pkcs8.error().message());
  auto key = load_key(*pkcs8);
  if (pkcs8_out) *pkcs8_out = std::move(*pkcs8);
  return key;
}

Botan::AlternativeName node_names(const cert_spec& spec) {
  Botan::AlternativeName san;
  for (const auto& id : spec.nodes) san.add_attribute("URI", uri_for(id, spec.overlay, spec.form));
  for (const auto& u : spec.extra_uris) san.add_attribute("URI", u);
  if (!spec.user.empty()) san.add_attribute("RFC822", spec.user);
  for (const auto& u : spec.extra_users) san.add_attribute("RFC822", u);
  for (const auto& d : spec.dns_names) san.add_attribute("DNS", d);
  for (const auto& a : spec.ip_addresses) san.add_attribute("IP", a);
  return san;
}

}  // namespace

struct test_ca::impl {
  std::unique_ptr<Botan::Private_Key> key;
  Botan::X509_Certificate cert;
  pr::bytes der;

  /// A certificate for `spki` signed by this CA.
  Botan::X509_Certificate make(const std::vector<std::uint8_t>& spki, const Botan::X509_DN& subject,
                               Botan::Extensions ext, time_point not_before,
                               time_point not_after) const {
    Botan::AlgorithmIdentifier sig_alg;
    std::unique_ptr<Botan::PK_Signer> signer(
        Botan::choose_sig_format(*key, rng(), "SHA-256", sig_alg));
    if (!cert.subject_key_id().empty()) {
      ext.add(new Botan::Cert_Extension::Authority_Key_ID(cert.subject_key_id()));
    }
    return Botan::X509_CA::make_cert(signer.get(), rng(), sig_alg, spki,
                                     Botan::X509_Time(not_before), Botan::X509_Time(not_after),
                                     cert.subject_dn(), subject, ext);
  }
};

test_ca::test_ca(const std::string& name, key_type key, time_point not_before,
                 time_point not_after) {
  auto p = std::make_shared<impl>();
  p->key = new_key(key);
  Botan::X509_Cert_Options opts;
  opts.common_name = name;
  opts.organization = "p2psip test overlay CA";
  opts.CA_key(1);
  opts.start = Botan::X509_Time(not_before);
  opts.end = Botan::X509_Time(not_after);
  p->cert = Botan::X509::create_self_signed_cert(opts, *p->key, "SHA-256", rng());
  p->der = p->cert.BER_encode();
  impl_ = std::move(p);
}

test_ca test_ca::intermediate(const std::string& name) const {
  auto p = std::make_shared<impl>();
  p->key = new_key(key_type::ecdsa_p256);
  Botan::Extensions ext;
  ext.add(new Botan::Cert_Extension::Basic_Constraints(true, 0), true);
  ext.add(new Botan::Cert_Extension::Key_Usage(
              Botan::Key_Constraints(Botan::KEY_CERT_SIGN | Botan::CRL_SIGN)),
          true);
  ext.add(new Botan::Cert_Extension::Subject_Key_ID(p->key->subject_public_key(), "SHA-256"));
  Botan::X509_DN dn;
  dn.add_attribute("X520.CommonName", name);
  p->cert = impl_->make(p->key->subject_public_key(), dn, std::move(ext), test_now() - hours(1),
                        test_now() + hours(24 * 100));
  p->der = p->cert.BER_encode();
  return test_ca(std::move(p));
}

pr::bytes test_ca::certify(const pr::bytes& pkcs8, const cert_spec& spec) const {
  const auto subject_key = load_key(pkcs8);
  Botan::Extensions ext;
  ext.add(new Botan::Cert_Extension::Basic_Constraints(false), true);
  ext.add(new Botan::Cert_Extension::Key_Usage(Botan::DIGITAL_SIGNATURE), true);
  ext.add(new Botan::Cert_Extension::Subject_Alternative_Name(node_names(spec)));
  if (!spec.extended_usages.empty()) {
    std::vector<Botan::OID> usages;
    for (const auto& u : spec.extended_usages) usages.push_back(Botan::OID::from_string(u));
    ext.add(new Botan::Cert_Extension::Extended_Key_Usage(usages));
  }
  // RFC 6940 section 11.3: the subject DN is empty.
  return impl_
      ->make(subject_key->subject_public_key(), Botan::X509_DN(), std::move(ext), spec.not_before,
             spec.not_after)
      .BER_encode();
}

issued_certificate test_ca::issue(const cert_spec& spec, key_type key) const {
  pr::bytes pkcs8;
  std::shared_ptr<Botan::Private_Key> k = new_key(key, &pkcs8);
  return issued_certificate{Botan::X509_Certificate(certify(pkcs8, spec)), std::move(k)};
}

const pr::bytes& test_ca::der() const noexcept {
  return impl_->der;
}

const Botan::X509_Certificate& test_ca::certificate() const noexcept {
  return impl_->cert;
}

cr::node_identity make_identity(const test_ca& ca, const cert_spec& spec, key_type key,
                                std::vector<pr::bytes> chain) {
  const pr::bytes pkcs8 = *cr::generate_private_key(key);
  const pr::bytes der = ca.certify(pkcs8, spec);
  const cr::overlay_params overlay{spec.overlay, 16};
  auto cert = cr::certificate::parse(der, overlay);
  if (!cert) throw std::runtime_error("test certificate does not parse: " + cert.error().message());
  auto id = cr::node_identity::create(*cert, pkcs8, std::move(chain));
  if (!id) throw std::runtime_error("test identity: " + id.error().message());
  return *id;
}

pr::bytes self_signed(const pr::bytes& pkcs8, const cert_spec& spec) {
  const auto key = load_key(pkcs8);
  Botan::X509_Cert_Options opts;
  opts.common_name = spec.user.empty() ? "p2psip test node" : spec.user;
  opts.start = Botan::X509_Time(spec.not_before);
  opts.end = Botan::X509_Time(spec.not_after);
  opts.add_constraints(Botan::DIGITAL_SIGNATURE);
  for (const auto& u : spec.extended_usages) opts.add_ex_constraint(u);
  // Several names need a subjectAltName of our own; Botan keeps it over the one it would build.
  opts.extensions.add(new Botan::Cert_Extension::Subject_Alternative_Name(node_names(spec)));
  return Botan::X509::create_self_signed_cert(opts, *key, "SHA-256", rng()).BER_encode();
}

}  // namespace p2psip::test_pki
