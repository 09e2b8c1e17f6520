// p2psip-bench: the overlay end to end, measured with the client SDK against real p2psip-peer
// processes on loopback, next to three baselines measured in the same run:
//   - the crypto ceiling: every request is verified and every answer signed by the peer that
//     stores (and each hop verifies), so verify + sign on one core bounds a peer's rate;
//   - redis-benchmark SET/GET against a local redis-server with the same concurrency and value
//     size: a plain loopback key-value server;
//   - OpenDHT: for each overlay size N, N libopendht nodes, each its own process
//     (p2psip-opendht-node, rate limits off), loaded by p2psip-opendht-load with the same
//     concurrency, operation count and value size: the DHT a thin-client user compares us with.
// Per phase: ops/s, p50/p99/max latency, errors, retried attempts, and the CPU seconds per
// operation of the servers (peers or nodes, /proc/<pid>/stat) and of the clients' process.
// Also memory: a peer's resident size per stored value and per attached client, and the resident
// size of one attached idle client.
// And the crypto each operation needs: the signatures the peers made and checked in a phase (their
// p2psip_signatures_* counts, read from /status.json of --admin-listen) and the SDK's own per call,
// priced at this machine's verify and sign times. Beside every target it prints the ratio that
// crypto alone would allow, with nothing else running: the part of a gap no code outside the
// signatures can close.
//
//   p2psip-bench [--clients 8] [--ops 4000] [--value-size 100] [--overlays 1,5] [--no-redis]
//                [--no-opendht] [--json]
//
// --json: one JSON document on standard output, the human-readable lines on standard error.
//
// Run from the release preset (docs/benchmarks.md). Every figure is printed with its ratio to the
// baselines; absolute numbers vary with the machine and its load.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <cxxopts.hpp>
#include <nlohmann/json.hpp>

#include "bench_client.hpp"
#include "http_client.hpp"
#include "p2psip/client/client.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "p2psip/node/node_setup.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/tool/version.hpp"
#include "proc_cpu.hpp"
#include "process_overlay.hpp"

namespace {

namespace pr = p2psip::protocol;
namespace cl = p2psip::client;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

/// Where the human-readable lines go: standard output, or standard error with --json.
FILE* g_out = stdout;

struct rate {
  std::size_t ops = 0;
  double ops_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double max_us = 0;
  std::size_t errors = 0;
  std::size_t retries = 0;  ///< attempts the SDK sent again (an answer that never came)
  double server_cpu_s = 0;  ///< CPU seconds the peers (or OpenDHT nodes) used in the phase
  double client_cpu_s = 0;  ///< CPU seconds the clients' process used in the phase
  /// Signatures all peers checked and made in the phase (ours only; OpenDHT signs nothing).
  std::uint64_t peer_signatures_verified = 0;
  std::uint64_t peer_signatures_made = 0;

  double server_cpu_per_op() const { return ops ? server_cpu_s / static_cast<double>(ops) : 0; }
  double client_cpu_per_op() const { return ops ? client_cpu_s / static_cast<double>(ops) : 0; }
};

/// Attempts the benchmark's clients sent again, counted from their debug lines ("retrying a
/// request after: ..."): each is a lost request or answer, which costs a whole request timeout.
std::atomic<std::size_t> g_retries{0};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  return v[i];
}

/// What one core does with this overlay's credentials: the ceiling (verify a request, sign its
/// answer, per second), and each of the two alone, in microseconds.
struct crypto_speed {
  double ceiling_per_s = 0;
  double verify_us = 0;
  double sign_us = 0;
};

/// The signatures the SDK itself makes and checks per call (client-sdk: a put signs its value and
/// its StoreReq and checks the StoreAns; a get signs its FetchReq and checks the FetchAns and the
/// value it returns). The SDK is a shared library with its own copy of the crypto counters, out of
/// this process's reach, so its share is taken from what its code does.
struct signatures_per_op {
  double verified = 0;
  double made = 0;
};
constexpr signatures_per_op sdk_put_signatures{1, 2};
constexpr signatures_per_op sdk_get_signatures{2, 1};

