// RFC 3261 section 16 building blocks: request checks (483, 420, 416, loop 482 against a spiral),
// route preprocessing, forwarding, the response context's choice of the best response, CANCELs
// and Timer C, and one proxied INVITE through two transaction layers' worth of state.

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "p2psip/sip/message.hpp"
#include "p2psip/sip/proxy.hpp"
#include "p2psip/sip/transaction.hpp"

namespace sip = p2psip::sip;
using namespace std::chrono_literals;

namespace {

const sip::time_point t0 = sip::time_point{} + 1000h;

sip::message parse(const std::string& text) {
  auto m = sip::parse_datagram(text);
  if (!m) FAIL("parse failed: " << m.error().status << " " << m.error().reason);
  return *m;
}

sip::uri u(std::string_view text) {
  auto r = sip::parse_uri(text);
  if (!r) FAIL("parse_uri(" << text << "): " << r.error().reason);
  return *r;
}

/// An INVITE from a UA at 192.0.2.1 with extra header lines.
sip::message invite(std::string_view extra = "", std::string_view ruri = "sip:bob@example.com",
                    std::string_view method = "INVITE") {
  return parse(std::string(method) + " " + std::string(ruri) +
               " SIP/2.0\r\n"
               "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ua1;received=192.0.2.1\r\n"
               "Max-Forwards: 70\r\n"
               "To: <sip:bob@example.com>\r\n"
               "From: <sip:alice@example.com>;tag=ft\r\n"
               "Call-ID: c-1@192.0.2.1\r\n"
               "CSeq: 1 " +
               std::string(method) + "\r\n" + std::string(extra) + "Content-Length: 0\r\n\r\n");
}

sip::forward_options opts(std::string host, std::string branch) {
  sip::forward_options o;
  o.via_host = std::move(host);
  o.via_port = 5060;
  o.branch = std::move(branch);
  return o;
}

sip::message forward(const sip::message& m, std::string_view target,
                     const sip::forward_options& o) {
  auto r = sip::prepare_forward(m, u(target), o);
  if (!r) FAIL("prepare_forward: " << r.error().status << " " << r.error().reason);
  return *r;
}

std::vector<std::string> values(const sip::message& m, std::string_view name) {
  std::vector<std::string> out;
  for (auto v : m.values(name)) out.emplace_back(v);
  return out;
}

/// A response from downstream to a forwarded request (our Via on top).
sip::message downstream(const sip::message& forwarded, int status, std::string extra = "") {
  auto r = sip::make_response(forwarded, status, {}, "dt" + std::to_string(status));
  if (!extra.empty()) {
    const auto colon = extra.find(':');
    r.add(extra.substr(0, colon), extra.substr(colon + 2));
  }
  return r;
}

std::vector<sip::transaction_layer::send> only_send(
    const std::vector<sip::transaction_layer::action>& actions) {
  std::vector<sip::transaction_layer::send> out;
  for (const auto& a : actions)
    if (const auto* p = std::get_if<sip::transaction_layer::send>(&a)) out.push_back(*p);
  return out;
}

}  // namespace

// ---- 16.3 ----

TEST_CASE("proxy check: Max-Forwards 0 is 483, absent or positive passes") {
  const sip::proxy_check_options none;
  auto zero = invite();
  zero.set("Max-Forwards", "0");
  const auto r = sip::check_request_for_proxy(zero, none);
  REQUIRE(r);
  CHECK(r->status == 483);
  CHECK(r->reason == "Too Many Hops");
  auto one = invite();
  one.set("Max-Forwards", "1");
  CHECK(!sip::check_request_for_proxy(one, none));
  auto absent = invite();
  absent.remove("Max-Forwards");
  CHECK(!sip::check_request_for_proxy(absent, none));

  const auto f = sip::prepare_forward(zero, u("sip:bob@192.0.2.4"), opts("p.example.com", "x"));
  REQUIRE(!f);
  CHECK(f.error().status == 483);
}

TEST_CASE("proxy check: unsupported Proxy-Require tags give 420 with Unsupported") {
  sip::proxy_check_options o;
  o.supported = {"sec-agree"};
  const auto m = invite("Proxy-Require: foo, Sec-Agree\r\nProxy-Require: bar\r\n");
  const auto r = sip::check_request_for_proxy(m, o);
  REQUIRE(r);
  CHECK(r->status == 420);
  CHECK(r->reason == "Bad Extension");
  REQUIRE(r->headers.size() == 1);
  CHECK(r->headers[0].name == "Unsupported");
  CHECK(r->headers[0].value == "foo, bar");
  CHECK(!sip::check_request_for_proxy(invite("Proxy-Require: sec-agree\r\n"), o));
}

