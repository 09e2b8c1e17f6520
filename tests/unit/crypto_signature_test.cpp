// Message signatures (RFC 6940 section 6.3.4) and StoredData signatures (section 7.1): round
// trips for ECDSA P-256, Ed25519 and RSA, values signed by a foreign node's own code (ECDSA and
// RSA made with Botan directly), and every way a signature is refused.

#include <doctest/doctest.h>

#include <botan/hash.h>
#include <botan/pubkey.h>

#include <atomic>
#include <thread>

#include "p2psip/crypto/signatures.hpp"
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

std::unique_ptr<cr::trust_store> make_store() {
  auto store = std::make_unique<cr::trust_store>(example_overlay());
  REQUIRE(store->add_root(overlay_ca().der()));
  return store;
}

pr::message make_request(std::uint64_t txid = 0x0102030405060708) {
  pr::message m;
  m.header.overlay = pr::overlay_hash("example.org");
  m.header.transaction_id = txid;
  m.header.destination_list = {pr::to_destination(test_node(99))};
  m.contents.code = pr::codes::ping_req;
  m.contents.body = {0x00, 0x00, 0x00, 0x2A};
  return m;
}

pr::stored_data make_value() {
  pr::stored_data d;
  d.storage_time = 1'700'000'000'000;
  d.lifetime = 3600;
  d.value = pr::dictionary_entry{pr::to_bytes(test_node(1).view()), {true, {1, 2, 3, 4}}};
  return d;
}

cr::crypto_errc errc_of(const std::error_code& ec) {
  REQUIRE(ec.category() == cr::crypto_category());
  return static_cast<cr::crypto_errc>(ec.value());
}

}  // namespace

