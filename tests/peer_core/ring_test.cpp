// Many overlay cores wired by sim_network: join (RFC 6940 10.5), stabilization (10.7), client
// traffic (4.2.1), replication (10.4), leave (10.9) and failure recovery.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "sim_network.hpp"

namespace pr = p2psip::protocol;
namespace peer = p2psip::peer;
using namespace p2psip::sim;

namespace {

pr::node_id random_id(seeded_random& r) {
  pr::bytes b(16);
  for (auto& x : b) x = static_cast<std::uint8_t>(r.next_u64());
  return *pr::node_id::from_bytes(b);
}

/// A first peer and n-1 joining peers started `spacing` apart; runs `settle` afterwards.
sim_network make_ring(std::size_t n, std::uint64_t seed, std::chrono::milliseconds spacing = 300ms,
                      std::chrono::milliseconds settle = 20s) {
  sim_network net(seed);
  seeded_random ids(seed * 7919 + 1);
  net.add(random_id(ids), peer::node_role::first_peer);
  net.start(0);
  for (std::size_t i = 1; i < n; ++i) {
    const auto k = net.add(random_id(ids), peer::node_role::joining_peer);
    net.start(k);
    net.run_for(spacing);
  }
  net.run_for(settle);
  return net;
}

std::size_t holders(sim_network& net, const pr::resource_id& r) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (net.at(i).alive && net.at(i).storage->has(r)) ++n;
  }
  return n;
}

/// Starts a first peer (Node-ID 0x10..., room for 8 requests in flight) holding `count`
/// resources named PREFIX0, PREFIX1, ...; returns their Resource-IDs.
std::vector<pr::resource_id> start_holding_peer(sim_network& net, int count,
                                                const std::string& prefix) {
  auto first = sim_network::default_config(id_at(0x10), peer::node_role::first_peer);
  first.max_pending = 8;
  net.add(first);
  net.start(0);
  const p2psip::crypto::verified_signer writer{shared_test_certificate(), id_at(0x10)};
  std::vector<pr::resource_id> rs;
  for (int i = 0; i < count; ++i) {
    rs.push_back(pr::hash_resource_name(prefix + std::to_string(i)));
    net.at(0).storage->store(generic_store(rs.back()), writer, {}, net.wall()(), false);
  }
  return rs;
}

/// The live peer responsible for a ring point.
std::size_t owner_of(sim_network& net, const pr::node_id& point) {
  const auto ring = net.ring();
  for (const auto& id : ring) {
    if (id >= point) return *net.index_of(id);
  }
  return *net.index_of(ring.front());
}

}  // namespace

TEST_CASE("ring: two peers join") {
  auto net = make_ring(2, 11);
  CHECK(net.ring().size() == 2);
  CHECK(net.ring_problems() == "");
  CHECK(net.core(1).joined());
}

TEST_CASE("ring: three peers converge") {
  auto net = make_ring(3, 12);
  CHECK(net.ring().size() == 3);
  CHECK(net.ring_problems() == "");
}

TEST_CASE("ring: ten peers converge, every successor and predecessor right") {
  for (std::uint64_t seed : {13u, 14u, 15u}) {
    CAPTURE(seed);
    auto net = make_ring(10, seed);
    CHECK(net.ring().size() == 10);
    CHECK(net.ring_problems() == "");
    // Fingers, when set, lie in their intervals.
    for (std::size_t i = 0; i < net.size(); ++i) {
      const auto& t = net.core(i).routes();
      for (unsigned f = 1; f <= t.finger_count(); ++f) {
        if (auto p = t.finger(f)) CHECK(t.finger_index(*p) == f);
      }
    }
  }
}

TEST_CASE("ring: ten peers joining at once converge") {
  sim_network net(21);
  seeded_random ids(99);
  net.add(random_id(ids), peer::node_role::first_peer);
  net.start(0);
  for (std::size_t i = 1; i < 10; ++i)
    net.start(net.add(random_id(ids), peer::node_role::joining_peer));
  net.run_for(40s);
  CHECK(net.ring().size() == 10);
  CHECK(net.ring_problems() == "");
}

