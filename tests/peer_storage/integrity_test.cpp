// Store integrity: the manifest beside the SQLite database (a lost, emptied, replaced, foreign
// or truncated database is refused at open; an explicit override takes it; fresh and
// pre-manifest data directories start), and stored values whose bytes no longer verify are
// left out of answers and quarantined instead of poisoning the other entries of their resource.
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "flip_bytes.hpp"
#include "storage_fixture.hpp"

namespace p2psip::peer_storage_test {

namespace {

namespace fs = std::filesystem;

const char* const places[] = {"10000000000000000000000000000000",
                              "80000000000000000000000000000000",
                              "f0000000000000000000000000000000"};

/// Opens the store in `dir` for `owner`, keeping what it logs.
struct opener {
  std::vector<std::string> infos, warnings;
  ps::storage_result<std::unique_ptr<ps::storage_backend>> open(const fs::path& dir,
                                                                const cr::node_identity& owner,
                                                                bool accept = false) {
    ps::sqlite_options options;
    options.owner = owner.default_node_id();
    options.accept_store_change = accept;
    options.log = [this](bool warning, std::string_view text) {
      (warning ? warnings : infos).emplace_back(text);
    };
    return ps::open_sqlite_backend(dir, options);
  }
  bool logged(const std::vector<std::string>& lines, std::string_view text) const {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  }
};

/// Stores one generic-kind value per writer at each of `n` places (at most 3).
void fill(store_fixture& f, std::size_t n, std::vector<const cr::node_identity*> writers) {
  for (std::size_t i = 0; i < n; ++i) {
    const auto res = rid(places[i]);
    for (const auto* id : writers) {
      CHECK(error_of(f.put(
                *id, store_req(res, {kind_data(k_generic, {make_value(*id, res, k_generic,
                                                                      dict(node_key(*id), "v"),
                                                                      f.ms(), 100)})}))) == 0);
    }
  }
}

std::uint64_t manifest_min_values(const fs::path& dir) {
  std::ifstream in(dir / ps::manifest_file_name);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("min-values ", 0) == 0) return std::stoull(line.substr(11));
  }
  FAIL("no min-values line in the manifest");
  return 0;
}

void truncate_file(const fs::path& file) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
}

/// Turns a schema-2 store into what a p2psip from before manifests left: schema 1, no identity
/// tables, no manifest.
void make_pre_manifest(const fs::path& dir) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((dir / ps::sqlite_file_name).c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db,
                     "DROP TABLE store_meta; DROP TABLE quarantined_values;"
                     " PRAGMA user_version=1; PRAGMA journal_mode=DELETE;",
                     nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  fs::remove(dir / ps::manifest_file_name);
}

using p2psip::test::flip_bytes;

}  // namespace

TEST_CASE("manifest: a fresh data directory starts and records its store") {
  temp_dir dir;
  opener o;
  const pki& p = pki::get();
  {
    auto backend = o.open(dir.path, p.alice);
    REQUIRE_MESSAGE(backend.has_value(), backend.error().message);
    CHECK(o.logged(o.infos, "new store"));
    CHECK(o.warnings.empty());
    CHECK(fs::exists(dir.path / ps::manifest_file_name));
    CHECK(manifest_min_values(dir.path) == 0);
    store_fixture f(std::move(*backend));
    fill(f, 1, {&p.alice});
    // The first value is recorded at once (the bound doubles), not only at close.
    CHECK(manifest_min_values(dir.path) == 1);
    fill(f, 3, {&p.bob, &p.carol});
    CHECK(manifest_min_values(dir.path) >= 4);
  }
  CHECK(manifest_min_values(dir.path) == 7);  // exact after a clean close
  opener again;
  auto backend = again.open(dir.path, p.alice);
  REQUIRE_MESSAGE(backend.has_value(), backend.error().message);
  CHECK(again.infos.empty());
  CHECK(again.warnings.empty());
}