TEST_CASE("proxy check: an unknown Request-URI scheme is 416") {
  const auto r = sip::check_request_for_proxy(invite("", "http://example.com/"), {});
  REQUIRE(r);
  CHECK(r->status == 416);
}

TEST_CASE("proxy check: a request that comes back unchanged is a loop (482)") {
  sip::proxy_check_options p;
  p.own = {{"p.example.com", 5060}};
  const auto received = invite();
  CHECK(!sip::check_request_for_proxy(received, p));
  // P forwards to Q; Q forwards the same request (same Request-URI) back to P.
  const auto to_q = forward(received, "sip:bob@example.com",
                            opts("p.example.com", sip::make_proxy_branch(received, 1)));
  CHECK(sip::vias(to_q)->at(0).branch() == sip::make_proxy_branch(received, 1));
  const auto back = forward(to_q, "sip:bob@example.com", opts("q.example.com", "z9hG4bK-q1"));
  const auto r = sip::check_request_for_proxy(back, p);
  REQUIRE(r);
  CHECK(r->status == 482);
  CHECK(r->reason == "Loop Detected");
  // Our Via on top (sent to ourselves) is a loop too.
  CHECK(sip::check_request_for_proxy(to_q, p));
  // Without own sent-by values there is no loop check.
  CHECK(!sip::check_request_for_proxy(back, sip::proxy_check_options{}));
  // Another sent-by is not ours: a port differs.
  sip::proxy_check_options other;
  other.own = {{"p.example.com", 5070}};
  CHECK(!sip::check_request_for_proxy(back, other));
}

TEST_CASE("proxy check: a spiral (our sent-by, another Request-URI) is not a loop") {
  sip::proxy_check_options p;
  p.own = {{"P.example.com", 5060}};
  const auto received = invite();
  const auto to_q = forward(received, "sip:bob@example.com",
                            opts("p.example.com", sip::make_proxy_branch(received, 1)));
  // Q retargets bob to his phone and sends it back through P: a spiral.
  const auto spiral =
      forward(to_q, "sip:bob@phone.example.com", opts("q.example.com", "z9hG4bK-q"));
  CHECK(!sip::check_request_for_proxy(spiral, p));
  // The branch over the spiralled request differs, and P would detect a later loop of it.
  CHECK(sip::loop_hash(spiral) != sip::loop_hash(received));
  const auto again = forward(spiral, "sip:bob@phone.example.com",
                             opts("p.example.com", sip::make_proxy_branch(spiral, 2)));
  const auto looped =
      forward(again, "sip:bob@phone.example.com", opts("q.example.com", "z9hG4bK-q2"));
  const auto r = sip::check_request_for_proxy(looped, p);
  REQUIRE(r);
  CHECK(r->status == 482);
}

TEST_CASE("loop_hash covers Call-ID, CSeq, tags, Proxy-Require and the top Via") {
  const auto base = sip::loop_hash(invite());
  CHECK(base.size() == 32);
  CHECK(base == sip::loop_hash(invite()));
  auto m = invite();
  m.set("Call-ID", "other");
  CHECK(sip::loop_hash(m) != base);
  m = invite();
  m.set("CSeq", "2 INVITE");
  CHECK(sip::loop_hash(m) != base);
  m = invite();
  m.set("To", "<sip:bob@example.com>;tag=x");
  CHECK(sip::loop_hash(m) != base);
  m = invite();
  m.set("From", "<sip:alice@example.com>;tag=other");
  CHECK(sip::loop_hash(m) != base);
  CHECK(sip::loop_hash(invite("Proxy-Require: foo\r\n")) != base);
  CHECK(sip::loop_hash(invite("Proxy-Authorization: Digest username=\"a\"\r\n")) != base);
  m = invite();
  m.set("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ua2");
  CHECK(sip::loop_hash(m) != base);
  m = invite();
  m.set("Max-Forwards", "12");  // changes at every hop: not part of it
  CHECK(sip::loop_hash(m) == base);
  const auto b1 = sip::make_proxy_branch(invite(), 1);
  CHECK(sip::is_rfc3261_branch(b1));
  CHECK(b1 != sip::make_proxy_branch(invite(), 2));
}

// ---- 16.4 ----