/// Verify a client's StoreReq-sized request, then sign the answer: per second, one core.
crypto_speed crypto_ceiling(const p2psip::node::node_setup& client_setup,
                            const p2psip::node::node_setup& peer_setup, std::size_t value_size) {
  pr::message req;
  req.header.overlay = pr::overlay_hash(client_setup.config.instance_name);
  req.header.transaction_id = 42;
  req.header.destination_list.push_back(pr::to_destination(pr::hash_resource_name("x")));
  req.contents.code = pr::codes::store_req;
  req.contents.body.assign(value_size + 200, 0x5A);
  if (!p2psip::crypto::sign_message(req, client_setup.creds.signing)) {
    throw std::runtime_error("cannot sign");
  }
  pr::message ans;
  ans.header = req.header;
  ans.contents.code = pr::codes::store_ans;
  ans.contents.body.assign(60, 0x11);
  std::size_t n = 0;
  const auto start = clock_type::now();
  while (clock_type::now() - start < 2s) {
    auto who =
        p2psip::crypto::verify_message(req, *peer_setup.trust, std::chrono::system_clock::now());
    if (!who) throw std::runtime_error("verify failed: " + who.error().message());
    ans.security = {};
    if (!p2psip::crypto::sign_message(ans, peer_setup.creds.signing)) {
      throw std::runtime_error("cannot sign");
    }
    ++n;
  }
  crypto_speed out;
  out.ceiling_per_s =
      static_cast<double>(n) / std::chrono::duration<double>(clock_type::now() - start).count();
  // Each alone for a second, to price a phase's signatures.
  const auto time_us = [](auto&& one) {
    std::size_t k = 0;
    const auto from = clock_type::now();
    while (clock_type::now() - from < 1s) {
      one();
      ++k;
    }
    return std::chrono::duration<double, std::micro>(clock_type::now() - from).count() /
           static_cast<double>(k);
  };
  out.verify_us = time_us([&] {
    (void)p2psip::crypto::verify_message(req, *peer_setup.trust, std::chrono::system_clock::now());
  });
  out.sign_us = time_us([&] {
    ans.security = {};
    (void)p2psip::crypto::sign_message(ans, peer_setup.creds.signing);
  });
  return out;
}

/// The signatures the peers listening for admin HTTP on `ports` have made and checked, summed.
p2psip::crypto::signature_counts peer_signatures(const std::vector<int>& ports) {
  p2psip::crypto::signature_counts sum;
  for (const int port : ports) {
    const auto got = p2psip::test::http_request(port, "GET", "/status.json");
    if (got.status != 200) {
      throw std::runtime_error("no /status.json from the peer at admin port " +
                               std::to_string(port));
    }
    const auto j = nlohmann::json::parse(got.body).at("crypto");
    sum.made += j.at("signatures_made").get<std::uint64_t>();
    sum.verified += j.at("signatures_verified").get<std::uint64_t>();
  }
  return sum;
}

/// The peers' signatures per operation in phase `r`.
signatures_per_op peer_signatures_per_op(const rate& r) {
  if (r.ops == 0) return {};
  const auto ops = static_cast<double>(r.ops);
  return {static_cast<double>(r.peer_signatures_verified) / ops,
          static_cast<double>(r.peer_signatures_made) / ops};
}

/// CPU microseconds of one core that `s` take.
double crypto_us(signatures_per_op s, const crypto_speed& speed) {
  return s.verified * speed.verify_us + s.made * speed.sign_us;
}

/// CPU microseconds of one core that an operation's signatures take, the peers' and the SDK's.
double crypto_us_per_op(const rate& r, signatures_per_op sdk, const crypto_speed& speed) {
  return crypto_us(peer_signatures_per_op(r), speed) + crypto_us(sdk, speed);
}

/// The highest rate an operation's signatures allow on this machine with nothing else running:
/// the machine's cores for peers and clients together, and at most one core per peer (a peer's
/// crypto runs on its I/O thread).
double crypto_bound_per_s(const rate& r, signatures_per_op sdk, const crypto_speed& speed,
                          std::size_t n_peers) {
  if (r.ops == 0) return 0;
  const double cores = std::max(1U, std::thread::hardware_concurrency());
  double bound = cores * 1e6 / crypto_us_per_op(r, sdk, speed);
  if (const double peers_us = crypto_us(peer_signatures_per_op(r), speed); peers_us > 0) {
    bound = std::min(bound, static_cast<double>(n_peers) * 1e6 / peers_us);
  }
  return bound;
}

