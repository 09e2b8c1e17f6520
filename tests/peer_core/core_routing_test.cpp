// One overlay_core driven by hand: messages in on links, send actions checked (RFC 6940 6.1,
// 6.2, 10.3). The core is peer 0x10 with peers 0x05, 0x30, 0x80, 0xC0 and a client 0x50.
#include <doctest/doctest.h>

#include "sim_network.hpp"

namespace pr = p2psip::protocol;
namespace peer = p2psip::peer;
using namespace p2psip::sim;

namespace {

struct single_core {
  fake_signer signer{id_at(0x10)};
  memory_storage storage;
  seeded_random rng{7};
  peer::overlay_core core;
  time_point now = time_point{} + std::chrono::hours(24 * 365 * 50);
  std::map<std::uint8_t, peer::link_id> link_of;

  single_core()
      : core(sim_network::default_config(id_at(0x10), peer::node_role::first_peer), signer,
             &storage, rng) {
    core.start(now);
    std::uint64_t l = 1;
    for (std::uint8_t b : {std::uint8_t{0x05}, std::uint8_t{0x30}, std::uint8_t{0x80},
                           std::uint8_t{0xC0}, std::uint8_t{0x50}}) {
      link_of[b] = peer::link_id{l++};
      core.on_link_up(link_of[b], id_at(b), now);
    }
    // Every one but the client says it is a peer.
    for (std::uint8_t b :
         {std::uint8_t{0x05}, std::uint8_t{0x30}, std::uint8_t{0x80}, std::uint8_t{0xC0}}) {
      pr::update_req u;
      u.type = pr::chord_update_type::neighbors;
      feed(b, make(b, {pr::to_destination(id_at(0x10))}, u));
    }
    (void)core.take_actions();
  }

  pr::message make(std::uint8_t from, std::vector<pr::destination> dest,
                   const pr::message_body& body, std::uint64_t tx = 42) {
    pr::message m;
    m.header.overlay = core.config().overlay;
    m.header.ttl = 100;
    m.header.transaction_id = tx;
    m.header.destination_list = std::move(dest);
    m.contents.code = pr::code_of(body);
    m.contents.body = *pr::encode_body(body);
    fake_signer(id_at(from)).sign(m);
    return m;
  }
  void feed(std::uint8_t link_owner, const pr::message& m) {
    auto bytes = pr::encode_message(m, pr::limits{});
    REQUIRE(bytes);
    core.on_message(link_of.at(link_owner), *bytes, now);
  }
  /// The messages sent, decoded, with their links.
  std::vector<std::pair<peer::link_id, pr::message>> sent() {
    std::vector<std::pair<peer::link_id, pr::message>> out;
    for (auto& a : core.take_actions()) {
      if (auto* s = std::get_if<peer::send_action>(&a)) {
        auto m = pr::decode_message(s->data, pr::limits{});
        REQUIRE(m);
        out.emplace_back(s->link, *m);
      }
    }
    return out;
  }
  /// The messages sent as bytes (a link hands these back when its other end never took them).
  std::vector<std::pair<peer::link_id, pr::bytes>> sent_bytes() {
    std::vector<std::pair<peer::link_id, pr::bytes>> out;
    for (auto& a : core.take_actions()) {
      if (auto* s = std::get_if<peer::send_action>(&a)) out.emplace_back(s->link, s->data);
    }
    return out;
  }
  /// Outcomes of the requests sent by request_of_ours, in order.
  std::vector<p2psip::node::outcome> outcomes;
  /// A Ping of the core's own towards `dest`; its outcome lands in `outcomes`.
  std::uint64_t request_of_ours(std::vector<pr::destination> dest) {
    auto tx = core.send_request(
        std::move(dest), pr::ping_req{},
        [this](p2psip::node::outcome&& o, time_point) { outcomes.push_back(std::move(o)); }, now);
    REQUIRE(tx);
    return *tx;
  }
  static pr::resource_id res(std::uint8_t top) {
    return pr::resource_id{pr::to_bytes(id_at(top, 1).view())};
  }
};

std::uint16_t error_code_of(const pr::message& m) {
  REQUIRE(m.contents.code == pr::codes::error);
  auto b = pr::decode_body(m.contents.code, m.contents.body, pr::limits{});
  REQUIRE(b);
  return std::get<pr::error_response>(*b).error_code;
}

}  // namespace

