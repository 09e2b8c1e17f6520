// Node certificates (RFC 6940 section 11.3) and the trust store: reload:// URIs in both forms,
// multi-Node-ID certificates, chains to the overlay root at a given time, and the cache.

#include <doctest/doctest.h>

#include <botan/hash.h>
#include <botan/pem.h>

#include "p2psip/crypto/trust_store.hpp"
#include "test_pki.hpp"

namespace cr = p2psip::crypto;
namespace pr = p2psip::protocol;
using namespace p2psip::test_pki;
using namespace std::chrono_literals;

namespace {

const test_ca& overlay_ca() {
  static const test_ca ca("example.org overlay CA");
  return ca;
}

pr::bytes issue(const cert_spec& spec, cr::key_type type = cr::key_type::ecdsa_p256,
                const test_ca& ca = overlay_ca()) {
  return ca.certify(*cr::generate_private_key(type), spec);
}

std::unique_ptr<cr::trust_store> store_with_root(const test_ca& ca = overlay_ca()) {
  auto store = std::make_unique<cr::trust_store>(example_overlay());
  REQUIRE(store->add_root(ca.der()));
  return store;
}

}  // namespace

TEST_SUITE("crypto certificate") {
  TEST_CASE("reload URI: the RFC form and the bare form give the same Node-ID") {
    const pr::node_id id = test_node(1);
    const auto rfc =
        cr::parse_reload_uri(cr::make_reload_uri(id, "example.org"), example_overlay());
    REQUIRE(rfc);
    CHECK(*rfc == id);
    CHECK(cr::make_reload_uri(id, "example.org") == "reload://0110" + id.hex() + "@example.org/");

    const auto bare =
        cr::parse_reload_uri("reload://" + id.hex() + "@example.org", example_overlay());
    REQUIRE(bare);
    CHECK(*bare == id);

    // Case does not matter in the hex, the scheme or the overlay name.
    std::string upper = "RELOAD://0110" + id.hex() + "@Example.ORG/";
    for (auto& c : upper) {
      if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
    }
    const auto up = cr::parse_reload_uri(upper, example_overlay());
    REQUIRE(up);
    CHECK(*up == id);
  }

  TEST_CASE("reload URI: refusals") {
    const std::string hex = test_node(2).hex();
    auto err = [](std::string_view uri) {
      auto r = cr::parse_reload_uri(uri, example_overlay());
      REQUIRE_FALSE(r);
      return r.error();
    };
    CHECK(err("reload://0110" + hex + "@other.org/") == cr::crypto_errc::wrong_overlay);
    CHECK(err("reload://0110" + hex + "@example.org/0102") == cr::crypto_errc::bad_reload_uri);
    CHECK(err("reload://0110" + hex + "example.org/") == cr::crypto_errc::bad_reload_uri);
    CHECK(err("reload://0210" + hex + "@example.org/") == cr::crypto_errc::bad_reload_uri);
    CHECK(err("reload://0111" + hex + "@example.org/") == cr::crypto_errc::bad_reload_uri);
    CHECK(err("reload://" + hex.substr(2) + "@example.org") == cr::crypto_errc::bad_reload_uri);
    CHECK(err("reload://0110" + hex.substr(0, 31) + "x@example.org/") ==
          cr::crypto_errc::bad_reload_uri);
    CHECK(err("reload://0110" + std::string(32, '0') + "@example.org/") ==
          cr::crypto_errc::bad_reload_uri);
    CHECK(err("sip:alice@example.org") == cr::crypto_errc::bad_reload_uri);
    CHECK(err("reload://0110" + hex + "@/") == cr::crypto_errc::bad_reload_uri);
  }

  TEST_CASE("reload URI: a 20-byte overlay reads 20-byte ids only") {
    const cr::overlay_params wide{"example.org", 20};
    pr::bytes raw(20, 0x42);
    const auto id = *pr::node_id::from_bytes(raw);
    auto r = cr::parse_reload_uri(cr::make_reload_uri(id, "example.org"), wide);
    REQUIRE(r);
    CHECK(*r == id);
    CHECK_FALSE(cr::parse_reload_uri(cr::make_reload_uri(test_node(3), "example.org"), wide));
  }

  TEST_CASE("parse: one Node-ID in the RFC form, user name, validity, key type") {
    cert_spec spec = spec_for({test_node(4)});
    const pr::bytes der = issue(spec);
    auto cert = cr::certificate::parse(der, example_overlay());
    REQUIRE(cert);
    REQUIRE(cert->node_ids().size() == 1);
    CHECK(cert->node_ids().front() == test_node(4));
    CHECK(cert->has_node_id(test_node(4)));
    CHECK_FALSE(cert->has_node_id(test_node(5)));
    CHECK(cert->user() == "alice@example.org");
    CHECK(cert->not_before() == spec.not_before);
    CHECK(cert->not_after() == spec.not_after);
    CHECK(cert->valid_at(test_now()));
    CHECK_FALSE(cert->valid_at(spec.not_after + 1s));
    CHECK_FALSE(cert->valid_at(spec.not_before - 1s));
    CHECK(cert->key() == cr::key_type::ecdsa_p256);
    CHECK(cert->der() == der);
    CHECK(cert->generic().type == 0);
    CHECK(cert->generic().certificate == der);
  }

  TEST_CASE("parse: the bare URI form and several Node-IDs") {
    cert_spec spec = spec_for({test_node(6), test_node(7), test_node(8)}, "bob@example.org");
    spec.form = uri_form::bare;
    auto cert = cr::certificate::parse(issue(spec, cr::key_type::ed25519), example_overlay());
    REQUIRE(cert);
    CHECK(cert->node_ids().size() == 3);
    for (auto n : {6, 7, 8}) CHECK(cert->has_node_id(test_node(static_cast<std::uint8_t>(n))));
    CHECK(cert->user() == "bob@example.org");
    CHECK(cert->key() == cr::key_type::ed25519);
  }

  TEST_CASE("parse: non-reload URIs are ignored, duplicates collapse") {
    cert_spec spec = spec_for({test_node(9)});
    spec.extra_uris = {"https://example.org/", "reload://" + test_node(9).hex() + "@example.org"};
    auto cert = cr::certificate::parse(issue(spec), example_overlay());
    REQUIRE(cert);
    CHECK(cert->node_ids().size() == 1);
  }

  TEST_CASE("parse: refusals") {
    SUBCASE("another overlay's certificate") {
      cert_spec spec = spec_for({test_node(10)});
      spec.overlay = "other.org";
      auto r = cr::certificate::parse(issue(spec), example_overlay());
      REQUIRE_FALSE(r);
      CHECK(r.error() == cr::crypto_errc::wrong_overlay);
    }
    SUBCASE("no Node-ID") {
      auto r = cr::certificate::parse(issue(spec_for({})), example_overlay());
      REQUIRE_FALSE(r);
      CHECK(r.error() == cr::crypto_errc::no_node_id);
    }
    SUBCASE("a broken Node-ID URI for this overlay") {
      cert_spec spec = spec_for({test_node(11)});
      spec.extra_uris = {"reload://0110zz@example.org/"};
      auto r = cr::certificate::parse(issue(spec), example_overlay());
      REQUIRE_FALSE(r);
      CHECK(r.error() == cr::crypto_errc::bad_reload_uri);
    }
    SUBCASE("two user names") {
      cert_spec spec = spec_for({test_node(12)});
      spec.extra_users = {"mallory@example.org"};
      auto r = cr::certificate::parse(issue(spec), example_overlay());
      REQUIRE_FALSE(r);
      CHECK(r.error() == cr::crypto_errc::multiple_user_names);
    }
    SUBCASE("garbage and truncation") {
      const pr::bytes der = issue(spec_for({test_node(13)}));
      CHECK(cr::certificate::parse(pr::bytes{0x30, 0x03, 0x01, 0x01, 0xFF}, example_overlay())
                .error() == cr::crypto_errc::malformed_certificate);
      CHECK(cr::certificate::parse(pr::byte_view(der).first(der.size() - 10), example_overlay())
                .error() == cr::crypto_errc::malformed_certificate);
      CHECK(cr::certificate::parse({}, example_overlay()).error() ==
            cr::crypto_errc::malformed_certificate);
    }
  }

  TEST_CASE("SignerIdentity: cert_hash for one Node-ID, cert_hash_node_id for several") {
    auto one = *cr::certificate::parse(issue(spec_for({test_node(14)})), example_overlay());
    auto id = one.signer_identity_for(test_node(14));
    REQUIRE(id);
    CHECK(id->type == static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash));
    CHECK(id->hash.hash_alg == pr::hash_algorithm::sha256);
    CHECK(id->hash.hash == pr::bytes(one.sha256().begin(), one.sha256().end()));
    CHECK(*one.match(*id) == test_node(14));
    CHECK(one.signer_identity_for(test_node(15)).error() ==
          cr::crypto_errc::node_id_not_in_certificate);

    auto many =
        *cr::certificate::parse(issue(spec_for({test_node(16), test_node(17)})), example_overlay());
    auto second = many.signer_identity_for(test_node(17));
    REQUIRE(second);
    CHECK(second->type == static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash_node_id));
    CHECK(*many.match(*second) == test_node(17));
    CHECK(one.match(*second).error() == cr::crypto_errc::signer_not_found);

    // cert_hash cannot say which of several Node-IDs signs.
    pr::signer_identity plain;
    plain.type = static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash);
    plain.hash.hash.assign(many.sha256().begin(), many.sha256().end());
    CHECK(many.match(plain).error() == cr::crypto_errc::wrong_signer_identity_type);

    // SHA-1 identities are refused.
    pr::signer_identity sha1 = *id;
    sha1.hash.hash_alg = pr::hash_algorithm::sha1;
    CHECK(one.match(sha1).error() == cr::crypto_errc::unsupported_signer_identity);
  }
}

