// Message signing and verification through p2psip::crypto, for ECDSA P-256 and Ed25519, next to
// Botan's raw primitive over the same bytes in the same run. For ECDSA our interface is Botan,
// so the ratio is our overhead (building the signature input, finding the certificate, the
// cached chain check); for Ed25519 our interface is libsodium, and the table printed after the
// run gives its sign and verify rates over Botan 2's Ed25519 measured in the same run. Also a
// cold verification (certificate parsed and chain validated) and the per-request cost of a peer:
// verify the request, sign the answer (the "crypto ceiling"). docs/benchmarks.md has the numbers.

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <botan/pubkey.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <string>

#include "p2psip/crypto/signatures.hpp"
#include "test_pki.hpp"

namespace cr = p2psip::crypto;
namespace pr = p2psip::protocol;
namespace tp = p2psip::test_pki;

namespace {

struct fixture {
  cr::node_identity id;
  pr::message message;  // signed
  pr::bytes input;      // its signature input
  std::unique_ptr<cr::trust_store> store;
};

const tp::test_ca& overlay_ca() {
  static const tp::test_ca ca("bench overlay CA");
  return ca;
}

/// A StoreReq-sized request (a 300-byte body) signed by an identity with a `key` certificate.
fixture& get(cr::key_type key) {
  // Never destroyed: at exit Botan's locked-memory pool may be gone before this map, and an
  // Ed25519 key freed then crashed the process after its results were printed (status 139).
  static auto* cache = new std::map<cr::key_type, std::unique_ptr<fixture>>();
  auto& slot = (*cache)[key];
  if (!slot) {
    auto id = tp::make_identity(overlay_ca(), tp::spec_for({tp::test_node(1)}), key);
    pr::message m;
    m.header.overlay = pr::overlay_hash("example.org");
    m.header.transaction_id = 0x1122334455667788;
    m.header.destination_list = {pr::to_destination(pr::hash_resource_name("alice@example.org"))};
    m.contents.code = pr::codes::store_req;
    m.contents.body.assign(300, 0x5A);
    if (!cr::sign_message(m, id)) throw std::runtime_error("sign failed");
    const pr::bytes input = pr::message_signature_input(m.header.overlay, m.header.transaction_id,
                                                        m.contents, m.security.signature.identity);
    auto store = std::make_unique<cr::trust_store>(tp::example_overlay());
    if (!store->add_root(overlay_ca().der())) throw std::runtime_error("root");
    slot = std::make_unique<fixture>(fixture{id, m, input, std::move(store)});
  }
  return *slot;
}

cr::key_type key_of(const benchmark::State& state) {
  return state.range(0) == 0 ? cr::key_type::ecdsa_p256 : cr::key_type::ed25519;
}

void label(benchmark::State& state) {
  state.SetLabel(std::string(cr::key_type_name(key_of(state))));
}

// ---- through the API ----

void BM_message_sign(benchmark::State& state) {
  fixture& f = get(key_of(state));
  pr::message m = f.message;
  for (auto _ : state) {
    auto r = cr::sign_message(m, f.id);
    benchmark::DoNotOptimize(r);
  }
  label(state);
}

void BM_message_verify(benchmark::State& state) {
  fixture& f = get(key_of(state));
  const auto now = tp::test_now();
  for (auto _ : state) {
    auto r = cr::verify_message(f.message, *f.store, now);
    if (!r) state.SkipWithError("verification failed");
    benchmark::DoNotOptimize(r);
  }
  label(state);
}

/// The first message from a certificate: parse it and validate its chain, then verify.
void BM_message_verify_cold(benchmark::State& state) {
  fixture& f = get(key_of(state));
  const auto now = tp::test_now();
  for (auto _ : state) {
    f.store->clear_cache();
    auto r = cr::verify_message(f.message, *f.store, now);
    if (!r) state.SkipWithError("verification failed");
    benchmark::DoNotOptimize(r);
  }
  label(state);
}

/// What a peer does per request: verify it, then sign its answer.
void BM_peer_verify_and_sign(benchmark::State& state) {
  fixture& f = get(key_of(state));
  pr::message answer = f.message;
  answer.contents.code = pr::codes::store_ans;
  answer.contents.body.assign(40, 0x01);
  const auto now = tp::test_now();
  for (auto _ : state) {
    auto v = cr::verify_message(f.message, *f.store, now);
    auto s = cr::sign_message(answer, f.id);
    benchmark::DoNotOptimize(v);
    benchmark::DoNotOptimize(s);
  }
  label(state);
}

// ---- our interface's primitive: node_identity::sign, certificate::verify ----

void BM_api_sign(benchmark::State& state) {
  fixture& f = get(key_of(state));
  for (auto _ : state) {
    auto sig = f.id.sign(f.input);
    benchmark::DoNotOptimize(sig);
  }
  label(state);
}

void BM_api_verify(benchmark::State& state) {
  fixture& f = get(key_of(state));
  const pr::signature& sig = f.message.security.signature;
  for (auto _ : state) {
    auto ok = f.id.cert().verify(sig.algorithm, f.input, sig.value);
    if (!ok) state.SkipWithError("verification failed");
    benchmark::DoNotOptimize(ok);
  }
  label(state);
}

// ---- Botan's primitive over the same bytes ----

std::string padding(cr::key_type key) {
  return key == cr::key_type::ed25519 ? "Pure" : "EMSA1(SHA-256)";
}
Botan::Signature_Format format(cr::key_type key) {
  return key == cr::key_type::ed25519 ? Botan::IEEE_1363 : Botan::DER_SEQUENCE;
}

void BM_raw_sign(benchmark::State& state) {
  fixture& f = get(key_of(state));
  Botan::PK_Signer signer(f.id.private_key(), tp::rng(), padding(f.id.key()), format(f.id.key()));
  for (auto _ : state) {
    auto sig = signer.sign_message(f.input, tp::rng());
    benchmark::DoNotOptimize(sig);
  }
  label(state);
}

void BM_raw_verify(benchmark::State& state) {
  fixture& f = get(key_of(state));
  Botan::PK_Verifier verifier(f.id.cert().public_key(), padding(f.id.key()), format(f.id.key()));
  const pr::bytes& sig = f.message.security.signature.value;
  for (auto _ : state) {
    bool ok = verifier.verify_message(f.input.data(), f.input.size(), sig.data(), sig.size());
    if (!ok) state.SkipWithError("raw verification failed");
    benchmark::DoNotOptimize(ok);
  }
  label(state);
}

// ---- after the run: our Ed25519 over Botan's, as ratios ----

/// Passes every result on to the reporter the flags asked for and keeps each benchmark's CPU
/// seconds per iteration (the median when repetitions were asked for, else the mean of the runs).
class collecting_reporter final : public benchmark::BenchmarkReporter {
 public:
  explicit collecting_reporter(std::unique_ptr<benchmark::BenchmarkReporter> inner)
      : inner_(std::move(inner)) {}