/// `clients` threads, each doing `per_client` operations `op(client, thread, i)`; the CPU time of
/// `servers` and of this process is read before and after.
template <class Op>
rate run_clients(std::vector<std::unique_ptr<cl::client>>& clients, std::size_t per_client, Op op,
                 const std::vector<pid_t>& servers = {},
                 const std::vector<int>& server_admin_ports = {}) {
  std::vector<std::vector<double>> lat(clients.size());
  std::atomic<std::size_t> errors{0};
  const auto retries_before = g_retries.load();
  const double servers_before = p2psip::bench::cpu_seconds(servers);
  const double self_before = p2psip::bench::cpu_seconds(::getpid());
  const auto signatures_before = peer_signatures(server_admin_ports);
  const auto start = clock_type::now();
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < clients.size(); ++t) {
    threads.emplace_back([&, t] {
      lat[t].reserve(per_client);
      for (std::size_t i = 0; i < per_client; ++i) {
        const auto s = clock_type::now();
        if (!op(*clients[t], t, i)) ++errors;
        lat[t].push_back(std::chrono::duration<double, std::micro>(clock_type::now() - s).count());
      }
    });
  }
  for (auto& th : threads) th.join();
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  rate r;
  r.server_cpu_s = p2psip::bench::cpu_seconds(servers) - servers_before;
  r.client_cpu_s = p2psip::bench::cpu_seconds(::getpid()) - self_before;
  const auto signatures_after = peer_signatures(server_admin_ports);
  r.peer_signatures_verified = signatures_after.verified - signatures_before.verified;
  r.peer_signatures_made = signatures_after.made - signatures_before.made;
  r.ops = all.size();
  r.ops_per_s = static_cast<double>(all.size()) / secs;
  r.p50_us = percentile(all, 0.50);
  r.p99_us = percentile(all, 0.99);
  r.max_us = all.empty() ? 0 : *std::max_element(all.begin(), all.end());
  r.errors = errors;
  r.retries = g_retries.load() - retries_before;
  return r;
}

std::string name_of(std::size_t t, std::size_t i) {
  return "bench-" + std::to_string(t) + "-" + std::to_string(i);
}

std::unique_ptr<cl::client> attach(p2psip::test::process_overlay& o, const std::string& user,
                                   const std::string& peer) {
  return p2psip::bench::attached_client(
      p2psip::bench::client_options_for(o, user, peer, [](std::string_view line) {
        if (line.rfind("retrying", 0) == 0) ++g_retries;
      }));
}

/// redis-benchmark SET and GET requests/s against a redis-server started here; nullopt (with a
/// message) when redis is not installed.
std::optional<std::pair<double, double>> redis_rates(std::size_t clients, std::size_t ops,
                                                     std::size_t value_size) {
  if (std::system("command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null") !=
      0) {
    std::cerr << "redis-server / redis-benchmark not found (apt-get install redis-server "
                 "redis-tools), or pass --no-redis\n";
    return std::nullopt;
  }
  const int port = p2psip::test::free_tcp_udp_port();
  const pid_t pid = fork();
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    execlp("redis-server", "redis-server", "--port", std::to_string(port).c_str(), "--bind",
           "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel",
           "warning", static_cast<char*>(nullptr));
    _exit(127);
  }
  std::this_thread::sleep_for(500ms);
  const std::string cmd = "redis-benchmark -h 127.0.0.1 -p " + std::to_string(port) + " -c " +
                          std::to_string(clients) + " -n " + std::to_string(ops) + " -d " +
                          std::to_string(value_size) + " -t set,get --csv 2>/dev/null";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  // "SET","12345.67",... and "GET","23456.78",...
  auto rps = [&](const std::string& what) {
    const auto at = out.find("\"" + what + "\",\"");
    if (at == std::string::npos) return 0.0;
    return std::stod(out.substr(at + what.size() + 4));
  };
  return std::make_pair(rps("SET"), rps("GET"));
}

/// Processes this bench started; SIGTERM on destruction, SIGKILL for those still there 5 s later.
struct child_processes {
  std::vector<pid_t> pids;
  child_processes() = default;
  child_processes(const child_processes&) = delete;
  child_processes& operator=(const child_processes&) = delete;
  ~child_processes() {
    for (const auto p : pids) ::kill(p, SIGTERM);
    const auto deadline = clock_type::now() + 5s;
    for (const auto p : pids) {
      int status = 0;
      while (::waitpid(p, &status, WNOHANG) == 0) {
        if (clock_type::now() > deadline) {
          ::kill(p, SIGKILL);
          ::waitpid(p, &status, 0);
          break;
        }
        std::this_thread::sleep_for(10ms);
      }
    }
  }
};

