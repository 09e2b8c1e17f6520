// Message signing and verification through p2psip::crypto, for ECDSA P-256 and Ed25519, next to
// Botan's raw primitive over the same bytes in the same run (the ratio is our overhead: building
// the signature input, finding the certificate, the cached chain check). Also a cold verification
// (certificate parsed and chain validated) and the per-request cost of a peer: verify the
// request, sign the answer. docs/benchmarks.md has the numbers.

#include <benchmark/benchmark.h>

#include <botan/pubkey.h>

#include <map>

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

}  // namespace

BENCHMARK(BM_raw_sign)->Arg(0)->Arg(1);
BENCHMARK(BM_message_sign)->Arg(0)->Arg(1);
BENCHMARK(BM_raw_verify)->Arg(0)->Arg(1);
BENCHMARK(BM_message_verify)->Arg(0)->Arg(1);
BENCHMARK(BM_message_verify_cold)->Arg(0)->Arg(1);
BENCHMARK(BM_peer_verify_and_sign)->Arg(0)->Arg(1);

BENCHMARK_MAIN();