TEST_CASE("preprocess_route fixes a strict router's Request-URI and removes our Route") {
  const auto is_self = [](const sip::uri& x) { return x.host == "p1.example.com"; };
  // The previous hop was a strict router: our Record-Route URI is the Request-URI.
  auto m = invite(
      "Route: <sip:p2.example.com;lr>\r\n"
      "Route: <sip:bob@192.0.2.4>\r\n",
      "sip:p1.example.com;lr");
  auto r = sip::preprocess_route(m, is_self);
  REQUIRE(r);
  CHECK(*r == sip::route_preprocessing{true, false});
  CHECK(m.request_uri == "sip:bob@192.0.2.4");
  CHECK(values(m, "Route") == std::vector<std::string>{"<sip:p2.example.com;lr>"});

  auto loose = invite("Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n");
  r = sip::preprocess_route(loose, is_self);
  REQUIRE(r);
  CHECK(*r == sip::route_preprocessing{false, true});
  CHECK(loose.request_uri == "sip:bob@example.com");
  CHECK(values(loose, "Route") == std::vector<std::string>{"<sip:p2.example.com;lr>"});

  auto only_ours = invite("Route: <sip:p1.example.com;lr>\r\n");
  r = sip::preprocess_route(only_ours, is_self);
  REQUIRE(r);
  CHECK(!only_ours.find("Route"));

  auto foreign = invite("Route: <sip:p2.example.com;lr>\r\n");
  const auto before = foreign;
  r = sip::preprocess_route(foreign, is_self);
  REQUIRE(r);
  CHECK(*r == sip::route_preprocessing{});
  CHECK(foreign == before);
}

// ---- 16.6 ----

TEST_CASE("prepare_forward: Request-URI, Max-Forwards, Record-Route, Route, Path, Via") {
  auto o = opts("p.example.com", "z9hG4bK-p1");
  o.via_transport = "tcp";
  o.rport = true;
  o.record_route = u("sip:p.example.com");
  o.routes = {u("sip:out1.example.com;lr"), u("sip:out2.example.com;lr")};
  o.path = u("sip:p.example.com;lr");
  const auto m = invite(
      "Record-Route: <sip:earlier.example.com;lr>\r\n"
      "Route: <sip:later.example.com;lr>\r\n",
      "sip:bob@example.com", "REGISTER");
  const auto f = forward(m, "sip:bob@192.0.2.4:5080", o);
  CHECK(f.request_uri == "sip:bob@192.0.2.4:5080");
  CHECK(*sip::max_forwards(f) == std::optional<std::uint8_t>(69));
  CHECK(values(f, "Record-Route") ==
        std::vector<std::string>{"<sip:p.example.com;lr>", "<sip:earlier.example.com;lr>"});
  CHECK(values(f, "Route") == std::vector<std::string>{"<sip:out1.example.com;lr>",
                                                       "<sip:out2.example.com;lr>",
                                                       "<sip:later.example.com;lr>"});
  CHECK(values(f, "Path") == std::vector<std::string>{"<sip:p.example.com;lr>"});
  const auto v = sip::vias(f);
  REQUIRE(v);
  REQUIRE(v->size() == 2);
  CHECK(sip::to_string(v->at(0)) == "SIP/2.0/TCP p.example.com:5060;branch=z9hG4bK-p1;rport");
  CHECK(v->at(1).branch() == "z9hG4bK-ua1");
  CHECK(sip::validate(f));
  CHECK(*sip::next_hop(f) == u("sip:out1.example.com;lr"));
  // The original is untouched, and Max-Forwards appears when absent.
  CHECK(m.request_uri == "sip:bob@example.com");
  auto no_mf = invite();
  no_mf.remove("Max-Forwards");
  CHECK(*sip::max_forwards(forward(no_mf, "sip:bob@192.0.2.4", opts("p", "z9hG4bK-x"))) ==
        std::optional<std::uint8_t>(70));
  CHECK(*sip::next_hop(no_mf) == u("sip:bob@example.com"));
}

TEST_CASE("prepare_forward: a strict next hop becomes the Request-URI (step 6)") {
  const auto m = invite("Route: <sip:strict.example.com>, <sip:p9.example.com;lr>\r\n");
  const auto f = forward(m, "sip:bob@192.0.2.4", opts("p.example.com", "z9hG4bK-s"));
  CHECK(f.request_uri == "sip:strict.example.com");
  CHECK(values(f, "Route") ==
        std::vector<std::string>{"<sip:p9.example.com;lr>", "<sip:bob@192.0.2.4>"});
}

