// p2psip-opendht-load: the load of p2psip-bench, run against OpenDHT nodes
// (p2psip-opendht-node). One DhtRunner (an OpenDHT application is one node, and OpenDHT has no
// thin client but its HTTP proxy) joins through every node given by --bootstrap; --clients threads
// each keep one operation outstanding, as p2psip-bench's SDK clients do: first puts of --value-size
// bytes under distinct keys, then gets of the same keys, each waiting for OpenDHT's done callback.
//
//   p2psip-opendht-load --bootstrap 127.0.0.1:P... --nodes N --clients C --ops OPS --value-size V
//                       [--cpu-pids PID,PID,...]
//
// Prints one line per phase on standard output, read by p2psip-bench:
//   phase put ops=4000 seconds=1.2 ops_per_s=3300 p50_us=... p99_us=... max_us=... errors=0
//         retried=0 cpu_s=0.9 client_cpu_s=0.5
// cpu_s is the CPU time (user + system) the --cpu-pids processes (the nodes) used during the
// phase, client_cpu_s this process's. An operation whose done callback reports failure (or a get
// that brings back no value or a wrong one) is tried again, up to 3 attempts: each new attempt
// counts as retried, and an operation that fails all 3 as an error. OpenDHT's own datagram
// retransmissions (an unanswered request is sent again after a second) are inside the library and
// show only as latency.
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <opendht.h>
#include <cxxopts.hpp>

#include "opendht_common.hpp"
#include "proc_cpu.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// How long one attempt may take before it counts as failed (OpenDHT calls done in any case; this
/// only bounds a hang).
constexpr auto k_attempt_timeout = 30s;
constexpr int k_attempts = 3;

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

bool put_once(dht::DhtRunner& node, const dht::InfoHash& key, const dht::Blob& value) {
  auto done = std::make_shared<std::promise<bool>>();
  auto f = done->get_future();
  node.put(key, dht::Value(value), [done](bool ok) { done->set_value(ok); });
  return f.wait_for(k_attempt_timeout) == std::future_status::ready && f.get();
}

bool get_once(dht::DhtRunner& node, const dht::InfoHash& key, const dht::Blob& value) {
  struct state {
    std::promise<bool> done;
    std::atomic<bool> found{false};
    std::atomic<bool> wrong{false};
  };
  auto st = std::make_shared<state>();
  auto f = st->done.get_future();
  node.get(
      key,
      [st, &value](const std::vector<std::shared_ptr<dht::Value>>& values) {
        for (const auto& v : values) {
          if (v->data == value) {
            st->found = true;
          } else {
            st->wrong = true;
          }
        }
        return true;
      },
      [st](bool ok) { st->done.set_value(ok && st->found && !st->wrong); });
  return f.wait_for(k_attempt_timeout) == std::future_status::ready && f.get();
}

struct phase_result {
  std::size_t ops = 0;
  double seconds = 0;
  double p50_us = 0, p99_us = 0, max_us = 0;
  std::size_t errors = 0, retried = 0;
  double cpu_s = 0;
  double client_cpu_s = 0;
};

/// `clients` threads, each doing `per_client` operations op(key), each up to k_attempts times.
template <class Op>
phase_result run_phase(const char* prefix, std::size_t clients, std::size_t per_client,
                       const std::vector<pid_t>& pids, Op op) {
  std::vector<std::vector<double>> lat(clients);
  std::atomic<std::size_t> errors{0}, retried{0};
  const double cpu_before = p2psip::bench::cpu_seconds(pids);
  const double self_before = p2psip::bench::cpu_seconds(::getpid());
  const auto start = clock_type::now();
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      lat[t].reserve(per_client);
      for (std::size_t i = 0; i < per_client; ++i) {
        const auto key =
            dht::InfoHash::get(std::string(prefix) + std::to_string(t) + "-" + std::to_string(i));
        const auto s = clock_type::now();
        bool ok = false;
        for (int a = 0; a < k_attempts && !ok; ++a) {
          if (a > 0) ++retried;
          ok = op(key);
        }
        if (!ok) ++errors;
        lat[t].push_back(std::chrono::duration<double, std::micro>(clock_type::now() - s).count());
      }
    });
  }
  for (auto& th : threads) th.join();
  phase_result r;
  r.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  r.cpu_s = p2psip::bench::cpu_seconds(pids) - cpu_before;
  r.client_cpu_s = p2psip::bench::cpu_seconds(::getpid()) - self_before;
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  r.ops = all.size();
  r.p50_us = percentile(all, 0.50);
  r.p99_us = percentile(all, 0.99);
  r.max_us = all.empty() ? 0 : all.back();  // sorted by percentile()
  r.errors = errors;
  r.retried = retried;
  return r;
}