TEST_CASE("core: clients stay out of the routing table") {
  single_core s;
  CHECK(s.core.routes().contains(id_at(0x30)));
  CHECK_FALSE(s.core.routes().contains(id_at(0x50)));
  CHECK(s.core.routes().successors().front() == id_at(0x30));
  CHECK(s.core.routes().predecessors().front() == id_at(0x05));
}

TEST_CASE("core: greedy forwarding appends the previous hop to the via list") {
  single_core s;
  s.feed(0x05, s.make(0x05, {pr::to_destination(single_core::res(0x90))}, pr::ping_req{}));
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x80]);
  CHECK(out[0].second.header.ttl == 99);
  REQUIRE(out[0].second.header.via_list.size() == 1);
  CHECK(*out[0].second.header.via_list[0].node() == id_at(0x05));
  CHECK(s.core.stats().forwarded == 1);
}

TEST_CASE("core: no peer in (self, k) -> smallest Node-ID greater than k, wrap-around") {
  single_core s;
  s.feed(0x05, s.make(0x05, {pr::to_destination(single_core::res(0x20))}, pr::ping_req{}));
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x30]);
  s.feed(0x30, s.make(0x30, {pr::to_destination(single_core::res(0x02))}, pr::ping_req{}));
  out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0xC0]);
}

TEST_CASE("core: a Resource-ID it is responsible for is answered locally") {
  single_core s;
  s.feed(0x30, s.make(0x30, {pr::to_destination(single_core::res(0x08))}, pr::ping_req{}, 77));
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x30]);
  CHECK(out[0].second.contents.code == pr::codes::ping_ans);
  CHECK(out[0].second.header.transaction_id == 77);
  REQUIRE(out[0].second.header.destination_list.size() == 1);
  CHECK(*out[0].second.header.destination_list[0].node() == id_at(0x30));
}

TEST_CASE("core: the answer's destination is the previous hop then the reversed via list") {
  single_core s;
  auto m = s.make(0x9A, {pr::to_destination(id_at(0x10))}, pr::ping_req{});
  m.header.via_list = {pr::to_destination(id_at(0x9A)), pr::to_destination(id_at(0xA0))};
  s.feed(0x80, m);
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x80]);
  const auto& d = out[0].second.header.destination_list;
  REQUIRE(d.size() == 3);
  CHECK(*d[0].node() == id_at(0x80));
  CHECK(*d[1].node() == id_at(0xA0));
  CHECK(*d[2].node() == id_at(0x9A));
}

TEST_CASE("core: a directly connected client is reached on its link, its answer goes back") {
  single_core s;
  s.feed(0x05, s.make(0x05, {pr::to_destination(id_at(0x50))}, pr::ping_req{}, 9));
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x50]);
  // The client answers with destination [us, 0x05].
  s.feed(0x50, s.make(0x50, {pr::to_destination(id_at(0x10)), pr::to_destination(id_at(0x05))},
                      pr::ping_ans{1, 2}, 9));
  out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x05]);
  CHECK(out[0].second.contents.code == pr::codes::ping_ans);
  CHECK(out[0].second.header.via_list.empty());
}

