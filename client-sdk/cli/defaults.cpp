#include "defaults.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

namespace p2psip::client_cli {

namespace fs = std::filesystem;

namespace {

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return std::string(s.substr(first, last - first + 1));
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

}  // namespace

fs::path defaults_file_path() {
  if (const auto xdg = env("XDG_CONFIG_HOME"); !xdg.empty()) {
    return fs::path(xdg) / "p2psip" / "client.conf";
  }
  if (const auto home = env("HOME"); !home.empty()) {
    return fs::path(home) / ".config" / "p2psip" / "client.conf";
  }
  return {};
}

std::variant<client_defaults, std::string> parse_defaults(std::string_view text,
                                                          const fs::path& file) {
  client_defaults d;
  const fs::path base = file.parent_path();
  const auto resolve = [&base](const std::string& v) {
    const fs::path p(v);
    return p.is_absolute() ? v : (base / p).lexically_normal().string();
  };
  unsigned number = 0;
  while (!text.empty()) {
    ++number;
    const auto end = text.find('\n');
    const std::string line = trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty() || line.front() == '#') continue;
    const auto eq = line.find('=');
    const std::string where = file.string() + ":" + std::to_string(number);
    if (eq == std::string::npos) return where + ": expected KEY = VALUE";
    const std::string key = trim(std::string_view(line).substr(0, eq));
    const std::string value = trim(std::string_view(line).substr(eq + 1));
    if (value.empty()) return where + ": " + key + " has no value";
    if (key == "config") {
      d.config = resolve(value);
    } else if (key == "cert") {
      d.cert = resolve(value);
    } else if (key == "key") {
      d.key = resolve(value);
    } else if (key == "overlay") {
      d.overlay = value;
    } else if (key == "peer") {
      d.peers.push_back(value);
    } else {
      return where + ": unknown key '" + key + "' (config, cert, key, peer, overlay)";
    }
  }
  return d;
}

std::string format_defaults(const client_defaults& d) {
  std::ostringstream text;
  text << "# p2psip-client defaults, written by 'p2psip-client setup'. Options and the\n"
       << "# P2PSIP_CONFIG, P2PSIP_CERT, P2PSIP_KEY, P2PSIP_PEER variables override them.\n";
  for (const auto& [key, value] : {std::pair<const char*, const std::string&>{"config", d.config},
                                   {"cert", d.cert},
                                   {"key", d.key},
                                   {"overlay", d.overlay}}) {
    if (!value.empty()) text << key << " = " << value << "\n";
  }
  for (const auto& p : d.peers) text << "peer = " << p << "\n";
  return text.str();
}

std::variant<client_defaults, std::string> read_defaults_file(const fs::path& file) {
  if (file.empty()) return client_defaults{};
  std::error_code ec;
  if (!fs::exists(file, ec)) return client_defaults{};
  std::ifstream in(file, std::ios::binary);
  if (!in) return file.string() + ": cannot open for reading";
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return file.string() + ": read error";
  return parse_defaults(text.str(), file);
}

std::string write_defaults_file(const fs::path& file, const client_defaults& d) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) return file.parent_path().string() + ": cannot create: " + ec.message();
  const fs::path temporary = file.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    if (!out) return temporary.string() + ": cannot open for writing";
    out << format_defaults(d);
    out.flush();
    if (!out) {
      fs::remove(temporary, ec);
      return temporary.string() + ": write error";
    }
  }
  fs::rename(temporary, file, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    return file.string() + ": cannot write: " + ec.message();
  }
  return {};
}

client_defaults defaults_from_environment() {
  client_defaults d;
  d.config = env("P2PSIP_CONFIG");
  d.cert = env("P2PSIP_CERT");
  d.key = env("P2PSIP_KEY");
  d.overlay = env("P2PSIP_OVERLAY");
  std::string peers = env("P2PSIP_PEER");
  for (char& c : peers) {
    if (c == ',') c = ' ';
  }
  std::istringstream words(peers);
  for (std::string p; words >> p;) d.peers.push_back(p);
  return d;
}

}  // namespace p2psip::client_cli