TEST_CASE("ring: a client's requests and answers travel both ways, it never enters a table") {
  auto net = make_ring(6, 31);
  seeded_random ids(5);
  auto cfg = sim_network::default_config(random_id(ids), peer::node_role::joining_peer);
  const auto c = net.add_client(cfg);
  net.start(c);
  net.run_for(1s);
  const auto r = pr::hash_resource_name("alice@example.org");
  auto tx = net.request(c, {pr::to_destination(r)}, generic_store(r));
  REQUIRE(tx);
  net.run_for(2s);
  REQUIRE(net.at(c).delivered.size() == 1);
  const auto& ans = net.at(c).delivered[0].msg;
  CHECK(ans.header.transaction_id == *tx);
  REQUIRE(ans.contents.code == pr::codes::store_ans);
  auto body = pr::decode_body(ans.contents.code, ans.contents.body, pr::limits{});
  REQUIRE(body);
  const auto& sa = std::get<pr::store_ans>(*body);
  REQUIRE(sa.kind_responses.size() == 1);
  CHECK(sa.kind_responses[0].replicas.size() == 2);
  CHECK(net.at(owner_of(net, *r.as_ring_point())).storage->has(r));
  CHECK(holders(net, r) == 3);

  // Fetch it back.
  pr::fetch_req f;
  f.resource = r;
  tx = net.request(c, {pr::to_destination(r)}, f);
  REQUIRE(tx);
  net.run_for(2s);
  REQUIRE(net.at(c).delivered.size() == 2);
  CHECK(net.at(c).delivered[1].msg.contents.code == pr::codes::fetch_ans);

  // Its peer reaches the client by its Node-ID over the client's link. (Other peers cannot: a
  // client attached to a peer that is not responsible for its Node-ID is not routable, RFC 6940
  // 4.2.1.)
  tx = net.request(0, {pr::to_destination(cfg.self)}, pr::ping_req{});
  REQUIRE(tx);
  net.run_for(2s);
  REQUIRE(net.at(0).delivered.size() >= 1);
  CHECK(net.at(0).delivered.back().msg.contents.code == pr::codes::ping_ans);

  for (std::size_t i = 0; i + 1 < net.size(); ++i) {
    CHECK_FALSE(net.core(i).routes().contains(cfg.self));
  }
  CHECK(net.ring_problems() == "");
  CHECK(net.at(c).core == nullptr);  // a client_node: no topology at all
  CHECK_FALSE(net.at(c).joined());
}

TEST_CASE("ring: a joining peer gets the data it now owns") {
  auto net = make_ring(4, 41);
  // Store ten resources from peer 0.
  std::vector<pr::resource_id> rs;
  for (int i = 0; i < 10; ++i) {
    rs.push_back(pr::hash_resource_name("res" + std::to_string(i)));
    REQUIRE(net.request(0, {pr::to_destination(rs.back())}, generic_store(rs.back())));
  }
  net.run_for(3s);
  seeded_random ids(77);
  for (int j = 0; j < 4; ++j) {
    net.start(net.add(random_id(ids), peer::node_role::joining_peer));
    net.run_for(10s);
  }
  net.run_for(10s);
  CHECK(net.ring_problems() == "");
  for (const auto& r : rs) {
    CAPTURE(r.hex());
    CHECK(net.at(owner_of(net, *r.as_ring_point())).storage->has(r));
  }
}

TEST_CASE("ring: a Join hands over more resources than the pending table holds") {
  // Two peers with room for 8 requests in flight; the first holds 200 resources, about half of
  // which the second takes over on its Join: they go out as the answers free room.
  sim_network net(61);
  const auto rs = start_holding_peer(net, 200, "many");
  auto second = sim_network::default_config(id_at(0x90), peer::node_role::joining_peer);
  second.max_pending = 8;
  net.start(net.add(second));
  net.run_for(20s);
  REQUIRE(net.ring().size() == 2);
  std::size_t taken_over = 0;
  for (const auto& r : rs) {
    CAPTURE(r.hex());
    const auto owner = owner_of(net, *r.as_ring_point());
    CHECK(net.at(owner).storage->has(r));
    taken_over += owner == 1 ? 1u : 0u;
  }
  CHECK(taken_over > 50);
  CHECK(net.core(0).stats().handovers >= taken_over);
}

