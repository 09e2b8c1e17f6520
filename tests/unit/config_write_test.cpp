// Writing the overlay configuration document (write -> parse -> equal), and the helpers built on
// overlay_config: limits, the kind table, the model lookup, the caller's expectation check.

#include <doctest/doctest.h>

#include <botan/auto_rng.h>
#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/x509cert.h>
#include <botan/x509self.h>

#include <chrono>
#include <string>
#include <vector>

#include "p2psip/config/config_document.hpp"
#include "p2psip/config/overlay_config.hpp"
#include "test_pki.hpp"

using namespace p2psip::config;
namespace pr = p2psip::protocol;

namespace {

pr::bytes make_root(const std::string& cn) {
  return p2psip::test_pki::test_ca(cn).der();
}

const pr::bytes& root_a() {
  static const pr::bytes der = make_root("write test CA A");
  return der;
}
const pr::bytes& root_b() {
  static const pr::bytes der = make_root("write test CA B");
  return der;
}

overlay_config minimal() {
  overlay_config c;
  c.instance_name = "example.org";
  c.root_certs = {root_a()};
  return c;
}

// Every field away from its default, every list with more than one entry.
overlay_config everything() {
  overlay_config c;
  c.instance_name = "overlay.example.org";
  c.sequence = 65534;
  c.expiration = std::chrono::sys_days{std::chrono::year{2031} / 7 / 14} + std::chrono::hours(3);
  c.node_id_length = 20;
  c.root_certs = {root_a(), root_b()};
  c.enrollment_servers = {"https://enroll.example.org/reload", "https://example.net"};
  c.self_signed = self_signed_policy{true, "sha256"};
  c.bootstrap_nodes = {*pr::ip_address_port::parse("192.0.2.1:6084"),
                       *pr::ip_address_port::parse("[2001:db8::10]:7000"),
                       *pr::ip_address_port::parse("[::ffff:198.51.100.3]:1")};
  c.turn_density = 0;
  c.clients_permitted = false;
  c.no_ice = true;
  c.shared_secret = "s3cret <&> \"quoted\"";
  c.max_message_size = 65535;
  c.initial_ttl = 255;
  c.overlay_reliability_timer = std::chrono::milliseconds(200);
  c.overlay_link_protocols = {"TLS", "EXPERIMENTAL-LINK"};
  c.kind_signers = {pr::bytes(20, 0xAB), pr::bytes{0x47, 0x11}};
  c.configuration_signers = {pr::bytes(20, 0x01)};
  c.bad_nodes = {pr::bytes(20, 0xEE), pr::bytes(20, 0xEF)};
  c.mandatory_extensions = {std::string(sip_namespace)};
  c.kinds = standard_kinds();
  kind_definition turn;
  turn.id = pr::kinds::turn_service;
  turn.model = pr::data_model::single_value;
  turn.policy = access_policy::node_multiple;
  turn.max_count = 1;
  turn.max_size = 100;
  turn.max_node_multiple = 20;
  turn.signature = signature_element{"rsa-sha1", pr::bytes{1, 2, 3, 4, 5}};
  c.kinds.push_back(turn);
  kind_definition custom;
  custom.id = 0xF0000200;
  custom.model = pr::data_model::array;
  custom.policy = access_policy::user_match;
  custom.max_count = 2147483647;
  custom.max_size = 1;
  custom.signature = signature_element{"", pr::bytes{9}};
  c.kinds.push_back(custom);
  c.sip_domain_restriction = domain_restriction{true, {"dht\\.example\\.com", ".*\\.my\\.example"}};
  c.chord.update_interval = std::chrono::seconds(400);
  c.chord.ping_interval = std::chrono::seconds(30);
  c.chord.reactive = false;
  c.signatures = {signature_element{"rsa-sha1", pr::bytes(64, 0x5A)}, signature_element{"", {0}}};
  return c;
}

void check_round_trip(const overlay_config& c) {
  const auto valid = validate_overlay_config(c);
  REQUIRE_MESSAGE(valid, (valid ? "" : valid.error().message));
  const std::string xml = write_document(c);
  const auto parsed = parse_overlay_config(xml);
  REQUIRE_MESSAGE(parsed, (parsed ? "" : parsed.error().message + "\n" + xml));
  CHECK(*parsed == c);
  // Deterministic: writing the parsed value again gives the same bytes.
  CHECK(write_document(*parsed) == xml);
}

}  // namespace

TEST_CASE("config write: round trips") {
  SUBCASE("minimal") {
    check_round_trip(minimal());
  }
  SUBCASE("every field") {
    check_round_trip(everything());
  }
  SUBCASE("a domain restriction without a SIP-REGISTRATION kind") {
    overlay_config c = minimal();
    c.sip_domain_restriction = domain_restriction{false, {}};
    check_round_trip(c);
    CHECK(write_document(c).find("<sip:domain-restriction enable=\"false\" />") !=
          std::string::npos);
  }
  SUBCASE("what p2psip-admin init writes") {
    overlay_config c = minimal();
    c.sequence = 1;
    c.max_message_size = 32768;
    c.no_ice = true;
    c.overlay_link_protocols = {"TLS"};
    c.kinds = standard_kinds();
    check_round_trip(c);
  }
}

