// The reference peer end to end: real p2psip-peer processes on 127.0.0.1, data through the SDK.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "flip_bytes.hpp"
#include "p2psip/client/client.hpp"
#include "p2psip/config/overlay_config.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "p2psip/node/node_setup.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/message.hpp"
#include "p2psip/transport/link.hpp"
#include "process_overlay.hpp"
#include "raw_link.hpp"

using namespace p2psip;
using namespace std::chrono_literals;
using client::to_bytes;
using client::to_string;
namespace pr = p2psip::protocol;
using p2psip::test::raw_link;

namespace p2psip::test {
namespace {

/// An overlay of `peers` real peers, and SDK clients attached to one of them.
struct overlay_fixture {
  process_overlay overlay{P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY};

  explicit overlay_fixture(std::size_t peers) { overlay.start_ring(peers); }
  /// One peer started with `peer_args`.
  explicit overlay_fixture(const std::vector<std::string>& peer_args) {
    overlay.start_peer("p0", false, peer_args);
    REQUIRE(overlay.wait_ring(30s));
  }

  std::unique_ptr<client::client> attach(const std::string& user, std::size_t peer) {
    overlay.enroll(user);
    client::client_options o;
    o.config_file = overlay.config_file().string();
    o.certificate_file = overlay.cert_of(user).string();
    o.key_file = overlay.key_of(user).string();
    o.peers = {overlay.peers().at(peer).address};
    o.operation_timeout = std::chrono::seconds(20);
    o.request_timeout = std::chrono::seconds(5);
    auto c = client::client::create(o);
    REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
    auto attached = (*c)->wait_attached(std::chrono::seconds(10));
    REQUIRE_MESSAGE(attached.has_value(), (attached ? "" : attached.error().message));
    return std::move(*c);
  }
};

}  // namespace
}  // namespace p2psip::test

namespace {

std::string name_of(int i) {
  return "value-" + std::to_string(i);
}
std::string content_of(int i) {
  return "content of value " + std::to_string(i);
}

/// Puts values [from, to) through `c`.
void put_values(client::client& c, int from, int to) {
  for (int i = from; i < to; ++i) {
    auto r = c.put(name_of(i), to_bytes(content_of(i)));
    REQUIRE_MESSAGE(r.has_value(), name_of(i) << ": " << (r ? "" : r.error().message));
  }
}

/// Every value in [from, to) reads back through `c` exactly as written by `writer`.
void check_values(client::client& c, int from, int to, const std::string& writer) {
  for (int i = from; i < to; ++i) {
    auto r = c.get(name_of(i));
    REQUIRE_MESSAGE(r.has_value(), name_of(i) << ": " << (r ? "" : r.error().message));
    REQUIRE_MESSAGE(r->size() == 1, name_of(i) << ": " << r->size() << " values");
    CHECK(to_string(r->front().value) == content_of(i));
    CHECK(r->front().owner_node_id == writer);
  }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a peer that must listen on an
/// address known before it starts).
unsigned short free_loopback_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

/// Every value in [from, to) reads back as `writer` wrote it through a new client on each peer.
void check_values_through(test::overlay_fixture& f, const std::vector<std::size_t>& peers, int from,
                          int to, const std::string& writer) {
  for (const auto p : peers) {
    CAPTURE(p);
    auto reader = f.attach("reader" + std::to_string(p) + "-" + std::to_string(from), p);
    check_values(*reader, from, to, writer);
  }
}

/// Whether every value in [from, to) reads back through `c` as written by `writer` (no checks).
bool readable(client::client& c, int from, int to, const std::string& writer) {
  for (int i = from; i < to; ++i) {
    auto r = c.get(name_of(i));
    if (!r || r->size() != 1 || to_string(r->front().value) != content_of(i) ||
        r->front().owner_node_id != writer) {
      return false;
    }
  }
  return true;
}

/// The running peer indices.
std::vector<std::size_t> running(test::process_overlay& o) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < o.peers().size(); ++i) {
    if (o.peers()[i].pid > 0) out.push_back(i);
  }
  return out;
}

}  // namespace

