// RFC 3261 section 17 transactions driven with a fake clock: every timer of figures 5 to 8 (and
// RFC 6026 Accepted), matching of retransmissions, ACK and CANCEL, and the helpers (responses,
// CANCEL, Via editing, received/rport and response routing).

#include <doctest/doctest.h>

#include <algorithm>

#include <chrono>
#include <string>
#include <vector>

#include "p2psip/sip/message.hpp"
#include "p2psip/sip/transaction.hpp"

namespace sip = p2psip::sip;
using namespace std::chrono_literals;
using layer = sip::transaction_layer;

namespace {

const sip::time_point t0 = sip::time_point{} + 1000h;
const sip::sip_target udp{7, false};
const sip::sip_target tcp{8, true};

sip::message parse(const std::string& text) {
  auto m = sip::parse_datagram(text);
  if (!m) FAIL("parse failed: " << m.error().status << " " << m.error().reason);
  return *m;
}

/// A request with the given method and top Via branch.
sip::message request(std::string_view method, std::string_view branch, std::uint32_t cseq = 1,
                     std::string_view sent_by = "192.0.2.1:5060", std::string_view to_tag = "",
                     std::string_view request_uri = "sip:bob@example.com") {
  std::string text = std::string(method) + " " + std::string(request_uri) + " SIP/2.0\r\n";
  text += "Via: SIP/2.0/UDP " + std::string(sent_by) + ";branch=" + std::string(branch) + "\r\n";
  text += "Max-Forwards: 70\r\n";
  text += "To: <sip:bob@example.com>" +
          (to_tag.empty() ? std::string() : ";tag=" + std::string(to_tag)) + "\r\n";
  text += "From: <sip:alice@example.com>;tag=fromtag\r\n";
  text += "Call-ID: call-1@192.0.2.1\r\n";
  text += "CSeq: " + std::to_string(cseq) + " " + std::string(method) + "\r\n";
  text += "Content-Length: 0\r\n\r\n";
  return parse(text);
}

sip::message response_to(const sip::message& req, int status) {
  return sip::make_response(req, status, {}, "totag");
}

template <class T>
std::vector<T> only(const std::vector<layer::action>& actions) {
  std::vector<T> out;
  for (const auto& a : actions)
    if (const T* p = std::get_if<T>(&a)) out.push_back(*p);
  return out;
}

long ms(sip::time_point t) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(t - t0).count());
}

/// Runs every timer until none is left, recording when sends, timeouts and terminations happen.
struct timeline {
  std::vector<long> sends;
  std::vector<sip::message> sent;
  std::vector<long> timeouts;
  std::vector<long> terminations;
};
timeline run_timers(layer& l, int max_steps = 1000) {
  timeline out;
  while (auto d = l.next_deadline()) {
    REQUIRE(max_steps-- > 0);
    l.on_timer(*d);
    for (auto& a : l.take_actions()) {
      if (auto* s = std::get_if<layer::send>(&a)) {
        out.sends.push_back(ms(*d));
        out.sent.push_back(s->msg);
      } else if (std::get_if<layer::timed_out>(&a)) {
        out.timeouts.push_back(ms(*d));
      } else if (std::get_if<layer::terminated>(&a)) {
        out.terminations.push_back(ms(*d));
      }
    }
  }
  return out;
}

std::string top_branch(const sip::message& m) {
  auto v = sip::vias(m);
  REQUIRE(v);
  REQUIRE(!v->empty());
  return v->front().branch().value_or("");
}

}  // namespace

// ---- client transactions ----

TEST_CASE("non-INVITE client over UDP retransmits with Timer E capped by T2 and times out with F") {
  layer l;
  const auto req = request("OPTIONS", "z9hG4bK-opt");
  const auto id = l.start_client(req, udp, t0);
  REQUIRE(id != 0);
  auto first = only<layer::send>(l.take_actions());
  REQUIRE(first.size() == 1);
  CHECK(first[0].msg == req);
  CHECK(first[0].target == udp);
  CHECK(first[0].tx == id);
  CHECK(l.state(id) == sip::tx_state::trying);
  CHECK(l.next_deadline() == t0 + 500ms);

  const auto t = run_timers(l);
  CHECK(t.sends ==
        std::vector<long>{500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500});
  for (const auto& m : t.sent) CHECK(m == req);
  CHECK(t.timeouts == std::vector<long>{32000});
  CHECK(t.terminations == std::vector<long>{32000});
  CHECK(!l.state(id));
  const auto s = l.stats();
  CHECK(s.retransmissions == 10);
  CHECK(s.timeouts == 1);
  CHECK(s.client_transactions == 0);
}

TEST_CASE("non-INVITE client over a reliable flow never retransmits") {
  layer l;
  const auto id = l.start_client(request("MESSAGE", "z9hG4bK-msg"), tcp, t0);
  REQUIRE(id != 0);
  CHECK(only<layer::send>(l.take_actions()).size() == 1);
  const auto t = run_timers(l);
  CHECK(t.sends.empty());
  CHECK(t.timeouts == std::vector<long>{32000});
  CHECK(l.stats().retransmissions == 0);
}

