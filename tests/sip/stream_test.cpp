// The stream parser: split-grind (every input fed split at every offset, byte by byte, and
// coalesced with others, always giving the same events), RFC 5626 keepalives, framing errors, and
// every limit one byte over on both the datagram and the stream parser.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "golden.hpp"
#include "p2psip/sip/stream_parser.hpp"

namespace sip = p2psip::sip;
using namespace p2psip::sip::test;

namespace {

std::string describe(const sip::stream_event& e) {
  if (const auto* m = std::get_if<sip::message>(&e)) {
    std::string s = "message:" + sip::serialize(*m);
    for (const auto& h : m->headers) s += "|" + h.received_name;
    return s;
  }
  if (const auto* k = std::get_if<sip::keepalive>(&e)) return k->ping ? "ping" : "pong";
  const auto& err = std::get<sip::parse_error>(e);
  return "error:" + std::to_string(err.status) + ":" + err.reason + (err.response ? ":r" : ":q");
}

std::vector<std::string> run(std::string_view input, const std::vector<std::size_t>& cuts,
                             const sip::sip_limits& limits = {},
                             sip::stream_parser::side side = sip::stream_parser::side::server) {
  sip::stream_parser p(limits, side);
  std::vector<std::string> out;
  std::size_t at = 0;
  auto take = [&](std::size_t to) {
    for (const auto& e : p.feed(input.substr(at, to - at))) out.push_back(describe(e));
    CHECK(p.buffered() <= limits.max_header_bytes + limits.max_body);
    at = to;
  };
  for (auto c : cuts) take(c);
  take(input.size());
  return out;
}

// Feeds `input` whole, split in two at every offset, and byte by byte; all must agree.
std::vector<std::string> grind(std::string_view input, const sip::sip_limits& limits = {},
                               sip::stream_parser::side side = sip::stream_parser::side::server) {
  const auto whole = run(input, {}, limits, side);
  for (std::size_t k = 0; k <= input.size(); ++k) {
    const auto split = run(input, {k}, limits, side);
    if (split != whole) {
      CAPTURE(k);
      CHECK(split == whole);
      break;
    }
  }
  std::vector<std::size_t> every;
  for (std::size_t k = 1; k < input.size(); ++k) every.push_back(k);
  CHECK(run(input, every, limits, side) == whole);
  return whole;
}

std::string message_event(const std::string& text) {
  auto m = sip::parse_datagram(text);
  REQUIRE(m);
  return describe(*m);
}

}  // namespace

TEST_CASE("split-grind: each golden message alone") {
  for (const auto& g : golden_messages()) {
    CAPTURE(g);
    const auto events = grind(g);
    REQUIRE(events.size() == 1);
    CHECK(events[0] == message_event(g));
  }
}

TEST_CASE("split-grind: golden messages coalesced with keepalives between them") {
  std::string stream;
  std::vector<std::string> expected;
  for (const auto& g : golden_messages()) {
    stream += g;
    expected.push_back(message_event(g));
    stream += "\r\n\r\n";
    expected.emplace_back("ping");
  }
  stream += "\r\n";  // a lone CRLF before a start line is ignored (RFC 3261 7.5)
  stream += golden_ok;
  expected.push_back(message_event(golden_ok));
  CHECK(grind(stream) == expected);
}

TEST_CASE("keepalives: a client reads each CRLF as a pong") {
  const auto events = grind("\r\n\r\n\r\n" + golden_401, {}, sip::stream_parser::side::client);
  REQUIRE(events.size() == 4);
  CHECK(events[0] == "pong");
  CHECK(events[2] == "pong");
  CHECK(events[3] == message_event(golden_401));
  // A server waits for the fourth byte before deciding between a ping and a lone CRLF.
  sip::stream_parser server;
  CHECK(server.feed("\r\n\r").empty());
  CHECK(server.buffered() == 3);
  const auto e = server.feed("\n");
  REQUIRE(e.size() == 1);
  CHECK(std::get<sip::keepalive>(e[0]).ping);
}

