// The overlay configuration document parser (RFC 6940 section 11.1, RFC 7904 section 3.4):
// valid documents (the RFC's example among them), and a table of invalid ones, each refused with
// a message naming the element.

#include <doctest/doctest.h>

#include <botan/auto_rng.h>
#include <botan/base64.h>
#include <botan/ec_group.h>
#include <botan/ecdsa.h>
#include <botan/x509cert.h>
#include <botan/x509self.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "p2psip/config/config_document.hpp"
#include "p2psip/config/overlay_config.hpp"
#include "test_pki.hpp"

using namespace p2psip::config;
namespace pr = p2psip::protocol;

namespace {

// A throwaway CA certificate (DER), generated at run time.
pr::bytes make_ca_der(const std::string& cn) {
  return p2psip::test_pki::test_ca(cn).der();
}

const pr::bytes& ca_der() {
  static const pr::bytes der = make_ca_der("parse test CA");
  return der;
}

std::string b64(const pr::bytes& b) {
  return Botan::base64_encode(b.data(), b.size());
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

// A document with one configuration; "ROOT" in the body becomes a valid root-cert element.
std::string doc(std::string body,
                const std::string& attrs = R"(instance-name="example.org" sequence="1")") {
  replace_all(body, "ROOT", "<root-cert>" + b64(ca_der()) + "</root-cert>");
  return R"(<?xml version="1.0" encoding="UTF-8"?>
<overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base"
         xmlns:chord="urn:ietf:params:xml:ns:p2p:config-chord"
         xmlns:sip="urn:ietf:params:xml:ns:p2p:config-base:sip">
  <configuration )" +
         attrs + ">\n" + body + R"(
  </configuration>
</overlay>
)";
}

std::string kind_doc(const std::string& kind_block) {
  return doc("ROOT<required-kinds>" + kind_block + "</required-kinds>");
}

// RFC 6940 section 11.1's example, with its two root certificates (one expired in 2013, one not a
// certificate at all) replaced by a generated CA.
std::string rfc_example() {
  std::string text = R"(<?xml version="1.0" encoding="UTF-8"?>
   <overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base"
      xmlns:ext="urn:ietf:params:xml:ns:p2p:config-ext1"
      xmlns:chord="urn:ietf:params:xml:ns:p2p:config-chord">
      <configuration instance-name="overlay.example.org" sequence="22"
          expiration="2002-10-10T07:00:00Z" ext:ext-example="stuff" >
          <topology-plugin> CHORD-RELOAD </topology-plugin>
          <node-id-length>16</node-id-length>
          <root-cert>
          ROOTB64
          </root-cert>
          <enrollment-server>https://example.org</enrollment-server>
          <enrollment-server>https://example.net</enrollment-server>
          <self-signed-permitted
                    digest="sha1">false</self-signed-permitted>
          <bootstrap-node address="192.0.0.1" port="6084" />
          <bootstrap-node address="192.0.2.2" port="6084" />
          <bootstrap-node address="2001:DB8::1" port="6084" />
          <turn-density> 20 </turn-density>
          <clients-permitted> false </clients-permitted>
          <no-ice> false </no-ice>
          <chord:chord-update-interval>
              400</chord:chord-update-interval>
          <chord:chord-ping-interval>30</chord:chord-ping-interval>
          <chord:chord-reactive> true </chord:chord-reactive>
          <shared-secret> password </shared-secret>
          <max-message-size>4000</max-message-size>
          <initial-ttl> 30 </initial-ttl>
          <overlay-reliability-timer> 3000 </overlay-reliability-timer>
          <overlay-link-protocol>TLS</overlay-link-protocol>
          <configuration-signer>47112162e84c69ba</configuration-signer>
          <kind-signer> 47112162e84c69ba </kind-signer>
          <kind-signer> 6eba45d31a900c06 </kind-signer>
          <bad-node> 6ebc45d31a900c06 </bad-node>
          <bad-node> 6ebc45d31a900ca6 </bad-node>
          <ext:example-extension> foo </ext:example-extension>
          <mandatory-extension>
              urn:ietf:params:xml:ns:p2p:config-ext1
          </mandatory-extension>
          <required-kinds>
            <kind-block>
              <kind name="SIP-REGISTRATION">
                  <data-model>SINGLE</data-model>
                  <access-control>USER-MATCH</access-control>
                  <max-count>1</max-count>
                  <max-size>100</max-size>
              </kind>
              <kind-signature>
                   VGhpcyBpcyBub3QgcmlnaHQhCg==
              </kind-signature>
            </kind-block>
            <kind-block>
              <kind id="2000">
                  <data-model>ARRAY</data-model>
                  <access-control>NODE-MULTIPLE</access-control>
                  <max-node-multiple>3</max-node-multiple>
                  <max-count>22</max-count>
                  <max-size>4</max-size>
                  <ext:example-kind-extension> 1
                          </ext:example-kind-extension>
              </kind>
              <kind-signature>
                 VGhpcyBpcyBub3QgcmlnaHQhCg==
              </kind-signature>
            </kind-block>
          </required-kinds>
      </configuration>
      <signature> VGhpcyBpcyBub3QgcmlnaHQhCg== </signature>
      <configuration instance-name="other.example.net">
      </configuration>
      <signature> VGhpcyBpcyBub3QgcmlnaHQhCg== </signature>
    </overlay>
)";
  replace_all(text, "ROOTB64", b64(ca_der()));
  return text;
}

