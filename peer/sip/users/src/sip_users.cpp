// The SIP users file: JSON through nlohmann-json, POSIX file handling (mode check on the open
// descriptor, atomic replace).

#include "p2psip/peer/sip_users.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace p2psip::peer {

namespace fs = std::filesystem;
namespace pr = p2psip::protocol;

namespace {

class sip_users_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "p2psip.sip_users"; }
  std::string message(int ev) const override {
    switch (static_cast<sip_users_errc>(ev)) {
      case sip_users_errc::ok: return "success";
      case sip_users_errc::cannot_read: return "the SIP users file cannot be read";
      case sip_users_errc::too_open: return "the SIP users file is readable by others";
      case sip_users_errc::malformed: return "the SIP users file is malformed";
      case sip_users_errc::bad_entry: return "a SIP user is invalid";
      case sip_users_errc::duplicate: return "a SIP user is listed twice";
      case sip_users_errc::cannot_write: return "the SIP users file cannot be written";
    }
    return "unknown SIP users error";
  }
};

pr::error_record failure(sip_users_errc code, std::string message) {
  return pr::error_record{make_error_code(code), std::move(message)};
}

pr::error_record errno_failure(sip_users_errc code, const fs::path& path, std::string_view what,
                               int err) {
  return failure(code, path.string() + ": " + std::string(what) + ": " + std::strerror(err));
}

// The fields of a user, in the order written.
constexpr std::array<std::string_view, 7> user_fields = {
    "aor", "username", "realm", "ha1_md5", "ha1_sha256", "certificate", "private_key"};

bool is_lower_hex(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

pr::error_record bad_entry(std::string message) {
  return failure(sip_users_errc::bad_entry, std::move(message));
}

sip_users_result<void> check_hex(std::string_view field, const std::string& value,
                                 std::size_t digits) {
  if (value.size() != digits) {
    return bad_entry(std::string(field) + ": expected " + std::to_string(digits) +
                     " hex digits, found " + std::to_string(value.size()));
  }
  if (!is_lower_hex(value)) {
    return bad_entry(std::string(field) + ": expected lower-case hex digits");
  }
  return {};
}

sip_users_result<void> check_path(std::string_view field, const fs::path& p) {
  if (p.empty()) return bad_entry(std::string(field) + ": empty");
  if (!p.is_absolute()) {
    return bad_entry(std::string(field) + ": '" + p.string() + "' is not an absolute path");
  }
  return {};
}

// realm '\0' username: '\0' is in neither (validate_sip_user refuses control characters).
std::string identity_key(std::string_view username, std::string_view realm) {
  std::string key(realm);
  key += '\0';
  key += username;
  return key;
}

// Users must be unique by canonical AOR and by (username, realm). Errors name the later entry.
sip_users_result<void> check_unique(const std::vector<sip_user>& users, std::string_view where) {
  std::unordered_map<std::string, std::size_t> aors;
  std::unordered_map<std::string, std::size_t> identities;
  for (std::size_t i = 0; i < users.size(); ++i) {
    const std::string at = std::string(where) + "users[" + std::to_string(i) + "]";
    const auto key = canonical_aor(users[i].aor);
    if (key) {
      const auto [it, fresh] = aors.emplace(*key, i);
      if (!fresh) {
        return failure(sip_users_errc::duplicate, at + ".aor: " + users[i].aor + " is also users[" +
                                                      std::to_string(it->second) + "]'s");
      }
    }
    const auto [it, fresh] = identities.emplace(identity_key(users[i].username, users[i].realm), i);
    if (!fresh) {
      return failure(sip_users_errc::duplicate,
                     at + ".username: '" + users[i].username + "' in realm '" + users[i].realm +
                         "' is also users[" + std::to_string(it->second) + "]'s");
    }
  }
  return {};
}

// A user from the JSON object `j` (already known to be an object).
sip_users_result<sip_user> user_from_json(const nlohmann::json& j) {
  for (const auto& [key, value] : j.items()) {
    if (std::find(user_fields.begin(), user_fields.end(), key) == user_fields.end()) {
      return bad_entry("unknown field \"" + key + "\"");
    }
    if (!value.is_string()) return bad_entry(key + ": expected a string");
  }
  sip_user u;
  std::array<std::string, user_fields.size()> text;
  for (std::size_t f = 0; f < user_fields.size(); ++f) {
    const auto it = j.find(std::string(user_fields[f]));
    if (it == j.end()) return bad_entry("no \"" + std::string(user_fields[f]) + "\"");
    text[f] = it->get<std::string>();
  }
  u.aor = std::move(text[0]);
  u.username = std::move(text[1]);
  u.realm = std::move(text[2]);
  u.ha1_md5 = std::move(text[3]);
  u.ha1_sha256 = std::move(text[4]);
  u.certificate = std::move(text[5]);
  u.private_key = std::move(text[6]);
  return u;
}

// The file's bytes, refusing a file that others may read or write before reading any of it. The
// mode is taken from the open descriptor, so the file checked is the file read.
sip_users_result<std::string> read_private_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_failure(sip_users_errc::cannot_read, path, "cannot open", errno);
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_fd{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return errno_failure(sip_users_errc::cannot_read, path, "cannot examine", errno);
  }
  if (!S_ISREG(st.st_mode))
    return failure(sip_users_errc::cannot_read, path.string() + ": not a file");
  const unsigned mode = static_cast<unsigned>(st.st_mode) & 07777u;
  if ((mode & ~0600u) != 0) {
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", mode);
    return failure(sip_users_errc::too_open,
                   path.string() + ": permissions " + octal +
                       " are too open: the file holds password hashes and must be readable by "
                       "its owner only (chmod 600 " +
                       path.string() + ")");
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_sip_users_file) {
    return failure(sip_users_errc::cannot_read, path.string() + ": larger than " +
                                                    std::to_string(max_sip_users_file) + " bytes");
  }
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_failure(sip_users_errc::cannot_read, path, "read failed", errno);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > max_sip_users_file) {
      return failure(
          sip_users_errc::cannot_read,
          path.string() + ": larger than " + std::to_string(max_sip_users_file) + " bytes");
    }
  }
  return text;
}