TEST_CASE("stream framing errors close the parser") {
  // No Content-Length on a stream (RFC 3261 18.3).
  std::string no_length = golden_401;
  no_length.erase(no_length.find("Content-Length: 0\r\n"), 19);
  const auto events = grind(no_length + golden_401);
  REQUIRE(events.size() == 1);
  CHECK(events[0] == "error:400:Missing Content-Length header on a stream transport:r");
  sip::stream_parser p;
  CHECK(p.feed(no_length).size() == 1);
  CHECK(p.closed());
  CHECK(p.feed(golden_401).empty());
  CHECK(p.buffered() == 0);
  // Garbage before a start line.
  CHECK(grind("\r\r\n" + golden_ok) ==
        std::vector<std::string>{"error:400:Bare CR before a start line:q"});
  CHECK(grind("\n" + golden_ok) ==
        std::vector<std::string>{"error:400:Bare LF before a start line:q"});
  // A body that has not arrived yet: the parser waits (RFC 4475 clerr over TCP).
  sip::stream_parser wait;
  CHECK(wait.feed(golden_invite.substr(0, golden_invite.size() - 1)).empty());
  CHECK(!wait.closed());
  CHECK(wait.buffered() == golden_invite.size() - 1);
}

TEST_CASE("datagram framing") {
  CHECK(sip::parse_datagram("").error().reason == "Empty datagram");
  CHECK(sip::parse_datagram("\r\n\r\n").error().reason == "Empty datagram");
  auto m = sip::parse_datagram("\r\n" + golden_ok);
  REQUIRE(m);
  CHECK(m->status == 200);
  // Without Content-Length the body is the rest of the datagram.
  std::string no_length = golden_401;
  no_length.erase(no_length.find("Content-Length: 0\r\n"), 19);
  auto b = sip::parse_datagram(no_length + "xyz");
  REQUIRE(b);
  CHECK(b->body == "xyz");
  // Content-Length larger than the datagram.
  std::string cut = golden_invite.substr(0, golden_invite.size() - 1);
  auto c = sip::parse_datagram(cut);
  REQUIRE(!c);
  CHECK(c.error().status == 400);
  CHECK(c.error().reason == "Content-Length larger than the datagram");
  // Octets after the body are ignored.
  auto d = sip::parse_datagram(golden_invite + "trailing");
  REQUIRE(d);
  CHECK(d->body == golden_invite_body);
  auto e = sip::parse_datagram("OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nTo: <sip:a@b>");
  REQUIRE(!e);
  CHECK(e.error().reason == "Header section not terminated by an empty line");
  CHECK(sip::parse_datagram("OPTIONS sip:a@b SIP/2.0\r\n\tx: y\r\n\r\n").error().reason ==
        "Continuation line before the first header");
  CHECK(sip::parse_datagram("OPTIONS sip:a@b SIP/2.0\r\nx y\r\n\r\n").error().reason ==
        "Header line without a colon");
  CHECK(sip::parse_datagram("OPTIONS sip:a@b SIP/2.0\r\nx\ny: z\r\n\r\n").error().reason ==
        "Bare CR or LF in header section");
  CHECK(sip::parse_datagram("OPTIONS sip:a@b SIP/2.0\r\nx@y: z\r\n\r\n").error().reason ==
        "Malformed header name");
}

// ---- limits, one byte over ----

namespace {

// A request whose Request-URI has `user_len` user characters and `extra` headers, with a body.
std::string request(std::size_t user_len, std::size_t extra_headers, std::size_t body_len) {
  std::string s = "MESSAGE sip:" + std::string(user_len, 'u') + "@example.com SIP/2.0\r\n";
  s += "Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\nTo: <sip:a@example.com>\r\n";
  s += "From: <sip:b@example.com>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\n";
  for (std::size_t i = 0; i < extra_headers; ++i) s += "X-Extra: " + std::to_string(i) + "\r\n";
  s += "Content-Length: " + std::to_string(body_len) + "\r\n\r\n" + std::string(body_len, 'b');
  return s;
}

// Parses `text` under `limits` as a datagram and ground as a stream; both must give `status`
// (0: success) and `reason`.
void expect(const std::string& text, const sip::sip_limits& limits, int status,
            const std::string& reason = {}) {
  auto d = sip::parse_datagram(text, limits);
  const auto events = grind(text, limits);
  REQUIRE(events.size() == 1);
  if (status == 0) {
    CHECK(d);
    CHECK(events[0].rfind("message:", 0) == 0);
    return;
  }
  REQUIRE(!d);
  CHECK(d.error().status == status);
  CHECK(d.error().reason == reason);
  CHECK(events[0] == "error:" + std::to_string(status) + ":" + reason + ":q");
}

}  // namespace