TEST_CASE("non-INVITE client Proceeding retransmits every T2 and Completed waits Timer K") {
  layer l;
  const auto req = request("REGISTER", "z9hG4bK-reg");
  const auto id = l.start_client(req, udp, t0);
  l.take_actions();
  l.on_timer(t0 + 500ms);
  CHECK(only<layer::send>(l.take_actions()).size() == 1);
  CHECK(l.next_deadline() == t0 + 1500ms);

  l.on_message(response_to(req, 100), udp, t0 + 600ms);
  auto a = only<layer::response_received>(l.take_actions());
  REQUIRE(a.size() == 1);
  CHECK(a[0].client_tx == id);
  CHECK(a[0].response.status == 100);
  CHECK(l.state(id) == sip::tx_state::proceeding);
  l.on_timer(t0 + 1500ms);
  CHECK(only<layer::send>(l.take_actions()).size() == 1);
  CHECK(l.next_deadline() == t0 + 5500ms);  // reset to T2 in Proceeding

  l.on_message(response_to(req, 200), udp, t0 + 2000ms);
  a = only<layer::response_received>(l.take_actions());
  REQUIRE(a.size() == 1);
  CHECK(a[0].response.status == 200);
  CHECK(l.state(id) == sip::tx_state::completed);
  l.on_message(response_to(req, 200), udp, t0 + 2100ms);  // retransmitted final: absorbed
  CHECK(l.take_actions().empty());
  CHECK(l.next_deadline() == t0 + 7000ms);  // Timer K = T4
  const auto t = run_timers(l);
  CHECK(t.sends.empty());
  CHECK(t.timeouts.empty());
  CHECK(t.terminations == std::vector<long>{7000});
}

TEST_CASE("non-INVITE client over a reliable flow terminates on its final response") {
  layer l;
  const auto req = request("OPTIONS", "z9hG4bK-o2");
  const auto id = l.start_client(req, tcp, t0);
  l.take_actions();
  l.on_message(response_to(req, 404), tcp, t0 + 10ms);
  const auto actions = l.take_actions();
  REQUIRE(actions.size() == 2);
  CHECK(std::get<layer::response_received>(actions[0]).response.status == 404);
  CHECK(std::get<layer::terminated>(actions[1]).tx == id);
  CHECK(!l.next_deadline());
}

TEST_CASE("start_client refuses ACK, a missing cookie and a branch already in use") {
  layer l;
  CHECK(l.start_client(request("ACK", "z9hG4bK-a"), udp, t0) == 0);
  CHECK(l.start_client(request("OPTIONS", "old-branch"), udp, t0) == 0);
  CHECK(l.start_client(request("OPTIONS", "z9hG4bK-dup"), udp, t0) != 0);
  CHECK(l.start_client(request("OPTIONS", "z9hG4bK-dup"), udp, t0) == 0);
  CHECK(only<layer::send>(l.take_actions()).size() == 1);
}

TEST_CASE("INVITE client over UDP doubles Timer A and times out with Timer B") {
  layer l;
  const auto req = request("INVITE", "z9hG4bK-inv");
  const auto id = l.start_client(req, udp, t0);
  l.take_actions();
  CHECK(l.state(id) == sip::tx_state::calling);
  const auto t = run_timers(l);
  CHECK(t.sends == std::vector<long>{500, 1500, 3500, 7500, 15500, 31500});
  CHECK(t.timeouts == std::vector<long>{32000});
  CHECK(t.terminations == std::vector<long>{32000});
}

TEST_CASE("INVITE client ACKs a non-2xx final with the same branch and absorbs retransmissions") {
  layer l;
  const auto req = request("INVITE", "z9hG4bK-inv486", 5);
  const auto id = l.start_client(req, udp, t0);
  l.take_actions();
  l.on_message(response_to(req, 180), udp, t0 + 100ms);
  CHECK(l.state(id) == sip::tx_state::proceeding);
  CHECK(only<layer::response_received>(l.take_actions()).size() == 1);
  CHECK(!l.next_deadline());  // A and B stop in Proceeding

  const auto busy = response_to(req, 486);
  l.on_message(busy, udp, t0 + 1s);
  auto actions = l.take_actions();
  REQUIRE(actions.size() == 2);
  CHECK(std::get<layer::response_received>(actions[0]).response.status == 486);
  const auto ack = std::get<layer::send>(actions[1]);
  CHECK(ack.tx == id);
  CHECK(ack.target == udp);
  CHECK(ack.msg.method == "ACK");
  CHECK(ack.msg.request_uri == req.request_uri);
  CHECK(top_branch(ack.msg) == "z9hG4bK-inv486");
  CHECK(*sip::cseq_of(ack.msg) == sip::cseq{5, "ACK"});
  CHECK(sip::to(ack.msg)->tag() == "totag");
  CHECK(sip::from(ack.msg)->tag() == "fromtag");
  CHECK(*sip::call_id(ack.msg) == "call-1@192.0.2.1");
  CHECK(sip::validate(ack.msg));
  CHECK(l.state(id) == sip::tx_state::completed);

  l.on_message(busy, udp, t0 + 2s);  // retransmitted final: ACK again, not passed up
  actions = l.take_actions();
  REQUIRE(actions.size() == 1);
  CHECK(std::get<layer::send>(actions[0]).msg == ack.msg);
  CHECK(l.stats().absorbed == 1);

  const auto t = run_timers(l);
  CHECK(t.terminations == std::vector<long>{33000});  // Timer D, 32 s
}