TEST_CASE("top_via_is_ours and remove_top_via for responses going upstream") {
  const auto received = invite();
  const auto f = forward(received, "sip:bob@192.0.2.4", opts("p.example.com", "z9hG4bK-p"));
  auto r = downstream(f, 180);
  CHECK(sip::top_via_is_ours(r, {{"p.example.com", 5060}}));
  CHECK(!sip::top_via_is_ours(r, {{"q.example.com", 5060}}));
  CHECK(sip::remove_top_via(r));
  CHECK(sip::vias(r)->size() == 1);
  CHECK(!sip::top_via_is_ours(r, {{"p.example.com", 5060}}));
}

// ---- 16.7 ----

namespace {
struct ctx_fixture {
  sip::message received = invite();
  sip::message forwarded =
      forward(received, "sip:bob@192.0.2.4", opts("p.example.com", "z9hG4bK-p"));
  sip::response_context ctx{received, {std::chrono::milliseconds(181000), "ptag"}};
};
}  // namespace

TEST_CASE("response context: the best final response table") {
  struct row {
    std::vector<int> statuses;  ///< one branch each, in arrival order; 0 is a timeout
    int expected;
  };
  const std::vector<row> table = {
      {{404}, 404},           {{486, 404}, 486},  // same class: the first received
      {{404, 486}, 404},      {{302, 404}, 302},  // lowest class
      {{500, 404}, 404},      {{404, 302, 500}, 302}, {{603, 302}, 603},  // 6xx wins
      {{404, 600}, 600},      {{486, 407}, 407},  // 4xx that help a resubmission are preferred
      {{480, 484, 401}, 484}, {{486, 415}, 415},      {{486, 420}, 420},
      {{503}, 500},                                                // 503 becomes 500
      {{504, 503}, 504},      {{503, 504}, 500},      {{0}, 408},  // a timeout counts as 408
      {{0, 480}, 408},        {{480, 0}, 480},        {{500, 0}, 408},
  };
  for (const auto& r : table) {
    CAPTURE(r.expected);
    ctx_fixture f;
    for (std::size_t i = 0; i < r.statuses.size(); ++i) REQUIRE(f.ctx.add_branch(i + 1, t0));
    sip::proxy_decision d;
    for (std::size_t i = 0; i < r.statuses.size(); ++i) {
      CHECK(!d.forward);  // nothing before the last branch is final
      d = r.statuses[i] == 0 ? f.ctx.on_timeout(i + 1)
                             : f.ctx.on_response(i + 1, downstream(f.forwarded, r.statuses[i]), t0);
    }
    REQUIRE(d.forward);
    CHECK(d.final);
    CHECK(d.forward->status == r.expected);
    CHECK(f.ctx.final_forwarded());
    CHECK(f.ctx.complete());
    // Our Via is gone from what goes upstream; generated responses carry our tag.
    CHECK(sip::vias(*d.forward)->size() == 1);
    if (r.expected == 408 || (r.expected == 500)) CHECK(sip::to(*d.forward)->tag() == "ptag");
  }
}

TEST_CASE("response context: 401 and 407 challenges are aggregated") {
  ctx_fixture f;
  for (sip::transaction_id i = 1; i <= 4; ++i) f.ctx.add_branch(i, t0);
  f.ctx.on_response(1, downstream(f.forwarded, 401, "WWW-Authenticate: Digest realm=\"a\""), t0);
  f.ctx.on_response(2, downstream(f.forwarded, 486), t0);
  f.ctx.on_response(3, downstream(f.forwarded, 407, "Proxy-Authenticate: Digest realm=\"b\""), t0);
  const auto d = f.ctx.on_response(
      4, downstream(f.forwarded, 401, "WWW-Authenticate: Digest realm=\"c\""), t0);
  REQUIRE(d.forward);
  CHECK(d.forward->status == 401);
  CHECK(values(*d.forward, "WWW-Authenticate") ==
        std::vector<std::string>{"Digest realm=\"a\"", "Digest realm=\"c\""});
  CHECK(values(*d.forward, "Proxy-Authenticate") == std::vector<std::string>{"Digest realm=\"b\""});
}