TEST_SUITE("crypto trust store") {
  TEST_CASE("chain to the root at a given time") {
    auto store = store_with_root();
    CHECK(store->root_count() == 1);
    cert_spec spec = spec_for({test_node(20)});
    auto cert = *store->parse(issue(spec));
    CHECK(store->check(cert, {}, test_now()));
    CHECK(store->check(cert, {}, spec.not_before));
    CHECK(store->check(cert, {}, spec.not_after));
    CHECK(store->check(cert, {}, spec.not_after + 1s).error() ==
          cr::crypto_errc::certificate_expired);
    CHECK(store->check(cert, {}, spec.not_before - 1s).error() ==
          cr::crypto_errc::certificate_not_yet_valid);
  }

  TEST_CASE("a certificate of another CA is untrusted") {
    auto store = store_with_root();
    const test_ca other("other.org overlay CA");
    auto cert = *store->parse(issue(spec_for({test_node(21)}), cr::key_type::ecdsa_p256, other));
    CHECK(store->check(cert, {}, test_now()).error() == cr::crypto_errc::untrusted_certificate);
    // An empty store trusts nothing.
    cr::trust_store empty(example_overlay());
    CHECK(empty.check(cert, {}, test_now()).error() == cr::crypto_errc::untrusted_certificate);
  }

  TEST_CASE("expired and not yet valid certificates") {
    auto store = store_with_root();
    cert_spec expired = spec_for({test_node(22)});
    expired.not_before = test_now() - 48h;
    expired.not_after = test_now() - 1h;
    auto e = *store->parse(issue(expired));
    CHECK(store->check(e, {}, test_now()).error() == cr::crypto_errc::certificate_expired);
    // The verdict is cached: at a time inside the window the chain is fine.
    CHECK(store->check(e, {}, test_now() - 2h));
    const auto validations = store->stats().path_validations;
    CHECK(store->check(e, {}, test_now()).error() == cr::crypto_errc::certificate_expired);
    CHECK(store->stats().path_validations == validations);

    cert_spec future = spec_for({test_node(23)});
    future.not_before = test_now() + 1h;
    future.not_after = test_now() + 48h;
    auto f = *store->parse(issue(future));
    CHECK(store->check(f, {}, test_now()).error() == cr::crypto_errc::certificate_not_yet_valid);
    CHECK(store->check(f, {}, test_now() + 2h));
  }

  TEST_CASE("an expired root makes every chain expired") {
    const test_ca old("old CA", cr::key_type::ecdsa_p256, test_now() - 24h * 10,
                      test_now() + 24h * 10);
    auto store = store_with_root(old);
    cert_spec spec = spec_for({test_node(24)});
    spec.not_after = test_now() + 24h * 20;
    auto cert = *store->parse(issue(spec, cr::key_type::ecdsa_p256, old));
    CHECK(store->check(cert, {}, test_now()));
    CHECK(store->check(cert, {}, test_now() + 24h * 15).error() ==
          cr::crypto_errc::certificate_expired);
  }

  TEST_CASE("an intermediate CA from the security block's bucket") {
    auto store = store_with_root();
    const test_ca sub = overlay_ca().intermediate("enrollment CA 1");
    auto cert = *store->parse(issue(spec_for({test_node(25)}), cr::key_type::ed25519, sub));
    CHECK(store->check(cert, {}, test_now()).error() == cr::crypto_errc::untrusted_certificate);
    store->clear_cache();
    const std::vector<pr::generic_certificate> bucket{cert.generic(), {0, sub.der()}};
    CHECK(store->check(cert, bucket, test_now()));
    // Once validated, the bucket is not needed any more.
    CHECK(store->check(cert, {}, test_now()));
  }

  TEST_CASE("roots must be CA certificates") {
    cr::trust_store store(example_overlay());
    CHECK(store.add_root(issue(spec_for({test_node(26)}))).error() == cr::crypto_errc::not_a_ca);
    CHECK(store.add_root(pr::bytes{1, 2, 3}).error() == cr::crypto_errc::malformed_certificate);
    CHECK(store.root_count() == 0);
  }

  TEST_CASE("cache: the same certificate twice is validated once") {
    auto store = store_with_root();
    const pr::bytes der = issue(spec_for({test_node(27)}));
    auto cert = *store->parse(der);
    CHECK(store->stats().path_validations == 0);
    CHECK(store->check(cert, {}, test_now()));
    CHECK(store->stats().path_validations == 1);
    auto again = *store->parse(der);  // a second message carrying the same certificate
    CHECK(store->stats().parse_cache_hits == 1);
    CHECK(store->check(again, {}, test_now() + 1h));
    CHECK(store->stats().path_validations == 1);
    CHECK(store->stats().chain_cache_hits == 1);

    // A refused chain is cached as well.
    const test_ca other("other CA");
    auto foreign = *store->parse(issue(spec_for({test_node(28)}), cr::key_type::ecdsa_p256, other));
    CHECK_FALSE(store->check(foreign, {}, test_now()));
    CHECK_FALSE(store->check(foreign, {}, test_now()));
    CHECK(store->stats().path_validations == 2);

    // Adding a root starts again: the foreign chain may now be trusted.
    REQUIRE(store->add_root(other.der()));
    CHECK(store->stats().cached_certificates == 0);
    CHECK(store->check(foreign, {}, test_now()));
  }

  TEST_CASE("cache: bounded, least recently used goes first") {
    cr::trust_store store(example_overlay(), 2);
    REQUIRE(store.add_root(overlay_ca().der()));
    std::vector<cr::certificate> certs;
    for (std::uint8_t i = 0; i < 3; ++i) {
      certs.push_back(
          *store.parse(issue(spec_for({test_node(static_cast<std::uint8_t>(30 + i))}))));
    }
    CHECK(store.stats().cached_certificates == 2);
    CHECK(store.check(certs[0], {}, test_now()));  // evicted before, validated again
    CHECK(store.check(certs[2], {}, test_now()));
    CHECK(store.stats().path_validations == 2);
    CHECK(store.check(certs[0], {}, test_now()));  // hit
    CHECK(store.check(certs[1], {}, test_now()));  // miss: evicts certs[2]
    CHECK(store.check(certs[2], {}, test_now()));  // miss
    CHECK(store.stats().path_validations == 4);
    CHECK(store.stats().cached_certificates == 2);
  }

  TEST_CASE("roots from PEM") {
    cr::trust_store store(example_overlay());
    const std::string pem =
        "junk before\n" + Botan::PEM_Code::encode(overlay_ca().der(), "CERTIFICATE") + "after\n";
    REQUIRE(store.add_roots_pem(pem));
    CHECK(store.root_count() == 1);
    CHECK(store.add_roots_pem("no pem here").error() == cr::crypto_errc::no_certificate_in_file);
    CHECK(store.add_roots_pem("-----BEGIN CERTIFICATE-----\n!!!\n").error() ==
          cr::crypto_errc::bad_pem);
  }

  TEST_CASE("self-signed mode: Node-IDs must be the digest of the public key") {
    auto self_signed_cert = [](const pr::node_id& id, const pr::bytes& pkcs8) {
      cert_spec spec = spec_for({id}, "carol@example.org");
      spec.not_after = test_now() + 24h;
      return self_signed(pkcs8, spec);
    };
    const pr::bytes pkcs8 = *cr::generate_private_key(cr::key_type::ecdsa_p256);
    const pr::bytes spki = *cr::public_key_info(pkcs8);
    auto sha256 = Botan::HashFunction::create_or_throw("SHA-256");
    const auto digest = sha256->process(spki);
    const auto good_id = *pr::node_id::from_bytes(pr::byte_view(digest.data(), 16));

    cr::trust_store store(example_overlay());
    auto good = *store.parse(self_signed_cert(good_id, pkcs8));
    auto bad = *store.parse(self_signed_cert(test_node(40), pkcs8));
    CHECK(store.check(good, {}, test_now()).error() == cr::crypto_errc::untrusted_certificate);
    store.permit_self_signed(cr::self_signed_digest::sha256);
    CHECK(store.check(good, {}, test_now()));
    CHECK(store.check(good, {}, test_now() + 48h).error() == cr::crypto_errc::certificate_expired);
    CHECK(store.check(bad, {}, test_now()).error() ==
          cr::crypto_errc::self_signed_node_id_mismatch);
  }
}

