// Golden messages checked field by field, the serializer's canonical form and round trips, and the
// message editing helpers.

#include <doctest/doctest.h>

#include "golden.hpp"
#include "p2psip/sip/message.hpp"

namespace sip = p2psip::sip;
using namespace p2psip::sip::test;

namespace {
sip::message parse_ok(const std::string& text) {
  auto m = sip::parse_datagram(text);
  if (!m) FAIL("parse failed: " << m.error().status << " " << m.error().reason);
  return *m;
}
}  // namespace

TEST_CASE("golden REGISTER: every field") {
  const auto m = parse_ok(golden_register);
  CHECK(m.is_request());
  CHECK(m.method == "REGISTER");
  CHECK(m.request_uri == "sip:example.com");
  CHECK(m.headers.size() == 12);
  CHECK(m.body.empty());

  auto v = sip::vias(m);
  REQUIRE(v);
  REQUIRE(v->size() == 1);
  CHECK((*v)[0].protocol_name == "SIP");
  CHECK((*v)[0].protocol_version == "2.0");
  CHECK((*v)[0].transport == "TCP");
  CHECK((*v)[0].host == "[2001:db8::9]");
  CHECK((*v)[0].port == 5070);
  CHECK((*v)[0].branch() == "z9hG4bK-reg-1");
  CHECK(sip::is_rfc3261_branch(*(*v)[0].branch()));
  REQUIRE((*v)[0].rport().has_value());
  CHECK(!(*v)[0].rport()->has_value());  // rport without a value: asks for one
  CHECK(!(*v)[0].received());

  CHECK(*sip::max_forwards(m) == std::optional<std::uint8_t>(70));
  auto to = sip::to(m);
  REQUIRE(to);
  CHECK(to->display_name == "Alice \"A\"");
  CHECK(to->address.user == "alice");
  CHECK(to->address.host == "example.com");
  CHECK(!to->tag());
  auto from = sip::from(m);
  REQUIRE(from);
  CHECK(from->display_name.empty());
  CHECK(from->bracketed);
  CHECK(from->tag() == "a73kszlfl");
  CHECK(*sip::call_id(m) == "1j9FpLxk3uxtm8tn@[2001:db8::9]");
  CHECK(*sip::cseq_of(m) == sip::cseq{2, "REGISTER"});
  CHECK(*sip::option_tags(m, "Supported") == std::vector<std::string>{"path", "outbound"});
  CHECK(*sip::option_tags(m, "require") == std::vector<std::string>{"outbound"});

  auto c = sip::contacts(m);
  REQUIRE(c);
  CHECK(!c->star);
  REQUIRE(c->contacts.size() == 1);
  const auto& ct = c->contacts[0];
  CHECK(ct.address.scheme == "sip");
  CHECK(ct.address.host == "[2001:db8::9]");
  CHECK(ct.address.port == 5070);
  REQUIRE(ct.address.params.size() == 2);
  CHECK(sip::find_param(ct.address.params, "transport")->value == "tcp");
  CHECK(!sip::find_param(ct.address.params, "ob")->has_value);
  CHECK(sip::contact_reg_id(ct) == 1u);
  CHECK(sip::contact_q(ct) == 700);
  CHECK(sip::contact_expires(ct) == 3600u);
  CHECK(sip::contact_instance(ct) == "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>");

  CHECK(*sip::delta_seconds(m, "Expires") == std::optional<std::uint32_t>(600));
  CHECK(*sip::delta_seconds(m, "Flow-Timer") == std::nullopt);
  auto auth = sip::auth_values(m, "Authorization");
  REQUIRE(auth);
  REQUIRE(auth->size() == 1);
  const auto& a = (*auth)[0];
  CHECK(a.scheme == "Digest");
  CHECK(a.params.size() == 9);
  CHECK(a.get("username") == "alice");
  CHECK(a.get("REALM") == "example.com");
  CHECK(a.get("uri") == "sip:example.com");
  CHECK(a.get("algorithm") == "MD5");
  CHECK(a.get("qop") == "auth");
  CHECK(a.get("nc") == "00000001");
  CHECK(a.get("cnonce") == "0a4f113b");
  CHECK(!a.get("opaque"));
}

