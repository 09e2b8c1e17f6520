// The SQLite backend: one database file in the data directory, WAL mode, synchronous=FULL, one
// transaction per change set (see storage_backend.hpp for the durability policy).
#include <sqlite3.h>

#include <limits>
#include <string>
#include <system_error>

#include "p2psip/peer/storage_backend.hpp"

namespace p2psip::peer {

namespace {

/// The schema this code writes. Version 1:
///   stored_values(resource BLOB, kind INTEGER, key BLOB, stored_data BLOB, received_ms INTEGER,
///                 signer_certificate BLOB), primary key (resource, kind, key)
///   generations(resource BLOB, kind INTEGER, generation INTEGER), primary key (resource, kind)
/// generation holds the uint64 counter's bits as a signed 64-bit integer.
constexpr int schema_version = 1;

constexpr const char* schema_sql =
    "CREATE TABLE IF NOT EXISTS stored_values ("
    " resource BLOB NOT NULL, kind INTEGER NOT NULL, key BLOB NOT NULL,"
    " stored_data BLOB NOT NULL, received_ms INTEGER NOT NULL, signer_certificate BLOB NOT NULL,"
    " PRIMARY KEY (resource, kind, key)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS generations ("
    " resource BLOB NOT NULL, kind INTEGER NOT NULL, generation INTEGER NOT NULL,"
    " PRIMARY KEY (resource, kind)) WITHOUT ROWID;";

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
  sqlite_backend(sqlite3* db, std::string file) : db_(db), file_(std::move(file)) {}
  ~sqlite_backend() override {
    put_value_ = {};
    erase_value_ = {};
    put_generation_ = {};
    erase_generation_ = {};
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

  /// Everything open_sqlite_backend does after sqlite3_open_v2.
  storage_result<void> initialize() {
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
    if (version < schema_version) {
      if (version != 0) {
        return error(storage_errc::corrupt, SQLITE_OK,
                     "unknown schema version " + std::to_string(version));
      }
      if (auto r = exec("BEGIN IMMEDIATE", storage_errc::write_failed, "cannot create the schema");
          !r) {
        return r;
      }
      rc = sqlite3_exec(db_, schema_sql, nullptr, nullptr, nullptr);
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
    if (auto r = read_all(); !r) return r;
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
    };
    for (const auto& s : statements) {
      rc = s.st->prepare(db_, s.sql);
      if (rc != SQLITE_OK) return error(storage_errc::corrupt, rc, "unexpected schema");
    }
    return {};
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
    const auto run = [&](const statement& s, auto&& bind) {
      if (rc != SQLITE_OK) return;
      sqlite3_stmt* st = s.get();
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
      rc = bind(st);
      if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) rc = SQLITE_OK;
      }
      sqlite3_reset(st);
    };
    for (const auto& v : changes.put_values) {
      run(put_value_, [&](sqlite3_stmt* st) {
        int r = bind_blob(st, 1, v.resource.value);
        if (r == SQLITE_OK) r = sqlite3_bind_int64(st, 2, v.kind);
        if (r == SQLITE_OK) r = bind_blob(st, 3, v.key);
        if (r == SQLITE_OK) r = bind_blob(st, 4, v.stored_data);
        if (r == SQLITE_OK) r = sqlite3_bind_int64(st, 5, v.received_ms);
        if (r == SQLITE_OK) r = bind_blob(st, 6, v.signer_certificate);
        return r;
      });
    }
    for (const auto& e : changes.erase_values) {
      run(erase_value_, [&](sqlite3_stmt* st) {
        int r = bind_blob(st, 1, e.resource.value);
        if (r == SQLITE_OK) r = sqlite3_bind_int64(st, 2, e.kind);
        if (r == SQLITE_OK) r = bind_blob(st, 3, e.key);
        return r;
      });
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
    if (rc == SQLITE_OK) rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      const auto err = error(storage_errc::write_failed, rc, "transaction failed");
      if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return err;
    }
    return {};
  }

  std::string describe() const override { return "sqlite " + file_; }

 private:
  sqlite3* db_;
  std::string file_;
  stored_state initial_;
  statement put_value_, erase_value_, put_generation_, erase_generation_;
};

}  // namespace

storage_result<std::unique_ptr<storage_backend>> open_sqlite_backend(
    const std::filesystem::path& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return protocol::error_record{
        make_error_code(storage_errc::cannot_open),
        data_dir.string() + ": cannot create the data directory: " + ec.message()};
  }
  const std::string file = (data_dir / sqlite_file_name).string();
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = file + ": cannot open: " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return protocol::error_record{make_error_code(classify(rc, storage_errc::cannot_open)),
                                  std::move(msg)};
  }
  auto backend = std::make_unique<sqlite_backend>(db, file);
  if (auto r = backend->initialize(); !r) return r.error();
  return std::unique_ptr<storage_backend>(std::move(backend));
}

}  // namespace p2psip::peer