TEST_CASE("INVITE client over a reliable flow: Timer D is zero") {
  layer l;
  const auto req = request("INVITE", "z9hG4bK-invtcp");
  const auto id = l.start_client(req, tcp, t0);
  l.take_actions();
  l.on_message(response_to(req, 603), tcp, t0 + 1s);
  const auto actions = l.take_actions();
  REQUIRE(actions.size() == 3);
  CHECK(std::get<layer::send>(actions[1]).msg.method == "ACK");
  CHECK(std::get<layer::terminated>(actions[2]).tx == id);
}

TEST_CASE("INVITE client 2xx moves to Accepted where every 2xx reaches the TU until Timer M") {
  layer l;
  const auto req = request("INVITE", "z9hG4bK-inv200");
  const auto id = l.start_client(req, udp, t0);
  l.take_actions();
  l.on_message(response_to(req, 200), udp, t0 + 1s);
  auto actions = l.take_actions();
  REQUIRE(actions.size() == 1);  // no ACK: the TU acknowledges a 2xx
  CHECK(std::get<layer::response_received>(actions[0]).response.status == 200);
  CHECK(l.state(id) == sip::tx_state::accepted);
  l.on_message(response_to(req, 200), udp, t0 + 2s);
  CHECK(only<layer::response_received>(l.take_actions()).size() == 1);
  l.on_message(response_to(req, 180), udp, t0 + 3s);
  CHECK(l.take_actions().empty());
  const auto t = run_timers(l);
  CHECK(t.sends.empty());
  CHECK(t.terminations == std::vector<long>{33000});
  l.on_message(response_to(req, 200), udp, t0 + 34s);
  CHECK(only<layer::stray_response>(l.take_actions()).size() == 1);
}

TEST_CASE("responses on another flow or with an unknown branch are stray") {
  layer l;
  const auto req = request("OPTIONS", "z9hG4bK-s");
  l.start_client(req, udp, t0);
  l.take_actions();
  l.on_message(response_to(req, 200), sip::sip_target{99, false}, t0 + 1ms);
  auto stray = only<layer::stray_response>(l.take_actions());
  REQUIRE(stray.size() == 1);
  CHECK(stray[0].source.flow == 99);
  l.on_message(response_to(request("OPTIONS", "z9hG4bK-other"), 200), udp, t0 + 2ms);
  CHECK(only<layer::stray_response>(l.take_actions()).size() == 1);
  // The same branch with another CSeq method is another transaction (17.1.3).
  l.on_message(response_to(request("CANCEL", "z9hG4bK-s"), 200), udp, t0 + 3ms);
  CHECK(only<layer::stray_response>(l.take_actions()).size() == 1);
  CHECK(l.stats().stray_responses == 3);

  sip::timer_settings loose;
  loose.match_response_flow = false;
  layer l2(loose);
  l2.start_client(req, udp, t0);
  l2.take_actions();
  l2.on_message(response_to(req, 200), sip::sip_target{99, false}, t0 + 1ms);
  CHECK(only<layer::response_received>(l2.take_actions()).size() == 1);
}

TEST_CASE("transport error terminates the transaction") {
  layer l;
  const auto id = l.start_client(request("OPTIONS", "z9hG4bK-te"), tcp, t0);
  l.take_actions();
  l.on_transport_error(id, t0 + 1ms);
  const auto actions = l.take_actions();
  REQUIRE(actions.size() == 2);
  CHECK(std::get<layer::transport_error>(actions[0]).tx == id);
  CHECK(std::get<layer::terminated>(actions[1]).tx == id);
  CHECK(!l.state(id));
  CHECK(!l.next_deadline());
  l.on_transport_error(id, t0 + 2ms);
  CHECK(l.take_actions().empty());
}