const std::string ext1 = "urn:ietf:params:xml:ns:p2p:config-ext1";

std::string error_of(const std::string& xml, const parse_options& options = {}) {
  const auto r = parse_document(xml, options);
  return r ? std::string("<accepted>") : r.error().message;
}

}  // namespace

TEST_CASE("config: a minimal document gets the RFC's defaults") {
  const auto r = parse_overlay_config(doc("ROOT", R"(instance-name="example.org")"));
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  const overlay_config& c = *r;
  CHECK(c.instance_name == "example.org");
  CHECK(c.sequence == 0);
  CHECK_FALSE(c.expiration);
  CHECK(c.topology_plugin == "CHORD-RELOAD");
  CHECK(c.node_id_length == 16);
  REQUIRE(c.root_certs.size() == 1);
  CHECK(c.root_certs[0] == ca_der());
  CHECK(c.turn_density == 1);
  CHECK(c.clients_permitted);
  CHECK_FALSE(c.no_ice);
  CHECK_FALSE(c.shared_secret);
  CHECK(c.max_message_size == 5000);
  CHECK(c.initial_ttl == 100);
  CHECK(c.overlay_reliability_timer == std::chrono::milliseconds(3000));
  CHECK(c.overlay_link_protocols.empty());
  CHECK(c.link_protocols() == std::vector<std::string>{"TLS"});
  CHECK(c.chord.update_interval == std::chrono::seconds(600));
  CHECK(c.chord.ping_interval == std::chrono::seconds(3600));
  CHECK(c.chord.reactive);
  CHECK(c.kinds.empty());
  CHECK_FALSE(c.sip_domain_restriction);
  CHECK_FALSE(c.self_signed_permitted());
}

TEST_CASE("config: the RFC 6940 example structure") {
  const std::string xml = rfc_example();

  SUBCASE("its mandatory extension is refused unless the node supports it") {
    CHECK(error_of(xml) ==
          "configuration/mandatory-extension[1]: extension '" + ext1 +
              "' is not supported (RFC 6940 11.1: a joining node MUST support it)");
  }

  SUBCASE("every value") {
    parse_options options;
    options.supported_extensions = {ext1};
    const auto r = parse_document(xml, options);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    const overlay_config& c = r->config;
    CHECK(c.instance_name == "overlay.example.org");
    CHECK(c.sequence == 22);
    REQUIRE(c.expiration);
    CHECK(format_date_time(*c.expiration) == "2002-10-10T07:00:00Z");
    CHECK(c.topology_plugin == "CHORD-RELOAD");
    CHECK(c.node_id_length == 16);
    CHECK(c.root_certs == std::vector<pr::bytes>{ca_der()});
    CHECK(c.enrollment_servers ==
          std::vector<std::string>{"https://example.org", "https://example.net"});
    REQUIRE(c.self_signed);
    CHECK_FALSE(c.self_signed->permitted);
    CHECK(c.self_signed->digest == "sha1");
    REQUIRE(c.bootstrap_nodes.size() == 3);
    CHECK(c.bootstrap_nodes[0].to_string() == "192.0.0.1:6084");
    CHECK(c.bootstrap_nodes[1].to_string() == "192.0.2.2:6084");
    CHECK(c.bootstrap_nodes[2].to_string() == "[2001:db8::1]:6084");
    CHECK(c.turn_density == 20);
    CHECK_FALSE(c.clients_permitted);
    CHECK_FALSE(c.no_ice);
    CHECK(c.chord.update_interval == std::chrono::seconds(400));
    CHECK(c.chord.ping_interval == std::chrono::seconds(30));
    CHECK(c.chord.reactive);
    CHECK(c.shared_secret == "password");
    CHECK(c.max_message_size == 4000);
    CHECK(c.initial_ttl == 30);
    CHECK(c.overlay_reliability_timer == std::chrono::milliseconds(3000));
    CHECK(c.overlay_link_protocols == std::vector<std::string>{"TLS"});
    REQUIRE(c.configuration_signers.size() == 1);
    CHECK(pr::to_hex(c.configuration_signers[0]) == "47112162e84c69ba");
    REQUIRE(c.kind_signers.size() == 2);
    CHECK(pr::to_hex(c.kind_signers[1]) == "6eba45d31a900c06");
    REQUIRE(c.bad_nodes.size() == 2);
    CHECK(pr::to_hex(c.bad_nodes[1]) == "6ebc45d31a900ca6");
    CHECK(c.mandatory_extensions == std::vector<std::string>{ext1});

    REQUIRE(c.kinds.size() == 2);
    // SIP-REGISTRATION is IANA-registered: DICTIONARY with USER-NODE-MATCH whatever the document
    // says (RFC 6940 11.1: clients MUST ignore the document's values).
    CHECK(c.kinds[0].id == pr::kinds::sip_registration);
    CHECK(c.kinds[0].model == pr::data_model::dictionary);
    CHECK(c.kinds[0].policy == access_policy::user_node_match);
    CHECK(c.kinds[0].max_count == 1);
    CHECK(c.kinds[0].max_size == 100);
    REQUIRE(c.kinds[0].signature);
    CHECK(pr::as_string_view(c.kinds[0].signature->value) == "This is not right!\n");
    CHECK(c.kinds[1].id == 2000);
    CHECK(c.kinds[1].model == pr::data_model::array);
    CHECK(c.kinds[1].policy == access_policy::node_multiple);
    CHECK(c.kinds[1].max_node_multiple == 3u);
    CHECK(c.kinds[1].max_count == 22);
    CHECK(c.kinds[1].max_size == 4);

    REQUIRE(c.signatures.size() == 1);
    CHECK(c.signatures[0].algorithm.empty());
    CHECK(pr::as_string_view(c.signatures[0].value) == "This is not right!\n");

    CHECK(r->instance_names ==
          std::vector<std::string>{"overlay.example.org", "other.example.net"});
    REQUIRE(r->warnings.size() >= 1);
    CHECK(r->warnings[0].find("SIP-REGISTRATION is DICTIONARY with USER-NODE-MATCH (IANA)") !=
          std::string::npos);
    // The kind-signer values are 8 bytes, not node-id-length: accepted with a warning.
    bool id_warning = false;
    for (const auto& w : r->warnings) id_warning |= w.find("kind-signer[1]") != std::string::npos;
    CHECK(id_warning);
    CHECK(r->ignored ==
          std::vector<std::string>{
              "configuration/ext:example-extension",
              "configuration/required-kinds/kind-block[2]/kind/ext:example-kind-extension"});

    // The exact bytes the signatures cover.
    CHECK(
        r->configuration_text.starts_with("<configuration instance-name=\"overlay.example.org\""));
    CHECK(r->configuration_text.ends_with("</required-kinds>\n      </configuration>"));
    CHECK(xml.find(r->configuration_text) != std::string::npos);
    REQUIRE(r->kind_texts.size() == 2);
    CHECK(r->kind_texts[0].starts_with("<kind name=\"SIP-REGISTRATION\">"));
    CHECK(r->kind_texts[0].ends_with("</kind>"));
    CHECK(r->kind_texts[1].starts_with("<kind id=\"2000\">"));
  }

  SUBCASE("choosing the second configuration by name") {
    parse_options options;
    options.instance_name = "other.example.net";
    // It is empty: no root-cert, and self-signed certificates are not permitted.
    CHECK(error_of(xml, options) ==
          "configuration/root-cert: none listed and self-signed-permitted is not true (RFC 6940 "
          "11.1)");
    options.instance_name = "nowhere.example";
    CHECK(error_of(xml, options) ==
          "overlay: no configuration for instance-name 'nowhere.example' (the document has "
          "'overlay.example.org', 'other.example.net')");
  }
}

