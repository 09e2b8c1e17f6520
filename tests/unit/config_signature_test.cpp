// Configuration document signatures (RFC 6940 section 11.1; ConfigUpdate in 6.5.4.2): a document
// signed with write_signed_document verifies; a byte changed anywhere in the signed text, a
// missing signature, a wrong signer or a sequence raised without signing again is refused, each
// with a one-line reason naming the element.

#include <doctest/doctest.h>

#include <botan/base64.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "p2psip/config/config_document.hpp"
#include "p2psip/config/config_signature.hpp"
#include "p2psip/config/overlay_config.hpp"
#include "p2psip/crypto/identity.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "p2psip/protocol/reader.hpp"
#include "p2psip/protocol/security.hpp"
#include "p2psip/protocol/writer.hpp"
#include "test_pki.hpp"

using namespace p2psip::config;
namespace pr = p2psip::protocol;
namespace cr = p2psip::crypto;
namespace tp = p2psip::test_pki;
using std::chrono::system_clock;
using namespace std::chrono_literals;

namespace {

system_clock::time_point now() {
  return tp::test_now();
}

pr::node_id node(std::uint8_t seed) {
  pr::bytes raw(16);
  for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<std::uint8_t>(seed * 29 + i);
  return *pr::node_id::from_bytes(raw);
}

pr::bytes raw(const pr::node_id& id) {
  return {id.view().begin(), id.view().end()};
}

// An overlay CA as p2psip-admin makes one (from the shared test PKI), issuing signer and node
// certificates.
class overlay_ca {
 public:
  explicit overlay_ca(const std::string& name) : ca_(name) {}

  pr::bytes der() const { return ca_.der(); }

  struct issued {
    document_signer signer;
    pr::node_id id;
  };

  // A certificate for a fresh Ed25519 key holding `id`, with the Document Signing usage when
  // `document_signing` (what p2psip-admin's configuration signer has; enrolled nodes do not).
  issued issue(const pr::node_id& id, bool document_signing = true,
               system_clock::time_point not_after = now() + 24h * 30) const {
    const pr::bytes pkcs8 = *cr::generate_private_key(cr::key_type::ed25519);
    tp::cert_spec spec = tp::spec_for({id}, "configuration-signer@example.org");
    spec.not_after = not_after;
    if (document_signing) spec.extended_usages = {std::string(document_signing_usage)};
    const pr::bytes der = ca_.certify(pkcs8, spec);
    return {document_signer{der, std::string(pkcs8.begin(), pkcs8.end()), {}}, id};
  }

 private:
  tp::test_ca ca_;
};

const overlay_ca& the_ca() {
  static const overlay_ca ca("example.org overlay CA");
  return ca;
}

const overlay_ca::issued& the_signer() {
  static const overlay_ca::issued s = the_ca().issue(node(1));
  return s;
}

// What p2psip-admin init writes, listing `signers` as configuration-signer and kind-signer.
overlay_config base_config(const std::vector<pr::node_id>& signers = {node(1)}) {
  overlay_config c;
  c.instance_name = "example.org";
  c.sequence = 1;
  c.root_certs = {the_ca().der()};
  c.max_message_size = 32768;
  c.no_ice = true;
  c.overlay_link_protocols = {"TLS"};
  c.bootstrap_nodes = {*pr::ip_address_port::parse("192.0.2.1:6084")};
  c.kinds = standard_kinds();
  for (const auto& id : signers) {
    c.configuration_signers.push_back(raw(id));
    c.kind_signers.push_back(raw(id));
  }
  return c;
}

std::string signed_xml(const overlay_config& c = base_config(),
                       const document_signer& s = the_signer().signer) {
  auto xml = write_signed_document(c, s, now());
  REQUIRE_MESSAGE(xml, (xml ? "" : xml.error().message));
  return *xml;
}

// The reason a document is refused: the parser's, or verify_configuration_signature's; empty
// when it verifies.
std::string refusal(const std::string& xml, system_clock::time_point at = now()) {
  auto doc = parse_document(xml);
  if (!doc) return "parse: " + doc.error().message;
  auto ok = verify_configuration_signature(*doc, at);
  return ok ? std::string() : ok.error().message;
}

void replace_once(std::string& s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "'" << from << "' not in the document");
  s.replace(at, from.size(), to);
}