TEST_CASE("a reliable flow that failed fails the client transactions still waiting on it") {
  layer l;
  const sip::sip_target other{9, true};
  const auto waiting = l.start_client(request("INVITE", "z9hG4bK-ff1"), tcp, t0);
  const auto ringing_req = request("INVITE", "z9hG4bK-ff2");
  const auto ringing = l.start_client(ringing_req, tcp, t0);
  const auto done_req = request("OPTIONS", "z9hG4bK-ff3");
  const auto done = l.start_client(done_req, tcp, t0);
  const auto elsewhere = l.start_client(request("OPTIONS", "z9hG4bK-ff4"), other, t0);
  const auto datagram = l.start_client(request("OPTIONS", "z9hG4bK-ff5"), udp, t0);
  l.on_message(response_to(ringing_req, 180), tcp, t0 + 1ms);
  l.on_message(response_to(done_req, 200), tcp, t0 + 1ms);
  l.take_actions();
  REQUIRE(l.state(ringing) == sip::tx_state::proceeding);
  // A 2xx moved `done` on (and, reliable, ended it): nothing left to fail there.
  l.on_flow_failed(tcp.flow, t0 + 2ms);
  std::vector<sip::transaction_id> failed;
  for (const auto& a : l.take_actions()) {
    if (const auto* e = std::get_if<layer::transport_error>(&a)) failed.push_back(e->tx);
  }
  std::sort(failed.begin(), failed.end());
  CHECK(failed == std::vector<sip::transaction_id>{waiting, ringing});
  CHECK(!l.state(waiting));
  CHECK(!l.state(ringing));
  CHECK(l.state(elsewhere));  // another connection
  // A UDP flow "fails" only by being forgotten: its transactions keep their timers.
  l.on_flow_failed(udp.flow, t0 + 3ms);
  CHECK(l.take_actions().empty());
  CHECK(l.state(datagram));
  (void)done;
}

// ---- server transactions ----

TEST_CASE("non-INVITE server absorbs retransmissions, resends its last response, Timer J") {
  layer l;
  const auto req = request("OPTIONS", "z9hG4bK-srv");
  l.on_message(req, udp, t0);
  auto got = only<layer::request_received>(l.take_actions());
  REQUIRE(got.size() == 1);
  const auto id = got[0].server_tx;
  CHECK(got[0].request == req);
  CHECK(got[0].source == udp);
  CHECK(!got[0].cancels);
  CHECK(l.state(id) == sip::tx_state::trying);

  l.on_message(req, udp, t0 + 500ms);  // Trying: absorbed, nothing to resend
  CHECK(l.take_actions().empty());

  const auto ok = response_to(req, 200);
  CHECK(l.respond(id, ok, t0 + 600ms));
  auto sent = only<layer::send>(l.take_actions());
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].msg == ok);
  CHECK(sent[0].target == udp);
  CHECK(l.state(id) == sip::tx_state::completed);
  CHECK(!l.respond(id, response_to(req, 500), t0 + 700ms));  // one final only

  l.on_message(req, udp, t0 + 1s);  // retransmission: the final again
  sent = only<layer::send>(l.take_actions());
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].msg == ok);
  CHECK(l.stats().absorbed == 2);

  const auto t = run_timers(l);
  CHECK(t.terminations == std::vector<long>{32600});  // Timer J = 64*T1
  l.on_message(req, udp, t0 + 33s);                   // after J the request is new again
  CHECK(only<layer::request_received>(l.take_actions()).size() == 1);
}

TEST_CASE("non-INVITE server over a reliable flow: Timer J is zero") {
  layer l;
  const auto req = request("MESSAGE", "z9hG4bK-srvtcp");
  l.on_message(req, tcp, t0);
  const auto id = only<layer::request_received>(l.take_actions()).at(0).server_tx;
  CHECK(l.respond(id, response_to(req, 180), t0));
  CHECK(l.state(id) == sip::tx_state::proceeding);
  l.on_message(req, tcp, t0 + 1ms);  // Proceeding: the provisional again
  auto sent = only<layer::send>(l.take_actions());
  REQUIRE(sent.size() == 2);
  CHECK(sent[1].msg.status == 180);
  CHECK(l.respond(id, response_to(req, 200), t0 + 2ms));
  const auto actions = l.take_actions();
  REQUIRE(actions.size() == 2);
  CHECK(std::get<layer::terminated>(actions[1]).tx == id);
  CHECK(l.stats().server_transactions == 0);
}

TEST_CASE("INVITE server sends 100 Trying at 200 ms when the TU is silent") {
  layer l;
  const auto req = request("INVITE", "z9hG4bK-i1");
  l.on_message(req, udp, t0);
  const auto id = only<layer::request_received>(l.take_actions()).at(0).server_tx;
  CHECK(l.state(id) == sip::tx_state::proceeding);
  CHECK(l.next_deadline() == t0 + 200ms);
  l.on_timer(t0 + 199ms);
  CHECK(l.take_actions().empty());
  l.on_timer(t0 + 200ms);
  auto sent = only<layer::send>(l.take_actions());
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].msg.status == 100);
  CHECK(sent[0].msg.reason == "Trying");
  CHECK(!sip::to(sent[0].msg)->tag());
  CHECK(*sip::cseq_of(sent[0].msg) == sip::cseq{1, "INVITE"});
  CHECK(!l.next_deadline());
  l.on_message(req, udp, t0 + 500ms);  // retransmitted INVITE: the 100 again
  sent = only<layer::send>(l.take_actions());
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].msg.status == 100);
}

