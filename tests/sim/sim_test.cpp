// Many-peer deterministic simulation (STYLE.md test level 3) on the in-memory network of
// tests/support/sim_network.hpp: ring convergence with fingers checked against RFC 6940 10.3,
// routing hop counts, data safety under waves of crashes, and a cut-off third of the peers coming
// back. Lines starting "sim:" are the figures for docs/benchmarks.md.
// Environment: P2PSIP_SIM_LARGE=1 runs the large cases (1000-peer convergence, hops over 1000 and
// 5000 peers, 10000 values under churn over 100 and over 10,000 peers); P2PSIP_SIM_N=<n> the
// scale run at any size (P2PSIP_SIM_JOIN_MS, P2PSIP_SIM_QUIET_S, P2PSIP_SIM_UPDATE_MS,
// P2PSIP_SIM_FINGER_MS: see that case); P2PSIP_SIM_SEED=<n> replays one seed;
// P2PSIP_SIM_VERBOSE=1 prints copy counts per churn wave (and P2PSIP_SIM_TRACE=1, read by
// sim_network, every action).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sim_network.hpp"

namespace pr = p2psip::protocol;
namespace peer = p2psip::peer;
using namespace p2psip::sim;
using namespace std::chrono_literals;

namespace {

bool large() {
  return std::getenv("P2PSIP_SIM_LARGE") != nullptr;
}

std::uint64_t seed_or(std::uint64_t fallback) {
  if (const char* s = std::getenv("P2PSIP_SIM_SEED")) return std::strtoull(s, nullptr, 10);
  return fallback;
}

/// A number from the environment, or `fallback` when unset.
std::size_t env_or(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  return v == nullptr ? fallback : std::strtoull(v, nullptr, 10);
}

double wall_seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

pr::node_id random_id(seeded_random& r) {
  pr::bytes b(16);
  for (auto& x : b) x = static_cast<std::uint8_t>(r.next_u64());
  return *pr::node_id::from_bytes(b);
}

pr::resource_id random_resource(seeded_random& r) {
  pr::resource_id id;
  id.value.resize(16);
  for (auto& x : id.value) x = static_cast<std::uint8_t>(r.next_u64());
  return id;
}

/// Which nodes a check looks at (all when empty): one side of a partition.
using node_filter = std::function<bool(std::size_t)>;

/// The live, joined peers in ring order, and where each one sits in the network.
struct ring_view {
  std::vector<pr::node_id> ids;
  std::map<pr::node_id, std::size_t> node_of;   // id -> network index
  std::map<pr::node_id, std::size_t> position;  // id -> index in ids