TEST_CASE("response context: provisional responses go upstream at once, 100 does not") {
  ctx_fixture f;
  f.ctx.add_branch(1, t0);
  f.ctx.add_branch(2, t0);
  auto d = f.ctx.on_response(1, downstream(f.forwarded, 100), t0);
  CHECK(!d.forward);
  d = f.ctx.on_response(1, downstream(f.forwarded, 180), t0);
  REQUIRE(d.forward);
  CHECK(!d.final);
  CHECK(d.forward->status == 180);
  CHECK(sip::vias(*d.forward)->size() == 1);
  CHECK(sip::vias(*d.forward)->at(0).branch() == "z9hG4bK-ua1");
  CHECK(d.cancel.empty());
}

TEST_CASE("response context: a response that lost the upstream Vias gets the request's") {
  // A UA that answers a cancelled INVITE with the CANCEL's single Via (sipp's [last_Via:])
  // leaves only ours: what goes upstream carries the received request's Vias all the same.
  ctx_fixture f;
  f.ctx.add_branch(1, t0);
  auto r = downstream(f.forwarded, 487);
  auto vias = sip::vias(r).value();
  REQUIRE(vias.size() == 2);
  r.remove("Via");
  r.add("Via", sip::to_string(vias.front()));  // ours only
  auto d = f.ctx.on_response(1, r, t0);
  REQUIRE(d.forward);
  CHECK(d.forward->status == 487);
  REQUIRE(sip::vias(*d.forward)->size() == 1);
  CHECK(sip::vias(*d.forward)->at(0).branch() == "z9hG4bK-ua1");
}

TEST_CASE("response context: a 2xx is forwarded at once and the other branches cancelled") {
  ctx_fixture f;
  for (sip::transaction_id i = 1; i <= 3; ++i) f.ctx.add_branch(i, t0);
  f.ctx.on_response(3, downstream(f.forwarded, 404), t0);
  auto d = f.ctx.on_response(2, downstream(f.forwarded, 200), t0);
  REQUIRE(d.forward);
  CHECK(d.final);
  CHECK(d.forward->status == 200);
  CHECK(d.cancel == std::vector<sip::transaction_id>{1});
  CHECK(f.ctx.final_forwarded());
  CHECK(!f.ctx.complete());
  CHECK(!f.ctx.add_branch(4, t0));
  // The cancelled branch's 487 and its provisional stay here; a 2xx (and its retransmission) of
  // an INVITE goes up.
  CHECK(!f.ctx.on_response(1, downstream(f.forwarded, 183), t0).forward);
  d = f.ctx.on_response(2, downstream(f.forwarded, 200), t0);
  REQUIRE(d.forward);
  CHECK(d.cancel.empty());
  CHECK(!f.ctx.on_response(1, downstream(f.forwarded, 487), t0).forward);
  CHECK(f.ctx.complete());
  CHECK(f.ctx.cancel_all().empty());
}

TEST_CASE("response context: non-INVITE sends one final and cancels nothing") {
  const auto received = invite("", "sip:bob@example.com", "MESSAGE");
  const auto fwd = forward(received, "sip:bob@192.0.2.4", opts("p.example.com", "z9hG4bK-m"));
  sip::response_context ctx(received);
  ctx.add_branch(1, t0);
  ctx.add_branch(2, t0);
  CHECK(!ctx.next_deadline());  // no Timer C
  auto d = ctx.on_response(1, downstream(fwd, 200), t0);
  REQUIRE(d.forward);
  CHECK(d.cancel.empty());
  CHECK(!ctx.on_response(2, downstream(fwd, 202), t0).forward);
}

TEST_CASE("response context: a 6xx cancels the others and wins when all are final") {
  ctx_fixture f;
  for (sip::transaction_id i = 1; i <= 3; ++i) f.ctx.add_branch(i, t0);
  f.ctx.on_response(1, downstream(f.forwarded, 180), t0);
  auto d = f.ctx.on_response(2, downstream(f.forwarded, 603), t0);
  CHECK(!d.forward);
  CHECK(d.cancel == std::vector<sip::transaction_id>{1, 3});
  CHECK(!f.ctx.add_branch(4, t0));    // no new branches after a 6xx
  CHECK(f.ctx.cancel_all().empty());  // already cancelled
  CHECK(!f.ctx.on_response(1, downstream(f.forwarded, 487), t0).forward);
  d = f.ctx.on_timeout(3);
  REQUIRE(d.forward);
  CHECK(d.forward->status == 603);
}