TEST_CASE("golden INVITE: compact forms, multi-value Via, routes, tel, body") {
  const auto m = parse_ok(golden_invite);
  CHECK(m.method == "INVITE");
  CHECK(m.body == golden_invite_body);
  auto ruri = sip::request_uri_of(m);
  REQUIRE(ruri);
  CHECK(ruri->scheme == "sips");
  CHECK(ruri->user == "bob");
  CHECK(ruri->host == "biloxi.example.com");
  CHECK(sip::find_param(ruri->params, "transport")->value == "tcp");

  CHECK(m.headers[0].received_name == "v");
  CHECK(m.headers[0].name == "Via");
  auto v = sip::vias(m);
  REQUIRE(v);
  REQUIRE(v->size() == 2);
  CHECK((*v)[0].transport == "TLS");
  CHECK((*v)[0].port == 5061);
  CHECK((*v)[0].received() == "192.0.2.7");
  CHECK((*v)[0].ttl() == 16);
  CHECK((*v)[0].maddr() == "239.0.0.1");
  CHECK((*v)[1].host == "client.example.com");
  CHECK(!(*v)[1].port);
  CHECK((*v)[1].rport() == std::optional<std::optional<std::uint16_t>>(5060));

  auto route = sip::route_set(m, "Route");
  REQUIRE(route);
  REQUIRE(route->size() == 2);
  CHECK((*route)[0].address.scheme == "sips");
  CHECK((*route)[0].address.host == "edge.example.com");
  CHECK(sip::find_param((*route)[0].address.params, "lr") != nullptr);
  CHECK((*route)[1].address.host == "core.example.net");
  auto rr = sip::route_set(m, "Record-Route");
  REQUIRE(rr);
  REQUIRE(rr->size() == 1);
  CHECK(sip::to_string((*rr)[0]) == "<sips:proxy.example.com;lr>");
  CHECK(sip::route_set(m, "Path")->empty());

  auto to = sip::to(m);
  REQUIRE(to);
  CHECK(to->display_name == "Bob");
  auto from = sip::from(m);
  REQUIRE(from);
  CHECK(from->display_name == "Alice");
  CHECK(from->address.scheme == "tel");
  CHECK(from->address.user == "+1-201-555-0123");
  CHECK(sip::find_param(from->address.params, "phone-context")->value == "example.com");
  CHECK(from->tag() == "9fxced76sl");
  CHECK(*sip::call_id(m) == "3848276298220188511@atlanta.example.com");
  CHECK(sip::contacts(m)->contacts.at(0).address.user == "alice");
  CHECK(*sip::option_tags(m, "Supported") == std::vector<std::string>{"timer", "100rel"});
  CHECK(*sip::option_tags(m, "Proxy-Require") == std::vector<std::string>{"sec-agree"});
  CHECK(sip::option_tags(m, "Unsupported")->empty());
  auto ct = sip::content_type(m);
  REQUIRE(ct);
  REQUIRE(ct->has_value());
  CHECK((*ct)->type == "application");
  CHECK((*ct)->subtype == "sdp");
  CHECK(sip::find_param((*ct)->params, "charset")->value == "utf-8");
  auto pa = sip::auth_values(m, "Proxy-Authorization");
  REQUIRE(pa);
  CHECK(pa->at(0).get("uri") == "sips:bob@biloxi.example.com");
}

TEST_CASE("golden 200 OK to REGISTER: outbound, Path, Flow-Timer") {
  const auto m = parse_ok(golden_ok);
  CHECK(!m.is_request());
  CHECK(m.status == 200);
  CHECK(m.reason == "OK");
  auto v = sip::vias(m);
  REQUIRE(v);
  CHECK(v->at(0).received() == "2001:db8::9");
  CHECK(v->at(0).rport() == std::optional<std::optional<std::uint16_t>>(5070));
  CHECK(sip::to(m)->tag() == "37GkEhwl6");
  auto path = sip::route_set(m, "Path");
  REQUIRE(path);
  REQUIRE(path->size() == 1);
  CHECK(path->at(0).address.host == "ep1.example.com");
  CHECK(*sip::delta_seconds(m, "Flow-Timer") == std::optional<std::uint32_t>(120));
  auto c = sip::contacts(m);
  REQUIRE(c);
  CHECK(sip::contact_expires(c->contacts.at(0)) == 600u);
  CHECK(sip::contact_reg_id(c->contacts.at(0)) == 1u);
  CHECK(!sip::contact_q(c->contacts.at(0)));
}

