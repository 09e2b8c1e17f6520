// p2psip-admin's output as the rest of p2psip reads it: the configuration (and its signature)
// through p2psip::config, the credential files through p2psip::crypto (chain to the
// configuration's root, sign, verify); and the issuance library's own rules.

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <botan/data_src.h>
#include <botan/pk_keys.h>
#include <botan/pkix_types.h>
#include <botan/x509cert.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "files.hpp"
#include "issuance.hpp"
#include "p2psip/config/config_document.hpp"
#include "p2psip/config/config_signature.hpp"
#include "p2psip/peer/sip_users.hpp"
#include "p2psip/sip/digest.hpp"

#ifdef P2PSIP_ADMIN_HAVE_CRYPTO
#include "p2psip/crypto/credentials.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "p2psip/crypto/trust_store.hpp"
#endif

namespace fs = std::filesystem;
namespace pr = p2psip::protocol;
namespace adm = p2psip::admin;
namespace cfg = p2psip::config;

namespace {

// A fresh directory, removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "p2psip-admin-cxx.XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

int run_admin(const std::string& args) {
  const std::string command = std::string(P2PSIP_ADMIN_BINARY) + " " + args + " >/dev/null 2>&1";
  const int status = std::system(command.c_str());  // NOLINT: a test driving the real binary
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Botan::X509_Certificate parse_pem(const std::string& pem) {
  Botan::DataSource_Memory src(pem);
  return Botan::X509_Certificate(src);
}

}  // namespace

TEST_CASE("names the tool accepts") {
  CHECK(adm::valid_overlay_name("example.org"));
  CHECK(adm::valid_overlay_name("overlay-1.example.org"));
  CHECK(adm::valid_overlay_name("localhost"));
  CHECK_FALSE(adm::valid_overlay_name(""));
  CHECK_FALSE(adm::valid_overlay_name("-a.example.org"));
  CHECK_FALSE(adm::valid_overlay_name("a-.example.org"));
  CHECK_FALSE(adm::valid_overlay_name("a..example.org"));
  CHECK_FALSE(adm::valid_overlay_name("example.org."));
  CHECK_FALSE(adm::valid_overlay_name("exa mple.org"));
  CHECK_FALSE(adm::valid_overlay_name(std::string(64, 'a') + ".org"));
  CHECK(adm::valid_user_name("alice@example.org"));
  CHECK(adm::valid_user_name("alice.b+tag@example.org"));
  CHECK_FALSE(adm::valid_user_name("alice"));
  CHECK_FALSE(adm::valid_user_name("@example.org"));
  CHECK_FALSE(adm::valid_user_name("al ice@example.org"));
  CHECK_FALSE(adm::valid_user_name(std::string("al\0ice@example.org", 18)));
  CHECK_FALSE(adm::valid_user_name(".alice@example.org"));
  CHECK_FALSE(adm::valid_user_name("alice@@example.org"));
  CHECK_FALSE(adm::valid_user_name("alice@example..org"));
}

TEST_CASE("reload URIs and random Node-IDs") {
  const auto id = *pr::node_id::from_hex("063d3c8b3867a2881074a99102d658d7");
  // RFC 6940 / brief section 7.1's example.
  CHECK(adm::reload_uri(id, "example.org") ==
        "reload://0110063d3c8b3867a2881074a99102d658d7@example.org/");
  const auto ids = adm::random_node_ids(50, 16, {id});
  REQUIRE(ids.size() == 50);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    CHECK(ids[i].size() == 16);
    CHECK(ids[i] != id);
    for (std::size_t j = i + 1; j < ids.size(); ++j) CHECK(ids[i] != ids[j]);
  }
  CHECK(adm::random_node_ids(1, 20).at(0).size() == 20);
}