TEST_CASE("core: TTL 0 on a message to forward, and TTL above initial-ttl") {
  single_core s;
  auto m = s.make(0x05, {pr::to_destination(single_core::res(0x90))}, pr::ping_req{});
  m.header.ttl = 0;
  s.feed(0x05, m);
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x05]);
  CHECK(error_code_of(out[0].second) == static_cast<std::uint16_t>(pr::reload_errc::ttl_exceeded));
  m.header.ttl = 101;
  s.feed(0x05, m);
  out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(error_code_of(out[0].second) == static_cast<std::uint16_t>(pr::reload_errc::ttl_exceeded));
  // A response with a bad TTL is dropped, never answered.
  auto r = s.make(0x05, {pr::to_destination(id_at(0x30))}, pr::ping_ans{}, 5);
  r.header.ttl = 0;
  s.feed(0x05, r);
  CHECK(s.sent().empty());
}

TEST_CASE("core: loop (own Node-ID in the via list) and duplicate destinations") {
  single_core s;
  auto m = s.make(0x05, {pr::to_destination(single_core::res(0x90))}, pr::ping_req{});
  m.header.via_list = {pr::to_destination(id_at(0x10))};
  s.feed(0x05, m);
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(error_code_of(out[0].second) ==
        static_cast<std::uint16_t>(pr::reload_errc::invalid_message));
  auto d = s.make(0x05, {pr::to_destination(id_at(0x80)), pr::to_destination(id_at(0x80))},
                  pr::ping_req{});
  s.feed(0x05, d);
  out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(error_code_of(out[0].second) ==
        static_cast<std::uint16_t>(pr::reload_errc::invalid_message));
}

TEST_CASE("core: own Node-ID first in the destination list is popped") {
  single_core s;
  s.feed(0x05, s.make(0x05, {pr::to_destination(id_at(0x10)), pr::to_destination(id_at(0x50))},
                      pr::ping_req{}));
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x50]);
  REQUIRE(out[0].second.header.destination_list.size() == 1);
}

TEST_CASE("core: unknown forward-critical option -> Error_Unsupported_Forwarding_Option") {
  single_core s;
  auto m = s.make(0x05, {pr::to_destination(single_core::res(0x90))}, pr::ping_req{});
  m.header.options.push_back(pr::forwarding_option{9, pr::option_flags::forward_critical, {}});
  s.feed(0x05, m);
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(error_code_of(out[0].second) ==
        static_cast<std::uint16_t>(pr::reload_errc::unsupported_forwarding_option));
  // A non-critical unknown option is forwarded untouched.
  m.header.options[0].flags = 0;
  s.feed(0x05, m);
  out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x80]);
}

TEST_CASE("core: a message that grows past max-message-size -> Error_Message_Too_Large") {
  single_core s;
  pr::ping_req big;
  big.padding.assign(4970 - 80, 0xAB);
  auto m = s.make(0x05, {pr::to_destination(single_core::res(0x90))}, big);
  auto bytes = pr::encode_message(m, pr::limits{});
  REQUIRE(bytes);
  REQUIRE(bytes->size() <= 5000);
  REQUIRE(bytes->size() + 18 > 5000);
  s.core.on_message(s.link_of[0x05], *bytes, s.now);
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x05]);
  CHECK(error_code_of(out[0].second) ==
        static_cast<std::uint16_t>(pr::reload_errc::message_too_large));
}

TEST_CASE("core: bad signature is dropped silently") {
  single_core s;
  s.signer.reject_all = true;
  s.feed(0x30, s.make(0x30, {pr::to_destination(id_at(0x10))}, pr::ping_req{}));
  CHECK(s.sent().empty());
  CHECK(s.core.stats().dropped == 1);
}

TEST_CASE("core: malformed messages are counted and the link is closed after N") {
  single_core s;
  const pr::bytes junk{1, 2, 3, 4, 5};
  for (unsigned i = 0; i < s.core.config().max_malformed_per_link; ++i) {
    s.core.on_message(s.link_of[0x50], junk, s.now);
  }
  bool closed = false;
  for (auto& a : s.core.take_actions()) {
    if (auto* c = std::get_if<peer::close_link_action>(&a)) closed = c->link == s.link_of[0x50];
  }
  CHECK(closed);
  CHECK(s.core.connections().at(s.link_of[0x50]).malformed ==
        s.core.config().max_malformed_per_link);
}

