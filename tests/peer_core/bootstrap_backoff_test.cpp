// Bootstrap peers that cannot be reached: the core tries each once, then waits before the next
// round (200 ms doubling to 10 s) instead of reconnecting in a tight loop.
#include <doctest/doctest.h>

#include "sim_network.hpp"

namespace pr = p2psip::protocol;
namespace peer = p2psip::peer;
using namespace p2psip::sim;

namespace {

std::size_t opens(std::vector<peer::action> actions) {
  std::size_t n = 0;
  for (const auto& a : actions) {
    if (std::holds_alternative<peer::open_link_action>(a)) ++n;
  }
  return n;
}

/// Fails every open_link action at once (as a refused connection on loopback does) until
/// `until`, answering deadlines as they come; returns how many links were tried.
std::size_t refuse_until(p2psip::node::node_engine& core, time_point& now, time_point until) {
  std::size_t tried = 0;
  for (int guard = 0; guard < 100000 && now < until; ++guard) {
    const auto n = opens(core.take_actions());
    tried += n;
    for (std::size_t i = 0; i < n; ++i) {
      core.on_link_failed(*pr::ip_address_port::parse("127.0.0.1:9"), now);
    }
    if (n > 0) continue;
    const auto next = core.next_deadline();
    if (!next || *next > until) break;
    now = std::max(now, *next);
    core.on_timer(now);
  }
  now = until;
  return tried;
}

}  // namespace

TEST_CASE("core: unreachable bootstrap peers are retried with a growing wait, not in a loop") {
  for (const bool client : {true, false}) {
    CAPTURE(client);
    fake_signer signer{id_at(0x42)};
    memory_storage storage;
    seeded_random rng{3};
    auto cfg = sim_network::default_config(id_at(0x42), peer::node_role::joining_peer);
    cfg.bootstrap = {*pr::ip_address_port::parse("127.0.0.1:9"),
                     *pr::ip_address_port::parse("127.0.0.1:10")};
    std::unique_ptr<p2psip::node::node_engine> node;
    if (client) {
      p2psip::node::client_config cc;
      cc.transport.self = cfg.self;
      cc.bootstrap = cfg.bootstrap;
      node = std::make_unique<p2psip::node::client_node>(cc, signer, rng);
    } else {
      node = std::make_unique<peer::overlay_core>(cfg, signer, &storage, rng);
    }
    auto& core = *node;
    time_point now = time_point{} + std::chrono::hours(24 * 365 * 50);
    const auto start = now;
    core.start(now);
    // 2 s: rounds at 0, 0.2, 0.6, 1.4 s (waits 200, 400, 800 ms) of two attempts each.
    const auto tried = refuse_until(core, now, start + std::chrono::seconds(2));
    CHECK(tried >= 6);
    CHECK(tried <= 10);
    // After a minute the wait is capped at 10 s: about six rounds more, not thousands.
    const auto later = refuse_until(core, now, now + std::chrono::seconds(60));
    CHECK(later >= 8);
    CHECK(later <= 20);
  }
}

TEST_CASE("core: a peer that cannot reach its bootstrap peers warns with the reason on each try") {
  fake_signer signer{id_at(0x43)};
  memory_storage storage;
  seeded_random rng{4};
  auto cfg = sim_network::default_config(id_at(0x43), peer::node_role::joining_peer);
  const auto first = *pr::ip_address_port::parse("127.0.0.1:9");
  const auto second = *pr::ip_address_port::parse("127.0.0.1:10");
  cfg.bootstrap = {first, second};
  peer::overlay_core core(cfg, signer, &storage, rng);
  time_point now = time_point{} + std::chrono::hours(24 * 365 * 50);
  core.start(now);
  const auto warnings = [&] {
    std::vector<std::string> out;
    for (auto& a : core.take_actions()) {
      if (const auto* l = std::get_if<peer::log_action>(&a); l && l->notable)
        out.push_back(l->text);
    }
    return out;
  };
  (void)warnings();
  core.on_link_failed(first, now, "TCP connect failed: Connection refused");
  auto w = warnings();
  REQUIRE(w.size() == 1);
  CHECK(w[0] ==
        "not joined: bootstrap peer 127.0.0.1:9 failed: TCP connect failed: Connection refused; "
        "trying the next bootstrap peer");
  core.on_link_failed(second, now, "the peer rejected our certificate: peer sent fatal alert X");
  w = warnings();
  REQUIRE(w.size() == 1);
  CHECK(w[0] ==
        "not joined: bootstrap peer 127.0.0.1:10 failed: the peer rejected our certificate: peer "
        "sent fatal alert X; next attempt in 200 ms");
}
