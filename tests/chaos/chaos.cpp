// p2psip-chaos: real p2psip-peer processes (durable data directories) on loopback under the
// faults of issue 11, item 6, measured with the client SDK against fixed targets:
//   churn         kill -9 and restart peers in waves of two while writers put; every
//                 acknowledged put must be readable afterwards (0 unreadable)
//   restart       kill -9 one peer, restart it after ~3 s; its range must be readable (and stay
//                 so) within 5 s of the restart
//   sigterm       SIGTERM a peer during heavy writes, restart it; 0 acknowledged puts lost
//   idle-tcp      hold N plain TCP connections to a peer that send nothing; a new client must
//                 attach and put within 1 s
//   greedy        clients flooding one peer; a paced victim client on that peer must keep >= 0.8
//                 of the throughput it had alone
//   idle-clients  hold N idle TLS client links to a peer; a new client must attach and put
//                 within 1 s and a new peer bootstrapping only through it must join within 5 s
// One line per figure, then a verdict per target (met / NOT met). Exit code: 0 when every target
// of the scenarios in --expect-met (default: all that ran) is met, 1 otherwise, 2 for a usage
// error. docs/benchmarks.md ("Chaos harness") describes the figures and the long run.
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <cxxopts.hpp>
#include <nlohmann/json.hpp>

#include "p2psip/client/client.hpp"
#include "p2psip/node/node_setup.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/tool/version.hpp"
#include "p2psip/transport/link.hpp"
#include "process_overlay.hpp"

