// A node's credential bundle (link certificate for TLS, signing certificate) and its two PEM files.

#include <doctest/doctest.h>

#include <botan/pem.h>
#include <sys/stat.h>

#include <fstream>
#include <random>

#include "p2psip/crypto/credentials.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "test_pki.hpp"

namespace cr = p2psip::crypto;
namespace pr = p2psip::protocol;
namespace fs = std::filesystem;
using namespace p2psip::test_pki;
using namespace std::chrono_literals;

namespace {

const test_ca& overlay_ca() {
  static const test_ca ca("example.org overlay CA");
  return ca;
}

/// A fresh directory, removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("p2psip-crypto-test-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path operator/(const std::string& name) const { return path / name; }
};

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

std::string pem(const pr::bytes& der, const std::string& label = "CERTIFICATE") {
  return Botan::PEM_Code::encode(der, label);
}

struct pair_of_ids {
  cr::node_identity link;
  cr::node_identity signing;
};

pair_of_ids make_pair(std::vector<pr::node_id> nodes = {test_node(1)},
                      std::string user = "alice@example.org") {
  return {make_identity(overlay_ca(), spec_for(nodes, user), cr::key_type::ecdsa_p256),
          make_identity(overlay_ca(), spec_for(nodes, user), cr::key_type::ed25519)};
}

}  // namespace

