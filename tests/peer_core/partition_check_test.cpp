// RFC 6940 10.7.4.4 on one core, by hand: which bootstrap peer a check goes through, what it
// sends, and what it makes of the answers. (Rings merging end to end: tests/sim and
// tests/integration.)
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <vector>

#include "sim_network.hpp"

namespace pr = p2psip::protocol;
namespace peer = p2psip::peer;
using namespace p2psip::sim;
using namespace std::chrono_literals;

namespace {

pr::ip_address_port address_of(std::uint8_t last) {
  pr::ipv4_address_port a;
  a.address = {10, 0, 0, last};
  a.port = 6084;
  return pr::ip_address_port{a};
}

/// First peer 0x10 listening at 10.0.0.1, bootstrap peers 10.0.0.2 and 10.0.0.3, a check every
/// 10 s (jittered to 5..15 s).
struct checking_core {
  fake_signer signer{id_at(0x10)};
  memory_storage storage;
  seeded_random rng{3};
  peer::overlay_core core;
  time_point now = time_point{} + std::chrono::hours(24 * 365 * 50);
  std::vector<peer::action> actions;

  static peer::core_config config() {
    auto c = sim_network::default_config(id_at(0x10), peer::node_role::first_peer);
    c.listen_address = address_of(1);
    c.bootstrap = {address_of(2), address_of(3)};
    c.partition_check_interval = 10s;
    c.update_interval = 400s;
    c.finger_interval = 400s;
    return c;
  }
  checking_core() : core(config(), signer, &storage, rng) { core.start(now); }

  /// Runs the timers until the core opens a link (at most `limit`); the address it opens.
  std::optional<pr::ip_address_port> next_open(std::chrono::milliseconds limit = 20s) {
    const auto end = now + limit;
    while (now < end) {
      now += 100ms;
      core.on_timer(now);
      for (auto& a : core.take_actions()) {
        if (const auto* o = std::get_if<peer::open_link_action>(&a)) return o->address;
        actions.push_back(std::move(a));
      }
    }
    return std::nullopt;
  }
  std::vector<pr::message> sent_on(peer::link_id link) {
    std::vector<pr::message> out;
    for (auto& a : core.take_actions()) {
      if (const auto* s = std::get_if<peer::send_action>(&a); s && s->link == link) {
        auto m = pr::decode_message(s->data, pr::limits{});
        REQUIRE(m);
        out.push_back(*m);
      }
    }
    return out;
  }
  void feed(peer::link_id link, const pr::message& m) {
    auto bytes = pr::encode_message(m, pr::limits{});
    REQUIRE(bytes);
    core.on_message(link, *bytes, now);
  }
};

/// The check's Ping: to the Resource-ID equal to our Node-ID.
pr::message the_check(const std::vector<pr::message>& sent) {
  REQUIRE(sent.size() == 1);
  const auto& m = sent.front();
  REQUIRE(m.contents.code == pr::codes::ping_req);
  REQUIRE(m.header.destination_list.size() == 1);
  const auto* r = m.header.destination_list.front().resource();
  REQUIRE(r != nullptr);
  CHECK(r->value == pr::to_bytes(id_at(0x10).view()));
  return m;
}

}  // namespace

TEST_CASE("partition check: bootstrap peers in turn, an address that is ourselves is dropped") {
  checking_core c;
  // The first check goes to 10.0.0.2, which turns out to be us (we listen on every address).
  const auto first = c.next_open();
  REQUIRE(first.has_value());
  CHECK(*first == address_of(2));
  c.core.on_link_up(peer::link_id{1}, id_at(0x10), c.now, peer::link_origin::outbound);
  bool closed = false;
  for (auto& a : c.core.take_actions())
    closed = closed || std::holds_alternative<peer::close_link_action>(a);
  CHECK(closed);
  // From then on only 10.0.0.3.
  for (int i = 0; i < 3; ++i) {
    const auto next = c.next_open();
    REQUIRE(next.has_value());
    CHECK(*next == address_of(3));
    c.core.on_link_failed(*next, c.now);
  }
}

TEST_CASE("partition check: our own Ping back is one ring, a stranger answering is another") {
  checking_core c;
  const auto first = c.next_open();
  REQUIRE(first.has_value());
  const peer::link_id to_b{1};
  c.core.on_link_up(to_b, id_at(0x80), c.now, peer::link_origin::outbound);
  CHECK(c.core.connections().at(to_b).partition_check);
  const auto check = the_check(c.sent_on(to_b));
  CHECK(c.core.stats().partition_checks == 1);

  SUBCASE("the Ping comes back to us through B's ring: no error, nothing detected") {
    auto back = check;
    back.header.via_list.push_back(pr::to_destination(id_at(0x10)));  // B adds us as the sender
    back.header.via_list.push_back(pr::to_destination(id_at(0x80)));
    c.feed(to_b, back);
    CHECK(c.sent_on(to_b).empty());
    CHECK(c.core.stats().errors_sent == 0);
    CHECK(c.core.stats().partitions_detected == 0);
  }
  SUBCASE("B answers for our place: B's ring is another one; we Update B") {
    pr::message ans;
    ans.header.overlay = check.header.overlay;
    ans.header.ttl = 100;
    ans.header.transaction_id = check.header.transaction_id;
    ans.header.destination_list = {pr::to_destination(id_at(0x10))};
    ans.contents.code = pr::codes::ping_ans;
    ans.contents.body = *pr::encode_body(pr::ping_ans{1, 1});
    fake_signer(id_at(0x80)).sign(ans);
    c.feed(to_b, ans);
    CHECK(c.core.stats().partitions_detected == 1);
    const auto sent = c.sent_on(to_b);
    REQUIRE(sent.size() == 1);
    CHECK(sent.front().contents.code == pr::codes::update_req);
  }
}
