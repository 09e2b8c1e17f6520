#pragma once
// The SIP users file: who may REGISTER with the peer's registrar, the digest HA1 values that
// authenticate them (RFC 3261 22, RFC 8760), and the RELOAD credentials the peer signs their
// SIP-REGISTRATION with. p2psip-admin writes it, the peer reads it.
//
// The file is JSON an admin can read and diff, one object per user, written atomically with mode
// 0600. It never holds a password; an HA1 is a password equivalent within its realm, so a file
// readable by others is refused as ssh refuses such a key file.
//
//   {
//     "version": 1,
//     "users": [
//       {
//         "aor": "sip:alice@overlay.example",
//         "username": "alice",
//         "realm": "overlay.example",
//         "ha1_md5": "<32 hex digits>",
//         "ha1_sha256": "<64 hex digits>",
//         "certificate": "/etc/p2psip/users/alice@overlay.example.crt",
//         "private_key": "/etc/p2psip/users/alice@overlay.example.key"
//       }
//     ]
//   }

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/result.hpp"
#include "p2psip/sip/uri.hpp"

namespace p2psip::peer {

/// One user of the registrar.
struct sip_user {
  std::string aor;       ///< "sip:alice@overlay.example": no password, port, parameters or headers
  std::string username;  ///< the digest user name: the AOR's user part (escapes resolved)
  std::string realm;     ///< the digest realm: the overlay's name
  std::string ha1_md5;   ///< H(username:realm:password), MD5, 32 lower-case hex digits
  std::string ha1_sha256;             ///< the same with SHA-256, 64 lower-case hex digits
  std::filesystem::path certificate;  ///< the user's RELOAD certificates (PEM), absolute path
  std::filesystem::path private_key;  ///< their private keys (PEM, mode 0600), absolute path
  bool operator==(const sip_user&) const = default;
};

/// Why a users file could not be used.
enum class sip_users_errc {
  ok = 0,
  cannot_read = 1,  ///< the file cannot be opened, examined or read, or is too large
  too_open,         ///< the file's mode lets others than its owner read or write it
  malformed,        ///< not JSON, or not the file's structure (version, users array)
  bad_entry,        ///< a user with a missing, unknown or invalid field
  duplicate,        ///< two users with the same AOR, or the same user name in one realm
  cannot_write,     ///< the file (or its temporary file) cannot be written or moved into place
};
const std::error_category& sip_users_category() noexcept;
std::error_code make_error_code(sip_users_errc e) noexcept;

/// A value, or an error_record with a sip_users_errc code and a message naming the file and the
/// problem: "/etc/p2psip/sip-users.json: users[1].ha1_md5: expected 32 hex digits, found 31".
template <class T>
using sip_users_result = protocol::result<T, protocol::error_record>;

/// The largest users file read (a file is read whole).
inline constexpr std::size_t max_sip_users_file = std::size_t{16} << 20;
/// The file's format version written and the highest one read.
inline constexpr int sip_users_version = 1;

/// The registrar's canonical form of an AOR (RFC 3261 10.3 step 5): "user@host" with the user
/// part's escapes resolved (compared case-sensitively) and the host lower-cased; URI parameters
/// and headers are dropped. nullopt unless a sip or sips URI (the two schemes name the same user)
/// with a user part and no password or port.
std::optional<std::string> canonical_aor(const sip::uri& aor);
std::optional<std::string> canonical_aor(std::string_view aor);

/// Checks one user as the file requires (everything the field comments above promise). Errors
/// name the field: "aor: 'x' is not a sip: URI with a user part". Code bad_entry.
sip_users_result<void> validate_sip_user(const sip_user& user);

/// Reads and checks a users file: the mode first (refused when wider than 0600, without reading),
/// then the JSON, every user (validate_sip_user) and duplicates. Unknown fields are refused
/// (a typo must not silently drop a user's hash).
sip_users_result<std::vector<sip_user>> load_sip_users(const std::filesystem::path& path);
/// The checks of load_sip_users on a file's text (its JSON, every user, duplicates); `file` names
/// it in the messages.
sip_users_result<std::vector<sip_user>> parse_sip_users(std::string_view text,
                                                        const std::string& file);

/// Checks `users` as load_sip_users would, then writes them to a temporary file in the same
/// directory (mode 0600, synced) and renames it over `path`: a reader sees the old file or the new
/// one, never a part. The order of `users` is kept.
sip_users_result<void> save_sip_users(const std::filesystem::path& path,
                                      const std::vector<sip_user>& users);

/// The file's text for `users` (what save_sip_users writes), without checking them.
std::string format_sip_users(const std::vector<sip_user>& users);

/// Finds users by digest identity and by AOR. Immutable after construction; const methods may be
/// called from any thread. Returned pointers live as long as the directory.
class sip_user_directory {
 public:
  sip_user_directory() = default;
  /// Users as load_sip_users returns them. Should two share an AOR or a (username, realm), the
  /// first is found; a user whose AOR does not parse is found by username only.
  explicit sip_user_directory(std::vector<sip_user> users);

  /// The user with this digest user name in this realm (both compared exactly), or null.
  const sip_user* find(std::string_view username, std::string_view realm) const;
  /// The user whose AOR equals `aor` under canonical_aor (sip and sips alike, user part
  /// case-sensitive after unescaping, host case-insensitive, parameters ignored), or null.
  const sip_user* find_aor(std::string_view aor) const;
  const sip_user* find_aor(const sip::uri& aor) const;

  const std::vector<sip_user>& users() const noexcept { return users_; }
  std::size_t size() const noexcept { return users_.size(); }

 private:
  std::vector<sip_user> users_;
  std::unordered_map<std::string, std::size_t> by_identity_;  // realm '\0' username
  std::unordered_map<std::string, std::size_t> by_aor_;       // canonical_aor
};

}  // namespace p2psip::peer

template <>
struct std::is_error_code_enum<p2psip::peer::sip_users_errc> : std::true_type {};
