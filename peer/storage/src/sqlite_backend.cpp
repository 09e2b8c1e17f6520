// The SQLite backend: one database file in the data directory, WAL mode, synchronous=FULL, one
// transaction per change set, and the store manifest beside it (see storage_backend.hpp for the
// durability policy and the store identity).
#include <sqlite3.h>

#include <chrono>
#include <limits>
#include <string>
#include <system_error>

#include "p2psip/peer/storage_backend.hpp"
#include "store_manifest.hpp"

namespace p2psip::peer {

namespace {

namespace fs = std::filesystem;
using detail::database_facts;
using detail::store_manifest;

/// The schema this code writes. Version 1:
///   stored_values(resource BLOB, kind INTEGER, key BLOB, stored_data BLOB, received_ms INTEGER,
///                 signer_certificate BLOB), primary key (resource, kind, key)
///   generations(resource BLOB, kind INTEGER, generation INTEGER), primary key (resource, kind)
/// generation holds the uint64 counter's bits as a signed 64-bit integer.
/// Version 2 adds (a version 1 file is upgraded in place at open):
///   store_meta(name TEXT, value TEXT): 'store-id' (32 hex digits, random, also in the manifest)
///     and 'node-id' (hex, the owner; absent when opened without one)
///   quarantined_values: the columns of stored_values plus reason TEXT and quarantined_ms, for
///     values moved aside because their stored bytes no longer verify (kept for the operator).
constexpr int schema_version = 2;

constexpr const char* schema_v1_sql =
    "CREATE TABLE IF NOT EXISTS stored_values ("
    " resource BLOB NOT NULL, kind INTEGER NOT NULL, key BLOB NOT NULL,"
    " stored_data BLOB NOT NULL, received_ms INTEGER NOT NULL, signer_certificate BLOB NOT NULL,"
    " PRIMARY KEY (resource, kind, key)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS generations ("
    " resource BLOB NOT NULL, kind INTEGER NOT NULL, generation INTEGER NOT NULL,"
    " PRIMARY KEY (resource, kind)) WITHOUT ROWID;";

constexpr const char* schema_v2_sql =
    "CREATE TABLE IF NOT EXISTS store_meta ("
    " name TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS quarantined_values ("
    " resource BLOB NOT NULL, kind INTEGER NOT NULL, key BLOB NOT NULL,"
    " stored_data BLOB NOT NULL, received_ms INTEGER NOT NULL, signer_certificate BLOB NOT NULL,"
    " reason TEXT NOT NULL, quarantined_ms INTEGER NOT NULL);";

/// When the manifest's lower bound is raised after commits (it is lowered before any commit
/// that would go below it, and set exactly at close): rows at twice the bound (so a small store
/// is recorded at once), this many rows above it, or this long after the last write.
constexpr std::uint64_t manifest_raise_rows = 1024;
constexpr std::chrono::seconds manifest_raise_interval{60};

storage_errc classify(int rc, storage_errc fallback) noexcept {
  switch (rc & 0xFF) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT: return storage_errc::corrupt;
    case SQLITE_READONLY:
    case SQLITE_PERM: return storage_errc::not_writable;
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:  // another process holds the exclusive lock
    case SQLITE_LOCKED: return storage_errc::cannot_open;
    default: return fallback;
  }
}

protocol::bytes blob_column(sqlite3_stmt* st, int col) {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(st, col));
  const int n = sqlite3_column_bytes(st, col);
  if (!p || n <= 0) return {};
  return protocol::bytes(p, p + n);
}

/// An owned prepared statement.
class statement {
 public:
  statement() = default;
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  statement(statement&& o) noexcept : st_(o.st_) { o.st_ = nullptr; }
  statement& operator=(statement&& o) noexcept {
    std::swap(st_, o.st_);
    return *this;
  }
  ~statement() { sqlite3_finalize(st_); }
  int prepare(sqlite3* db, const char* sql) {
    sqlite3_finalize(st_);
    st_ = nullptr;
    return sqlite3_prepare_v2(db, sql, -1, &st_, nullptr);
  }
  sqlite3_stmt* get() const noexcept { return st_; }

 private:
  sqlite3_stmt* st_ = nullptr;
};