TEST_CASE("config: accepted forms") {
  SUBCASE("IPv6 and IPv4 bootstrap nodes, default port") {
    const auto r = parse_overlay_config(doc(R"(ROOT
      <bootstrap-node address="2001:DB8:0:0::7"/>
      <bootstrap-node address=" 198.51.100.1 " port="7000"/>
      <bootstrap-node address="::ffff:192.0.2.9" port="1"/>)"));
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    REQUIRE(r->bootstrap_nodes.size() == 3);
    CHECK(r->bootstrap_nodes[0].to_string() == "[2001:db8::7]:6084");
    CHECK(r->bootstrap_nodes[1].to_string() == "198.51.100.1:7000");
    CHECK(r->bootstrap_nodes[2].to_string() == "[::ffff:192.0.2.9]:1");
  }
  SUBCASE("namespaces bound to other prefixes") {
    const std::string xml = R"(<?xml version="1.0"?>
<p:overlay xmlns:p="urn:ietf:params:xml:ns:p2p:config-base" xmlns:c="urn:ietf:params:xml:ns:p2p:config-chord">
  <p:configuration instance-name="example.org">
    <p:root-cert>)" + b64(ca_der()) +
                            R"(</p:root-cert>
    <c:chord-reactive>0</c:chord-reactive>
    <c:chord-ping-interval xmlns:c="urn:example:not-chord">5</c:chord-ping-interval>
  </p:configuration>
</p:overlay>)";
    const auto r = parse_document(xml);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK_FALSE(r->config.chord.reactive);
    // Re-bound to another namespace: a foreign element, skipped.
    CHECK(r->config.chord.ping_interval == std::chrono::seconds(3600));
    CHECK(r->ignored.size() == 1);
  }
  SUBCASE("booleans as 1 and 0, topology-plug-in spelling, whitespace") {
    const auto r = parse_overlay_config(doc(R"(ROOT
      <topology-plug-in>
        CHORD-RELOAD
      </topology-plug-in>
      <clients-permitted>0</clients-permitted>
      <no-ice>1</no-ice>
      <node-id-length> +20 </node-id-length>
      <self-signed-permitted digest="sha256">true</self-signed-permitted>)"));
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK_FALSE(r->clients_permitted);
    CHECK(r->no_ice);
    CHECK(r->node_id_length == 20);
    CHECK(r->self_signed_permitted());
    CHECK(r->self_signed->digest == "sha256");
  }
  SUBCASE("self-signed overlays need no root-cert") {
    const auto r = parse_overlay_config(
        doc(R"(<self-signed-permitted digest="sha1">true</self-signed-permitted>)"));
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(r->root_certs.empty());
  }
  SUBCASE("sip:domain-restriction inside SIP-REGISTRATION, and the plural spelling") {
    const std::string kind = R"(<kind-block><kind name="SIP-REGISTRATION">
        <data-model>DICTIONARY</data-model><access-control>USER-NODE-MATCH</access-control>
        <max-count>2</max-count><max-size>500</max-size>
        <sip:domain-restriction enable="true">
          <sip:pattern>dht\.example\.com</sip:pattern>
          <sip:pattern>.*\.my\.example</sip:pattern>
        </sip:domain-restriction></kind></kind-block>)";
    auto r = parse_overlay_config(kind_doc(kind));
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    REQUIRE(r->sip_domain_restriction);
    CHECK(r->sip_domain_restriction->enable);
    CHECK(r->sip_domain_restriction->patterns ==
          std::vector<std::string>{"dht\\.example\\.com", ".*\\.my\\.example"});
    // RFC 7904 3.4's example: <user>@dht.example.com, or a domain ending in my.example.
    CHECK(aor_domain_allowed(*r, "alice@dht.example.com"));
    CHECK(aor_domain_allowed(*r, "bob@DHT.Example.COM"));
    CHECK(aor_domain_allowed(*r, "carol@lab.my.example"));
    CHECK_FALSE(aor_domain_allowed(*r, "dave@my.example"));
    CHECK_FALSE(aor_domain_allowed(*r, "eve@dht.example.com.evil.org"));
    CHECK_FALSE(aor_domain_allowed(*r, "mallory@example.org"));

    r = parse_overlay_config(doc(R"(ROOT<sip:domain-restrictions/>)"));
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    REQUIRE(r->sip_domain_restriction);
    CHECK_FALSE(r->sip_domain_restriction->enable);
    // Disabled: only the overlay's own domain.
    CHECK(aor_domain_allowed(*r, "alice@example.org"));
    CHECK_FALSE(aor_domain_allowed(*r, "alice@example.com"));
  }
  SUBCASE("no restriction admits any AOR") {
    const auto r = parse_overlay_config(doc("ROOT"));
    REQUIRE(r);
    CHECK(aor_domain_allowed(*r, "anyone@anywhere.example"));
  }
  SUBCASE("comments, processing instructions and CDATA") {
    const auto r = parse_overlay_config(doc(R"(ROOT<!-- a comment -->
      <?pi something?><max-message-size><![CDATA[6000]]></max-message-size>)"));
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(r->max_message_size == 6000);
  }
  SUBCASE("a kind given by the id of an IANA kind") {
    const auto r = parse_overlay_config(kind_doc(R"(<kind-block><kind id="3">
        <data-model>ARRAY</data-model><access-control>NODE-MATCH</access-control>
        <max-count>1</max-count><max-size>2000</max-size></kind></kind-block>)"));
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(r->kinds.at(0).id == pr::kinds::certificate_by_node);
  }
}

TEST_CASE("config: invalid documents name the element") {
  namespace tp = p2psip::test_pki;
  const auto leaf =
      tp::make_identity(tp::test_ca("leaf issuer CA"),
                        tp::spec_for({*pr::node_id::from_hex("00112233445566778899aabbccddeeff")}));
  const std::string leaf_b64 = b64(leaf.cert().der());
  const std::string good_kind_body =
      "<data-model>DICTIONARY</data-model><access-control>USER-NODE-MATCH</access-control>"
      "<max-count>1</max-count><max-size>100</max-size>";
  const std::string kind_path = "configuration/required-kinds/kind-block[1]/kind";

  struct invalid_case {
    const char* what;
    std::string xml;
    std::string message;  // the whole message, or a prefix of it ending in "..."
  };
  const std::vector<invalid_case> cases = {
      {"not XML", "<overlay", "overlay: not well-formed XML at offset ..."},
      {"empty input", "", "overlay: not well-formed XML at offset ..."},
      {"missing overlay", R"(<configuration xmlns="urn:ietf:params:xml:ns:p2p:config-base"/>)",
       "overlay: root element is <configuration>, expected <overlay>"},
      {"wrong namespace", R"(<overlay xmlns="urn:example:wrong"><configuration/></overlay>)",
       "overlay: namespace is 'urn:example:wrong', expected "
       "'urn:ietf:params:xml:ns:p2p:config-base'"},
      {"no namespace", "<overlay/>",
       "overlay: in no namespace, expected 'urn:ietf:params:xml:ns:p2p:config-base'"},
      {"no configuration", R"(<overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base"/>)",
       "overlay: no configuration element"},
      {"configuration without instance-name",
       R"(<overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base"><configuration/></overlay>)",
       "overlay/configuration[1]: the instance-name attribute is missing"},
      {"two configurations of one overlay",
       R"(<overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base"><configuration instance-name="a"/>
          <configuration instance-name="a"/></overlay>)",
       "overlay/configuration[2]: a second configuration for instance-name 'a'"},
      {"signature first",
       R"(<overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base"><signature>AAAA</signature>
          <configuration instance-name="a"/></overlay>)",
       "overlay/signature: comes before any configuration"},
      {"unknown element in overlay",
       R"(<overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base"><config/></overlay>)",
       "overlay/config: unknown element"},
      {"undeclared prefix", doc("ROOT<foo:bar/>"),
       "configuration/foo:bar: namespace prefix 'foo' is not declared"},
      {"empty instance-name", doc("ROOT", R"(instance-name="")"),
       "configuration: instance-name is empty"},
      {"unknown configuration attribute", doc("ROOT", R"(instance-name="a" colour="red")"),
       "configuration: unknown attribute 'colour'"},
      {"sequence too large", doc("ROOT", R"(instance-name="a" sequence="65535")"),
       "configuration: sequence 65535 is outside 0..65534"},
      {"negative sequence", doc("ROOT", R"(instance-name="a" sequence="-1")"),
       "configuration sequence: -1 is negative"},
      {"bad expiration", doc("ROOT", R"(instance-name="a" expiration="tomorrow")"),
       "configuration: expiration 'tomorrow' is not an RFC 3339 date-time in UTC"},
      {"expiration not in UTC",
       doc("ROOT", R"(instance-name="a" expiration="2030-01-01T00:00:00+02:00")"),
       "configuration: expiration '2030-01-01T00:00:00+02:00' is not an RFC 3339 date-time in UTC"},
      {"node-id-length too small", doc("ROOT<node-id-length>12</node-id-length>"),
       "configuration/node-id-length: 12 is outside 16..20"},
      {"node-id-length too large", doc("ROOT<node-id-length>21</node-id-length>"),
       "configuration/node-id-length: 21 is outside 16..20"},
      {"node-id-length not a number", doc("ROOT<node-id-length>sixteen</node-id-length>"),
       "configuration/node-id-length: 'sixteen' is not a number"},
      {"node-id-length negative", doc("ROOT<node-id-length>-16</node-id-length>"),
       "configuration/node-id-length: -16 is negative"},
      {"node-id-length twice",
       doc("ROOT<node-id-length>16</node-id-length><node-id-length>16</node-id-length>"),
       "configuration/node-id-length: appears more than once"},
      {"root-cert bad base64", doc("<root-cert>!!not base64!!</root-cert>"),
       "configuration/root-cert[1]: invalid base64"},
      {"root-cert empty", doc("ROOT<root-cert>  </root-cert>"),
       "configuration/root-cert[2]: empty base64 content"},
      {"root-cert not DER (the RFC's second root)",
       doc("ROOT<root-cert> YmFkIGNlcnQK </root-cert>"),
       "configuration/root-cert[2]: not a DER X.509 certificate (..."},
      {"root-cert not a CA", doc("<root-cert>" + leaf_b64 + "</root-cert>"),
       "configuration/root-cert[1]: not a CA certificate (basicConstraints CA is not set)"},
      {"root-cert with an element inside", doc("<root-cert><x/></root-cert>"),
       "configuration/root-cert[1]: expected text, found element <x>"},
      {"no root-cert", doc(""),
       "configuration/root-cert: none listed and self-signed-permitted is not true (RFC 6940 "
       "11.1)"},
      {"bootstrap address not an IP",
       doc(R"(ROOT<bootstrap-node address="boot.example.org" port="6084"/>)"),
       "configuration/bootstrap-node[1]: address 'boot.example.org' is not an IPv4 or IPv6 "
       "literal"},
      {"bootstrap IPv4 out of range", doc(R"(ROOT<bootstrap-node address="300.1.1.1"/>)"),
       "configuration/bootstrap-node[1]: address '300.1.1.1' is not an IPv4 or IPv6 literal"},
      {"bootstrap bad IPv6",
       doc(R"(ROOT<bootstrap-node address="192.0.2.1"/><bootstrap-node address="2001:db8:::1"/>)"),
       "configuration/bootstrap-node[2]: address '2001:db8:::1' is not an IPv4 or IPv6 literal"},
      {"bootstrap port too large", doc(R"(ROOT<bootstrap-node address="192.0.2.1" port="70000"/>)"),
       "configuration/bootstrap-node[1]: port 70000 is outside 1..65535"},
      {"bootstrap port zero", doc(R"(ROOT<bootstrap-node address="192.0.2.1" port="0"/>)"),
       "configuration/bootstrap-node[1]: port 0 is outside 1..65535"},
      {"bootstrap port not a number",
       doc(R"(ROOT<bootstrap-node address="192.0.2.1" port="http"/>)"),
       "configuration/bootstrap-node[1] port: 'http' is not a number"},
      {"bootstrap without address", doc(R"(ROOT<bootstrap-node port="6084"/>)"),
       "configuration/bootstrap-node[1]: the address attribute is missing"},
      {"unknown topology", doc("ROOT<topology-plugin>KADEMLIA</topology-plugin>"),
       "configuration/topology-plugin: 'KADEMLIA' is not supported (only CHORD-RELOAD)"},
      {"enrollment server over http",
       doc("ROOT<enrollment-server>http://example.org</enrollment-server>"),
       "configuration/enrollment-server[1]: 'http://example.org' is not an https: URL"},
      {"self-signed digest unknown",
       doc(R"(ROOT<self-signed-permitted digest="md5">true</self-signed-permitted>)"),
       "configuration/self-signed-permitted: digest 'md5' is not supported (sha1 or sha256)"},
      {"self-signed without digest", doc("ROOT<self-signed-permitted>true</self-signed-permitted>"),
       "configuration/self-signed-permitted: the digest attribute is missing"},
      {"boolean not a boolean", doc("ROOT<clients-permitted>yes</clients-permitted>"),
       "configuration/clients-permitted: 'yes' is not a boolean (true, false, 1, 0)"},
      {"turn-density too large", doc("ROOT<turn-density>256</turn-density>"),
       "configuration/turn-density: 256 is larger than 255"},
      {"max-message-size too small", doc("ROOT<max-message-size>100</max-message-size>"),
       "configuration/max-message-size: 100 is outside 256..4294967295"},
      {"initial-ttl zero", doc("ROOT<initial-ttl>0</initial-ttl>"),
       "configuration/initial-ttl: 0 is outside 1..255"},
      {"initial-ttl too large", doc("ROOT<initial-ttl>256</initial-ttl>"),
       "configuration/initial-ttl: 256 is outside 1..255"},
      {"reliability timer below 200",
       doc("ROOT<overlay-reliability-timer>199</overlay-reliability-timer>"),
       "configuration/overlay-reliability-timer: 199 is outside 200..2147483647 (RFC 6940 11.1: at "
       "least 200 ms)"},
      {"no supported link protocol", doc("ROOT<overlay-link-protocol>QUIC</overlay-link-protocol>"),
       "configuration/overlay-link-protocol: none of the listed protocols is supported (only TLS)"},
      {"kind-signer not hex", doc("ROOT<kind-signer>xyz</kind-signer>"),
       "configuration/kind-signer[1]: 'xyz' is not a Node-ID in hex"},
      {"bad-node too long", doc("ROOT<bad-node>" + std::string(42, 'a') + "</bad-node>"),
       "configuration/bad-node[1]: a Node-ID of 21 bytes (expected 1..20)"},
      {"unsupported mandatory extension",
       doc("ROOT<mandatory-extension>urn:example:ext</mandatory-extension>"),
       "configuration/mandatory-extension[1]: extension 'urn:example:ext' is not supported (RFC "
       "6940 11.1: a joining node MUST support it)"},
      {"chord interval zero",
       doc("ROOT<chord:chord-update-interval>0</chord:chord-update-interval>"),
       "configuration/chord:chord-update-interval: 0 is outside 1..2147483647"},
      {"unknown chord element", doc("ROOT<chord:chord-speed>9</chord:chord-speed>"),
       "configuration/chord:chord-speed: unknown element"},
      {"unknown base element", doc("ROOT<colour>red</colour>"),
       "configuration/colour: unknown element"},
      {"element in no namespace", doc(R"(ROOT<node-id-length xmlns="">16</node-id-length>)"),
       "configuration/node-id-length: element in no namespace (expected "
       "urn:ietf:params:xml:ns:p2p:config-base)"},
      {"text in configuration", doc("ROOT stray text"),
       "configuration: unexpected text 'stray text'"},
      {"attribute on a text element", doc(R"(ROOT<no-ice when="now">true</no-ice>)"),
       "configuration/no-ice: unknown attribute 'when'"},
      {"bad configuration signature",
       R"(<overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base"><configuration instance-name="a">
          <self-signed-permitted digest="sha1">true</self-signed-permitted></configuration>
          <signature>%%%</signature></overlay>)",
       "overlay/signature[1]: invalid base64"},
      {"bad domain pattern",
       doc(R"(ROOT<sip:domain-restriction enable="true"><sip:pattern>a[</sip:pattern></sip:domain-restriction>)"),
       "configuration/sip:domain-restriction/sip:pattern[1]: 'a[' is not a POSIX extended regular "
       "expression"},
      {"domain restriction enable not boolean",
       doc(R"(ROOT<sip:domain-restriction enable="maybe"/>)"),
       "configuration/sip:domain-restriction: enable 'maybe' is not a boolean (true, false, 1, 0)"},
      {"kind without data-model",
       kind_doc(R"(<kind-block><kind id="4000"><access-control>USER-MATCH</access-control>
          <max-count>1</max-count><max-size>10</max-size></kind></kind-block>)"),
       kind_path + "/data-model: missing"},
      {"kind without access-control",
       kind_doc(R"(<kind-block><kind id="4000"><data-model>SINGLE</data-model>
          <max-count>1</max-count><max-size>10</max-size></kind></kind-block>)"),
       kind_path + "/access-control: missing"},
      {"kind without max-count",
       kind_doc(R"(<kind-block><kind id="4000"><data-model>SINGLE</data-model>
          <access-control>USER-MATCH</access-control><max-size>10</max-size></kind></kind-block>)"),
       kind_path + "/max-count: missing"},
      {"unknown access policy",
       kind_doc(R"(<kind-block><kind id="4000"><data-model>SINGLE</data-model>
          <access-control>ANYONE</access-control><max-count>1</max-count><max-size>10</max-size>
          </kind></kind-block>)"),
       kind_path + "/access-control: unknown access control policy 'ANYONE'"},
      {"unknown data model", kind_doc(R"(<kind-block><kind id="4000"><data-model>TREE</data-model>
          <access-control>USER-MATCH</access-control><max-count>1</max-count><max-size>10</max-size>
          </kind></kind-block>)"),
       kind_path + "/data-model: 'TREE' is not a data model (SINGLE, ARRAY, DICTIONARY)"},
      {"max-count not a number",
       kind_doc(R"(<kind-block><kind id="4000"><data-model>SINGLE</data-model>
          <access-control>USER-MATCH</access-control><max-count>ten</max-count><max-size>10</max-size>
          </kind></kind-block>)"),
       kind_path + "/max-count: 'ten' is not a number"},
      {"max-count zero", kind_doc(R"(<kind-block><kind id="4000"><data-model>SINGLE</data-model>
          <access-control>USER-MATCH</access-control><max-count>0</max-count><max-size>10</max-size>
          </kind></kind-block>)"),
       kind_path + "/max-count: 0 is outside 1..2147483647"},
      {"max-size beyond xsd:int",
       kind_doc(R"(<kind-block><kind id="4000"><data-model>SINGLE</data-model>
          <access-control>USER-MATCH</access-control><max-count>1</max-count>
          <max-size>2147483648</max-size></kind></kind-block>)"),
       kind_path + "/max-size: 2147483648 is outside 1..2147483647"},
      {"NODE-MULTIPLE without max-node-multiple",
       kind_doc(R"(<kind-block><kind id="4000"><data-model>SINGLE</data-model>
          <access-control>NODE-MULTIPLE</access-control><max-count>1</max-count><max-size>10</max-size>
          </kind></kind-block>)"),
       kind_path + "/max-node-multiple: missing; NODE-MULTIPLE needs it (RFC 6940 11.1)"},
      {"USER-NODE-MATCH on an array",
       kind_doc(R"(<kind-block><kind id="4000"><data-model>ARRAY</data-model>
          <access-control>USER-NODE-MATCH</access-control><max-count>1</max-count><max-size>10</max-size>
          </kind></kind-block>)"),
       kind_path +
           "/access-control: USER-NODE-MATCH needs the DICTIONARY data model (RFC 6940 7.3.3)"},
      {"unknown kind name",
       kind_doc("<kind-block><kind name=\"FOO\">" + good_kind_body + "</kind></kind-block>"),
       kind_path + ": unknown kind name 'FOO' (private kinds use id=)"},
      {"kind with name and id",
       kind_doc("<kind-block><kind name=\"SIP-REGISTRATION\" id=\"1\">" + good_kind_body +
                "</kind></kind-block>"),
       kind_path + ": has both a name and an id attribute"},
      {"kind with neither name nor id",
       kind_doc("<kind-block><kind>" + good_kind_body + "</kind></kind-block>"),
       kind_path + ": has neither a name nor an id attribute"},
      {"kind id not a number",
       kind_doc("<kind-block><kind id=\"0x10\">" + good_kind_body + "</kind></kind-block>"),
       kind_path + " id: '0x10' is not a number"},
      {"kind id zero",
       kind_doc("<kind-block><kind id=\"0\">" + good_kind_body + "</kind></kind-block>"),
       kind_path + ": Kind-ID 0 is INVALID"},
      {"kind id reserved",
       kind_doc("<kind-block><kind id=\"2147483647\">" + good_kind_body + "</kind></kind-block>"),
       kind_path + ": Kind-ID 2147483647 is reserved"},
      {"kind defined twice",
       kind_doc("<kind-block><kind id=\"4000\">" + good_kind_body +
                "</kind></kind-block><kind-block><kind id=\"4000\">" + good_kind_body +
                "</kind></kind-block>"),
       "configuration/required-kinds/kind-block[2]/kind: Kind-ID 4000 is defined twice"},
      {"generic kind as an array",
       kind_doc(R"(<kind-block><kind id="4026532097"><data-model>ARRAY</data-model>
          <access-control>USER-MATCH</access-control><max-count>1</max-count><max-size>10</max-size>
          </kind></kind-block>)"),
       kind_path +
           ": Kind-ID 4026532097 is p2psip's p2psip-generic kind: DICTIONARY with P2PSIP-GENERIC"},
      {"kind-block without kind", kind_doc("<kind-block/>"),
       "configuration/required-kinds/kind-block[1]: no kind element"},
      {"two kinds in a block",
       kind_doc("<kind-block><kind id=\"4000\">" + good_kind_body + "</kind><kind id=\"4001\">" +
                good_kind_body + "</kind></kind-block>"),
       "configuration/required-kinds/kind-block[1]/kind: appears more than once"},
      {"unknown element in a kind",
       kind_doc("<kind-block><kind id=\"4000\">" + good_kind_body +
                "<colour/></kind></kind-block>"),
       kind_path + "/colour: unknown element"},
      {"domain restriction on another kind",
       kind_doc(R"(<kind-block><kind id="4000"><data-model>SINGLE</data-model>
          <access-control>USER-MATCH</access-control><max-count>1</max-count><max-size>10</max-size>
          <sip:domain-restriction enable="false"/></kind></kind-block>)"),
       kind_path + "/sip:domain-restriction: applies to SIP-REGISTRATION only (RFC 7904 3.4)"},
      {"bad kind-signature",
       kind_doc("<kind-block><kind id=\"4000\">" + good_kind_body +
                "</kind><kind-signature>@@</kind-signature></kind-block>"),
       "configuration/required-kinds/kind-block[1]/kind-signature: invalid base64"},
  };

  for (const auto& c : cases) {
    CAPTURE(c.what);
    const std::string got = error_of(c.xml);
    if (c.message.ends_with("...")) {
      CHECK(got.starts_with(c.message.substr(0, c.message.size() - 3)));
    } else {
      CHECK(got == c.message);
    }
  }
}