TEST_CASE("manifest: a lost, emptied or replaced database is refused, the override takes it") {
  temp_dir dir, other;
  const pki& p = pki::get();
  const auto db_file = dir.path / ps::sqlite_file_name;
  {
    opener o;
    auto backend = o.open(dir.path, p.alice);
    REQUIRE(backend.has_value());
    store_fixture f(std::move(*backend));
    fill(f, 3, {&p.alice, &p.bob});
  }
  REQUIRE(manifest_min_values(dir.path) == 6);

  SUBCASE("emptied to 0 bytes") {
    truncate_file(db_file);
    opener o;
    auto refused = o.open(dir.path, p.alice);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == ps::storage_errc::store_changed);
    CHECK(refused.error().message.find(db_file.string() + " is empty (0 bytes)") !=
          std::string::npos);
    CHECK(refused.error().message.find("at least 6 values") != std::string::npos);
    MESSAGE(refused.error().message);
    // Refused again on the next try: the refusal changed nothing that would let it pass.
    CHECK_FALSE(o.open(dir.path, p.alice).has_value());
    CHECK(manifest_min_values(dir.path) == 6);

    // The explicit override: a warning naming the reason, an empty store, a new manifest.
    {
      auto taken = o.open(dir.path, p.alice, true);
      REQUIRE_MESSAGE(taken.has_value(), taken.error().message);
      CHECK(o.logged(o.warnings, "store change accepted"));
      CHECK(o.logged(o.warnings, "empty (0 bytes)"));
      store_fixture f(std::move(*taken));
      CHECK(f.store->counts().values == 0);
    }
    CHECK(manifest_min_values(dir.path) == 0);
    opener after;
    CHECK(after.open(dir.path, p.alice).has_value());
    CHECK(after.warnings.empty());
  }
  SUBCASE("missing") {
    fs::remove(db_file);
    opener o;
    auto refused = o.open(dir.path, p.alice);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == ps::storage_errc::store_changed);
    CHECK(refused.error().message.find("is missing") != std::string::npos);
  }
  SUBCASE("replaced by another store") {
    {
      opener o;
      auto backend = o.open(other.path, p.alice);
      REQUIRE(backend.has_value());
      store_fixture f(std::move(*backend));
      fill(f, 3, {&p.alice, &p.bob, &p.carol});  // more values: only the identity differs
    }
    fs::copy_file(other.path / ps::sqlite_file_name, db_file, fs::copy_options::overwrite_existing);
    opener o;
    auto refused = o.open(dir.path, p.alice);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == ps::storage_errc::store_changed);
    CHECK(refused.error().message.find("the data file was replaced") != std::string::npos);
    MESSAGE(refused.error().message);
    auto taken = o.open(dir.path, p.alice, true);
    REQUIRE(taken.has_value());
    store_fixture f(std::move(*taken));
    CHECK(f.store->counts().values == 9);
  }
  SUBCASE("truncated: an older copy of the same store") {
    // Same identity, fewer rows than the manifest's bound: values were lost.
    {
      opener o;
      auto backend = o.open(dir.path, p.alice);
      REQUIRE(backend.has_value());
      store_fixture f(std::move(*backend));
      CHECK(f.store->drop_range(nid(places[1]), nid(places[0])) == 4);  // keep 0x80.. only
    }
    fs::copy_file(db_file, other.path.string() + ".db", fs::copy_options::overwrite_existing);
    {
      opener o;
      auto backend = o.open(dir.path, p.alice);
      REQUIRE(backend.has_value());
      store_fixture f(std::move(*backend));
      fill(f, 3, {&p.carol});
    }
    CHECK(manifest_min_values(dir.path) == 5);
    fs::copy_file(other.path.string() + ".db", db_file, fs::copy_options::overwrite_existing);
    fs::remove(other.path.string() + ".db");
    opener o;
    auto refused = o.open(dir.path, p.alice);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == ps::storage_errc::store_changed);
    CHECK(refused.error().message.find("holds 2 values") != std::string::npos);
    CHECK(refused.error().message.find("never fewer than 5") != std::string::npos);
    MESSAGE(refused.error().message);
  }
  SUBCASE("another node's data directory") {
    opener o;
    auto refused = o.open(dir.path, p.bob);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == ps::storage_errc::store_changed);
    CHECK(refused.error().message.find("belongs to Node-ID " + p.alice.default_node_id().hex()) !=
          std::string::npos);
    MESSAGE(refused.error().message);
    // Without its manifest too: the database itself says whose it is.
    fs::remove(dir.path / ps::manifest_file_name);
    CHECK_FALSE(o.open(dir.path, p.bob).has_value());
    // Taken over explicitly: the store is bob's from then on.
    REQUIRE(o.open(dir.path, p.bob, true).has_value());
    CHECK(o.open(dir.path, p.bob).has_value());
    CHECK_FALSE(o.open(dir.path, p.alice).has_value());
  }
  SUBCASE("an unreadable manifest") {
    {
      std::ofstream out(dir.path / ps::manifest_file_name, std::ios::trunc);
      out << "garbage\n";
    }
    opener o;
    auto refused = o.open(dir.path, p.alice);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == ps::storage_errc::store_changed);
    CHECK(refused.error().message.find(ps::manifest_file_name) != std::string::npos);
    CHECK(o.open(dir.path, p.alice, true).has_value());
    CHECK(manifest_min_values(dir.path) == 6);
  }
}