TEST_SUITE("crypto message signatures") {
  TEST_CASE("round trip per algorithm") {
    struct algo {
      cr::key_type key;
      pr::signature_and_hash_algorithm expected;
    };
    for (const algo a : {algo{cr::key_type::ecdsa_p256, {4, 3}},
                         algo{cr::key_type::ed25519, {8, 7}}, algo{cr::key_type::rsa, {4, 1}}}) {
      CAPTURE(cr::key_type_name(a.key));
      auto store = make_store();
      const auto id = make_identity(overlay_ca(), spec_for({test_node(1)}), a.key);
      CHECK(id.algorithm() == a.expected);

      pr::message m = make_request();
      REQUIRE(cr::sign_message(m, id));
      CHECK(m.security.signature.algorithm == a.expected);
      CHECK(m.security.signature.identity.type ==
            static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash));
      REQUIRE(m.security.certificates.size() == 1);
      CHECK(m.security.certificates.front().certificate == id.cert().der());
      if (a.key == cr::key_type::ed25519) CHECK(m.security.signature.value.size() == 64);
      if (a.key == cr::key_type::rsa) CHECK(m.security.signature.value.size() == 256);
      if (a.key == cr::key_type::ecdsa_p256) CHECK(m.security.signature.value.front() == 0x30);

      // Through the wire and back.
      auto wire = pr::encode_message(m, pr::limits{});
      REQUIRE(wire);
      auto decoded = pr::decode_message(*wire, pr::limits{});
      REQUIRE(decoded);
      auto signer = cr::verify_message(*decoded, *store, test_now());
      REQUIRE(signer);
      CHECK(signer->node == test_node(1));
      CHECK(signer->user() == "alice@example.org");
      CHECK(signer->cert == id.cert());
    }
  }

  TEST_CASE("the signature covers contents, transaction id and overlay, not the route") {
    auto store = make_store();
    const auto id = make_identity(overlay_ca(), spec_for({test_node(2)}), cr::key_type::ed25519);
    pr::message signed_msg = make_request();
    REQUIRE(cr::sign_message(signed_msg, id));

    SUBCASE("via list and TTL may change on the way") {
      pr::message m = signed_msg;
      m.header.via_list.push_back(pr::to_destination(test_node(50)));
      m.header.ttl = 42;
      CHECK(cr::verify_message(m, *store, test_now()));
    }
    SUBCASE("tampered body") {
      pr::message m = signed_msg;
      m.contents.body.back() ^= 1;
      CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
            cr::crypto_errc::bad_signature);
    }
    SUBCASE("tampered message code") {
      pr::message m = signed_msg;
      m.contents.code = pr::codes::ping_ans;
      CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
            cr::crypto_errc::bad_signature);
    }
    SUBCASE("tampered transaction id") {
      pr::message m = signed_msg;
      m.header.transaction_id ^= 0x100;
      CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
            cr::crypto_errc::bad_signature);
    }
    SUBCASE("replayed into another overlay") {
      pr::message m = signed_msg;
      m.header.overlay = pr::overlay_hash("other.org");
      CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
            cr::crypto_errc::bad_signature);
    }
    SUBCASE("tampered signature value") {
      pr::message m = signed_msg;
      m.security.signature.value[5] ^= 0x80;
      CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
            cr::crypto_errc::bad_signature);
      m.security.signature.value.resize(10);
      CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
            cr::crypto_errc::bad_signature);
    }
    SUBCASE("an algorithm that is not the key's") {
      pr::message m = signed_msg;
      m.security.signature.algorithm = {4, 3};
      CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
            cr::crypto_errc::unsupported_algorithm);
      m.security.signature.algorithm = {4, 7};  // ed25519 needs "intrinsic"
      CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
            cr::crypto_errc::unsupported_algorithm);
    }
  }

  TEST_CASE("a damaged ECDSA DER value is refused, not thrown") {
    auto store = make_store();
    const auto id = make_identity(overlay_ca(), spec_for({test_node(3)}));
    pr::message m = make_request();
    REQUIRE(cr::sign_message(m, id));
    m.security.signature.value[1] = 0x7F;  // SEQUENCE length beyond the value
    CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
          cr::crypto_errc::bad_signature);
    m.security.signature.value.clear();
    CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
          cr::crypto_errc::bad_signature);
    // The certificate keeps a verifier between calls: a refused value must not leave state
    // behind that spoils the next, good, signature.
    pr::message good = make_request();
    REQUIRE(cr::sign_message(good, id));
    CHECK(cr::verify_message(good, *store, test_now()));
    pr::message bad = good;
    bad.security.signature.value.push_back(0);  // not canonical DER: Botan throws
    CHECK_FALSE(cr::verify_message(bad, *store, test_now()));
    CHECK(cr::verify_message(good, *store, test_now()));
  }

  TEST_CASE("several threads sign and verify with the same identity and trust store") {
    auto store = make_store();
    const auto ecdsa = make_identity(overlay_ca(), spec_for({test_node(30)}));
    const auto ed = make_identity(overlay_ca(), spec_for({test_node(31)}), cr::key_type::ed25519);
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 10; ++i) {
          pr::message m = make_request(static_cast<std::uint64_t>(t * 100 + i));
          const auto& id = (i % 2 == 0) ? ecdsa : ed;
          if (!cr::sign_message(m, id)) ++failures;
          auto r = cr::verify_message(m, *store, test_now());
          if (!r || r->node != id.default_node_id()) ++failures;
          m.header.transaction_id += 1;
          if (cr::verify_message(m, *store, test_now())) ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(failures == 0);
    CHECK(store->stats().path_validations <= 8);  // at most one per certificate per thread race
  }

  TEST_CASE("a certificate of another overlay's CA is untrusted") {
    auto store = make_store();
    const test_ca intruder("intruder CA");
    const auto id = make_identity(intruder, spec_for({test_node(4)}));
    pr::message m = make_request();
    REQUIRE(cr::sign_message(m, id));
    const auto r = cr::verify_message(m, *store, test_now());
    CHECK(errc_of(r.error()) == cr::crypto_errc::untrusted_certificate);
    CHECK(cr::to_reload_errc(r.error()) == pr::reload_errc::forbidden);
  }

  TEST_CASE("a certificate naming another overlay is refused") {
    auto store = make_store();
    cert_spec spec = spec_for({test_node(5)});
    spec.overlay = "other.org";
    const auto id = make_identity(overlay_ca(), spec);
    pr::message m = make_request();
    REQUIRE(cr::sign_message(m, id));
    CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
          cr::crypto_errc::wrong_overlay);
  }

  TEST_CASE("expired and not yet valid signer certificates") {
    auto store = make_store();
    cert_spec spec = spec_for({test_node(6)});
    spec.not_before = test_now() - 48h;
    spec.not_after = test_now() - 1h;
    const auto expired = make_identity(overlay_ca(), spec, cr::key_type::ed25519);
    pr::message m = make_request();
    REQUIRE(cr::sign_message(m, expired));
    CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
          cr::crypto_errc::certificate_expired);

    const auto fresh = make_identity(overlay_ca(), spec_for({test_node(7)}));
    pr::message later = make_request();
    REQUIRE(cr::sign_message(later, fresh));
    CHECK(cr::verify_message(later, *store, test_now()));
    CHECK(errc_of(cr::verify_message(later, *store, test_now() + 24h * 31).error()) ==
          cr::crypto_errc::certificate_expired);
    CHECK(errc_of(cr::verify_message(later, *store, test_now() - 2h).error()) ==
          cr::crypto_errc::certificate_not_yet_valid);
  }

  TEST_CASE("several Node-IDs: cert_hash_node_id names the one that signs") {
    auto store = make_store();
    const auto id =
        make_identity(overlay_ca(), spec_for({test_node(8), test_node(9)}), cr::key_type::ed25519);
    pr::message m = make_request();
    REQUIRE(cr::sign_message(m, id, test_node(9)));
    CHECK(m.security.signature.identity.type ==
          static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash_node_id));
    auto signer = cr::verify_message(m, *store, test_now());
    REQUIRE(signer);
    CHECK(signer->node == test_node(9));

    pr::message other = make_request();
    CHECK(cr::sign_message(other, id, test_node(10)).error() ==
          cr::crypto_errc::node_id_not_in_certificate);
  }

  TEST_CASE("a certificate without the claimed Node-ID") {
    auto store = make_store();
    const auto id = make_identity(overlay_ca(), spec_for({test_node(11), test_node(12)}));
    // Correctly signed, but the identity claims a Node-ID the certificate does not hold.
    pr::message m = make_request();
    pr::signer_identity claimed;
    claimed.type = static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash_node_id);
    pr::bytes prefixed = pr::to_bytes(test_node(13).view());
    prefixed.insert(prefixed.end(), id.cert().der().begin(), id.cert().der().end());
    auto sha = Botan::HashFunction::create_or_throw("SHA-256");
    const auto h = sha->process(prefixed);
    claimed.hash.hash.assign(h.begin(), h.end());
    const pr::bytes input =
        pr::message_signature_input(m.header.overlay, m.header.transaction_id, m.contents, claimed);
    m.security.certificates = {id.cert().generic()};
    m.security.signature = {id.algorithm(), claimed, *id.sign(input)};
    CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
          cr::crypto_errc::signer_not_found);

    // cert_hash on a certificate with two Node-IDs does not say which one signs.
    pr::signer_identity plain;
    plain.type = static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash);
    plain.hash.hash.assign(id.cert().sha256().begin(), id.cert().sha256().end());
    const pr::bytes input2 =
        pr::message_signature_input(m.header.overlay, m.header.transaction_id, m.contents, plain);
    m.security.signature = {id.algorithm(), plain, *id.sign(input2)};
    CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
          cr::crypto_errc::wrong_signer_identity_type);
  }

  TEST_CASE("unsigned and unknown identities are refused") {
    auto store = make_store();
    const auto id = make_identity(overlay_ca(), spec_for({test_node(14)}));
    pr::message m = make_request();
    m.security.certificates = {id.cert().generic()};
    // The "unsigned" value of synthetic Fetch results.
    m.security.signature = pr::signature{};
    REQUIRE(m.security.signature.is_unsigned());
    auto r = cr::verify_message(m, *store, test_now());
    CHECK(errc_of(r.error()) == cr::crypto_errc::unsigned_signature);
    CHECK(cr::to_reload_errc(r.error()) == pr::reload_errc::forbidden);

    REQUIRE(cr::sign_message(m, id));
    pr::message none = m;
    none.security.signature.identity = pr::signer_identity{};  // type none
    CHECK(errc_of(cr::verify_message(none, *store, test_now()).error()) ==
          cr::crypto_errc::unsigned_signature);
    pr::message anonymous = m;
    anonymous.security.signature.algorithm = {};
    CHECK(errc_of(cr::verify_message(anonymous, *store, test_now()).error()) ==
          cr::crypto_errc::unsigned_signature);
    pr::message unknown = m;
    unknown.security.signature.identity.type = 9;
    CHECK(errc_of(cr::verify_message(unknown, *store, test_now()).error()) ==
          cr::crypto_errc::unsupported_signer_identity);
  }

  TEST_CASE("the signer's certificate from the lookup when the bucket lacks it") {
    auto store = make_store();
    const auto id = make_identity(overlay_ca(), spec_for({test_node(15)}));
    const auto stranger = make_identity(overlay_ca(), spec_for({test_node(16)}));
    pr::message m = make_request();
    REQUIRE(cr::sign_message(m, id));
    m.security.certificates.clear();
    CHECK(errc_of(cr::verify_message(m, *store, test_now()).error()) ==
          cr::crypto_errc::signer_not_found);

    int calls = 0;
    const cr::certificate_lookup known = [&](const pr::signer_identity&) {
      ++calls;
      return std::optional<cr::certificate>(id.cert());
    };
    auto signer = cr::verify_message(m, *store, test_now(), known);
    REQUIRE(signer);
    CHECK(signer->node == test_node(15));
    CHECK(calls == 1);

    // A lookup that answers with the wrong certificate does not fool the check.
    const cr::certificate_lookup wrong = [&](const pr::signer_identity&) {
      return std::optional<cr::certificate>(stranger.cert());
    };
    CHECK(errc_of(cr::verify_message(m, *store, test_now(), wrong).error()) ==
          cr::crypto_errc::signer_not_found);
  }

  TEST_CASE("sign_message keeps the certificates already in the bucket, once each") {
    const auto id = make_identity(overlay_ca(), spec_for({test_node(17)}));
    const auto other = make_identity(overlay_ca(), spec_for({test_node(18)}, "bob@example.org"));
    pr::message m = make_request();
    m.security.certificates = {other.cert().generic()};
    REQUIRE(cr::sign_message(m, id));
    REQUIRE(cr::sign_message(m, id));
    CHECK(m.security.certificates.size() == 2);
    auto store = make_store();
    CHECK(cr::verify_message(m, *store, test_now())->node == test_node(17));
  }

  TEST_CASE("a chain through an intermediate CA travels in the bucket") {
    auto store = make_store();
    const test_ca sub = overlay_ca().intermediate("enrollment CA 2");
    const auto id =
        make_identity(sub, spec_for({test_node(19)}), cr::key_type::ed25519, {sub.der()});
    pr::message m = make_request();
    REQUIRE(cr::sign_message(m, id));
    CHECK(m.security.certificates.size() == 2);
    CHECK(cr::verify_message(m, *store, test_now()));
  }

  TEST_CASE("RELOAD error mapping") {
    for (int e = 1; e <= static_cast<int>(cr::crypto_errc::unusable_link_key); ++e) {
      const auto ec = cr::make_error_code(static_cast<cr::crypto_errc>(e));
      CHECK(cr::to_reload_errc(ec) == pr::reload_errc::forbidden);
      CHECK_FALSE(ec.message().empty());
    }
    CHECK(cr::to_reload_errc(pr::make_error_code(pr::reload_errc::not_found)) ==
          pr::reload_errc::not_found);
    CHECK(cr::to_reload_errc(pr::make_error_code(pr::codec_errc::truncated)) ==
          pr::reload_errc::invalid_message);
  }
}