TEST_CASE("INVITE server sends no 100 when the TU answers within 200 ms") {
  layer l;
  const auto req = request("INVITE", "z9hG4bK-i2");
  l.on_message(req, udp, t0);
  const auto id = only<layer::request_received>(l.take_actions()).at(0).server_tx;
  CHECK(l.respond(id, response_to(req, 180), t0 + 50ms));
  CHECK(only<layer::send>(l.take_actions()).size() == 1);
  l.on_timer(t0 + 1s);
  CHECK(l.take_actions().empty());

  sip::timer_settings proxy_like;
  proxy_like.trying_delay = 0ms;
  layer p(proxy_like);
  p.on_message(req, udp, t0);
  const auto actions = p.take_actions();
  REQUIRE(actions.size() == 2);
  CHECK(std::get<layer::send>(actions[1]).msg.status == 100);
}

TEST_CASE("INVITE server retransmits a non-2xx final with Timer G until the ACK, then Timer I") {
  layer l;
  const auto req = request("INVITE", "z9hG4bK-i3");
  l.on_message(req, udp, t0);
  const auto id = only<layer::request_received>(l.take_actions()).at(0).server_tx;
  const auto busy = response_to(req, 486);
  CHECK(l.respond(id, busy, t0 + 100ms));
  CHECK(only<layer::send>(l.take_actions()).size() == 1);
  CHECK(l.state(id) == sip::tx_state::completed);

  // G: 500 ms, 1 s, 2 s, 4 s, 4 s after the final (sent at 100 ms).
  for (long at : {600L, 1600L, 3600L, 7600L, 11600L}) {
    CHECK(l.next_deadline() == t0 + std::chrono::milliseconds(at));
    l.on_timer(t0 + std::chrono::milliseconds(at));
    auto sent = only<layer::send>(l.take_actions());
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].msg == busy);
  }
  l.on_message(req, udp, t0 + 12s);  // retransmitted INVITE in Completed: the final again
  CHECK(only<layer::send>(l.take_actions()).size() == 1);

  auto ack = request("ACK", "z9hG4bK-i3", 1, "192.0.2.1:5060", "totag");
  l.on_message(ack, udp, t0 + 13s);
  CHECK(l.take_actions().empty());  // absorbed, not passed up
  CHECK(l.state(id) == sip::tx_state::confirmed);
  l.on_message(ack, udp, t0 + 14s);
  CHECK(l.take_actions().empty());
  const auto t = run_timers(l);
  CHECK(t.sends.empty());
  CHECK(t.timeouts.empty());
  CHECK(t.terminations == std::vector<long>{18000});  // Timer I = T4 after the ACK
}

TEST_CASE("INVITE server Timer H fires when no ACK arrives") {
  layer l;
  const auto req = request("INVITE", "z9hG4bK-i4");
  l.on_message(req, udp, t0);
  const auto id = only<layer::request_received>(l.take_actions()).at(0).server_tx;
  CHECK(l.respond(id, response_to(req, 404), t0));
  l.take_actions();
  const auto t = run_timers(l);
  CHECK(t.sends ==
        std::vector<long>{500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500});
  CHECK(t.timeouts == std::vector<long>{32000});
  CHECK(t.terminations == std::vector<long>{32000});
  CHECK(l.stats().timeouts == 1);
}

TEST_CASE("INVITE server over a reliable flow: no G, and Timer I is zero") {
  layer l;
  const auto req = request("INVITE", "z9hG4bK-i5");
  l.on_message(req, tcp, t0);
  const auto id = only<layer::request_received>(l.take_actions()).at(0).server_tx;
  CHECK(l.respond(id, response_to(req, 480), t0));
  l.take_actions();
  CHECK(l.next_deadline() == t0 + 32s);  // only H
  l.on_message(request("ACK", "z9hG4bK-i5", 1, "192.0.2.1:5060", "totag"), tcp, t0 + 1s);
  const auto actions = l.take_actions();
  REQUIRE(actions.size() == 1);
  CHECK(std::get<layer::terminated>(actions[0]).tx == id);
}

TEST_CASE("INVITE server 2xx moves to Accepted: retransmitted INVITE absorbed, Timer L") {
  layer l;
  const auto req = request("INVITE", "z9hG4bK-i6");
  l.on_message(req, udp, t0);
  const auto id = only<layer::request_received>(l.take_actions()).at(0).server_tx;
  CHECK(l.respond(id, response_to(req, 200), t0 + 1s));
  CHECK(only<layer::send>(l.take_actions()).size() == 1);
  CHECK(l.state(id) == sip::tx_state::accepted);
  l.on_message(req, udp, t0 + 2s);
  CHECK(l.take_actions().empty());                       // not a new request (RFC 6026)
  CHECK(l.respond(id, response_to(req, 200), t0 + 3s));  // 2xx retransmission by the TU
  CHECK(only<layer::send>(l.take_actions()).size() == 1);
  CHECK(!l.respond(id, response_to(req, 486), t0 + 3s));

  // The ACK for a 2xx has its own branch: passed to the TU.
  l.on_message(request("ACK", "z9hG4bK-ack2xx", 1, "192.0.2.1:5060", "totag"), udp, t0 + 4s);
  auto acks = only<layer::ack_received>(l.take_actions());
  REQUIRE(acks.size() == 1);
  CHECK(!acks[0].server_tx);
  CHECK(acks[0].source == udp);

  const auto t = run_timers(l);
  CHECK(t.terminations == std::vector<long>{33000});
}

