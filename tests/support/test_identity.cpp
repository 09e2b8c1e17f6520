#include "test_identity.hpp"

#include <botan/hash.h>
#include <botan/pubkey.h>
#include <botan/x509cert.h>

#include <chrono>
#include <stdexcept>

#include "p2psip/crypto/certificate.hpp"
#include "p2psip/crypto/identity.hpp"
#include "test_pki.hpp"

namespace p2psip::test_support {

namespace pr = p2psip::protocol;

namespace {
// EMSA1 is Botan 2's name for "hash, then sign the digest" (the ECDSA of TLS); DER_SEQUENCE gives
// the ASN.1 Ecdsa-Sig-Value that TLS 1.2 and RELOAD carry.
constexpr const char* ecdsa_padding = "EMSA1(SHA-256)";
}  // namespace

struct test_identity::impl {
  pr::node_id node;
  std::string user;
  std::string overlay;
  std::string uri;
  std::unique_ptr<Botan::Private_Key> key;
  std::unique_ptr<Botan::X509_Certificate> cert;
  pr::bytes der;
  pr::signer_identity signer;
};

test_identity test_identity::generate(const pr::node_id& node, std::string_view user,
                                      std::string_view overlay, unsigned valid_days) {
  auto p = std::make_shared<impl>();
  p->node = node;
  p->user = std::string(user);
  p->overlay = std::string(overlay);
  // RFC 6940 section 11.3: the Node-ID goes into a URI whose user part is the hex of the Node-ID
  // encoded as a Destination (type node = 01, length, then the id).
  p->uri = crypto::make_reload_uri(node, p->overlay);

  // A self-signed certificate from the shared test PKI, for a fresh ECDSA P-256 key.
  const auto pkcs8 = crypto::generate_private_key(crypto::key_type::ecdsa_p256);
  if (!pkcs8) throw std::runtime_error("test identity key: " + pkcs8.error().message());
  p->key = test_pki::load_key(*pkcs8);
  test_pki::cert_spec spec = test_pki::spec_for({node}, p->user);
  spec.overlay = p->overlay;
  spec.extended_usages = {"PKIX.ServerAuth", "PKIX.ClientAuth"};
  spec.not_before = std::chrono::system_clock::now() - std::chrono::hours(1);
  spec.not_after = spec.not_before + std::chrono::hours(1) + std::chrono::hours(24) * valid_days;
  p->der = test_pki::self_signed(*pkcs8, spec);
  p->cert = std::make_unique<Botan::X509_Certificate>(p->der);

  auto sha256 = Botan::HashFunction::create_or_throw("SHA-256");
  const auto digest = sha256->process(p->der);
  p->signer.type = static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash);
  p->signer.hash.hash_alg = pr::hash_algorithm::sha256;
  p->signer.hash.hash.assign(digest.begin(), digest.end());
  return test_identity(std::move(p));
}

const pr::node_id& test_identity::node() const noexcept {
  return impl_->node;
}
const std::string& test_identity::user() const noexcept {
  return impl_->user;
}
const std::string& test_identity::overlay() const noexcept {
  return impl_->overlay;
}
const std::string& test_identity::reload_uri() const noexcept {
  return impl_->uri;
}
const pr::bytes& test_identity::certificate_der() const noexcept {
  return impl_->der;
}
const pr::signer_identity& test_identity::signer() const noexcept {
  return impl_->signer;
}
const Botan::Private_Key& test_identity::private_key() const noexcept {
  return *impl_->key;
}
const Botan::X509_Certificate& test_identity::certificate() const noexcept {
  return *impl_->cert;
}

pr::generic_certificate test_identity::generic_certificate() const {
  return pr::generic_certificate{0, impl_->der};
}

pr::bytes test_identity::sign(pr::byte_view data) const {
  // test_pki::rng() is this thread's own generator, so several threads may sign at once.
  Botan::PK_Signer signer(*impl_->key, test_pki::rng(), ecdsa_padding, Botan::DER_SEQUENCE);
  const auto sig = signer.sign_message(data.data(), data.size(), test_pki::rng());
  return pr::bytes(sig.begin(), sig.end());
}

bool test_identity::verify(pr::byte_view data, pr::byte_view signature) const {
  Botan::PK_Verifier verifier(*impl_->key, ecdsa_padding, Botan::DER_SEQUENCE);
  return verifier.verify_message(data.data(), data.size(), signature.data(), signature.size());
}

pr::signature test_identity::make_signature(pr::byte_view input) const {
  return pr::signature{algorithm(), signer(), sign(input)};
}

void sign_message(pr::message& m, const test_identity& id) {
  m.security.certificates = {id.generic_certificate()};
  const pr::bytes input = pr::message_signature_input(m.header.overlay, m.header.transaction_id,
                                                      m.contents, id.signer());
  m.security.signature = id.make_signature(input);
}

void sign_stored_data(pr::stored_data& d, const pr::resource_id& resource, std::uint32_t kind,
                      const test_identity& id) {
  const pr::bytes input =
      pr::data_signature_input(resource, kind, d.storage_time, d.value, id.signer());
  d.signature = id.make_signature(input);
}

bool verify_message(const pr::message& m, const test_identity& id) {
  const auto& sig = m.security.signature;
  if (sig.algorithm != test_identity::algorithm() || sig.identity != id.signer()) return false;
  const pr::bytes input = pr::message_signature_input(m.header.overlay, m.header.transaction_id,
                                                      m.contents, sig.identity);
  return id.verify(input, sig.value);
}

bool verify_stored_data(const pr::stored_data& d, const pr::resource_id& resource,
                        std::uint32_t kind, const test_identity& id) {
  const auto& sig = d.signature;
  if (sig.algorithm != test_identity::algorithm() || sig.identity != id.signer()) return false;
  const pr::bytes input =
      pr::data_signature_input(resource, kind, d.storage_time, d.value, sig.identity);
  return id.verify(input, sig.value);
}

}  // namespace p2psip::test_support
