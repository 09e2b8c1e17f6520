#include "p2psip/crypto/identity.hpp"

#include <botan/data_src.h>
#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/ed25519.h>
#include <botan/pkcs8.h>
#include <botan/pubkey.h>
#include <botan/rsa.h>
#include <botan/x509_key.h>

#include <mutex>
#include <optional>

#include "botan_glue.hpp"
#include "ed25519.hpp"
#include "signature_counters.hpp"

namespace p2psip::crypto {

namespace pr = p2psip::protocol;

namespace {

std::unique_ptr<Botan::Private_Key> load_pkcs8(pr::byte_view pkcs8) {
  Botan::DataSource_Memory src(pkcs8.data(), pkcs8.size());
  return Botan::PKCS8::load_key(src);
}

/// libsodium's key for an Ed25519 Botan key: Botan keeps seed || public key (RFC 8032), and the
/// seed is the private key.
std::optional<detail::ed25519_signing_key> sodium_key(const Botan::Private_Key& key) {
  const auto* ed = dynamic_cast<const Botan::Ed25519_PrivateKey*>(&key);
  if (ed == nullptr) return std::nullopt;
  const auto& secret = ed->get_private_key();
  if (secret.size() < detail::ed25519_seed_size) return std::nullopt;
  return detail::ed25519_signing_key::from_seed(
      std::span<const std::uint8_t, detail::ed25519_seed_size>(secret.data(),
                                                               detail::ed25519_seed_size));
}

pr::bytes raw_sign(const Botan::Private_Key& key, const detail::scheme& s, pr::byte_view data) {
  Botan::RandomNumberGenerator& rng = detail::thread_rng();
  Botan::PK_Signer signer(key, rng, s.padding,
                          s.der_sequence ? Botan::DER_SEQUENCE : Botan::IEEE_1363);
  const auto sig = signer.sign_message(data.data(), data.size(), rng);
  return pr::bytes(sig.begin(), sig.end());
}

}  // namespace

result<pr::bytes> generate_private_key(key_type type) {
  try {
    Botan::RandomNumberGenerator& rng = detail::thread_rng();
    std::unique_ptr<Botan::Private_Key> key;
    switch (type) {
      case key_type::rsa: key = std::make_unique<Botan::RSA_PrivateKey>(rng, 2048); break;
      case key_type::ecdsa_p256:
        key = std::make_unique<Botan::ECDSA_PrivateKey>(rng, Botan::EC_Group("secp256r1"));
        break;
      case key_type::ecdsa_p384:
        key = std::make_unique<Botan::ECDSA_PrivateKey>(rng, Botan::EC_Group("secp384r1"));
        break;
      case key_type::ecdsa_p521:
        key = std::make_unique<Botan::ECDSA_PrivateKey>(rng, Botan::EC_Group("secp521r1"));
        break;
      case key_type::ed25519: key = std::make_unique<Botan::Ed25519_PrivateKey>(rng); break;
      case key_type::unknown: return make_error_code(crypto_errc::unsupported_algorithm);
    }
    const auto der = Botan::PKCS8::BER_encode(*key);
    return pr::bytes(der.begin(), der.end());
  } catch (const std::exception&) {
    return make_error_code(crypto_errc::signing_failed);
  }
}

result<pr::bytes> public_key_info(pr::byte_view pkcs8_der) {
  try {
    const auto key = load_pkcs8(pkcs8_der);
    return key->subject_public_key();
  } catch (const std::exception&) {
    return make_error_code(crypto_errc::bad_private_key);
  }
}

struct node_identity::impl {
  impl(certificate c, std::vector<pr::bytes> ch, std::unique_ptr<Botan::Private_Key> k,
       detail::scheme s, std::optional<detail::ed25519_signing_key> e)
      : cert(std::move(c)),
        chain(std::move(ch)),
        key(std::move(k)),
        scheme(std::move(s)),
        ed25519(std::move(e)) {}

