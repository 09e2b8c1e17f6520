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

std::variant<client_defaults, std::string> read_defaults_file(const fs::path& file) {
  client_defaults d;
  if (file.empty()) return d;
  std::error_code ec;
  if (!fs::exists(file, ec)) return d;
  std::ifstream in(file);
  if (!in) return file.string() + ": cannot open for reading";
  const fs::path base = file.parent_path();
  const auto resolve = [&base](const std::string& v) {
    const fs::path p(v);
    return p.is_absolute() ? v : (base / p).lexically_normal().string();
  };
  std::string line;
  for (unsigned number = 1; std::getline(in, line); ++number) {
    const std::string text = trim(line);
    if (text.empty() || text.front() == '#') continue;
    const auto eq = text.find('=');
    const std::string where = file.string() + ":" + std::to_string(number);
    if (eq == std::string::npos) return where + ": expected KEY = VALUE";
    const std::string key = trim(std::string_view(text).substr(0, eq));
    const std::string value = trim(std::string_view(text).substr(eq + 1));
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
  if (in.bad()) return file.string() + ": read error";
  return d;
}

std::string write_defaults_file(const fs::path& file, const client_defaults& d) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) return file.parent_path().string() + ": cannot create: " + ec.message();
  std::ostringstream text;
  text << "# p2psip-client defaults, written by 'p2psip-client setup'. Options and the\n"
       << "# P2PSIP_CONFIG, P2PSIP_CERT, P2PSIP_KEY, P2PSIP_PEER variables override them.\n";
  text << "config = " << d.config << "\ncert = " << d.cert << "\nkey = " << d.key << "\n";
  if (!d.overlay.empty()) text << "overlay = " << d.overlay << "\n";
  for (const auto& p : d.peers) text << "peer = " << p << "\n";
  const fs::path temporary = file.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    if (!out) return temporary.string() + ": cannot open for writing";
    out << text.str();
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