void print(const char* name, const phase_result& r) {
  std::printf(
      "phase %s ops=%zu seconds=%.3f ops_per_s=%.1f p50_us=%.0f p99_us=%.0f max_us=%.0f "
      "errors=%zu retried=%zu cpu_s=%.3f client_cpu_s=%.3f\n",
      name, r.ops, r.seconds, static_cast<double>(r.ops) / r.seconds, r.p50_us, r.p99_us, r.max_us,
      r.errors, r.retried, r.cpu_s, r.client_cpu_s);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("p2psip-opendht-load", "p2psip-bench's put/get load on OpenDHT");
  // clang-format off
  options.add_options()
      ("bootstrap", "127.0.0.1:PORT of a node (repeatable)", cxxopts::value<std::vector<std::string>>())
      ("nodes", "nodes to wait for in the routing table", cxxopts::value<std::size_t>()->default_value("1"))
      ("clients", "concurrent operations", cxxopts::value<std::size_t>()->default_value("8"))
      ("ops", "operations per phase (all clients)", cxxopts::value<std::size_t>()->default_value("4000"))
      ("value-size", "value bytes", cxxopts::value<std::size_t>()->default_value("100"))
      ("cpu-pids", "processes whose CPU time to report per phase", cxxopts::value<std::vector<int>>())
      ("h,help", "help");
  // clang-format on
  std::vector<std::string> bootstrap;
  std::size_t nodes = 0, clients = 0, ops = 0, value_size = 0;
  std::vector<pid_t> pids;
  try {
    auto r = options.parse(argc, argv);
    if (r.count("help")) {
      std::cout << options.help();
      return 0;
    }
    bootstrap = r["bootstrap"].as<std::vector<std::string>>();
    nodes = r["nodes"].as<std::size_t>();
    clients = r["clients"].as<std::size_t>();
    ops = r["ops"].as<std::size_t>();
    value_size = r["value-size"].as<std::size_t>();
    if (r.count("cpu-pids")) {
      for (const int p : r["cpu-pids"].as<std::vector<int>>()) pids.push_back(p);
    }
  } catch (const std::exception& e) {
    std::cerr << "p2psip-opendht-load: " << e.what() << "\n";
    return 2;
  }
  if (clients == 0 || ops < clients || value_size == 0) {
    std::cerr << "p2psip-opendht-load: --clients, --ops and --value-size must be positive\n";
    return 2;
  }
  const std::size_t per_client = ops / clients;
  try {
    dht::DhtRunner node;
    p2psip::bench::run_opendht(node, 0);
    for (const auto& b : bootstrap) p2psip::bench::bootstrap_opendht(node, b);
    // Bounded wait until every node is in the routing table, so that the first searches go
    // straight to the nodes that store.
    const auto deadline = clock_type::now() + 20s;
    while (node.getNodesStats(AF_INET).good_nodes < nodes) {
      if (clock_type::now() > deadline) {
        std::cerr << "p2psip-opendht-load: only " << node.getNodesStats(AF_INET).good_nodes
                  << " of " << nodes << " nodes known after 20 s\n";
        return 1;
      }
      std::this_thread::sleep_for(50ms);
    }
    const dht::Blob value(value_size, 0x61);
    auto put = [&](const dht::InfoHash& k) { return put_once(node, k, value); };
    auto get = [&](const dht::InfoHash& k) { return get_once(node, k, value); };
    // Warm-up, as p2psip-bench's: 5 puts per client.
    (void)run_phase("warm-", clients, 5, pids, put);
    print("put", run_phase("bench-", clients, per_client, pids, put));
    print("get", run_phase("bench-", clients, per_client, pids, get));
    node.join();
  } catch (const std::exception& e) {
    std::cerr << "p2psip-opendht-load: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