TEST_CASE("ring: graceful leave repairs the ring and hands the data over") {
  auto net = make_ring(8, 51);
  REQUIRE(net.ring_problems() == "");
  std::vector<pr::resource_id> rs;
  for (int i = 0; i < 10; ++i) {
    rs.push_back(pr::hash_resource_name("leave" + std::to_string(i)));
    REQUIRE(net.request(1, {pr::to_destination(rs.back())}, generic_store(rs.back())));
  }
  net.run_for(3s);
  net.leave(3);
  net.leave(5);
  net.run_for(20s);
  CHECK(net.ring().size() == 6);
  CHECK(net.ring_problems() == "");
  for (const auto& r : rs) {
    CAPTURE(r.hex());
    CHECK(net.at(owner_of(net, *r.as_ring_point())).storage->has(r));
  }
}

TEST_CASE("ring: a crashed peer (link loss) is replaced and data re-replicated") {
  auto net = make_ring(8, 61);
  REQUIRE(net.ring_problems() == "");
  const auto r = pr::hash_resource_name("crash");
  REQUIRE(net.request(0, {pr::to_destination(r)}, generic_store(r)));
  net.run_for(3s);
  REQUIRE(holders(net, r) == 3);
  const auto owner = owner_of(net, *r.as_ring_point());
  net.crash(owner);
  net.run_for(20s);
  CHECK(net.ring().size() == 7);
  CHECK(net.ring_problems() == "");
  CHECK(net.at(owner_of(net, *r.as_ring_point())).storage->has(r));
  CHECK(holders(net, r) >= 3);
}

TEST_CASE("ring: a silent peer is found dead by Update timeouts") {
  auto net = make_ring(6, 71);
  REQUIRE(net.ring_problems() == "");
  net.mute(2);
  net.run_for(30s);
  CHECK(net.ring().size() == 5);
  CHECK(net.ring_problems() == "");
}

TEST_CASE("ring: 100 peers converge") {
  auto net = make_ring(100, 81, 200ms, 60s);
  CHECK(net.ring().size() == 100);
  CHECK(net.ring_problems() == "");
  // Any peer reaches any Resource-ID in a few hops.
  const auto r = pr::hash_resource_name("far away");
  REQUIRE(net.request(17, {pr::to_destination(r)}, generic_store(r)));
  net.run_for(5s);
  CHECK(net.at(owner_of(net, *r.as_ring_point())).storage->has(r));
}

TEST_CASE(
    "ring: a peer joining 100 links to its neighbors and one peer per finger slot, not to all it "
    "hears of") {
  // Every Update a joining peer gets names about twenty peers; before its first links are up its
  // lists are empty, so each name looked like a needed neighbor or finger and got an Attach and a
  // link: 40 to 90 links in its first second, all closed again as surplus half a minute later.
  auto net = make_ring(100, 83, 200ms, 60s);
  REQUIRE(net.ring_problems() == "");
  seeded_random ids(4242);
  const auto k = net.add(random_id(ids), peer::node_role::joining_peer);
  net.start(k);
  std::size_t most = 0;
  for (int step = 0; step < 40; ++step) {  // 2 s; the links it no longer needs linger 3 s
    net.run_for(50ms);
    most = std::max(most, net.at(k).core->connections().size());
  }
  REQUIRE(net.ring_problems() == "");
  const auto& table = net.at(k).core->routes();
  INFO("links at most: " << most << ", routing table: " << table.peers().size());
  // Three successors, three predecessors, a finger per occupied slot (at 100 peers about seven),
  // the bootstrap link, and some for peers found nearer than the first ones attached, and for
  // peers that attach to the newcomer as their own neighbor or finger: 17 against a table of 12
  // (51 before the peers being attached counted as neighbors and fingers already). The bound
  // leaves room for changes of timing elsewhere, not for the burst.
  CHECK(most <= 32);
}