TEST_CASE("config: document size limit") {
  parse_options options;
  options.max_document_size = 100;
  CHECK(error_of(doc("ROOT"), options).starts_with("overlay: document of "));
  CHECK(error_of(doc("ROOT"), options).ends_with("bytes is larger than the limit of 100"));
  CHECK(parse_document(doc("ROOT"), options).error().code == config_errc::too_large);
}

TEST_CASE("config: refusals carry a config_errc") {
  CHECK(parse_document("<overlay").error().code == config_errc::malformed);
  CHECK(parse_document("<configuration/>").error().code == config_errc::malformed);
  CHECK(parse_document(doc("ROOT<node-id-length>12</node-id-length>")).error().code ==
        config_errc::invalid);
  parse_options options;
  options.instance_name = "example.net";
  CHECK(parse_document(doc("ROOT"), options).error().code == config_errc::wrong_overlay);
  CHECK(make_error_code(config_errc::bad_signature).category().name() ==
        std::string("p2psip.config"));
}

TEST_CASE("config: load_document names the file") {
  const auto dir = std::filesystem::temp_directory_path();
  const auto file = dir / "p2psip_config_parse_test.xml";
  {
    std::ofstream out(file, std::ios::binary);
    out << doc("ROOT<node-id-length>12</node-id-length>");
  }
  const auto r = load_document(file);
  REQUIRE_FALSE(r);
  CHECK(r.error().message ==
        file.string() + ": configuration/node-id-length: 12 is outside 16..20");
  CHECK(r.error().code == config_errc::invalid);  // the parser's code, under the file's name
  std::filesystem::remove(file);
  const auto missing = load_document(dir / "p2psip_no_such_file.xml");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.ends_with("p2psip_no_such_file.xml: cannot open for reading"));
  CHECK(missing.error().code == config_errc::unreadable);
}

