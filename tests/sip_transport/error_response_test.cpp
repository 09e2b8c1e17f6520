// sip::error_response_bytes (the best-effort answer to bytes that failed to parse) and
// sip::error_response: hand-made cases, and every RFC 4475 torture message the codec rejects
// (tests/sip/torture/INDEX.tsv).

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "p2psip/sip/error_response.hpp"
#include "p2psip/sip/message.hpp"

namespace sip = p2psip::sip;

namespace {

const std::filesystem::path torture_dir = P2PSIP_SIP_TORTURE_DIR;

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in.is_open(), "cannot read " << p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

/// The names of the torture messages (first column of INDEX.tsv).
std::vector<std::string> torture_names() {
  std::istringstream in(read_file(torture_dir / "INDEX.tsv"));
  std::string line;
  std::getline(in, line);  // header row
  std::vector<std::string> names;
  while (std::getline(in, line)) {
    if (!line.empty()) names.push_back(line.substr(0, line.find('\t')));
  }
  return names;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("error_response: recovers Via, From, To, Call-ID and CSeq, compact forms included") {
  const std::string raw =
      "INVITE sip:bob@example.com SIP/2.0\r\n"
      "v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"
      "Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK2,\r\n"
      " SIP/2.0/TCP 192.0.2.3;branch=z9hG4bK3\r\n"
      "f: <sip:alice@example.com>;tag=abc\r\n"
      "t: <sip:bob@example.com>\r\n"
      "i: call-1@example.com\r\n"
      "CSeq : 7 INVITE\r\n"
      "Max-Forwards: seventy\r\n"
      "Content-Length: 0\r\n\r\n";
  auto out = sip::error_response_bytes(raw, sip::bad_request("Malformed Max-Forwards header"));
  REQUIRE(out);
  CHECK(out->rfind("SIP/2.0 400 Malformed Max-Forwards header\r\n", 0) == 0);
  auto parsed = sip::parse_datagram(*out);
  REQUIRE_MESSAGE(parsed, *out);
  CHECK(parsed->status == 400);
  auto vias = sip::vias(*parsed);
  REQUIRE(vias);
  REQUIRE(vias->size() == 3);
  CHECK(vias->at(0).branch() == "z9hG4bK1");
  CHECK(vias->at(2).branch() == "z9hG4bK3");
  CHECK(sip::from(*parsed)->tag() == "abc");
  const auto tag = sip::to(*parsed)->tag();
  REQUIRE(tag);  // added: RFC 3261 8.2.6.2
  CHECK(*sip::call_id(*parsed) == "call-1@example.com");
  CHECK(sip::cseq_of(*parsed)->number == 7);
  CHECK(parsed->body.empty());
  // The same bytes get the same tag (a retransmission is answered alike).
  CHECK(sip::error_response_bytes(raw, sip::bad_request("x")).value().find(*tag) !=
        std::string::npos);
}

TEST_CASE("error_response: keeps an existing To tag, folds, LF-only lines") {
  const std::string raw =
      "BYE sip:bob@example.com SIP/2.0\n"
      "Via: SIP/2.0/UDP 192.0.2.1\n"
      "\t;branch=z9hG4bK9\n"
      "To: <sip:bob@example.com>;tag=xyz\n"
      "\n"
      "Via: SIP/2.0/UDP body.example.com\n";
  auto out = sip::error_response_bytes(raw, sip::parse_error{505, "Version Not Supported"});
  REQUIRE(out);
  CHECK(out->rfind("SIP/2.0 505 Version Not Supported\r\n", 0) == 0);
  CHECK(out->find("Via: SIP/2.0/UDP 192.0.2.1 ;branch=z9hG4bK9\r\n") != std::string::npos);
  CHECK(out->find("body.example.com") == std::string::npos);  // after the empty line
  CHECK(count(*out, "tag=") == 1);
  CHECK(out->find("To: <sip:bob@example.com>;tag=xyz\r\n") != std::string::npos);
  CHECK(out->find("Content-Length: 0\r\n\r\n") != std::string::npos);
}

TEST_CASE("error_response: nothing for responses, without a Via, or with control characters") {
  const std::string response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\n\r\n";
  CHECK_FALSE(sip::error_response_bytes(response, sip::bad_request("x")));
  CHECK_FALSE(sip::error_response_bytes("\r\n" + response.substr(0, 10) + "garbage",
                                        sip::bad_request("x")));
  sip::parse_error as_response = sip::bad_request("x");
  as_response.response = true;
  CHECK_FALSE(sip::error_response_bytes("OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n",
                                        as_response));
  CHECK_FALSE(sip::error_response_bytes("OPTIONS sip:a SIP/2.0\r\nTo: <sip:a>\r\n\r\n",
                                        sip::bad_request("x")));
  CHECK_FALSE(sip::error_response_bytes("", sip::bad_request("x")));
  CHECK_FALSE(sip::error_response_bytes("\x01\x02garbage", sip::bad_request("x")));
  // A Via value with a NUL or bare CR cannot be echoed on a header line.
  CHECK_FALSE(sip::error_response_bytes(
      std::string("OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h\0x\r\n\r\n", 44),
      sip::bad_request("x")));
  // Reasons are printable ASCII; an empty one gets the usual phrase; odd statuses become 400.
  const std::string req = "OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n";
  CHECK(sip::error_response_bytes(req, sip::parse_error{513, ""})
            ->rfind("SIP/2.0 513 Message Too Large\r\n", 0) == 0);
  CHECK(sip::error_response_bytes(req, sip::parse_error{200, "Bad\r\nX: y"})
            ->rfind("SIP/2.0 400 BadX: y\r\n", 0) == 0);
}

TEST_CASE("error_response: every RFC 4475 message the codec rejects gets its answer or none") {
  int answered = 0, silent = 0;
  for (const auto& name : torture_names()) {
    CAPTURE(name);
    const std::string raw = read_file(torture_dir / "messages" / (name + ".dat"));
    auto parsed = sip::parse_datagram(raw);
    if (parsed) continue;
    const auto& error = parsed.error();
    auto out = sip::error_response_bytes(raw, error);
    if (error.response) {
      // scalarlg, bigcode: responses are dropped, never answered.
      CHECK_FALSE(out);
      ++silent;
      continue;
    }
    REQUIRE_MESSAGE(out,
                    "no answer to " << name << " (" << error.status << " " << error.reason << ")");
    ++answered;
    CHECK(out->rfind("SIP/2.0 " + std::to_string(error.status) + " ", 0) == 0);
    CHECK(out->find("\r\nVia: ") != std::string::npos);
    CHECK(out->size() >= 4);
    CHECK(out->substr(out->size() - 4) == "\r\n\r\n");
    CHECK(out->find("Content-Length: 0\r\n") != std::string::npos);
    // Where the recovered headers are themselves well formed the answer parses as a response
    // with the same status and as many Via values as the request had Via lines.
    if (auto back = sip::parse_datagram(*out)) {
      CHECK(back->status == error.status);
      CHECK_FALSE(back->is_request());
    }
  }
  MESSAGE("answered " << answered << ", silent " << silent);
  CHECK(answered >= 15);
  CHECK(silent == 2);
}

TEST_CASE("error_response: from a parsed request, with a To tag") {
  auto req = sip::parse_datagram(
      "REGISTER sip:example.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKr1\r\n"
      "Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKr2\r\n"
      "Max-Forwards: 70\r\n"
      "From: <sip:alice@example.com>;tag=f1\r\n"
      "To: <sip:alice@example.com>\r\n"
      "Call-ID: reg-1\r\n"
      "CSeq: 3 REGISTER\r\n"
      "Contact: <sip:alice@192.0.2.1>\r\n"
      "Content-Length: 0\r\n\r\n");
  REQUIRE(req);
  auto r = sip::error_response(*req, 503, "");
  r.add("Retry-After", "5");
  auto back = sip::parse_datagram(sip::serialize(r));
  REQUIRE(back);
  CHECK(back->status == 503);
  CHECK(back->reason == "Service Unavailable");
  CHECK(sip::vias(*back)->size() == 2);
  CHECK(sip::to(*back)->tag().has_value());
  CHECK(sip::from(*back)->tag() == "f1");
  CHECK(back->find("Contact") == nullptr);
  CHECK(back->find("Retry-After")->value == "5");
}