TEST_CASE("manifest: a data directory from before manifests starts and gets one") {
  temp_dir dir;
  const pki& p = pki::get();
  {
    opener o;
    auto backend = o.open(dir.path, p.alice);
    REQUIRE(backend.has_value());
    store_fixture f(std::move(*backend));
    fill(f, 3, {&p.alice});
  }
  make_pre_manifest(dir.path);
  opener o;
  {
    auto backend = o.open(dir.path, p.alice);
    REQUIRE_MESSAGE(backend.has_value(), backend.error().message);
    CHECK(o.logged(o.infos, "from before store manifests"));
    CHECK(o.warnings.empty());
    store_fixture f(std::move(*backend));
    CHECK(f.store->counts().values == 3);
  }
  CHECK(manifest_min_values(dir.path) == 3);
  CHECK(o.open(dir.path, p.alice).has_value());
}

TEST_CASE("manifest: a crash at any point leaves no false alarm") {
  // Copies of the database, its write-ahead log and the manifest taken while the store is open
  // are what a kill -9 (or power loss: every commit is fsynced) would leave.
  temp_dir dir, crashed;
  const pki& p = pki::get();
  opener o;
  auto backend = o.open(dir.path, p.alice);
  REQUIRE(backend.has_value());
  store_fixture f(std::move(*backend));
  const auto snapshot_opens = [&](const char* when) {
    fs::remove_all(crashed.path);
    fs::create_directories(crashed.path);
    for (const auto& e : fs::directory_iterator(dir.path)) {
      fs::copy_file(e.path(), crashed.path / e.path().filename());
    }
    opener after;
    auto reopened = after.open(crashed.path, p.alice);
    CHECK_MESSAGE(reopened.has_value(), when, ": ", reopened.error().message);
  };
  fill(f, 3, {&p.alice, &p.bob, &p.carol});
  snapshot_opens("after stores (bound raised lazily)");
  CHECK(f.store->expire(f.t0 + 200s) == 9);  // fewer rows: the bound goes down first
  CHECK(manifest_min_values(dir.path) == 0);
  snapshot_opens("after an expiry sweep");
  fill(f, 2, {&p.alice});
  snapshot_opens("after more stores");
}

// ---- values whose stored bytes no longer verify ----