TEST_CASE("core: answers that do not match (transaction id, link) are dropped") {
  single_core s;
  const auto tx = s.request_of_ours({pr::to_destination(single_core::res(0x90))});
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x80]);
  // Same transaction id on another link: dropped.
  s.feed(0x30, s.make(0x30, {pr::to_destination(id_at(0x10))}, pr::ping_ans{}, tx));
  (void)s.core.take_actions();
  CHECK(s.outcomes.empty());
  // On the right link: its completion runs once, with the decoded answer and its signer.
  s.feed(0x80, s.make(0x80, {pr::to_destination(id_at(0x10))}, pr::ping_ans{}, tx));
  (void)s.core.take_actions();
  REQUIRE(s.outcomes.size() == 1);
  CHECK(s.outcomes[0].what == p2psip::node::outcome::kind::answer);
  CHECK(std::holds_alternative<pr::ping_ans>(s.outcomes[0].body));
  REQUIRE(s.outcomes[0].signer);
  CHECK(s.outcomes[0].signer->node == id_at(0x80));
}

// A route value [this peer, client] (RFC 7904: a client attached here, RFC 6940 4.2.1) given to
// our own request: it goes on the client's link without our entry, and the client's answer on
// that link completes it (once it waited under the local link and the answer was dropped).
TEST_CASE("core: a request of ours to [self, client] goes on the client's link and completes") {
  single_core s;
  const auto tx =
      s.request_of_ours({pr::to_destination(id_at(0x10)), pr::to_destination(id_at(0x50))});
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x50]);
  REQUIRE(out[0].second.header.destination_list.size() == 1);
  CHECK(*out[0].second.header.destination_list[0].node() == id_at(0x50));
  CHECK(out[0].second.header.via_list.empty());
  s.feed(0x50, s.make(0x50, {pr::to_destination(id_at(0x10))}, pr::ping_ans{}, tx));
  (void)s.core.take_actions();
  REQUIRE(s.outcomes.size() == 1);
  CHECK(s.outcomes[0].what == p2psip::node::outcome::kind::answer);
  REQUIRE(s.outcomes[0].signer);
  CHECK(s.outcomes[0].signer->node == id_at(0x50));
}

TEST_CASE("core: an unanswered request ends with a timeout outcome, not an encoded error") {
  single_core s;
  (void)s.request_of_ours({pr::to_destination(single_core::res(0x90))});
  (void)s.core.take_actions();
  for (int i = 0; i < 20 && s.outcomes.empty(); ++i) {
    const auto d = s.core.next_deadline();
    REQUIRE(d);
    s.core.on_timer(*d);
    (void)s.core.take_actions();
  }
  REQUIRE(s.outcomes.size() == 1);
  CHECK(s.outcomes[0].what == p2psip::node::outcome::kind::timeout);
}

TEST_CASE("core: RouteQuery, Probe and local requests") {
  single_core s;
  pr::route_query_req q;
  q.destination = pr::to_destination(single_core::res(0x90));
  s.feed(0x05, s.make(0x05, {pr::to_destination(id_at(0x10))}, q));
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  auto b = pr::decode_body(out[0].second.contents.code, out[0].second.contents.body, pr::limits{});
  REQUIRE(b);
  CHECK(std::get<pr::route_query_ans>(*b).next_peer == id_at(0x80));

  pr::probe_req p;
  p.requested_info = {pr::probe_info_type::responsible_set, pr::probe_info_type::uptime};
  s.feed(0x05, s.make(0x05, {pr::to_destination(id_at(0x10))}, p));
  out = s.sent();
  REQUIRE(out.size() == 1);
  b = pr::decode_body(out[0].second.contents.code, out[0].second.contents.body, pr::limits{});
  REQUIRE(b);
  const auto& pa = std::get<pr::probe_ans>(*b);
  REQUIRE(pa.probe_info.size() == 2);
  // (0x05.., 0x10..] is 11/256 of the ring.
  CHECK(pa.probe_info[0].value > 42'000'000u);
  CHECK(pa.probe_info[0].value < 43'000'000u);

  // The peer's own request for a Resource-ID it owns is answered without the network.
  bool delivered = false;
  auto tx = s.core.send_request(
      {pr::to_destination(single_core::res(0x08))}, pr::ping_req{},
      [&](p2psip::node::outcome&& o, time_point) { delivered = o.ok(); }, s.now);
  REQUIRE(tx);
  for (auto& a : s.core.take_actions()) CHECK_FALSE(std::holds_alternative<peer::send_action>(a));
  CHECK(delivered);
}

