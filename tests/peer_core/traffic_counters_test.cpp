// What /metrics reports comes from the node layer's counters (message_transport::traffic()):
// messages by code both ways, Error responses by Error-Code, request latencies in buckets, and
// data movement's replica Stores. Driven on sim_network, where every hop takes virtual time.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "sim_network.hpp"

namespace pr = p2psip::protocol;
namespace peer = p2psip::peer;
namespace node = p2psip::node;
using namespace p2psip::sim;

TEST_CASE("latency_histogram: bucket bounds are inclusive upper bounds, the last takes the rest") {
  node::latency_histogram h;
  h.observe(std::chrono::microseconds(500));  // exactly 0.0005 s: the first bucket
  h.observe(std::chrono::microseconds(700));  // (0.0005, 0.001]: the second
  h.observe(std::chrono::seconds(20));        // above 10 s: the last
  h.observe(std::chrono::nanoseconds(-5));    // a clock going back counts as 0
  CHECK(h.counts[0] == 2);
  CHECK(h.counts[1] == 1);
  CHECK(h.counts.back() == 1);
  CHECK(h.count == 4);
  CHECK(h.sum_seconds == doctest::Approx(20.0012));
}

TEST_CASE("traffic: messages and errors by code, latencies, replica Stores") {
  sim_network net(71);
  for (std::uint8_t i = 0; i < 4; ++i) {
    net.add(id_at(static_cast<std::uint8_t>(0x20 + 0x40 * i)),
            i == 0 ? peer::node_role::first_peer : peer::node_role::joining_peer);
    net.start(i);
    net.run_for(300ms);
  }
  net.run_for(20s);
  auto cfg = sim_network::default_config(id_at(0x05), peer::node_role::joining_peer);
  const auto c = net.add_client(cfg);
  net.start(c);
  net.run_for(1s);

  const auto sum = [&](auto of) {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i < 4; ++i) n += of(net.core(i));
    return n;
  };
  const auto replicas_before = sum([](peer::overlay_core& p) { return p.stats().replica_stores; });
  const auto originated_before = sum([](peer::overlay_core& p) {
    const auto& l = p.transport().traffic().request_latency;
    const auto it = l.find(pr::codes::store_req);
    return it == l.end() ? std::uint64_t{0} : it->second.count;
  });

  const auto r = pr::hash_resource_name("counted");
  REQUIRE(net.request(c, {pr::to_destination(r)}, p2psip::sim::generic_store(r)));
  net.run_for(2s);
  REQUIRE(net.at(c).delivered.size() == 1);
  REQUIRE(net.at(c).delivered[0].msg.contents.code == pr::codes::store_ans);

  const auto& mine = net.at(c).client->transport().traffic();
  CHECK(mine.sent_by_code.at(pr::codes::store_req) == 1);
  CHECK(mine.received_by_code.at(pr::codes::store_ans) == 1);
  REQUIRE(mine.request_latency.count(pr::codes::store_req) == 1);
  const auto& latency = mine.request_latency.at(pr::codes::store_req);
  CHECK(latency.count == 1);
  CHECK(latency.sum_seconds > 0);  // the simulated links take time
  // The responsible peer sent it to its two replicas, whose answers came back.
  CHECK(sum([](peer::overlay_core& p) {
          const auto& l = p.transport().traffic().request_latency;
          const auto it = l.find(pr::codes::store_req);
          return it == l.end() ? std::uint64_t{0} : it->second.count;
        }) == originated_before + 2);
  CHECK(sum([](peer::overlay_core& p) { return p.stats().replica_stores; }) == replicas_before + 2);

  // A Join sent by a client through the overlay is refused (Error_Forbidden): counted at the
  // peer that sent the error and at the client that received it.
  const auto forbidden = static_cast<std::uint16_t>(pr::reload_errc::forbidden);
  const auto forbidden_sent = [&] {
    return sum([&](peer::overlay_core& p) {
      const auto& e = p.transport().traffic().errors_sent_by_code;
      const auto it = e.find(forbidden);
      return it == e.end() ? std::uint64_t{0} : it->second;
    });
  };
  const auto sent_before = forbidden_sent();
  pr::join_req j;
  j.joining_peer_id = cfg.self;
  REQUIRE(net.request(c, {pr::to_destination(id_at(0xA0))}, j));
  net.run_for(2s);
  REQUIRE(net.at(c).delivered.size() == 2);
  CHECK(net.at(c).delivered[1].msg.contents.code == pr::codes::error);
  CHECK(mine.errors_received_by_code.at(forbidden) == 1);
  CHECK(mine.received_by_code.at(pr::codes::error) == 1);
  CHECK(forbidden_sent() == sent_before + 1);
}