// nlohmann's messages start with "[json.exception.parse_error.101] ": the rest is for people.
std::string json_reason(const std::exception& e) {
  std::string what = e.what();
  if (what.starts_with("[json.exception.")) {
    const auto end = what.find("] ");
    if (end != std::string::npos) what.erase(0, end + 2);
  }
  return what;
}

}  // namespace

const std::error_category& sip_users_category() noexcept {
  static const sip_users_category_impl category;
  return category;
}

std::error_code make_error_code(sip_users_errc e) noexcept {
  return {static_cast<int>(e), sip_users_category()};
}

// ---- AORs ----

std::optional<std::string> canonical_aor(const sip::uri& aor) {
  if (!aor.is_sip() || aor.user.empty() || aor.password || aor.port || aor.host.empty()) {
    return std::nullopt;
  }
  std::string user = sip::unescape(aor.user);
  if (user.empty()) return std::nullopt;
  return user + "@" + lower(aor.host);
}

std::optional<std::string> canonical_aor(std::string_view aor) {
  const auto u = sip::parse_uri(aor);
  if (!u) return std::nullopt;
  return canonical_aor(*u);
}

sip_users_result<void> validate_sip_user(const sip_user& user) {
  const auto uri = sip::parse_uri(user.aor);
  if (!uri || !uri->is_sip() || uri->user.empty()) {
    return bad_entry("aor: '" + user.aor + "' is not a sip: URI with a user part");
  }
  if (uri->password || uri->port || !uri->params.empty() || !uri->headers.empty()) {
    return bad_entry("aor: '" + user.aor +
                     "' is not an address-of-record (no password, port, parameters or headers)");
  }
  const std::string user_part = sip::unescape(uri->user);
  if (user.username != user_part) {
    return bad_entry("username: '" + user.username + "' is not the AOR's user part '" + user_part +
                     "'");
  }
  if (user.realm.empty()) return bad_entry("realm: empty");
  for (const std::string* s : {&user.username, &user.realm}) {
    if (std::any_of(s->begin(), s->end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
      return bad_entry(std::string(s == &user.username ? "username" : "realm") +
                       ": holds a control character");
    }
  }
  if (auto ok = check_hex("ha1_md5", user.ha1_md5, 32); !ok) return ok;
  if (auto ok = check_hex("ha1_sha256", user.ha1_sha256, 64); !ok) return ok;
  if (auto ok = check_path("certificate", user.certificate); !ok) return ok;
  if (auto ok = check_path("private_key", user.private_key); !ok) return ok;
  return {};
}

// ---- the file ----

sip_users_result<std::vector<sip_user>> load_sip_users(const fs::path& path) {
  auto text = read_private_file(path);
  if (!text) return text.error();
  return parse_sip_users(*text, path.string());
}

sip_users_result<std::vector<sip_user>> parse_sip_users(std::string_view text,
                                                        const std::string& file) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return failure(sip_users_errc::malformed, file + ": not JSON: " + json_reason(e));
  }
  if (!doc.is_object()) {
    return failure(sip_users_errc::malformed,
                   file + ": expected an object with \"version\" and \"users\"");
  }
  for (const auto& [key, value] : doc.items()) {
    if (key != "version" && key != "users") {
      return failure(sip_users_errc::malformed, file + ": unknown field \"" + key + "\"");
    }
  }
  const auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer()) {
    return failure(sip_users_errc::malformed, file + ": no \"version\" number");
  }
  if (version->get<std::int64_t>() != sip_users_version) {
    return failure(sip_users_errc::malformed, file + ": version " + version->dump() +
                                                  " is not one this p2psip reads (" +
                                                  std::to_string(sip_users_version) + ")");
  }
  const auto list = doc.find("users");
  if (list == doc.end() || !list->is_array()) {
    return failure(sip_users_errc::malformed, file + ": no \"users\" array");
  }
  std::vector<sip_user> users;
  users.reserve(list->size());
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string at = file + ": users[" + std::to_string(i) + "]";
    const auto& j = (*list)[i];
    if (!j.is_object()) return bad_entry(at + ": expected an object");
    auto u = user_from_json(j);
    if (!u) return bad_entry(at + ": " + u.error().message);
    if (auto ok = validate_sip_user(*u); !ok) return bad_entry(at + "." + ok.error().message);
    users.push_back(std::move(*u));
  }
  if (auto ok = check_unique(users, file + ": "); !ok) return ok.error();
  return users;
}

