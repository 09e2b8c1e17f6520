#pragma once
// Where a peer's stored data persists. The data store (data_store.hpp) keeps everything it holds in
// memory and hands each change to a storage_backend as one change_set; the backend makes the change
// durable before apply() returns, so a Store is answered only once it would survive a crash.
//
// Durability (fsync) policy of the SQLite backend, quoted by the README:
//   The store is one SQLite file, <data-dir>/reload-store.sqlite3, in WAL mode with
//   `PRAGMA synchronous=FULL`. Every Store (all its kinds and values), every expiry sweep and
//   every range drop is one transaction; SQLite fsyncs the write-ahead log at each commit, and
//   apply() returns only after the commit. A StoreAns is therefore sent only for data that is on
//   stable storage: after a crash or power loss the peer reopens with every value it ever
//   acknowledged (minus those whose lifetime ran out meanwhile). Checkpoints (copying the WAL
//   into the main file) are SQLite's automatic ones and are fsynced too. The whole store is read
//   at open; the schema carries a version number (PRAGMA user_version). The database is opened
//   in exclusive locking mode: a second process (or backend) on the same data directory is
//   refused at open (cannot_open, "in use by another process").
//
// Store identity (the manifest), quoted by the README and docs/architecture.md:
//   A database file that silently went missing, was emptied or was swapped for another must not
//   start as an empty store. The database holds a random store identity and the Node-ID it
//   belongs to (table store_meta); beside it, <data-dir>/reload-store.manifest (written as temp
//   file + fsync + rename + directory fsync) holds the same identity, the Node-ID and
//   `min-values`: a number the stored_values table never goes below while the manifest stands.
//   It is a lower bound, not a snapshot: a change set that would leave fewer rows than it first
//   lowers the manifest (before its COMMIT; if that write fails, the change is rolled back), and
//   the manifest is raised lazily after commits (when the rows reach twice the bound, 1024 rows
//   above it, or 60 s after the last write with rows above it) and exactly at close. A kill -9 at
//   any point therefore leaves rows >= min-values, so a shortfall at open is never a false alarm.
//   Open refuses (store_changed) when the manifest exists and: it cannot be read; the database
//   is missing, empty or new while min-values > 0; the database has another identity or none
//   (replaced); the database or the manifest names another Node-ID; or the database holds fewer
//   rows than min-values (truncated or damaged). sqlite_options::accept_store_change takes the
//   database as it is instead (logged as a warning) and rewrites the manifest. No manifest: a
//   fresh directory or one from before manifests; the manifest is written and the store starts.
//
// Backends are not thread-safe; like the data store, one thread drives them.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::peer {

/// Why the store could not be opened, read or written.
enum class storage_errc {
  ok = 0,
  cannot_open = 1,  ///< the data directory or database file cannot be created or opened
  not_writable,     ///< the database opened read-only (file or directory permissions)
  corrupt,          ///< the file is not a database, fails its integrity check, or holds bad rows
  schema_too_new,   ///< written by a newer p2psip (schema version above ours)
  write_failed,     ///< a transaction could not be committed (disk full, I/O error)
  backend_failed,   ///< the backend failed earlier and refuses further changes
  load_failed,      ///< the rows read could not be taken into memory (the data store threw)
  store_changed,    ///< the database is not the store its manifest records (lost, replaced, ...)
};
const std::error_category& storage_category() noexcept;
std::error_code make_error_code(storage_errc e) noexcept;

/// A value, or a protocol::error_record with a storage_errc code and a message naming the file
/// and the cause: "/var/lib/p2psip/reload-store.sqlite3: file is not a database".
template <class T>
using storage_result = protocol::result<T, protocol::error_record>;

