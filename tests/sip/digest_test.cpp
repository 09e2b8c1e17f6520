// HTTP Digest for SIP: the RFC 2617 and RFC 7616 example exchanges, a REGISTER exchange as sipp
// sends it (expected values computed by hand with the RFC 7616 3.4.1 formulas), stateless nonces,
// the challenge text and the must-fail credentials.

#include <doctest/doctest.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <set>
#include <string>

#include "p2psip/sip/digest.hpp"
#include "p2psip/sip/headers.hpp"

namespace sip = p2psip::sip;
using sip::digest_algorithm;

namespace {

sip::digest_credentials credentials_of(const std::string& header_value) {
  const auto auth = sip::parse_auth(header_value);
  REQUIRE_MESSAGE(auth, (auth ? "" : auth.error().reason));
  const auto c = sip::parse_digest_credentials(*auth);
  REQUIRE_MESSAGE(c, (c ? "" : c.error().reason));
  return *c;
}

sip::parse_error refusal_of(const std::string& header_value) {
  const auto auth = sip::parse_auth(header_value);
  REQUIRE_MESSAGE(auth, (auth ? "" : auth.error().reason));
  const auto c = sip::parse_digest_credentials(*auth);
  REQUIRE_FALSE(c);
  return c.error();
}

std::array<std::byte, 32> secret_of(unsigned char fill) {
  std::array<std::byte, 32> s{};
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::byte>(fill + i);
  return s;
}

// 2023-11-14T22:13:20Z: a fixed "now".
const std::chrono::system_clock::time_point t0{std::chrono::seconds(1700000000)};

}  // namespace

TEST_CASE("digest algorithm names") {
  CHECK(sip::digest_algorithm_name(digest_algorithm::md5) == "MD5");
  CHECK(sip::digest_algorithm_name(digest_algorithm::sha256) == "SHA-256");
  CHECK(sip::parse_digest_algorithm("MD5") == digest_algorithm::md5);
  CHECK(sip::parse_digest_algorithm("md5") == digest_algorithm::md5);
  CHECK(sip::parse_digest_algorithm("sha-256") == digest_algorithm::sha256);
  CHECK_FALSE(sip::parse_digest_algorithm("MD5-sess"));
  CHECK_FALSE(sip::parse_digest_algorithm("SHA-256-sess"));
  CHECK_FALSE(sip::parse_digest_algorithm("SHA-512-256"));
  CHECK_FALSE(sip::parse_digest_algorithm("SHA256"));
  CHECK_FALSE(sip::parse_digest_algorithm(""));
  CHECK(sip::digest_hex_length(digest_algorithm::md5) == 32);
  CHECK(sip::digest_hex_length(digest_algorithm::sha256) == 64);
}