  explicit ring_view(sim_network& net, const node_filter& member = {}) {
    for (std::size_t i = 0; i < net.size(); ++i) {
      if (net.at(i).alive && net.core(i).joined() && (!member || member(i))) {
        ids.push_back(net.core(i).self());
        node_of[net.core(i).self()] = i;
      }
    }
    std::sort(ids.begin(), ids.end());
    for (std::size_t k = 0; k < ids.size(); ++k) position[ids[k]] = k;
  }
  /// The live peer responsible for a ring point: the first id >= point, else the smallest.
  std::size_t owner_of(const pr::node_id& point) const {
    const auto it = std::lower_bound(ids.begin(), ids.end(), point);
    return node_of.at(it == ids.end() ? ids.front() : *it);
  }
};

struct ring_report {
  std::size_t live = 0;
  std::size_t joined = 0;
  std::size_t neighbor_errors = 0;
  std::size_t finger_errors = 0;  ///< a finger outside its interval, or not a live peer
  std::size_t fingers_set = 0;
  std::size_t fingers_fillable = 0;  ///< intervals (within finger_slots) holding a live peer
  std::string first_problem;
  bool ok() const { return live == joined && neighbor_errors == 0 && finger_errors == 0; }
};

/// Checks every live peer against the sorted Node-IDs: successors and predecessors (up to
/// `depth`), and each finger i inside [self + 2^(128-i), self + 2^(128-i+1) - 1] (RFC 6940 10.3).
ring_report check_ring(sim_network& net, std::size_t depth = 3, const node_filter& member = {}) {
  ring_report rep;
  const ring_view rv(net, member);
  for (std::size_t i = 0; i < net.size(); ++i) {
    rep.live += net.at(i).alive && (!member || member(i)) ? 1u : 0u;
  }
  rep.joined = rv.ids.size();
  const auto n = rv.ids.size();
  auto note = [&](const std::string& s) {
    if (rep.first_problem.empty()) rep.first_problem = s;
  };
  for (std::size_t k = 0; k < n; ++k) {
    const auto& self = rv.ids[k];
    const auto& c = net.core(rv.node_of.at(self));
    const auto& succ = c.routes().successors();
    const auto& pred = c.routes().predecessors();
    const std::size_t want = std::min(depth, n - 1);
    for (std::size_t j = 0; j < want; ++j) {
      const auto& s = rv.ids[(k + 1 + j) % n];
      const auto& p = rv.ids[(k + n - 1 - j) % n];
      if (succ.size() <= j || succ[j] != s) {
        ++rep.neighbor_errors;
        note(self.hex().substr(0, 8) + ": successor " + std::to_string(j) + " wrong");
      }
      if (pred.size() <= j || pred[j] != p) {
        ++rep.neighbor_errors;
        note(self.hex().substr(0, 8) + ": predecessor " + std::to_string(j) + " wrong");
      }
    }
    const unsigned slots = c.config().finger_slots;
    for (unsigned f = 1; f <= slots; ++f) {
      // Does any live peer lie in interval f? Interval f = distances with highest bit 128 - f.
      const auto lo = pr::finger_target(self, f);
      const auto it = std::lower_bound(rv.ids.begin(), rv.ids.end(), lo);
      const auto first = it == rv.ids.end() ? rv.ids.front() : *it;
      const bool fillable =
          first != self && (first - self).highest_bit() == 128 - static_cast<int>(f);
      rep.fingers_fillable += fillable ? 1u : 0u;
      const auto fp = c.routes().finger(f);
      if (!fp) continue;
      ++rep.fingers_set;
      if ((*fp - self).highest_bit() != 128 - static_cast<int>(f)) {
        ++rep.finger_errors;
        note(self.hex().substr(0, 8) + ": finger " + std::to_string(f) + " outside its interval");
      } else if (rv.node_of.count(*fp) == 0) {
        ++rep.finger_errors;
        note(self.hex().substr(0, 8) + ": finger " + std::to_string(f) + " is not a live peer");
      }
    }
  }
  return rep;
}

/// How a ring is built: peers started in groups of `burst`, `spacing` apart.
struct ring_options {
  std::chrono::milliseconds spacing{200};
  std::size_t burst = 1;
  /// Each joins through a random peer already in the ring instead of through peer 0 (which
  /// holds every joining peer's link until its join is done; see the max_links case below).
  bool spread_bootstrap = false;
  /// core_config::max_links; 0 keeps the default (256).
  std::size_t max_links = 0;
  /// core_config::partition_check_interval; 0 keeps the default (10 minutes).
  std::chrono::milliseconds partition_check{0};
  /// core_config::update_interval and finger_interval; 0 keeps sim_network's (2 s, 0.5 s).
  std::chrono::milliseconds update_interval{0};
  std::chrono::milliseconds finger_interval{0};
};

/// Large runs: joins spread over the ring and the link cap lifted, so that they measure the
/// topology rather than the link build-up reported in the max_links case.
ring_options large_options(std::chrono::milliseconds spacing, std::size_t n) {
  ring_options o;
  o.spacing = spacing;
  o.spread_bootstrap = true;
  o.max_links = n + 16;
  return o;
}

/// A first peer and n-1 joining peers.
std::unique_ptr<sim_network> join_ring(std::size_t n, std::uint64_t seed, const ring_options& o) {
  const auto spacing = o.spacing;
  const auto burst = o.burst;
  const auto spread_bootstrap = o.spread_bootstrap;
  auto net = std::make_unique<sim_network>(seed);
  seeded_random ids(seed * 7919 + 1);
  const auto configure = [&](peer::core_config& c) {
    if (o.max_links != 0) c.max_links = o.max_links;
    if (o.partition_check.count() != 0) c.partition_check_interval = o.partition_check;
    if (o.update_interval.count() != 0) c.update_interval = o.update_interval;
    if (o.finger_interval.count() != 0) c.finger_interval = o.finger_interval;
  };
  auto first = sim_network::default_config(random_id(ids), peer::node_role::first_peer);
  configure(first);
  net->add(first);
  net->start(0);
  std::vector<std::size_t> joined;
  for (std::size_t i = 1; i < n; ++i) {
    auto cfg = sim_network::default_config(random_id(ids), peer::node_role::joining_peer);
    configure(cfg);
    if (spread_bootstrap) {
      joined.clear();
      for (std::size_t k = 0; k < net->size(); ++k) {
        if (net->core(k).joined()) joined.push_back(k);
      }
      cfg.bootstrap.push_back(net->at(joined[ids.below(joined.size())]).address);
    }
    const auto k = net->add(cfg);
    net->start(k);
    if (i % burst == 0 && i + 1 < n) net->run_for(spacing);
  }
  return net;
}

/// Runs in 100 ms steps until check_ring() passes or `limit` passes; the simulated time taken.
std::optional<std::chrono::milliseconds> converge(sim_network& net, std::chrono::seconds limit) {
  for (std::chrono::milliseconds t{0}; t <= limit; t += 100ms) {
    if (check_ring(net).ok()) return t;
    net.run_for(100ms);
  }
  return std::nullopt;
}

struct convergence_result {
  std::unique_ptr<sim_network> net;
  std::optional<std::chrono::milliseconds> after_last_join;
  double wall = 0;
};

convergence_result build_converged(std::size_t n, std::uint64_t seed, const ring_options& o,
                                   std::chrono::seconds limit) {
  const auto t0 = std::chrono::steady_clock::now();
  convergence_result r;
  r.net = join_ring(n, seed, o);
  r.after_last_join = converge(*r.net, limit);
  r.wall = wall_seconds_since(t0);
  return r;
}

void run_convergence(std::size_t n, std::uint64_t seed, const ring_options& o) {
  CAPTURE(seed);
  CAPTURE(n);
  const auto spacing = o.spacing;
  const auto burst = o.burst;
  auto r = build_converged(n, seed, o, 180s);
  const auto rep = check_ring(*r.net);
  std::size_t links_max = 0, links_total = 0;
  for (std::size_t i = 0; i < r.net->size(); ++i) {
    const auto l = r.net->core(i).connections().size();
    links_max = std::max(links_max, l);
    links_total += l;
  }
  std::printf("sim: work N=%zu steps=%llu messages=%llu bytes=%llu simulated_s=%.1f\n", n,
              static_cast<unsigned long long>(r.net->steps()),
              static_cast<unsigned long long>(r.net->traffic().messages),
              static_cast<unsigned long long>(r.net->traffic().bytes),
              std::chrono::duration<double>(r.net->now() - sim_network::epoch()).count());
  std::printf("sim: links N=%zu max=%zu (peer 0: %zu) mean=%.1f\n", n, links_max,
              r.net->core(0).connections().size(),
              static_cast<double>(links_total) / static_cast<double>(r.net->size()));
  std::printf(
      "sim: convergence N=%zu seed=%llu burst=%zu join_spacing_ms=%lld "
      "converged_ms_after_last_join_started=%lld fingers_set=%zu/%zu_fillable wall_s=%.1f\n",
      n, static_cast<unsigned long long>(seed), burst, static_cast<long long>(spacing.count()),
      r.after_last_join ? static_cast<long long>(r.after_last_join->count()) : -1LL,
      rep.fingers_set, rep.fingers_fillable, r.wall);
  CHECK(rep.live == n);
  CHECK(rep.joined == n);
  CHECK(rep.neighbor_errors == 0);
  CHECK(rep.finger_errors == 0);
  CHECK(rep.first_problem == "");
  CHECK(r.after_last_join.has_value());
  // Fingers are searched one per finger_interval: after convergence most fillable slots are set.
  CHECK(rep.fingers_set * 10 >= rep.fingers_fillable * 9);
}

struct hop_result {
  std::size_t sent = 0;
  std::size_t answered = 0;
  std::size_t wrong_owner = 0;
  double mean = 0;
  std::size_t max = 0;
  /// For each request the responsible peer never saw: what its sender got instead.
  std::vector<std::string> lost;
};

/// Routes `count` AppAttach requests from random peers to random Resource-IDs; a recording usage
/// on every peer takes them (with the via list); hops = overlay links traversed = via entries + 1
/// (0 when the sender is itself responsible).
hop_result measure_hops(sim_network& net, std::size_t count, std::uint64_t seed) {
  hop_result h;
  seeded_random rng(seed);
  const ring_view rv(net);
  std::vector<std::size_t> peers;
  for (const auto& id : rv.ids) peers.push_back(rv.node_of.at(id));
  for (const auto i : peers) net.record_requests(i, pr::codes::app_attach_req).requests.clear();
  for (const auto i : peers) net.at(i).delivered.clear();
  struct in_flight {
    std::size_t from = 0;
    std::size_t owner = 0;
  };
  std::map<std::uint64_t, in_flight> pending;  // by txid
  std::size_t total = 0;
  // Requests that reached a peer since the last look; late ones (a batch's stragglers) count too.
  const auto collect = [&] {
    for (const auto i : peers) {
      for (const auto& d : std::exchange(net.at(i).recorder->requests, {})) {
        const auto it = pending.find(d.msg.header.transaction_id);
        if (it == pending.end()) continue;
        if (it->second.owner != i) ++h.wrong_owner;
        pending.erase(it);
        ++h.answered;
        const std::size_t hops = d.link == peer::link_id{} ? 0 : d.msg.header.via_list.size() + 1;
        total += hops;
        h.max = std::max(h.max, hops);
      }
    }
  };
  for (std::size_t done = 0; done < count;) {
    const std::size_t batch = std::min<std::size_t>(100, count - done);
    for (std::size_t b = 0; b < batch; ++b) {
      const auto from = peers[rng.below(peers.size())];
      const auto r = random_resource(rng);
      const auto tx = net.request(from, {pr::to_destination(r)}, pr::app_attach_req{});
      if (!tx) continue;
      ++h.sent;
      pending[*tx] = {from, rv.owner_of(*r.as_ring_point())};
    }
    done += batch;
    net.run_for(2s);
    collect();
  }
  net.run_for(2s);
  collect();
  // What the senders of the lost ones were told (an Error response, or no answer at all).
  for (const auto& [tx, f] : pending) {
    std::string what = "tx " + std::to_string(tx) + " from node " + std::to_string(f.from) +
                       " for node " + std::to_string(f.owner) + ": no outcome";
    for (const auto& d : net.at(f.from).delivered) {
      if (d.msg.header.transaction_id != tx) continue;
      auto body = pr::decode_body(d.msg.contents.code, d.msg.contents.body, pr::limits{});
      const auto* e = body ? std::get_if<pr::error_response>(&*body) : nullptr;
      what = "tx " + std::to_string(tx) + " from node " + std::to_string(f.from) + " for node " +
             std::to_string(f.owner) + ": " +
             (e ? "error " + std::to_string(e->error_code) + " " +
                      std::string(e->error_info.begin(), e->error_info.end())
                : "answer code " + std::to_string(d.msg.contents.code));
    }
    h.lost.push_back(std::move(what));
  }
  for (const auto i : peers) net.at(i).delivered.clear();
  h.mean = h.answered == 0 ? 0.0 : static_cast<double>(total) / static_cast<double>(h.answered);
  return h;
}

void run_hops(std::size_t n, std::uint64_t seed, const ring_options& o, std::size_t requests) {
  CAPTURE(seed);
  CAPTURE(n);
  auto r = build_converged(n, seed, o, 180s);
  REQUIRE(r.after_last_join.has_value());
  const auto t0 = std::chrono::steady_clock::now();
  const auto h = measure_hops(*r.net, requests, seed + 1);
  const double half_log = std::log2(static_cast<double>(n)) / 2.0;
  std::printf(
      "sim: N=%zu mean_hops=%.2f log2(N)/2=%.2f max_hops=%zu requests=%zu answered=%zu "
      "seed=%llu build_wall_s=%.1f measure_wall_s=%.1f\n",
      n, h.mean, half_log, h.max, h.sent, h.answered, static_cast<unsigned long long>(seed), r.wall,
      wall_seconds_since(t0));
  CHECK(h.sent == requests);
  for (const auto& l : h.lost) MESSAGE("not delivered: " << l);
  CHECK(h.answered == h.sent);
  CHECK(h.wrong_owner == 0);
  CHECK(h.mean <= 1.5 * half_log);
}

/// Messages sent by every peer, by message code (transport counters).
std::map<std::uint16_t, std::uint64_t> sent_by_code(sim_network& net) {
  std::map<std::uint16_t, std::uint64_t> out;
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (!net.at(i).alive) continue;
    for (const auto& [code, count] : net.at(i).engine->transport().traffic().sent_by_code) {
      out[code] += count;
    }
  }
  return out;
}

