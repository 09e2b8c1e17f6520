#pragma once
// A throwaway overlay PKI for the crypto tests: a root CA (and intermediates) made with Botan at
// test time, issuing node certificates with reload:// URIs and a user name. Nothing is committed.

#include <botan/auto_rng.h>
#include <botan/data_src.h>
#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/ed25519.h>
#include <botan/pkcs8.h>
#include <botan/pubkey.h>
#include <botan/rsa.h>
#include <botan/x509_ca.h>
#include <botan/x509_ext.h>
#include <botan/x509cert.h>
#include <botan/x509self.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "p2psip/crypto/certificate.hpp"
#include "p2psip/crypto/identity.hpp"
#include "p2psip/protocol/ids.hpp"

namespace p2psip::crypto_test {

namespace cr = p2psip::crypto;
namespace pr = p2psip::protocol;
using clock = std::chrono::system_clock;
using namespace std::chrono_literals;

/// Whole seconds: X.509 times have no fractions.
inline clock::time_point test_now() {
  static const auto now = std::chrono::floor<std::chrono::seconds>(clock::now());
  return now;
}

inline Botan::RandomNumberGenerator& rng() {
  static Botan::AutoSeeded_RNG r;
  return r;
}

inline std::unique_ptr<Botan::Private_Key> load_key(const pr::bytes& pkcs8) {
  Botan::DataSource_Memory src(pkcs8.data(), pkcs8.size());
  return Botan::PKCS8::load_key(src);
}

inline pr::node_id test_node(std::uint8_t seed) {
  pr::bytes raw(16);
  for (std::size_t i = 0; i < raw.size(); ++i)
    raw[i] = static_cast<std::uint8_t>(seed * 31 + i + 1);
  return *pr::node_id::from_bytes(raw);
}

inline const cr::overlay_params& example_overlay() {
  static const cr::overlay_params o{"example.org", 16};
  return o;
}

enum class uri_form { rfc, bare };

inline std::string uri_for(const pr::node_id& id, const std::string& overlay, uri_form form) {
  if (form == uri_form::rfc) return cr::make_reload_uri(id, overlay);
  return "reload://" + id.hex() + "@" + overlay;
}

/// What a node certificate should hold.
struct cert_spec {
  std::vector<pr::node_id> nodes;
  std::string user = "alice@example.org";
  std::string overlay = "example.org";
  uri_form form = uri_form::rfc;
  clock::time_point not_before = test_now() - 1h;
  clock::time_point not_after = test_now() + 24h * 30;
  std::vector<std::string> extra_uris;   ///< more SAN URIs, verbatim
  std::vector<std::string> extra_users;  ///< more rfc822Names
};

/// A CA that issues node certificates.
class test_ca {
 public:
  static test_ca root(const std::string& name, cr::key_type type = cr::key_type::ecdsa_p256,
                      clock::time_point not_before = test_now() - 2h,
                      clock::time_point not_after = test_now() + 24h * 365) {
    test_ca ca;
    ca.key_ = load_key(*cr::generate_private_key(type));
    Botan::X509_Cert_Options opts;
    opts.common_name = name;
    opts.organization = "p2psip test overlay CA";
    opts.CA_key(1);
    opts.start = Botan::X509_Time(not_before);
    opts.end = Botan::X509_Time(not_after);
    ca.cert_ = Botan::X509::create_self_signed_cert(opts, *ca.key_, "SHA-256", rng());
    ca.der_ = ca.cert_.BER_encode();
    return ca;
  }

  /// An intermediate CA under this one.
  test_ca intermediate(const std::string& name) const {
    test_ca ca;
    ca.key_ = load_key(*cr::generate_private_key(cr::key_type::ecdsa_p256));
    Botan::Extensions ext;
    ext.add(new Botan::Cert_Extension::Basic_Constraints(true, 0), true);
    ext.add(new Botan::Cert_Extension::Key_Usage(
                Botan::Key_Constraints(Botan::KEY_CERT_SIGN | Botan::CRL_SIGN)),
            true);
    ext.add(new Botan::Cert_Extension::Subject_Key_ID(ca.key_->subject_public_key(), "SHA-256"));
    Botan::X509_DN dn;
    dn.add_attribute("X520.CommonName", name);
    ca.cert_ = make(ca.key_->subject_public_key(), dn, std::move(ext), test_now() - 1h,
                    test_now() + 24h * 100);
    ca.der_ = ca.cert_.BER_encode();
    return ca;
  }

  /// A node certificate for the public key of `pkcs8`.
  pr::bytes issue(const pr::bytes& pkcs8, const cert_spec& spec) const {
    const auto subject_key = load_key(pkcs8);
    Botan::AlternativeName san;
    for (const auto& id : spec.nodes)
      san.add_attribute("URI", uri_for(id, spec.overlay, spec.form));
    for (const auto& u : spec.extra_uris) san.add_attribute("URI", u);
    if (!spec.user.empty()) san.add_attribute("RFC822", spec.user);
    for (const auto& u : spec.extra_users) san.add_attribute("RFC822", u);
    Botan::Extensions ext;
    ext.add(new Botan::Cert_Extension::Basic_Constraints(false), true);
    ext.add(new Botan::Cert_Extension::Key_Usage(Botan::DIGITAL_SIGNATURE), true);
    ext.add(new Botan::Cert_Extension::Subject_Alternative_Name(san));
    // RFC 6940 section 11.3: the subject DN is empty.
    return make(subject_key->subject_public_key(), Botan::X509_DN(), std::move(ext),
                spec.not_before, spec.not_after)
        .BER_encode();
  }

  const pr::bytes& der() const { return der_; }

 private:
  Botan::X509_Certificate make(const std::vector<std::uint8_t>& spki, const Botan::X509_DN& subject,
                               Botan::Extensions ext, clock::time_point not_before,
                               clock::time_point not_after) const {
    Botan::AlgorithmIdentifier sig_alg;
    std::unique_ptr<Botan::PK_Signer> signer(
        Botan::choose_sig_format(*key_, rng(), "SHA-256", sig_alg));
    if (!cert_.subject_key_id().empty()) {
      ext.add(new Botan::Cert_Extension::Authority_Key_ID(cert_.subject_key_id()));
    }
    return Botan::X509_CA::make_cert(signer.get(), rng(), sig_alg, spki,
                                     Botan::X509_Time(not_before), Botan::X509_Time(not_after),
                                     cert_.subject_dn(), subject, ext);
  }

  std::unique_ptr<Botan::Private_Key> key_;
  Botan::X509_Certificate cert_;
  pr::bytes der_;
};

/// A key of `type`, a certificate from `ca` per `spec`, as a node_identity of `overlay`.
inline cr::node_identity make_identity(const test_ca& ca, const cert_spec& spec,
                                       cr::key_type type = cr::key_type::ecdsa_p256,
                                       std::vector<pr::bytes> chain = {}) {
  const pr::bytes key = *cr::generate_private_key(type);
  const pr::bytes der = ca.issue(key, spec);
  const cr::overlay_params overlay{spec.overlay, 16};
  auto cert = cr::certificate::parse(der, overlay);
  if (!cert) throw std::runtime_error("test certificate does not parse: " + cert.error().message());
  auto id = cr::node_identity::create(*cert, key, std::move(chain));
  if (!id) throw std::runtime_error("test identity: " + id.error().message());
  return *id;
}

inline cert_spec spec_for(std::vector<pr::node_id> nodes, std::string user = "alice@example.org") {
  cert_spec s;
  s.nodes = std::move(nodes);
  s.user = std::move(user);
  return s;
}

}  // namespace p2psip::crypto_test