namespace {

/// Keeps every value the data store writes, to be loaded again (possibly damaged) by another.
class recording_backend final : public ps::storage_backend {
 public:
  explicit recording_backend(ps::stored_state initial = {}) : initial_(std::move(initial)) {}
  ps::stored_state load() override { return std::move(initial_); }
  ps::storage_result<void> apply(const ps::change_set& changes) override {
    for (const auto& v : changes.put_values) state->values.push_back(v);
    for (const auto& g : changes.put_generations) state->generations.push_back(g);
    for (const auto& q : changes.quarantine_values) quarantined->push_back(q);
    return {};
  }
  std::string describe() const override { return "recording"; }
  std::shared_ptr<ps::stored_state> state = std::make_shared<ps::stored_state>();
  std::shared_ptr<std::vector<ps::quarantine_record>> quarantined =
      std::make_shared<std::vector<ps::quarantine_record>>();

 private:
  ps::stored_state initial_;
};

/// Flips the last byte of `needle` in the stored value that holds it.
void damage(ps::stored_state& state, std::string_view needle) {
  std::size_t damaged = 0;
  for (auto& v : state.values) {
    auto at = std::search(v.stored_data.begin(), v.stored_data.end(), needle.begin(), needle.end(),
                          [](std::uint8_t a, char b) { return a == static_cast<std::uint8_t>(b); });
    if (at == v.stored_data.end()) continue;
    *(at + static_cast<std::ptrdiff_t>(needle.size()) - 1) ^= 0x01;
    ++damaged;
  }
  REQUIRE(damaged == 1);
}

std::vector<std::string> texts(const pr::fetch_kind_response& kr) {
  std::vector<std::string> out;
  for (const auto& sd : kr.values) {
    const pr::data_value* v = nullptr;
    if (const auto* d = std::get_if<pr::dictionary_entry>(&sd.value)) v = &d->value;
    if (const auto* a = std::get_if<pr::array_entry>(&sd.value)) v = &a->value;
    REQUIRE(v != nullptr);
    out.push_back(v->exists ? std::string(v->value.begin(), v->value.end()) : "-");
  }
  return out;
}

}  // namespace