  certificate cert;
  std::vector<pr::bytes> chain;
  std::unique_ptr<Botan::Private_Key> key;  // Botan's, for TLS and private_key_pem()
  detail::scheme scheme;
  // libsodium's key, derived once, when scheme.engine is sodium: stateless, no lock needed.
  std::optional<detail::ed25519_signing_key> ed25519;
  // Building an ECDSA signer costs about a sixth of a signature (blinding setup), so one is
  // kept; it is stateful, hence the mutex. A thread that finds it busy builds its own.
  mutable std::mutex signer_mutex;
  mutable std::unique_ptr<Botan::PK_Signer> signer;
};

result<node_identity> node_identity::create(certificate cert, pr::byte_view pkcs8,
                                            std::vector<pr::bytes> chain) {
  std::unique_ptr<Botan::Private_Key> key;
  try {
    key = load_pkcs8(pkcs8);
  } catch (const std::exception&) {
    return make_error_code(crypto_errc::bad_private_key);
  }
  const key_type type = detail::classify(*key);
  if (type != cert.key()) return make_error_code(crypto_errc::key_mismatch);
  const auto scheme = detail::signing_scheme(type);
  if (!scheme) return make_error_code(crypto_errc::unsupported_algorithm);
  std::optional<detail::ed25519_signing_key> ed25519;
  try {
    if (scheme->engine == detail::signature_engine::sodium) {
      ed25519 = sodium_key(*key);
      if (!ed25519) return make_error_code(crypto_errc::bad_private_key);
    }
    // The key belongs to the certificate if what it signs, by the engine that will sign,
    // verifies with the certificate's key by the engine that will verify (robust against
    // different encodings of the same public key).
    static constexpr std::uint8_t probe[] = {'p', '2', 'p', 's', 'i', 'p'};
    const pr::bytes sig = ed25519 ? ed25519->sign(probe) : raw_sign(*key, *scheme, probe);
    bool verified = false;
    if (ed25519) {
      verified = static_cast<bool>(cert.verify(scheme->algorithm, probe, sig));
    } else {
      // A verifier of our own: certificate::verify on a full certificate keeps the one it
      // builds (its precomputed tables, ~2 KiB for ECDSA), which one check does not need.
      Botan::PK_Verifier verifier(cert.public_key(), scheme->padding,
                                  scheme->der_sequence ? Botan::DER_SEQUENCE : Botan::IEEE_1363);
      verified = verifier.verify_message(probe, sizeof probe, sig.data(), sig.size());
    }
    if (!verified) return make_error_code(crypto_errc::key_mismatch);
  } catch (const std::exception&) {
    return make_error_code(crypto_errc::key_mismatch);
  }
  auto p = std::make_shared<impl>(std::move(cert), std::move(chain), std::move(key), *scheme,
                                  std::move(ed25519));
  return node_identity(std::move(p));
}

const certificate& node_identity::cert() const noexcept {
  return impl_->cert;
}
const std::vector<pr::bytes>& node_identity::chain() const noexcept {
  return impl_->chain;
}
key_type node_identity::key() const noexcept {
  return impl_->cert.key();
}
pr::signature_and_hash_algorithm node_identity::algorithm() const noexcept {
  return impl_->scheme.algorithm;
}
const pr::node_id& node_identity::default_node_id() const noexcept {
  return impl_->cert.node_ids().front();
}
const Botan::Private_Key& node_identity::private_key() const noexcept {
  return *impl_->key;
}
std::shared_ptr<const Botan::Private_Key> node_identity::shared_private_key() const noexcept {
  return std::shared_ptr<const Botan::Private_Key>(impl_, impl_->key.get());
}

result<pr::bytes> node_identity::sign(pr::byte_view data) const {
  detail::count_signature_made();
  if (impl_->ed25519) {
    try {
      return impl_->ed25519->sign(data);
    } catch (const std::exception&) {  // only std::bad_alloc
      return make_error_code(crypto_errc::signing_failed);
    }
  }
  std::unique_lock lock(impl_->signer_mutex, std::try_to_lock);
  try {
    if (!lock.owns_lock()) return raw_sign(*impl_->key, impl_->scheme, data);
    Botan::RandomNumberGenerator& rng = detail::thread_rng();
    if (!impl_->signer) {
      impl_->signer = std::make_unique<Botan::PK_Signer>(
          *impl_->key, rng, impl_->scheme.padding,
          impl_->scheme.der_sequence ? Botan::DER_SEQUENCE : Botan::IEEE_1363);
    }
    const auto sig = impl_->signer->sign_message(data.data(), data.size(), rng);
    return pr::bytes(sig.begin(), sig.end());
  } catch (const std::exception&) {
    if (lock.owns_lock()) impl_->signer.reset();  // its state is unknown after a failure
    return make_error_code(crypto_errc::signing_failed);
  }
}

std::string node_identity::private_key_pem() const {
  try {
    return Botan::PKCS8::PEM_encode(*impl_->key);
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace p2psip::crypto
