// routing_table: neighbor lists, finger intervals (RFC 6940 10.3 numbering), greedy next hop.
#include <doctest/doctest.h>

#include "p2psip/peer/routing_table.hpp"
#include "sim_network.hpp"

using p2psip::peer::routing_table;
using p2psip::sim::id_at;

TEST_CASE("routing_table keeps the nearest successors and predecessors") {
  routing_table t(id_at(0x10), 3);
  for (int b : {0x30, 0x80, 0xC0, 0x05, 0x50, 0x20}) t.add(id_at(static_cast<std::uint8_t>(b)));
  REQUIRE(t.successors().size() == 3);
  CHECK(t.successors()[0] == id_at(0x20));
  CHECK(t.successors()[1] == id_at(0x30));
  CHECK(t.successors()[2] == id_at(0x50));
  REQUIRE(t.predecessors().size() == 3);
  CHECK(t.predecessors()[0] == id_at(0x05));
  CHECK(t.predecessors()[1] == id_at(0xC0));
  CHECK(t.predecessors()[2] == id_at(0x80));
  CHECK_FALSE(t.add(id_at(0x10)));  // never itself
  CHECK(t.improves_neighbors(id_at(0x15)));
  CHECK_FALSE(t.improves_neighbors(id_at(0x60)));
}

TEST_CASE("routing_table finger numbering: finger 1 is half way round") {
  routing_table t(id_at(0x00, 0x00), 3);
  CHECK(t.finger_index(id_at(0x80)) == 1);  // [self + 2^127, self + 2^128)
  CHECK(t.finger_index(id_at(0xFF)) == 1);
  CHECK(t.finger_index(id_at(0x40)) == 2);  // [2^126, 2^127)
  CHECK(t.finger_index(id_at(0x7F)) == 2);
  CHECK(t.finger_index(id_at(0x01)) == 8);
  CHECK(t.finger_index(id_at(0x00)) == 0);  // self
  t.add(id_at(0x90));
  t.add(id_at(0x81));
  REQUIRE(t.finger(1));
  CHECK(*t.finger(1) == id_at(0x81));  // nearest the interval start
  CHECK_FALSE(t.finger(2));
  // Wrap-around: self near the top of the ring.
  routing_table w(id_at(0xF0), 3);
  CHECK(w.finger_index(id_at(0x70)) == 1);
  CHECK(w.finger_index(id_at(0x30)) == 2);
}

TEST_CASE("routing_table responsibility and greedy next hop") {
  routing_table t(id_at(0x10), 3);
  CHECK(t.is_responsible(id_at(0x99)));  // alone: the whole ring
  for (int b : {0x30, 0x80, 0xC0, 0x05}) t.add(id_at(static_cast<std::uint8_t>(b)));
  CHECK(t.is_responsible(id_at(0x08)));
  CHECK(t.is_responsible(id_at(0x10)));
  CHECK_FALSE(t.is_responsible(id_at(0x05)));
  CHECK_FALSE(t.is_responsible(id_at(0x11)));
  CHECK(*t.next_hop(id_at(0x90)) == id_at(0x80));  // largest in (self, k)
  CHECK(*t.next_hop(id_at(0x80)) == id_at(0x30));  // (self, k) is open
  CHECK(*t.next_hop(id_at(0x20)) == id_at(0x30));  // none in (self, k): smallest greater
  CHECK(*t.next_hop(id_at(0x02)) == id_at(0xC0));  // wraps past zero
  CHECK(*t.next_hop(id_at(0xFF)) == id_at(0xC0));
  t.remove(id_at(0x30));
  CHECK(*t.next_hop(id_at(0x20)) == id_at(0x80));
  routing_table empty(id_at(0x10));
  CHECK_FALSE(empty.next_hop(id_at(0x20)));
}