TEST_CASE("golden 401: challenges with folded parameters") {
  const auto m = parse_ok(golden_401);
  CHECK(m.status == 401);
  CHECK(m.reason == "Unauthorized");
  auto w = sip::auth_values(m, "WWW-Authenticate");
  REQUIRE(w);
  REQUIRE(w->size() == 1);
  CHECK(w->at(0).scheme == "Digest");
  CHECK(w->at(0).get("realm") == "atlanta.example.com");
  CHECK(w->at(0).get("qop") == "auth");
  CHECK(w->at(0).get("nonce") == "ea9c8e88df84f1cec4341ae6cbe5a359");
  CHECK(w->at(0).get("opaque") == "");
  CHECK(w->at(0).get("stale") == "FALSE");
  CHECK(w->at(0).get("algorithm") == "MD5");
  auto p = sip::auth_values(m, "Proxy-Authenticate");
  REQUIRE(p);
  CHECK(p->at(0).get("realm") == "proxy.example.com");
}

TEST_CASE("serializer: canonical form and round trip of every golden message") {
  for (const auto& text : golden_messages()) {
    CAPTURE(text);
    const auto m = parse_ok(text);
    const std::string out = sip::serialize(m);
    const auto back = parse_ok(out);
    CHECK(back.method == m.method);
    CHECK(back.request_uri == m.request_uri);
    CHECK(back.status == m.status);
    CHECK(back.reason == m.reason);
    CHECK(back.body == m.body);
    REQUIRE(back.headers.size() == m.headers.size());
    for (std::size_t i = 0; i < m.headers.size(); ++i) {
      CHECK(back.headers[i].name == m.headers[i].name);
      CHECK(back.headers[i].value == m.headers[i].value);
    }
    CHECK(sip::serialize(back) == out);  // canonical form is a fixed point
  }
  // Canonical: long names, CRLF, one Content-Length last.
  const auto inv = parse_ok(golden_invite);
  const std::string out = sip::serialize(inv);
  CHECK(out.rfind("INVITE sips:bob@biloxi.example.com;transport=tcp SIP/2.0\r\nVia: ", 0) == 0);
  CHECK(out.find("\r\nSupported: timer, 100rel\r\n") != std::string::npos);
  CHECK(out.find("\r\nContent-Length: " + std::to_string(golden_invite_body.size()) +
                 "\r\n\r\nv=0") != std::string::npos);
}