TEST_CASE("config write: the document's shape") {
  const std::string xml = write_document(everything());
  CHECK(
      xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<overlay "
                      "xmlns=\"urn:ietf:params:xml:ns:p2p:config-base\" "
                      "xmlns:chord=\"urn:ietf:params:xml:ns:p2p:config-chord\" "
                      "xmlns:sip=\"urn:ietf:params:xml:ns:p2p:config-base:sip\">"));
  CHECK(xml.find("<configuration instance-name=\"overlay.example.org\" sequence=\"65534\" "
                 "expiration=\"2031-07-14T03:00:00Z\">") != std::string::npos);
  CHECK(xml.find("<bootstrap-node address=\"2001:db8::10\" port=\"7000\" />") != std::string::npos);
  CHECK(xml.find("<kind name=\"SIP-REGISTRATION\">") != std::string::npos);
  CHECK(xml.find("<kind id=\"4026532097\">") != std::string::npos);
  CHECK(xml.find("<access-control>P2PSIP-GENERIC</access-control>") != std::string::npos);
  CHECK(xml.find("<kind-signature algorithm=\"rsa-sha1\">AQIDBAU=</kind-signature>") !=
        std::string::npos);
  CHECK(xml.find("<shared-secret>s3cret &lt;&amp;&gt; \"quoted\"</shared-secret>") !=
        std::string::npos);
  CHECK(xml.find("</configuration>\n  <signature algorithm=\"rsa-sha1\">") != std::string::npos);
  CHECK(xml.find("<chord:chord-reactive>false</chord:chord-reactive>") != std::string::npos);
  // The signed range of a written document is found again on parsing.
  const auto doc = parse_document(xml);
  REQUIRE(doc);
  CHECK(doc->configuration_text.starts_with("<configuration "));
  CHECK(doc->configuration_text.ends_with("</configuration>"));
  CHECK(doc->kind_texts.size() == doc->config.kinds.size());
}

TEST_CASE("config write: validate_overlay_config holds built values to the parser's rules") {
  auto error_of = [](const overlay_config& c) {
    const auto r = validate_overlay_config(c);
    return r ? std::string("<accepted>") : r.error().message;
  };
  overlay_config c = minimal();
  CHECK(error_of(c) == "<accepted>");
  c.node_id_length = 12;
  CHECK(error_of(c) == "configuration/node-id-length: 12 is outside 16..20");
  c = minimal();
  c.root_certs.clear();
  CHECK(
      error_of(c) ==
      "configuration/root-cert: none listed and self-signed-permitted is not true (RFC 6940 11.1)");
  c = minimal();
  c.root_certs.push_back(pr::bytes{0x30, 0x00});
  CHECK(error_of(c).starts_with("configuration/root-cert[2]: not a DER X.509 certificate"));
  c = minimal();
  c.overlay_reliability_timer = std::chrono::milliseconds(100);
  CHECK(error_of(c).starts_with("configuration/overlay-reliability-timer: 100 is outside 200.."));
  c = minimal();
  c.kinds = standard_kinds();
  c.kinds[0].model = pr::data_model::single_value;
  CHECK(error_of(c) ==
        "configuration/required-kinds/kind-block[1]/kind: SIP-REGISTRATION is "
        "DICTIONARY with USER-NODE-MATCH");
  c = minimal();
  c.kinds = standard_kinds();
  c.kinds.push_back(generic_kind());
  CHECK(error_of(c) ==
        "configuration/required-kinds/kind-block[6]/kind: Kind-ID 4026532097 is defined twice");
  c = minimal();
  c.bootstrap_nodes = {*pr::ip_address_port::parse("192.0.2.1:0")};
  CHECK(error_of(c) == "configuration/bootstrap-node[1]: port 0 is not a usable port");
  c = minimal();
  c.instance_name = "bad name";
  CHECK(error_of(c) ==
        "configuration: instance-name 'bad name' contains a character not allowed in a host name");
}