TEST_CASE("ring: ten peers joining over a lossy network recover once it heals") {
  std::uint64_t first = 91, last = 101;
  if (const char* only = std::getenv("P2PSIP_SIM_SEED")) {
    first = std::strtoull(only, nullptr, 10);
    last = first + 1;
  }
  for (std::uint64_t seed = first; seed < last; ++seed) {
    CAPTURE(seed);
    sim_network net(seed, 5ms, 20ms, 0.02);
    seeded_random ids(seed * 3 + 123);
    net.add(random_id(ids), peer::node_role::first_peer);
    net.start(0);
    for (std::size_t i = 1; i < 10; ++i) {
      net.start(net.add(random_id(ids), peer::node_role::joining_peer));
      net.run_for(500ms);
    }
    net.run_for(30s);
    net.set_loss(0.0);
    net.run_for(30s);
    CHECK(net.ring().size() == 10);
    CHECK(net.ring_problems() == "");
  }
}

TEST_CASE("ring: many seeds of 12 peers, some joining together, then a crash and a leave") {
  std::uint64_t first = 100, last = 120;
  if (const char* only = std::getenv("P2PSIP_SIM_SEED")) {  // to replay one seed with a trace
    first = std::strtoull(only, nullptr, 10);
    last = first + 1;
  }
  for (std::uint64_t seed = first; seed < last; ++seed) {
    CAPTURE(seed);
    auto net = make_ring(12, seed, std::chrono::milliseconds(seed % 3 == 0 ? 0 : 150), 20s);
    CHECK(net.ring_problems() == "");
    net.crash(3 + seed % 5);
    net.leave(9);
    net.run_for(20s);
    CHECK(net.ring().size() == 10);
    CHECK(net.ring_problems() == "");
    if (std::getenv("P2PSIP_SIM_TRACE")) {
      for (std::size_t i = 0; i < net.size(); ++i) {
        std::fprintf(stderr, "node %zu %s alive=%d links:", i,
                     net.core(i).self().hex().substr(0, 4).c_str(), net.at(i).alive);
        for (const auto& [l, c] : net.core(i).connections()) {
          std::fprintf(stderr, " L%llu=%s%s", static_cast<unsigned long long>(l.value),
                       c.remote.hex().substr(0, 4).c_str(), c.is_peer ? "p" : "");
        }
        std::fprintf(stderr, "\n");
      }
    }
  }
}

TEST_CASE("ring: a client whose peer dies attaches to the next bootstrap peer") {
  auto net = make_ring(5, 131);
  seeded_random ids(9);
  auto cfg = sim_network::default_config(random_id(ids), peer::node_role::joining_peer);
  cfg.bootstrap = {net.at(1).address, net.at(2).address};
  const auto c = net.add_client(cfg);
  net.start(c);
  net.run_for(1s);
  REQUIRE(net.linked(c, 1));
  net.crash(1);
  net.run_for(5s);
  CHECK(net.linked(c, 2));
  const auto r = pr::hash_resource_name("failover");
  REQUIRE(net.request(c, {pr::to_destination(r)}, generic_store(r)));
  net.run_for(2s);
  REQUIRE(net.at(c).delivered.size() == 1);
  CHECK(net.at(c).delivered[0].msg.contents.code == pr::codes::store_ans);
}

TEST_CASE("ring: 40 peers joining at once converge" *
          doctest::skip(std::getenv("P2PSIP_SIM_SLOW") == nullptr)) {
  for (std::uint64_t seed = 200; seed < 203; ++seed) {
    CAPTURE(seed);
    auto net = make_ring(40, seed, 0ms, 90s);
    CHECK(net.ring().size() == 40);
    CHECK(net.ring_problems() == "");
  }
}

namespace {

/// A ring of n peers with the daemon's stabilization timers (update every 400 s, a finger every
/// 60 s): what a peer learns must come from Join/Update, not from the next stabilization round.
sim_network make_production_ring(std::size_t n, std::uint64_t seed) {
  sim_network net(seed);
  seeded_random ids(seed * 7919 + 1);
  auto config = [&](peer::node_role role) {
    auto c = sim_network::default_config(random_id(ids), role);
    c.update_interval = 400s;
    c.finger_interval = 60s;
    c.request_timeout = 10s;
    c.link_linger = 30s;
    return c;
  };
  net.add(config(peer::node_role::first_peer));
  net.start(0);
  for (std::size_t i = 1; i < n; ++i) {
    net.start(net.add(config(peer::node_role::joining_peer)));
    net.run_for(1s);
  }
  net.run_for(30s);
  return net;
}

}  // namespace