/// The scale run (issue 16): one ring of n peers joining `spacing` apart through random ring
/// members, checked as run_convergence does; then `quiet` of maintenance alone, counted per peer
/// and second; then `requests` routed requests for the hop counts, held to Chord's
/// 1.1 x log2(N)/2. Prints "sim: scale" lines.
void run_at_scale(std::size_t n, std::uint64_t seed, const ring_options& o,
                  std::chrono::seconds quiet, std::size_t requests) {
  CAPTURE(seed);
  CAPTURE(n);
  const auto spacing = o.spacing;
  const auto t0 = std::chrono::steady_clock::now();
  auto net_ptr = join_ring(n, seed, o);
  auto& net = *net_ptr;
  const double joins_wall = wall_seconds_since(t0);
  const auto last_join = net.now();
  const auto converged = converge(net, 180s);
  const double build_wall = wall_seconds_since(t0);
  const auto rep = check_ring(net);
  std::printf(
      "sim: scale N=%zu seed=%llu join_spacing_ms=%lld ring_build_wall_s=%.1f (joins %.1f) "
      "converged_ms_after_last_join_started=%lld simulated_s=%.1f steps=%llu messages=%llu "
      "fingers_set=%zu/%zu_fillable\n",
      n, static_cast<unsigned long long>(seed), static_cast<long long>(spacing.count()), build_wall,
      joins_wall, converged ? static_cast<long long>(converged->count()) : -1LL,
      std::chrono::duration<double>(net.now() - sim_network::epoch()).count(),
      static_cast<unsigned long long>(net.steps()),
      static_cast<unsigned long long>(net.traffic().messages), rep.fingers_set,
      rep.fingers_fillable);
  (void)last_join;
  CHECK(rep.live == n);
  CHECK(rep.joined == n);
  CHECK(rep.neighbor_errors == 0);
  CHECK(rep.finger_errors == 0);
  CHECK(rep.first_problem == "");
  REQUIRE(converged.has_value());
  CHECK(rep.fingers_set * 10 >= rep.fingers_fillable * 9);

  // Maintenance alone: nothing else is sent while it runs.
  const auto t1 = std::chrono::steady_clock::now();
  const auto codes_before = sent_by_code(net);
  {
    std::string per_peer;
    for (const auto& [code, count] : codes_before) {
      per_peer += " " + std::string(pr::message_code_name(code)) + "=" +
                  std::to_string(static_cast<double>(count) / static_cast<double>(n)).substr(0, 6);
    }
    std::printf("sim: scale N=%zu ring build, messages per peer by code:%s\n", n, per_peer.c_str());
  }
  net.reset_traffic();
  net.run_for(quiet);
  const auto codes_after = sent_by_code(net);
  const double peer_seconds = static_cast<double>(n) * static_cast<double>(quiet.count());
  std::string by_code;
  for (const auto& [code, count] : codes_after) {
    const auto before = codes_before.count(code) != 0 ? codes_before.at(code) : 0u;
    if (count == before) continue;
    by_code += " " + std::string(pr::message_code_name(code)) + "=" +
               std::to_string(static_cast<double>(count - before) / peer_seconds).substr(0, 5);
  }
  std::printf(
      "sim: scale N=%zu maintenance over %llds: messages_per_peer_s=%.2f bytes_per_peer_s=%.0f "
      "(%s ) wall_s=%.1f\n",
      n, static_cast<long long>(quiet.count()),
      static_cast<double>(net.traffic().messages) / peer_seconds,
      static_cast<double>(net.traffic().bytes) / peer_seconds, by_code.c_str(),
      wall_seconds_since(t1));
  const auto after_quiet = check_ring(net);
  CHECK(after_quiet.ok());
  CHECK(after_quiet.first_problem == "");

  const auto t2 = std::chrono::steady_clock::now();
  const auto h = measure_hops(net, requests, seed + 1);
  const double half_log = std::log2(static_cast<double>(n)) / 2.0;
  std::printf(
      "sim: scale N=%zu mean_hops=%.2f max_hops=%zu log2(N)/2=%.2f bound_1.1x=%.2f "
      "ratio=%.3f requests=%zu answered=%zu wall_s=%.1f\n",
      n, h.mean, h.max, half_log, 1.1 * half_log, h.mean / half_log, h.sent, h.answered,
      wall_seconds_since(t2));
  CHECK(h.sent == requests);
  for (const auto& l : h.lost) MESSAGE("not delivered: " << l);
  CHECK(h.answered == h.sent);
  CHECK(h.wrong_owner == 0);
  CHECK(h.mean <= 1.1 * half_log);
}