TEST_CASE("integration: 10 peers, values stored through one are fetched through every other") {
  test::overlay_fixture f(10);
  auto writer = f.attach("writer", 0);
  put_values(*writer, 0, 30);
  check_values_through(f, {1, 2, 3, 4, 5, 6, 7, 8, 9}, 0, 30, writer->node_id());
}

TEST_CASE("integration: kill -9 of two neighbouring peers loses nothing") {
  test::overlay_fixture f(10);
  auto writer = f.attach("writer", 9);
  put_values(*writer, 0, 60);
  // Replicas are sent when the value is stored; give them a moment on the wire.
  std::this_thread::sleep_for(1s);
  // Two peers next to each other on the ring: a value they were responsible for and held the
  // first replica of survives only on the second replica holder.
  // (Not the writer's peer 9: its client would fail over, which is not this test.)
  auto& peers = f.overlay.peers();
  std::size_t victim = 0;
  std::size_t next = peers.size();
  for (; victim < 9 && next == peers.size(); ++victim) {
    std::string succ = f.overlay.status_field(victim, "succ");
    succ = succ.substr(0, succ.find(','));
    for (std::size_t i = 0; i < 9; ++i) {
      if (peers[i].node_id == succ) next = i;
    }
  }
  --victim;
  REQUIRE(next < peers.size());
  f.overlay.kill_peer(victim);
  f.overlay.kill_peer(next);
  REQUIRE_MESSAGE(f.overlay.wait_ring(60s), "the ring of 8 did not re-form");
  // Every survivor serves every value.
  check_values_through(f, running(f.overlay), 0, 60, writer->node_id());
}

TEST_CASE("integration: a peer restarted on its data directory still serves its data") {
  test::overlay_fixture f(0);
  f.overlay.start_ring(1, /*durable=*/true);
  std::string writer_id;
  {
    auto writer = f.attach("writer", 0);
    writer_id = writer->node_id();
    put_values(*writer, 0, 20);
  }
  // No clean leave: the store must already be on disk when the Store was answered.
  f.overlay.kill_peer(0);
  f.overlay.restart_peer(0);
  REQUIRE(f.overlay.wait_ring(30s));
  CHECK(f.overlay.status_field(0, "values") == "20");
  check_values_through(f, {0}, 0, 20, writer_id);
}

TEST_CASE("integration: a restarted peer rejoins a running overlay and serves again") {
  test::overlay_fixture f(0);
  f.overlay.start_ring(3, /*durable=*/true);
  auto writer = f.attach("writer", 0);
  put_values(*writer, 0, 20);
  f.overlay.kill_peer(2);
  REQUIRE(f.overlay.wait_ring(30s));
  f.overlay.restart_peer(2);
  REQUIRE_MESSAGE(f.overlay.wait_ring(60s), "the restarted peer did not rejoin");
  check_values_through(f, {2}, 0, 20, writer->node_id());
}

TEST_CASE("integration: SIGTERM makes peers leave cleanly and hand their data over") {
  test::overlay_fixture f(5);
  auto writer = f.attach("writer", 0);
  put_values(*writer, 0, 40);
  std::this_thread::sleep_for(500ms);
  // Two peers leave one after the other, then a third one crashes: with replicas alone on two
  // successors some values would be down to nothing; the leaving peers' hand-over and the
  // re-replication on each change keep two copies of everything.
  for (const std::size_t leaving : {std::size_t{1}, std::size_t{2}}) {
    CHECK(f.overlay.stop_peer(leaving) == 0);
    CHECK(f.overlay.log_of(leaving).find("left the overlay") != std::string::npos);
    REQUIRE(f.overlay.wait_ring(30s));
  }
  std::this_thread::sleep_for(500ms);
  f.overlay.kill_peer(3);
  REQUIRE(f.overlay.wait_ring(30s));
  check_values_through(f, {4}, 0, 40, writer->node_id());
}