TEST_CASE("response context: cancel_all gives the pending branches once") {
  ctx_fixture f;
  for (sip::transaction_id i = 1; i <= 3; ++i) f.ctx.add_branch(i, t0);
  f.ctx.on_response(2, downstream(f.forwarded, 486), t0);
  CHECK(f.ctx.cancel_all() == std::vector<sip::transaction_id>{1, 3});
  CHECK(f.ctx.cancel_all().empty());
  CHECK(!f.ctx.next_deadline());  // Timer C stops for cancelled branches
  f.ctx.on_response(1, downstream(f.forwarded, 487), t0);
  const auto d = f.ctx.on_response(3, downstream(f.forwarded, 487), t0);
  REQUIRE(d.forward);
  CHECK(d.forward->status == 486);
}

TEST_CASE("response context: Timer C is reset by provisionals and cancels or times out") {
  ctx_fixture f;
  f.ctx.add_branch(1, t0);
  f.ctx.add_branch(2, t0 + 1s);
  CHECK(f.ctx.next_deadline() == t0 + 181s);
  f.ctx.on_response(1, downstream(f.forwarded, 180), t0 + 60s);
  CHECK(f.ctx.next_deadline() == t0 + 182s);  // branch 2 now first
  auto d = f.ctx.on_timer(t0 + 181s);
  CHECK(!d.forward);
  CHECK(d.cancel.empty());
  d = f.ctx.on_timer(t0 + 182s);  // branch 2 had no provisional: a 408
  CHECK(d.cancel.empty());
  CHECK(!d.forward);
  CHECK(f.ctx.next_deadline() == t0 + 241s);
  d = f.ctx.on_timer(t0 + 241s);  // branch 1 had a provisional: CANCEL it
  CHECK(d.cancel == std::vector<sip::transaction_id>{1});
  CHECK(!f.ctx.next_deadline());
  d = f.ctx.on_response(1, downstream(f.forwarded, 487), t0 + 242s);
  REQUIRE(d.forward);
  CHECK(d.forward->status == 408);
}

TEST_CASE("response context: Timer C on the last pending branch forwards the best response") {
  ctx_fixture f;
  f.ctx.add_branch(1, t0);
  f.ctx.add_branch(2, t0);
  f.ctx.on_response(1, downstream(f.forwarded, 486), t0);
  const auto d = f.ctx.on_timer(t0 + 181s);
  REQUIRE(d.forward);
  CHECK(d.final);
  CHECK(d.forward->status == 486);
}

// ---- together ----

TEST_CASE("a proxied INVITE through server and client transactions") {
  using layer = sip::transaction_layer;
  sip::timer_settings s;
  s.trying_delay = 0ms;
  layer l(s);
  const sip::sip_target up{1, false};
  const sip::sip_target down{2, false};

  auto received = invite();
  l.on_message(received, up, t0);
  auto actions = l.take_actions();
  REQUIRE(actions.size() == 2);
  const auto server_tx = std::get<layer::request_received>(actions[0]).server_tx;
  CHECK(std::get<layer::send>(actions[1]).msg.status == 100);

  sip::proxy_check_options check;
  check.own = {{"p.example.com", 5060}};
  REQUIRE(!sip::check_request_for_proxy(received, check));
  sip::response_context ctx(received, {std::chrono::milliseconds(181000), "ptag"});
  const auto fwd = forward(received, "sip:bob@192.0.2.4",
                           opts("p.example.com", sip::make_proxy_branch(received, 1)));
  const auto client_tx = l.start_client(fwd, down, t0);
  REQUIRE(client_tx != 0);
  REQUIRE(ctx.add_branch(client_tx, t0));
  CHECK(std::get<layer::send>(l.take_actions().at(0)).target == down);

  // Downstream answers 486: the layer ACKs it, the context sends it up without our Via.
  l.on_message(downstream(fwd, 486), down, t0 + 1s);
  actions = l.take_actions();
  REQUIRE(actions.size() == 2);
  const auto& got = std::get<layer::response_received>(actions[0]);
  CHECK(got.client_tx == client_tx);
  CHECK(std::get<layer::send>(actions[1]).msg.method == "ACK");
  CHECK(std::get<layer::send>(actions[1]).target == down);
  const auto d = ctx.on_response(got.client_tx, got.response, t0 + 1s);
  REQUIRE(d.forward);
  CHECK(l.respond(server_tx, *d.forward, t0 + 1s));
  const auto up_sent = only_send(l.take_actions());
  REQUIRE(up_sent.size() == 1);
  CHECK(up_sent[0].target == up);
  CHECK(up_sent[0].msg.status == 486);
  CHECK(sip::vias(up_sent[0].msg)->at(0).branch() == "z9hG4bK-ua1");
}