TEST_CASE("server transactions match on branch, sent-by and method") {
  layer l;
  l.on_message(request("INVITE", "z9hG4bK-m"), udp, t0);
  l.on_message(request("INVITE", "z9hG4bK-m", 1, "192.0.2.2:5060"), udp, t0);  // other sent-by
  l.on_message(request("INVITE", "z9hG4bK-m", 1, "192.0.2.1"), udp, t0);       // no port: other
  l.on_message(request("OPTIONS", "z9hG4bK-m"), udp, t0);                      // other method
  l.on_message(request("INVITE", "z9hG4bK-M"), udp, t0);                       // case of branch
  CHECK(only<layer::request_received>(l.take_actions()).size() == 5);
  l.on_message(request("INVITE", "z9hG4bK-m", 1, "192.0.2.1:5060"), udp, t0);
  CHECK(only<layer::request_received>(l.take_actions()).empty());
}

TEST_CASE("CANCEL has its own server transaction and names the INVITE it cancels") {
  layer l;
  const auto invite = request("INVITE", "z9hG4bK-c1");
  l.on_message(invite, udp, t0);
  const auto invite_tx = only<layer::request_received>(l.take_actions()).at(0).server_tx;
  const auto cancel = sip::make_cancel(invite);
  l.on_message(cancel, udp, t0 + 1s);
  auto got = only<layer::request_received>(l.take_actions());
  REQUIRE(got.size() == 1);
  CHECK(got[0].server_tx != invite_tx);
  CHECK(got[0].cancels == invite_tx);
  CHECK(l.respond(got[0].server_tx, response_to(cancel, 200), t0 + 1s));
  CHECK(l.respond(invite_tx, response_to(invite, 487), t0 + 1s));
  CHECK(l.state(invite_tx) == sip::tx_state::completed);

  // A CANCEL for no INVITE still gets a transaction (the TU answers 481).
  l.on_message(sip::make_cancel(request("INVITE", "z9hG4bK-none")), udp, t0 + 2s);
  got = only<layer::request_received>(l.take_actions());
  REQUIRE(got.size() == 1);
  CHECK(!got[0].cancels);
}

TEST_CASE("client CANCEL waits for a provisional response and uses the INVITE branch") {
  layer l;
  const auto invite = request("INVITE", "z9hG4bK-c2", 3);
  const auto id = l.start_client(invite, udp, t0);
  l.take_actions();
  const auto cancel_id = l.cancel(id, t0 + 100ms);
  REQUIRE(cancel_id != 0);
  CHECK(cancel_id != id);
  CHECK(l.cancel(id, t0 + 150ms) == cancel_id);
  CHECK(l.take_actions().empty());  // nothing before a provisional (9.1)
  CHECK(!l.state(cancel_id));

  l.on_message(response_to(invite, 180), udp, t0 + 200ms);
  auto actions = l.take_actions();
  REQUIRE(actions.size() == 2);
  CHECK(std::get<layer::response_received>(actions[0]).client_tx == id);
  const auto c = std::get<layer::send>(actions[1]);
  CHECK(c.tx == cancel_id);
  CHECK(c.msg.method == "CANCEL");
  CHECK(c.msg.request_uri == invite.request_uri);
  CHECK(top_branch(c.msg) == "z9hG4bK-c2");
  CHECK(*sip::cseq_of(c.msg) == sip::cseq{3, "CANCEL"});
  CHECK(sip::validate(c.msg));
  CHECK(l.state(cancel_id) == sip::tx_state::trying);

  l.on_message(response_to(c.msg, 200), udp, t0 + 300ms);
  auto got = only<layer::response_received>(l.take_actions());
  REQUIRE(got.size() == 1);
  CHECK(got[0].client_tx == cancel_id);
  l.on_message(response_to(invite, 487), udp, t0 + 400ms);
  actions = l.take_actions();
  REQUIRE(actions.size() == 2);
  CHECK(std::get<layer::response_received>(actions[0]).client_tx == id);
  CHECK(std::get<layer::send>(actions[1]).msg.method == "ACK");
}

