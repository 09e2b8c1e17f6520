// p2psip-mem-bench: what an attached idle client costs, on both sides, with a breakdown that says
// where it goes. One p2psip-peer process on loopback; N SDK clients attach to it from this
// process and stay idle. Printed per client:
//   - peer: VmRSS and the anonymous (heap + stacks) part of /proc/PID/smaps_rollup;
//   - here: VmRSS, heap bytes in use (mallinfo2), heap bytes the allocator holds but could give
//     back (what malloc_trim(0) returns), threads and malloc arenas.
// p2psip-bench prints the same two headline figures (docs/benchmarks.md); this harness is for
// finding what dominates. --peer-binary runs the peer through a wrapper (e.g. a script that
// execs `heaptrack -o FILE p2psip-peer "$@"`) for a per-call-site heap profile.
//
//   p2psip-mem-bench [--clients 50] [--rounds 1] [--peer-binary PATH]

#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <cxxopts.hpp>

#include "bench_client.hpp"
#include "p2psip/client/client.hpp"
#include "p2psip/tool/version.hpp"
#include "process_overlay.hpp"

namespace {

namespace cl = p2psip::client;
using namespace std::chrono_literals;

/// A "Key:   N kB" field of a /proc file, in KiB (0 if absent).
long proc_field_kib(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  }
  return 0;
}

struct peer_mem {
  long rss = 0;        ///< VmRSS, KiB
  long anonymous = 0;  ///< smaps_rollup Anonymous: heap, stacks, anonymous mappings, KiB
};

peer_mem peer_memory(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid);
  return {proc_field_kib(base + "/status", "VmRSS"),
          proc_field_kib(base + "/smaps_rollup", "Anonymous")};
}

struct self_mem {
  long rss = 0;            ///< VmRSS, KiB
  long threads = 0;        ///< threads of this process
  std::size_t in_use = 0;  ///< heap bytes allocated (mallinfo2 uordblks + hblkhd)
  std::size_t free = 0;    ///< heap bytes free inside the allocator's arenas (fordblks)
  std::size_t arenas = 0;  ///< heap bytes of all arenas (arena: main arena + mmapped heaps)
};

self_mem self_memory() {
  const auto mi = mallinfo2();
  return {proc_field_kib("/proc/self/status", "VmRSS"),
          proc_field_kib("/proc/self/status", "Threads"), mi.uordblks + mi.hblkhd, mi.fordblks,
          mi.arena};
}

double per(double total, std::size_t n) {
  return total / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("p2psip-mem-bench", "memory of attached idle clients, both sides");
  // clang-format off
  options.add_options()
      ("clients", "idle clients to attach", cxxopts::value<std::size_t>()->default_value("50"))
      ("peer-binary", "p2psip-peer, or a wrapper that execs it",
       cxxopts::value<std::string>()->default_value(P2PSIP_PEER_BINARY))
      ("hold", "seconds to hold the clients attached after measuring (for a profiler)",
       cxxopts::value<int>()->default_value("0"))
      ("exit-attached", "end with std::_Exit while the clients are attached: a heap profiler's "
       "\"leaked\" bytes are then what they hold")
      ("version", "show the version")
      ("h,help", "help");
  // clang-format on
  std::size_t n = 0;
  std::string peer_binary;
  int hold = 0;
  bool exit_attached = false;
  try {
    auto r = options.parse(argc, argv);
    if (r.count("version")) {
      std::cout << p2psip::tool::version_text("p2psip-mem-bench");
      return 0;
    }
    if (r.count("help")) {
      std::cout << options.help();
      return 0;
    }
    n = r["clients"].as<std::size_t>();
    peer_binary = r["peer-binary"].as<std::string>();
    hold = r["hold"].as<int>();
    exit_attached = r.count("exit-attached") > 0;
  } catch (const std::exception& e) {
    std::cerr << "p2psip-mem-bench: " << e.what() << "\n";
    return 2;
  }
  if (n == 0) {
    std::cerr << "p2psip-mem-bench: --clients must be positive\n";
    return 2;
  }
  try {
    p2psip::test::process_overlay o(peer_binary, P2PSIP_ADMIN_BINARY);
    o.start_ring(1);
    const auto address = o.peers()[0].address;
    const pid_t peer = o.peers()[0].pid;
    // Credentials first, so that enrolment (child processes) is outside the measurement.
    std::vector<cl::client_options> opts;
    for (std::size_t c = 0; c < n; ++c) {
      opts.push_back(p2psip::bench::client_options_for(o, "idle" + std::to_string(c), address));
    }
    // One client attached and gone first: one-time costs (certificate caches, first arenas,
    // Botan's pools) are not charged to the idle clients.
    {
      auto first = cl::client::create(opts.front());
      if (!first) throw std::runtime_error(first.error().message);
      if (auto a = (*first)->wait_attached(10s); !a) throw std::runtime_error(a.error().message);
    }
    std::this_thread::sleep_for(500ms);
    const auto peer_before = peer_memory(peer);
    const auto self_before = self_memory();

    std::vector<std::unique_ptr<cl::client>> idle;
    for (auto& opt : opts) {
      auto c = cl::client::create(opt);
      if (!c) throw std::runtime_error(c.error().message);
      if (auto a = (*c)->wait_attached(10s); !a) throw std::runtime_error(a.error().message);
      idle.push_back(std::move(*c));
    }
    std::this_thread::sleep_for(500ms);
    const auto peer_after = peer_memory(peer);
    const auto self_after = self_memory();
    malloc_trim(0);
    const auto self_trimmed = self_memory();

    std::printf("p2psip-mem-bench: %zu idle clients attached to one peer\n", n);
    std::printf("  peer:   %.1f KiB RSS per client (%ld -> %ld KiB), %.1f KiB of it anonymous\n",
                per(static_cast<double>(peer_after.rss - peer_before.rss), n), peer_before.rss,
                peer_after.rss,
                per(static_cast<double>(peer_after.anonymous - peer_before.anonymous), n));
    std::printf("  client: %.1f KiB RSS per client (%ld -> %ld KiB); %.1f KiB after malloc_trim\n",
                per(static_cast<double>(self_after.rss - self_before.rss), n), self_before.rss,
                self_after.rss, per(static_cast<double>(self_trimmed.rss - self_before.rss), n));
    std::printf(
        "  client: heap in use %.1f KiB per client, free in arenas %.1f KiB per client, "
        "arena bytes %.1f KiB per client, threads %ld -> %ld\n",
        per(static_cast<double>(self_after.in_use) - static_cast<double>(self_before.in_use), n) /
            1024,
        per(static_cast<double>(self_after.free) - static_cast<double>(self_before.free), n) / 1024,
        per(static_cast<double>(self_after.arenas) - static_cast<double>(self_before.arenas), n) /
            1024,
        self_before.threads, self_after.threads);
    std::fflush(stdout);
    if (hold > 0) std::this_thread::sleep_for(std::chrono::seconds(hold));
    if (exit_attached) std::_Exit(0);
  } catch (const std::exception& e) {
    std::cerr << "p2psip-mem-bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