TEST_CASE("core: Join only from the joining peer itself, over its own link") {
  single_core s;
  // Routed (via list not empty): refused.
  auto m = s.make(0x50, {pr::to_destination(id_at(0x10))}, pr::join_req{id_at(0x50), {}});
  m.header.via_list = {pr::to_destination(id_at(0x50))};
  s.feed(0x30, m);
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(error_code_of(out[0].second) == static_cast<std::uint16_t>(pr::reload_errc::forbidden));
  // For another Node-ID: refused.
  s.feed(0x50, s.make(0x50, {pr::to_destination(id_at(0x10))}, pr::join_req{id_at(0x51), {}}));
  out = s.sent();
  REQUIRE_FALSE(out.empty());
  CHECK(error_code_of(out[0].second) == static_cast<std::uint16_t>(pr::reload_errc::forbidden));
  CHECK_FALSE(s.core.routes().contains(id_at(0x50)));
  // Its own, directly: admitted; it becomes the new predecessor... no: 0x50 lies after 0x30.
  s.feed(0x50, s.make(0x50, {pr::to_destination(id_at(0x10))}, pr::join_req{id_at(0x50), {}}));
  out = s.sent();
  REQUIRE_FALSE(out.empty());
  CHECK(out[0].second.contents.code == pr::codes::join_ans);
  CHECK(s.core.routes().contains(id_at(0x50)));
}

TEST_CASE("core: Leave removes the peer and the ring closes over it") {
  single_core s;
  pr::chord_leave_data d;
  d.type = pr::chord_leave_type::from_succ;
  d.successors = {id_at(0x80), id_at(0xC0)};
  pr::leave_req l{id_at(0x30), *pr::encode_chord_leave_data(d)};
  s.feed(0x30, s.make(0x30, {pr::to_destination(id_at(0x10))}, l));
  auto out = s.sent();
  REQUIRE_FALSE(out.empty());
  CHECK(out[0].second.contents.code == pr::codes::leave_ans);
  CHECK_FALSE(s.core.routes().contains(id_at(0x30)));
  CHECK(s.core.routes().successors().front() == id_at(0x80));
  // Leave for someone else: refused.
  pr::leave_req other{id_at(0x80), {}};
  s.feed(0x05, s.make(0x05, {pr::to_destination(id_at(0x10))}, other));
  out = s.sent();
  REQUIRE_FALSE(out.empty());
  CHECK(error_code_of(out[0].second) == static_cast<std::uint16_t>(pr::reload_errc::forbidden));
  CHECK(s.core.routes().contains(id_at(0x80)));
}

TEST_CASE("core: link loss of a neighbor repairs the table and Updates the others") {
  single_core s;
  // Building the table changed the neighbor set many times at one instant: the first change's
  // Updates went out at once, the rest wait for the end of its 100 ms (chord_topology's
  // neighbor_update_delay) and go out together. Let that round pass.
  s.now += std::chrono::seconds(1);
  s.core.on_timer(s.now);
  (void)s.sent();
  s.now += std::chrono::seconds(1);
  s.core.on_link_down(s.link_of[0x30], s.now);
  CHECK_FALSE(s.core.routes().contains(id_at(0x30)));
  CHECK(s.core.routes().successors().front() == id_at(0x80));
  std::size_t updates = 0;
  for (auto& [link, m] : s.sent()) updates += m.contents.code == pr::codes::update_req;
  CHECK(updates >= 3);  // reactive: every remaining neighbor hears of it
}

