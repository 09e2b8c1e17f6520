#pragma once
// Where p2psip-client finds its configuration and credentials when the command line does not
// say: the environment (P2PSIP_CONFIG, P2PSIP_CERT, P2PSIP_KEY, P2PSIP_PEER), then the per-user
// file `p2psip-client setup` writes, $XDG_CONFIG_HOME/p2psip/client.conf (default
// ~/.config/p2psip/client.conf). Options beat the environment, which beats the file.
//
// The file: one "key = value" per line (config, cert, key, overlay; peer repeatable), '#' starts
// a comment line, blank lines are ignored; a relative path is relative to the file's directory.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace p2psip::client_cli {

/// The defaults of one source (the file, or the environment); unset fields are empty.
struct client_defaults {
  std::string config;
  std::string cert;
  std::string key;
  std::string overlay;
  std::vector<std::string> peers;
  friend bool operator==(const client_defaults&, const client_defaults&) = default;
};

/// The per-user file's path; empty when neither XDG_CONFIG_HOME nor HOME is set.
std::filesystem::path defaults_file_path();

/// The file's defaults (none when it does not exist), or an error naming the file and line.
std::variant<client_defaults, std::string> read_defaults_file(const std::filesystem::path& file);

/// The text of such a file (`file` names it in errors; relative paths are made relative to its
/// directory). Never throws; a line it cannot take is an error naming `file` and the line.
std::variant<client_defaults, std::string> parse_defaults(std::string_view text,
                                                          const std::filesystem::path& file);
/// The file's text for `d`: a comment, then one line per set field (empty ones left out).
std::string format_defaults(const client_defaults& d);

/// Writes `d` (absolute paths) to `file`, creating its directory, atomically (a temporary file
/// renamed over it). Returns an error message, or empty on success.
std::string write_defaults_file(const std::filesystem::path& file, const client_defaults& d);

/// P2PSIP_CONFIG, P2PSIP_CERT, P2PSIP_KEY, P2PSIP_OVERLAY and P2PSIP_PEER (peers separated by
/// commas or spaces).
client_defaults defaults_from_environment();

}  // namespace p2psip::client_cli