/// OpenDHT's put and get phases: `n_nodes` p2psip-opendht-node processes on 127.0.0.1 (each
/// bootstrapped to those started before it), loaded by p2psip-opendht-load with `clients`
/// concurrent operations. Throws with the helper's log when something does not start or finish.
std::pair<rate, rate> opendht_rates(std::size_t n_nodes, std::size_t clients, std::size_t ops,
                                    std::size_t value_size) {
  std::string tmpl = (fs::temp_directory_path() / "p2psip-bench-opendht-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  const fs::path dir = tmpl;
  namespace t = p2psip::test;
  std::pair<rate, rate> result;
  {
    child_processes nodes;
    std::vector<std::string> bootstrap;  // "--bootstrap", ADDRESS, for each node started
    std::string pid_list;
    for (std::size_t i = 0; i < n_nodes; ++i) {
      const auto port = std::to_string(t::free_tcp_udp_port());
      std::vector<std::string> args{P2PSIP_OPENDHT_NODE_BINARY, "--port", port};
      args.insert(args.end(), bootstrap.begin(), bootstrap.end());
      const auto out = dir / ("node" + std::to_string(i) + ".out");
      const auto log = dir / ("node" + std::to_string(i) + ".log");
      const pid_t pid = t::spawn_process(args, out, log, false);
      nodes.pids.push_back(pid);
      pid_list += (i ? "," : "") + std::to_string(pid);
      const auto deadline = clock_type::now() + 10s;
      while (t::read_file(out).rfind("ready", 0) != 0) {
        if (clock_type::now() > deadline) {
          throw std::runtime_error("OpenDHT node " + std::to_string(i) +
                                   " did not start: " + t::read_file(log));
        }
        std::this_thread::sleep_for(20ms);
      }
      bootstrap.insert(bootstrap.end(), {"--bootstrap", "127.0.0.1:" + port});
    }
    const auto out = dir / "load.out";
    const auto log = dir / "load.log";
    child_processes load;
    std::vector<std::string> args{P2PSIP_OPENDHT_LOAD_BINARY,
                                  "--nodes",
                                  std::to_string(n_nodes),
                                  "--clients",
                                  std::to_string(clients),
                                  "--ops",
                                  std::to_string(ops),
                                  "--value-size",
                                  std::to_string(value_size),
                                  "--cpu-pids",
                                  pid_list};
    args.insert(args.end(), bootstrap.begin(), bootstrap.end());
    load.pids.push_back(t::spawn_process(args, out, log, false));
    int status = 0;
    const auto deadline = clock_type::now() + 600s;
    while (::waitpid(load.pids[0], &status, WNOHANG) == 0) {
      if (clock_type::now() > deadline) throw std::runtime_error("p2psip-opendht-load hung");
      std::this_thread::sleep_for(50ms);
    }
    load.pids.clear();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw std::runtime_error("p2psip-opendht-load failed: " + t::read_file(log));
    }
    // "phase put ops=4000 ... ops_per_s=... cpu_s=... client_cpu_s=..."
    auto phase = [&](const std::string& name) {
      const auto text = t::read_file(out);
      const auto at = text.find("phase " + name + " ");
      if (at == std::string::npos) throw std::runtime_error("no " + name + " phase: " + text);
      std::istringstream line(text.substr(at, text.find('\n', at) - at));
      std::map<std::string, double> f;
      std::string field;
      while (line >> field) {
        if (const auto eq = field.find('='); eq != std::string::npos) {
          f[field.substr(0, eq)] = std::stod(field.substr(eq + 1));
        }
      }
      rate r;
      r.ops = static_cast<std::size_t>(f["ops"]);
      r.ops_per_s = f["ops_per_s"];
      r.p50_us = f["p50_us"];
      r.p99_us = f["p99_us"];
      r.max_us = f["max_us"];
      r.errors = static_cast<std::size_t>(f["errors"]);
      r.retries = static_cast<std::size_t>(f["retried"]);
      r.server_cpu_s = f["cpu_s"];
      r.client_cpu_s = f["client_cpu_s"];
      return r;
    };
    result = {phase("put"), phase("get")};
  }
  if (!std::getenv("P2PSIP_KEEP_TEST_DIR")) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  return result;
}