TEST_CASE(
    "message editing: add, set, remove, find by compact name, and the serializer sets the length") {
  sip::message m;
  m.status = 180;
  m.reason = "Ringing";
  m.add("v", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1");
  m.add("To", "<sip:b@example.com>;tag=1");
  m.add("f", "<sip:a@example.com>;tag=2");
  m.add("i", "x@y");
  m.add("CSeq", "1 INVITE");
  m.add("Content-Length", "999");
  m.body = "abc";
  CHECK(m.find("Via") != nullptr);
  CHECK(m.find("v") == m.find("VIA"));
  CHECK(m.headers[2].name == "From");
  CHECK(sip::validate(m));
  m.set("Call-ID", "z@y");
  CHECK(*sip::call_id(m) == "z@y");
  const std::string out = sip::serialize(m);
  CHECK(out ==
        "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n"
        "To: <sip:b@example.com>;tag=1\r\nFrom: <sip:a@example.com>;tag=2\r\nCall-ID: z@y\r\n"
        "CSeq: 1 INVITE\r\nContent-Length: 3\r\n\r\nabc");
  CHECK(m.remove("content-length") == 1);
  CHECK(m.remove("To") == 1);
  auto v = sip::validate(m);
  REQUIRE(!v);
  CHECK(v.error().reason == "Missing To header");
  CHECK(v.error().response);
}

TEST_CASE("typed values print in canonical form") {
  auto v = sip::parse_via("SIP / 2.0 / udp  host.example.com:5060 ; branch = z9hG4bKx ; rport");
  REQUIRE(v);
  CHECK(sip::to_string(*v) == "SIP/2.0/UDP host.example.com:5060;branch=z9hG4bKx;rport");
  auto na =
      sip::parse_name_addr("Bob  Smith <sip:bob@example.com>;tag=1;+sip.instance=\"<urn:x>\"");
  REQUIRE(na);
  CHECK(na->display_name == "Bob Smith");
  CHECK(sip::to_string(*na) ==
        "\"Bob Smith\" <sip:bob@example.com>;tag=1;+sip.instance=\"<urn:x>\"");
  auto spec = sip::parse_name_addr("sip:alice@h.example.com;+sip.instance=\"<urn:x>\";reg-id=2");
  REQUIRE(spec);
  CHECK(!spec->bracketed);
  CHECK(sip::contact_instance(*spec) == "<urn:x>");
  CHECK(sip::contact_reg_id(*spec) == 2u);
  auto plain = sip::parse_name_addr("sip:carol@example.com;tag=7");
  REQUIRE(plain);
  CHECK(!plain->bracketed);
  CHECK(plain->tag() == "7");
  CHECK(sip::to_string(*plain) == "sip:carol@example.com;tag=7");
}

TEST_CASE("malformed headers are 400 with a reason naming the header") {
  struct bad {
    const char* header;
    const char* reason;
  };
  const bad cases[] = {
      {"Via: SIP/2.0/UDP", "Malformed Via header"},
      {"Via: SIP/2.0/UDP host;ttl=256", "Malformed Via header"},
      {"Via: SIP/2.0/UDP host;rport=70000", "Malformed Via header"},
      {"Via: SIP/2.0/UDP host;branch=", "Malformed Via header"},
      {"Max-Forwards: 256", "Malformed Max-Forwards header"},
      {"Max-Forwards: -1", "Malformed Max-Forwards header"},
      {"Expires: soon", "Malformed Expires header"},
      {"Flow-Timer: x", "Malformed Flow-Timer header"},
      {"Supported: a b", "Malformed Supported header"},
      {"Content-Type: text", "Malformed Content-Type header"},
      {"Authorization: Digest realm", "Malformed Authorization header"},
      {"Route: sip:a.example.com", "Malformed Route header"},
      {"Contact: <sip:a@b>,", "Empty value in Contact header"},
      {"Contact: *, <sip:a@b>", "Malformed URI: no scheme in Contact header"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.header);
    const std::string text = std::string("OPTIONS sip:a@example.com SIP/2.0\r\n") +
                             "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
                             "To: <sip:a@example.com>\r\nFrom: <sip:b@example.com>;tag=1\r\n"
                             "Call-ID: c1\r\nCSeq: 1 OPTIONS\r\n" +
                             c.header + "\r\nContent-Length: 0\r\n\r\n";
    auto m = sip::parse_datagram(text);
    REQUIRE(!m);
    CHECK(m.error().status == 400);
    CHECK(m.error().reason == c.reason);
    CHECK(!m.error().response);
  }
}

TEST_CASE("Contact '*' (remove all bindings) and its misuse") {
  const std::string base =
      "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h.example.com;branch=z9hG4bK7\r\n"
      "To: <sip:a@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: c7\r\n"
      "CSeq: 3 REGISTER\r\nExpires: 0\r\n";
  auto m = sip::parse_datagram(base + "Contact: *\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(m);
  auto c = sip::contacts(*m);
  REQUIRE(c);
  CHECK(c->star);
  CHECK(c->contacts.empty());
  CHECK(*sip::delta_seconds(*m, "Expires") == std::optional<std::uint32_t>(0));
  auto bad = sip::parse_datagram(base +
                                 "Contact: *\r\nContact: <sip:a@b.example.com>\r\n"
                                 "Content-Length: 0\r\n\r\n");
  REQUIRE(!bad);
  CHECK(bad.error().reason == "Contact '*' mixed with other Contact values");
}