std::string value_text(std::size_t i) {
  std::string s = "v";
  s += std::to_string(i);
  return s;
}

pr::store_req value_store(const pr::resource_id& r, std::size_t i) {
  return p2psip::sim::generic_store(r, value_text(i), 86400);
}

/// Sends one request per item (from a random live peer) in batches; the answers by item.
std::vector<std::optional<pr::message>> request_all(
    sim_network& net, seeded_random& rng, std::size_t items,
    const std::function<std::pair<pr::resource_id, pr::message_body>(std::size_t)>& make,
    bool not_from_replica_holders = false, const node_filter& senders = {},
    std::size_t batch_size = 200) {
  std::vector<std::optional<pr::message>> answers(items);
  const ring_view rv(net, senders);
  std::vector<std::size_t> peers;
  for (const auto& id : rv.ids) peers.push_back(rv.node_of.at(id));
  for (std::size_t done = 0; done < items;) {
    const std::size_t batch = std::min<std::size_t>(batch_size, items - done);
    std::map<std::pair<std::size_t, std::uint64_t>, std::size_t> item_of;  // (node, tx) -> item
    for (std::size_t b = 0; b < batch; ++b) {
      auto [r, body] = make(done + b);
      auto from = peers[rng.below(peers.size())];
      if (not_from_replica_holders && peers.size() > 3) {
        // Not the owner's first or second successor (see the "stored by a successor" case).
        const auto owner_pos = rv.position.at(net.core(rv.owner_of(*r.as_ring_point())).self());
        for (int tries = 0; tries < 100; ++tries) {
          const auto pos = rv.position.at(net.core(from).self());
          const auto ahead = (pos + peers.size() - owner_pos) % peers.size();
          if (ahead != 1 && ahead != 2) break;
          from = peers[rng.below(peers.size())];
        }
      }
      const auto tx = net.request(from, {pr::to_destination(r)}, body);
      if (tx) item_of[{from, *tx}] = done + b;
    }
    net.run_for(4s);
    for (const auto from : peers) {
      for (auto& d : net.at(from).delivered) {
        const auto it = item_of.find({from, d.msg.header.transaction_id});
        if (it != item_of.end()) answers[it->second] = std::move(d.msg);
      }
      net.at(from).delivered.clear();
    }
    done += batch;
  }
  return answers;
}

bool fetched_value(const std::optional<pr::message>& m, std::size_t i) {
  if (!m || m->contents.code != pr::codes::fetch_ans) return false;
  auto body = pr::decode_body(m->contents.code, m->contents.body, pr::limits{});
  if (!body) return false;
  const auto* fa = std::get_if<pr::fetch_ans>(&*body);
  if (fa == nullptr) return false;
  const auto want = pr::to_bytes(value_text(i));
  for (const auto& k : fa->kind_responses) {
    for (const auto& v : k.values) {
      if (const auto* e = std::get_if<pr::dictionary_entry>(&v.value)) {
        if (e->value.value == want) return true;
      }
    }
  }
  return false;
}