TEST_CASE("a damaged stored value is left out and quarantined, the others are served") {
  const pki& p = pki::get();
  const auto res = rid(places[0]);
  const auto user = user_resource(p.alice);
  // Two writers under one dictionary name, two entries of one array.
  auto first = std::make_unique<recording_backend>();
  auto written = first->state;
  {
    store_fixture f(std::move(first));
    for (const auto* id : {&p.alice, &p.bob}) {
      const std::string text = id == &p.alice ? "alice-good" : "bob-good";
      CHECK(error_of(f.put(
                *id, store_req(res, {kind_data(k_generic, {make_value(*id, res, k_generic,
                                                                      dict(node_key(*id), text),
                                                                      f.ms())})}))) == 0);
    }
    CHECK(error_of(f.put(
              p.alice,
              store_req(user,
                        {kind_data(k_array, {make_value(p.alice, user, k_array,
                                                        entry(0, "entry-zero"), f.ms()),
                                             make_value(p.alice, user, k_array,
                                                        entry(1, "entry-one"), f.ms())})}))) == 0);
  }
  damage(*written, "alice-good");
  damage(*written, "entry-zero");

  auto second = std::make_unique<recording_backend>(*written);
  auto quarantined = second->quarantined;
  store_fixture f(std::move(second));
  std::vector<std::string> warnings;
  f.store->set_warning_log([&](std::string_view w) { warnings.emplace_back(w); });
  REQUIRE(f.store->counts().values == 4);  // loaded as they are; checked when first served

  SUBCASE("dictionary, every entry") {
    const auto ans = f.get(fetch_req(res, {dict_spec(k_generic, {})}));
    CHECK(texts(ans.kind_responses.at(0)) == std::vector<std::string>{"bob-good"});
    CHECK(f.store->counts().quarantined == 1);
    CHECK(f.store->counts().values == 3);
    REQUIRE(quarantined->size() == 1);
    CHECK(quarantined->at(0).where.key == node_key(p.alice));
    CHECK(quarantined->at(0).reason == "signature does not verify");
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("quarantined") != std::string::npos);
    // Every answer the client checks now verifies, with the certificates the peer attaches.
    const auto certs = f.store->signer_certificates(pr::message_body{ans});
    for (const auto& sd : ans.kind_responses[0].values) {
      CHECK(cr::verify_stored_data(sd, res, k_generic, certs, f.trust, f.t0).has_value());
    }
  }
  SUBCASE("dictionary, by key: the damaged one reads as absent") {
    const auto ans =
        f.get(fetch_req(res, {dict_spec(k_generic, {node_key(p.alice), node_key(p.bob)})}));
    CHECK(texts(ans.kind_responses.at(0)) == std::vector<std::string>{"-", "bob-good"});
  }
  SUBCASE("array: a hole where the damaged entry was") {
    const auto ans = f.get(fetch_req(user, {array_spec(k_array, {{0, 1}})}));
    CHECK(texts(ans.kind_responses.at(0)) == std::vector<std::string>{"-", "entry-one"});
    CHECK(f.store->counts().quarantined == 1);
  }
  SUBCASE("stat and export_range leave it out too") {
    auto stat = f.store->stat(pr::stat_req{res, {dict_spec(k_generic, {})}}, f.t0);
    REQUIRE(std::holds_alternative<pr::stat_ans>(stat));
    CHECK(std::get<pr::stat_ans>(stat).kind_responses.at(0).values.size() == 1);
    const auto reqs = f.store->export_range(nid(places[1]), nid(places[1]), f.t0);
    std::size_t exported = 0;
    for (const auto& r : reqs) {
      for (const auto& kd : r.kind_data) exported += kd.values.size();
    }
    CHECK(exported == 2);  // bob's entry and entry-one
    CHECK(f.store->counts().quarantined == 2);
  }
  SUBCASE("a new Store of the damaged key is taken") {
    CHECK(error_of(f.put(
              p.alice,
              store_req(res, {kind_data(k_generic,
                                        {make_value(p.alice, res, k_generic,
                                                    dict(node_key(p.alice), "again"), f.ms(1s))})}),
              1s)) == 0);
    const auto ans = f.get(fetch_req(res, {dict_spec(k_generic, {})}), 1s);
    CHECK(texts(ans.kind_responses.at(0)) == std::vector<std::string>{"again", "bob-good"});
  }
  SUBCASE("warnings are rate-limited") {
    (void)f.get(fetch_req(res, {dict_spec(k_generic, {})}));
    (void)f.get(fetch_req(user, {array_spec(k_array, {{0, 1}})}), 1s);
    CHECK(warnings.size() == 1);
    CHECK(f.store->counts().quarantined == 2);
  }
}

TEST_CASE("a stored value whose certificate expired meanwhile is withheld, not quarantined") {
  const pki& p = pki::get();
  const auto res = rid(places[0]);
  auto first = std::make_unique<recording_backend>();
  auto written = first->state;
  {
    store_fixture f(std::move(first));
    CHECK(error_of(f.put(
              p.bob, store_req(res, {kind_data(k_generic, {make_value(p.bob, res, k_generic,
                                                                      dict(node_key(p.bob), "b"),
                                                                      f.ms(), 0xFFFFFFFF)})}))) ==
          0);
  }
  store_fixture f(std::make_unique<recording_backend>(*written));
  // The test certificates are valid for 30 days.
  const auto late =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::hours(24 * 40));
  CHECK(
      f.get(fetch_req(res, {dict_spec(k_generic, {})}), late).kind_responses.at(0).values.empty());
  CHECK(f.store->counts().withheld == 1);
  CHECK(f.store->counts().quarantined == 0);
  CHECK(f.store->counts().values == 1);
  // Checked again each time: with the clock back in the validity period it is served.
  CHECK(f.get(fetch_req(res, {dict_spec(k_generic, {})})).kind_responses.at(0).values.size() == 1);
}

