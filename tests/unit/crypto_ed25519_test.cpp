// Ed25519 through p2psip::crypto (libsodium since issue 14) against Botan 2's Ed25519: the same
// key and bytes give byte-identical signatures (RFC 8032 section 7.1 vectors 1-3, random keys,
// a long message), each library verifies the other's, and what must not verify does not (a
// flipped bit in signature, message or key; wrong lengths; a non-canonical S).

#include <doctest/doctest.h>

#include <botan/ed25519.h>
#include <botan/pkcs8.h>
#include <botan/pubkey.h>

#include <algorithm>
#include <string>

#include "p2psip/crypto/signatures.hpp"
#include "test_pki.hpp"

namespace cr = p2psip::crypto;
namespace pr = p2psip::protocol;
using namespace p2psip::test_pki;

namespace {

constexpr pr::signature_and_hash_algorithm ed25519_alg{pr::hash_algorithm::intrinsic,
                                                       pr::signature_algorithm::ed25519};

const test_ca& overlay_ca() {
  static const test_ca ca("ed25519 test overlay CA");
  return ca;
}

pr::bytes hex(std::string_view text) {
  pr::bytes out;
  REQUIRE(pr::from_hex(text, out));
  return out;
}

/// A node identity whose Ed25519 private key is the RFC 8032 seed `seed`, certified by the test
/// CA; also Botan's own key object for the same seed.
struct seeded {
  cr::node_identity id;
  Botan::Ed25519_PrivateKey botan_key;
};

seeded from_seed(const pr::bytes& seed, std::uint8_t node) {
  Botan::Ed25519_PrivateKey key(Botan::secure_vector<std::uint8_t>(seed.begin(), seed.end()));
  const auto p8 = Botan::PKCS8::BER_encode(key);
  const pr::bytes pkcs8(p8.begin(), p8.end());
  auto cert = cr::certificate::parse(overlay_ca().certify(pkcs8, spec_for({test_node(node)})),
                                     example_overlay());
  REQUIRE(cert);
  auto id = cr::node_identity::create(*cert, pkcs8);
  REQUIRE(id);
  return seeded{*id, key};
}

pr::bytes botan_sign(const Botan::Private_Key& key, pr::byte_view data) {
  Botan::PK_Signer signer(key, rng(), "Pure");
  const auto sig = signer.sign_message(data.data(), data.size(), rng());
  return pr::bytes(sig.begin(), sig.end());
}

bool botan_verify(const Botan::Public_Key& key, pr::byte_view data, pr::byte_view sig) {
  Botan::PK_Verifier verifier(key, "Pure");
  return verifier.verify_message(data.data(), data.size(), sig.data(), sig.size());
}

cr::crypto_errc errc_of(const std::error_code& ec) {
  REQUIRE(ec.category() == cr::crypto_category());
  return static_cast<cr::crypto_errc>(ec.value());
}

/// Both libraries sign `msg` with the same key into the same bytes, and each verifies the other.
void check_same_signature(const seeded& s, const pr::bytes& msg) {
  CAPTURE(msg.size());
  auto ours = s.id.sign(msg);
  REQUIRE(ours);
  const pr::bytes theirs = botan_sign(s.botan_key, msg);
  REQUIRE(ours->size() == 64);
  CHECK(*ours == theirs);
  CHECK(s.id.cert().verify(ed25519_alg, msg, theirs));        // libsodium verifies Botan's
  CHECK(botan_verify(s.id.cert().public_key(), msg, *ours));  // Botan verifies libsodium's
}

struct rfc8032_vector {
  const char* seed;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1, TEST 1, TEST 2 and TEST 3.
constexpr rfc8032_vector rfc8032[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b"
     "4"
     "6bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11"
     "d"
     "8c387b2eaeb4302aeeb00d291612bb0c00"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc"
     "6"
     "594a7c15e9716ed28dc027beceea1ec40a"},
};

/// Messages of the lengths RELOAD signs, up to a long one (a 64 KiB + 1 value).
std::vector<pr::bytes> message_set() {
  std::vector<pr::bytes> out;
  for (std::size_t len : {0u, 1u, 2u, 31u, 32u, 33u, 64u, 300u, 1023u, 4096u, 65537u}) {
    pr::bytes m(len);
    for (std::size_t i = 0; i < len; ++i) m[i] = static_cast<std::uint8_t>(i * 131 + len);
    out.push_back(std::move(m));
  }
  return out;
}

/// The Ed25519 group order L, little-endian, as in the signature's S.
constexpr std::uint8_t group_order[32] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};

}  // namespace