int bind_blob(sqlite3_stmt* st, int index, const protocol::bytes& b) {
  // A zero-length blob must still be a blob (not NULL): give SQLite a valid pointer.
  static const std::uint8_t empty = 0;
  return sqlite3_bind_blob64(st, index, b.empty() ? &empty : b.data(), b.size(), SQLITE_TRANSIENT);
}

class sqlite_backend final : public storage_backend {
 public:
  sqlite_backend(sqlite3* db, std::string file, fs::path dir, sqlite_options options)
      : db_(db), file_(std::move(file)), dir_(std::move(dir)), options_(std::move(options)) {}
  ~sqlite_backend() override {
    // A clean close records the exact count (commits only raise the bound now and then).
    if (manifest_ready_ && rows_ != floor_) (void)set_manifest(rows_);
    put_value_ = {};
    erase_value_ = {};
    put_generation_ = {};
    erase_generation_ = {};
    value_exists_ = {};
    quarantine_value_ = {};
    sqlite3_close_v2(db_);
  }
  sqlite_backend(const sqlite_backend&) = delete;
  sqlite_backend& operator=(const sqlite_backend&) = delete;

  protocol::error_record error(storage_errc code, int rc, const std::string& what) const {
    std::string msg = file_ + ": " + what;
    if (rc != SQLITE_OK) {
      msg += ": ";
      msg += db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      if ((rc & 0xFF) == SQLITE_BUSY) msg += " (in use by another process?)";
    }
    return {make_error_code(classify(rc, code)), std::move(msg)};
  }