/// One phase as a JSON object.
std::string json_of(const rate& r) {
  std::ostringstream js;
  js << "{\"ops\": " << r.ops << ", \"ops_per_s\": " << r.ops_per_s << ", \"p50_us\": " << r.p50_us
     << ", \"p99_us\": " << r.p99_us << ", \"max_us\": " << r.max_us << ", \"errors\": " << r.errors
     << ", \"retried\": " << r.retries << ", \"server_cpu_s_per_op\": " << r.server_cpu_per_op()
     << ", \"client_cpu_s_per_op\": " << r.client_cpu_per_op() << "}";
  return js.str();
}

/// One phase as a line: rate, latencies, errors, retried attempts and CPU per operation.
void print_phase(const char* label, const rate& r, const char* servers) {
  std::fprintf(g_out,
               "  %-12s %8.0f ops/s  p50 %7.0f us  p99 %7.0f us  max %8.0f us  errors %zu  "
               "retried %zu  CPU/op: %s %4.0f us, clients %4.0f us",
               label, r.ops_per_s, r.p50_us, r.p99_us, r.max_us, r.errors, r.retries, servers,
               1e6 * r.server_cpu_per_op(), 1e6 * r.client_cpu_per_op());
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("p2psip-bench", "Store/Fetch through real peers vs baselines");
  // clang-format off
  options.add_options()
      ("clients", "concurrent SDK clients", cxxopts::value<std::size_t>()->default_value("8"))
      ("ops", "operations per phase (all clients)", cxxopts::value<std::size_t>()->default_value("4000"))
      ("value-size", "value bytes", cxxopts::value<std::size_t>()->default_value("100"))
      ("overlays", "overlay sizes", cxxopts::value<std::vector<std::size_t>>()->default_value("1,5"))
      ("no-redis", "skip the redis baseline")
      ("no-opendht", "skip the OpenDHT baseline")
      ("json", "one JSON document on stdout (the lines go to stderr)")
      ("version", "show the version")
      ("h,help", "help");
  // clang-format on
  std::size_t n_clients = 0, ops = 0, value_size = 0;
  std::vector<std::size_t> overlays;
  bool with_redis = true, with_opendht = true, json = false;
  try {
    auto r = options.parse(argc, argv);
    if (r.count("version")) {
      std::cout << p2psip::tool::version_text("p2psip-bench");
      return 0;
    }
    if (r.count("help")) {
      std::cout << options.help();
      return 0;
    }
    n_clients = r["clients"].as<std::size_t>();
    ops = r["ops"].as<std::size_t>();
    value_size = r["value-size"].as<std::size_t>();
    overlays = r["overlays"].as<std::vector<std::size_t>>();
    with_redis = r.count("no-redis") == 0;
    with_opendht = r.count("no-opendht") == 0;
    json = r.count("json") > 0;
  } catch (const std::exception& e) {
    std::cerr << "p2psip-bench: " << e.what() << "\n";
    return 2;
  }
  if (n_clients == 0 || ops < n_clients || value_size == 0) {
    std::cerr << "p2psip-bench: --clients, --ops and --value-size must be positive\n";
    return 2;
  }
  const std::size_t per_client = ops / n_clients;
  if (json) g_out = stderr;
  std::ostringstream js;
  try {
    std::fprintf(g_out, "p2psip-bench: %zu clients, %zu ops per phase, %zu-byte values\n",
                 n_clients, per_client * n_clients, value_size);

    // Baseline 1: the crypto ceiling, with this overlay's real credentials.
    crypto_speed speed;
    {
      p2psip::test::process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
      o.enroll("client");
      o.enroll("peer");
      auto cs =
          p2psip::node::load_node_setup(o.config_file(), o.cert_of("client"), o.key_of("client"));
      auto ps = p2psip::node::load_node_setup(o.config_file(), o.cert_of("peer"), o.key_of("peer"));
      if (!cs || !ps) throw std::runtime_error("cannot load the bench credentials");
      speed = crypto_ceiling(*cs, *ps, value_size);
    }
    const double ceiling = speed.ceiling_per_s;
    std::fprintf(g_out,
                 "\ncrypto ceiling (verify request + sign answer, one core): %.0f /s  (verify "
                 "%.1f us, sign %.1f us)\n",
                 ceiling, speed.verify_us, speed.sign_us);
    js << "{\"clients\": " << n_clients << ", \"ops\": " << per_client * n_clients
       << ", \"value_size\": " << value_size << ", \"crypto_ceiling_per_s\": " << ceiling
       << ", \"verify_us\": " << speed.verify_us << ", \"sign_us\": " << speed.sign_us;

    // Baseline 2: redis.
    std::optional<std::pair<double, double>> redis;
    if (with_redis) {
      redis = redis_rates(n_clients, per_client * n_clients, value_size);
      if (!redis) return 1;
      std::fprintf(g_out, "redis-benchmark (-c %zu -d %zu): SET %.0f /s, GET %.0f /s\n", n_clients,
                   value_size, redis->first, redis->second);
      js << ", \"redis_set_per_s\": " << redis->first << ", \"redis_get_per_s\": " << redis->second;
    }
    js << ", \"results\": [";

    const cl::bytes value(value_size, 0x61);
    bool first_json = true;
    // What the targets of docs/benchmarks.md compare, by overlay size.
    struct measured {
      double put = 0, get = 0;
      double put_crypto_bound = 0, get_crypto_bound = 0;  ///< per second, crypto alone
      std::optional<double> opendht_put, opendht_get;     ///< OpenDHT's rates
    };
    std::map<std::size_t, measured> by_size;
    std::optional<double> peer_kib_per_client, client_kib_per_client;
    for (const auto n_peers : overlays) {
      rate put, get;
      {  // Our peers and clients, stopped before OpenDHT runs on the same cores.
        p2psip::test::process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
        // Each peer serves /status.json, for the signatures it makes and checks in a phase.
        std::vector<int> admin_ports;
        for (std::size_t i = 0; i < n_peers; ++i) {
          admin_ports.push_back(p2psip::test::free_tcp_udp_port());
          o.start_peer("p" + std::to_string(i), false,
                       {"--admin-listen", "127.0.0.1:" + std::to_string(admin_ports.back())});
        }
        if (!o.wait_ring(60s)) throw std::runtime_error("the ring did not form in time");
        std::vector<pid_t> peer_pids;
        for (const auto& p : o.peers()) peer_pids.push_back(p.pid);
        std::vector<std::unique_ptr<cl::client>> clients;
        for (std::size_t c = 0; c < n_clients; ++c) {
          clients.push_back(attach(o, "c" + std::to_string(c), o.peers()[c % n_peers].address));
        }
        // Warm-up: certificates cached, links settled.
        (void)run_clients(clients, 5, [&](cl::client& c, std::size_t t, std::size_t i) {
          return c.put("warm-" + name_of(t, i), value).has_value();
        });
        put = run_clients(
            clients, per_client,
            [&](cl::client& c, std::size_t t, std::size_t i) {
              return c.put(name_of(t, i), value).has_value();
            },
            peer_pids, admin_ports);
        get = run_clients(
            clients, per_client,
            [&](cl::client& c, std::size_t t, std::size_t i) {
              auto r = c.get(name_of(t, i));
              return r.has_value() && r->size() == 1 && r->front().value == value;
            },
            peer_pids, admin_ports);
        auto& m = by_size[n_peers];
        m.put = put.ops_per_s;
        m.get = get.ops_per_s;
        m.put_crypto_bound = crypto_bound_per_s(put, sdk_put_signatures, speed, n_peers);
        m.get_crypto_bound = crypto_bound_per_s(get, sdk_get_signatures, speed, n_peers);
        std::fprintf(g_out, "\n%zu peer%s, %zu clients:\n", n_peers, n_peers == 1 ? "" : "s",
                     n_clients);
        js << (first_json ? "" : ", ") << "{\"peers\": " << n_peers << ", \"put\": " << json_of(put)
           << ", \"get\": " << json_of(get)
           << ", \"put_vs_crypto_ceiling\": " << put.ops_per_s / ceiling
           << ", \"get_vs_crypto_ceiling\": " << get.ops_per_s / ceiling
           << ", \"put_crypto_bound_per_s\": " << m.put_crypto_bound
           << ", \"get_crypto_bound_per_s\": " << m.get_crypto_bound;
        first_json = false;
        struct phase_row {
          const char* label;
          const rate& r;
          signatures_per_op sdk;
          double bound;
        };
        for (const auto& row :
             {phase_row{"put (Store)", put, sdk_put_signatures, m.put_crypto_bound},
              phase_row{"get (Fetch)", get, sdk_get_signatures, m.get_crypto_bound}}) {
          const auto& r = row.r;
          print_phase(row.label, r, "peers");
          std::fprintf(g_out, "  = %.2f x crypto ceiling", r.ops_per_s / ceiling);
          if (redis) {
            const double base =
                std::string(row.label).rfind("put", 0) == 0 ? redis->first : redis->second;
            std::fprintf(g_out, ", %.3f x redis", r.ops_per_s / base);
          }
          const auto peers = peer_signatures_per_op(r);
          std::fprintf(g_out,
                       "\n    signatures per op: peers %.2f checked + %.2f made, SDK %.0f + %.0f: "
                       "%.0f us of one core; crypto alone allows %.0f ops/s (%.2f x this)\n",
                       peers.verified, peers.made, row.sdk.verified, row.sdk.made,
                       crypto_us_per_op(r, row.sdk, speed), row.bound,
                       r.ops_per_s > 0 ? row.bound / r.ops_per_s : 0);
        }
        if (redis) {
          js << ", \"put_vs_redis\": " << put.ops_per_s / redis->first
             << ", \"get_vs_redis\": " << get.ops_per_s / redis->second;
        }

        if (n_peers == 1) {
          // Memory of the peer per stored value and per attached client.
          const pid_t peer = o.peers()[0].pid;
          const long before_values = p2psip::bench::rss_kib(peer);
          const std::size_t extra = 5000;
          (void)run_clients(clients, extra / n_clients,
                            [&](cl::client& c, std::size_t t, std::size_t i) {
                              return c.put("mem-" + name_of(t, i), value).has_value();
                            });
          const long after_values = p2psip::bench::rss_kib(peer);
          const double per_value = 1024.0 * static_cast<double>(after_values - before_values) /
                                   static_cast<double>(extra / n_clients * n_clients);
          std::fprintf(g_out,
                       "  peer memory: %.0f bytes per stored %zu-byte value (RSS %ld -> %ld KiB "
                       "over %zu values)\n",
                       per_value, value_size, before_values, after_values,
                       extra / n_clients * n_clients);
          const long before_clients = p2psip::bench::rss_kib(peer);
          const long self_before = p2psip::bench::rss_kib(getpid());
          std::vector<std::unique_ptr<cl::client>> idle;
          const std::size_t idle_n = 50;
          for (std::size_t c = 0; c < idle_n; ++c) {
            idle.push_back(attach(o, "idle" + std::to_string(c), o.peers()[0].address));
          }
          std::this_thread::sleep_for(500ms);
          const long after_clients = p2psip::bench::rss_kib(peer);
          const long self_after = p2psip::bench::rss_kib(getpid());
          const double peer_per_client =
              static_cast<double>(after_clients - before_clients) / static_cast<double>(idle_n);
          const double client_per_client =
              static_cast<double>(self_after - self_before) / static_cast<double>(idle_n);
          std::fprintf(g_out, "  peer memory: %.1f KiB per attached client (%zu clients)\n",
                       peer_per_client, idle_n);
          std::fprintf(g_out,
                       "  client memory: %.1f KiB resident per attached idle client (in-process, "
                       "%zu clients)\n",
                       client_per_client, idle_n);
          peer_kib_per_client = peer_per_client;
          client_kib_per_client = client_per_client;
          js << ", \"peer_bytes_per_value\": " << per_value
             << ", \"peer_kib_per_client\": " << peer_per_client
             << ", \"client_kib_per_idle_client\": " << client_per_client;
        }
      }

      if (with_opendht) {
        // Baseline 3: OpenDHT with as many nodes, concurrent clients and value bytes.
        const auto [oput, oget] =
            opendht_rates(n_peers, n_clients, per_client * n_clients, value_size);
        std::fprintf(g_out,
                     "OpenDHT, %zu node%s (separate processes, rate limits off), %zu "
                     "concurrent operations:\n",
                     n_peers, n_peers == 1 ? "" : "s", n_clients);
        print_phase("put", oput, "nodes");
        std::fprintf(g_out, "\n");
        print_phase("get", oget, "nodes");
        std::fprintf(g_out, "\n");
        const double put_ratio = oput.ops_per_s > 0 ? put.ops_per_s / oput.ops_per_s : 0;
        const double get_ratio = oget.ops_per_s > 0 ? get.ops_per_s / oget.ops_per_s : 0;
        std::fprintf(
            g_out,
            "  p2psip / OpenDHT, %zu peer%s: put %.2f x, get %.2f x  (peers' CPU per "
            "op %.2f x and %.2f x OpenDHT's nodes')\n",
            n_peers, n_peers == 1 ? "" : "s", put_ratio, get_ratio,
            oput.server_cpu_per_op() > 0 ? put.server_cpu_per_op() / oput.server_cpu_per_op() : 0,
            oget.server_cpu_per_op() > 0 ? get.server_cpu_per_op() / oget.server_cpu_per_op() : 0);
        if (oput.ops_per_s > 0) by_size[n_peers].opendht_put = oput.ops_per_s;
        if (oget.ops_per_s > 0) by_size[n_peers].opendht_get = oget.ops_per_s;
        js << ", \"opendht\": {\"nodes\": " << n_peers << ", \"put\": " << json_of(oput)
           << ", \"get\": " << json_of(oget) << "}, \"put_vs_opendht\": " << put_ratio
           << ", \"get_vs_opendht\": " << get_ratio;
      }
      js << "}";
    }
    js << "]";

    // The targets, each where this run measured what it compares (--overlays 1,3,5 for all).
    std::fprintf(g_out, "\ntargets (docs/benchmarks.md), ratios from this run:\n");
    js << ", \"targets\": [";
    bool first_target = true;
    std::fprintf(g_out,
                 "  (crypto alone: the ratio the signatures each side needs would allow on this "
                 "machine if nothing else ran)\n");
    // `crypto_allows`: that ratio, for the targets that compare rates.
    const auto target = [&](const std::string& what, double got, double bound, bool at_least,
                            std::optional<double> crypto_allows = std::nullopt) {
      const bool met = at_least ? got >= bound : got <= bound;
      std::fprintf(g_out, "  %-44s %8.2f  (target %s %.2f)  %-7s", what.c_str(), got,
                   at_least ? ">=" : "<=", bound, met ? "met" : "NOT MET");
      if (crypto_allows) std::fprintf(g_out, "  crypto alone: %.2f", *crypto_allows);
      std::fprintf(g_out, "\n");
      js << (first_target ? "" : ", ") << "{\"what\": \"" << what << "\", \"value\": " << got
         << ", \"bound\": " << bound << ", \"at_least\": " << (at_least ? "true" : "false")
         << ", \"met\": " << (met ? "true" : "false");
      if (crypto_allows) js << ", \"crypto_allows\": " << *crypto_allows;
      js << "}";
      first_target = false;
    };
    if (const auto it = by_size.find(3); it != by_size.end()) {
      const auto& three = it->second;
      if (three.opendht_get) {
        target("get, 3 peers / OpenDHT's get, 3 nodes", three.get / *three.opendht_get, 1.0, true,
               three.get_crypto_bound / *three.opendht_get);
      }
      if (three.opendht_put) {
        target("put, 3 peers / OpenDHT's put, 3 nodes", three.put / *three.opendht_put, 0.7, true,
               three.put_crypto_bound / *three.opendht_put);
      }
    }
    if (const auto one = by_size.find(1); one != by_size.end() && one->second.put > 0) {
      target("put, 1 peer / crypto ceiling", one->second.put / ceiling, 0.7, true,
             one->second.put_crypto_bound / ceiling);
      if (const auto five = by_size.find(5); five != by_size.end()) {
        // Both at what their crypto allows.
        target("put, 5 peers / put, 1 peer", five->second.put / one->second.put, 0.5, true,
               one->second.put_crypto_bound > 0
                   ? five->second.put_crypto_bound / one->second.put_crypto_bound
                   : 0);
      }
    }
    if (peer_kib_per_client) {
      target("peer KiB per attached idle client", *peer_kib_per_client, 32, false);
    }
    if (client_kib_per_client) {
      target("SDK KiB per idle client (in-process)", *client_kib_per_client, 64, false);
    }
    js << "]}";
  } catch (const std::exception& e) {
    std::cerr << "p2psip-bench: " << e.what() << "\n";
    return 1;
  }
  if (json) std::cout << js.str() << "\n";
  return 0;
}