TEST_CASE("core: a forwarded request its next hop never took goes again by the links left") {
  single_core s;
  s.feed(0x05, s.make(0x05, {pr::to_destination(single_core::res(0x90))}, pr::ping_req{}, 5));
  auto first = s.sent_bytes();
  REQUIRE(first.size() == 1);
  REQUIRE(first[0].first == s.link_of[0x80]);
  // The link to 0x80 closes and hands back the request it never acked: routed again as it
  // arrived from 0x05 (one via entry, one hop of TTL), now to 0x30, the closest peer before
  // 0x90 left (0xC0, the next responsible peer, is what 0x30 would pick).
  s.core.on_link_down(s.link_of[0x80], s.now, {first[0].second});
  bool again = false;
  for (auto& [link, m] : s.sent()) {
    if (m.contents.code != pr::codes::ping_req || m.header.transaction_id != 5) continue;
    CHECK_FALSE(again);
    again = true;
    CHECK(link == s.link_of[0x30]);
    CHECK(m.header.ttl == 99);
    REQUIRE(m.header.via_list.size() == 1);
    CHECK(*m.header.via_list[0].node() == id_at(0x05));
  }
  CHECK(again);
  CHECK(s.core.transport().counters().rerouted == 1);
}

TEST_CASE("core: what a link closed by us hands back is routed again too") {
  single_core s;
  s.feed(0x05, s.make(0x05, {pr::to_destination(single_core::res(0x90))}, pr::ping_req{}, 6));
  auto first = s.sent_bytes();
  REQUIRE(first.size() == 1);
  // The node already forgot the link (as when it closes one as surplus); the runtime's report
  // of its close then carries what the other end did not take.
  s.core.on_link_down(s.link_of[0x80], s.now);
  (void)s.sent();
  s.core.on_link_down(s.link_of[0x80], s.now, {first[0].second});
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].first == s.link_of[0x30]);
  CHECK(out[0].second.header.transaction_id == 6);
}

TEST_CASE("core: an answer the next hop never took goes on another link to it") {
  single_core s;
  const peer::link_id second{99};
  s.core.on_link_up(second, id_at(0x80), s.now);
  auto m = s.make(0x9A, {pr::to_destination(id_at(0x10))}, pr::ping_req{}, 7);
  m.header.via_list = {pr::to_destination(id_at(0x9A))};
  s.feed(0x80, m);
  auto out = s.sent_bytes();
  REQUIRE(out.size() == 1);
  const auto used = out[0].first;
  REQUIRE((used == s.link_of[0x80] || used == second));
  s.core.on_link_down(used, s.now, {out[0].second});
  std::vector<peer::link_id> answers;
  for (auto& [link, a] : s.sent()) {
    if (a.contents.code == pr::codes::ping_ans && a.header.transaction_id == 7) {
      answers.push_back(link);
    }
  }
  CHECK(answers == std::vector<peer::link_id>{used == second ? s.link_of[0x80] : second});
}

TEST_CASE("core: a request of ours handed back by its link is sent once more, not twice") {
  single_core s;
  const auto tx = s.request_of_ours({pr::to_destination(single_core::res(0x90))});
  auto first = s.sent_bytes();
  REQUIRE(first.size() == 1);
  s.core.on_link_down(first[0].first, s.now, {first[0].second});
  std::size_t copies = 0;
  for (auto& [link, m] : s.sent()) copies += m.header.transaction_id == tx;
  CHECK(copies == 1);
  CHECK(s.outcomes.empty());  // still waiting, on the new first hop
  CHECK(s.core.transport().counters().rerouted == 0);
}