  storage_result<void> exec(const char* sql, storage_errc code, const char* what) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return error(code, rc, what);
    return {};
  }

  /// Everything open_sqlite_backend does after sqlite3_open_v2. `file_state`: missing, empty or
  /// fresh (a file with content) before the open.
  storage_result<void> initialize(database_facts::state file_state,
                                  const std::optional<store_manifest>& manifest) {
    sqlite3_extended_result_codes(db_, 1);
    if (sqlite3_db_readonly(db_, "main") == 1) {
      return error(storage_errc::not_writable, SQLITE_OK, "opened read-only");
    }
    // One peer per data directory: the lock is taken below and held until close (in exclusive
    // mode WAL needs no shared-memory file either).
    if (auto r = exec("PRAGMA locking_mode=EXCLUSIVE", storage_errc::cannot_open,
                      "cannot set exclusive locking");
        !r) {
      return r;
    }
    // The first statements read the header: a file that is not a database fails here.
    statement st;
    int rc = st.prepare(db_, "PRAGMA journal_mode=WAL");
    if (rc == SQLITE_OK) rc = sqlite3_step(st.get());
    if (rc != SQLITE_ROW) return error(storage_errc::corrupt, rc, "cannot read the database");
    const auto* mode = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
    if (!mode || std::string(mode) != "wal") {
      return error(storage_errc::not_writable, SQLITE_OK, "WAL mode refused");
    }
    st = {};
    const int locked = sqlite3_exec(db_, "BEGIN EXCLUSIVE; COMMIT", nullptr, nullptr, nullptr);
    if (locked != SQLITE_OK) {
      if ((locked & 0xFF) == SQLITE_BUSY || (locked & 0xFF) == SQLITE_LOCKED) {
        return error(storage_errc::cannot_open, locked, "in use by another process");
      }
      return error(storage_errc::corrupt, locked, "cannot lock the database");
    }
    if (auto r = exec("PRAGMA synchronous=FULL", storage_errc::cannot_open, "PRAGMA synchronous");
        !r) {
      return r;
    }
    rc = st.prepare(db_, "PRAGMA quick_check");
    if (rc == SQLITE_OK) rc = sqlite3_step(st.get());
    if (rc != SQLITE_ROW) return error(storage_errc::corrupt, rc, "integrity check failed");
    const auto* verdict = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
    if (!verdict || std::string(verdict) != "ok") {
      return error(storage_errc::corrupt, SQLITE_OK,
                   std::string("integrity check failed: ") + (verdict ? verdict : "?"));
    }
    st = {};
    rc = st.prepare(db_, "PRAGMA user_version");
    if (rc == SQLITE_OK) rc = sqlite3_step(st.get());
    if (rc != SQLITE_ROW) return error(storage_errc::corrupt, rc, "cannot read the schema version");
    const int version = sqlite3_column_int(st.get(), 0);
    st = {};
    if (version > schema_version) {
      return error(storage_errc::schema_too_new, SQLITE_OK,
                   "schema version " + std::to_string(version) + " is newer than ours (" +
                       std::to_string(schema_version) + ")");
    }
    if (version < 0) {
      return error(storage_errc::corrupt, SQLITE_OK,
                   "unknown schema version " + std::to_string(version));
    }
    database_facts facts;
    facts.found = file_state;
    if (version >= 1) {
      if (auto r = read_all(); !r) return r;
      facts.rows = initial_.values.size();
      facts.found = database_facts::state::legacy;
    }
    if (version == 2) {
      if (auto r = read_meta(facts); !r) return r;
      facts.found = database_facts::state::identified;
    }
    if (auto r = settle_identity(facts, manifest, version); !r) return r;
    const struct {
      statement* st;
      const char* sql;
    } statements[] = {
        {&put_value_,
         "INSERT OR REPLACE INTO stored_values (resource, kind, key, stored_data, received_ms,"
         " signer_certificate) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
        {&erase_value_, "DELETE FROM stored_values WHERE resource = ?1 AND kind = ?2 AND key = ?3"},
        {&put_generation_,
         "INSERT OR REPLACE INTO generations (resource, kind, generation) VALUES (?1, ?2, ?3)"},
        {&erase_generation_, "DELETE FROM generations WHERE resource = ?1 AND kind = ?2"},
        {&value_exists_,
         "SELECT 1 FROM stored_values WHERE resource = ?1 AND kind = ?2 AND key = ?3"},
        {&quarantine_value_,
         "INSERT INTO quarantined_values SELECT resource, kind, key, stored_data, received_ms,"
         " signer_certificate, ?4, ?5 FROM stored_values"
         " WHERE resource = ?1 AND kind = ?2 AND key = ?3"},
    };
    for (const auto& s : statements) {
      rc = s.st->prepare(db_, s.sql);
      if (rc != SQLITE_OK) return error(storage_errc::corrupt, rc, "unexpected schema");
    }
    return {};
  }

  /// The store identity and owner recorded in a version 2 database.
  storage_result<void> read_meta(database_facts& facts) {
    statement st;
    int rc = st.prepare(db_, "SELECT name, value FROM store_meta");
    if (rc != SQLITE_OK) return error(storage_errc::corrupt, rc, "cannot read the store identity");
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      const auto* name = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
      const auto* value = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 1));
      if (!name || !value) continue;
      if (std::string(name) == "store-id") facts.store_id = value;
      if (std::string(name) == "node-id") facts.node_id = value;
    }
    if (rc != SQLITE_DONE)
      return error(storage_errc::corrupt, rc, "cannot read the store identity");
    if (facts.store_id.empty()) return error(storage_errc::corrupt, SQLITE_OK, "no store identity");
    return {};
  }

  /// Judges the database against the manifest (refusing a changed store unless accepted), brings
  /// the schema to version 2 with the identity and owner, and writes the manifest.
  storage_result<void> settle_identity(const database_facts& facts,
                                       const std::optional<store_manifest>& manifest, int version) {
    using state = database_facts::state;
    const std::string manifest_file = (dir_ / manifest_file_name).string();
    const std::string owner_hex = options_.owner ? options_.owner->hex() : std::string{};
    if (auto reason = detail::store_change(manifest, facts, options_.owner, file_, manifest_file)) {
      if (!options_.accept_store_change) {
        return protocol::error_record{make_error_code(storage_errc::store_changed),
                                      std::move(*reason)};
      }
      note(true, "store change accepted: " + *reason + "; the store is taken as it is (" +
                     std::to_string(facts.rows) + " values) and the manifest rewritten");
    }
    store_id_ = facts.found == state::identified ? facts.store_id : detail::new_store_id();
    node_hex_ = options_.owner ? owner_hex : facts.node_id;
    const bool new_schema = version < schema_version;
    const bool new_owner = options_.owner && facts.node_id != owner_hex;
    if (new_schema || new_owner) {
      if (auto r = exec("BEGIN IMMEDIATE", storage_errc::write_failed, "cannot create the schema");
          !r) {
        return r;
      }
      int rc = SQLITE_OK;
      if (version == 0) rc = sqlite3_exec(db_, schema_v1_sql, nullptr, nullptr, nullptr);
      if (rc == SQLITE_OK) rc = sqlite3_exec(db_, schema_v2_sql, nullptr, nullptr, nullptr);
      const auto put_meta = [&](const char* name, const std::string& value) {
        if (rc != SQLITE_OK) return;
        statement st;
        rc = st.prepare(db_, "INSERT OR REPLACE INTO store_meta (name, value) VALUES (?1, ?2)");
        if (rc == SQLITE_OK) rc = sqlite3_bind_text(st.get(), 1, name, -1, SQLITE_TRANSIENT);
        if (rc == SQLITE_OK) {
          rc = sqlite3_bind_text(st.get(), 2, value.c_str(), -1, SQLITE_TRANSIENT);
        }
        if (rc == SQLITE_OK) rc = sqlite3_step(st.get());
        if (rc == SQLITE_DONE) rc = SQLITE_OK;
      };
      if (facts.found != state::identified) put_meta("store-id", store_id_);
      if (new_owner) put_meta("node-id", owner_hex);
      if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db_, ("PRAGMA user_version=" + std::to_string(schema_version)).c_str(),
                          nullptr, nullptr, nullptr);
      }
      if (rc == SQLITE_OK) rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
      if (rc != SQLITE_OK) {
        const auto err = error(storage_errc::write_failed, rc, "cannot create the schema");
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return err;
      }
    }
    rows_ = facts.rows;
    if (auto r = set_manifest(rows_); !r) return r;
    manifest_ready_ = true;
    if (!manifest) {
      if (facts.found == state::legacy) {
        note(false, "data directory from before store manifests: store " + store_id_ + " with " +
                        std::to_string(rows_) + " values recorded in " + manifest_file);
      } else if (facts.found == state::identified) {
        note(true, manifest_file + " was missing: written again for store " + store_id_ + " with " +
                       std::to_string(rows_) + " values");
      } else {
        note(false, "new store " + store_id_ + " in " + file_);
      }
    }
    return {};
  }

  /// Records `rows` as the manifest's lower bound.
  storage_result<void> set_manifest(std::uint64_t rows) {
    auto written = detail::write_manifest(dir_, store_manifest{store_id_, node_hex_, rows});
    if (!written) {
      if (!manifest_failing_) note(true, written.error().message);
      manifest_failing_ = true;
      return written;
    }
    manifest_failing_ = false;
    floor_ = rows;
    last_manifest_ = std::chrono::steady_clock::now();
    return {};
  }

  void note(bool warning, const std::string& text) const {
    if (options_.log) options_.log(warning, text);
  }

  storage_result<void> read_all() {
    statement st;
    int rc = st.prepare(db_,
                        "SELECT resource, kind, key, stored_data, received_ms, signer_certificate"
                        " FROM stored_values");
    if (rc != SQLITE_OK) return error(storage_errc::corrupt, rc, "cannot read stored values");
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      const sqlite3_int64 kind = sqlite3_column_int64(st.get(), 1);
      if (kind < 0 || kind > std::numeric_limits<std::uint32_t>::max()) {
        return error(storage_errc::corrupt, SQLITE_OK, "a stored value has an invalid kind");
      }
      value_record v;
      v.resource.value = blob_column(st.get(), 0);
      v.kind = static_cast<std::uint32_t>(kind);
      v.key = blob_column(st.get(), 2);
      v.stored_data = blob_column(st.get(), 3);
      v.received_ms = sqlite3_column_int64(st.get(), 4);
      v.signer_certificate = blob_column(st.get(), 5);
      initial_.values.push_back(std::move(v));
    }
    if (rc != SQLITE_DONE) return error(storage_errc::corrupt, rc, "cannot read stored values");
    rc = st.prepare(db_, "SELECT resource, kind, generation FROM generations");
    if (rc != SQLITE_OK) return error(storage_errc::corrupt, rc, "cannot read generations");
    while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
      const sqlite3_int64 kind = sqlite3_column_int64(st.get(), 1);
      if (kind < 0 || kind > std::numeric_limits<std::uint32_t>::max()) {
        return error(storage_errc::corrupt, SQLITE_OK, "a generation counter has an invalid kind");
      }
      generation_record g;
      g.resource.value = blob_column(st.get(), 0);
      g.kind = static_cast<std::uint32_t>(kind);
      g.generation = static_cast<std::uint64_t>(sqlite3_column_int64(st.get(), 2));
      initial_.generations.push_back(std::move(g));
    }
    if (rc != SQLITE_DONE) return error(storage_errc::corrupt, rc, "cannot read generations");
    return {};
  }

  stored_state load() override { return std::move(initial_); }

  storage_result<void> apply(const change_set& changes) override {
    if (changes.empty()) return {};
    if (auto r = exec("BEGIN IMMEDIATE", storage_errc::write_failed, "cannot begin a transaction");
        !r) {
      return r;
    }
    int rc = SQLITE_OK;
    std::uint64_t rows = rows_;  // stored_values rows once this transaction commits
    // Runs one statement; returns the rows it changed (a SELECT: 1 when it found a row).
    const auto run = [&](const statement& s, auto&& bind) -> std::uint64_t {
      if (rc != SQLITE_OK) return 0;
      sqlite3_stmt* st = s.get();
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      rc = bind(st);
      std::uint64_t changed = 0;
      if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
          rc = SQLITE_OK;
          changed = 1;
        } else if (rc == SQLITE_DONE) {
          rc = SQLITE_OK;
          // sqlite3_changes() keeps the count of the last INSERT, UPDATE or DELETE: a SELECT
          // that found nothing changed nothing.
          if (!sqlite3_stmt_readonly(st))
            changed = static_cast<std::uint64_t>(sqlite3_changes(db_));
        }
      }
      sqlite3_reset(st);
      return changed;
    };
    const auto bind_location = [](sqlite3_stmt* st, const protocol::resource_id& resource,
                                  std::uint32_t kind, const protocol::bytes& key) {
      int r = bind_blob(st, 1, resource.value);
      if (r == SQLITE_OK) r = sqlite3_bind_int64(st, 2, kind);
      if (r == SQLITE_OK) r = bind_blob(st, 3, key);
      return r;
    };
    for (const auto& q : changes.quarantine_values) {
      run(quarantine_value_, [&](sqlite3_stmt* st) {
        int r = bind_location(st, q.where.resource, q.where.kind, q.where.key);
        if (r == SQLITE_OK) r = sqlite3_bind_text(st, 4, q.reason.c_str(), -1, SQLITE_TRANSIENT);
        if (r == SQLITE_OK) r = sqlite3_bind_int64(st, 5, q.at_ms);
        return r;
      });
      rows -= std::min(rows, run(erase_value_, [&](sqlite3_stmt* st) {
                         return bind_location(st, q.where.resource, q.where.kind, q.where.key);
                       }));
    }
    for (const auto& v : changes.put_values) {
      // INSERT OR REPLACE changes one row either way: ask first whether it adds one.
      const bool present = run(value_exists_, [&](sqlite3_stmt* st) {
                             return bind_location(st, v.resource, v.kind, v.key);
                           }) > 0;
      run(put_value_, [&](sqlite3_stmt* st) {
        int r = bind_location(st, v.resource, v.kind, v.key);
        if (r == SQLITE_OK) r = bind_blob(st, 4, v.stored_data);
        if (r == SQLITE_OK) r = sqlite3_bind_int64(st, 5, v.received_ms);
        if (r == SQLITE_OK) r = bind_blob(st, 6, v.signer_certificate);
        return r;
      });
      if (!present && rc == SQLITE_OK) ++rows;
    }
    for (const auto& e : changes.erase_values) {
      rows -= std::min(rows, run(erase_value_, [&](sqlite3_stmt* st) {
                         return bind_location(st, e.resource, e.kind, e.key);
                       }));
    }
    for (const auto& g : changes.put_generations) {
      run(put_generation_, [&](sqlite3_stmt* st) {
        int r = bind_blob(st, 1, g.resource.value);
        if (r == SQLITE_OK) r = sqlite3_bind_int64(st, 2, g.kind);
        if (r == SQLITE_OK) r = sqlite3_bind_int64(st, 3, static_cast<sqlite3_int64>(g.generation));
        return r;
      });
    }
    for (const auto& e : changes.erase_generations) {
      run(erase_generation_, [&](sqlite3_stmt* st) {
        int r = bind_blob(st, 1, e.resource.value);
        if (r == SQLITE_OK) r = sqlite3_bind_int64(st, 2, e.kind);
        return r;
      });
    }
    // Below the manifest's bound: lower it before the commit, so that a crash in between leaves
    // the bound under the rows (never a false alarm). Cannot lower it: no commit either.
    if (rc == SQLITE_OK && manifest_ready_ && rows < floor_) {
      if (auto lowered = set_manifest(rows); !lowered) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return lowered;
      }
    }
    if (rc == SQLITE_OK) rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      const auto err = error(storage_errc::write_failed, rc, "transaction failed");
      if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return err;
    }
    rows_ = rows;
    raise_manifest();
    return {};
  }

  /// After a commit: raises the manifest's bound now and then (a failure is logged by
  /// set_manifest and retried at the next commit; the bound only stays lower).
  void raise_manifest() {
    if (!manifest_ready_ || rows_ <= floor_) return;
    const bool doubled = rows_ >= 2 * floor_;
    const bool many = rows_ - floor_ >= manifest_raise_rows;
    const bool stale = std::chrono::steady_clock::now() - last_manifest_ >= manifest_raise_interval;
    if (doubled || many || stale || manifest_failing_) (void)set_manifest(rows_);
  }

  std::string describe() const override { return "sqlite " + file_ + " store " + store_id_; }

 private:
  sqlite3* db_;
  std::string file_;
  fs::path dir_;
  sqlite_options options_;
  stored_state initial_;
  statement put_value_, erase_value_, put_generation_, erase_generation_, value_exists_,
      quarantine_value_;
  std::string store_id_;
  std::string node_hex_;
  std::uint64_t rows_ = 0;   ///< rows of stored_values
  std::uint64_t floor_ = 0;  ///< the manifest's min-values
  bool manifest_ready_ = false;
  bool manifest_failing_ = false;  ///< the last manifest write failed (logged once)
  std::chrono::steady_clock::time_point last_manifest_{};
};

}  // namespace

