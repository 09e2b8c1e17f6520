// Codec speed: decode and encode of a forwarded StoreReq and a FetchAns of realistic size, next to
// a memcpy of the same bytes measured in the same run (the baseline the ratio in docs/benchmarks.md
// is taken against). "Decode" is what a responding peer does: the whole message, then the typed
// body; "encode" is the reverse.

#include <benchmark/benchmark.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/message.hpp"
#include "sample_messages.hpp"

namespace pr = p2psip::protocol;
namespace ts = p2psip::test_support;

namespace {

struct bench_message {
  pr::message message;
  pr::bytes encoded;
};

const pr::limits& bench_limits() {
  static const pr::limits lim = [] {
    pr::limits l;
    l.max_message_size = 64 * 1024;
    return l;
  }();
  return lim;
}

/// The named sample; a StoreReq additionally gets the via list it has after two hops.
const bench_message& sample(const std::string& name) {
  static const auto samples = ts::make_sample_messages(ts::make_sample_identity(7), 7);
  static std::vector<std::pair<std::string, bench_message>> cache;
  for (const auto& [n, m] : cache) {
    if (n == name) return m;
  }
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bench_message out{s.message, {}};
    if (name == "store_req") {
      const auto cast = ts::make_sample_cast(7);
      out.message.header.via_list = {pr::destination{cast.proxy},
                                     pr::destination{cast.successors.at(0)}};
      out.message.header.ttl = 98;
    }
    auto encoded = pr::encode_message(out.message, bench_limits());
    if (!encoded) throw std::runtime_error("cannot encode " + name);
    out.encoded = std::move(*encoded);
    cache.emplace_back(name, std::move(out));
    return cache.back().second;
  }
  throw std::runtime_error("no sample named " + name);
}

void set_rates(benchmark::State& state, std::size_t bytes_per_message) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes_per_message));
  state.counters["msg_bytes"] = static_cast<double>(bytes_per_message);
}

void bm_memcpy(benchmark::State& state, const std::string& name) {
  const auto& m = sample(name);
  pr::bytes copy(m.encoded.size());
  for (auto _ : state) {
    std::memcpy(copy.data(), m.encoded.data(), m.encoded.size());
    benchmark::DoNotOptimize(copy.data());
    benchmark::ClobberMemory();
  }
  set_rates(state, m.encoded.size());
}

void bm_decode(benchmark::State& state, const std::string& name) {
  const auto& m = sample(name);
  for (auto _ : state) {
    auto decoded = pr::decode_message(m.encoded, bench_limits());
    if (!decoded) {
      state.SkipWithError("decode failed");
      break;
    }
    auto body = pr::decode_body(decoded->contents.code, decoded->contents.body, bench_limits());
    if (!body) {
      state.SkipWithError("body decode failed");
      break;
    }
    benchmark::DoNotOptimize(body);
  }
  set_rates(state, m.encoded.size());
}

void bm_decode_header(benchmark::State& state, const std::string& name) {
  // What an intermediate peer does before forwarding: the forwarding header only.
  const auto& m = sample(name);
  for (auto _ : state) {
    auto header = pr::decode_forwarding_header(m.encoded, bench_limits());
    benchmark::DoNotOptimize(header);
  }
  set_rates(state, m.encoded.size());
}

void bm_encode(benchmark::State& state, const std::string& name) {
  const auto& m = sample(name);
  auto body = pr::decode_body(m.message.contents.code, m.message.contents.body, bench_limits());
  if (!body) throw std::runtime_error("sample body does not decode");
  pr::message msg = m.message;
  for (auto _ : state) {
    auto body_bytes = pr::encode_body(*body);
    msg.contents.body = std::move(*body_bytes);
    auto encoded = pr::encode_message(msg, bench_limits());
    benchmark::DoNotOptimize(encoded);
  }
  set_rates(state, m.encoded.size());
}

}  // namespace

BENCHMARK_CAPTURE(bm_memcpy, store_req, std::string("store_req"));
BENCHMARK_CAPTURE(bm_decode_header, store_req, std::string("store_req"));
BENCHMARK_CAPTURE(bm_decode, store_req, std::string("store_req"));
BENCHMARK_CAPTURE(bm_encode, store_req, std::string("store_req"));
BENCHMARK_CAPTURE(bm_memcpy, fetch_ans, std::string("fetch_ans"));
BENCHMARK_CAPTURE(bm_decode, fetch_ans, std::string("fetch_ans"));
BENCHMARK_CAPTURE(bm_encode, fetch_ans, std::string("fetch_ans"));

BENCHMARK_MAIN();