TEST_SUITE("crypto stored data signatures") {
  TEST_CASE("round trip for ECDSA, Ed25519 and RSA, bound to resource, kind and time") {
    const pr::resource_id resource = pr::hash_resource_name("alice@example.org");
    for (auto key : {cr::key_type::ecdsa_p256, cr::key_type::ed25519, cr::key_type::rsa}) {
      CAPTURE(cr::key_type_name(key));
      auto store = make_store();
      const auto id = make_identity(overlay_ca(), spec_for({test_node(1)}), key);
      pr::stored_data d = make_value();
      REQUIRE(cr::sign_stored_data(d, resource, pr::kinds::sip_registration, id));
      const std::vector<pr::generic_certificate> bucket{id.cert().generic()};

      auto signer = cr::verify_stored_data(d, resource, pr::kinds::sip_registration, bucket, *store,
                                           test_now());
      REQUIRE(signer);
      CHECK(signer->node == test_node(1));

      // The lifetime is not signed (RFC 6940 section 7.1): a replica may carry a shorter one.
      pr::stored_data shorter = d;
      shorter.lifetime = 10;
      CHECK(cr::verify_stored_data(shorter, resource, pr::kinds::sip_registration, bucket, *store,
                                   test_now()));

      auto refused = [&](const pr::stored_data& v, const pr::resource_id& r, std::uint32_t kind) {
        auto res = cr::verify_stored_data(v, r, kind, bucket, *store, test_now());
        REQUIRE_FALSE(res);
        return errc_of(res.error());
      };
      CHECK(refused(d, pr::hash_resource_name("bob@example.org"), pr::kinds::sip_registration) ==
            cr::crypto_errc::bad_signature);
      CHECK(refused(d, resource, pr::kinds::p2psip_generic) == cr::crypto_errc::bad_signature);
      pr::stored_data later = d;
      later.storage_time += 1;
      CHECK(refused(later, resource, pr::kinds::sip_registration) ==
            cr::crypto_errc::bad_signature);
      pr::stored_data changed = d;
      std::get<pr::dictionary_entry>(changed.value).value.value[0] ^= 1;
      CHECK(refused(changed, resource, pr::kinds::sip_registration) ==
            cr::crypto_errc::bad_signature);
      pr::stored_data tombstone = d;
      std::get<pr::dictionary_entry>(tombstone.value).value.exists = false;
      CHECK(refused(tombstone, resource, pr::kinds::sip_registration) ==
            cr::crypto_errc::bad_signature);
    }
  }

  TEST_CASE("a value a foreign node signed with ECDSA P-256 or RSA (not our signer) verifies") {
    // Other implementations sign with ECDSA or RSA and may pick another hash: the value is made
    // here with Botan directly over the RFC's signature input, as such a node would.
    struct foreign {
      cr::key_type key;
      pr::signature_and_hash_algorithm alg;
      const char* padding;
      Botan::Signature_Format format;
    };
    const pr::resource_id resource = pr::hash_resource_name("carol@example.org");
    for (const foreign f :
         {foreign{cr::key_type::ecdsa_p256, {4, 3}, "EMSA1(SHA-256)", Botan::DER_SEQUENCE},
          foreign{cr::key_type::ecdsa_p256, {6, 3}, "EMSA1(SHA-512)", Botan::DER_SEQUENCE},
          foreign{cr::key_type::rsa, {4, 1}, "EMSA3(SHA-256)", Botan::IEEE_1363},
          foreign{cr::key_type::rsa, {6, 1}, "EMSA3(SHA-512)", Botan::IEEE_1363}}) {
      CAPTURE(cr::key_type_name(f.key));
      CAPTURE(int{f.alg.hash});
      auto store = make_store();
      const issued_certificate issued = overlay_ca().issue(spec_for({test_node(70)}), f.key);
      const auto der_vec = issued.certificate.BER_encode();
      const pr::bytes der(der_vec.begin(), der_vec.end());

      pr::stored_data d = make_value();
      d.signature.algorithm = f.alg;
      d.signature.identity.type = static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash);
      d.signature.identity.hash.hash_alg = pr::hash_algorithm::sha256;
      const auto fingerprint = Botan::HashFunction::create_or_throw("SHA-256")->process(der);
      d.signature.identity.hash.hash.assign(fingerprint.begin(), fingerprint.end());
      const pr::bytes input = pr::data_signature_input(
          resource, pr::kinds::sip_registration, d.storage_time, d.value, d.signature.identity);
      Botan::PK_Signer signer(*issued.key, rng(), f.padding, f.format);
      const auto value = signer.sign_message(input, rng());
      d.signature.value.assign(value.begin(), value.end());

      const std::vector<pr::generic_certificate> bucket{{0, der}};
      auto signer_ok = cr::verify_stored_data(d, resource, pr::kinds::sip_registration, bucket,
                                              *store, test_now());
      REQUIRE(signer_ok);
      CHECK(signer_ok->node == test_node(70));

      pr::stored_data changed = d;
      std::get<pr::dictionary_entry>(changed.value).value.value[0] ^= 1;
      auto r = cr::verify_stored_data(changed, resource, pr::kinds::sip_registration, bucket,
                                      *store, test_now());
      REQUIRE_FALSE(r);
      CHECK(errc_of(r.error()) == cr::crypto_errc::bad_signature);
      pr::stored_data flipped = d;
      flipped.signature.value[flipped.signature.value.size() / 2] ^= 0x10;
      CHECK_FALSE(cr::verify_stored_data(flipped, resource, pr::kinds::sip_registration, bucket,
                                         *store, test_now()));
      // The algorithm must be the key's: ECDSA numbers on an RSA key and the reverse.
      pr::stored_data other_alg = d;
      other_alg.signature.algorithm.signature = f.key == cr::key_type::rsa
                                                    ? pr::signature_algorithm::ecdsa
                                                    : pr::signature_algorithm::rsa;
      r = cr::verify_stored_data(other_alg, resource, pr::kinds::sip_registration, bucket, *store,
                                 test_now());
      REQUIRE_FALSE(r);
      CHECK(errc_of(r.error()) == cr::crypto_errc::unsupported_algorithm);
    }
  }

  TEST_CASE("a value whose signing certificate has expired is no longer valid") {
    auto store = make_store();
    const pr::resource_id resource = pr::hash_resource_name("alice@example.org");
    const auto id = make_identity(overlay_ca(), spec_for({test_node(2)}), cr::key_type::ed25519);
    pr::stored_data d = make_value();
    REQUIRE(cr::sign_stored_data(d, resource, pr::kinds::sip_registration, id));
    const std::vector<pr::generic_certificate> bucket{id.cert().generic()};
    CHECK(cr::verify_stored_data(d, resource, pr::kinds::sip_registration, bucket, *store,
                                 test_now()));
    CHECK(errc_of(cr::verify_stored_data(d, resource, pr::kinds::sip_registration, bucket, *store,
                                         test_now() + 24h * 60)
                      .error()) == cr::crypto_errc::certificate_expired);
  }

  TEST_CASE("own signatures: taken once, for these very bytes, only for data that stayed here") {
    // A value this process signed (noted in the trust store) and stored by itself is taken
    // without verifying it again; everything else, a forgery above all, is verified as before.
    auto store = make_store();
    const pr::resource_id resource = pr::hash_resource_name("alice@example.org");
    const auto kind = pr::kinds::sip_registration;
    const auto id = make_identity(overlay_ca(), spec_for({test_node(3)}), cr::key_type::ed25519);
    const std::vector<pr::generic_certificate> bucket{id.cert().generic()};
    auto taken = [&] { return store->stats().own_signatures_taken; };

    pr::stored_data d = make_value();
    REQUIRE(cr::sign_stored_data(d, resource, kind, id, test_node(3), store.get()));
    // From another node (from_this_process false): verified, the note is not used.
    REQUIRE(cr::verify_stored_data(d, resource, kind, bucket, *store, test_now()));
    CHECK(taken() == 0);
    // Delivered within this process: taken, once.
    auto own = cr::verify_stored_data(d, resource, kind, bucket, *store, test_now(), {}, true);
    REQUIRE(own);
    CHECK(own->node == test_node(3));
    CHECK(taken() == 1);
    REQUIRE(cr::verify_stored_data(d, resource, kind, bucket, *store, test_now(), {}, true));
    CHECK(taken() == 1);  // verified the second time

    // A forgery reusing a noted signature over other bytes, even claiming to stay in this
    // process, is verified and refused: value, storage time or Resource-ID changed.
    pr::stored_data e = make_value();
    REQUIRE(cr::sign_stored_data(e, resource, kind, id, test_node(3), store.get()));
    pr::stored_data changed = e;
    std::get<pr::dictionary_entry>(changed.value).value.value[0] ^= 1;
    auto r = cr::verify_stored_data(changed, resource, kind, bucket, *store, test_now(), {}, true);
    REQUIRE_FALSE(r);
    CHECK(errc_of(r.error()) == cr::crypto_errc::bad_signature);
    pr::stored_data later = e;
    later.storage_time += 1;
    r = cr::verify_stored_data(later, resource, kind, bucket, *store, test_now(), {}, true);
    REQUIRE_FALSE(r);
    CHECK(errc_of(r.error()) == cr::crypto_errc::bad_signature);
    r = cr::verify_stored_data(e, pr::hash_resource_name("bob@example.org"), kind, bucket, *store,
                               test_now(), {}, true);
    REQUIRE_FALSE(r);
    CHECK(errc_of(r.error()) == cr::crypto_errc::bad_signature);
    CHECK(taken() == 1);
    // Another identity's certificate claiming the value: not the noted key, verified, refused.
    const auto other = make_identity(overlay_ca(), spec_for({test_node(3)}), cr::key_type::ed25519);
    const std::vector<pr::generic_certificate> other_bucket{other.cert().generic()};
    pr::stored_data claimed = e;
    claimed.signature.identity = *other.cert().signer_identity_for(test_node(3));
    r = cr::verify_stored_data(claimed, resource, kind, other_bucket, *store, test_now(), {}, true);
    REQUIRE_FALSE(r);
    CHECK(errc_of(r.error()) == cr::crypto_errc::bad_signature);
    // The certificate is checked before the note: expired is expired.
    r = cr::verify_stored_data(e, resource, kind, bucket, *store, test_now() + 24h * 60, {}, true);
    REQUIRE_FALSE(r);
    CHECK(errc_of(r.error()) == cr::crypto_errc::certificate_expired);
    CHECK(cr::verify_stored_data(e, resource, kind, bucket, *store, test_now(), {}, true));
    CHECK(taken() == 2);

    // The record is bounded: the oldest notes are forgotten (then verified as usual).
    pr::stored_data first = make_value();
    first.storage_time = 1;
    REQUIRE(cr::sign_stored_data(first, resource, kind, id, test_node(3), store.get()));
    for (std::size_t i = 0; i < cr::trust_store::own_signature_capacity; ++i) {
      pr::stored_data v = make_value();
      v.storage_time = 2 + i;
      REQUIRE(cr::sign_stored_data(v, resource, kind, id, test_node(3), store.get()));
    }
    CHECK(cr::verify_stored_data(first, resource, kind, bucket, *store, test_now(), {}, true));
    CHECK(taken() == 2);
  }

  TEST_CASE("the unsigned synthetic value is refused") {
    auto store = make_store();
    pr::stored_data d = make_value();
    d.signature = pr::signature{};
    auto r = cr::verify_stored_data(d, pr::hash_resource_name("x"), pr::kinds::sip_registration, {},
                                    *store, test_now());
    CHECK(errc_of(r.error()) == cr::crypto_errc::unsigned_signature);
  }

  TEST_CASE("an array entry's index is not signed (written as 0)") {
    auto store = make_store();
    const auto id = make_identity(overlay_ca(), spec_for({test_node(3)}));
    const pr::resource_id resource = pr::hash_resource_name(test_node(3).view());
    pr::stored_data d;
    d.storage_time = 5;
    d.value = pr::array_entry{pr::array_append_index, {true, id.cert().der()}};
    REQUIRE(cr::sign_stored_data(d, resource, pr::kinds::certificate_by_node, id));
    std::get<pr::array_entry>(d.value).index = 7;  // where the storing peer put it
    CHECK(cr::verify_stored_data(d, resource, pr::kinds::certificate_by_node,
                                 std::vector{id.cert().generic()}, *store, test_now()));
  }
}