std::string format_sip_users(const std::vector<sip_user>& users) {
  // ordered_json: fields in the documented order, so that diffs stay small and readable.
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& u : users) {
    nlohmann::ordered_json j;
    j["aor"] = u.aor;
    j["username"] = u.username;
    j["realm"] = u.realm;
    j["ha1_md5"] = u.ha1_md5;
    j["ha1_sha256"] = u.ha1_sha256;
    j["certificate"] = u.certificate.string();
    j["private_key"] = u.private_key.string();
    list.push_back(std::move(j));
  }
  nlohmann::ordered_json doc;
  doc["version"] = sip_users_version;
  doc["users"] = std::move(list);
  return doc.dump(2) + "\n";
}

sip_users_result<void> save_sip_users(const fs::path& path, const std::vector<sip_user>& users) {
  const std::string file = path.string();
  for (std::size_t i = 0; i < users.size(); ++i) {
    if (auto ok = validate_sip_user(users[i]); !ok) {
      return bad_entry(file + ": users[" + std::to_string(i) + "]." + ok.error().message);
    }
  }
  if (auto ok = check_unique(users, file + ": "); !ok) return ok.error();
  const std::string content = format_sip_users(users);

  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::string tmp = (dir / ("." + path.filename().string() + ".XXXXXX")).string();
  // mkstemp creates the file with mode 0600: the hashes are never readable by others, even
  // briefly.
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    return errno_failure(sip_users_errc::cannot_write, path, "cannot create a temporary file",
                         errno);
  }
  auto fail = [&](std::string_view what, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return errno_failure(sip_users_errc::cannot_write, path, what, err);
  };
  if (::fchmod(fd, 0600) != 0) return fail("cannot set the mode", errno);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write failed", errno);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("fsync failed", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return errno_failure(sip_users_errc::cannot_write, path, "close failed", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return errno_failure(sip_users_errc::cannot_write, path, "cannot move into place", err);
  }
  // The rename itself survives a crash once the directory is synced (best effort).
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

// ---- lookups ----

sip_user_directory::sip_user_directory(std::vector<sip_user> users) : users_(std::move(users)) {
  for (std::size_t i = 0; i < users_.size(); ++i) {
    by_identity_.emplace(identity_key(users_[i].username, users_[i].realm), i);
    if (const auto key = canonical_aor(users_[i].aor)) by_aor_.emplace(*key, i);
  }
}

const sip_user* sip_user_directory::find(std::string_view username, std::string_view realm) const {
  const auto it = by_identity_.find(identity_key(username, realm));
  return it == by_identity_.end() ? nullptr : &users_[it->second];
}

const sip_user* sip_user_directory::find_aor(std::string_view aor) const {
  const auto key = canonical_aor(aor);
  if (!key) return nullptr;
  const auto it = by_aor_.find(*key);
  return it == by_aor_.end() ? nullptr : &users_[it->second];
}

const sip_user* sip_user_directory::find_aor(const sip::uri& aor) const {
  const auto key = canonical_aor(aor);
  if (!key) return nullptr;
  const auto it = by_aor_.find(*key);
  return it == by_aor_.end() ? nullptr : &users_[it->second];
}

}  // namespace p2psip::peer