TEST_CASE("config: limits, kind table and model lookup") {
  overlay_config c = minimal();
  c.node_id_length = 20;
  c.max_message_size = 32768;
  c.initial_ttl = 40;
  c.kinds = standard_kinds();
  pr::limits base;
  base.max_via_entries = 7;
  const pr::limits lim = limits_of(c, base);
  CHECK(lim.node_id_length == 20);
  CHECK(lim.max_message_size == 32768);
  CHECK(lim.initial_ttl == 40);
  CHECK(lim.max_via_entries == 7);

  const kind_table table = make_kind_table(c);
  REQUIRE(table.size() == 5);
  CHECK(table.at(pr::kinds::p2psip_sip_gateway).policy == access_policy::user_node_match);
  CHECK(table.at(pr::kinds::p2psip_sip_gateway).model == pr::data_model::dictionary);
  CHECK(table.at(pr::kinds::sip_registration).policy == access_policy::user_node_match);
  CHECK(table.at(pr::kinds::certificate_by_node).model == pr::data_model::array);
  CHECK(table.at(pr::kinds::certificate_by_user).policy == access_policy::user_match);
  const kind_definition& generic = table.at(pr::kinds::p2psip_generic);
  CHECK(generic.model == pr::data_model::dictionary);
  CHECK(generic.policy == access_policy::p2psip_generic);
  CHECK(generic.max_count >= 1);
  CHECK(generic.max_size >= 1);

  CHECK(find_kind(c, pr::kinds::certificate_by_user) != nullptr);
  CHECK(find_kind(c, pr::kinds::turn_service) == nullptr);

  const auto lookup = kind_model_lookup_of(c);
  c.kinds.clear();  // the lookup holds its own copy
  CHECK(lookup(pr::kinds::sip_registration) == pr::data_model::dictionary);
  CHECK(lookup(pr::kinds::certificate_by_node) == pr::data_model::array);
  CHECK(lookup(pr::kinds::p2psip_generic) == pr::data_model::dictionary);
  CHECK_FALSE(lookup(pr::kinds::turn_service));
  pr::body_context ctx;
  ctx.model_of = lookup;
  CHECK(ctx.model_of(pr::kinds::p2psip_generic) == pr::data_model::dictionary);
}

TEST_CASE("config: names and the registry") {
  for (const auto p :
       {access_policy::user_match, access_policy::node_match, access_policy::user_node_match,
        access_policy::node_multiple, access_policy::p2psip_generic}) {
    CHECK(access_policy_from_name(access_policy_name(p)) == p);
  }
  CHECK_FALSE(access_policy_from_name("user-match"));
  CHECK(data_model_from_name("DICTIONARY") == pr::data_model::dictionary);
  CHECK_FALSE(data_model_from_name("dictionary"));
  CHECK(registered_kind_by_name("CERTIFICATE_BY_USER")->id == 0x10);
  CHECK(registered_kind_by_name("TURN-SERVICE")->policy == access_policy::node_multiple);
  CHECK_FALSE(registered_kind_by_name("p2psip-generic"));  // ours is never named in documents
  CHECK(registered_kind_by_id(pr::kinds::p2psip_generic)->iana == false);
  // The codec's own table agrees with the configuration's registry.
  for (const auto id :
       {pr::kinds::sip_registration, pr::kinds::turn_service, pr::kinds::certificate_by_node,
        pr::kinds::certificate_by_user, pr::kinds::p2psip_generic}) {
    CHECK(pr::registered_kind_model(id) == registered_kind_by_id(id)->model);
  }
}

TEST_CASE("config: the caller's expectation") {
  overlay_config c = minimal();
  expectation e;
  e.overlay_name = "example.org";
  e.root_certs = {root_a()};
  CHECK(check_overlay_config(c, e));

  SUBCASE("another overlay") {
    e.overlay_name = "example.com";
    const auto r = check_overlay_config(c, e);
    REQUIRE_FALSE(r);
    CHECK(r.error().message ==
          "configuration: instance-name is 'example.org', expected 'example.com'");
    CHECK(r.error().code == config_errc::wrong_overlay);
  }
  SUBCASE("a root the caller does not trust") {
    c.root_certs = {root_a(), root_b()};
    const auto r = check_overlay_config(c, e);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.starts_with(
        "configuration/root-cert[2]: not a trusted root certificate (SHA-256 "));
    CHECK(r.error().code == config_errc::untrusted_root);
    e.root_certs = {root_b(), root_a()};
    CHECK(check_overlay_config(c, e));
  }
  SUBCASE("only another root") {
    c.root_certs = {root_b()};
    CHECK_FALSE(check_overlay_config(c, e));
  }
  SUBCASE("no root at all (self-signed overlay) when the caller expects one") {
    c.root_certs.clear();
    c.self_signed = self_signed_policy{true, "sha1"};
    const auto r = check_overlay_config(c, e);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "configuration/root-cert: none listed, expected the overlay's root");
    CHECK(r.error().code == config_errc::untrusted_root);
  }
  SUBCASE("roots not checked when the caller pins none") {
    e.root_certs.clear();
    c.root_certs = {root_b()};
    CHECK(check_overlay_config(c, e));
  }
  SUBCASE("expiration") {
    c.expiration = std::chrono::sys_days{std::chrono::year{2002} / 10 / 10};
    CHECK(check_overlay_config(c, e));  // no `now`: not checked
    e.now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    const auto r = check_overlay_config(c, e);
    REQUIRE_FALSE(r);
    CHECK(r.error().message == "configuration: expired at 2002-10-10T00:00:00Z");
    CHECK(r.error().code == config_errc::expired);
    c.expiration = *e.now + std::chrono::hours(1);
    CHECK(check_overlay_config(c, e));
  }
}
