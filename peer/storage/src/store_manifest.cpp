// The store manifest: see store_manifest.hpp and storage_backend.hpp ("Store identity").
#include "store_manifest.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <botan/auto_rng.h>
#include <botan/hex.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace p2psip::peer::detail {

namespace {

namespace fs = std::filesystem;

/// First line of the file: names the format so that a later version can change it.
constexpr const char* manifest_format = "p2psip-store-manifest 1";

protocol::error_record manifest_error(storage_errc code, const fs::path& file,
                                      const std::string& what) {
  return {make_error_code(code), file.string() + ": " + what};
}

bool is_hex(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

/// write(2) until done; false with errno on failure.
bool write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::string state_text(database_facts::state s) {
  switch (s) {
    case database_facts::state::missing: return "missing";
    case database_facts::state::empty: return "empty (0 bytes)";
    case database_facts::state::fresh: return "a new database without a store";
    case database_facts::state::legacy: return "a store without an identity";
    case database_facts::state::identified: return "a store";
  }
  return "?";
}

}  // namespace

storage_result<std::optional<store_manifest>> read_manifest(const fs::path& data_dir) {
  const fs::path file = data_dir / manifest_file_name;
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    if (ec) return manifest_error(storage_errc::cannot_open, file, ec.message());
    return std::optional<store_manifest>{};
  }
  std::ifstream in(file);
  if (!in) return manifest_error(storage_errc::store_changed, file, "cannot read the manifest");
  std::string line;
  if (!std::getline(in, line) || line != manifest_format) {
    return manifest_error(
        storage_errc::store_changed, file,
        "not a store manifest (first line is not '" + std::string(manifest_format) + "')");
  }
  store_manifest m;
  bool have_id = false, have_node = false, have_count = false;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, value, extra;
    fields >> name >> value;
    if (name.empty() || value.empty() || (fields >> extra)) {
      return manifest_error(storage_errc::store_changed, file, "malformed line '" + line + "'");
    }
    if (name == "store-id" && value.size() == 32 && is_hex(value)) {
      m.store_id = value;
      have_id = true;
    } else if (name == "node-id" && (value == "-" || is_hex(value))) {
      m.node_id = value == "-" ? std::string{} : value;
      have_node = true;
    } else if (name == "min-values" && value.find_first_not_of("0123456789") == std::string::npos &&
               value.size() <= 19) {
      m.min_values = std::stoull(value);
      have_count = true;
    } else {
      return manifest_error(storage_errc::store_changed, file, "malformed line '" + line + "'");
    }
  }
  if (!have_id || !have_node || !have_count) {
    return manifest_error(storage_errc::store_changed, file,
                          "incomplete manifest (store-id, node-id and min-values are required)");
  }
  return std::optional<store_manifest>(std::move(m));
}

storage_result<void> write_manifest(const fs::path& data_dir, const store_manifest& manifest) {
  const fs::path file = data_dir / manifest_file_name;
  const fs::path temp = data_dir / (std::string(manifest_file_name) + ".tmp");
  std::string text = std::string(manifest_format) + "\n";
  text += "# Written by p2psip-peer beside " + std::string(sqlite_file_name) +
          "; checked at start (README: store integrity).\n";
  text += "store-id " + manifest.store_id + "\n";
  text += "node-id " + (manifest.node_id.empty() ? std::string("-") : manifest.node_id) + "\n";
  text += "min-values " + std::to_string(manifest.min_values) + "\n";
  const auto failed = [&](const char* step) {
    const std::string why = std::strerror(errno);
    return manifest_error(storage_errc::write_failed, file,
                          std::string("cannot write the manifest (") + step + "): " + why);
  };
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return failed("open");
  if (!write_all(fd, text) || ::fsync(fd) != 0) {
    const auto err = failed("write");
    ::close(fd);
    ::unlink(temp.c_str());
    return err;
  }
  if (::close(fd) != 0) return failed("close");
  if (::rename(temp.c_str(), file.c_str()) != 0) return failed("rename");
  // The rename is durable only once the directory is.
  const int dir = ::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return failed("open directory");
  const int synced = ::fsync(dir);
  ::close(dir);
  if (synced != 0) return failed("fsync directory");
  return {};
}

std::optional<std::string> store_change(const std::optional<store_manifest>& manifest,
                                        const database_facts& db,
                                        const std::optional<protocol::node_id>& owner,
                                        const std::string& db_file,
                                        const std::string& manifest_file) {
  using state = database_facts::state;
  const std::string owner_hex = owner ? owner->hex() : std::string{};
  // A database that says whose it is must be ours, manifest or not (a data directory copied
  // from another node without its manifest).
  if (db.found == state::identified && owner && !db.node_id.empty() && db.node_id != owner_hex) {
    return db_file + ": the store belongs to Node-ID " + db.node_id + ", not to this node (" +
           owner_hex + ")";
  }
  if (!manifest) return std::nullopt;
  const store_manifest& m = *manifest;
  const std::string recorded = manifest_file + " records store " + m.store_id;
  if (db.found == state::missing || db.found == state::empty || db.found == state::fresh) {
    if (m.min_values == 0) return std::nullopt;  // nothing that was recorded is lost
    return db_file + " is " + state_text(db.found) + ", but " + recorded + " with at least " +
           std::to_string(m.min_values) + " values: the data file was lost or replaced";
  }
  if (db.found == state::legacy) {
    return db_file + " is " + state_text(db.found) + ", but " + recorded +
           ": the data file was replaced";
  }
  if (db.store_id != m.store_id) {
    return db_file + " is store " + db.store_id + ", but " + recorded +
           ": the data file was replaced";
  }
  if (owner && !m.node_id.empty() && m.node_id != owner_hex) {
    return manifest_file + ": the data directory belongs to Node-ID " + m.node_id +
           ", not to this node (" + owner_hex + ")";
  }
  if (db.rows < m.min_values) {
    return db_file + " holds " + std::to_string(db.rows) + " values, but " + recorded +
           " with never fewer than " + std::to_string(m.min_values) +
           ": values were lost (a truncated, rolled-back or damaged file)";
  }
  return std::nullopt;
}

std::string new_store_id() {
  Botan::AutoSeeded_RNG rng;
  std::uint8_t id[16];
  rng.randomize(id, sizeof id);
  return Botan::hex_encode(id, sizeof id, false);
}

}  // namespace p2psip::peer::detail
