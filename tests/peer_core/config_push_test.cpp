// A newer configuration document crossing an overlay by ConfigUpdate pushes (RFC 6940 6.5.4):
// adopted at one peer, taken by every peer, also those not linked to it, each taking it once, and
// by a client attached to another peer.
#include <doctest/doctest.h>

#include <system_error>
#include <vector>

#include "sim_network.hpp"

namespace pr = p2psip::protocol;
namespace peer = p2psip::peer;
namespace nd = p2psip::node;
using namespace p2psip::sim;
using namespace std::chrono_literals;

namespace {

pr::node_id random_id(seeded_random& r) {
  pr::bytes b(16);
  for (auto& x : b) x = static_cast<std::uint8_t>(r.next_u64());
  return *pr::node_id::from_bytes(b);
}

/// The document of sequence n, as the stand-in acceptor below reads it: one byte.
pr::bytes document_of(std::uint8_t n) {
  return pr::bytes{n};
}

}  // namespace

TEST_CASE("a document adopted at one peer reaches every node by ConfigUpdate pushes, once each") {
  constexpr std::size_t n = 24;
  sim_network net(42);
  seeded_random ids(4242);
  net.add(random_id(ids), peer::node_role::first_peer);
  net.start(0);
  for (std::size_t i = 1; i < n; ++i) {
    net.start(net.add(random_id(ids), peer::node_role::joining_peer));
    net.run_for(300ms);
  }
  // A client, attached to peer 1 (its bootstrap).
  auto client_cfg = sim_network::default_config(random_id(ids), peer::node_role::joining_peer);
  client_cfg.bootstrap = {net.at(1).address};
  const auto client = net.add_client(client_cfg);
  net.start(client);
  net.run_for(20s);
  REQUIRE(net.ring_problems() == "");
  REQUIRE(net.linked(client, 1));
  REQUIRE(!net.linked(client, 0));

  // Each peer takes a one-byte "document" whose byte is newer than its sequence (the real
  // acceptor checks the signature too: node_setup::take_update), and counts what it took.
  std::vector<int> taken(n + 1, 0);
  for (std::size_t i = 0; i <= n; ++i) {
    auto& node = *net.at(i).engine;
    node.config_updates().set_acceptor(
        [&taken, &node, i](pr::byte_view doc) -> pr::result<std::uint16_t, pr::error_record> {
          const auto current = node.transport().config().configuration_sequence;
          if (doc.size() != 1 || doc[0] <= current) {
            return pr::unexpected(
                pr::error_record{std::make_error_code(std::errc::invalid_argument), "not newer"});
          }
          ++taken[i];
          return doc[0];
        });
  }
  std::size_t not_linked_to_origin = 0;
  for (std::size_t i = 1; i < n; ++i) {
    if (!net.linked(0, i)) ++not_linked_to_origin;
  }
  // The push must cross more than one hop to be shown here.
  REQUIRE(not_linked_to_origin > 0);

  const auto pushed = net.core(0).config_updates().adopt(document_of(2), 2, net.now());
  net.drain(0);
  CHECK(pushed > 0);
  CHECK(pushed < n);
  // Pushed hop by hop, it is everywhere within a few network latencies (5-10 ms each), long
  // before the peers' own requests (Updates every 2 s, fingers every 0.5 s) would have fetched
  // it as answers to an older sequence.
  net.run_for(150ms);
  for (std::size_t i = 0; i <= n; ++i) {
    CAPTURE(i);
    CHECK(net.at(i).engine->transport().config().configuration_sequence == 2);
    CHECK(taken[i] == (i == 0 ? 0 : 1));
  }
  // The ring carries on with the new sequence everywhere: no request is found too old any more
  // (each would be answered with a ConfigUpdate).
  const auto replies = [&] {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < n; ++i)
      sum += net.core(i).transport().counters().config_updates_sent;
    return sum;
  };
  const auto before = replies();
  net.run_for(10s);
  CHECK(replies() == before);
  CHECK(net.ring_problems() == "");
}