TEST_CASE("client CANCEL is dropped when the final response comes first") {
  layer l;
  const auto invite = request("INVITE", "z9hG4bK-c3");
  const auto id = l.start_client(invite, udp, t0);
  l.take_actions();
  const auto cancel_id = l.cancel(id, t0);
  l.on_message(response_to(invite, 486), udp, t0 + 1s);
  const auto actions = l.take_actions();
  REQUIRE(actions.size() == 3);
  CHECK(std::get<layer::send>(actions[1]).msg.method == "ACK");
  CHECK(std::get<layer::terminated>(actions[2]).tx == cancel_id);
  CHECK(l.cancel(id, t0 + 2s) == cancel_id);  // already asked; nothing more
  CHECK(l.take_actions().empty());
}

TEST_CASE("INVITE client gives up 64*T1 after its CANCEL without a final response") {
  layer l;
  const auto invite = request("INVITE", "z9hG4bK-c4");
  const auto id = l.start_client(invite, tcp, t0);
  l.on_message(response_to(invite, 183), tcp, t0 + 1s);
  l.take_actions();
  const auto cancel_id = l.cancel(id, t0 + 10s);
  REQUIRE(cancel_id != 0);
  const auto cancel = only<layer::send>(l.take_actions()).at(0).msg;
  l.on_message(response_to(cancel, 200), tcp, t0 + 11s);
  l.take_actions();
  l.on_timer(t0 + 41s);
  CHECK(l.take_actions().empty());
  l.on_timer(t0 + 42s);
  const auto actions = l.take_actions();
  REQUIRE(actions.size() == 2);
  CHECK(std::get<layer::timed_out>(actions[0]).tx == id);
  CHECK(std::get<layer::terminated>(actions[1]).tx == id);
}

TEST_CASE("RFC 2543 requests are matched on Request-URI, tags, Call-ID, CSeq and Via") {
  layer l;
  const auto req = request("INVITE", "2543-branch", 1, "192.0.2.1:5060");
  l.on_message(req, udp, t0);
  const auto id = only<layer::request_received>(l.take_actions()).at(0).server_tx;
  l.on_message(req, udp, t0 + 100ms);  // retransmission
  CHECK(l.take_actions().empty());
  l.on_message(request("INVITE", "2543-branch", 2), udp, t0 + 100ms);  // new CSeq: new
  CHECK(only<layer::request_received>(l.take_actions()).size() == 1);

  CHECK(l.respond(id, response_to(req, 486), t0 + 200ms));
  l.take_actions();
  // The ACK must carry the To tag of the response.
  l.on_message(request("ACK", "2543-branch", 1, "192.0.2.1:5060", "othertag"), udp, t0 + 300ms);
  CHECK(only<layer::ack_received>(l.take_actions()).size() == 1);
  CHECK(l.state(id) == sip::tx_state::completed);
  l.on_message(request("ACK", "2543-branch", 1, "192.0.2.1:5060", "totag"), udp, t0 + 300ms);
  CHECK(l.take_actions().empty());
  CHECK(l.state(id) == sip::tx_state::confirmed);
}

TEST_CASE("server transactions over the limit get a stateless 503") {
  sip::timer_settings s;
  s.max_server_transactions = 1;
  layer l(s);
  l.on_message(request("OPTIONS", "z9hG4bK-l1"), udp, t0);
  CHECK(only<layer::request_received>(l.take_actions()).size() == 1);
  l.on_message(request("OPTIONS", "z9hG4bK-l2"), udp, t0);
  const auto actions = l.take_actions();
  REQUIRE(actions.size() == 1);
  const auto& r = std::get<layer::send>(actions[0]);
  CHECK(r.msg.status == 503);
  CHECK(r.tx == 0);
  CHECK(l.stats().overload_rejections == 1);
  CHECK(l.stats().server_transactions == 1);
}

// ---- helpers ----

TEST_CASE("make_branch is unique and carries the magic cookie") {
  const auto a = sip::make_branch(42);
  const auto b = sip::make_branch(42);
  CHECK(a != b);
  CHECK(sip::is_rfc3261_branch(a));
  CHECK(a.starts_with("z9hG4bK"));
}

TEST_CASE("make_response copies Via, From, To, Call-ID, CSeq and adds the To tag") {
  auto req = parse(
      "INVITE sip:bob@example.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK-p1, SIP/2.0/UDP "
      "192.0.2.1;branch=z9hG4bK-a\r\n"
      "Via: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bK-b\r\n"
      "Max-Forwards: 69\r\n"
      "To: Bob <sip:bob@example.com>\r\n"
      "From: <sip:alice@example.com>;tag=ft\r\n"
      "Call-ID: c1\r\n"
      "CSeq: 9 INVITE\r\n"
      "Timestamp: 54\r\n"
      "Contact: <sip:alice@192.0.2.1>\r\n"
      "Content-Length: 0\r\n\r\n");
  const auto r = sip::make_response(req, 486, {}, "tt");
  CHECK(r.status == 486);
  CHECK(r.reason == "Busy Here");
  CHECK(sip::validate(r));
  CHECK(sip::serialize(r) ==
        "SIP/2.0 486 Busy Here\r\n"
        "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK-p1, SIP/2.0/UDP "
        "192.0.2.1;branch=z9hG4bK-a\r\n"
        "Via: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bK-b\r\n"
        "To: Bob <sip:bob@example.com>;tag=tt\r\n"
        "From: <sip:alice@example.com>;tag=ft\r\n"
        "Call-ID: c1\r\n"
        "CSeq: 9 INVITE\r\n"
        "Content-Length: 0\r\n\r\n");
  const auto trying = sip::make_response(req, 100, {}, "tt");
  CHECK(!sip::to(trying)->tag());
  CHECK(trying.find("Timestamp"));
  CHECK(sip::make_response(req, 299, "Custom").reason == "Custom");
  // An existing To tag is kept.
  CHECK(sip::to(sip::make_response(response_to(req, 200), 200, {}, "x"))->tag() == "totag");
}

