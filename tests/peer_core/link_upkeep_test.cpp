// The connection table's upkeep and the data a peer keeps (RFC 6940 10.7.1, 10.7.3): links a peer
// opened are closed once their peer leaves its routing table, duplicate links are reduced to one,
// a full table evicts a surplus link, and data beyond the third predecessor is dropped after the
// hold-down. One core driven by hand (peer 0x10), then whole rings on sim_network.
#include <doctest/doctest.h>

#include <algorithm>
#include <initializer_list>
#include <list>

#include "sim_network.hpp"

namespace pr = p2psip::protocol;
namespace peer = p2psip::peer;
using namespace p2psip::sim;
using namespace std::chrono_literals;

namespace {

/// Peer 0x10 with predecessors 0x0C 0x08 0x05, successors 0x20 0x28 0x2C and finger 0x60 (the
/// peer nearest the start of finger 2's interval [0x50, 0x90)), all on links they opened.
struct hand_core {
  fake_signer signer{id_at(0x10)};
  memory_storage storage;
  seeded_random rng{11};
  peer::overlay_core core;
  time_point now = time_point{} + std::chrono::hours(24 * 365 * 50);
  std::map<std::uint8_t, peer::link_id> link_of;
  std::uint64_t next_link = 1;
  std::uint64_t next_tx = 1000;

  static peer::core_config config(std::size_t max_links = 256, std::size_t max_clients = 1024) {
    auto c = sim_network::default_config(id_at(0x10), peer::node_role::first_peer);
    c.update_interval = 400s;  // no stabilization inside a test
    c.finger_interval = 1s;    // a prune pass every second or so
    c.request_timeout = 3s;
    c.link_linger = 5s;
    c.max_links = max_links;
    c.max_clients = max_clients;
    return c;
  }
  static std::initializer_list<std::uint8_t> table_peers() {
    static const std::initializer_list<std::uint8_t> list = {0x05, 0x08, 0x0C, 0x20,
                                                             0x28, 0x2C, 0x60};
    return list;
  }
  explicit hand_core(std::size_t max_links = 256, std::size_t max_clients = 1024)
      : core(config(max_links, max_clients), signer, &storage, rng) {
    core.start(now);
    for (const std::uint8_t b : table_peers()) {
      up(b, peer::link_origin::inbound);
      say_peer(b);
    }
    answer_all();
  }

  peer::link_id up(std::uint8_t b, peer::link_origin origin) {
    const peer::link_id l{next_link++};
    link_of[b] = l;
    core.on_link_up(l, id_at(b), now, origin);
    return l;
  }
  /// `b` sends an Update over its link: it is a peer.
  void say_peer(std::uint8_t b) {
    pr::update_req u;
    u.type = pr::chord_update_type::neighbors;
    feed(b, make(b, {pr::to_destination(id_at(0x10))}, u, next_tx++));
  }
  pr::message make(std::uint8_t from, std::vector<pr::destination> dest,
                   const pr::message_body& body, std::uint64_t tx) {
    return make(id_at(from), std::move(dest), body, tx);
  }
  pr::message make(const pr::node_id& from, std::vector<pr::destination> dest,
                   const pr::message_body& body, std::uint64_t tx) {
    pr::message m;
    m.header.overlay = core.config().overlay;
    m.header.ttl = 100;
    m.header.transaction_id = tx;
    m.header.destination_list = std::move(dest);
    m.contents.code = pr::code_of(body);
    m.contents.body = *pr::encode_body(body);
    fake_signer(from).sign(m);
    return m;
  }
  void feed(std::uint8_t b, const pr::message& m) { feed_on(link_of.at(b), m); }
  void feed_on(peer::link_id l, const pr::message& m) {
    auto bytes = pr::encode_message(m, pr::limits{});
    REQUIRE(bytes);
    core.on_message(l, *bytes, now);
    pending_actions_.splice(pending_actions_.end(), take());
  }
  std::list<peer::action> take() {
    std::list<peer::action> out;
    for (auto& a : core.take_actions()) out.push_back(std::move(a));
    return out;
  }
  /// Every peer answers the Updates and Pings sent to it (so that none is found dead); returns
  /// the links closed meanwhile.
  std::vector<peer::link_id> answer_all() {
    std::vector<peer::link_id> closed;
    for (int round = 0; round < 4; ++round) {
      auto actions = std::exchange(pending_actions_, {});
      actions.splice(actions.end(), take());
      for (auto& a : actions) {
        if (const auto* c = std::get_if<peer::close_link_action>(&a)) closed.push_back(c->link);
        const auto* s = std::get_if<peer::send_action>(&a);
        if (!s) continue;
        auto m = pr::decode_message(s->data, pr::limits{});
        REQUIRE(m);
        const auto c = core.connections().find(s->link);
        if (c == core.connections().end() || !pr::is_request(m->contents.code) ||
            !m->header.via_list.empty()) {
          continue;
        }
        const auto& to = c->second.remote;
        if (m->contents.code == pr::codes::update_req) {
          feed_on(s->link, make(to, {pr::to_destination(id_at(0x10))}, pr::update_ans{},
                                m->header.transaction_id));
        } else if (m->contents.code == pr::codes::ping_req) {
          feed_on(s->link, make(to, {pr::to_destination(id_at(0x10))}, pr::ping_ans{1, 1},
                                m->header.transaction_id));
        }
      }
    }
    return closed;
  }
  /// Runs the timers for `d` in 100 ms steps, answering as it goes; the links closed.
  std::vector<peer::link_id> run_for(std::chrono::milliseconds d) {
    std::vector<peer::link_id> closed;
    const auto end = now + d;
    while (now < end) {
      now += 100ms;
      core.on_timer(now);
      for (const auto l : answer_all()) closed.push_back(l);
    }
    return closed;
  }
  bool has_link(std::uint8_t b) const { return core.connections().count(link_of.at(b)) != 0; }

