// URIs: sip/sips components, IPv6 references, parameters and headers, tel, opaque schemes, %HH
// escaping and the comparison rules of RFC 3261 section 19.1.4.

#include <doctest/doctest.h>

#include "p2psip/sip/uri.hpp"

namespace sip = p2psip::sip;

namespace {
sip::uri u(std::string_view text) {
  auto r = sip::parse_uri(text);
  if (!r) FAIL("parse_uri(" << text << "): " << r.error().reason);
  return *r;
}
}  // namespace

TEST_CASE("sip URI components") {
  const auto a =
      u("sips:alice:secret@[2001:DB8::1]:5061;transport=tcp;lr?subject=hi&priority=urgent");
  CHECK(a.scheme == "sips");
  CHECK(a.user == "alice");
  CHECK(a.password == "secret");
  CHECK(a.host == "[2001:DB8::1]");
  CHECK(a.port == 5061);
  REQUIRE(a.params.size() == 2);
  CHECK(a.params[0] == sip::param{"transport", "tcp", true, false});
  CHECK(a.params[1] == sip::param{"lr", "", false, false});
  REQUIRE(a.headers.size() == 2);
  CHECK(a.headers[1].name == "priority");
  CHECK(a.headers[1].value == "urgent");
  CHECK(sip::to_string(a) ==
        "sips:alice:secret@[2001:DB8::1]:5061;transport=tcp;lr?subject=hi&priority=urgent");

  const auto b = u("SIP:example.com");
  CHECK(b.scheme == "sip");
  CHECK(b.user.empty());
  CHECK(b.host == "example.com");
  CHECK(!b.port);
  CHECK(u("sip:192.0.2.1:0").port == 0);
  CHECK(u("sip:h:65535").port == 65535);
}

TEST_CASE(
    "sip URI user part may hold semicolons, question marks and escapes (RFC 4475 semiuri, "
    "intmeth)") {
  const auto a = u("sip:user;par=u%40example.net@example.com");
  CHECK(a.user == "user;par=u%40example.net");
  CHECK(a.host == "example.com");
  CHECK(a.params.empty());
  CHECK(sip::unescape(a.user) == "user;par=u@example.net");
}

TEST_CASE("tel and other schemes") {
  const auto t = u("tel:+1-201-555-0123;phone-context=example.com");
  CHECK(t.scheme == "tel");
  CHECK(t.user == "+1-201-555-0123");
  CHECK(t.params.at(0).value == "example.com");
  CHECK(sip::to_string(t) == "tel:+1-201-555-0123;phone-context=example.com");
  const auto o = u("soap.beep://192.0.2.103:3002");
  CHECK(o.scheme == "soap.beep");
  CHECK(o.opaque == "//192.0.2.103:3002");
  CHECK(!o.is_sip());
  CHECK(sip::to_string(o) == "soap.beep://192.0.2.103:3002");
}

TEST_CASE("malformed URIs are rejected") {
  for (const char* bad : {"",
                          ":x",
                          "1sip:a",
                          "sip:",
                          "sip:@host",
                          "sip:a@",
                          "sip:a b@host",
                          "sip:host:65536",
                          "sip:host:x",
                          "sip:host;",
                          "sip:host;;lr",
                          "sip:host;=x",
                          "sip:host;a=",
                          "sip:host?x",
                          "sip:host?=v",
                          "sip:us%2er@host%",
                          "sip:u%4@host",
                          "sip:[::1",
                          "sip:[]",
                          "sip:h st",
                          "<sip:a@b>",
                          "tel:",
                          "tel:12 3",
                          "tel:123?x=y",
                          "mailto:",
                          "x:a b",
                          "sip:host >"}) {
    CAPTURE(bad);
    auto r = sip::parse_uri(bad);
    CHECK(!r);
    if (!r) CHECK(r.error().status == 400);
  }
}

TEST_CASE("unescape") {
  CHECK(sip::unescape("%75se%72") == "user");
  CHECK(sip::unescape("a%2") == "a%2");
  CHECK(sip::unescape("%zz") == "%zz");
  const std::string nul = sip::unescape("null-%00-null");
  CHECK(nul.size() == 11);
  CHECK(nul[5] == '\0');
}

TEST_CASE("RFC 3261 19.1.4 comparison: the RFC's own examples") {
  auto eq = [](const char* a, const char* b) { return sip::uri_equal(u(a), u(b)); };
  // Equivalent pairs.
  CHECK(eq("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"));
  CHECK(eq("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"));
  CHECK(eq("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"));
  CHECK(eq("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"));
  CHECK(eq("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
           "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"));
  CHECK(eq("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
           "sip:alice@atlanta.com?priority=urgent&subject=project%20x"));
  // Not equivalent.
  CHECK(!eq("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"));
  CHECK(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
  CHECK(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"));
  CHECK(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"));
  CHECK(!eq("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"));
  CHECK(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
  CHECK(!eq("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"));
  CHECK(!eq("sip:a@h", "sips:a@h"));
  CHECK(!eq("sip:a:pw@h", "sip:a@h"));
}

TEST_CASE("RFC 4475 esc01: escaped and unescaped forms compare equal") {
  CHECK(sip::uri_equal(u("sip:%75se%72@example.com"), u("sip:user@example.com")));
  const auto c = u("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
  CHECK(sip::uri_equal(c, u("sip:caller@host5.example.net;lr;name=value%2541")));
  // %25 is an escaped '%': the value is "value%41", never "valueA".
  CHECK(sip::unescape(sip::unescape("v%61lue%25%34%31")) != sip::unescape("v%61lue%25%34%31"));
  CHECK(sip::unescape("v%61lue%25%34%31") == "value%41");
  CHECK(!sip::uri_equal(u("sip:null-%00-null@example.com"), u("sip:null-@example.com")));
}

TEST_CASE("tel and opaque comparison") {
  CHECK(sip::uri_equal(u("tel:+1234;a=b"), u("TEL:+1234;A=B")));
  CHECK(!sip::uri_equal(u("tel:+1234"), u("tel:+1235")));
  CHECK(sip::uri_equal(u("urn:a%42c"), u("urn:aBc")));
}