TEST_CASE("issuance: what goes into a node certificate") {
  const auto ca = adm::create_overlay_ca("example.org", std::chrono::hours(24 * 30));
  REQUIRE(ca);
  const auto ca_cert = parse_pem(ca->certificate);
  CHECK(ca_cert.is_CA_cert());
  CHECK(ca_cert.path_limit() == 0);
  CHECK(ca_cert.is_self_signed());

  adm::node_request req;
  req.overlay = "example.org";
  req.user = "alice@example.org";
  req.node_ids = adm::random_node_ids(2, 16);
  req.validity = std::chrono::hours(24 * 365);  // longer than the CA: clamped
  const auto issued = adm::issue_node(*ca, req);
  REQUIRE_MESSAGE(issued, (issued ? "" : issued.error().message));
  CHECK(issued->not_after <= ca_cert.not_after().to_std_timepoint());

  for (const auto* pem : {&issued->link.certificate, &issued->signing.certificate}) {
    const auto cert = parse_pem(*pem);
    CHECK(cert.subject_dn().empty());
    CHECK((cert.issuer_dn() == ca_cert.subject_dn()));
    CHECK_FALSE(cert.is_CA_cert());
    CHECK(cert.check_signature(*ca_cert.load_subject_public_key()));
    // Exactly the Node-ID URIs and the user name (RFC 6940 11.3).
    const auto san = cert.subject_alt_name().contents();
    CHECK(san.size() == 3);
    CHECK(san.count("RFC822") == 1);
    CHECK(san.find("RFC822")->second == "alice@example.org");
    CHECK(san.count("URI") == 2);
    for (const auto& id : req.node_ids) {
      bool found = false;
      for (auto [it, end] = san.equal_range("URI"); it != end; ++it) {
        found |= it->second == adm::reload_uri(id, "example.org");
      }
      CHECK(found);
    }
  }
  CHECK(parse_pem(issued->link.certificate).load_subject_public_key()->algo_name() == "ECDSA");
  CHECK(parse_pem(issued->signing.certificate).load_subject_public_key()->algo_name() == "Ed25519");

  SUBCASE("a CA key that is not the CA certificate's") {
    const auto other = adm::create_overlay_ca("example.org", std::chrono::hours(24));
    REQUIRE(other);
    const adm::pem_pair mixed{ca->certificate, other->private_key};
    const auto r = adm::issue_node(mixed, req);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "CA key does not belong to the CA certificate");
  }
  SUBCASE("a CA key that is no key") {
    const auto r = adm::issue_node(adm::pem_pair{ca->certificate, "nonsense"}, req);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.starts_with("CA key is not an unencrypted PKCS#8 private key"));
  }
  SUBCASE("a leaf as the CA") {
    const auto r =
        adm::issue_node(adm::pem_pair{issued->link.certificate, issued->link.private_key}, req);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "CA certificate: basicConstraints CA is not set");
  }
}

TEST_CASE("issuance: the configuration signer's certificate") {
  const auto ca = adm::create_overlay_ca("example.org", std::chrono::hours(24 * 30));
  REQUIRE(ca);
  const auto ca_cert = parse_pem(ca->certificate);
  const auto id = adm::random_node_ids(1, 16).at(0);
  const auto signer =
      adm::issue_configuration_signer(*ca, "example.org", id, std::chrono::hours(24 * 365 * 10));
  REQUIRE_MESSAGE(signer, (signer ? "" : signer.error().message));
  const auto cert = parse_pem(signer->certificate);
  CHECK(cert.check_signature(*ca_cert.load_subject_public_key()));
  CHECK_FALSE(cert.is_CA_cert());
  CHECK(cert.subject_dn().empty());
  CHECK(cert.load_subject_public_key()->algo_name() == "Ed25519");
  // Clamped to the CA's validity.
  CHECK(cert.not_after().to_std_timepoint() <= ca_cert.not_after().to_std_timepoint());
  // The mark nodes require of a document signer (RFC 9336 Document Signing), only on it.
  CHECK(cert.has_ex_constraint(Botan::OID(std::string(cfg::document_signing_usage))));
  const auto san = cert.subject_alt_name().contents();
  CHECK(san.count("URI") == 1);
  CHECK(san.find("URI")->second == adm::reload_uri(id, "example.org"));
  CHECK(san.find("RFC822")->second == "configuration-signer@example.org");
  const auto ids = adm::certificate_node_ids(signer->certificate, "example.org");
  REQUIRE(ids);
  CHECK(*ids == std::vector<pr::node_id>{id});
  CHECK(adm::certificate_node_ids(signer->certificate, "example.net")->empty());

  adm::node_request req;
  req.overlay = "example.org";
  req.user = "alice@example.org";
  req.node_ids = adm::random_node_ids(1, 16);
  const auto node = adm::issue_node(*ca, req);
  REQUIRE(node);
  for (const auto* pem : {&node->link.certificate, &node->signing.certificate}) {
    CHECK_FALSE(
        parse_pem(*pem).has_ex_constraint(Botan::OID(std::string(cfg::document_signing_usage))));
  }
}