TEST_SUITE("crypto signature counts") {
  TEST_CASE("every signature made and every value checked is counted, a deferred one is not") {
    auto store = make_store();
    const auto id = make_identity(overlay_ca(), spec_for({test_node(4)}), cr::key_type::ed25519);
    const auto before = cr::signature_totals();

    pr::message m = make_request();
    REQUIRE(cr::sign_message(m, id));
    REQUIRE(cr::verify_message(m, *store, test_now()));
    m.contents.body.back() ^= 1;  // a forged message: checked, refused, and counted all the same
    CHECK_FALSE(cr::verify_message(m, *store, test_now()));

    const pr::resource_id resource = pr::hash_resource_name("counted");
    pr::stored_data d = make_value();
    REQUIRE(cr::sign_stored_data(d, resource, pr::kinds::sip_registration, id));
    const std::vector certs{id.cert().generic()};
    REQUIRE(cr::stored_data_signer(d, certs, *store, test_now()));  // the certificate only

    const auto after = cr::signature_totals();
    CHECK(after.made - before.made == 2);
    CHECK(after.verified - before.verified == 2);

    REQUIRE(cr::verify_stored_data(d, resource, pr::kinds::sip_registration, certs, *store,
                                   test_now()));
    CHECK(cr::signature_totals().verified - after.verified == 1);
  }
}