 private:
  std::list<peer::action> pending_actions_;
};

bool contains(const std::vector<peer::link_id>& v, peer::link_id l) {
  return std::find(v.begin(), v.end(), l) != v.end();
}

pr::resource_id res(std::uint8_t top) {
  return pr::resource_id{pr::to_bytes(id_at(top, 1).view())};
}

pr::store_req replica_of(const pr::resource_id& r) {
  pr::store_req s;
  s.resource = r;
  s.replica_number = 1;
  pr::store_kind_data k;
  k.kind = pr::kinds::p2psip_generic;
  k.generation_counter = 1;  // a replica carries the owner's counter, never 0
  s.kind_data.push_back(k);
  return s;
}

pr::node_id random_id(seeded_random& r) {
  pr::bytes b(16);
  for (auto& x : b) x = static_cast<std::uint8_t>(r.next_u64());
  return *pr::node_id::from_bytes(b);
}

}  // namespace

TEST_CASE("links: one we opened to a peer outside the routing table is closed, others stay") {
  hand_core h;
  REQUIRE(h.core.routes().finger(2) == id_at(0x60));
  // 0x70: a peer in finger 2's interval, farther from its start than 0x60, on a link we opened.
  const auto ours = h.up(0x70, peer::link_origin::outbound);
  h.say_peer(0x70);
  // 0x74: the same, but it opened the link (it may use us as a finger): its to close.
  const auto theirs = h.up(0x74, peer::link_origin::inbound);
  h.say_peer(0x74);
  // 0x50: a client (never a Join or Update), on its own link.
  const auto client = h.up(0x50, peer::link_origin::inbound);
  h.answer_all();
  REQUIRE_FALSE(h.core.routes().contains(id_at(0x70)));
  REQUIRE_FALSE(h.core.routes().contains(id_at(0x74)));

  // Not before link_linger (5 s).
  auto closed = h.run_for(4s);
  CHECK_FALSE(contains(closed, ours));
  CHECK(h.has_link(0x70));
  closed = h.run_for(4s);
  CHECK(contains(closed, ours));
  CHECK_FALSE(h.has_link(0x70));
  CHECK(h.core.stats().links_pruned == 1);
  // Much later: the client's and the other peer's links, and every table peer's, are still up.
  closed = h.run_for(20s);
  CHECK(closed.empty());
  CHECK(h.core.connections().count(theirs) == 1);
  CHECK(h.core.connections().count(client) == 1);
  for (const std::uint8_t b : hand_core::table_peers()) CHECK(h.has_link(b));
}

