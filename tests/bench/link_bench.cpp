// One link on loopback, one thread: round trips of a small message (send, the peer echoes it,
// receive) over TLS 1.2 and over plain TCP with the same framing and the same link code
// (link_config::insecure_plaintext), in the same run; then pipelined one-way throughput. Prints
// the TLS/TCP ratios at the end. Both ends run on the benchmark's thread, so a round trip costs
// both ends' work plus two loopback hops.

#include <benchmark/benchmark.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "p2psip/transport/link.hpp"
#include "p2psip/transport/listener.hpp"
#include "test_pki_tls.hpp"

namespace pr = p2psip::protocol;
namespace tr = p2psip::transport;
namespace tp = p2psip::test_pki;

namespace {

/// A connected pair of links on 127.0.0.1; the server side echoes every message.
class link_pair {
 public:
  explicit link_pair(bool tls) {
    static const tp::test_ca ca;
    static auto server_creds = tp::link_credentials(ca, {tp::random_node_id()});
    static auto client_creds = tp::link_credentials(ca, {tp::random_node_id()});
    tr::link_config cfg;
    cfg.insecure_plaintext = !tls;
    cfg.max_queued_messages = 4096;
    cfg.max_queued_bytes = 16 * 1024 * 1024;
    cfg.max_received_messages = 4096;
    cfg.rate.messages_per_second = 0;  // no limit: we are the flood
    tr::listener_config lcfg;
    lcfg.link = cfg;
    auto lst = tr::listener::open(io_.get_executor(), {asio::ip::make_address("127.0.0.1"), 0},
                                  tls ? server_creds : nullptr, lcfg,
                                  [this](std::shared_ptr<tr::link> l) { server_ = std::move(l); });
    if (!lst) throw std::runtime_error("listener: " + lst.error().message());
    listener_ = *lst;
    bool connected = false;
    // No ternary inside the co_await expression below (GCC 12 coroutine bug).
    std::shared_ptr<const tr::tls_credentials> creds = tls ? client_creds : nullptr;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          auto c = co_await tr::connect(listener_->local_endpoint(), creds, cfg);
          if (c) client_ = *c;
          connected = true;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    while (!connected || (client_ && !server_)) io_.run_one();
    if (!client_) throw std::runtime_error("connect failed");
    asio::co_spawn(
        io_,
        [s = server_]() -> asio::awaitable<void> {
          for (;;) {
            auto m = co_await s->receive();
            if (!m) co_return;
            if (m->oversized() || !s->try_send(std::move(m->data))) co_return;
          }
        },
        [](std::exception_ptr) {});
  }
  link_pair(const link_pair&) = delete;
  link_pair& operator=(const link_pair&) = delete;
  ~link_pair() {
    client_->close();
    listener_->close();
    io_.restart();
    for (int i = 0; i < 2000 && !io_.stopped(); ++i) io_.run_one_for(std::chrono::milliseconds(5));
  }

  /// Sends `m` and waits for its echo.
  void round_trip(const pr::bytes& m) {
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          if (!client_->try_send(m)) throw std::runtime_error("send failed");
          auto r = co_await client_->receive();
          if (!r) throw std::runtime_error("receive failed");
          done = true;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    while (!done) io_.run_one();
  }

  /// Sends `count` messages back to back and waits for all echoes.
  void burst(const pr::bytes& m, int count) {
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          int received = 0;
          for (int i = 0; i < count; ++i) {
            auto s = co_await client_->send(m);
            if (!s) throw std::runtime_error("send failed");
            while (auto r = client_->try_receive()) ++received;
          }
          while (received < count) {
            auto r = co_await client_->receive();
            if (!r) throw std::runtime_error("receive failed");
            ++received;
          }
          done = true;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    while (!done) io_.run_one();
  }

  const tr::link& client() const { return *client_; }
  const tr::link& server() const { return *server_; }

 private:
  asio::io_context io_;
  std::shared_ptr<tr::listener> listener_;
  std::shared_ptr<tr::link> client_;
  std::shared_ptr<tr::link> server_;
};

void round_trips(benchmark::State& state, bool tls) {
  link_pair pair(tls);
  const pr::bytes message(static_cast<std::size_t>(state.range(0)), 0x5A);
  const auto writes_before =
      pair.client().stats().socket_writes + pair.server().stats().socket_writes;
  for (auto _ : state) pair.round_trip(message);
  state.SetItemsProcessed(state.iterations());
  // Socket writes of both ends per round trip: 2 when the echo's ack rides with the echo (data,
  // ack+echo... the client's ack of the echo goes with its next message or alone).
  state.counters["writes_per_rt"] =
      benchmark::Counter(static_cast<double>(pair.client().stats().socket_writes +
                                             pair.server().stats().socket_writes - writes_before) /
                         static_cast<double>(state.iterations()));
  state.SetLabel(pair.client().cipher_suite());
}

void throughput(benchmark::State& state, bool tls) {
  link_pair pair(tls);
  const pr::bytes message(static_cast<std::size_t>(state.range(0)), 0x5A);
  constexpr int per_iteration = 256;
  for (auto _ : state) pair.burst(message, per_iteration);
  state.SetItemsProcessed(state.iterations() * per_iteration);
  state.SetBytesProcessed(state.iterations() * per_iteration * state.range(0) * 2);
}

BENCHMARK_CAPTURE(round_trips, tls, true)->Arg(100)->UseRealTime();
BENCHMARK_CAPTURE(round_trips, tcp, false)->Arg(100)->UseRealTime();
BENCHMARK_CAPTURE(throughput, tls, true)->Arg(100)->Arg(1000)->UseRealTime();
BENCHMARK_CAPTURE(throughput, tcp, false)->Arg(100)->Arg(1000)->UseRealTime();

/// The console output plus the items/s of every run, to print TLS/TCP ratios at the end.
class ratio_reporter final : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      if (r.error_occurred) continue;
      // Single runs, or the median of repetitions (--benchmark_repetitions=N).
      std::string name = r.benchmark_name();
      if (r.run_type == Run::RT_Aggregate) {
        if (r.aggregate_name != "median") continue;
        name = r.run_name.str();
      }
      auto it = r.counters.find("items_per_second");
      if (it != r.counters.end()) rates[name] = it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> rates;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ratio_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::printf("\nTLS / plain TCP (same link code and framing), items per second:\n");
  for (const auto& [name, rate] : reporter.rates) {
    const auto pos = name.find("/tls/");
    if (pos == std::string::npos) continue;
    std::string tcp_name = name;
    tcp_name.replace(pos, 5, "/tcp/");
    const auto tcp = reporter.rates.find(tcp_name);
    if (tcp == reporter.rates.end() || tcp->second <= 0) continue;
    std::printf("  %-36s tls %10.0f/s  tcp %10.0f/s  ratio %.2f\n", name.c_str(), rate, tcp->second,
                rate / tcp->second);
  }
  benchmark::Shutdown();
  return 0;
}