TEST_CASE("config: RFC 3339 date-times") {
  const auto t = parse_date_time("2002-10-10T07:00:00Z");
  REQUIRE(t);
  CHECK(t->time_since_epoch().count() == 1034233200);
  CHECK(parse_date_time("2002-10-10T07:00:00.125Z") == t);
  CHECK(parse_date_time("2002-10-10t07:00:00+00:00") == t);
  CHECK(format_date_time(*t) == "2002-10-10T07:00:00Z");
  CHECK_FALSE(parse_date_time("2002-02-30T07:00:00Z"));
  CHECK_FALSE(parse_date_time("2002-10-10T24:00:00Z"));
  CHECK_FALSE(parse_date_time("2002-10-10T07:00:00"));
  CHECK_FALSE(parse_date_time("2002-10-10 07:00:00Z"));
  CHECK_FALSE(parse_date_time("2002-10-10T07:00:00.Z"));
}

TEST_CASE("config: a byte order mark is allowed and the signed ranges still line up") {
  const std::string xml = "\xEF\xBB\xBF" + doc("ROOT" + std::string(R"(<required-kinds><kind-block>
      <kind id="4000"><data-model>SINGLE</data-model><access-control>USER-MATCH</access-control>
      <max-count>1</max-count><max-size>10</max-size></kind></kind-block></required-kinds>)"));
  const auto r = parse_document(xml);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  CHECK(r->configuration_text.starts_with("<configuration instance-name=\"example.org\""));
  REQUIRE(r->kind_texts.size() == 1);
  CHECK(r->kind_texts[0].starts_with("<kind id=\"4000\">"));
  CHECK(r->kind_texts[0].ends_with("</kind>"));
}

TEST_CASE("config: every truncation of a document is refused cleanly") {
  parse_options options;
  options.supported_extensions = {ext1};
  const std::string xml = rfc_example();
  REQUIRE(parse_document(xml, options));
  // The document is only complete once </overlay> has been read.
  const std::size_t end = xml.rfind("</overlay>") + std::string("</overlay>").size();
  for (std::size_t n = 0; n < end; ++n) {
    const auto r = parse_document(std::string_view(xml).substr(0, n), options);
    CHECK_FALSE(r);
    if (r) break;  // one report is enough
    CHECK(r.error().message.starts_with("overlay: "));
  }
}