TEST_CASE("Via editing keeps the other values as written") {
  auto m = parse(
      "OPTIONS sip:b@example.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK-1, SIP/2.0/UDP "
      "b.example.com;branch=z9hG4bK-2\r\n"
      "Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK-3\r\n"
      "To: <sip:b@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\nCall-ID: x\r\n"
      "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
  CHECK(sip::remove_top_via(m));
  auto v = sip::vias(m);
  REQUIRE(v);
  REQUIRE(v->size() == 2);
  CHECK((*v)[0].host == "b.example.com");
  auto top = (*v)[0];
  top.host = "d.example.com";
  CHECK(sip::replace_top_via(m, top));
  CHECK(sip::vias(m)->at(0).host == "d.example.com");
  CHECK(sip::vias(m)->at(1).host == "c.example.com");
  sip::via ours{"SIP", "2.0", "TCP", "proxy.example.com", 5070, {{"branch", "z9hG4bK-p", true}}};
  sip::push_via(m, ours);
  CHECK(sip::vias(m)->at(0) == ours);
  CHECK(sip::vias(m)->size() == 3);
  CHECK(sip::remove_top_via(m));
  CHECK(sip::remove_top_via(m));
  CHECK(sip::remove_top_via(m));
  CHECK(!sip::remove_top_via(m));
}

TEST_CASE("stamp_received adds received and fills rport per RFC 3581") {
  auto with_rport = request("OPTIONS", "z9hG4bK-r");
  with_rport.set("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-r;rport");
  CHECK(sip::stamp_received(with_rport, "198.51.100.7", 40000));
  auto v = sip::vias(with_rport)->at(0);
  CHECK(v.received() == "198.51.100.7");
  CHECK(v.rport() == std::optional<std::optional<std::uint16_t>>(40000));
  auto dest = sip::response_destination(sip::make_response(with_rport, 200));
  REQUIRE(dest);
  CHECK(*dest == sip::response_address{"198.51.100.7", 40000, "UDP"});

  // rport forces received= even when sent-by is the source address.
  auto same = request("OPTIONS", "z9hG4bK-r2");
  same.set("Via", "SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK-r2;rport");
  CHECK(sip::stamp_received(same, "192.0.2.1", 5062));
  CHECK(sip::vias(same)->at(0).received() == "192.0.2.1");

  // Without rport: received only when the host differs; the port of sent-by is used.
  auto plain = request("OPTIONS", "z9hG4bK-r3", 1, "192.0.2.1:5070");
  CHECK(sip::stamp_received(plain, "192.0.2.1", 9999));
  CHECK(!sip::vias(plain)->at(0).received());
  CHECK(!sip::vias(plain)->at(0).rport());
  CHECK(*sip::response_destination(plain) == sip::response_address{"192.0.2.1", 5070, "UDP"});
  auto named = request("OPTIONS", "z9hG4bK-r4", 1, "pc33.example.com");
  CHECK(sip::stamp_received(named, "[2001:db8::5]", 9999));
  CHECK(sip::vias(named)->at(0).received() == "2001:db8::5");
  CHECK(*sip::response_destination(named) == sip::response_address{"2001:db8::5", 5060, "UDP"});

  // Defaults: 5061 for TLS; maddr wins.
  auto tls = request("OPTIONS", "z9hG4bK-r5");
  tls.set("Via", "SIP/2.0/TLS [2001:db8::1];branch=z9hG4bK-r5");
  CHECK(*sip::response_destination(tls) == sip::response_address{"2001:db8::1", 5061, "TLS"});
  auto maddr = request("OPTIONS", "z9hG4bK-r6");
  maddr.set("Via",
            "SIP/2.0/UDP h.example.com:5080;branch=z9hG4bK-r6;maddr=239.1.1.1;received=1.2.3.4");
  CHECK(*sip::response_destination(maddr) == sip::response_address{"239.1.1.1", 5080, "UDP"});
  sip::message none;
  CHECK(!sip::stamp_received(none, "1.2.3.4", 1));
  CHECK(!sip::response_destination(none));
}