/// Fetches every value (value_store(rs[i], i)) from random live peers: how many came back right.
std::size_t fetchable_values(sim_network& net, seeded_random& rng,
                             const std::vector<pr::resource_id>& rs, std::size_t batch_size = 200) {
  const auto fetched = request_all(
      net, rng, rs.size(),
      [&](std::size_t i) {
        pr::fetch_req f;
        f.resource = rs[i];
        pr::stored_data_specifier spec;
        spec.kind = pr::kinds::p2psip_generic;
        spec.model = std::vector<pr::bytes>{};
        f.specifiers.push_back(spec);
        return std::pair<pr::resource_id, pr::message_body>{rs[i], f};
      },
      false, {}, batch_size);
  std::size_t ok = 0;
  for (std::size_t i = 0; i < rs.size(); ++i) ok += fetched_value(fetched[i], i) ? 1u : 0u;
  return ok;
}

/// Stores value_store(rs[i], i) for i in [first, rs.size()) from random peers passing `senders`:
/// how many were answered with a StoreAns.
std::size_t store_values(sim_network& net, seeded_random& rng,
                         const std::vector<pr::resource_id>& rs, std::size_t first,
                         const node_filter& senders = {}) {
  const auto answers = request_all(
      net, rng, rs.size() - first,
      [&](std::size_t k) {
        const auto i = first + k;
        return std::pair<pr::resource_id, pr::message_body>{rs[i], value_store(rs[i], i)};
      },
      false, senders);
  std::size_t ok = 0;
  for (const auto& a : answers) ok += (a && a->contents.code == pr::codes::store_ans) ? 1u : 0u;
  return ok;
}

/// Live peers holding `res`: every peer of a small network; of a large one (where that walk is
/// N x values) the 17 ring places around the owner, where replicas and data not yet dropped by
/// earlier owners live (RFC 6940 10.4, 10.7.1).
std::size_t live_copies(sim_network& net, const ring_view& rv, const pr::resource_id& res) {
  std::size_t copies = 0;
  if (net.size() <= 2000) {
    for (std::size_t i = 0; i < net.size(); ++i) {
      if (net.at(i).alive && net.at(i).storage->has(res)) ++copies;
    }
    return copies;
  }
  const auto n = rv.ids.size();
  const auto pos = rv.position.at(net.at(rv.owner_of(*res.as_ring_point())).self);
  std::set<std::size_t> places;
  for (std::size_t d = 0; d <= 16; ++d) places.insert((pos + n - 8 + d) % n);
  for (const auto p : places) {
    const auto i = rv.node_of.at(rv.ids[p]);
    if (net.at(i).alive && net.at(i).storage->has(res)) ++copies;
  }
  return copies;
}

/// How many values are on fewer than 3 live peers, and how many on none.
std::pair<std::size_t, std::size_t> copy_shortfall(sim_network& net,
                                                   const std::vector<pr::resource_id>& rs) {
  std::size_t under = 0, lost = 0;
  const ring_view rv(net);
  for (const auto& res : rs) {
    const auto copies = live_copies(net, rv, res);
    under += copies < 3 ? 1u : 0u;
    lost += copies == 0 ? 1u : 0u;
  }
  return {under, lost};
}

/// How a churn run is set up (run_churn).
struct churn_options {
  ring_options ring{100ms, 1, false, 0};
  std::size_t batch = 200;          ///< requests sent at once (each batch gets 4 s)
  std::chrono::seconds repair{20};  ///< after each wave of failures
};

void run_churn(std::size_t n, std::size_t values, std::uint64_t seed,
               const churn_options& co = {}) {
  CAPTURE(seed);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = build_converged(n, seed, co.ring, 120s);
  REQUIRE(r.after_last_join.has_value());
  const double build_wall = wall_seconds_since(t0);
  auto& net = *r.net;
  seeded_random rng(seed * 31 + 7);
  std::vector<pr::resource_id> rs;
  for (std::size_t i = 0; i < values; ++i) rs.push_back(random_resource(rng));
  const auto stored = request_all(
      net, rng, values,
      [&](std::size_t i) {
        return std::pair<pr::resource_id, pr::message_body>{rs[i], value_store(rs[i], i)};
      },
      /*not_from_replica_holders=*/true, {}, co.batch);
  std::size_t store_ok = 0;
  for (const auto& a : stored) {
    store_ok += (a && a->contents.code == pr::codes::store_ans) ? 1u : 0u;
  }
  CHECK(store_ok == values);
  net.run_for(5s);
  {
    const auto [under, lost] = copy_shortfall(net, rs);
    CHECK(under == 0);
    if (std::getenv("P2PSIP_SIM_VERBOSE")) {
      // Which of the owner and its next three ring places hold each short value.
      std::printf("after stores: under3=%zu lost=%zu\n", under, lost);
      const ring_view rv(net);
      for (std::size_t v = 0; v < rs.size(); ++v) {
        const auto owner = rv.owner_of(*rs[v].as_ring_point());
        const auto pos = rv.position.at(net.core(owner).self());
        std::string where;
        for (std::size_t d = 0; d < 4; ++d) {
          const auto node = rv.node_of.at(rv.ids[(pos + d) % rv.ids.size()]);
          where += net.at(node).storage->has(rs[v]) ? "Y" : "n";
        }
        if (where.substr(0, 3) != "YYY") {
          std::printf("value %zu res=%s owner=node%zu(%s) owner+0..3: %s; owner succ:", v,
                      rs[v].hex().substr(0, 8).c_str(), owner,
                      net.core(owner).self().hex().substr(0, 8).c_str(), where.c_str());
          for (const auto& x : net.core(owner).routes().successors()) {
            std::printf(" %s", x.hex().substr(0, 8).c_str());
          }
          std::printf("\n");
        }
      }
    }
  }

  // Fail 20% of the peers (never the first peer, the bootstrap) in four waves with co.repair to
  // repair in between. Within a wave no two victims are within two ring places of each other, so
  // each value loses at most one of its three copies per wave (RFC 6940 10.4).
  const std::size_t to_fail = n / 5;
  std::size_t failed = 0;
  for (int wave = 0; wave < 4 && failed < to_fail; ++wave) {
    const std::size_t want = (to_fail - failed + static_cast<std::size_t>(3 - wave)) /
                             static_cast<std::size_t>(4 - wave);
    const ring_view rv(net);
    std::set<std::size_t> blocked;  // ring positions
    std::vector<std::size_t> victims;
    for (std::size_t tries = 0; victims.size() < want && tries < 1000 + 100 * want; ++tries) {
      const auto pos = rng.below(rv.ids.size());
      const auto node = rv.node_of.at(rv.ids[pos]);
      if (node == 0 || blocked.count(pos) != 0) continue;
      victims.push_back(node);
      for (std::size_t d = 0; d <= 2; ++d) {
        blocked.insert((pos + d) % rv.ids.size());
        blocked.insert((pos + rv.ids.size() - d) % rv.ids.size());
      }
    }
    for (const auto v : victims) net.crash(v);
    failed += victims.size();
    if (std::getenv("P2PSIP_SIM_VERBOSE")) {
      const auto [under, lost] = copy_shortfall(net, rs);
      std::printf("wave %d: crashed %zu, right after: under3=%zu lost=%zu\n", wave, victims.size(),
                  under, lost);
    }
    net.run_for(co.repair);
    if (std::getenv("P2PSIP_SIM_VERBOSE")) {
      const auto [under, lost] = copy_shortfall(net, rs);
      std::printf("wave %d: after %lld s: under3=%zu lost=%zu\n", wave,
                  static_cast<long long>(co.repair.count()), under, lost);
    }
    const auto rep = check_ring(net);
    CAPTURE(wave);
    CHECK(rep.neighbor_errors == 0);
    CHECK(rep.first_problem == "");
  }
  CHECK(failed == to_fail);

  // Every value at its owner and on >= 3 live peers, and fetchable from a random peer.
  const ring_view rv(net);
  std::size_t at_owner = 0, three_copies = 0;
  for (const auto& res : rs) {
    at_owner += net.at(rv.owner_of(*res.as_ring_point())).storage->has(res) ? 1u : 0u;
    three_copies += live_copies(net, rv, res) >= 3 ? 1u : 0u;
  }
  const auto fetch_ok = fetchable_values(net, rng, rs, co.batch);
  std::printf(
      "sim: churn N=%zu values=%zu failed=%zu stored=%zu at_owner=%zu three_copies=%zu "
      "fetched=%zu lost=%zu seed=%llu ring_build_wall_s=%.1f wall_s=%.1f\n",
      n, values, failed, store_ok, at_owner, three_copies, fetch_ok, values - fetch_ok,
      static_cast<unsigned long long>(seed), build_wall, wall_seconds_since(t0));
  CHECK(at_owner == values);
  CHECK(three_copies == values);
  CHECK(fetch_ok == values);
}

}  // namespace