// RFC 6940 10.5 step 6: a joining peer gets the data of the range it takes over from its
// admitting peer, so values stored before it came are served through it.
TEST_CASE("integration: peers joining an overlay that holds data serve the values they take over") {
  test::overlay_fixture f(3);
  auto writer = f.attach("writer", 0);
  put_values(*writer, 0, 40);
  for (int i = 0; i < 3; ++i) f.overlay.start_peer("late" + std::to_string(i));
  REQUIRE_MESSAGE(f.overlay.wait_ring(60s), "the late peers did not join");
  // The hand-overs follow the Joins; each late peer then holds its own range (and replicas).
  const auto until = std::chrono::steady_clock::now() + 20s;
  int taken_over = 0;
  while (std::chrono::steady_clock::now() < until) {
    taken_over = 0;
    for (std::size_t p = 3; p < 6; ++p)
      taken_over += std::stoi(f.overlay.status_field(p, "values"));
    if (taken_over > 0) break;
    std::this_thread::sleep_for(200ms);
  }
  CHECK(taken_over > 0);
  check_values_through(f, {3, 4, 5}, 0, 40, writer->node_id());
}

// RFC 6940 10.7.4.4 through real processes: ring B forms while ring A's bootstrap address is
// dead (connection refused: the network between them is down), takes writes, and keeps checking
// through that address; ring A then starts there and takes writes of its own. B's checks find A
// (a stranger answers for their own place), the rings merge into one, and every value is read
// through every peer.
TEST_CASE("integration: two rings started apart merge, and all their values are served") {
  test::overlay_fixture f(0);
  const std::string a_address = "127.0.0.1:" + std::to_string(free_loopback_port());
  const std::vector<std::string> checks{"--partition-check-interval", "2"};
  test::process_overlay::peer_start b0;
  b0.first = true;
  b0.bootstrap = {a_address};
  b0.extra_args = checks;
  f.overlay.start_peer("b0", b0);
  test::process_overlay::peer_start b_joiner;
  b_joiner.bootstrap = {f.overlay.peers()[0].address, a_address};
  b_joiner.extra_args = checks;
  f.overlay.start_peer("b1", b_joiner);
  f.overlay.start_peer("b2", b_joiner);
  REQUIRE_MESSAGE(f.overlay.wait_ring(60s), "ring B did not form");
  auto b_writer = f.attach("b-writer", 1);
  put_values(*b_writer, 0, 20);
  for (std::size_t p = 0; p < 3; ++p) {
    CHECK(f.overlay.log_of(p).find("answers for our Node-ID") == std::string::npos);
  }

  test::process_overlay::peer_start a0;
  a0.first = true;
  a0.listen = a_address;
  f.overlay.start_peer("a0", a0);
  test::process_overlay::peer_start a_joiner;
  a_joiner.bootstrap = {a_address};
  f.overlay.start_peer("a1", a_joiner);
  f.overlay.start_peer("a2", a_joiner);
  auto a_writer = f.attach("a-writer", 3);
  put_values(*a_writer, 20, 40);

  REQUIRE_MESSAGE(f.overlay.wait_ring(90s), "the two rings did not merge");
  // The merged ranges' hand-overs are still on the wire when the ring is first consistent.
  {
    auto probe = f.attach("probe", 0);
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < until &&
           !(readable(*probe, 0, 20, b_writer->node_id()) &&
             readable(*probe, 20, 40, a_writer->node_id()))) {
      std::this_thread::sleep_for(200ms);
    }
  }
  bool detected = false;
  for (std::size_t p = 0; p < 3; ++p) {
    detected = detected || f.overlay.log_of(p).find("answers for our Node-ID") != std::string::npos;
  }
  CHECK(detected);
  check_values_through(f, {0, 1, 2, 3, 4, 5}, 0, 20, b_writer->node_id());
  check_values_through(f, {0, 1, 2, 3, 4, 5}, 20, 40, a_writer->node_id());
}