// A <signature> over the document's configuration text by `s`, inserted before </overlay>:
// signing by hand, for documents write_signed_document refuses to make.
std::string sign_by_hand(std::string xml, const document_signer& s) {
  auto doc = parse_document(xml);
  REQUIRE(doc);
  auto cert = cr::certificate::parse(s.certificate, {"example.org", 16});
  REQUIRE(cert);
  const auto* key = reinterpret_cast<const std::uint8_t*>(s.private_key.data());  // NOLINT
  auto id = cr::node_identity::create(*cert, pr::byte_view(key, s.private_key.size()));
  REQUIRE(id);
  const pr::bytes input = pr::to_bytes(doc->configuration_text);
  auto sig = cr::make_signature(*id, id->default_node_id(),
                                [&](const pr::signer_identity&) { return input; });
  REQUIRE(sig);
  pr::security_block block;
  cr::add_certificates(block, *id);
  block.signature = *sig;
  pr::bytes value;
  pr::writer w(value);
  pr::encode_security_block(w, block);
  REQUIRE(w.ok());
  replace_once(xml, "</overlay>",
               "  <signature>" + Botan::base64_encode(value.data(), value.size()) +
                   "</signature>\n</overlay>");
  return xml;
}

}  // namespace

TEST_SUITE("config signatures") {
  TEST_CASE("a signed document verifies, with a kind-signature in every kind-block") {
    const std::string xml = signed_xml();
    auto doc = parse_document(xml);
    REQUIRE(doc);
    CHECK(verify_configuration_signature(*doc, now()));
    REQUIRE(doc->config.signatures.size() == 1);
    CHECK(doc->config.signatures[0].algorithm.empty());
    for (const auto& k : doc->config.kinds) CHECK(k.signature.has_value());

    // The value is a SecurityBlock (RFC 6940 6.3.4): the signer's certificate in the bucket, an
    // Ed25519 signature over exactly the configuration's text, cert_hash identity.
    pr::reader r(doc->config.signatures[0].value);
    const auto block = pr::decode_security_block(r, pr::limits{});
    r.expect_done("security_block");
    REQUIRE(r.ok());
    REQUIRE(block.certificates.size() == 1);
    CHECK(block.certificates[0].certificate == the_signer().signer.certificate);
    CHECK(block.signature.algorithm ==
          pr::signature_and_hash_algorithm{pr::hash_algorithm::intrinsic,
                                           pr::signature_algorithm::ed25519});
    CHECK(block.signature.identity.type ==
          static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash));
    auto cert = cr::certificate::parse(block.certificates[0].certificate, {"example.org", 16});
    REQUIRE(cert);
    CHECK(cert->verify(block.signature.algorithm, pr::to_bytes(doc->configuration_text),
                       block.signature.value));
    CHECK(doc->configuration_text.starts_with("<configuration "));
    CHECK(doc->configuration_text.ends_with("</configuration>"));

    // Signing again gives an equal document apart from the signature values.
    auto again = parse_document(signed_xml());
    REQUIRE(again);
    CHECK(again->config.root_certs == doc->config.root_certs);
    CHECK(again->config.kinds.size() == doc->config.kinds.size());
  }

  TEST_CASE("a byte changed anywhere in the signed text is refused") {
    const std::string xml = signed_xml();
    auto doc = parse_document(xml);
    REQUIRE(doc);
    const std::size_t begin = xml.find(doc->configuration_text);
    REQUIRE(begin != std::string::npos);
    const std::size_t end = begin + doc->configuration_text.size();
    const std::size_t start_tag_end = xml.find('>', begin) + 1;
    std::size_t refused_by_signature = 0;
    std::size_t tried = 0;
    // Every byte of the start tag (instance-name, sequence), then every 13th byte to the end of
    // </configuration>, kind-signatures included: each check parses and verifies a whole
    // document (about a millisecond), and every byte would take seconds.
    for (std::size_t i = begin; i < end; i += i < start_tag_end ? 1 : 13) {
      ++tried;
      std::string changed = xml;
      const char c = changed[i];
      changed[i] = c == 'A' ? 'B' : (c == '0' ? '1' : (c == ' ' ? '\t' : 'A'));
      const std::string why = refusal(changed);
      CHECK_MESSAGE(!why.empty(), "byte " << i - begin << " ('" << c << "') changed: accepted");
      if (!why.starts_with("parse: ")) ++refused_by_signature;
    }
    // Most changes leave well-formed XML that only the signature catches.
    CHECK(refused_by_signature > tried / 2);
    // A change outside the signed text (whitespace between the elements) is not the signature's.
    std::string outside = xml;
    replace_once(outside, "</configuration>\n", "</configuration>\n\n  ");
    CHECK(refusal(outside).empty());
  }

  TEST_CASE("a sequence raised without signing again is refused") {
    std::string xml = signed_xml();
    replace_once(xml, "sequence=\"1\"", "sequence=\"2\"");
    CHECK(refusal(xml) == "overlay/signature: signature does not verify");
    auto raised = parse_document(xml);
    REQUIRE(raised);
    CHECK(verify_configuration_signature(*raised, now()).error().code ==
          config_errc::bad_signature);
    // Whitespace inside the configuration counts as much as values do.
    std::string spaced = signed_xml();
    replace_once(spaced, "<no-ice>", " <no-ice>");
    CHECK(refusal(spaced) == "overlay/signature: signature does not verify");
  }

  TEST_CASE("an unsigned document or kind-block is refused") {
    const std::string plain = write_document(base_config());
    CHECK(refusal(plain) == "overlay/signature: none (the configuration is unsigned)");
    auto plain_doc = parse_document(plain);
    REQUIRE(plain_doc);
    CHECK(verify_configuration_signature(*plain_doc, now()).error().code ==
          config_errc::unsigned_document);

    // Configuration signed, kind-blocks not (RFC 6940 11.1: each MUST carry a kind-signature).
    CHECK(refusal(sign_by_hand(plain, the_signer().signer)) ==
          "configuration/required-kinds/kind-block[1]/kind-signature: none (the kind-block is "
          "unsigned)");

    // A signature element that is no SecurityBlock.
    std::string junk = signed_xml();
    const auto at = junk.find("<signature>");
    REQUIRE(at != std::string::npos);
    junk.replace(at, junk.find("</signature>") - at, "<signature>AAAA");
    CHECK(refusal(junk).starts_with("overlay/signature: not a SecurityBlock: "));
  }

  TEST_CASE("a signer the configuration does not authorise is refused") {
    SUBCASE("a certificate from another CA") {
      const overlay_ca other("another CA");
      const auto s = other.issue(node(1));
      const auto r = write_signed_document(base_config(), s.signer, now());
      REQUIRE_FALSE(r);
      CHECK(r.error().message ==
            "overlay/signature: signer's certificate: certificate does not chain to a root of "
            "the overlay");
    }
    SUBCASE("an enrolled node listing itself: no Document Signing usage") {
      const auto s = the_ca().issue(node(7), false);
      const auto r = write_signed_document(base_config({node(7)}), s.signer, now());
      REQUIRE_FALSE(r);
      CHECK(r.error().message == "overlay/signature: signer " + node(7).hex() +
                                     "'s certificate lacks the Document Signing extended key "
                                     "usage (1.3.6.1.5.5.7.3.36)");
    }
    SUBCASE("not listed as configuration-signer") {
      const auto s = the_ca().issue(node(8));
      const auto r = write_signed_document(base_config(), s.signer, now());
      REQUIRE_FALSE(r);
      CHECK(r.error().message ==
            "overlay/signature: signer " + node(8).hex() + " is not a configuration-signer");
      // Listed as configuration-signer only: its kind-signatures are refused.
      overlay_config c = base_config();
      c.configuration_signers.push_back(raw(node(8)));
      const auto k = write_signed_document(c, s.signer, now());
      REQUIRE_FALSE(k);
      const std::string kind1 = "configuration/required-kinds/kind-block[1]/kind-signature";
      CHECK(k.error().message == kind1 + ": signer " + node(8).hex() + " is not a kind-signer");
    }
    SUBCASE("listed as bad-node") {
      overlay_config c = base_config();
      c.bad_nodes.push_back(raw(node(1)));
      const auto r = write_signed_document(c, the_signer().signer, now());
      REQUIRE_FALSE(r);
      CHECK(r.error().message ==
            "overlay/signature: signer " + node(1).hex() + " is listed as a bad-node");
    }
    SUBCASE("an expired signer certificate") {
      const std::string xml = signed_xml();
      CHECK(refusal(xml, now() + 24h * 60) ==
            "overlay/signature: signer's certificate: certificate has expired");
    }
    SUBCASE("an authority that does not list the signer") {
      auto doc = parse_document(signed_xml());
      REQUIRE(doc);
      signing_authority a = authority_of(doc->config);
      a.configuration_signers = {raw(node(9))};
      const auto r = verify_configuration_signature(*doc, a, now());
      REQUIRE_FALSE(r);
      CHECK(r.error().message ==
            "overlay/signature: signer " + node(1).hex() + " is not a configuration-signer");
      a = authority_of(doc->config);
      a.root_certs = {overlay_ca("unrelated root").der()};
      CHECK_FALSE(verify_configuration_signature(*doc, a, now()));
    }
    SUBCASE("a second signature by a stranger does not spoil a good one") {
      const overlay_ca other("another CA");
      const std::string xml = sign_by_hand(signed_xml(), other.issue(node(1)).signer);
      auto doc = parse_document(xml);
      REQUIRE(doc);
      CHECK(doc->config.signatures.size() == 2);
      CHECK(verify_configuration_signature(*doc, now()));
    }
  }

  TEST_CASE("ConfigUpdate: newer, same overlay, signed by a signer of the current configuration") {
    const overlay_config current = base_config();
    overlay_config next = base_config();
    next.sequence = 2;
    next.bootstrap_nodes.push_back(*pr::ip_address_port::parse("192.0.2.2:6084"));
    auto update = parse_document(signed_xml(next));
    REQUIRE(update);
    CHECK(check_config_update(current, *update, now()));

    // Not newer.
    auto same = parse_document(signed_xml());
    REQUIRE(same);
    CHECK(check_config_update(current, *same, now()).error().message ==
          "configuration: sequence 1 is not newer than the current 1");
    CHECK(check_config_update(current, *same, now()).error().code == config_errc::not_newer);

    // A new signer the update lists for itself, but the current configuration does not.
    const auto newcomer = the_ca().issue(node(5));
    overlay_config usurped = base_config({node(5)});
    usurped.sequence = 2;
    auto taken_over = parse_document(signed_xml(usurped, newcomer.signer));
    REQUIRE(taken_over);
    CHECK(verify_configuration_signature(*taken_over, now()));  // on its own it is consistent
    CHECK(check_config_update(current, *taken_over, now()).error().message ==
          "overlay/signature: signer " + node(5).hex() + " is not a configuration-signer");
    CHECK(check_config_update(current, *taken_over, now()).error().code ==
          config_errc::bad_signature);

    // Handing over: the current configuration lists both, the update only the new signer.
    overlay_config both = base_config({node(1), node(5)});
    CHECK(check_config_update(both, *taken_over, now()));

    // Another overlay.
    overlay_config elsewhere = current;
    elsewhere.instance_name = "example.net";
    CHECK(check_config_update(elsewhere, *update, now()).error().code ==
          config_errc::wrong_overlay);
  }

  TEST_CASE("sequence numbers compare modulo 65535") {
    CHECK(sequence_newer(2, 1));
    CHECK_FALSE(sequence_newer(1, 1));
    CHECK_FALSE(sequence_newer(1, 2));
    // RFC 6940 6.3.2.1: after 65534 comes 0.
    CHECK(sequence_newer(0, 65534));
    CHECK(sequence_newer(10, 65530));
    CHECK_FALSE(sequence_newer(65534, 0));
    CHECK(sequence_newer(32767, 0));
    CHECK_FALSE(sequence_newer(32768, 0));
  }
}
