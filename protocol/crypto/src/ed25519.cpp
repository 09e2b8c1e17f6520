#include "ed25519.hpp"

#include <sodium.h>

namespace p2psip::crypto::detail {

namespace pr = p2psip::protocol;

namespace {

/// sodium_init() exactly once per process, from whichever thread gets here first (a function's
/// static is initialised once even when threads race to it). libsodium picks its CPU-specific
/// implementations there.
bool sodium_ready() noexcept {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

static_assert(crypto_sign_ed25519_SEEDBYTES == ed25519_seed_size);
static_assert(crypto_sign_ed25519_PUBLICKEYBYTES == ed25519_public_key_size);
static_assert(crypto_sign_ed25519_SECRETKEYBYTES == 64);
static_assert(crypto_sign_ed25519_BYTES == ed25519_signature_size);

}  // namespace

std::optional<ed25519_signing_key> ed25519_signing_key::from_seed(
    std::span<const std::uint8_t, ed25519_seed_size> seed) noexcept {
  if (!sodium_ready()) return std::nullopt;
  ed25519_signing_key key;
  ed25519_public_key pk{};
  if (crypto_sign_ed25519_seed_keypair(pk.data(), key.secret_.data(), seed.data()) != 0) {
    return std::nullopt;
  }
  return key;
}

ed25519_signing_key::ed25519_signing_key(const ed25519_signing_key& other) noexcept
    : secret_(other.secret_) {}

ed25519_signing_key& ed25519_signing_key::operator=(const ed25519_signing_key& other) noexcept {
  secret_ = other.secret_;
  return *this;
}

ed25519_signing_key::~ed25519_signing_key() {
  sodium_memzero(secret_.data(), secret_.size());
}

ed25519_public_key ed25519_signing_key::public_key() const noexcept {
  ed25519_public_key pk{};
  crypto_sign_ed25519_sk_to_pk(pk.data(), secret_.data());
  return pk;
}

pr::bytes ed25519_signing_key::sign(pr::byte_view data) const {
  pr::bytes sig(ed25519_signature_size);
  // Cannot fail for a key from crypto_sign_ed25519_seed_keypair.
  crypto_sign_ed25519_detached(sig.data(), nullptr, data.data(), data.size(), secret_.data());
  return sig;
}

bool ed25519_verify(const ed25519_public_key& key, pr::byte_view data,
                    pr::byte_view signature) noexcept {
  if (signature.size() != ed25519_signature_size || !sodium_ready()) return false;
  return crypto_sign_ed25519_verify_detached(signature.data(), data.data(), data.size(),
                                             key.data()) == 0;
}

}  // namespace p2psip::crypto::detail