TEST_CASE("sim: 200 peers joining staggered converge: successors predecessors and fingers right") {
  run_convergence(200, seed_or(1001), ring_options{100ms, 1, false, 0});
}

TEST_CASE("sim: 100 peers joining in bursts of 10 converge") {
  run_convergence(100, seed_or(1003), ring_options{1000ms, 10, false, 0});
}

TEST_CASE("sim: 1000 peers converge" * doctest::skip(!large())) {
  run_convergence(1000, seed_or(1002), large_options(100ms, 1000));
}

TEST_CASE("sim: routing hops over 100 peers") {
  run_hops(100, seed_or(2001), ring_options{100ms, 1, false, 0}, 500);
}

TEST_CASE("sim: routing hops over 1000 peers" * doctest::skip(!large())) {
  run_hops(1000, seed_or(2002), large_options(100ms, 1000), 2000);
}

TEST_CASE("sim: routing hops over 5000 peers" * doctest::skip(!large())) {
  run_hops(5000, seed_or(2003), large_options(50ms, 5000), 2000);
}

TEST_CASE("sim: 500 values survive 20% of 50 peers failing in waves") {
  run_churn(50, 500, seed_or(3001));
}

TEST_CASE("sim: 10000 values survive 20% of 100 peers failing in waves" * doctest::skip(!large())) {
  run_churn(100, 10000, seed_or(3002));
}

// Issue 16's churn run: 10,000 peers (P2PSIP_SIM_CHURN_N), joins 10 ms apart through random ring
// members, 10,000 values written, then 2,000 peers failing in four waves 10 s apart, and every
// value read back: 0 lost.
TEST_CASE("sim: values survive 20% of 10000 peers failing in waves" * doctest::skip(!large())) {
  const auto n = env_or("P2PSIP_SIM_CHURN_N", 10000);
  churn_options co;
  co.ring = large_options(10ms, n);
  co.batch = 2500;
  co.repair = 10s;
  run_churn(n, env_or("P2PSIP_SIM_CHURN_VALUES", 10000), seed_or(3003), co);
}

// A regression test (fixed in b534caa): the owner used to skip the requester when sending
// replicas, meant for a hand-over from a replica holder. A peer that stores a value owned by its
// predecessor or its predecessor's predecessor is one of the owner's two successors, yet it held
// no copy, and the value had two copies instead of three (RFC 6940 10.4).
TEST_CASE("sim: a value stored by the owner's successor gets three copies") {
  const auto seed = seed_or(4001);
  CAPTURE(seed);
  auto r = build_converged(20, seed, ring_options{100ms, 1, false, 0}, 60s);
  REQUIRE(r.after_last_join.has_value());
  auto& net = *r.net;
  const ring_view rv(net);
  seeded_random rng(seed);
  std::size_t short_of_three = 0;
  for (std::size_t i = 0; i < 10; ++i) {
    const auto res = random_resource(rng);
    const auto owner_pos = rv.position.at(net.core(rv.owner_of(*res.as_ring_point())).self());
    const auto from = rv.node_of.at(rv.ids[(owner_pos + 1 + i % 2) % rv.ids.size()]);
    REQUIRE(net.request(from, {pr::to_destination(res)}, value_store(res, i)));
    net.run_for(3s);
    std::size_t copies = 0;
    for (std::size_t k = 0; k < net.size(); ++k) copies += net.at(k).storage->has(res) ? 1u : 0u;
    short_of_three += copies < 3 ? 1u : 0u;
  }
  CHECK(short_of_three == 0);
}