TEST_CASE("routing_table counts the changes of its contents, and only those") {
  routing_table t(id_at(0x10), 3);
  CHECK(t.changes() == 0);
  CHECK(t.add(id_at(0x30)));
  CHECK(t.changes() == 1);
  CHECK_FALSE(t.add(id_at(0x30)));  // already there: no change
  CHECK_FALSE(t.add(id_at(0x10)));  // itself: never
  CHECK(t.changes() == 1);
  t.remove(id_at(0x99));  // not in the table
  CHECK(t.changes() == 1);
  t.remove(id_at(0x30));
  CHECK(t.changes() == 2);
  t.clear();  // empty already
  CHECK(t.changes() == 2);
  t.rebuild({id_at(0x20), id_at(0x80)});
  CHECK(t.changes() == 4);  // two added
  t.clear();
  CHECK(t.changes() == 5);
  CHECK(t.empty());
}

// has_finger_start_in answers in one step what link upkeep asked of in_half_open_interval for
// every finger index: the two must agree, on random ids and on the edges (intervals that wrap,
// ends on a finger start, a start one past an end, the whole ring).
TEST_CASE("routing_table::has_finger_start_in agrees with a walk over every finger start") {
  namespace pr = p2psip::protocol;
  const auto walk = [](const pr::node_id& peer, const pr::node_id& a, const pr::node_id& b) {
    for (unsigned i = 1; i <= 8 * peer.size(); ++i) {
      if (pr::in_half_open_interval(pr::finger_target(peer, i), a, b)) return true;
    }
    return false;
  };
  p2psip::sim::seeded_random rng(42);
  const auto random_id = [&] {
    pr::bytes b(16);
    for (auto& x : b) x = static_cast<std::uint8_t>(rng.next_u64());
    return *pr::node_id::from_bytes(b);
  };
  std::size_t in = 0;
  for (int round = 0; round < 4000; ++round) {
    const auto peer = random_id();
    // Arcs of every size: random ends, and ends a few bits apart (short arcs are the usual case:
    // one peer's range).
    const auto a = round % 2 == 0
                       ? random_id()
                       : peer + pr::node_id::power_of_two(static_cast<unsigned>(rng.below(128)));
    const auto b = round % 3 == 0
                       ? random_id()
                       : a + pr::node_id::power_of_two(static_cast<unsigned>(rng.below(128)));
    const bool want = walk(peer, a, b);
    in += want ? 1u : 0u;
    CAPTURE(peer.hex());
    CAPTURE(a.hex());
    CAPTURE(b.hex());
    REQUIRE(routing_table::has_finger_start_in(peer, a, b) == want);
  }
  CHECK(in > 100);  // both answers were exercised
  CHECK(in < 3900);
  const auto p = id_at(0x10);
  const auto start1 = p + pr::node_id::power_of_two(127);  // finger 1's start
  CHECK(routing_table::has_finger_start_in(p, start1 - pr::node_id::power_of_two(0), start1));
  CHECK_FALSE(routing_table::has_finger_start_in(p, start1, start1 + pr::node_id::power_of_two(3)));
  CHECK(routing_table::has_finger_start_in(p, p, p.next()));     // p + 2^0
  CHECK(routing_table::has_finger_start_in(p, start1, start1));  // the whole ring
  CHECK(walk(p, start1, start1));
}

TEST_CASE("log_throttle: the first event is reported, then one line per interval with the count") {
  p2psip::node::log_throttle t(std::chrono::milliseconds(10'000));
  const auto t0 = p2psip::node::time_point{} + std::chrono::hours(1);
  CHECK(t.note(t0) == 1u);
  CHECK_FALSE(t.note(t0 + std::chrono::seconds(1)).has_value());
  CHECK_FALSE(t.note(t0 + std::chrono::seconds(9)).has_value());
  CHECK(t.note(t0 + std::chrono::seconds(10)) == 3u);  // the two held back and this one
  CHECK_FALSE(t.note(t0 + std::chrono::seconds(19)).has_value());
  CHECK(t.note(t0 + std::chrono::seconds(25)) == 2u);
}