  bool ReportContext(const Context& context) override { return inner_->ReportContext(context); }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.error_occurred) continue;
      const double seconds = r.GetAdjustedCPUTime() / benchmark::GetTimeUnitMultiplier(r.time_unit);
      entry& e = results_[r.run_name.str()];
      if (r.run_type == Run::RT_Aggregate) {
        if (r.aggregate_name == "median") e.median = seconds;
      } else {
        e.sum += seconds;
        ++e.count;
      }
    }
    inner_->ReportRuns(runs);
  }
  void Finalize() override { inner_->Finalize(); }

  /// Operations per second of one core; 0 when the benchmark did not run.
  double rate(const std::string& name) const {
    const auto it = results_.find(name);
    if (it == results_.end()) return 0;
    const double s = it->second.median > 0  ? it->second.median
                     : it->second.count > 0 ? it->second.sum / static_cast<double>(it->second.count)
                                            : 0;
    return s > 0 ? 1 / s : 0;
  }

 private:
  struct entry {
    double median = 0;
    double sum = 0;
    int count = 0;
  };
  std::unique_ptr<benchmark::BenchmarkReporter> inner_;
  std::map<std::string, entry> results_;
};

/// The reporter --benchmark_format asks for: console or json (the sip bench reads json).
std::unique_ptr<benchmark::BenchmarkReporter> reporter_for(const std::string& format) {
  if (format == "json") return std::make_unique<benchmark::JSONReporter>();
  return std::make_unique<benchmark::ConsoleReporter>(
      isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_ColorTabular
                            : benchmark::ConsoleReporter::OO_Tabular);
}

/// The Ed25519 table: our interface (libsodium) against Botan 2's primitive, both from this run.
/// On standard output after the console table; on standard error with --benchmark_format=json,
/// so the JSON stays clean.
void print_ratios(const collecting_reporter& r, std::FILE* out) {
  struct row {
    const char* what;
    const char* ours;
    const char* botan;
  };
  const row rows[] = {
      {"sign    (node_identity::sign)", "BM_api_sign/1", "BM_raw_sign/1"},
      {"verify  (certificate::verify)", "BM_api_verify/1", "BM_raw_verify/1"},
      {"sign    (sign_message)", "BM_message_sign/1", "BM_raw_sign/1"},
      {"verify  (verify_message)", "BM_message_verify/1", "BM_raw_verify/1"},
  };
  bool header = false;
  for (const row& w : rows) {
    const double ours = r.rate(w.ours);
    const double botan = r.rate(w.botan);
    if (ours <= 0 || botan <= 0) continue;
    if (!header) {
      std::fprintf(out,
                   "\nEd25519, per second of one core (CPU time), this run:\n"
                   "  %-30s %16s %12s %8s\n",
                   "", "p2psip::crypto", "Botan 2", "ratio");
      header = true;
    }
    std::fprintf(out, "  %-30s %16.0f %12.0f %7.2fx\n", w.what, ours, botan, ours / botan);
  }
  if (const double ceiling = r.rate("BM_peer_verify_and_sign/1"); ceiling > 0) {
    std::fprintf(out, "  crypto ceiling (BM_peer_verify_and_sign/1): %.0f verify+sign /s\n",
                 ceiling);
  }
}

}  // namespace

BENCHMARK(BM_raw_sign)->Arg(0)->Arg(1);
BENCHMARK(BM_api_sign)->Arg(0)->Arg(1);
BENCHMARK(BM_message_sign)->Arg(0)->Arg(1);
BENCHMARK(BM_raw_verify)->Arg(0)->Arg(1);
BENCHMARK(BM_api_verify)->Arg(0)->Arg(1);
BENCHMARK(BM_message_verify)->Arg(0)->Arg(1);
BENCHMARK(BM_message_verify_cold)->Arg(0)->Arg(1);
BENCHMARK(BM_peer_verify_and_sign)->Arg(0)->Arg(1);

int main(int argc, char** argv) {
  std::string format = "console";
  for (int i = 1; i < argc; ++i) {
    constexpr const char* flag = "--benchmark_format=";
    if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0) format = argv[i] + std::strlen(flag);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (format != "console" && format != "json") {  // csv: as Google Benchmark does, no table
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }
  collecting_reporter reporter(reporter_for(format));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  std::cout.flush();
  print_ratios(reporter, format == "console" ? stdout : stderr);
  benchmark::Shutdown();
  return 0;
}