TEST_CASE("integration: attached clients never enter a routing table, both directions work") {
  test::overlay_fixture f(5);
  std::vector<std::unique_ptr<client::client>> clients;
  std::set<std::string> client_ids;
  for (std::size_t i = 0; i < 3; ++i) {
    clients.push_back(f.attach("c" + std::to_string(i), i));
    client_ids.insert(clients.back()->node_id());
  }
  for (std::size_t i = 0; i < clients.size(); ++i) {
    REQUIRE(clients[i]->put("shared", to_bytes("from client " + std::to_string(i))));
  }
  for (auto& c : clients) {
    auto got = c->get("shared");
    REQUIRE(got.has_value());
    CHECK(got->size() == clients.size());
    auto pong = c->ping();
    REQUIRE(pong.has_value());
    CHECK(!pong->responder_node_id.empty());
  }
  // Several status periods (500 ms) with the clients attached.
  std::this_thread::sleep_for(2s);
  for (std::size_t p = 0; p < f.overlay.peers().size(); ++p) {
    const auto log = f.overlay.log_of(p);
    for (const auto& id : client_ids) {
      // Status lines list the predecessors, successors and the whole routing table.
      std::size_t at = 0;
      while ((at = log.find(" status node=", at)) != std::string::npos) {
        const auto end = log.find('\n', at);
        const auto line = log.substr(at, end - at);
        CHECK_MESSAGE(line.find(id) == std::string::npos, "client " << id << " in: " << line);
        at = end;
      }
    }
    // Links from nodes that never joined: our client, and peers that attached to us only as
    // their finger.
    if (p < clients.size()) CHECK(std::stoi(f.overlay.status_field(p, "clients")) >= 1);
  }
}

TEST_CASE("integration: a link sending undecodable messages is closed, the peer keeps serving") {
  test::overlay_fixture f(2);
  raw_link hostile(f.overlay, "hostile", 0);
  // Garbage that passes framing but is no RELOAD message.
  for (int i = 0; i < 20; ++i)
    (void)hostile.link->try_send(pr::bytes(200, static_cast<std::uint8_t>(i)));
  CHECK(hostile.closes_within(10s));
  auto other = f.attach("other", 0);
  REQUIRE(other->put("after-garbage", to_bytes("still here")));
  CHECK(other->get("after-garbage")->size() == 1);
}

TEST_CASE("integration: a client flooding requests over its rate is slowed, not cut off") {
  test::overlay_fixture f(std::vector<std::string>{"--client-rate", "50", "--client-burst", "100"});
  raw_link flooder(f.overlay, "flooder", 0);
  // Count the answers as they come (a reader that stops reading would slow the flood through TCP
  // by itself).
  auto answers = std::make_shared<std::size_t>(0);
  asio::co_spawn(
      flooder.io,
      [l = flooder.link, answers]() -> asio::awaitable<void> {
        while (co_await l->receive()) ++*answers;
      },
      asio::detached);
  // Signed Pings as fast as the link takes them for 3 s: the peer answers the burst of 100 and
  // then 50/s, reading the rest more slowly (they wait in TCP), and drops nothing.
  std::uint64_t tx = 1;
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 3s) {
    for (int burst = 0; burst < 50; ++burst) {
      if (flooder.link->try_send(flooder.ping(tx))) ++tx;
    }
    flooder.io.run_for(10ms);
    flooder.io.restart();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto answered = *answers;
  const auto sent = tx - 1;
  MESSAGE(sent << " Pings sent in " << seconds << " s, " << answered << " answered");
  CHECK(tx - 1 > answered);                                              // it was held back
  CHECK(answered >= 100);                                                // the burst
  CHECK(answered <= 100 + static_cast<std::size_t>(50 * seconds) + 60);  // then the rate
  CHECK(flooder.link->state() == transport::link_state::established);    // not cut off
  // A well-behaved client of the same peer is served at its own rate while the flooder's
  // backlog is still being read.
  auto polite = f.attach("polite", 0);
  const auto polite_start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) REQUIRE(polite->put("polite-" + std::to_string(i), to_bytes("v")));
  const double polite_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - polite_start).count();
  MESSAGE("20 puts of a polite client during the flood: " << polite_s << " s");
  CHECK(polite_s < 5.0);
  CHECK(flooder.link->state() == transport::link_state::established);
}

