#pragma once
// The store manifest beside the SQLite database (storage_backend.hpp, "Store identity"): reading
// and atomically writing the file, and the judgement of a database against it at open. Internal
// to p2psip::peer_storage.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "p2psip/peer/storage_backend.hpp"

namespace p2psip::peer::detail {

/// What the manifest records.
struct store_manifest {
  std::string store_id;          ///< 32 hex digits, the same as the database's store_meta row
  std::string node_id;           ///< hex; empty when the store was opened without an owner
  std::uint64_t min_values = 0;  ///< stored_values never has fewer rows while this manifest stands
  friend bool operator==(const store_manifest&, const store_manifest&) = default;
};

/// The manifest in `data_dir`: nullopt when there is none; an error (store_changed, naming the
/// file) when it exists but cannot be read or parsed.
storage_result<std::optional<store_manifest>> read_manifest(const std::filesystem::path& data_dir);

/// Writes the manifest atomically: a temporary file, fsync, rename over the old one, fsync of the
/// directory. Error: write_failed naming the file.
storage_result<void> write_manifest(const std::filesystem::path& data_dir,
                                    const store_manifest& manifest);

/// What open found in the database file.
struct database_facts {
  enum class state { missing, empty, fresh, legacy, identified };
  state found = state::fresh;  ///< missing: no file; empty: 0 bytes; fresh: no schema yet;
                               ///< legacy: schema 1 (before manifests); identified: has an id
  std::string store_id;        ///< when identified
  std::string node_id;         ///< when identified (may be empty: opened without an owner)
  std::uint64_t rows = 0;      ///< rows of stored_values
};

/// Why the database is not the store `manifest` records, or nullopt when it is (or there is no
/// manifest). `db_file` and `manifest_file` name the files in the message.
std::optional<std::string> store_change(const std::optional<store_manifest>& manifest,
                                        const database_facts& db,
                                        const std::optional<protocol::node_id>& owner,
                                        const std::string& db_file,
                                        const std::string& manifest_file);

/// 16 random bytes as 32 hex digits.
std::string new_store_id();

}  // namespace p2psip::peer::detail
