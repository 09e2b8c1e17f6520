// Replication and handover (export_range, drop_range, replica stores) and the SQLite backend:
// values survive close and reopen, a corrupt file gives a clear error.
#include <filesystem>
#include <fstream>

#include "storage_fixture.hpp"

namespace p2psip::peer_storage_test {

namespace {

const char* const ring_points[] = {"10000000000000000000000000000000",
                                   "80000000000000000000000000000000",
                                   "f0000000000000000000000000000000"};

void fill(store_fixture& f, std::uint32_t lifetime = 100) {
  for (const auto* id : {&f.p.alice, &f.p.bob}) {
    for (const char* hex : ring_points) {
      const auto res = rid(hex);
      CHECK(error_of(f.put(
                *id, store_req(res, {kind_data(k_generic, {make_value(*id, res, k_generic,
                                                                      dict(node_key(*id), "v"),
                                                                      f.ms(), lifetime)})}))) == 0);
    }
  }
}

}  // namespace

TEST_CASE("export_range with wrap-around, lifetimes reduced, imported as replicas") {
  store_fixture f;
  fill(f);
  CHECK(f.store->counts().resources == 3);
  CHECK(f.store->counts().values == 6);

  // (0xe0.., 0x20..] wraps past zero: 0xf0.. and 0x10.., not 0x80...
  auto reqs = f.store->export_range(nid("e0000000000000000000000000000000"),
                                    nid("20000000000000000000000000000000"), f.t0 + 30s);
  REQUIRE(reqs.size() == 2);
  std::vector<std::string> exported;
  for (const auto& r : reqs) {
    exported.push_back(r.resource.hex());
    REQUIRE(r.kind_data.size() == 1);
    CHECK(r.kind_data[0].kind == k_generic);
    CHECK(r.kind_data[0].generation_counter == 2);
    REQUIRE(r.kind_data[0].values.size() == 2);
    for (const auto& v : r.kind_data[0].values) CHECK(v.lifetime == 70);
  }
  std::sort(exported.begin(), exported.end());
  CHECK(exported == std::vector<std::string>{ring_points[0], ring_points[2]});

  // Everything on a whole-ring export.
  CHECK(f.store->export_range(nid(ring_points[1]), nid(ring_points[1]), f.t0).size() == 3);

  // A replica holder takes them as replica stores with the owners' certificates.
  store_fixture replica;
  for (auto& r : reqs) {
    r.replica_number = 1;
    const auto certs = f.store->signer_certificates(pr::message_body{r});
    CHECK(certs.size() == 2);
    auto body = replica.store->store(r, signer_of(f.p.carol), certs, f.t0 + 30s);
    CHECK(answered_generation(body) == 2);
  }
  CHECK(replica.store->counts().values == 4);
  auto got = replica.get(fetch_req(rid(ring_points[2]), {dict_spec(k_generic, {})}), 30s);
  CHECK(got.kind_responses[0].generation == 2);
  REQUIRE(got.kind_responses[0].values.size() == 2);
  auto original = f.get(fetch_req(rid(ring_points[2]), {dict_spec(k_generic, {})}), 30s);
  CHECK(got.kind_responses[0].values == original.kind_responses[0].values);
  // Re-sending the same replica is harmless.
  CHECK(answered_generation(replica.store->store(
            reqs[0], signer_of(f.p.carol), f.store->signer_certificates(pr::message_body{reqs[0]}),
            f.t0 + 31s)) == 2);
  // The replica expires when the original would have (lifetime 70 s from t0+30 s).
  CHECK(*replica.store->next_expiry() == f.t0 + 100s);
}

TEST_CASE("drop_range with wrap-around") {
  store_fixture f;
  fill(f);
  CHECK(f.store->drop_range(nid("e0000000000000000000000000000000"),
                            nid("20000000000000000000000000000000")) == 4);
  CHECK(f.store->counts().resources == 1);
  CHECK(f.store->counts().values == 2);
  CHECK(f.store->generation(rid(ring_points[0]), k_generic) == 0);
  CHECK(f.store->generation(rid(ring_points[1]), k_generic) == 2);
  CHECK(f.store->drop_range(nid("e0000000000000000000000000000000"),
                            nid("20000000000000000000000000000000")) == 0);
  CHECK(f.store->drop_range(nid(ring_points[0]), nid(ring_points[0])) == 2);
  CHECK(f.store->counts().values == 0);
  CHECK(f.store->counts().bytes == 0);
}

TEST_CASE("sqlite: values, counters and expiry survive close and reopen") {
  temp_dir dir;
  pr::fetch_ans before;
  {
    auto backend = ps::open_sqlite_backend(dir.path);
    REQUIRE_MESSAGE(backend.has_value(), backend.error().message);
    store_fixture f(std::move(*backend));
    fill(f, 100);
    const auto& alice = f.p.alice;
    const auto res = user_resource(alice);
    CHECK(error_of(f.put(
              alice,
              store_req(res, {kind_data(k_array,
                                        {make_value(alice, res, k_array,
                                                    entry(pr::array_append_index, "a"), f.ms(), 50),
                                         make_value(alice, res, k_array,
                                                    entry(pr::array_append_index, "b"), f.ms(),
                                                    500)})}))) == 0);
    before = f.get(fetch_req(res, {array_spec(k_array, {{0, pr::array_append_index}})}));
    CHECK(f.store->drop_range(nid("e0000000000000000000000000000000"),
                              nid("20000000000000000000000000000000")) == 4);
  }
  CHECK(std::filesystem::exists(dir.path / ps::sqlite_file_name));
  {
    auto backend = ps::open_sqlite_backend(dir.path);
    REQUIRE_MESSAGE(backend.has_value(), backend.error().message);
    store_fixture f(std::move(*backend));
    CHECK(f.store->skipped_at_load() == 0);
    CHECK(f.store->counts().values == 4);  // 2 at 0x80.. + 2 array entries
    const auto res = user_resource(f.p.alice);
    CHECK(f.store->generation(res, k_array) == 1);
    CHECK(f.store->generation(rid(ring_points[1]), k_generic) == 2);
    CHECK(f.store->generation(rid(ring_points[0]), k_generic) == 0);
    auto after = f.get(fetch_req(res, {array_spec(k_array, {{0, pr::array_append_index}})}));
    CHECK(after == before);
    // The stored signature still verifies after the round trip through the file.
    const pr::generic_certificate cert = f.p.alice.cert().generic();
    CHECK(cr::verify_stored_data(after.kind_responses[0].values.at(1), res, k_array,
                                 std::span(&cert, 1), f.trust, f.t0)
              .has_value());
    // Lifetimes still count from the first receipt.
    CHECK(*f.store->next_expiry() == f.t0 + 50s);
    CHECK(f.store->expire(f.t0 + 60s) == 1);
    // A new store continues the counter.
    const auto& alice = f.p.alice;
    CHECK(answered_generation(f.put(
              alice,
              store_req(
                  res, {kind_data(k_array,
                                  {make_value(alice, res, k_array, entry(0, "c"), f.ms(61s))}, 1)}),
              61s)) == 2);
  }
  {
    auto backend = ps::open_sqlite_backend(dir.path);
    REQUIRE(backend.has_value());
    store_fixture f(std::move(*backend));
    CHECK(f.store->counts().values == 4);
    CHECK(f.store->generation(user_resource(f.p.alice), k_array) == 2);
  }
}

TEST_CASE("sqlite: a corrupt file or an unusable directory gives a clear error") {
  temp_dir dir;
  std::filesystem::create_directories(dir.path);
  const auto file = dir.path / ps::sqlite_file_name;
  SUBCASE("not a database") {
    {
      std::ofstream out(file, std::ios::binary);
      out << std::string(4096, 'x');
    }
    auto backend = ps::open_sqlite_backend(dir.path);
    REQUIRE_FALSE(backend.has_value());
    CHECK(backend.error().code == ps::storage_errc::corrupt);
    CHECK(backend.error().message.find(file.string()) != std::string::npos);
    MESSAGE(backend.error().message);
  }
  SUBCASE("a damaged page") {
    {
      auto backend = ps::open_sqlite_backend(dir.path);
      REQUIRE(backend.has_value());
      store_fixture f(std::move(*backend));
      fill(f);
    }
    // Overwrite everything after the 100-byte header with garbage (WAL already checkpointed on
    // close).
    {
      std::fstream io(file, std::ios::binary | std::ios::in | std::ios::out);
      io.seekp(100);
      const std::string junk(8000, '\xA5');
      io.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    auto backend = ps::open_sqlite_backend(dir.path);
    REQUIRE_FALSE(backend.has_value());
    CHECK(backend.error().code == ps::storage_errc::corrupt);
    CHECK(backend.error().message.find(file.string()) != std::string::npos);
    MESSAGE(backend.error().message);
  }
  SUBCASE("a data directory in use") {
    auto first = ps::open_sqlite_backend(dir.path);
    REQUIRE(first.has_value());
    auto second = ps::open_sqlite_backend(dir.path);
    REQUIRE_FALSE(second.has_value());
    CHECK(second.error().code == ps::storage_errc::cannot_open);
    MESSAGE(second.error().message);
  }
  SUBCASE("the data directory is a file") {
    const auto not_dir = dir.path / "plain-file";
    {
      std::ofstream out(not_dir);
      out << "x";
    }
    auto backend = ps::open_sqlite_backend(not_dir);
    REQUIRE_FALSE(backend.has_value());
    CHECK(backend.error().code == ps::storage_errc::cannot_open);
    CHECK(backend.error().message.find(not_dir.string()) != std::string::npos);
  }
  SUBCASE("a newer schema") {
    {
      auto backend = ps::open_sqlite_backend(dir.path);
      REQUIRE(backend.has_value());
    }
    // Bump user_version (header offset 60, big-endian) to 99.
    {
      std::fstream io(file, std::ios::binary | std::ios::in | std::ios::out);
      io.seekp(60);
      const char v[4] = {0, 0, 0, 99};
      io.write(v, 4);
    }
    auto backend = ps::open_sqlite_backend(dir.path);
    REQUIRE_FALSE(backend.has_value());
    CHECK(backend.error().code == ps::storage_errc::schema_too_new);
  }
}

}  // namespace p2psip::peer_storage_test

namespace p2psip::peer_storage_test {

TEST_CASE("sqlite: values of a kind the configuration no longer has stay on disk, unserved") {
  temp_dir dir;
  {
    auto backend = ps::open_sqlite_backend(dir.path);
    REQUIRE(backend.has_value());
    store_fixture f(std::move(*backend));
    fill(f);
  }
  {
    auto backend = ps::open_sqlite_backend(dir.path);
    REQUIRE(backend.has_value());
    cr::trust_store trust{tp::example_overlay()};
    auto kinds = test_kinds();
    std::erase_if(kinds, [](const ps::kind_rules& k) { return k.kind == k_generic; });
    ps::data_store store(std::move(*backend), kinds, trust);
    CHECK(store.skipped_at_load() == 6);
    CHECK(store.counts().values == 0);
  }
  {
    auto backend = ps::open_sqlite_backend(dir.path);
    REQUIRE(backend.has_value());
    store_fixture f(std::move(*backend));
    CHECK(f.store->counts().values == 6);
  }
}

}  // namespace p2psip::peer_storage_test
