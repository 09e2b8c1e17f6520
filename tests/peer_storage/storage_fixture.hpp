#pragma once
// Shared set-up of the peer storage tests: a throwaway overlay CA with three node identities, a
// trust store, a kind table covering every model and policy, a fake clock, and helpers that build
// signed StoredData values and StoreReqs.

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "p2psip/crypto/access.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/peer/data_store.hpp"
#include "p2psip/peer/storage_backend.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "test_pki.hpp"

namespace p2psip::peer_storage_test {

namespace cr = p2psip::crypto;
namespace pr = p2psip::protocol;
namespace ps = p2psip::peer;
namespace tp = p2psip::test_pki;
using namespace std::chrono_literals;

// Kinds of the test table: one per model and policy.
inline constexpr std::uint32_t k_single = 0xF0000001;     // single, USER-MATCH, max 1, size 16
inline constexpr std::uint32_t k_array = 0xF0000002;      // array, USER-MATCH, max 4, size 16
inline constexpr std::uint32_t k_user_node = 0xF0000003;  // dictionary, USER-NODE-MATCH, max 3
inline constexpr std::uint32_t k_node = 0xF0000004;       // single, NODE-MATCH
inline constexpr std::uint32_t k_multiple = 0xF0000005;   // single, NODE-MULTIPLE, max i 3
inline constexpr std::uint32_t k_generic = pr::kinds::p2psip_generic;  // dictionary, node_key, 4
inline constexpr std::uint32_t max_size = 16;

inline std::vector<ps::kind_rules> test_kinds() {
  using cr::access_policy;
  using pr::data_model;
  return {
      {k_single, data_model::single_value, access_policy::user_match, 1, max_size, 0},
      {k_array, data_model::array, access_policy::user_match, 4, max_size, 0},
      {k_user_node, data_model::dictionary, access_policy::user_node_match, 3, max_size, 0},
      {k_node, data_model::single_value, access_policy::node_match, 1, max_size, 0},
      {k_multiple, data_model::single_value, access_policy::node_multiple, 1, max_size, 3},
      {k_generic, data_model::dictionary, access_policy::node_key, 4, max_size, 0},
  };
}

/// One CA, three users, made once per test run (key generation is slow).
struct pki {
  tp::test_ca ca{"peer storage test CA"};
  cr::node_identity alice =
      tp::make_identity(ca, tp::spec_for({tp::test_node(1)}, "alice@example.org"));
  cr::node_identity bob =
      tp::make_identity(ca, tp::spec_for({tp::test_node(2)}, "bob@example.org"));
  cr::node_identity carol =
      tp::make_identity(ca, tp::spec_for({tp::test_node(3)}, "carol@example.org"));
  static const pki& get() {
    static const pki p;
    return p;
  }
};

inline cr::verified_signer signer_of(const cr::node_identity& id) {
  return cr::verified_signer{id.cert(), id.default_node_id()};
}

inline pr::resource_id user_resource(const cr::node_identity& id) {
  return pr::hash_resource_name(id.cert().user());
}
inline pr::resource_id node_resource(const cr::node_identity& id) {
  return pr::hash_resource_name(id.default_node_id().view());
}
/// A Resource-ID from hex (for the generic kind, which takes any Resource-ID).
inline pr::resource_id rid(std::string_view hex) {
  pr::resource_id r;
  REQUIRE(pr::from_hex(hex, r.value));
  return r;
}
inline pr::node_id nid(std::string_view hex) {
  return *pr::node_id::from_hex(hex);
}

inline pr::bytes b(std::string_view s) {
  return pr::to_bytes(s);
}

/// A signed StoredData value.
inline pr::stored_data make_value(const cr::node_identity& id, const pr::resource_id& resource,
                                  std::uint32_t kind, pr::stored_data_value value,
                                  std::uint64_t storage_time, std::uint32_t lifetime = 600) {
  pr::stored_data sd;
  sd.storage_time = storage_time;
  sd.lifetime = lifetime;
  sd.value = std::move(value);
  const auto signed_ok = cr::sign_stored_data(sd, resource, kind, id);
  REQUIRE(signed_ok.has_value());
  return sd;
}
inline pr::data_value present(std::string_view s) {
  return pr::data_value{true, b(s)};
}
inline pr::stored_data_value single(std::string_view s) {
  return present(s);
}
inline pr::stored_data_value entry(std::uint32_t index, std::string_view s) {
  return pr::array_entry{index, present(s)};
}
inline pr::stored_data_value dict(pr::bytes key, std::string_view s) {
  return pr::dictionary_entry{std::move(key), present(s)};
}
inline pr::bytes node_key(const cr::node_identity& id) {
  return pr::to_bytes(id.default_node_id().view());
}

inline pr::store_kind_data kind_data(std::uint32_t kind, std::vector<pr::stored_data> values,
                                     std::uint64_t generation = 0) {
  pr::store_kind_data kd;
  kd.kind = kind;
  kd.generation_counter = generation;
  kd.values = std::move(values);
  return kd;
}
inline pr::store_req store_req(pr::resource_id resource, std::vector<pr::store_kind_data> kinds,
                               std::uint8_t replica = 0) {
  pr::store_req r;
  r.resource = std::move(resource);
  r.replica_number = replica;
  r.kind_data = std::move(kinds);
  return r;
}
inline pr::stored_data_specifier spec(std::uint32_t kind, std::uint64_t generation = 0) {
  pr::stored_data_specifier s;
  s.kind = kind;
  s.generation = generation;
  return s;
}
inline pr::stored_data_specifier array_spec(std::uint32_t kind, std::vector<pr::array_range> ranges,
                                            std::uint64_t generation = 0) {
  auto s = spec(kind, generation);
  s.model = std::move(ranges);
  return s;
}
inline pr::stored_data_specifier dict_spec(std::uint32_t kind, std::vector<pr::bytes> keys,
                                           std::uint64_t generation = 0) {
  auto s = spec(kind, generation);
  s.model = std::move(keys);
  return s;
}
inline pr::fetch_req fetch_req(pr::resource_id resource,
                               std::vector<pr::stored_data_specifier> specs) {
  pr::fetch_req r;
  r.resource = std::move(resource);
  r.specifiers = std::move(specs);
  return r;
}

/// The Error-Code of an error_response body, or 0 for an answer.
inline std::uint16_t error_of(const pr::message_body& body) {
  const auto* e = std::get_if<pr::error_response>(&body);
  return e ? e->error_code : 0;
}
inline std::uint16_t code(pr::reload_errc e) {
  return static_cast<std::uint16_t>(e);
}

/// A data store over `backend` (memory by default) with the test kinds, and a fake clock.
struct store_fixture {
  cr::trust_store trust{tp::example_overlay()};
  std::unique_ptr<ps::data_store> store;
  ps::wall_clock::time_point t0 = tp::test_now();
  const pki& p = pki::get();