TEST_SUITE("crypto Ed25519: libsodium and Botan") {
  TEST_CASE("RFC 8032 section 7.1 vectors 1-3: the expected signature from both libraries") {
    std::uint8_t node = 40;
    for (const auto& v : rfc8032) {
      CAPTURE(v.seed);
      const seeded s = from_seed(hex(v.seed), node++);
      const auto& pk = dynamic_cast<const Botan::Ed25519_PublicKey&>(s.id.cert().public_key());
      CHECK(pr::to_hex(pk.get_public_key()) == v.public_key);
      const pr::bytes msg = hex(v.message);
      auto ours = s.id.sign(msg);
      REQUIRE(ours);
      CHECK(pr::to_hex(*ours) == v.signature);
      check_same_signature(s, msg);
      CHECK(s.id.cert().verify(ed25519_alg, msg, hex(v.signature)));
    }
  }

  TEST_CASE("random keys and messages up to 64 KiB: byte-identical, each verifies the other's") {
    for (std::uint8_t node = 50; node < 55; ++node) {
      const auto pkcs8 = cr::generate_private_key(cr::key_type::ed25519);
      REQUIRE(pkcs8);
      const auto key = load_key(*pkcs8);
      const auto& ed = dynamic_cast<const Botan::Ed25519_PrivateKey&>(*key);
      const auto& secret = ed.get_private_key();
      const seeded s = from_seed(pr::bytes(secret.begin(), secret.begin() + 32), node);
      for (const pr::bytes& msg : message_set()) check_same_signature(s, msg);
    }
  }

  TEST_CASE("a whole message and a StoredData value: the wire bytes do not depend on the library") {
    const seeded s = from_seed(hex(rfc8032[0].seed), 60);
    pr::message m;
    m.header.overlay = pr::overlay_hash("example.org");
    m.header.transaction_id = 0x1122334455667788;
    m.contents.code = pr::codes::store_req;
    m.contents.body.assign(300, 0x5A);
    REQUIRE(cr::sign_message(m, s.id));
    const pr::bytes input = pr::message_signature_input(m.header.overlay, m.header.transaction_id,
                                                        m.contents, m.security.signature.identity);
    CHECK(m.security.signature.value == botan_sign(s.botan_key, input));

    pr::stored_data d;
    d.storage_time = 1'700'000'000'000;
    d.lifetime = 60;
    d.value = pr::data_value{true, pr::bytes(1000, 0x33)};
    const pr::resource_id resource = pr::hash_resource_name("alice@example.org");
    REQUIRE(cr::sign_stored_data(d, resource, pr::kinds::sip_registration, s.id));
    const pr::bytes data_input = pr::data_signature_input(
        resource, pr::kinds::sip_registration, d.storage_time, d.value, d.signature.identity);
    CHECK(d.signature.value == botan_sign(s.botan_key, data_input));
  }

  TEST_CASE("a flipped bit in the signature, the message or the key does not verify") {
    const seeded s = from_seed(hex(rfc8032[2].seed), 61);
    const cr::certificate& cert = s.id.cert();
    const pr::bytes msg = message_set()[7];  // 300 bytes
    const pr::bytes sig = *s.id.sign(msg);
    REQUIRE(cert.verify(ed25519_alg, msg, sig));

    SUBCASE("signature: every bit of R and S") {
      for (std::size_t bit = 0; bit < sig.size() * 8; ++bit) {
        pr::bytes bad = sig;
        bad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        auto r = cert.verify(ed25519_alg, msg, bad);
        CAPTURE(bit);
        REQUIRE_FALSE(r);
        CHECK(errc_of(r.error()) == cr::crypto_errc::bad_signature);
      }
    }
    SUBCASE("message: first, middle and last bit") {
      for (std::size_t bit : {std::size_t{0}, msg.size() * 4 + 3, msg.size() * 8 - 1}) {
        pr::bytes bad = msg;
        bad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        auto r = cert.verify(ed25519_alg, bad, sig);
        CAPTURE(bit);
        REQUIRE_FALSE(r);
        CHECK(errc_of(r.error()) == cr::crypto_errc::bad_signature);
      }
    }
    SUBCASE("key: a certificate whose public key differs in one bit") {
      // The certificate's own signature no longer holds (the trust store would refuse it); the
      // point here is that our verification with that key refuses the signature too.
      const auto& pk = dynamic_cast<const Botan::Ed25519_PublicKey&>(cert.public_key());
      const pr::bytes key(pk.get_public_key().begin(), pk.get_public_key().end());
      const pr::bytes& der = cert.der();
      const auto at = std::search(der.begin(), der.end(), key.begin(), key.end());
      REQUIRE(at != der.end());
      const auto offset = static_cast<std::size_t>(at - der.begin());
      int checked = 0;
      for (std::size_t bit : {0u, 9u, 100u, 200u, 254u}) {
        pr::bytes bad_der = der;
        bad_der[offset + bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
        auto bad_cert = cr::certificate::parse(bad_der, example_overlay());
        if (!bad_cert) continue;  // Botan may refuse a key that is not a point at parse time
        ++checked;
        auto r = bad_cert->verify(ed25519_alg, msg, sig);
        CAPTURE(bit);
        REQUIRE_FALSE(r);
        CHECK(errc_of(r.error()) == cr::crypto_errc::bad_signature);
      }
      CHECK(checked > 0);
    }
  }

  TEST_CASE("malformed and non-canonical signature values are refused cleanly") {
    const seeded s = from_seed(hex(rfc8032[1].seed), 62);
    const cr::certificate& cert = s.id.cert();
    const pr::bytes msg = hex(rfc8032[1].message);
    const pr::bytes sig = hex(rfc8032[1].signature);
    REQUIRE(cert.verify(ed25519_alg, msg, sig));

    auto refused = [&](const pr::bytes& value) {
      auto r = cert.verify(ed25519_alg, msg, value);
      REQUIRE_FALSE(r);
      return errc_of(r.error());
    };
    for (std::size_t len : {0u, 1u, 32u, 63u, 65u, 128u}) {
      CAPTURE(len);
      pr::bytes value = sig;
      value.resize(len, 0);
      CHECK(refused(value) == cr::crypto_errc::bad_signature);
    }
    // S + L: the same point equation holds (the scalar is taken mod L), but S >= L is not the
    // canonical encoding RFC 8032 section 5.1.7 requires; accepting it would make signatures
    // malleable.
    pr::bytes malleated = sig;
    unsigned carry = 0;
    for (std::size_t i = 0; i < 32; ++i) {
      const unsigned sum = malleated[32 + i] + group_order[i] + carry;
      malleated[32 + i] = static_cast<std::uint8_t>(sum);
      carry = sum >> 8;
    }
    REQUIRE(carry == 0);
    CHECK(refused(malleated) == cr::crypto_errc::bad_signature);
    // All zeros (R is then a small-order point) and all ones (S far above L).
    CHECK(refused(pr::bytes(64, 0x00)) == cr::crypto_errc::bad_signature);
    CHECK(refused(pr::bytes(64, 0xFF)) == cr::crypto_errc::bad_signature);
    // R = the identity point (small order), S = 0.
    pr::bytes identity_r(64, 0x00);
    identity_r[0] = 0x01;
    CHECK(refused(identity_r) == cr::crypto_errc::bad_signature);
    // The algorithm must say Ed25519 with "intrinsic" hashing.
    auto wrong =
        cert.verify({pr::hash_algorithm::sha256, pr::signature_algorithm::ed25519}, msg, sig);
    REQUIRE_FALSE(wrong);
    CHECK(errc_of(wrong.error()) == cr::crypto_errc::unsupported_algorithm);
    // After all that, the good value still verifies (nothing is kept between calls).
    CHECK(cert.verify(ed25519_alg, msg, sig));
  }

  TEST_CASE("an Ed25519 key that is not the certificate's is refused at create()") {
    const seeded a = from_seed(hex(rfc8032[0].seed), 63);
    const pr::bytes seed = hex(rfc8032[1].seed);
    Botan::Ed25519_PrivateKey other(Botan::secure_vector<std::uint8_t>(seed.begin(), seed.end()));
    const auto p8 = Botan::PKCS8::BER_encode(other);
    auto id = cr::node_identity::create(a.id.cert(), pr::bytes(p8.begin(), p8.end()));
    REQUIRE_FALSE(id);
    CHECK(errc_of(id.error()) == cr::crypto_errc::key_mismatch);
  }
}