// Links a peer opened (Attach, bootstrap) are closed once their peer has left its routing table
// (overlay_core::prune_links), and a full connection table evicts such a link rather than refusing
// a new one. Before that, a bootstrap peer held one link per peer it ever admitted and, at
// max_links (default 256), refused every new link: N=1,000 through one bootstrap stalled at 257
// peers (seed 1002). Here the bootstrap peer admits 29 peers with max_links 16.
TEST_CASE("sim: 30 peers join through one bootstrap peer with max_links 16") {
  const auto seed = seed_or(5001);
  CAPTURE(seed);
  sim_network net(seed);
  seeded_random ids(seed);
  auto first = sim_network::default_config(random_id(ids), peer::node_role::first_peer);
  first.max_links = 16;
  net.add(first);
  net.start(0);
  std::size_t peak = 0;
  for (std::size_t i = 1; i < 30; ++i) {
    auto cfg = sim_network::default_config(random_id(ids), peer::node_role::joining_peer);
    cfg.max_links = 16;
    net.start(net.add(cfg));
    net.run_for(200ms);
    peak = std::max(peak, net.core(0).connections().size());
  }
  for (int t = 0; t < 200; ++t) {
    net.run_for(100ms);
    peak = std::max(peak, net.core(0).connections().size());
  }
  const auto rep = check_ring(net);
  std::size_t links_max = 0, links_total = 0, pruned = 0, evicted = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    links_max = std::max(links_max, net.core(i).connections().size());
    links_total += net.core(i).connections().size();
    pruned += net.core(i).stats().links_pruned;
    evicted += net.core(i).stats().links_evicted;
  }
  std::printf(
      "sim: max_links=16 N=30 joined=%zu peer0_links=%zu peer0_peak=%zu links_max=%zu "
      "mean=%.1f pruned=%zu evicted=%zu seed=%llu\n",
      rep.joined, net.core(0).connections().size(), peak, links_max,
      static_cast<double>(links_total) / static_cast<double>(net.size()), pruned, evicted,
      static_cast<unsigned long long>(seed));
  CHECK(rep.joined == 30);
  CHECK(rep.ok());
  CHECK(rep.first_problem == "");
  CHECK(links_max <= 16);
}

// The original stall at scale: every peer joins through peer 0, default max_links (256).
TEST_CASE("sim: 400 peers join through one bootstrap peer with the default max_links" *
          doctest::skip(!large())) {
  ring_options o;
  o.spacing = 100ms;
  run_convergence(400, seed_or(5002), o);
}

// sim_network has no link-level partition, so this is the one-sided form: a third of the peers
// freeze (no timers, every message to them lost, links left up) while the rest repair the ring
// around them; then they wake with stale routing tables and must be merged back.
TEST_CASE("sim: a third of 30 peers cut off for 40 s, then back: one ring again") {
  const auto seed = seed_or(6001);
  CAPTURE(seed);
  auto r = build_converged(30, seed, ring_options{100ms, 1, false, 0}, 60s);
  REQUIRE(r.after_last_join.has_value());
  auto& net = *r.net;
  seeded_random rng(seed);
  std::vector<std::size_t> cut;
  for (std::size_t i = 1; i < net.size() && cut.size() < 10; ++i) {
    if (rng.below(3) == 0) cut.push_back(i);
  }
  for (const auto i : cut) net.freeze(i);  // no timers, every message to them lost
  net.run_for(40s);
  {
    const auto rep = check_ring(net);
    CHECK(rep.joined == 30 - cut.size());
    CHECK(rep.first_problem == "");
  }
  for (const auto i : cut) net.thaw(i);
  const auto t0 = std::chrono::steady_clock::now();
  const auto healed = converge(net, 120s);
  const auto rep = check_ring(net);
  std::printf("sim: partition N=30 cut=%zu healed_ms=%lld joined=%zu wall_s=%.1f\n", cut.size(),
              healed ? static_cast<long long>(healed->count()) : -1LL, rep.joined,
              wall_seconds_since(t0));
  CHECK(healed.has_value());
  CHECK(rep.joined == 30);
  CHECK(rep.first_problem == "");
}