TEST_CASE("limit: max_start_line, one byte over is 414 (request) or a dropped response") {
  const std::string text = request(20, 0, 0);
  const std::size_t line = text.find("\r\n");
  sip::sip_limits lim;
  lim.max_start_line = line;
  expect(text, lim, 0);
  lim.max_start_line = line - 1;
  expect(text, lim, 414,
         "Request-URI Too Long: Request-Line over " + std::to_string(line - 1) + " bytes");

  const std::size_t status_line = golden_401.find("\r\n");
  lim.max_start_line = status_line - 1;
  auto r = sip::parse_datagram(golden_401, lim);
  REQUIRE(!r);
  CHECK(r.error().response);
  CHECK(r.error().status == 400);
  CHECK(grind(golden_401, lim) ==
        std::vector<std::string>{"error:400:Status-Line over " + std::to_string(status_line - 1) +
                                 " bytes:r"});
}

TEST_CASE("limit: max_uri, one byte over is 414") {
  const std::string text = request(30, 0, 0);
  const std::size_t uri = std::string("sip:").size() + 30 + std::string("@example.com").size();
  sip::sip_limits lim;
  lim.max_uri = uri;
  expect(text, lim, 0);
  lim.max_uri = uri - 1;
  expect(text, lim, 414, "Request-URI Too Long: over " + std::to_string(uri - 1) + " bytes");
}

TEST_CASE("limit: max_headers, one over is 513") {
  const std::string text = request(1, 10, 0);
  sip::sip_limits lim;
  lim.max_headers = 16;  // 5 + 10 + Content-Length
  expect(text, lim, 0);
  lim.max_headers = 15;
  expect(text, lim, 513, "Message Too Large: over 15 header fields");
}

TEST_CASE("limit: max_header_bytes, one byte over is 513") {
  const std::string text = request(1, 3, 5);
  const std::size_t head = text.find("\r\n\r\n") + 4;
  sip::sip_limits lim;
  lim.max_header_bytes = head;
  expect(text, lim, 0);
  lim.max_header_bytes = head - 1;
  expect(text, lim, 513,
         "Message Too Large: header section over " + std::to_string(head - 1) + " bytes");
  // An endless header section is cut off at the limit, never buffered beyond it.
  sip::stream_parser p(lim);
  std::vector<sip::stream_event> events;
  for (int i = 0; i < 1000 && events.empty(); ++i) events = p.feed("X-Flood: 0123456789\r\n");
  REQUIRE(events.size() == 1);
  CHECK(std::get<sip::parse_error>(events[0]).status == 513);
  CHECK(p.buffered() == 0);
}

TEST_CASE("limit: max_body, one byte over is 413") {
  const std::string text = request(1, 0, 100);
  sip::sip_limits lim;
  lim.max_body = 100;
  expect(text, lim, 0);
  lim.max_body = 99;
  expect(text, lim, 413, "Request Entity Too Large: body over 99 bytes");
  // A datagram without Content-Length: the rest of the datagram is the body.
  std::string no_length = text;
  no_length.erase(no_length.find("Content-Length: 100\r\n"), 21);
  CHECK(sip::parse_datagram(no_length, lim).error().status == 413);
  lim.max_body = 100;
  CHECK(sip::parse_datagram(no_length, lim));
}

TEST_CASE("a start line without CRLF is cut off at its limit") {
  sip::sip_limits lim;
  lim.max_start_line = 64;
  sip::stream_parser p(lim);
  const auto e = p.feed(std::string(200, 'A'));
  REQUIRE(e.size() == 1);
  CHECK(std::get<sip::parse_error>(e[0]).status == 414);
  CHECK(p.buffered() == 0);
  // Exactly at the limit, with the CR arriving alone, it is not.
  sip::stream_parser q(lim);
  CHECK(q.feed("OPTIONS sip:" + std::string(64 - 20, 'x') + " SIP/2.0\r").empty());
  CHECK(!q.closed());
}

TEST_CASE("a feed larger than the buffer bound is taken in pieces") {
  sip::sip_limits lim;
  lim.max_body = 100;
  lim.max_header_bytes = 512;
  std::string stream;
  for (int i = 0; i < 12; ++i) stream += request(static_cast<std::size_t>(i + 1), 2, 100);
  REQUIRE(stream.size() > 5 * (lim.max_header_bytes + lim.max_body));
  const auto events = grind(stream, lim);
  REQUIRE(events.size() == 12);
  for (const auto& e : events) CHECK(e.rfind("message:", 0) == 0);
}

TEST_CASE("byte-span overloads") {
  const auto* p = reinterpret_cast<const std::byte*>(golden_ok.data());
  const std::span<const std::byte> bytes(p, golden_ok.size());
  auto m = sip::parse_datagram(bytes);
  REQUIRE(m);
  CHECK(m->status == 200);
  sip::stream_parser s;
  const auto events = s.feed(bytes);
  REQUIRE(events.size() == 1);
  CHECK(std::get<sip::message>(events[0]) == *m);
}