TEST_CASE("digest RFC 2617 section 3.5 example (MD5, qop auth)") {
  const std::string ha1 =
      sip::digest_ha1(digest_algorithm::md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
  CHECK(ha1 == "939e7578ed9e3c518a452acee763bce9");
  const auto c = credentials_of(
      "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", "
      "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, "
      "nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", "
      "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"");
  CHECK(c.algorithm == digest_algorithm::md5);  // absent: MD5
  CHECK(c.username == "Mufasa");
  CHECK(c.qop == "auth");
  CHECK(c.nc == "00000001");
  CHECK(c.cnonce == "0a4f113b");
  CHECK(c.opaque == "5ccc069c403ebaf9f0171e9517f40e41");
  CHECK(sip::digest_response(c, ha1, "GET") == "6629fae49393a05397450978507c4ef1");
  CHECK(sip::check_digest_response(c, ha1, "GET"));
  CHECK_FALSE(sip::check_digest_response(c, ha1, "POST"));
  CHECK_FALSE(sip::check_digest_response(
      c, sip::digest_ha1(digest_algorithm::md5, "Mufasa", "testrealm@host.com", "Circle of Life"),
      "GET"));
}

TEST_CASE("digest RFC 7616 section 3.9.1 example (MD5 and SHA-256)") {
  const std::string common =
      "username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", "
      "qop=auth, nc=00000001, cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", "
      "nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", "
      "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
  SUBCASE("MD5") {
    const std::string ha1 =
        sip::digest_ha1(digest_algorithm::md5, "Mufasa", "http-auth@example.org", "Circle of Life");
    CHECK(ha1 == "3d78807defe7de2157e2b0b6573a855f");
    const auto c = credentials_of("Digest algorithm=MD5, " + common +
                                  ", response=\"8ca523f5e9506fed4657c9700eebdbec\"");
    CHECK(c.algorithm == digest_algorithm::md5);
    CHECK(sip::check_digest_response(c, ha1, "GET"));
  }
  SUBCASE("SHA-256") {
    const std::string ha1 = sip::digest_ha1(digest_algorithm::sha256, "Mufasa",
                                            "http-auth@example.org", "Circle of Life");
    CHECK(ha1 == "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232");
    const auto c = credentials_of(
        "Digest algorithm=SHA-256, " + common +
        ", response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\"");
    CHECK(c.algorithm == digest_algorithm::sha256);
    CHECK(sip::check_digest_response(c, ha1, "GET"));
    // The MD5 HA1 is the wrong length for SHA-256: refused, not compared.
    CHECK_FALSE(sip::check_digest_response(c, "3d78807defe7de2157e2b0b6573a855f", "GET"));
  }
}

// A REGISTER as sipp sends it after a 401 (scenario "uac" with [authentication]): user alice,
// password secret123, realm overlay.example. Expected values from the formulas:
//   HA1 = H("alice:overlay.example:secret123"), HA2 = H("REGISTER:sip:overlay.example"),
//   qop=auth: H(HA1:nonce:00000001:6b8b4567:auth:HA2); without qop: H(HA1:nonce:HA2).
TEST_CASE("digest a sipp-style REGISTER exchange") {
  const std::string nonce = "5f2a7c1e0b9d4f3a8c6e2d1b0a9f8e7d5f2a7c1e0b9d4f3a8c6e2d1b0a9f8e7d";
  const std::string head =
      "Digest username=\"alice\",realm=\"overlay.example\",uri=\"sip:"
      "overlay.example\",nonce=\"" +
      nonce + "\"";
  SUBCASE("MD5 with qop=auth") {
    const auto ha1 =
        sip::digest_ha1(digest_algorithm::md5, "alice", "overlay.example", "secret123");
    CHECK(ha1 == "deca57b364da59c666d257bca8311345");
    auto c = credentials_of(head +
                            ",cnonce=\"6b8b4567\",nc=00000001,qop=auth,"
                            "response=\"85282b7948d84fb51076e820e548e0a4\",algorithm=MD5");
    CHECK(sip::check_digest_response(c, ha1, "REGISTER"));
    // Another nonce count gives another response.
    c.nc = "00000002";
    CHECK_FALSE(sip::check_digest_response(c, ha1, "REGISTER"));
    CHECK(sip::digest_response(c, ha1, "REGISTER") == "c62c787844a47bc92bc2a856d37d644f");
  }
  SUBCASE("MD5 without qop (RFC 2069)") {
    const auto ha1 =
        sip::digest_ha1(digest_algorithm::md5, "alice", "overlay.example", "secret123");
    const auto c =
        credentials_of(head + ",response=\"80351038545b8a4a500ff9358d182e50\",algorithm=MD5");
    CHECK_FALSE(c.qop);
    CHECK_FALSE(c.cnonce);
    CHECK_FALSE(c.nc);
    CHECK(sip::check_digest_response(c, ha1, "REGISTER"));
  }
  SUBCASE("SHA-256 with qop=auth (RFC 8760)") {
    const auto ha1 =
        sip::digest_ha1(digest_algorithm::sha256, "alice", "overlay.example", "secret123");
    CHECK(ha1 == "21b20a3e98c0b9d43329a7de823aafa78acdb781e9b8d2e9bdc47d2024eba88e");
    const auto c = credentials_of(
        head +
        ",cnonce=\"6b8b4567\",nc=00000001,qop=auth,response="
        "\"f15b4168ac79cfbc5152a14affc3473feb8707c94fc0ea40606cadfdaeb05e89\",algorithm=SHA-256");
    CHECK(sip::check_digest_response(c, ha1, "REGISTER"));
    CHECK_FALSE(sip::check_digest_response(c, ha1, "INVITE"));
  }
  SUBCASE("SHA-256 without qop") {
    const auto ha1 =
        sip::digest_ha1(digest_algorithm::sha256, "alice", "overlay.example", "secret123");
    const auto c = credentials_of(
        head +
        ",response=\"5ea5f5b861791199d4595ed001d65179122a059369a2eb08d65780791bd2eff3\","
        "algorithm=SHA-256");
    CHECK(sip::check_digest_response(c, ha1, "REGISTER"));
  }
  SUBCASE("upper-case hex and a quoted qop are read") {
    const auto ha1 =
        sip::digest_ha1(digest_algorithm::md5, "alice", "overlay.example", "secret123");
    const auto c = credentials_of(head +
                                  ",cnonce=\"6b8b4567\",nc=00000001,qop=\"auth\","
                                  "response=\"85282B7948D84FB51076E820E548E0A4\"");
    CHECK(c.response == "85282b7948d84fb51076e820e548e0a4");
    CHECK(sip::check_digest_response(c, ha1, "REGISTER"));
  }
}

TEST_CASE("digest challenge text") {
  CHECK(sip::make_challenge(digest_algorithm::sha256, "overlay.example", "abc", false) ==
        "Digest realm=\"overlay.example\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\"");
  CHECK(sip::make_challenge(digest_algorithm::md5, "overlay.example", "abc", true, "xyz") ==
        "Digest realm=\"overlay.example\", nonce=\"abc\", opaque=\"xyz\", stale=true, "
        "algorithm=MD5, qop=\"auth\"");
  // Quotes and backslashes in the realm become quoted-pairs; the codec reads the realm back.
  const std::string text = sip::make_challenge(digest_algorithm::md5, "a \"b\" \\c", "n", false);
  CHECK(text == "Digest realm=\"a \\\"b\\\" \\\\c\", nonce=\"n\", algorithm=MD5, qop=\"auth\"");
  const auto parsed = sip::parse_auth(text);
  REQUIRE(parsed);
  CHECK(parsed->scheme == "Digest");
  CHECK(parsed->get("realm") == "a \"b\" \\c");
  CHECK(parsed->get("algorithm") == "MD5");
  CHECK(parsed->get("qop") == "auth");
}

TEST_CASE("digest credentials that are refused") {
  const std::string ok_md5 = "response=\"85282b7948d84fb51076e820e548e0a4\"";
  const std::string base =
      "Digest username=\"alice\", realm=\"overlay.example\", uri=\"sip:overlay.example\", "
      "nonce=\"n\", ";
  SUBCASE("a missing required parameter is a 400") {
    for (const char* name : {"username", "realm", "nonce", "uri", "response"}) {
      std::string v = "Digest ";
      bool first = true;
      for (const auto& [n, val] : {std::pair<std::string, std::string>{"username", "\"alice\""},
                                   {"realm", "\"r\""},
                                   {"nonce", "\"n\""},
                                   {"uri", "\"sip:r\""},
                                   {"response", "\"85282b7948d84fb51076e820e548e0a4\""}}) {
        if (n == name) continue;
        v += (first ? "" : ", ") + n + "=" + val;
        first = false;
      }
      const auto e = refusal_of(v);
      CHECK(e.status == 400);
      CHECK(e.reason == std::string("Malformed Authorization: no ") + name);
    }
  }
  SUBCASE("qop without cnonce or nc, or nc malformed, is a 400") {
    CHECK(refusal_of(base + ok_md5 + ", qop=auth, nc=00000001").status == 400);
    CHECK(refusal_of(base + ok_md5 + ", qop=auth, cnonce=\"c\"").status == 400);
    CHECK(refusal_of(base + ok_md5 + ", qop=auth, cnonce=\"c\", nc=1").reason ==
          "Malformed Authorization: nc is not 8 hex digits");
    CHECK(refusal_of(base + ok_md5 + ", qop=auth, cnonce=\"c\", nc=0000000g").status == 400);
    CHECK(refusal_of(base + ok_md5 + ", cnonce=\"c\", nc=00000001").reason ==
          "Malformed Authorization: cnonce or nc without qop");
  }
  SUBCASE("a response of the wrong length or not hex is a 400") {
    CHECK(refusal_of(base + "response=\"85282b7948d84fb51076e820e548e0a\"").reason ==
          "Malformed Authorization: response is not 32 hex digits");
    CHECK(refusal_of(base + ok_md5 + ", algorithm=SHA-256").reason ==
          "Malformed Authorization: response is not 64 hex digits");
    CHECK(refusal_of(base + "response=\"85282b7948d84fb51076e820e548e0az\"").status == 400);
    CHECK(refusal_of(base + "response=\"\"").status == 400);
  }
  SUBCASE("empty username, nonce or uri is a 400") {
    CHECK(refusal_of("Digest username=\"\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", " + ok_md5)
              .status == 400);
    CHECK(refusal_of("Digest username=\"a\", realm=\"r\", nonce=\"\", uri=\"sip:r\", " + ok_md5)
              .status == 400);
    CHECK(
        refusal_of("Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"\", " + ok_md5).status ==
        400);
  }
  SUBCASE("userhash and username* are refused") {
    CHECK(refusal_of(base + ok_md5 + ", userhash=true").reason ==
          "Malformed Authorization: userhash is not supported");
    CHECK(refusal_of(base + ok_md5 + ", username*=UTF-8''al%C3%AFce").status == 400);
    // userhash=false is the default and harmless.
    CHECK(sip::parse_digest_credentials(*sip::parse_auth(base + ok_md5 + ", userhash=false")));
  }
  SUBCASE("what the caller answers with a new challenge: 401") {
    for (const char* alg : {"MD5-sess", "SHA-256-sess", "SHA-512-256", "\"foo\""}) {
      const auto e = refusal_of(base + ok_md5 + ", algorithm=" + alg);
      CHECK(e.status == 401);
      CHECK(e.reason.starts_with("Unsupported digest algorithm"));
    }
    CHECK(refusal_of(base + ok_md5 + ", qop=auth-int, cnonce=\"c\", nc=00000001").status == 401);
    CHECK(refusal_of("Other username=\"alice\"").status == 401);
  }
}

TEST_CASE("digest nonces: valid, stale, forged") {
  const auto secret = secret_of(1);
  const sip::nonce_source source(secret);
  using check = sip::nonce_source::nonce_check;
  const auto max_age = std::chrono::seconds(300);
  const std::string n = source.issue(t0);
  CHECK(n.size() == 64);
  CHECK(n.find_first_not_of("0123456789abcdef") == std::string::npos);

  CHECK(source.check(n, t0, max_age) == check::valid);
  CHECK(source.check(n, t0 + max_age, max_age) == check::valid);
  CHECK(source.check(n, t0 + max_age + std::chrono::seconds(1), max_age) == check::stale);
  // Issued "in the future": the clock stepped back; the same window applies.
  CHECK(source.check(n, t0 - std::chrono::seconds(10), max_age) == check::valid);
  CHECK(source.check(n, t0 - max_age - std::chrono::seconds(1), max_age) == check::stale);

  // Another secret did not issue it.
  const auto other_secret = secret_of(2);
  CHECK(sip::nonce_source(other_secret).check(n, t0, max_age) == check::invalid);

  // Any one digit changed (the time, the salt or the tag): invalid, never stale (so stale=true
  // never rewards a forged time).
  for (std::size_t i = 0; i < n.size(); ++i) {
    std::string forged = n;
    forged[i] = forged[i] == '0' ? '1' : '0';
    CHECK(source.check(forged, t0, max_age) == check::invalid);
  }
  // Malformed: length, case, characters.
  CHECK(source.check("", t0, max_age) == check::invalid);
  CHECK(source.check(n.substr(1), t0, max_age) == check::invalid);
  CHECK(source.check(n + "0", t0, max_age) == check::invalid);
  std::string upper = n;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper != n) CHECK(source.check(upper, t0, max_age) == check::invalid);
  CHECK(source.check(std::string(64, 'x'), t0, max_age) == check::invalid);
}

TEST_CASE("digest nonces are unique and need a long enough secret") {
  const auto secret = secret_of(7);
  const sip::nonce_source source(secret);
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) CHECK(seen.insert(source.issue(t0)).second);
  const std::array<std::byte, 15> short_secret{};
  CHECK_THROWS_AS(sip::nonce_source{short_secret}, std::invalid_argument);
}

TEST_CASE("digest end to end: challenge, answer, check") {
  const auto secret = secret_of(9);
  const sip::nonce_source source(secret);
  const std::string realm = "overlay.example";
  const auto ha1 = sip::digest_ha1(digest_algorithm::sha256, "bob", realm, "hunter2");
  // The registrar challenges...
  const auto challenge = sip::parse_auth(
      sip::make_challenge(digest_algorithm::sha256, realm, source.issue(t0), false));
  REQUIRE(challenge);
  const std::string nonce = *challenge->get("nonce");
  // ... the user agent answers with its own HA1 ...
  sip::digest_credentials c;
  c.username = "bob";
  c.realm = *challenge->get("realm");
  c.nonce = nonce;
  c.uri = "sip:overlay.example";
  c.algorithm = *sip::parse_digest_algorithm(*challenge->get("algorithm"));
  c.qop = "auth";
  c.cnonce = "0a4f113b";
  c.nc = "00000001";
  c.response = sip::digest_response(c, ha1, "REGISTER");
  const std::string header = "Digest username=\"bob\", realm=\"" + c.realm + "\", nonce=\"" +
                             nonce + "\", uri=\"sip:overlay.example\", response=\"" + c.response +
                             "\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"0a4f113b\"";
  // ... and the registrar checks the nonce and the response.
  const auto got = credentials_of(header);
  CHECK(source.check(got.nonce, t0 + std::chrono::seconds(5), std::chrono::seconds(300)) ==
        sip::nonce_source::nonce_check::valid);
  CHECK(sip::check_digest_response(got, ha1, "REGISTER"));
  CHECK_FALSE(sip::check_digest_response(
      got, sip::digest_ha1(digest_algorithm::sha256, "bob", realm, "hunter3"), "REGISTER"));
}