  explicit store_fixture(std::unique_ptr<ps::storage_backend> backend = ps::make_memory_backend()) {
    REQUIRE(trust.add_root(p.ca.der()).has_value());
    store = std::make_unique<ps::data_store>(std::move(backend), test_kinds(), trust);
  }
  /// storage_time in ms of t0 + offset.
  std::uint64_t ms(std::chrono::milliseconds offset = 0ms) const {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>((t0 + offset).time_since_epoch())
            .count());
  }
  pr::message_body put(const cr::node_identity& requester, const pr::store_req& req,
                       std::chrono::milliseconds at = 0ms) {
    return store->store(req, signer_of(requester), t0 + at);
  }
  pr::fetch_ans get(const pr::fetch_req& req, std::chrono::milliseconds at = 0ms) {
    auto body = store->fetch(req, t0 + at);
    REQUIRE(std::holds_alternative<pr::fetch_ans>(body));
    return std::get<pr::fetch_ans>(body);
  }
};

/// A fresh directory under the system temp dir, removed at the end of the test.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    static int n = 0;
    path = std::filesystem::temp_directory_path() /
           ("p2psip-storage-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n));
    std::filesystem::remove_all(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

/// The generation counter a successful store answered for its first kind.
inline std::uint64_t answered_generation(const pr::message_body& body, std::size_t i = 0) {
  const auto* ans = std::get_if<pr::store_ans>(&body);
  REQUIRE(ans != nullptr);
  REQUIRE(ans->kind_responses.size() > i);
  return ans->kind_responses[i].generation_counter;
}

}  // namespace p2psip::peer_storage_test