// The trust store's cache keeps certificates in compact form (plain fields, no Botan
// X509_Certificate): it must give the same answers as the full form for every kind of
// certificate a node may present, good or bad.
TEST_SUITE("crypto certificate compact form") {
  namespace {

  /// A certificate (DER) and a signature over `signed_data` by its key.
  struct signed_sample {
    pr::bytes der;
    pr::signature_and_hash_algorithm algorithm;
    pr::bytes signature;
  };

  const pr::bytes signed_data{'h', 'e', 'l', 'l', 'o'};

  signed_sample sample(cr::key_type type, const cert_spec& spec, const test_ca& ca = overlay_ca()) {
    const pr::bytes pkcs8 = *cr::generate_private_key(type);
    const pr::bytes der = ca.certify(pkcs8, spec);
    auto cert = cr::certificate::parse(der, example_overlay());
    REQUIRE(cert);
    auto id = cr::node_identity::create(*cert, pkcs8);
    REQUIRE(id);
    auto value = id->sign(signed_data);
    REQUIRE(value);
    return signed_sample{der, id->algorithm(), *value};
  }

  /// The DER with one bit of its signature (the certificate's last byte) flipped: still a
  /// certificate that parses, but its CA's signature no longer verifies.
  pr::bytes forge(pr::bytes der) {
    der.back() ^= 0x01;
    return der;
  }

  /// What a trust store answers for `cert` at `now`, as an error code (empty: trusted).
  std::error_code verdict(const cr::certificate& cert, time_point now) {
    auto store = store_with_root();
    auto r = store->check(cert, {}, now);
    return r ? std::error_code{} : r.error();
  }

  }  // namespace

  TEST_CASE("the same fields and verdicts as the full form, per key type and case") {
    for (const cr::key_type type :
         {cr::key_type::ed25519, cr::key_type::ecdsa_p256, cr::key_type::rsa}) {
      CAPTURE(cr::key_type_name(type));
      cert_spec good = spec_for({test_node(60), test_node(61)});
      cert_spec expired = spec_for({test_node(62)});
      expired.not_before = test_now() - 48h;
      expired.not_after = test_now() - 1h;
      const test_ca other_ca("other.org overlay CA");
      // A CA with the overlay CA's name and another key: its certificates name the right issuer
      // but their signatures do not verify with the root's key.
      const test_ca impostor_ca("example.org overlay CA");

      const signed_sample valid = sample(type, good);
      struct case_ {
        const char* name;
        pr::bytes der;
        std::error_code expected;
      };
      const std::vector<case_> cases{
          {"valid", valid.der, {}},
          {"forged (signature bit flipped)", forge(valid.der),
           cr::crypto_errc::invalid_certificate_chain},
          // Botan looks the issuer up by name and key identifier: none of the roots is it.
          {"issued by an impostor of the CA", sample(type, good, impostor_ca).der,
           cr::crypto_errc::untrusted_certificate},
          {"expired", sample(type, expired).der, cr::crypto_errc::certificate_expired},
          {"issued by another CA", sample(type, good, other_ca).der,
           cr::crypto_errc::untrusted_certificate},
      };
      for (const case_& c : cases) {
        const std::string name = c.name;
        CAPTURE(name);
        auto full = cr::certificate::parse(c.der, example_overlay());
        auto compact = cr::certificate::parse_compact(c.der, example_overlay());
        REQUIRE(full);
        REQUIRE(compact);
        CHECK_FALSE(full->compact());
        CHECK(compact->compact());
        CHECK(compact->node_ids() == full->node_ids());
        CHECK(compact->user() == full->user());
        CHECK(compact->not_before() == full->not_before());
        CHECK(compact->not_after() == full->not_after());
        CHECK(compact->key() == full->key());
        CHECK(compact->key() == type);
        CHECK(compact->sha256() == full->sha256());
        CHECK(compact->der() == full->der());
        CHECK(*compact == *full);
        const std::error_code full_verdict = verdict(*full, test_now());
        CHECK(full_verdict == c.expected);
        CHECK(verdict(*compact, test_now()) == full_verdict);
        // Self-signed mode refuses a CA-issued certificate alike in both forms.
        auto self_signed_store = store_with_root();
        self_signed_store->permit_self_signed(cr::self_signed_digest::sha256);
        auto f = self_signed_store->check(*full, {}, test_now());
        cr::trust_store another(example_overlay());
        REQUIRE(another.add_root(overlay_ca().der()));
        another.permit_self_signed(cr::self_signed_digest::sha256);
        auto k = another.check(*compact, {}, test_now());
        CHECK(bool(f) == bool(k));
        if (!f && !k) CHECK(f.error() == k.error());
      }

      // Signatures: the good one verifies with both forms, a changed byte of the data or of the
      // value fails with both, an algorithm that is not the key's is refused by both.
      auto full = *cr::certificate::parse(valid.der, example_overlay());
      auto compact = *cr::certificate::parse_compact(valid.der, example_overlay());
      for (const cr::certificate* cert : {&full, &compact}) {
        CAPTURE(cert->compact());
        CHECK(cert->verify(valid.algorithm, signed_data, valid.signature));
        pr::bytes other_data = signed_data;
        other_data[0] ^= 1;
        CHECK(cert->verify(valid.algorithm, other_data, valid.signature).error() ==
              cr::crypto_errc::bad_signature);
        pr::bytes other_value = valid.signature;
        other_value[other_value.size() / 2] ^= 0x10;
        CHECK(cert->verify(valid.algorithm, signed_data, other_value).error() ==
              cr::crypto_errc::bad_signature);
        CHECK(cert->verify(valid.algorithm, signed_data, {}).error() ==
              cr::crypto_errc::bad_signature);
        pr::signature_and_hash_algorithm wrong = valid.algorithm;
        wrong.signature = type == cr::key_type::rsa ? pr::signature_algorithm::ecdsa
                                                    : pr::signature_algorithm::rsa;
        CHECK(cert->verify(wrong, signed_data, valid.signature).error() ==
              cr::crypto_errc::unsupported_algorithm);
      }
      // Botan's objects are still there when asked for (made again from the DER).
      CHECK(compact.botan_certificate().BER_encode() == full.botan_certificate().BER_encode());
      CHECK(compact.public_key().subject_public_key() == full.public_key().subject_public_key());
    }
  }

  TEST_CASE("the same refusals at parse as the full form") {
    cert_spec other_overlay = spec_for({test_node(63)});
    other_overlay.overlay = "other.org";
    cert_spec no_id = spec_for({});
    cert_spec two_users = spec_for({test_node(64)});
    two_users.extra_users = {"bob@example.org"};
    for (const pr::bytes& der : {issue(other_overlay), issue(no_id), issue(two_users),
                                 pr::bytes{0x30, 0x03, 0x02, 0x01, 0x01}, pr::bytes{}}) {
      auto full = cr::certificate::parse(der, example_overlay());
      auto compact = cr::certificate::parse_compact(der, example_overlay());
      REQUIRE_FALSE(full);
      REQUIRE_FALSE(compact);
      CHECK(compact.error() == full.error());
    }
  }

  TEST_CASE("the trust store caches the compact form and judges it as before") {
    auto store = store_with_root();
    const pr::bytes der = issue(spec_for({test_node(65)}), cr::key_type::ed25519);
    auto cert = store->parse(der);
    REQUIRE(cert);
    CHECK(cert->compact());
    CHECK(store->check(*cert, {}, test_now()));
    CHECK(store->check(*store->parse(forge(der)), {}, test_now()).error() ==
          cr::crypto_errc::invalid_certificate_chain);
  }
}