/// One stored value as it persists: where it is, its StoredData in wire form (the bytes received,
/// except that an appended array entry carries the index it was given), when it was received, and
/// the certificate that signed it (so that fetchers and replicas can be given it).
struct value_record {
  protocol::resource_id resource;
  std::uint32_t kind = 0;
  /// Where in the kind's data model: empty for a single value, the 4-byte big-endian index for an
  /// array entry, the key for a dictionary entry.
  protocol::bytes key;
  protocol::bytes stored_data;   ///< StoredData as encoded on the wire
  std::int64_t received_ms = 0;  ///< wall-clock ms since the Unix epoch when the Store arrived
  protocol::bytes signer_certificate;  ///< DER of the certificate that signed the value
  friend bool operator==(const value_record&, const value_record&) = default;
};

/// The generation counter of one (resource, kind).
struct generation_record {
  protocol::resource_id resource;
  std::uint32_t kind = 0;
  std::uint64_t generation = 0;
  friend bool operator==(const generation_record&, const generation_record&) = default;
};

/// Identifies a value (erase) or, with an empty key and `whole_kind`, a kind's counter.
struct value_location {
  protocol::resource_id resource;
  std::uint32_t kind = 0;
  protocol::bytes key;
  friend bool operator==(const value_location&, const value_location&) = default;
};

/// A stored value to be moved out of the served set and kept aside for inspection (its stored
/// bytes no longer verify).
struct quarantine_record {
  value_location where;
  std::string reason;      ///< why, for the operator ("signature does not verify")
  std::int64_t at_ms = 0;  ///< wall-clock ms since the Unix epoch
  friend bool operator==(const quarantine_record&, const quarantine_record&) = default;
};

/// Everything one operation changes; applied atomically.
struct change_set {
  std::vector<quarantine_record> quarantine_values;  ///< move aside (absent ones are ignored)
  std::vector<value_record> put_values;              ///< insert or replace
  std::vector<value_location> erase_values;          ///< remove (absent ones are ignored)
  std::vector<generation_record> put_generations;    ///< insert or replace
  std::vector<value_location> erase_generations;     ///< key ignored
  bool empty() const noexcept {
    return quarantine_values.empty() && put_values.empty() && erase_values.empty() &&
           put_generations.empty() && erase_generations.empty();
  }
};

/// Everything a backend holds, read once at start-up.
struct stored_state {
  std::vector<value_record> values;
  std::vector<generation_record> generations;
};

/// Persistence of the data store. The data store never reads back except through load().
class storage_backend {
 public:
  virtual ~storage_backend() = default;
  /// Everything stored (called once, by the data store's constructor).
  virtual stored_state load() = 0;
  /// Applies `changes` atomically: all or nothing; durable when it returns success.
  virtual storage_result<void> apply(const change_set& changes) = 0;
  /// A short description for logs ("memory", "sqlite /path/file").
  virtual std::string describe() const = 0;
};

/// Memory only: nothing survives the process (the peer's `--memory-store` flag, tests).
std::unique_ptr<storage_backend> make_memory_backend();

/// Name of the database file inside the data directory.
inline constexpr const char* sqlite_file_name = "reload-store.sqlite3";
/// Name of the store manifest beside it (see "Store identity" above).
inline constexpr const char* manifest_file_name = "reload-store.manifest";

/// How the SQLite backend checks that the database is the store it should be.
struct sqlite_options {
  /// The Node-ID the store belongs to: a database or manifest naming another one is refused.
  /// nullopt: not checked (and not recorded in a new store).
  std::optional<protocol::node_id> owner;
  /// Take the database as it is even when it is not the store the manifest records: the reason
  /// is logged as a warning and the manifest rewritten.
  bool accept_store_change = false;
  /// Receives what open and close decide about the manifest (warning = true: a WARN line).
  std::function<void(bool warning, std::string_view text)> log;
};

/// Opens (creating when absent) the SQLite store in `data_dir`, checks its integrity, schema
/// version and identity against the manifest, reads every row, and writes the manifest.
/// Errors: cannot_open, not_writable, corrupt, schema_too_new, store_changed, write_failed (the
/// manifest cannot be written); the message names the file.
storage_result<std::unique_ptr<storage_backend>> open_sqlite_backend(
    const std::filesystem::path& data_dir, const sqlite_options& options = {});

}  // namespace p2psip::peer

template <>
struct std::is_error_code_enum<p2psip::peer::storage_errc> : std::true_type {};