TEST_CASE("links: losing a link to a peer outside the routing table is no peer loss") {
  hand_core h;
  h.up(0x74, peer::link_origin::inbound);
  h.say_peer(0x74);
  h.answer_all();
  REQUIRE_FALSE(h.core.routes().contains(id_at(0x74)));
  const auto succ = h.core.routes().successors();
  h.core.on_link_down(h.link_of[0x74], h.now);
  // No reactive Updates, no replicas, no table change.
  std::size_t sent = 0;
  for (auto& a : h.core.take_actions()) sent += std::holds_alternative<peer::send_action>(a);
  CHECK(sent == 0);
  CHECK(h.core.routes().successors() == succ);
  // A neighbor's link loss still is one (RFC 6940 10.7.1). First the round of Updates that
  // building the table left waiting (changes within 100 ms of a round go out together at its end).
  h.now += std::chrono::seconds(1);
  h.core.on_timer(h.now);
  (void)h.core.take_actions();
  h.now += std::chrono::seconds(1);
  h.core.on_link_down(h.link_of[0x20], h.now);
  for (auto& a : h.core.take_actions()) sent += std::holds_alternative<peer::send_action>(a);
  CHECK(sent >= 3);
}

TEST_CASE("links: of two links to one peer, the one the lower Node-ID opened is kept") {
  SUBCASE("we are the lower Node-ID: our link stays") {
    hand_core h;
    const auto theirs = h.up(0x24, peer::link_origin::inbound);  // a successor
    h.say_peer(0x24);
    const auto ours = h.up(0x24, peer::link_origin::outbound);
    h.answer_all();
    REQUIRE(h.core.routes().contains(id_at(0x24)));
    CHECK(h.core.link_to(id_at(0x24)) == ours);
    const auto closed = h.run_for(8s);
    CHECK(contains(closed, theirs));
    CHECK(h.core.connections().count(ours) == 1);
    CHECK(h.core.connections().at(ours).is_peer);
    CHECK(h.core.routes().contains(id_at(0x24)));
  }
  SUBCASE("the remote is the lower Node-ID: its link stays, even with ours first") {
    hand_core h;
    const auto ours = h.up(0x06, peer::link_origin::outbound);  // a predecessor
    h.say_peer(0x06);
    const auto theirs = h.up(0x06, peer::link_origin::inbound);
    h.answer_all();
    REQUIRE(h.core.routes().contains(id_at(0x06)));
    CHECK(h.core.link_to(id_at(0x06)) == theirs);
    const auto closed = h.run_for(8s);
    CHECK(contains(closed, ours));
    CHECK(h.core.connections().count(theirs) == 1);
    // Still a peer of the table: nothing was lost.
    CHECK(h.core.routes().contains(id_at(0x06)));
  }
}

TEST_CASE("links: a full peer budget evicts a surplus peer link, never a client's") {
  hand_core h(10);  // 7 table peers (they Updated us: peer links)
  const auto surplus = h.up(0x70, peer::link_origin::outbound);
  h.say_peer(0x70);
  const auto client = h.up(0x50, peer::link_origin::inbound);
  h.answer_all();
  h.run_for(4s);  // quiet, but not yet pruned
  REQUIRE(h.core.connections().size() == 9);
  h.up(0x51, peer::link_origin::outbound);  // the ninth peer link
  h.up(0x52, peer::link_origin::outbound);  // the tenth
  REQUIRE(h.core.connections().size() == 11);
  const auto eleventh = h.up(0x53, peer::link_origin::outbound);
  std::vector<peer::link_id> closed;
  for (auto& a : h.core.take_actions()) {
    if (auto* c = std::get_if<peer::close_link_action>(&a)) closed.push_back(c->link);
  }
  CHECK(closed == std::vector<peer::link_id>{surplus});
  CHECK(h.core.connections().count(eleventh) == 1);
  CHECK(h.core.stats().links_evicted == 1);
  // The next one we open makes room the same way (a link we opened to a peer outside the table)
  // ...
  const auto twelfth = h.up(0x54, peer::link_origin::outbound);
  closed.clear();
  for (auto& a : h.core.take_actions()) {
    if (auto* c = std::get_if<peer::close_link_action>(&a)) closed.push_back(c->link);
  }
  REQUIRE(closed.size() == 1);
  CHECK(closed.front() != client);
  CHECK(h.core.connections().count(twelfth) == 1);
  // ... and clients, in their own budget, still get in.
  CHECK(h.core.connections().count(client) == 1);
  const auto another_client = h.up(0x55, peer::link_origin::inbound);
  CHECK(h.core.connections().count(another_client) == 1);
}