storage_result<std::unique_ptr<storage_backend>> open_sqlite_backend(
    const std::filesystem::path& data_dir, const sqlite_options& options) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return protocol::error_record{
        make_error_code(storage_errc::cannot_open),
        data_dir.string() + ": cannot create the data directory: " + ec.message()};
  }
  const std::string file = (data_dir / sqlite_file_name).string();
  auto manifest = detail::read_manifest(data_dir);
  if (!manifest) {
    if (!options.accept_store_change) return manifest.error();
    if (options.log) {
      options.log(true, "store change accepted: " + manifest.error().message +
                            "; the manifest is rewritten");
    }
    manifest = std::optional<detail::store_manifest>{};
  }
  // What the file was before SQLite touches it (opening creates a missing one).
  auto file_state = database_facts::state::fresh;
  if (const auto size = std::filesystem::file_size(file, ec); ec) {
    file_state = database_facts::state::missing;
  } else if (size == 0) {
    file_state = database_facts::state::empty;
  }
  ec.clear();
  // A lost database is refused before SQLite creates one: the file stays as it was found.
  if (file_state != database_facts::state::fresh && !options.accept_store_change) {
    database_facts facts;
    facts.found = file_state;
    if (auto reason = detail::store_change(*manifest, facts, options.owner, file,
                                           (data_dir / manifest_file_name).string())) {
      return protocol::error_record{make_error_code(storage_errc::store_changed),
                                    std::move(*reason)};
    }
  }
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = file + ": cannot open: " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return protocol::error_record{make_error_code(classify(rc, storage_errc::cannot_open)),
                                  std::move(msg)};
  }
  auto backend = std::make_unique<sqlite_backend>(db, file, data_dir, options);
  if (auto r = backend->initialize(file_state, *manifest); !r) return r.error();
  return std::unique_ptr<storage_backend>(std::move(backend));
}

}  // namespace p2psip::peer