TEST_CASE("ring: a peer restarted after a crash is back in its neighbors' tables at once") {
  for (const std::uint64_t seed : {101u, 102u, 103u}) {
    CAPTURE(seed);
    auto net = make_production_ring(10, seed);
    REQUIRE(net.ring_problems() == "");
    const std::size_t victim = 4;
    net.crash(victim);
    net.run_for(4s);
    REQUIRE(net.ring_problems() == "");
    net.restart(victim);
    net.run_for(5s);
    CHECK(net.ring().size() == 10);
    CHECK(net.ring_problems() == "");
  }
}

TEST_CASE("ring: values written while their peer was down reach it when it comes back") {
  for (const std::uint64_t seed : {111u, 112u, 113u}) {
    CAPTURE(seed);
    auto net = make_production_ring(10, seed);
    REQUIRE(net.ring_problems() == "");
    const std::size_t victim = 6;
    const auto victim_id = net.at(victim).self;
    const auto ring = net.ring();
    const auto pos = std::find(ring.begin(), ring.end(), victim_id) - ring.begin();
    const auto pred = ring[(static_cast<std::size_t>(pos) + ring.size() - 1) % ring.size()];
    net.crash(victim);
    net.run_for(4s);
    // Resources in the victim's range, written while it is down (to its successor, which is
    // responsible meanwhile).
    std::vector<pr::resource_id> rs;
    for (int i = 0; rs.size() < 20 && i < 100000; ++i) {
      auto r = pr::hash_resource_name("down" + std::to_string(seed) + "-" + std::to_string(i));
      if (pr::in_half_open_interval(*r.as_ring_point(), pred, victim_id)) rs.push_back(r);
    }
    REQUIRE(rs.size() == 20);
    net.run_for(3s);
    for (const auto& r : rs) REQUIRE(net.request(0, {pr::to_destination(r)}, generic_store(r)));
    net.run_for(3s);
    for (const auto& r : rs) REQUIRE(holders(net, r) >= 3);
    net.restart(victim);
    net.run_for(5s);
    REQUIRE(net.ring_problems() == "");
    for (const auto& r : rs) {
      CAPTURE(r.hex());
      CHECK(owner_of(net, *r.as_ring_point()) == *net.index_of(victim_id));
      CHECK(net.at(victim).storage->has(r));
    }
  }
}

TEST_CASE("ring: a hung neighbor is dropped within the neighbor check, long before an Update") {
  for (const std::uint64_t seed : {121u, 122u}) {
    CAPTURE(seed);
    auto net = make_production_ring(8, seed);
    REQUIRE(net.ring_problems() == "");
    const auto start = net.now();
    net.mute(3);  // a hung process: its links stay up, it answers nothing
    // neighbor_check_interval (15 s) + a third of it, jittered, + the Ping's request timeout
    // (10 s), + repair.
    while (net.ring().size() != 7 || net.ring_problems() != "") {
      REQUIRE(net.now() - start < 60s);
      net.run_for(1s);
    }
    const auto took = std::chrono::duration_cast<std::chrono::seconds>(net.now() - start);
    MESSAGE("hung neighbor dropped and the ring repaired in " << took.count() << " s");
    CHECK(took <= 40s);
  }
}