TEST_CASE("links: a full client budget evicts the client idle the longest for a newcomer") {
  hand_core h(256, 3);  // 3 clients fill the client budget
  const auto oldest = h.up(0x50, peer::link_origin::inbound);
  h.run_for(2s);
  const auto middle = h.up(0x51, peer::link_origin::inbound);
  h.run_for(1s);
  const auto newest = h.up(0x52, peer::link_origin::inbound);
  h.run_for(1s);
  REQUIRE(h.core.connections().size() == 10);
  const auto newcomer = h.up(0x53, peer::link_origin::inbound);
  std::vector<peer::link_id> closed;
  for (auto& a : h.core.take_actions()) {
    if (auto* c = std::get_if<peer::close_link_action>(&a)) closed.push_back(c->link);
  }
  CHECK(closed == std::vector<peer::link_id>{oldest});
  CHECK(h.core.connections().count(newcomer) == 1);
  CHECK(h.core.connections().count(middle) == 1);
  CHECK(h.core.connections().count(newest) == 1);
  CHECK(h.core.stats().clients_evicted == 1);
}

TEST_CASE("data: beyond the third predecessor it is dropped after the hold-down, no sooner") {
  hand_core h;
  // Predecessors 0x0C, 0x08, 0x05: we keep (0x05, 0x10] and drop (0x10, 0x05].
  const std::vector<std::uint8_t> kept = {0x0E, 0x0A, 0x06};     // ours, 0x0C's, 0x08's
  const std::vector<std::uint8_t> dropped = {0x02, 0x30, 0xF0};  // 0x05's, 0x60's, ...
  for (const auto r : kept)
    h.feed(0x05, h.make(0x05, {pr::to_destination(id_at(0x10))}, replica_of(res(r)), h.next_tx++));
  for (const auto r : dropped) {
    h.feed(0x05, h.make(0x05, {pr::to_destination(id_at(0x10))}, replica_of(res(r)), h.next_tx++));
  }
  h.answer_all();
  REQUIRE(h.storage.size() == 6);
  h.run_for(25s);  // the predecessor list is 25 s old: within the 30 s hold-down
  CHECK(h.storage.size() == 6);
  h.run_for(10s);
  for (const auto r : kept) CHECK(h.storage.has(res(r)));
  for (const auto r : dropped) CHECK_FALSE(h.storage.has(res(r)));
  CHECK(h.core.stats().ranges_dropped >= 1);

  // A new predecessor (0x0E joins) starts the hold-down again; then 0x08's range goes as well.
  const auto r08 = res(0x06);
  h.up(0x0E, peer::link_origin::inbound);
  h.say_peer(0x0E);
  h.answer_all();
  REQUIRE(h.core.routes().predecessors().front() == id_at(0x0E));
  h.run_for(20s);
  CHECK(h.storage.has(r08));
  h.run_for(15s);
  CHECK_FALSE(h.storage.has(r08));
  CHECK(h.storage.has(res(0x0A)));  // 0x0C's range: we are its second successor
}

TEST_CASE("data: a hand-over nobody answers is sent five times, then given up") {
  hand_core h;
  // A value of 0x0D, ours while 0x0C is our first predecessor.
  h.feed(0x05, h.make(0x05, {pr::to_destination(id_at(0x10))}, replica_of(res(0x0D)), h.next_tx++));
  h.answer_all();
  REQUIRE(h.storage.has(res(0x0D)));
  // 0x0E joins elsewhere and becomes our first predecessor: 0x0D is its now, handed over routed
  // by Resource-ID. Nobody answers Stores here (answer_all answers Updates and Pings only).
  h.up(0x0E, peer::link_origin::inbound);
  h.say_peer(0x0E);
  h.answer_all();
  REQUIRE(h.core.routes().predecessors().front() == id_at(0x0E));
  CHECK(h.core.stats().handovers == 1);
  h.run_for(60s);  // request_timeout 3 s, then again after 3 s: well past five attempts
  CHECK(h.core.stats().handovers == 5);
  h.run_for(30s);
  CHECK(h.core.stats().handovers == 5);
  CHECK(h.storage.has(res(0x0D)));  // still a replica holder of it: kept
}