TEST_SUITE("crypto credentials") {
  TEST_CASE("the defaults: Ed25519 signs, ECDSA P-256 links") {
    CHECK(cr::default_signing_key == cr::key_type::ed25519);
    CHECK(cr::default_link_key == cr::key_type::ecdsa_p256);
  }

  TEST_CASE("save and load round trip, the loaded identities sign and verify") {
    temp_dir dir;
    auto ids = make_pair({test_node(1), test_node(2)});
    auto bundle = cr::make_credentials(ids.link, ids.signing);
    REQUIRE(bundle);
    REQUIRE(cr::save_credentials(*bundle, dir / "node.crt", dir / "node.key"));
    struct stat st {};
    REQUIRE(::stat((dir / "node.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    cr::trust_store store(example_overlay());
    REQUIRE(store.add_root(overlay_ca().der()));
    auto loaded = cr::load_credentials(dir / "node.crt", dir / "node.key", example_overlay(),
                                       &store, test_now());
    REQUIRE(loaded);
    CHECK(loaded->link.cert() == ids.link.cert());
    CHECK(loaded->signing.cert() == ids.signing.cert());
    CHECK(loaded->link.key() == cr::key_type::ecdsa_p256);
    CHECK(loaded->signing.key() == cr::key_type::ed25519);
    // The link certificate keeps Botan's form for TLS; the signing one only what signing needs.
    CHECK_FALSE(loaded->link.cert().compact());
    CHECK(loaded->signing.cert().compact());
    // Each certificate's chain was checked once, the compact one on the load's own parse.
    CHECK(store.stats().path_validations == 2);

    pr::message m;
    m.header.overlay = pr::overlay_hash("example.org");
    m.header.transaction_id = 77;
    m.contents.code = pr::codes::ping_req;
    REQUIRE(cr::sign_message(m, loaded->signing, test_node(2)));
    auto signer = cr::verify_message(m, store, test_now());
    REQUIRE(signer);
    CHECK(signer->node == test_node(2));
  }

  TEST_CASE("one certificate that both links and signs, keys in any order, one combined file") {
    temp_dir dir;
    auto ids = make_pair();
    SUBCASE("link only") {
      write(dir / "n.crt", pem(ids.link.cert().der()));
      write(dir / "n.key", ids.link.private_key_pem());
      auto loaded = cr::load_credentials(dir / "n.crt", dir / "n.key", example_overlay());
      REQUIRE(loaded);
      CHECK(loaded->signing.cert() == loaded->link.cert());
      // One parse serves both: the very same certificate and key, in Botan's full form (TLS).
      CHECK(&loaded->signing.cert().der() == &loaded->link.cert().der());
      CHECK(&loaded->signing.private_key() == &loaded->link.private_key());
      CHECK_FALSE(loaded->link.cert().compact());
      const auto out = cr::encode_credentials(*loaded);
      CHECK(out.certificates == pem(ids.link.cert().der()));
    }
    SUBCASE("the same certificate and key listed twice are one") {
      write(dir / "n.crt", pem(ids.link.cert().der()) + pem(ids.link.cert().der()));
      write(dir / "n.key", ids.link.private_key_pem() + ids.link.private_key_pem());
      auto loaded = cr::load_credentials(dir / "n.crt", dir / "n.key", example_overlay());
      REQUIRE(loaded);
      CHECK(&loaded->signing.cert().der() == &loaded->link.cert().der());
      CHECK(&loaded->signing.private_key() == &loaded->link.private_key());
      CHECK_FALSE(loaded->link.cert().compact());
    }
    SUBCASE("keys in the other order") {
      write(dir / "n.crt", pem(ids.link.cert().der()) + pem(ids.signing.cert().der()));
      write(dir / "n.key", ids.signing.private_key_pem() + ids.link.private_key_pem());
      auto loaded = cr::load_credentials(dir / "n.crt", dir / "n.key", example_overlay());
      REQUIRE(loaded);
      CHECK(loaded->link.key() == cr::key_type::ecdsa_p256);
      CHECK(loaded->signing.key() == cr::key_type::ed25519);
    }
    SUBCASE("everything in one file") {
      write(dir / "n.pem", pem(ids.link.cert().der()) + ids.link.private_key_pem() +
                               pem(ids.signing.cert().der()) + ids.signing.private_key_pem());
      auto loaded = cr::load_credentials(dir / "n.pem", dir / "n.pem", example_overlay());
      CHECK(loaded);
    }
    SUBCASE("an intermediate CA in the certificate file") {
      const test_ca sub = overlay_ca().intermediate("enrollment CA");
      auto link = make_identity(sub, spec_for({test_node(1)}), cr::key_type::ecdsa_p256);
      write(dir / "n.crt", pem(sub.der()) + pem(link.cert().der()));
      write(dir / "n.key", link.private_key_pem());
      cr::trust_store store(example_overlay());
      REQUIRE(store.add_root(overlay_ca().der()));
      auto loaded =
          cr::load_credentials(dir / "n.crt", dir / "n.key", example_overlay(), &store, test_now());
      REQUIRE(loaded);
      CHECK(loaded->link.chain() == std::vector<pr::bytes>{sub.der()});
      CHECK(cr::encode_credentials(*loaded).certificates ==
            pem(link.cert().der()) + pem(sub.der()));
    }
  }

  TEST_CASE("errors name the file") {
    temp_dir dir;
    auto ids = make_pair();
    const std::string certs = pem(ids.link.cert().der()) + pem(ids.signing.cert().der());
    const std::string keys = ids.link.private_key_pem() + ids.signing.private_key_pem();
    auto load = [&](const std::string& cert_text, const std::string& key_text,
                    const cr::overlay_params& overlay = example_overlay()) {
      write(dir / "node.crt", cert_text);
      write(dir / "node.key", key_text);
      auto r = cr::load_credentials(dir / "node.crt", dir / "node.key", overlay);
      REQUIRE_FALSE(r);
      INFO(r.error().message);
      return r.error();
    };
    auto has = [](const pr::error_record& e, const std::string& part) {
      INFO(e.message);
      return e.message.find(part) != std::string::npos;
    };

    SUBCASE("missing file") {
      write(dir / "node.key", keys);
      auto r = cr::load_credentials(dir / "absent.crt", dir / "node.key", example_overlay());
      REQUIRE_FALSE(r);
      CHECK(r.error().code == cr::crypto_errc::file_unreadable);
      CHECK(has(r.error(), "absent.crt"));
      CHECK(has(r.error(), "No such file"));
    }
    SUBCASE("garbage") {
      auto e = load("this is not PEM", keys);
      CHECK(e.code == cr::crypto_errc::no_certificate_in_file);
      CHECK(has(e, "node.crt"));
      e = load(certs, "garbage");
      CHECK(e.code == cr::crypto_errc::no_key_in_file);
      CHECK(has(e, "node.key"));
      e = load("-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n", keys);
      CHECK(e.code == cr::crypto_errc::bad_pem);
      e = load(pem(pr::bytes{0x30, 0x03, 1, 1, 1}), keys);
      CHECK(e.code == cr::crypto_errc::malformed_certificate);
      CHECK(has(e, "node.crt"));
      e = load(certs, pem(pr::bytes{0x30, 0x03, 1, 1, 1}, "PRIVATE KEY"));
      CHECK(e.code == cr::crypto_errc::bad_private_key);
      CHECK(has(e, "node.key"));
    }
    SUBCASE("a key that is not the certificate's") {
      auto stranger =
          make_identity(overlay_ca(), spec_for({test_node(1)}), cr::key_type::ecdsa_p256);
      auto e = load(certs, stranger.private_key_pem() + ids.signing.private_key_pem());
      CHECK(e.code == cr::crypto_errc::key_mismatch);
      CHECK(has(e, "node.key"));
      CHECK(has(e, "link"));
      e = load(pem(ids.link.cert().der()), keys);  // a key left over
      CHECK(e.code == cr::crypto_errc::key_mismatch);
    }
    SUBCASE("unsupported key formats") {
      auto e = load(certs, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n");
      CHECK(e.code == cr::crypto_errc::bad_private_key);
      CHECK(has(e, "openssl pkcs8"));
      e = load(
          certs,
          "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n");
      CHECK(e.code == cr::crypto_errc::bad_private_key);
    }
    SUBCASE("an Ed25519 link certificate") {
      auto e = load(pem(ids.signing.cert().der()) + pem(ids.link.cert().der()), keys);
      CHECK(e.code == cr::crypto_errc::unusable_link_key);
      CHECK(has(e, "Ed25519"));
    }
    SUBCASE("certificates for different Node-IDs or users") {
      auto other = make_identity(overlay_ca(), spec_for({test_node(2)}), cr::key_type::ed25519);
      auto e = load(pem(ids.link.cert().der()) + pem(other.cert().der()),
                    ids.link.private_key_pem() + other.private_key_pem());
      CHECK(e.code == cr::crypto_errc::credentials_mismatch);
      auto bob = make_identity(overlay_ca(), spec_for({test_node(1)}, "bob@example.org"),
                               cr::key_type::ed25519);
      e = load(pem(ids.link.cert().der()) + pem(bob.cert().der()),
               ids.link.private_key_pem() + bob.private_key_pem());
      CHECK(e.code == cr::crypto_errc::credentials_mismatch);
    }
    SUBCASE("another overlay") {
      auto e = load(certs, keys, cr::overlay_params{"other.org", 16});
      CHECK(e.code == cr::crypto_errc::wrong_overlay);
      CHECK(has(e, "other.org"));
    }
    SUBCASE("a chain the trust store refuses") {
      write(dir / "node.crt", certs);
      write(dir / "node.key", keys);
      cr::trust_store store(example_overlay());
      REQUIRE(store.add_root(test_ca("unrelated CA").der()));
      auto r = cr::load_credentials(dir / "node.crt", dir / "node.key", example_overlay(), &store,
                                    test_now());
      REQUIRE_FALSE(r);
      CHECK(r.error().code == cr::crypto_errc::untrusted_certificate);
    }
  }

  TEST_CASE("node_identity refuses a key that is not the certificate's") {
    auto ids = make_pair();
    const pr::bytes other_key = *cr::generate_private_key(cr::key_type::ecdsa_p256);
    CHECK(cr::node_identity::create(ids.link.cert(), other_key).error() ==
          cr::crypto_errc::key_mismatch);
    const pr::bytes ed_key = *cr::generate_private_key(cr::key_type::ed25519);
    CHECK(cr::node_identity::create(ids.link.cert(), ed_key).error() ==
          cr::crypto_errc::key_mismatch);
    CHECK(cr::node_identity::create(ids.link.cert(), pr::bytes{1, 2, 3}).error() ==
          cr::crypto_errc::bad_private_key);
    // PEM works as well as DER.
    const std::string pem_key = ids.link.private_key_pem();
    CHECK(cr::node_identity::create(ids.link.cert(), pr::to_bytes(pem_key)));
  }
}