namespace {

namespace cl = p2psip::client;
namespace pr = p2psip::protocol;
namespace tr = p2psip::transport;
namespace tst = p2psip::test;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int exit_met = 0;
constexpr int exit_not_met = 1;
constexpr int exit_usage = 2;

const std::vector<std::string> all_scenarios{"churn",    "restart", "sigterm",
                                             "idle-tcp", "greedy",  "idle-clients"};

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

std::string fixed(double v, int digits = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// ---- settings and report ----

struct settings {
  std::size_t peers = 10;
  std::size_t runs = 10;
  std::size_t writers = 4;
  std::size_t waves = 5;
  double duration = 10;  ///< s: greedy victim phases; writes before a wave / SIGTERM
  double settle = 5;     ///< s after the ring is consistent again, before reading back
  std::uint64_t seed = 1;
  std::size_t idle_tcp = 2000;
  std::size_t greedy = 4;
  std::size_t greedy_in_flight = 64;
  double victim_rate = 100;
  std::size_t idle_clients = 550;
  std::size_t idle_identities = 50;
  bool quick = false;
  bool json = false;
  std::vector<std::string> scenarios = all_scenarios;
  std::set<std::string> expect_met;
};

struct figure {
  std::string scenario;
  std::string name;
  double value = 0;
  std::string unit;
  std::string detail;
};

struct target {
  std::string scenario;
  std::string what;
  bool met = false;
  std::string measured;
};

class report {
 public:
  explicit report(bool json) : json_(json) {}

  void add(std::string scenario, std::string name, double value, std::string unit,
           std::string detail = {}) {
    std::ostringstream line;
    line << "[" << scenario << "] " << name << ": ";
    if (unit == "count") {
      line << static_cast<long long>(value);
    } else {
      line << fixed(value) << (unit.empty() ? "" : " ") << unit;
    }
    if (!detail.empty()) line << " (" << detail << ")";
    out() << line.str() << std::endl;
    figures_.push_back(
        {std::move(scenario), std::move(name), value, std::move(unit), std::move(detail)});
  }
  void note(const std::string& scenario, const std::string& text) {
    out() << "[" << scenario << "] " << text << std::endl;
  }
  void judge(std::string scenario, std::string what, bool met, std::string measured) {
    targets_.push_back({std::move(scenario), std::move(what), met, std::move(measured)});
  }
  void error(const std::string& scenario, const std::string& text) {
    out() << "[" << scenario << "] ERROR: " << text << std::endl;
    errors_.push_back({scenario, text});
    judge(scenario, "scenario completes", false, text);
  }

  /// Prints the verdict; returns the exit code.
  int finish(const settings& s) {
    bool all_expected_met = true;
    out() << "\nverdict:\n";
    for (const auto& t : targets_) {
      const bool expected = s.expect_met.contains(t.scenario);
      if (expected && !t.met) all_expected_met = false;
      out() << "  " << (t.met ? "met     " : "NOT met ") << "[" << t.scenario << "] " << t.what
            << ": " << t.measured << (expected || t.met ? "" : " (not expected yet)") << "\n";
    }
    const int code = all_expected_met ? exit_met : exit_not_met;
    out() << (code == exit_met ? "every expected target met" : "expected targets NOT met")
          << std::endl;
    if (json_) {
      nlohmann::json j;
      j["settings"] = {
          {"peers", s.peers},
          {"runs", s.runs},
          {"writers", s.writers},
          {"waves", s.waves},
          {"duration_s", s.duration},
          {"settle_s", s.settle},
          {"seed", s.seed},
          {"idle_tcp", s.idle_tcp},
          {"greedy", s.greedy},
          {"victim_rate", s.victim_rate},
          {"idle_clients", s.idle_clients},
          {"idle_identities", s.idle_identities},
          {"quick", s.quick},
          {"scenarios", s.scenarios},
          {"expect_met", std::vector<std::string>(s.expect_met.begin(), s.expect_met.end())}};
      j["figures"] = nlohmann::json::array();
      for (const auto& f : figures_) {
        j["figures"].push_back({{"scenario", f.scenario},
                                {"name", f.name},
                                {"value", f.value},
                                {"unit", f.unit},
                                {"detail", f.detail}});
      }
      j["targets"] = nlohmann::json::array();
      for (const auto& t : targets_) {
        j["targets"].push_back({{"scenario", t.scenario},
                                {"target", t.what},
                                {"met", t.met},
                                {"measured", t.measured},
                                {"expected", s.expect_met.contains(t.scenario)}});
      }
      j["errors"] = nlohmann::json::array();
      for (const auto& [sc, text] : errors_)
        j["errors"].push_back({{"scenario", sc}, {"error", text}});
      j["all_expected_met"] = all_expected_met;
      j["exit_code"] = code;
      std::cout << j.dump(2) << std::endl;
    }
    return code;
  }

 private:
  std::ostream& out() const { return json_ ? std::cerr : std::cout; }

  bool json_;
  std::vector<figure> figures_;
  std::vector<target> targets_;
  std::vector<std::pair<std::string, std::string>> errors_;
};

void progress(const std::string& text) {
  std::cerr << "chaos: " << text << std::endl;
}

// ---- the ring and who is responsible for a key ----

/// The peers of the overlay in ring order (their Node-IDs do not change across restarts: the
/// certificate binds them).
struct ring_view {
  std::vector<std::pair<pr::node_id, std::size_t>> sorted;  ///< (Node-ID, peer index)

  static ring_view of(tst::process_overlay& o) {
    ring_view r;
    for (std::size_t i = 0; i < o.peers().size(); ++i) {
      auto id = pr::node_id::from_hex(o.peers()[i].node_id);
      if (!id) throw std::runtime_error("peer " + o.peers()[i].name + " has no Node-ID yet");
      r.sorted.emplace_back(*id, i);
    }
    std::sort(r.sorted.begin(), r.sorted.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    return r;
  }

  /// The peer responsible for `key` when every peer is up: the first Node-ID at or after the
  /// key's Resource-ID (RFC 6940 10.1), SHA-1 of the name as the SDK computes it for put/get.
  std::size_t responsible(const std::string& key) const {
    const auto point = pr::hash_resource_name(key, sorted.front().first.size()).as_ring_point();
    if (!point) throw std::runtime_error("Resource-ID length differs from the Node-ID length");
    for (const auto& [id, i] : sorted) {
      if (!(id < *point)) return i;
    }
    return sorted.front().second;
  }

  /// The peer after `i` in ring order.
  std::size_t successor(std::size_t i) const {
    for (std::size_t k = 0; k < sorted.size(); ++k) {
      if (sorted[k].second == i) return sorted[(k + 1) % sorted.size()].second;
    }
    return i;
  }
};

/// `count` fresh key names whose responsible peer is `peer`, "PREFIX-N".
std::vector<std::string> keys_in_range(const ring_view& ring, std::size_t peer,
                                       const std::string& prefix, std::size_t count) {
  std::vector<std::string> out;
  for (std::size_t n = 0; out.size() < count && n < 1'000'000; ++n) {
    auto k = prefix + "-" + std::to_string(n);
    if (ring.responsible(k) == peer) out.push_back(std::move(k));
  }
  if (out.size() < count) throw std::runtime_error("no keys found in the range of one peer");
  return out;
}

// ---- SDK clients ----

struct client_timing {
  std::chrono::milliseconds operation{10'000};
  std::chrono::milliseconds request{3'000};
};

cl::client_options client_options(tst::process_overlay& o, const std::string& user,
                                  std::vector<std::string> peers, client_timing t = {}) {
  o.enroll(user);
  cl::client_options opt;
  opt.config_file = o.config_file().string();
  opt.certificate_file = o.cert_of(user).string();
  opt.key_file = o.key_of(user).string();
  opt.peers = std::move(peers);
  opt.operation_timeout = t.operation;
  opt.request_timeout = t.request;
  opt.keepalive_interval = 2s;  // finds a killed peer quickly (the SDK fails over on no ack)
  return opt;
}

std::unique_ptr<cl::client> make_client(tst::process_overlay& o, const std::string& user,
                                        std::vector<std::string> peers, client_timing t = {}) {
  auto c = cl::client::create(client_options(o, user, std::move(peers), t));
  if (!c) throw std::runtime_error("client " + user + ": " + c.error().message);
  if (auto a = (*c)->wait_attached(15s); !a) {
    throw std::runtime_error("client " + user + " did not attach: " + a.error().message);
  }
  return std::move(*c);
}

/// `first` then every other running peer, in a random order (the SDK's failover list).
std::vector<std::string> failover_list(tst::process_overlay& o, std::size_t first,
                                       std::mt19937_64& rng) {
  std::vector<std::string> rest;
  for (std::size_t i = 0; i < o.peers().size(); ++i) {
    if (i != first && o.peers()[i].pid > 0) rest.push_back(o.peers()[i].address);
  }
  std::shuffle(rest.begin(), rest.end(), rng);
  rest.insert(rest.begin(), o.peers()[first].address);
  return rest;
}

std::string value_for(const std::string& key) {
  return "value-of-" + key;
}

bool holds(const cl::result<std::vector<cl::owned_value>>& r, const std::string& value) {
  if (!r) return false;
  return std::any_of(r->begin(), r->end(),
                     [&](const cl::owned_value& v) { return cl::to_string(v.value) == value; });
}

/// How long `client` (fresh, attached only to `peer`) takes from create() to a done put.
/// nullopt (and `error` set) when it does not succeed within 10 s.
std::optional<double> time_attach_and_put(tst::process_overlay& o, const std::string& user,
                                          const std::string& peer, std::string& error) {
  o.enroll(user);  // before the clock starts: p2psip-admin is not what is measured
  const auto start = clock_type::now();
  auto c = cl::client::create(client_options(o, user, {peer}, {10s, 10s}));
  if (!c) {
    error = c.error().message;
    return std::nullopt;
  }
  auto put = (*c)->put("probe-" + user, cl::to_bytes("hello"));
  const double took = seconds_since(start);
  if (!put) {
    error = put.error().message + " after " + fixed(took) + " s";
    return std::nullopt;
  }
  return took;
}

// ---- writers: SDK clients putting unique keys, recording what was acknowledged ----

class writer_pool {
 public:
  /// `count` writers, writer i attached first to peer `first_peer[i]` (with every other peer as
  /// failover), putting "PREFIX-wI-N".
  writer_pool(tst::process_overlay& o, std::size_t count, const std::string& prefix,
              std::mt19937_64& rng) {
    std::vector<std::size_t> order(o.peers().size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t w = 0; w < count; ++w) {
      clients_.push_back(make_client(o, "writer" + std::to_string(w),
                                     failover_list(o, order[w % order.size()], rng), {5s, 2s}));
    }
    acked_.resize(count);
    for (std::size_t w = 0; w < count; ++w) {
      threads_.emplace_back([this, w, prefix] { run(w, prefix); });
    }
  }
  ~writer_pool() { stop(); }
  writer_pool(const writer_pool&) = delete;
  writer_pool& operator=(const writer_pool&) = delete;

  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  /// Every acknowledged key (call after stop()).
  std::vector<std::string> acknowledged() const {
    std::vector<std::string> all;
    for (const auto& a : acked_) all.insert(all.end(), a.begin(), a.end());
    return all;
  }
  std::size_t failures() const { return failures_; }

 private:
  void run(std::size_t w, const std::string& prefix) {
    constexpr std::size_t max_puts = 1'000'000;  // a bound; the stop flag ends it long before
    for (std::size_t n = 0; n < max_puts && !stop_; ++n) {
      const auto key = prefix + "-w" + std::to_string(w) + "-" + std::to_string(n);
      if (clients_[w]->put(key, cl::to_bytes(value_for(key)))) {
        acked_[w].push_back(key);
      } else {
        ++failures_;
      }
    }
  }

  std::vector<std::unique_ptr<cl::client>> clients_;
  std::vector<std::vector<std::string>> acked_;  // acked_[w] written only by thread w
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> failures_{0};
};

struct readback_result {
  std::size_t acknowledged = 0;
  std::size_t unreadable = 0;
  std::vector<std::string> first_unreadable;  ///< "key (responsible pN)"
};

/// Reads every key back through up to three clients attached to different peers (a key counts
/// as unreadable only when none of them returns its value).
readback_result read_back(tst::process_overlay& o, const std::vector<std::string>& keys,
                          const ring_view& ring, std::mt19937_64& rng) {
  std::vector<std::size_t> running;
  for (std::size_t i = 0; i < o.peers().size(); ++i) {
    if (o.peers()[i].pid > 0) running.push_back(i);
  }
  std::shuffle(running.begin(), running.end(), rng);
  std::vector<std::unique_ptr<cl::client>> readers;
  for (std::size_t r = 0; r < std::min<std::size_t>(3, running.size()); ++r) {
    readers.push_back(
        make_client(o, "reader" + std::to_string(r), {o.peers()[running[r]].address}, {5s, 2s}));
  }
  readback_result out;
  out.acknowledged = keys.size();
  std::mutex m;
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (std::size_t i = next++; i < keys.size(); i = next++) {
        bool ok = false;
        for (auto& r : readers) {
          if (holds(r->get(keys[i]), value_for(keys[i]))) {
            ok = true;
            break;
          }
        }
        if (!ok) {
          std::lock_guard lock(m);
          ++out.unreadable;
          if (out.first_unreadable.size() < 5) {
            out.first_unreadable.push_back(keys[i] + " (responsible " +
                                           o.peers()[ring.responsible(keys[i])].name + ")");
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

std::string join(const std::vector<std::string>& v, const std::string& sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

// ---- per-range availability: one prober thread per peer's range ----

/// Reads a key of each peer's range every 200 ms through one client (with every peer as
/// failover) and keeps, per range, the longest run of failed reads (first failure to the next
/// success, or to stop()).
class range_prober {
 public:
  range_prober(tst::process_overlay& o, const ring_view& ring, const std::string& prefix,
               std::mt19937_64& rng) {
    auto setup = make_client(o, "prober-setup", failover_list(o, 0, rng), {5s, 2s});
    keys_.resize(o.peers().size());
    for (std::size_t p = 0; p < o.peers().size(); ++p) {
      for (auto& k : keys_in_range(ring, p, prefix + "-r" + std::to_string(p), 2)) {
        if (!setup->put(k, cl::to_bytes(value_for(k)))) {
          throw std::runtime_error("cannot write probe key " + k);
        }
        keys_[p].push_back(k);
      }
    }
    names_.resize(o.peers().size());
    for (std::size_t p = 0; p < o.peers().size(); ++p) names_[p] = o.peers()[p].name;
    client_ = make_client(o, "prober", failover_list(o, 1 % o.peers().size(), rng), {2s, 1s});
    longest_.assign(o.peers().size(), 0.0);
    for (std::size_t p = 0; p < o.peers().size(); ++p) {
      threads_.emplace_back([this, p] { run(p); });
    }
  }
  ~range_prober() { stop(); }
  range_prober(const range_prober&) = delete;
  range_prober& operator=(const range_prober&) = delete;

  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  /// Longest unavailability per range, seconds (call after stop()).
  const std::vector<double>& longest() const { return longest_; }
  std::string summary() const {
    std::vector<std::string> parts;
    for (std::size_t p = 0; p < longest_.size(); ++p) {
      parts.push_back(names_[p] + " " + fixed(longest_[p], 1));
    }
    return join(parts);
  }

 private:
  void run(std::size_t p) {
    std::optional<clock_type::time_point> failing_since;
    for (std::size_t n = 0; n < 100'000 && !stop_; ++n) {
      const auto start = clock_type::now();
      const auto& key = keys_[p][n % keys_[p].size()];
      const bool ok = holds(client_->get(key), value_for(key));
      if (!ok && !failing_since) failing_since = start;
      if (ok && failing_since) {
        longest_[p] =
            std::max(longest_[p], std::chrono::duration<double>(start - *failing_since).count());
        failing_since.reset();
      }
      std::this_thread::sleep_until(start + 200ms);
    }
    if (failing_since) longest_[p] = std::max(longest_[p], seconds_since(*failing_since));
  }

  std::vector<std::vector<std::string>> keys_;
  std::vector<std::string> names_;
  std::unique_ptr<cl::client> client_;
  std::vector<double> longest_;  // longest_[p] written only by thread p
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
};

void report_ranges(report& rep, const std::string& scenario, const range_prober& prober) {
  const auto& l = prober.longest();
  rep.add(scenario, "seconds of unavailability per range (longest run of failed reads)",
          l.empty() ? 0.0 : *std::max_element(l.begin(), l.end()), "s max", prober.summary());
}

void sleep_seconds(double s) {
  std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

/// Waits for a consistent ring (bounded) plus the settle period; notes a ring that did not form.
void settle_ring(tst::process_overlay& o, report& rep, const std::string& scenario,
                 const settings& s) {
  const auto start = clock_type::now();
  const bool ok = o.wait_ring(60s);
  std::string detail;
  if (!ok) {
    // Which peers disagree with the ring order (their first successor, or not joined).
    const auto ring = ring_view::of(o);
    detail = "did not settle within 60 s:";
    for (std::size_t i = 0; i < o.peers().size(); ++i) {
      const auto succ = o.status_field(i, "succ");
      const auto want = o.peers()[ring.successor(i)].node_id;
      const auto joined = o.status_field(i, "joined");
      if (joined != "yes" || succ.substr(0, succ.find(',')) != want) {
        detail += " " + o.peers()[i].name + " joined=" + joined +
                  " succ=" + succ.substr(0, std::min<std::size_t>(8, succ.size())) + " (want " +
                  o.peers()[ring.successor(i)].name + ")";
      }
    }
  }
  rep.add(scenario, "seconds until the ring was consistent again", seconds_since(start), "s",
          detail);
  sleep_seconds(s.settle);
}

// ---- 1. churn ----

void churn_run(const settings& s, report& rep, std::size_t run, std::mt19937_64& rng,
               std::size_t& total_ack, std::size_t& total_unreadable) {
  const std::string sc = "churn";
  tst::process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  progress("churn run " + std::to_string(run) + ": starting " + std::to_string(s.peers) + " peers");
  o.start_ring(s.peers, /*durable=*/true, 120s);
  const auto ring = ring_view::of(o);
  range_prober prober(o, ring, "churn" + std::to_string(run) + "-probe", rng);
  writer_pool writers(o, s.writers, "churn" + std::to_string(run), rng);
  sleep_seconds(s.duration / 2);
  std::uniform_real_distribution<double> down(3.0, 5.0);
  std::vector<std::string> waves_text;
  for (std::size_t wave = 0; wave < s.waves; ++wave) {
    std::uniform_int_distribution<std::size_t> pick(0, s.peers - 1);
    const std::size_t a = pick(rng);
    std::size_t b = a;
    const bool adjacent = wave % 2 == 0;
    if (adjacent) {
      // Ring-adjacent: the first successor the peer itself reports (else the ring order).
      const auto succ = o.status_field(a, "succ");
      const auto first = succ.substr(0, succ.find(','));
      b = ring.successor(a);
      for (std::size_t i = 0; i < o.peers().size(); ++i) {
        if (o.peers()[i].node_id == first && i != a) b = i;
      }
    } else {
      while (b == a) b = pick(rng);
    }
    const double secs = down(rng);
    progress("churn wave " + std::to_string(wave + 1) + ": kill -9 " + o.peers()[a].name + " " +
             o.peers()[b].name + (adjacent ? " (adjacent)" : "") + " for " + fixed(secs, 1) + " s");
    o.kill_peer(a);
    o.kill_peer(b);
    sleep_seconds(secs);
    o.restart_peer(a);
    o.restart_peer(b);
    waves_text.push_back(o.peers()[a].name + "+" + o.peers()[b].name +
                         (adjacent ? " adjacent" : ""));
    sleep_seconds(wave + 1 < s.waves ? 5.0 : 2.0);
  }
  writers.stop();
  settle_ring(o, rep, sc, s);
  prober.stop();
  const auto keys = writers.acknowledged();
  progress("churn: reading back " + std::to_string(keys.size()) + " acknowledged keys");
  const auto rb = read_back(o, keys, ring, rng);
  const std::string run_text = "run " + std::to_string(run) + "/" + std::to_string(s.runs);
  rep.add(sc, "acknowledged (" + run_text + ")", static_cast<double>(rb.acknowledged), "count",
          std::to_string(writers.failures()) + " puts failed, waves: " + join(waves_text, "; "));
  rep.add(sc, "unreadable (" + run_text + ")", static_cast<double>(rb.unreadable), "count",
          join(rb.first_unreadable));
  report_ranges(rep, sc, prober);
  total_ack += rb.acknowledged;
  total_unreadable += rb.unreadable;
}

void churn(const settings& s, report& rep, std::mt19937_64& rng) {
  std::size_t ack = 0, unreadable = 0, done = 0;
  for (std::size_t run = 1; run <= s.runs; ++run) {
    try {
      churn_run(s, rep, run, rng, ack, unreadable);
      ++done;
    } catch (const std::exception& e) {
      rep.error("churn", "run " + std::to_string(run) + ": " + e.what());
    }
  }
  rep.judge("churn", "0 unreadable acknowledged puts after waves of kill -9",
            done > 0 && unreadable == 0,
            std::to_string(unreadable) + " unreadable of " + std::to_string(ack) + " over " +
                std::to_string(done) + " runs");
}

// ---- 2. restart ----

void restart_run(const settings& s, report& rep, std::size_t run, std::mt19937_64& rng,
                 double& worst) {
  const std::string sc = "restart";
  tst::process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  progress("restart run " + std::to_string(run) + ": starting " + std::to_string(s.peers) +
           " peers");
  o.start_ring(s.peers, /*durable=*/true, 120s);
  const auto ring = ring_view::of(o);
  std::uniform_int_distribution<std::size_t> pick(0, s.peers - 1);
  const std::size_t v = pick(rng);
  const auto& victim = o.peers()[v];
  const std::string prefix = "restart" + std::to_string(run);
  const auto range_keys = keys_in_range(ring, v, prefix + "-in", 10);
  const auto fresh = keys_in_range(ring, v, prefix + "-fresh", 200);
  {
    auto setup = make_client(o, "setup", failover_list(o, (v + 1) % s.peers, rng), {5s, 2s});
    for (const auto& k : range_keys) {
      if (!setup->put(k, cl::to_bytes(value_for(k)))) {
        throw std::runtime_error("cannot write " + k + " before the kill");
      }
    }
  }
  range_prober prober(o, ring, prefix + "-probe", rng);
  // Reads go through another peer, which routes to whoever is responsible.
  auto reader =
      make_client(o, "restart-reader", failover_list(o, (v + 1) % s.peers, rng), {2s, 1s});
  progress("restart: kill -9 " + victim.name + " (" + std::to_string(range_keys.size()) +
           " keys in its range)");
  o.kill_peer(v);
  sleep_seconds(3.0);
  o.restart_peer(v);
  const auto restarted = clock_type::now();
  const double observe = s.quick ? 20.0 : 30.0;
  std::optional<double> first_ok, last_fail, served_at, streak_start;
  bool last_ok = false;
  std::size_t fresh_i = 0, cycles = 0;
  while (seconds_since(restarted) < observe && fresh_i < fresh.size()) {
    const double t = seconds_since(restarted);
    bool ok = true;
    for (const auto& k : range_keys) {
      if (!holds(reader->get(k), value_for(k))) {
        ok = false;
        break;
      }
    }
    if (ok) {
      const auto& k = fresh[fresh_i++];
      ok = reader->put(k, cl::to_bytes(value_for(k))).has_value();
    }
    ++cycles;
    if (ok && !first_ok) first_ok = t;
    if (ok && !last_ok) streak_start = t;
    if (!ok) last_fail = seconds_since(restarted);
    last_ok = ok;
    if (!served_at && o.status_field(v, "joined") == "yes") {
      if (auto p = reader->ping(range_keys.front()); p && p->responder_node_id == victim.node_id) {
        served_at = seconds_since(restarted);
      }
    }
    // Done when the restarted peer serves its range again and every cycle of the last 3 s
    // succeeded.
    if (served_at && seconds_since(restarted) > std::max(*served_at, last_fail.value_or(0)) + 3)
      break;
    std::this_thread::sleep_for(100ms);
  }
  const double end = seconds_since(restarted);
  prober.stop();
  // Readable (and staying readable): from the restart to the first success after the last
  // failed cycle; never when the last cycle failed.
  const bool stable = last_ok;
  const double readable = stable ? streak_start.value_or(end) : end;
  const std::string run_text = "run " + std::to_string(run) + "/" + std::to_string(s.runs);
  rep.add(sc, "seconds until the restarted peer's range is readable (" + run_text + ")", readable,
          "s",
          victim.name + ", " + std::to_string(cycles) + " read/put cycles" +
              (stable ? "" : ", still failing after " + fixed(end, 1) + " s") +
              (first_ok ? ", first good cycle at " + fixed(*first_ok) + " s" : ""));
  rep.add(sc, "seconds until the restarted peer serves its range again (" + run_text + ")",
          served_at.value_or(end), "s",
          served_at ? "Ping to a key of its range answered by it"
                    : "not within " + fixed(end, 1) + " s");
  report_ranges(rep, sc, prober);
  worst = std::max(worst, stable ? readable : 1e9);
}

void restart(const settings& s, report& rep, std::mt19937_64& rng) {
  double worst = 0;
  std::size_t done = 0;
  for (std::size_t run = 1; run <= s.runs; ++run) {
    try {
      restart_run(s, rep, run, rng, worst);
      ++done;
    } catch (const std::exception& e) {
      rep.error("restart", "run " + std::to_string(run) + ": " + e.what());
    }
  }
  rep.judge("restart", "range of a kill -9'd peer readable within 5 s of its restart",
            done > 0 && worst <= 5.0,
            worst >= 1e9 ? "still unreadable at the end of a run"
                         : "worst " + fixed(worst) + " s over " + std::to_string(done) + " runs");
}

// ---- 3. sigterm ----

void sigterm_run(const settings& s, report& rep, std::size_t run, std::mt19937_64& rng,
                 std::size_t& total_ack, std::size_t& total_lost) {
  const std::string sc = "sigterm";
  tst::process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  progress("sigterm run " + std::to_string(run) + ": starting " + std::to_string(s.peers) +
           " peers");
  o.start_ring(s.peers, /*durable=*/true, 120s);
  const auto ring = ring_view::of(o);
  writer_pool writers(o, s.writers * 2, "sigterm" + std::to_string(run), rng);
  sleep_seconds(s.duration / 2);
  std::uniform_int_distribution<std::size_t> pick(0, s.peers - 1);
  const std::size_t v = pick(rng);
  progress("sigterm: SIGTERM " + o.peers()[v].name);
  const auto start = clock_type::now();
  const int status = o.stop_peer(v, 15s);
  const double exit_secs = seconds_since(start);
  sleep_seconds(1.0);
  o.restart_peer(v);
  sleep_seconds(s.duration / 2);
  writers.stop();
  settle_ring(o, rep, sc, s);
  const auto keys = writers.acknowledged();
  const auto rb = read_back(o, keys, ring, rng);
  const std::string run_text = "run " + std::to_string(run) + "/" + std::to_string(s.runs);
  rep.add(sc, "seconds from SIGTERM to exit (" + run_text + ")", exit_secs, "s",
          o.peers()[v].name + " exit status " + std::to_string(status));
  rep.add(sc, "acknowledged (" + run_text + ")", static_cast<double>(rb.acknowledged), "count",
          std::to_string(writers.failures()) + " puts failed");
  rep.add(sc, "acknowledged lost (" + run_text + ")", static_cast<double>(rb.unreadable), "count",
          join(rb.first_unreadable));
  total_ack += rb.acknowledged;
  total_lost += rb.unreadable;
}

void sigterm(const settings& s, report& rep, std::mt19937_64& rng) {
  std::size_t ack = 0, lost = 0, done = 0;
  for (std::size_t run = 1; run <= s.runs; ++run) {
    try {
      sigterm_run(s, rep, run, rng, ack, lost);
      ++done;
    } catch (const std::exception& e) {
      rep.error("sigterm", "run " + std::to_string(run) + ": " + e.what());
    }
  }
  rep.judge("sigterm", "0 acknowledged puts lost across a SIGTERM and restart",
            done > 0 && lost == 0,
            std::to_string(lost) + " lost of " + std::to_string(ack) + " over " +
                std::to_string(done) + " runs");
}

// ---- 4. idle-tcp ----

/// Plain TCP connections to `port` on 127.0.0.1 that send nothing; returns the connected
/// sockets (bounded: 2 s per connection at most, 60 s in all).
std::vector<int> open_idle_tcp(int port, std::size_t count, std::string& error) {
  std::vector<int> fds;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const auto until = clock_type::now() + 60s;
  for (std::size_t i = 0; i < count && clock_type::now() < until; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      break;
    }
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);  // NOLINT
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, 2000) == 1 ? 0 : -1;
      int err = 0;
      socklen_t len = sizeof err;
      if (rc == 0 && (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)) rc = -1;
    }
    if (rc != 0) {
      error = "connection " + std::to_string(i) + " not established within 2 s";
      ::close(fd);
      continue;
    }
    fds.push_back(fd);
  }
  return fds;
}

int port_of(const std::string& address) {
  return std::stoi(address.substr(address.rfind(':') + 1));
}

void idle_tcp(const settings& s, report& rep, std::mt19937_64& /*rng*/) {
  const std::string sc = "idle-tcp";
  tst::process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  const std::size_t n = std::min<std::size_t>(s.peers, 3);
  progress("idle-tcp: starting " + std::to_string(n) + " peers");
  o.start_ring(n, /*durable=*/true, 60s);
  const auto target_peer = o.peers()[0].address;
  std::string error;
  const auto start = clock_type::now();
  auto fds = open_idle_tcp(port_of(target_peer), s.idle_tcp, error);
  rep.add(sc, "idle TCP connections held", static_cast<double>(fds.size()), "count",
          "of " + std::to_string(s.idle_tcp) + " to " + o.peers()[0].name + ", opened in " +
              fixed(seconds_since(start)) + " s" + (error.empty() ? "" : "; " + error));
  std::string attach_error;
  const auto took = time_attach_and_put(o, "newcomer", target_peer, attach_error);
  for (const int fd : fds) ::close(fd);
  rep.add(sc, "seconds for a new client to attach and put", took.value_or(10.0), "s",
          took ? "" : "failed: " + attach_error);
  rep.judge(sc,
            "new client attaches and puts in < 1 s with " + std::to_string(s.idle_tcp) +
                " idle TCP connections held",
            took && *took < 1.0, took ? fixed(*took) + " s" : "failed: " + attach_error);
}

// ---- 5. greedy ----

struct victim_figures {
  double ops_per_s = 0;
  double p99_ms = 0;
  std::size_t errors = 0;
  std::size_t skipped = 0;  ///< ticks with 16 requests already in flight
};

/// A well-behaved client: one put or get every 1/rate s, at most 16 in flight, for `secs`.
victim_figures measure_victim(cl::client& c, double rate, double secs, const std::string& tag) {
  struct state {
    std::mutex m;
    std::condition_variable cv;
    std::size_t in_flight = 0;
    std::size_t ok = 0;
    std::size_t errors = 0;
    std::vector<double> lat_ms;
  };
  auto st = std::make_shared<state>();
  const auto start = clock_type::now();
  const auto end =
      start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(secs));
  const auto step =
      std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(1.0 / rate));
  victim_figures f;
  std::size_t i = 0;
  for (auto next = start; next < end; next += step) {
    std::this_thread::sleep_until(next);
    {
      std::lock_guard lock(st->m);
      if (st->in_flight >= 16) {
        ++f.skipped;
        continue;
      }
      ++st->in_flight;
    }
    const auto issued = clock_type::now();
    auto done = [st, issued, end](bool ok) {
      std::lock_guard lock(st->m);
      --st->in_flight;
      const auto now = clock_type::now();
      if (ok && now <= end) {
        ++st->ok;
        st->lat_ms.push_back(std::chrono::duration<double, std::milli>(now - issued).count());
      } else if (!ok) {
        ++st->errors;
      }
      st->cv.notify_all();
    };
    const auto key = "victim-" + tag + "-" + std::to_string(i / 2);
    if (i % 2 == 0) {
      c.put_async(key, cl::to_bytes(value_for(key)), 3600,
                  [done](cl::result<void> r) { done(r.has_value()); });
    } else {
      c.get_async(key, [done](cl::result<std::vector<cl::owned_value>> r) { done(r.has_value()); });
    }
    ++i;
  }
  std::unique_lock lock(st->m);
  st->cv.wait_for(lock, 15s, [&] { return st->in_flight == 0; });
  f.ops_per_s = static_cast<double>(st->ok) / secs;
  f.errors = st->errors;
  if (!st->lat_ms.empty()) {
    std::sort(st->lat_ms.begin(), st->lat_ms.end());
    f.p99_ms =
        st->lat_ms[static_cast<std::size_t>(0.99 * static_cast<double>(st->lat_ms.size() - 1))];
  }
  return f;
}

/// Clients each keeping `in_flight` puts outstanding on one peer until stop().
class greedy_clients {
 public:
  greedy_clients(tst::process_overlay& o, std::size_t count, std::size_t in_flight,
                 const std::string& peer)
      : st_(std::make_shared<state>()) {
    for (std::size_t g = 0; g < count; ++g) {
      clients_.push_back(make_client(o, "greedy" + std::to_string(g), {peer}, {5s, 3s}));
    }
    for (std::size_t g = 0; g < count; ++g) {
      for (std::size_t k = 0; k < in_flight; ++k) issue(g, k);
    }
  }
  ~greedy_clients() { stop(); }
  greedy_clients(const greedy_clients&) = delete;
  greedy_clients& operator=(const greedy_clients&) = delete;

  void stop() {
    st_->stop = true;
    std::unique_lock lock(st_->m);
    st_->cv.wait_for(lock, 20s, [&] { return st_->in_flight == 0; });
  }
  std::size_t done() const { return st_->done; }
  std::size_t errors() const { return st_->errors; }

 private:
  struct state {
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> done{0};
    std::atomic<std::size_t> errors{0};
    std::mutex m;
    std::condition_variable cv;
    std::size_t in_flight = 0;
  };

  void issue(std::size_t g, std::size_t k) {
    {
      std::lock_guard lock(st_->m);
      if (st_->stop) return;
      ++st_->in_flight;
    }
    const auto key = "greedy-" + std::to_string(g) + "-" + std::to_string(k);
    clients_[g]->put_async(key, cl::bytes(100, 0x47), 600,
                           [this, st = st_, g, k](cl::result<void> r) {
                             ++(r ? st->done : st->errors);
                             // The next put first (this one still counts as in flight, so stop()
                             // waits and `this` lives); issue() does nothing once stopping.
                             if (!st->stop) issue(g, k);
                             std::lock_guard lock(st->m);
                             --st->in_flight;
                             st->cv.notify_all();
                           });
  }

  std::shared_ptr<state> st_;
  std::vector<std::unique_ptr<cl::client>> clients_;
};

void greedy(const settings& s, report& rep, std::mt19937_64& /*rng*/) {
  const std::string sc = "greedy";
  tst::process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  const std::size_t n = std::min<std::size_t>(s.peers, 3);
  progress("greedy: starting " + std::to_string(n) + " peers");
  o.start_ring(n, /*durable=*/true, 60s);
  const auto peer = o.peers()[0].address;
  auto victim = make_client(o, "victim", {peer}, {5s, 3s});
  (void)victim->put("victim-warmup", cl::to_bytes("x"));
  const auto base = measure_victim(*victim, s.victim_rate, s.duration, "base");
  rep.add(sc, "victim alone: ops/s", base.ops_per_s, "ops/s",
          "offered " + fixed(s.victim_rate, 0) + "/s, p99 " + fixed(base.p99_ms, 1) + " ms, " +
              std::to_string(base.errors) + " errors");
  progress("greedy: " + std::to_string(s.greedy) + " greedy clients x " +
           std::to_string(s.greedy_in_flight) + " in flight");
  victim_figures attacked;
  std::size_t greedy_done = 0, greedy_errors = 0;
  double greedy_secs = 0;
  {
    greedy_clients g(o, s.greedy, s.greedy_in_flight, peer);
    const auto gstart = clock_type::now();
    sleep_seconds(1.0);
    attacked = measure_victim(*victim, s.victim_rate, s.duration, "attacked");
    greedy_secs = seconds_since(gstart);
    g.stop();
    greedy_done = g.done();
    greedy_errors = g.errors();
  }
  rep.add(sc, "victim under attack: ops/s", attacked.ops_per_s, "ops/s",
          "p99 " + fixed(attacked.p99_ms, 1) + " ms, " + std::to_string(attacked.errors) +
              " errors, " + std::to_string(attacked.skipped) + " ticks skipped (16 in flight)");
  rep.add(sc, "greedy clients: ops/s", static_cast<double>(greedy_done) / greedy_secs, "ops/s",
          std::to_string(s.greedy) + " clients, " + std::to_string(greedy_errors) + " errors");
  const double ratio = base.ops_per_s > 0 ? attacked.ops_per_s / base.ops_per_s : 0;
  rep.add(sc, "victim throughput under attack relative to alone", ratio, "x");
  rep.judge(sc,
            "victim keeps >= 0.8 of its throughput with " + std::to_string(s.greedy) +
                " greedy clients on its peer",
            ratio >= 0.8, fixed(ratio) + " x");
}

// ---- 6. idle-clients ----

/// TLS client links held open on their own io_context thread.
class idle_links {
 public:
  idle_links() : work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~idle_links() {
    asio::post(io_, [this] {
      for (auto& l : links_) l->close();
      links_.clear();
    });
    work_.reset();
    std::this_thread::sleep_for(200ms);
    io_.stop();
    thread_.join();
  }
  idle_links(const idle_links&) = delete;
  idle_links& operator=(const idle_links&) = delete;

  /// Opens `count` links to `port` with `creds` (at most 32 handshakes at once, 120 s in all).
  void open(int port, std::shared_ptr<const tr::tls_credentials> creds, std::size_t count) {
    const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"),
                                     static_cast<unsigned short>(port));
    const auto until = clock_type::now() + 120s;
    for (std::size_t i = 0; i < count && clock_type::now() < until; ++i) {
      while (started_ - (established_ + failed_) >= 32 && clock_type::now() < until) {
        std::this_thread::sleep_for(5ms);
      }
      ++started_;
      asio::co_spawn(io_, connect_one(ep, creds), [this](std::exception_ptr e) {
        if (e) ++failed_;
      });
    }
    while (started_ > established_ + failed_ && clock_type::now() < until) {
      std::this_thread::sleep_for(10ms);
    }
  }
  std::size_t established() const { return established_; }
  std::size_t failed() const { return failed_; }
  std::size_t closed() const { return closed_; }
  std::string last_error() const {
    std::lock_guard lock(m_);
    return last_error_;
  }

 private:
  asio::awaitable<void> connect_one(asio::ip::tcp::endpoint ep,
                                    std::shared_ptr<const tr::tls_credentials> creds) {
    tr::link_config cfg;
    cfg.idle_timeout = std::nullopt;  // idle on purpose
    cfg.ack_timeout = std::nullopt;
    auto r = co_await tr::connect(ep, std::move(creds), cfg);
    if (!r) {
      std::lock_guard lock(m_);
      last_error_ = r.error().message();
      ++failed_;
      co_return;
    }
    auto l = *r;
    l->on_close([this](std::error_code ec) {
      ++closed_;
      std::lock_guard lock(m_);
      last_error_ = "closed: " + ec.message();
    });
    links_.push_back(std::move(l));
    ++established_;
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::shared_ptr<tr::link>> links_;  // only on the io thread
  std::atomic<std::size_t> started_{0}, established_{0}, failed_{0}, closed_{0};
  mutable std::mutex m_;
  std::string last_error_;
  std::thread thread_;
};

void idle_clients(const settings& s, report& rep, std::mt19937_64& /*rng*/) {
  const std::string sc = "idle-clients";
  tst::process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  const std::size_t n = std::min<std::size_t>(s.peers, 3);
  progress("idle-clients: starting " + std::to_string(n) + " peers");
  o.start_ring(n, /*durable=*/true, 60s);
  const auto target_peer = o.peers()[0].address;
  // p2psip-admin enrolls one identity per run (~0.1 s each): --idle-identities distinct client
  // identities, each used by several links (the peer keys links by link, not by Node-ID).
  const std::size_t ids = std::max<std::size_t>(1, std::min(s.idle_identities, s.idle_clients));
  progress("idle-clients: enrolling " + std::to_string(ids) + " client identities");
  std::vector<std::shared_ptr<const tr::tls_credentials>> creds;
  for (std::size_t i = 0; i < ids; ++i) {
    const auto name = "idle" + std::to_string(i);
    o.enroll(name);
    auto setup = p2psip::node::load_node_setup(o.config_file(), o.cert_of(name), o.key_of(name));
    if (!setup) throw std::runtime_error("cannot load " + name + ": " + setup.error().message);
    creds.push_back(setup->tls);
  }
  idle_links links;
  const auto start = clock_type::now();
  progress("idle-clients: opening " + std::to_string(s.idle_clients) + " TLS client links");
  const std::size_t per_id = (s.idle_clients + ids - 1) / ids;
  for (std::size_t i = 0; i < ids; ++i) {
    const std::size_t count =
        std::min(per_id, s.idle_clients - std::min(s.idle_clients, i * per_id));
    links.open(port_of(target_peer), creds[i], count);
  }
  const double open_secs = seconds_since(start);
  sleep_seconds(1.0);
  rep.add(sc, "idle TLS client links held",
          static_cast<double>(links.established() - links.closed()), "count",
          std::to_string(links.established()) + " established, " + std::to_string(links.closed()) +
              " closed by the peer since, " + std::to_string(links.failed()) + " failed, of " +
              std::to_string(s.idle_clients) + " to " + o.peers()[0].name + " in " +
              fixed(open_secs) + " s, " + std::to_string(ids) + " identities" +
              (links.last_error().empty() ? "" : "; last: " + links.last_error()));
  std::string attach_error;
  const auto took = time_attach_and_put(o, "newcomer", target_peer, attach_error);
  rep.add(sc, "seconds for a new client to attach and put", took.value_or(10.0), "s",
          took ? "" : "failed: " + attach_error);
  // A new peer with this peer as its only bootstrap.
  tst::process_overlay::peer_start how;
  how.durable = true;
  how.bootstrap = {target_peer};
  const auto peer_start = clock_type::now();
  const auto idx = o.start_peer("newpeer", how);
  const double bound = s.quick ? 15.0 : 30.0;
  std::optional<double> joined;
  while (seconds_since(peer_start) < bound) {
    if (o.status_field(idx, "joined") == "yes") {
      joined = seconds_since(peer_start);
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  rep.add(sc, "seconds for a new peer bootstrapping through it to join", joined.value_or(bound),
          "s", joined ? "" : "joined=no after " + fixed(bound, 0) + " s");
  const std::string held = " with " + std::to_string(s.idle_clients) + " idle clients held";
  rep.judge(sc, "new client attaches and puts in < 1 s" + held, took && *took < 1.0,
            took ? fixed(*took) + " s" : "failed: " + attach_error);
  rep.judge(sc, "new peer joins in < 5 s" + held, joined && *joined < 5.0,
            joined ? fixed(*joined) + " s" : "not joined after " + fixed(bound, 0) + " s");
}

// ---- main ----

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

int usage_error(const std::string& text) {
  std::cerr << "p2psip-chaos: " << text << " (see --help)\n";
  return exit_usage;
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options(
      "p2psip-chaos",
      "Real p2psip-peer processes under churn, kill -9, SIGTERM and abusive clients, measured "
      "against the reliability targets (exit 0 only when every expected target is met).");
  // clang-format off
  options.add_options()
      ("peers", "peers in the overlay (churn, restart, sigterm; the others use min(3, N))", cxxopts::value<std::size_t>()->default_value("10"))
      ("runs", "runs of churn, restart and sigterm, each on a fresh overlay", cxxopts::value<std::size_t>()->default_value("10"))
      ("scenarios", "comma-separated: churn,restart,sigterm,idle-tcp,greedy,idle-clients", cxxopts::value<std::string>()->default_value("churn,restart,sigterm,idle-tcp,greedy,idle-clients"))
      ("writers", "writer clients in churn (twice as many in sigterm)", cxxopts::value<std::size_t>()->default_value("4"))
      ("waves", "kill -9 waves of two peers per churn run", cxxopts::value<std::size_t>()->default_value("5"))
      ("duration", "seconds of each greedy victim phase; writes before the first wave/SIGTERM take half", cxxopts::value<double>()->default_value("10"))
      ("settle", "seconds to wait after the ring is consistent before reading back", cxxopts::value<double>()->default_value("5"))
      ("seed", "random seed (peer choice, down times, writer placement)", cxxopts::value<std::uint64_t>()->default_value("1"))
      ("idle-tcp", "plain TCP connections held in idle-tcp", cxxopts::value<std::size_t>()->default_value("2000"))
      ("greedy", "greedy clients in greedy", cxxopts::value<std::size_t>()->default_value("4"))
      ("greedy-in-flight", "puts each greedy client keeps in flight", cxxopts::value<std::size_t>()->default_value("64"))
      ("victim-rate", "victim's offered ops/s in greedy (at most 16 in flight)", cxxopts::value<double>()->default_value("100"))
      ("idle-clients", "idle TLS client links held in idle-clients", cxxopts::value<std::size_t>()->default_value("550"))
      ("idle-identities", "distinct enrolled identities the idle links share", cxxopts::value<std::size_t>()->default_value("50"))
      ("quick", "small sizes for ctest: 5 peers, 1 run, 1 wave, 300 idle TCP, 2 greedy for 3 s, 40 idle clients (explicit options still win)")
      ("expect-met", "scenarios whose targets must be met for exit 0 (default: every scenario run)", cxxopts::value<std::string>())
      ("json", "print one JSON object to standard output (the lines go to standard error)")
      ("version", "show the version")
      ("h,help", "show this help");
  // clang-format on
  settings s;
  try {
    auto r = options.parse(argc, argv);
    if (r.count("version")) {
      std::cout << p2psip::tool::version_text("p2psip-chaos");
      return 0;
    }
    if (r.count("help")) {
      std::cout << options.help()
                << "\nTargets: churn 0 unreadable; restart readable within 5 s;"
                   " sigterm 0 lost; idle-tcp attach+put < 1 s; greedy victim"
                   " >= 0.8 x; idle-clients client < 1 s, peer join < 5 s.\n";
      return exit_met;
    }
    if (!r.unmatched().empty()) return usage_error("unexpected argument " + r.unmatched().front());
    s.quick = r.count("quick") > 0;
    auto pick = [&](const char* name, auto quick_value) {
      using T = decltype(quick_value);
      return s.quick && r.count(name) == 0 ? quick_value : r[name].as<T>();
    };
    s.peers = pick("peers", std::size_t{5});
    s.runs = pick("runs", std::size_t{1});
    s.writers = pick("writers", std::size_t{3});
    s.waves = pick("waves", std::size_t{1});
    s.duration = pick("duration", 3.0);
    s.settle = pick("settle", 2.0);
    s.seed = r["seed"].as<std::uint64_t>();
    s.idle_tcp = pick("idle-tcp", std::size_t{300});
    s.greedy = pick("greedy", std::size_t{2});
    s.greedy_in_flight = r["greedy-in-flight"].as<std::size_t>();
    s.victim_rate = r["victim-rate"].as<double>();
    s.idle_clients = pick("idle-clients", std::size_t{40});
    s.idle_identities = pick("idle-identities", std::size_t{10});
    s.json = r.count("json") > 0;
    s.scenarios = split_list(r["scenarios"].as<std::string>());
    for (const auto& sc : s.scenarios) {
      if (std::find(all_scenarios.begin(), all_scenarios.end(), sc) == all_scenarios.end()) {
        return usage_error("unknown scenario '" + sc + "'");
      }
    }
    if (s.scenarios.empty()) return usage_error("--scenarios is empty");
    const auto expect =
        r.count("expect-met") ? split_list(r["expect-met"].as<std::string>()) : s.scenarios;
    for (const auto& sc : expect) {
      if (std::find(all_scenarios.begin(), all_scenarios.end(), sc) == all_scenarios.end()) {
        return usage_error("unknown scenario '" + sc + "' in --expect-met");
      }
      s.expect_met.insert(sc);
    }
  } catch (const std::exception& e) {
    return usage_error(e.what());
  }
  if (s.peers < 3 || s.peers > 64) return usage_error("--peers must be 3..64");
  if (s.runs < 1 || s.runs > 1000) return usage_error("--runs must be 1..1000");
  if (s.writers < 1 || s.writers > 64) return usage_error("--writers must be 1..64");
  if (s.waves < 1 || s.waves > 100) return usage_error("--waves must be 1..100");
  if (!(s.duration >= 1 && s.duration <= 3600)) return usage_error("--duration must be 1..3600");
  if (!(s.settle >= 0 && s.settle <= 600)) return usage_error("--settle must be 0..600");
  if (s.idle_tcp < 1 || s.idle_tcp > 60000) return usage_error("--idle-tcp must be 1..60000");
  if (s.greedy < 1 || s.greedy > 64) return usage_error("--greedy must be 1..64");
  if (s.greedy_in_flight < 1 || s.greedy_in_flight > 1024)
    return usage_error("--greedy-in-flight must be 1..1024");
  if (!(s.victim_rate >= 1 && s.victim_rate <= 10000))
    return usage_error("--victim-rate must be 1..10000");
  if (s.idle_clients < 1 || s.idle_clients > 20000)
    return usage_error("--idle-clients must be 1..20000");
  if (s.idle_identities < 1 || s.idle_identities > 1000)
    return usage_error("--idle-identities must be 1..1000");

  raise_fd_limit();
  std::signal(SIGPIPE, SIG_IGN);
  std::mt19937_64 rng(s.seed);
  report rep(s.json);
  const std::map<std::string, std::function<void(const settings&, report&, std::mt19937_64&)>> run{
      {"churn", churn},       {"restart", restart}, {"sigterm", sigterm},
      {"idle-tcp", idle_tcp}, {"greedy", greedy},   {"idle-clients", idle_clients}};
  const auto start = clock_type::now();
  for (const auto& sc : s.scenarios) {
    const auto t = clock_type::now();
    try {
      run.at(sc)(s, rep, rng);
    } catch (const std::exception& e) {
      rep.error(sc, e.what());
    }
    progress(sc + " took " + fixed(seconds_since(t), 1) + " s");
  }
  progress("all scenarios took " + fixed(seconds_since(start), 1) + " s");
  return rep.finish(s);
}