TEST_CASE("integration: a damaged copy is repaired from another holder when it is needed") {
  // The first successor of a value's owner holds a replica; damage it there (stopped, a byte
  // flipped in its file, restarted: its own range comes back from a Join hand-over, the replica
  // does not), then kill the owner: the successor becomes responsible, drops the damaged value
  // when a read touches it, and fetches a good copy from the other holder.
  test::process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  o.start_ring(3, /*durable=*/true);
  o.enroll("writer");
  client::client_options opts;
  opts.config_file = o.config_file().string();
  opts.certificate_file = o.cert_of("writer").string();
  opts.key_file = o.key_of("writer").string();
  opts.peers = o.addresses();
  opts.operation_timeout = 20s;
  opts.request_timeout = 5s;
  const std::string name = "repair-me";
  const std::string text = "a value to damage and repair";
  {
    auto c = client::client::create(opts);
    REQUIRE(c.has_value());
    REQUIRE((*c)->put(name, to_bytes(text)));
  }
  // Ring order of the peers, and the owner: the first Node-ID at or after the Resource-ID.
  std::vector<std::pair<pr::node_id, std::size_t>> ring;
  for (std::size_t i = 0; i < o.peers().size(); ++i) {
    ring.emplace_back(*pr::node_id::from_hex(o.peers()[i].node_id), i);
  }
  std::sort(ring.begin(), ring.end());
  const auto point = *pr::hash_resource_name(name).as_ring_point();
  std::size_t at = 0;
  while (at < ring.size() && ring[at].first < point) ++at;
  at %= ring.size();
  const auto owner = ring[at].second;
  const auto successor = ring[(at + 1) % ring.size()].second;
  std::this_thread::sleep_for(1s);  // the replicas land
  REQUIRE(o.stop_peer(successor) == 0);
  REQUIRE(test::flip_bytes(o.peers()[successor].data_dir / "reload-store.sqlite3", text) >= 1);
  o.restart_peer(successor);
  REQUIRE(o.wait_ring(30s));
  o.kill_peer(owner);
  REQUIRE(o.wait_ring(30s));
  opts.peers = {o.peers()[successor].address};
  auto c = client::client::create(opts);
  REQUIRE(c.has_value());
  bool repaired = false;
  for (int i = 0; i < 50 && !repaired; ++i) {
    auto got = (*c)->get(name);
    repaired = got && got->size() == 1 && to_string(got->front().value) == text;
    if (!repaired) std::this_thread::sleep_for(100ms);
  }
  CHECK(repaired);
  const auto log = o.log_of(successor);
  CHECK(log.find("stored value quarantined") != std::string::npos);
  CHECK(log.find("repaired from") != std::string::npos);
}

TEST_CASE("integration: a client reading faster than 1,000 answers/s loses none of them") {
  // The SDK once applied the peer's per-link rate limit (1,000/s, burst 2,000) to the answers
  // from its own peer: a fast reader lost answers every few thousand requests and waited a whole
  // request timeout for each. The peer here limits nobody; the client reads with 16 threads.
  test::overlay_fixture f(std::vector<std::string>{"--client-rate", "0"});
  f.overlay.enroll("fast");
  std::atomic<std::size_t> retries{0};
  client::client_options o;
  o.config_file = f.overlay.config_file().string();
  o.certificate_file = f.overlay.cert_of("fast").string();
  o.key_file = f.overlay.key_of("fast").string();
  o.peers = {f.overlay.peers().at(0).address};
  o.request_timeout = 5s;
  o.log = [&retries](std::string_view line) {
    if (line.rfind("retrying", 0) == 0) ++retries;
  };
  auto c = client::client::create(o);
  REQUIRE(c.has_value());
  REQUIRE((*c)->put("fast-key", to_bytes("fast value")));
  constexpr int threads = 16, per_thread = 400;
  std::atomic<int> failed{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> readers;
  for (int t = 0; t < threads; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        auto got = (*c)->get("fast-key");
        if (!got || got->size() != 1) ++failed;
      }
    });
  }
  for (auto& r : readers) r.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE(threads * per_thread << " gets in " << secs << " s ("
                               << static_cast<int>(threads * per_thread / secs) << "/s), "
                               << retries.load() << " retried");
  CHECK(failed == 0);
  CHECK(retries == 0);
}