TEST_CASE("sqlite: a byte flipped in the file hides only that value, and the store reopens") {
  temp_dir dir;
  const pki& p = pki::get();
  const auto res = rid(places[0]);
  {
    opener o;
    auto backend = o.open(dir.path, p.alice);
    REQUIRE(backend.has_value());
    store_fixture f(std::move(*backend));
    for (const auto* id : {&p.alice, &p.bob}) {
      const std::string text = id == &p.alice ? "alice-file" : "bob-file";
      CHECK(error_of(f.put(
                *id, store_req(res, {kind_data(k_generic, {make_value(*id, res, k_generic,
                                                                      dict(node_key(*id), text),
                                                                      f.ms())})}))) == 0);
    }
  }
  CHECK(flip_bytes(dir.path / ps::sqlite_file_name, "alice-file") >= 1);
  {
    opener o;
    auto backend = o.open(dir.path, p.alice);
    REQUIRE_MESSAGE(backend.has_value(), backend.error().message);
    store_fixture f(std::move(*backend));
    const auto ans = f.get(fetch_req(res, {dict_spec(k_generic, {})}));
    CHECK(texts(ans.kind_responses.at(0)) == std::vector<std::string>{"bob-file"});
    CHECK(f.store->counts().quarantined == 1);
  }
  // The quarantine lowered the manifest first: no false alarm, and the value stays aside.
  CHECK(manifest_min_values(dir.path) == 1);
  {
    opener o;
    auto backend = o.open(dir.path, p.alice);
    REQUIRE_MESSAGE(backend.has_value(), backend.error().message);
    store_fixture f(std::move(*backend));
    CHECK(f.store->counts().values == 1);
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2((dir.path / ps::sqlite_file_name).c_str(), &db, SQLITE_OPEN_READONLY,
                          nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT reason FROM quarantined_values", -1, &st, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) ==
        "signature does not verify");
  CHECK(sqlite3_step(st) == SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_CASE("vetting loaded values: cost per value") {
  // 3 writers x 300 resources = 900 values loaded, then every one fetched once.
  const pki& p = pki::get();
  auto first = std::make_unique<recording_backend>();
  auto written = first->state;
  std::vector<pr::resource_id> resources;
  {
    store_fixture f(std::move(first));
    for (int i = 0; i < 300; ++i) {
      pr::resource_id r;
      r.value.assign(16, 0);
      r.value[0] = static_cast<std::uint8_t>(i >> 8);
      r.value[1] = static_cast<std::uint8_t>(i);
      resources.push_back(r);
      for (const auto* id : {&p.alice, &p.bob, &p.carol}) {
        CHECK(error_of(f.put(
                  *id, store_req(r, {kind_data(k_generic, {make_value(*id, r, k_generic,
                                                                      dict(node_key(*id), "v"),
                                                                      f.ms())})}))) == 0);
      }
    }
  }
  store_fixture f(std::make_unique<recording_backend>(*written));
  const auto start = std::chrono::steady_clock::now();
  for (const auto& r : resources) (void)f.get(fetch_req(r, {dict_spec(k_generic, {})}));
  const auto first_pass = std::chrono::steady_clock::now() - start;
  const auto again = std::chrono::steady_clock::now();
  for (const auto& r : resources) (void)f.get(fetch_req(r, {dict_spec(k_generic, {})}));
  const auto second_pass = std::chrono::steady_clock::now() - again;
  CHECK(f.store->counts().quarantined == 0);
  const auto us = [](auto d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  };
  MESSAGE("900 values: first fetch of each (verifies) ", us(first_pass) / 900,
          " us/value; later fetches ", us(second_pass) / 900, " us/value");
}

}  // namespace p2psip::peer_storage_test