TEST_CASE("files: modes and refusing to overwrite") {
  temp_dir dir;
  const fs::path key = dir.path / "sub" / "a.key";
  REQUIRE(adm::make_directory(key.parent_path(), 0700));
  REQUIRE(adm::write_file(key, "secret", adm::key_file_mode, false));
  CHECK((fs::status(key).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  const auto again = adm::write_file(key, "other", adm::key_file_mode, false);
  REQUIRE_FALSE(again);
  CHECK(again.error().message == key.string() + " exists (use --force to overwrite)");
  CHECK(*adm::read_file(key) == "secret");
  REQUIRE(adm::write_file(key, "other", adm::key_file_mode, true));
  CHECK(*adm::read_file(key) == "other");
  CHECK(adm::read_file(key, 3).error().message == key.string() + ": larger than 3 bytes");
  CHECK_FALSE(adm::refuse_existing({dir.path / "none", key}, false));
  CHECK(adm::refuse_existing({dir.path / "none", key}, true));
}

TEST_CASE("p2psip-admin init and enroll, read back by p2psip::config and p2psip::crypto") {
  temp_dir dir;
  const std::string ca = (dir.path / "ca").string();
  const std::string node = (dir.path / "node").string();
  REQUIRE(run_admin("init --overlay example.org --out " + ca + " --bootstrap 192.0.2.1:6084") == 0);
  REQUIRE(run_admin("enroll --user alice@example.org --nodes 2 --out " + node + " --ca-dir " +
                    ca) == 0);

  const auto doc = cfg::load_document(fs::path(ca) / "overlay.xml");
  REQUIRE_MESSAGE(doc, (doc ? "" : doc.error().message));
  const cfg::overlay_config& config = doc->config;
  CHECK(doc->warnings.empty());
  CHECK(doc->ignored.empty());
  CHECK(config.instance_name == "example.org");
  CHECK(config.bootstrap_nodes.size() == 1);
  REQUIRE(config.root_certs.size() == 1);
  const auto ca_pem = adm::read_file(fs::path(ca) / "ca.crt");
  REQUIRE(ca_pem);
  CHECK(config.root_certs[0] == *adm::certificate_der(*ca_pem));
  CHECK(cfg::find_kind(config, pr::kinds::p2psip_generic) != nullptr);
  cfg::expectation expected;
  expected.overlay_name = "example.org";
  expected.root_certs = config.root_certs;
  expected.now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  CHECK(cfg::check_overlay_config(config, expected));

  // Signed (RFC 6940 11.1) by the configuration signer in the CA directory, which the document
  // lists as configuration-signer and kind-signer: what every node checks before using it.
  const auto verified = cfg::verify_configuration_signature(*doc, std::chrono::system_clock::now());
  CHECK_MESSAGE(verified, (verified ? "" : verified.error().message));
  const auto signer_pem = adm::read_file(fs::path(ca) / "config-signer.crt");
  REQUIRE(signer_pem);
  const auto signer_ids = adm::certificate_node_ids(*signer_pem, "example.org");
  REQUIRE(signer_ids);
  REQUIRE(signer_ids->size() == 1);
  const pr::bytes signer_id(signer_ids->front().view().begin(), signer_ids->front().view().end());
  CHECK(config.configuration_signers == std::vector<pr::bytes>{signer_id});
  CHECK(config.kind_signers == std::vector<pr::bytes>{signer_id});
  for (const auto& k : config.kinds) CHECK(k.signature.has_value());
  // One value changed: refused.
  auto xml = adm::read_file(fs::path(ca) / "overlay.xml");
  REQUIRE(xml);
  const auto at = xml->find("<max-message-size>32768<");
  REQUIRE(at != std::string::npos);
  xml->replace(at, 24, "<max-message-size>32000<");
  const auto tampered = cfg::parse_document(*xml);
  REQUIRE(tampered);
  const auto refused =
      cfg::verify_configuration_signature(*tampered, std::chrono::system_clock::now());
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message == "overlay/signature: signature does not verify");

#ifdef P2PSIP_ADMIN_HAVE_CRYPTO
  namespace cr = p2psip::crypto;
  const cr::overlay_params overlay{config.instance_name, config.node_id_length};
  cr::trust_store trust(overlay);
  for (const auto& der : config.root_certs) REQUIRE(trust.add_root(der));
  const auto now = std::chrono::system_clock::now();
  const auto creds = cr::load_credentials(fs::path(node) / "node.crt", fs::path(node) / "node.key",
                                          overlay, &trust, now);
  REQUIRE_MESSAGE(creds, (creds ? "" : creds.error().message));
  CHECK(creds->link.key() == cr::key_type::ecdsa_p256);
  CHECK(creds->signing.key() == cr::default_signing_key);
  CHECK(creds->link.cert().user() == "alice@example.org");
  CHECK(creds->link.cert().node_ids().size() == 2);
  CHECK(creds->signing.cert().node_ids() == creds->link.cert().node_ids());

  // A generic put/get value signed with the signing key verifies against the overlay's root.
  pr::stored_data value;
  value.storage_time = 1700000000000;
  value.lifetime = 60;
  const pr::node_id me = creds->signing.default_node_id();
  value.value = pr::dictionary_entry{pr::bytes(me.view().begin(), me.view().end()),
                                     pr::data_value{true, pr::to_bytes("hello")}};
  const auto resource = pr::hash_resource_name("some name");
  REQUIRE(cr::sign_stored_data(value, resource, pr::kinds::p2psip_generic, creds->signing));
  const std::vector<pr::generic_certificate> bucket{creds->signing.cert().generic()};
  const auto who =
      cr::verify_stored_data(value, resource, pr::kinds::p2psip_generic, bucket, trust, now);
  REQUIRE_MESSAGE(who, (who ? "" : who.error().message()));
  CHECK(who->node == me);
#endif
}

TEST_CASE("p2psip-admin sip-user add: the users file and credentials as the registrar reads them") {
  temp_dir dir;
  const std::string ca = (dir.path / "ca").string();
  const fs::path users = dir.path / "sip-users.json";
  const fs::path password = dir.path / "password";
  std::ofstream(password) << "s3cret pass\n";
  REQUIRE(run_admin("init --overlay overlay.example --out " + ca) == 0);
  REQUIRE(run_admin("sip-user add sip:alice@overlay.example --users " + users.string() +
                    " --ca-dir " + ca + " --password-file " + password.string()) == 0);

  const auto loaded = p2psip::peer::load_sip_users(users);
  REQUIRE_MESSAGE(loaded, (loaded ? "" : loaded.error().message));
  REQUIRE(loaded->size() == 1);
  const p2psip::peer::sip_user& u = loaded->front();
  CHECK(u.aor == "sip:alice@overlay.example");
  CHECK(u.username == "alice");
  CHECK(u.realm == "overlay.example");
  CHECK(u.certificate == dir.path / "alice@overlay.example.crt");
  CHECK(u.private_key == dir.path / "alice@overlay.example.key");
  CHECK((fs::status(users).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));

  // A REGISTER answered with the password verifies against the stored HA1, with either algorithm.
  namespace sip = p2psip::sip;
  for (const auto algorithm : {sip::digest_algorithm::md5, sip::digest_algorithm::sha256}) {
    sip::digest_credentials c;
    c.username = "alice";
    c.realm = "overlay.example";
    c.nonce = "0123456789abcdef";
    c.uri = "sip:overlay.example";
    c.algorithm = algorithm;
    c.qop = "auth";
    c.cnonce = "6b8b4567";
    c.nc = "00000001";
    c.response = sip::digest_response(
        c, sip::digest_ha1(algorithm, "alice", "overlay.example", "s3cret pass"), "REGISTER");
    const auto& ha1 = algorithm == sip::digest_algorithm::md5 ? u.ha1_md5 : u.ha1_sha256;
    CHECK(sip::check_digest_response(c, ha1, "REGISTER"));
    c.response = sip::digest_response(
        c, sip::digest_ha1(algorithm, "alice", "overlay.example", "s3cret pas"), "REGISTER");
    CHECK_FALSE(sip::check_digest_response(c, ha1, "REGISTER"));
  }
  const p2psip::peer::sip_user_directory directory(*loaded);
  CHECK(directory.find("alice", "overlay.example") != nullptr);
  CHECK(directory.find_aor("sip:alice@OVERLAY.example") != nullptr);

#ifdef P2PSIP_ADMIN_HAVE_CRYPTO
  // The credentials: a user certificate of the overlay whose rfc822Name is the AOR's user@host,
  // so the peer can sign the user's SIP-REGISTRATION (RFC 7904: USER-NODE-MATCH on the AOR).
  const auto doc = cfg::load_document(fs::path(ca) / "overlay.xml");
  REQUIRE(doc);
  namespace cr = p2psip::crypto;
  const cr::overlay_params overlay{doc->config.instance_name, doc->config.node_id_length};
  cr::trust_store trust(overlay);
  for (const auto& der : doc->config.root_certs) REQUIRE(trust.add_root(der));
  const auto creds = cr::load_credentials(u.certificate, u.private_key, overlay, &trust,
                                          std::chrono::system_clock::now());
  REQUIRE_MESSAGE(creds, (creds ? "" : creds.error().message));
  CHECK(creds->link.cert().user() == "alice@overlay.example");
  CHECK(creds->signing.cert().user() == "alice@overlay.example");
  CHECK(creds->link.cert().node_ids().size() == 4);  // sip-user add --devices: 4
#endif
}

TEST_CASE("p2psip-admin sip-user add --batch: many users in one run, each with its own password") {
  temp_dir dir;
  const std::string ca = (dir.path / "ca").string();
  const fs::path users = dir.path / "sip-users.json";
  const fs::path batch = dir.path / "batch";
  REQUIRE(run_admin("init --overlay overlay.example --out " + ca) == 0);
  std::ofstream(batch) << "# AOR PASSWORD\n"
                          "sip:u1@overlay.example pw one\r\n"
                          "\n"
                          "  sip:u2@overlay.example\tpw-two\n"
                          "sip:u3@overlay.example pw3\n";
  REQUIRE(run_admin("sip-user add --batch " + batch.string() + " --users " + users.string() +
                    " --ca-dir " + ca + " --devices 1") == 0);
  const auto loaded = p2psip::peer::load_sip_users(users);
  REQUIRE_MESSAGE(loaded, (loaded ? "" : loaded.error().message));
  REQUIRE(loaded->size() == 3);
  namespace sip = p2psip::sip;
  const std::vector<std::pair<std::string, std::string>> expected{
      {"u1", "pw one"}, {"u2", "pw-two"}, {"u3", "pw3"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& u = (*loaded)[i];
    CHECK(u.aor == "sip:" + expected[i].first + "@overlay.example");
    CHECK(u.ha1_md5 == sip::digest_ha1(sip::digest_algorithm::md5, expected[i].first,
                                       "overlay.example", expected[i].second));
    CHECK(fs::exists(u.certificate));
    CHECK(fs::exists(u.private_key));
  }

  // Refused: AOR and --batch together, a line without a password, a bad AOR (naming the line),
  // a user already listed (the users before it in the batch are kept, the file stays readable).
  CHECK(run_admin("sip-user add sip:u9@overlay.example --batch " + batch.string() + " --users " +
                  users.string() + " --ca-dir " + ca) == 2);
  const fs::path bad = dir.path / "bad";
  std::ofstream(bad) << "sip:u4@overlay.example\n";
  CHECK(run_admin("sip-user add --batch " + bad.string() + " --users " + users.string() +
                  " --ca-dir " + ca) == 1);
  std::ofstream(bad) << "tel:+123 pw\n";
  CHECK(run_admin("sip-user add --batch " + bad.string() + " --users " + users.string() +
                  " --ca-dir " + ca) == 1);
  std::ofstream(bad) << "sip:u5@overlay.example pw5\nsip:u1@overlay.example again\n";
  CHECK(run_admin("sip-user add --batch " + bad.string() + " --users " + users.string() +
                  " --ca-dir " + ca + " --devices 1") == 1);
  const auto after = p2psip::peer::load_sip_users(users);
  REQUIRE(after);
  CHECK(after->size() == 4);
  CHECK(after->back().aor == "sip:u5@overlay.example");
}