TEST_CASE("ring: a joining peer is responsible only once it holds its range") {
  // The admitting peer holds 300 resources and may have 8 requests in flight: the hand-over
  // takes many round trips. Fetches for the joining peer's range, sent all along, always find
  // the value (RFC 6940 10.5 steps 6 and 7 in order).
  sim_network net(131);
  const auto rs = start_holding_peer(net, 300, "admit");
  auto reader_cfg = sim_network::default_config(id_at(0x50), peer::node_role::joining_peer);
  const auto reader = net.add_client(reader_cfg);
  net.start(reader);
  net.run_for(2s);
  auto second = sim_network::default_config(id_at(0x90), peer::node_role::joining_peer);
  const auto joining = net.add(second);
  net.start(joining);
  std::vector<pr::resource_id> theirs;
  for (const auto& r : rs) {
    if (pr::in_half_open_interval(*r.as_ring_point(), id_at(0x10), id_at(0x90)))
      theirs.push_back(r);
  }
  REQUIRE(theirs.size() > 50);
  std::size_t asked = 0;
  for (int step = 0; step < 100; ++step) {
    const auto& r = theirs[static_cast<std::size_t>(step) % theirs.size()];
    REQUIRE(net.request(reader, {pr::to_destination(r)}, pr::fetch_req{r, {}}));
    ++asked;
    net.run_for(50ms);
  }
  net.run_for(5s);
  REQUIRE(net.ring().size() == 2);
  const auto& got = net.at(reader).delivered;
  REQUIRE(got.size() == asked);
  for (const auto& d : got) {
    CAPTURE(static_cast<int>(d.what));
    CHECK(d.what == p2psip::node::outcome::kind::answer);
  }
  for (const auto& r : theirs) CHECK(net.at(joining).storage->has(r));
}

TEST_CASE("ring: peers joining one admitting peer at once each get their range before serving it") {
  // After a failure several peers may rejoin into one peer's range together. Each hand-over
  // goes out in turn with the others (not one after another), so no joining peer waits long
  // enough in silence to count itself joined without its data; reads of every range, sent all
  // along, find their values.
  sim_network net(141);
  net.keep_logs = true;
  const auto rs = start_holding_peer(net, 600, "together");
  const auto reader =
      net.add_client(sim_network::default_config(id_at(0x05), peer::node_role::joining_peer));
  net.start(reader);
  net.run_for(2s);
  std::vector<std::size_t> joining;
  for (const std::uint8_t top : {std::uint8_t{0x40}, std::uint8_t{0x90}, std::uint8_t{0xC0}}) {
    auto cfg = sim_network::default_config(id_at(top), peer::node_role::joining_peer);
    cfg.join_retry = 2s;  // a joining peer left in silence this long would go on without its data
    joining.push_back(net.add(cfg));
  }
  for (const auto j : joining) net.start(j);
  std::size_t asked = 0;
  for (int step = 0; step < 200; ++step) {
    const auto& r = rs[static_cast<std::size_t>(step) * 7 % rs.size()];
    REQUIRE(net.request(reader, {pr::to_destination(r)}, pr::fetch_req{r, {}}));
    ++asked;
    net.run_for(50ms);
  }
  net.run_for(10s);
  REQUIRE(net.ring().size() == 4);
  CHECK(net.ring_problems() == "");
  const auto& got = net.at(reader).delivered;
  REQUIRE(got.size() == asked);
  // No answer "not found" (a responsible peer without the value); a routing error while the
  // ring changes under a request ("no route") is an availability blip, counted and bounded.
  std::size_t not_found = 0, other = 0;
  for (const auto& d : got) {
    if (d.what == p2psip::node::outcome::kind::answer) continue;
    auto e = pr::decode_body(d.msg.contents.code, d.msg.contents.body, pr::limits{});
    const auto* err = e ? std::get_if<pr::error_response>(&*e) : nullptr;
    const bool missing =
        err && err->error_code == static_cast<std::uint16_t>(pr::reload_errc::not_found) &&
        std::string(err->error_info.begin(), err->error_info.end()) == "not found";
    ++(missing ? not_found : other);
  }
  MESSAGE(asked << " reads: " << not_found << " not found, " << other << " other failures");
  CHECK(not_found == 0);
  CHECK(other <= 2);
  if (not_found != 0) {
    for (std::size_t i = 0; i < net.size(); ++i) {
      for (const auto& l : net.at(i).logs) {
        if (l.find("oin") != std::string::npos) MESSAGE(i << ": " << l);
      }
    }
  }
  for (const auto& r : rs) {
    CAPTURE(r.hex());
    CHECK(net.at(owner_of(net, *r.as_ring_point())).storage->has(r));
  }
}