// A real partition (sim_network::partition): both halves keep running, each repairs into a ring
// of its own and takes writes; when the network heals, the partition check of RFC 6940 10.7.4.4
// (a Ping for our own place, routed through the bootstrap peer) finds the other ring, and the
// rings merge. Values written before and on both sides during the partition are all fetchable.
TEST_CASE("sim: 30 peers split in two for 60 s, each side writing, then healed: one ring") {
  const auto seed = seed_or(6101);
  CAPTURE(seed);
  ring_options o{100ms, 1, false, 0};
  o.partition_check = 10s;
  auto r = build_converged(30, seed, o, 60s);
  REQUIRE(r.after_last_join.has_value());
  auto& net = *r.net;
  seeded_random rng(seed * 13 + 5);
  std::vector<pr::resource_id> rs;
  for (std::size_t i = 0; i < 300; ++i) rs.push_back(random_resource(rng));
  CHECK(store_values(net, rng, rs, 0) == 300);

  // Half the peers, never peer 0 (the bootstrap peer of all): side 1.
  std::vector<std::size_t> cut;
  std::set<std::size_t> on_side_1;
  while (cut.size() < 15) {
    const auto i = 1 + rng.below(net.size() - 1);
    if (on_side_1.insert(i).second) cut.push_back(i);
  }
  const node_filter side_0 = [&](std::size_t i) { return on_side_1.count(i) == 0; };
  const node_filter side_1 = [&](std::size_t i) { return on_side_1.count(i) != 0; };
  net.partition(cut);
  net.run_for(60s);
  for (const auto& side : {side_0, side_1}) {
    const auto rep = check_ring(net, 3, side);
    CHECK(rep.joined == 15);
    CHECK(rep.ok());
    CHECK(rep.first_problem == "");
  }
  // Each side writes values of its own while apart.
  for (std::size_t i = 0; i < 200; ++i) rs.push_back(random_resource(rng));
  std::vector<pr::resource_id> side_0_values(rs.begin(), rs.begin() + 400);
  CHECK(store_values(net, rng, side_0_values, 300, side_0) == 100);
  CHECK(store_values(net, rng, rs, 400, side_1) == 100);

  std::uint64_t detected_before = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    detected_before += net.core(i).stats().partitions_detected;
  }
  if (std::getenv("P2PSIP_SIM_VERBOSE")) net.keep_logs = true;
  net.heal();
  const auto t0 = std::chrono::steady_clock::now();
  const auto healed = converge(net, 180s);
  const auto rep = check_ring(net);
  net.run_for(10s);  // hand-overs of the merged ranges
  std::uint64_t checks = 0, detected = 0;
  for (std::size_t i = 0; i < net.size(); ++i) {
    checks += net.core(i).stats().partition_checks;
    detected += net.core(i).stats().partitions_detected;
  }
  const ring_view rv(net);
  std::size_t at_owner = 0;
  for (const auto& res : rs) {
    at_owner += net.at(rv.owner_of(*res.as_ring_point())).storage->has(res) ? 1u : 0u;
  }
  const auto [under, lost] = copy_shortfall(net, rs);
  if (std::getenv("P2PSIP_SIM_VERBOSE")) {
    for (std::size_t v = 0; v < rs.size(); ++v) {
      const auto owner = rv.owner_of(*rs[v].as_ring_point());
      if (net.at(owner).storage->has(rs[v])) continue;
      std::printf("value %zu res=%s owner=node%zu(%s side %d) held by:", v,
                  rs[v].hex().substr(0, 8).c_str(), owner,
                  net.core(owner).self().hex().substr(0, 8).c_str(), side_1(owner) ? 1 : 0);
      for (std::size_t i = 0; i < net.size(); ++i) {
        if (net.at(i).storage->has(rs[v])) {
          std::printf(" node%zu(%s side %d)", i, net.core(i).self().hex().substr(0, 8).c_str(),
                      side_1(i) ? 1 : 0);
        }
      }
      std::printf("\n");
    }
    for (const auto& id : rv.ids) std::printf("%s ", id.hex().substr(0, 8).c_str());
    std::printf("\n");
    for (std::size_t i = 0; i < net.size(); ++i) {
      for (const auto& l : net.at(i).logs) {
        if (l.find("range shrank") != std::string::npos ||
            l.find("partition") != std::string::npos || l.find("hand-over") != std::string::npos) {
          std::printf("node%zu(%s): %s\n", i, net.core(i).self().hex().substr(0, 8).c_str(),
                      l.c_str());
        }
      }
    }
  }
  const auto fetched = fetchable_values(net, rng, rs);
  std::printf(
      "sim: split N=30 halves=15/15 apart_s=60 healed_ms=%lld checks=%llu detected=%llu "
      "values=%zu at_owner=%zu under3=%zu fetched=%zu seed=%llu wall_s=%.1f\n",
      healed ? static_cast<long long>(healed->count()) : -1LL,
      static_cast<unsigned long long>(checks), static_cast<unsigned long long>(detected), rs.size(),
      at_owner, under, fetched, static_cast<unsigned long long>(seed), wall_seconds_since(t0));
  CHECK(detected_before == 0);  // one ring: nothing to find
  CHECK(detected > 0);
  CHECK(healed.has_value());
  CHECK(rep.joined == 30);
  CHECK(rep.ok());
  CHECK(rep.first_problem == "");
  CHECK(at_owner == rs.size());
  CHECK(fetched == rs.size());
  CHECK(lost == 0);
}

// The long suite's seed sweep (P2PSIP_SIM_LARGE=1): many small rings, each converged and then
// 200 routed requests, every one delivered to the responsible peer. One lost request in 1,000 at
// one seed of N=300 went unnoticed until a single run happened on it; this looks at hundreds of
// seeds. P2PSIP_SIM_SWEEP=<seeds> (default 300), P2PSIP_SIM_SWEEP_N=<peers> (default 40).
TEST_CASE("sim: seed sweep, every routed request delivered" * doctest::skip(!large())) {
  const std::size_t seeds = env_or("P2PSIP_SIM_SWEEP", 300);
  const std::size_t n = env_or("P2PSIP_SIM_SWEEP_N", 40);
  const std::uint64_t first = seed_or(90001);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> failures;
  std::size_t requests = 0;
  for (std::uint64_t seed = first; seed < first + seeds; ++seed) {
    auto r = build_converged(n, seed, large_options(100ms, n), 120s);
    if (!r.after_last_join) {
      failures.push_back("seed " + std::to_string(seed) + ": did not converge");
      continue;
    }
    const auto h = measure_hops(*r.net, 200, seed + 1);
    requests += h.sent;
    if (h.answered != h.sent || h.wrong_owner != 0) {
      std::string why = "seed " + std::to_string(seed) + ": " + std::to_string(h.answered) + "/" +
                        std::to_string(h.sent) + " delivered, " + std::to_string(h.wrong_owner) +
                        " to the wrong peer";
      for (const auto& l : h.lost) why += "; " + l;
      failures.push_back(std::move(why));
    }
  }
  std::printf("sim: seed sweep N=%zu seeds=%llu..%llu requests=%zu failed_seeds=%zu wall_s=%.1f\n",
              n, static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(first + seeds - 1), requests, failures.size(),
              wall_seconds_since(t0));
  for (const auto& f : failures) MESSAGE(f);
  CHECK(failures.empty());
}

// Any size on demand: P2PSIP_SIM_N=<peers> (joins P2PSIP_SIM_JOIN_MS apart, default 100 ms,
// through random ring members): convergence, P2PSIP_SIM_QUIET_S (default 30) of maintenance
// alone, then hops over 1,000 requests.
TEST_CASE("sim: convergence and hops at P2PSIP_SIM_N peers" *
          doctest::skip(std::getenv("P2PSIP_SIM_N") == nullptr)) {
  const std::size_t n = env_or("P2PSIP_SIM_N", 0);
  REQUIRE(n >= 2);
  auto o = large_options(std::chrono::milliseconds(env_or("P2PSIP_SIM_JOIN_MS", 100)), n);
  o.update_interval = std::chrono::milliseconds(env_or("P2PSIP_SIM_UPDATE_MS", 0));
  o.finger_interval = std::chrono::milliseconds(env_or("P2PSIP_SIM_FINGER_MS", 0));
  run_at_scale(n, seed_or(7001), o, std::chrono::seconds(env_or("P2PSIP_SIM_QUIET_S", 30)), 1000);
}