TEST_CASE("data: with fewer than three predecessors nothing is dropped") {
  sim_network net(5);
  net.add(id_at(0x10), peer::node_role::first_peer);
  net.start(0);
  for (const std::uint8_t b : {std::uint8_t{0x50}, std::uint8_t{0x90}}) {
    net.start(net.add(id_at(b), peer::node_role::joining_peer));
    net.run_for(1s);
  }
  net.run_for(5s);
  REQUIRE(net.ring().size() == 3);
  for (const std::uint8_t r : {std::uint8_t{0x20}, std::uint8_t{0x60}, std::uint8_t{0xA0}}) {
    const auto rid = res(r);
    pr::store_req s = replica_of(rid);
    s.replica_number = 0;
    s.kind_data[0].generation_counter = 0;  // an original Store: "whatever is there"
    REQUIRE(net.request(0, {pr::to_destination(rid)}, s));
  }
  net.run_for(60s);
  for (std::size_t i = 0; i < 3; ++i) CHECK(net.at(i).storage->size() == 3);
}

TEST_CASE(
    "ring: joined peers close their bootstrap link, the bootstrap peer's links stay bounded") {
  for (std::uint64_t seed : {41u, 42u, 43u}) {
    CAPTURE(seed);
    sim_network net(seed);
    seeded_random ids(seed);
    net.add(random_id(ids), peer::node_role::first_peer);
    net.start(0);
    const std::size_t n = 24;
    for (std::size_t i = 1; i < n; ++i) {
      net.start(net.add(random_id(ids), peer::node_role::joining_peer));
      net.run_for(300ms);
    }
    net.run_for(30s);
    REQUIRE(net.ring().size() == n);
    CHECK(net.ring_problems() == "");
    const auto& boot = net.core(0);
    const auto ring = net.ring();
    // Whether peer `id` owns the start of one of the bootstrap peer's finger intervals: then the
    // bootstrap peer may route through it as a finger (settled or not yet), and it keeps the link.
    const auto boot_finger = [&](const pr::node_id& id) {
      const auto at = std::find(ring.begin(), ring.end(), id);
      const auto& predecessor = at == ring.begin() ? ring.back() : *std::prev(at);
      for (unsigned k = 1; k <= boot.routes().finger_count(); ++k) {
        if (pr::in_half_open_interval(pr::finger_target(boot.self(), k), predecessor, id)) {
          return true;
        }
      }
      return false;
    };
    std::size_t needing_boot = 0;  // routing through each other, or possibly as its finger
    std::size_t routing = 0;       // routing through each other
    for (std::size_t i = 1; i < n; ++i) {
      const bool boot_in_table = net.core(i).routes().contains(boot.self());
      routing += boot_in_table || boot.routes().contains(net.core(i).self()) ? 1u : 0u;
      const bool in_boot_table =
          boot.routes().contains(net.core(i).self()) || boot_finger(net.core(i).self());
      // A peer that does not route through the bootstrap peer holds no link to it, unless the
      // bootstrap peer routes (or may route) through it.
      if (!boot_in_table && !in_boot_table) {
        CAPTURE(i);
        CHECK_FALSE(net.linked(i, 0));
      }
      needing_boot += boot_in_table || in_boot_table ? 1u : 0u;
    }
    // Bounded by the routing tables, not by the number of peers it admitted.
    CHECK(boot.connections().size() <= needing_boot);
    CHECK(boot.connections().size() >= routing);
    CHECK(boot.connections().size() < n - 1);
    std::uint64_t pruned = 0;
    for (std::size_t i = 0; i < n; ++i) pruned += net.core(i).stats().links_pruned;
    CHECK(pruned > 0);
  }
}