TEST_CASE("core: a store is replicated to the first two successors") {
  single_core s;
  pr::store_req st;
  st.resource = single_core::res(0x08);
  pr::store_kind_data k;
  k.kind = pr::kinds::p2psip_generic;
  st.kind_data.push_back(k);
  s.feed(0x50, s.make(0x50, {pr::to_destination(st.resource)}, st));
  auto out = s.sent();
  std::vector<peer::link_id> replica_links;
  std::optional<pr::store_ans> ans;
  for (auto& [link, m] : out) {
    auto b = pr::decode_body(m.contents.code, m.contents.body, pr::limits{});
    REQUIRE(b);
    if (auto* r = std::get_if<pr::store_req>(&*b)) {
      CHECK(r->replica_number == (replica_links.empty() ? 1 : 2));
      replica_links.push_back(link);
    }
    if (auto* a = std::get_if<pr::store_ans>(&*b)) ans = *a;
  }
  REQUIRE(replica_links.size() == 2);
  CHECK(replica_links[0] == s.link_of[0x30]);
  CHECK(replica_links[1] == s.link_of[0x80]);
  REQUIRE(ans);
  REQUIRE(ans->kind_responses.size() == 1);
  CHECK(ans->kind_responses[0].replicas == std::vector<pr::node_id>{id_at(0x30), id_at(0x80)});
  CHECK(s.storage.has(st.resource));
}

TEST_CASE("core: replicas and out-of-range stores are refused from a client") {
  single_core s;
  pr::store_req st;
  st.resource = single_core::res(0x08);
  st.replica_number = 1;
  s.feed(0x50, s.make(0x50, {pr::to_destination(id_at(0x10))}, st));
  auto out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(error_code_of(out[0].second) == static_cast<std::uint16_t>(pr::reload_errc::forbidden));
  st.replica_number = 0;
  st.resource = single_core::res(0x40);  // 0x30's, addressed to us by Node-ID
  s.feed(0x50, s.make(0x50, {pr::to_destination(id_at(0x10))}, st));
  out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(error_code_of(out[0].second) == static_cast<std::uint16_t>(pr::reload_errc::forbidden));
  CHECK(s.storage.size() == 0);
  // From a peer (a predecessor's replica): stored.
  st.replica_number = 1;
  s.feed(0x05, s.make(0x05, {pr::to_destination(id_at(0x10))}, st));
  out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(out[0].second.contents.code == pr::codes::store_ans);
  CHECK(s.storage.size() == 1);
}

TEST_CASE(
    "core: a hand-over routed to us as the new owner is taken from a stranger, and replicated") {
  single_core s;
  // Node 0xE0 (not linked to us) hands over a value of our range through peer 0xC0: a replica
  // Store by Resource-ID, as a peer whose range shrank sends it.
  pr::store_req st;
  st.resource = single_core::res(0x08);
  st.replica_number = 1;
  pr::store_kind_data kd;
  kd.kind = pr::kinds::p2psip_generic;
  kd.generation_counter = 3;
  st.kind_data.push_back(kd);
  auto m = s.make(0xE0, {pr::to_destination(st.resource)}, st);
  m.header.via_list.push_back(pr::to_destination(id_at(0xE0)));
  s.feed(0xC0, m);
  auto out = s.sent();
  REQUIRE(!out.empty());
  CHECK(out.back().second.contents.code == pr::codes::store_ans);
  CHECK(s.storage.size() == 1);
  // Ours: copies go to our replica set, the successors 0x30 and 0x80.
  std::size_t replicas = 0;
  for (const auto& [link, msg] : out)
    replicas += msg.contents.code == pr::codes::store_req ? 1u : 0u;
  CHECK(replicas == 2);
  // Not ours (0x40 lies in 0x80's range): refused from a stranger.
  st.resource = single_core::res(0x40);
  auto m2 = s.make(0xE0, {pr::to_destination(id_at(0x10))}, st, 43);
  m2.header.via_list.push_back(pr::to_destination(id_at(0xE0)));
  s.feed(0xC0, m2);
  out = s.sent();
  REQUIRE(out.size() == 1);
  CHECK(error_code_of(out[0].second) == static_cast<std::uint16_t>(pr::reload_errc::forbidden));
}
