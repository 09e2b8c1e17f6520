#include "process_overlay.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace p2psip::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string find_tool(const std::string& name, const std::string& package) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/usr/local/sbin";
  std::istringstream dirs(path);
  std::string d;
  while (std::getline(dirs, d, ':')) {
    if (d.empty()) continue;
    const fs::path p = fs::path(d) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  throw std::runtime_error(name + " not found (Debian package " + package +
                           "; scripts/install-deps installs it)");
}

int free_tcp_udp_port() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);     // NOLINT
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);  // NOLINT
    const int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
    const bool ok = ::bind(udp, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;  // NOLINT
    ::close(udp);
    ::close(fd);
    if (ok) return ntohs(a.sin_port);
  }
  throw std::runtime_error("no free port on 127.0.0.1");
}

namespace {

/// KEY=VALUE of the last line containing " status " in `log` (empty if none).
std::string last_status_field(const std::string& log, const std::string& key) {
  const auto at = log.rfind(" status node=");
  if (at == std::string::npos) return {};
  const auto end = log.find('\n', at);
  std::istringstream line(log.substr(at, end == std::string::npos ? std::string::npos : end - at));
  std::string word;
  while (line >> word) {
    if (word.rfind(key + "=", 0) == 0) return word.substr(key.size() + 1);
  }
  return {};
}

std::string first_of_list(const std::string& list) {
  return list.substr(0, list.find(','));
}

}  // namespace

process_overlay::process_overlay(std::string peer_binary, std::string admin_binary,
                                 std::string overlay_name)
    : peer_binary_(std::move(peer_binary)),
      admin_binary_(std::move(admin_binary)),
      overlay_(std::move(overlay_name)) {
  std::string templ = (fs::temp_directory_path() / "p2psip-overlay.XXXXXX").string();
  if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  dir_ = templ;
  run_admin({"init", "--overlay", overlay_, "--out", (dir_ / "ca").string()});
}

process_overlay::~process_overlay() {
  for (auto& p : peers_) {
    if (p.pid > 0) {
      ::kill(p.pid, SIGKILL);
      int status = 0;
      ::waitpid(p.pid, &status, 0);
      p.pid = -1;
    }
  }
  if (!std::getenv("P2PSIP_KEEP_TEST_DIR")) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

pid_t spawn_process(const std::vector<std::string>& args, const fs::path& out, const fs::path& err,
                    bool append) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));  // NOLINT
  argv.push_back(nullptr);
  const int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), flags, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), flags, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
  return pid;
}

pid_t process_overlay::spawn(const std::vector<std::string>& args, const fs::path& log) {
  return spawn_process(args, "/dev/null", log, /*append=*/true);
}

void process_overlay::run_admin(const std::vector<std::string>& args) {
  std::vector<std::string> full{admin_binary_};
  full.insert(full.end(), args.begin(), args.end());
  const auto log = dir_ / "admin.log";
  const pid_t pid = spawn(full, log);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("p2psip-admin " + args[0] + " failed: " + read_file(log));
  }
}

void process_overlay::enroll(const std::string& name) {
  if (fs::exists(cert_of(name))) return;
  run_admin({"enroll", "--user", name + "@" + overlay_, "--out", (dir_ / name).string(), "--ca-dir",
             (dir_ / "ca").string()});
}

fs::path process_overlay::cert_of(const std::string& name) const {
  return dir_ / name / "node.crt";
}
fs::path process_overlay::key_of(const std::string& name) const {
  return dir_ / name / "node.key";
}

void process_overlay::wait_listening(peer_process& p, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  const std::string marker = "listening on 127.0.0.1:";
  while (std::chrono::steady_clock::now() < until) {
    const auto log = read_file(p.log);
    const auto at = log.rfind(marker);
    if (at != std::string::npos) {
      auto end = log.find_first_not_of("0123456789", at + marker.size());
      p.address = "127.0.0.1:" + log.substr(at + marker.size(), end - at - marker.size());
      const auto as = log.find(" as ", at);
      if (as != std::string::npos)
        p.node_id = log.substr(as + 4, log.find_first_of(" \n", as + 4) - as - 4);
      return;
    }
    int status = 0;
    if (::waitpid(p.pid, &status, WNOHANG) == p.pid) {
      p.pid = -1;
      throw std::runtime_error("peer " + p.name + " exited: " + log);
    }
    std::this_thread::sleep_for(20ms);
  }
  throw std::runtime_error("peer " + p.name + " did not listen in time: " + read_file(p.log));
}

std::size_t process_overlay::start_peer(const std::string& name, bool durable,
                                        std::vector<std::string> extra_args) {
  peer_start how;
  how.durable = durable;
  how.extra_args = std::move(extra_args);
  return start_peer(name, how);
}

std::size_t process_overlay::start_peer(const std::string& name, const peer_start& how) {
  enroll(name);
  peer_process p;
  p.name = name;
  p.log = dir_ / (name + ".log");
  std::vector<std::string> args{peer_binary_,
                                "--config",
                                config_file().string(),
                                "--cert",
                                cert_of(name).string(),
                                "--key",
                                key_of(name).string(),
                                "--listen",
                                how.listen,
                                "--status-interval",
                                "500",
                                "--log-level",
                                "debug"};
  if (how.durable) {
    p.data_dir = dir_ / (name + ".data");
    args.insert(args.end(), {"--data-dir", p.data_dir.string()});
  } else {
    args.emplace_back("--memory");
  }
  const auto running = addresses();
  if (how.first || (running.empty() && how.bootstrap.empty())) args.emplace_back("--first");
  for (const auto& b : how.bootstrap) args.insert(args.end(), {"--bootstrap-peer", b});
  if (!how.first && how.bootstrap.empty() && !running.empty()) {
    args.insert(args.end(), {"--bootstrap-peer", running.front()});
  }
  args.insert(args.end(), how.extra_args.begin(), how.extra_args.end());
  p.pid = spawn(args, p.log);
  peers_.push_back(p);
  peer_args_.push_back(args);
  wait_listening(peers_.back(), 15s);
  return peers_.size() - 1;
}

void process_overlay::start_ring(std::size_t n, bool durable, std::chrono::milliseconds timeout) {
  for (std::size_t i = 0; i < n; ++i) start_peer("p" + std::to_string(peers_.size()), durable);
  if (!wait_ring(timeout)) {
    std::string logs;
    for (std::size_t i = 0; i < peers_.size(); ++i) {
      logs += "\n" + peers_[i].name + ": succ=" + status_field(i, "succ") +
              " joined=" + status_field(i, "joined");
    }
    throw std::runtime_error("the ring did not form in time:" + logs);
  }
}

bool process_overlay::wait_ring(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    std::map<std::string, std::size_t> by_id;
    bool ready = true;
    for (std::size_t i = 0; i < peers_.size(); ++i) {
      if (peers_[i].pid <= 0) continue;
      if (status_field(i, "joined") != "yes" || peers_[i].node_id.empty()) ready = false;
      by_id[peers_[i].node_id] = i;
    }
    if (ready && by_id.size() == 1) return true;
    if (ready) {
      for (auto it = by_id.begin(); it != by_id.end() && ready; ++it) {
        auto next = std::next(it);
        if (next == by_id.end()) next = by_id.begin();
        if (first_of_list(status_field(it->second, "succ")) != next->first) ready = false;
      }
      if (ready) return true;
    }
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

void process_overlay::kill_peer(std::size_t i) {
  auto& p = peers_.at(i);
  if (p.pid <= 0) return;
  ::kill(p.pid, SIGKILL);
  int status = 0;
  ::waitpid(p.pid, &status, 0);
  p.pid = -1;
}

int process_overlay::stop_peer(std::size_t i, std::chrono::milliseconds timeout) {
  auto& p = peers_.at(i);
  if (p.pid <= 0) return -1;
  ::kill(p.pid, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (::waitpid(p.pid, &status, WNOHANG) == p.pid) {
      p.pid = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(20ms);
  }
  kill_peer(i);
  return -1;
}

void process_overlay::restart_peer(std::size_t i) {
  auto& p = peers_.at(i);
  if (p.pid > 0) throw std::runtime_error("peer " + p.name + " is still running");
  auto args = peer_args_.at(i);
  // Bootstrap through another running peer (the first one may be the one restarting).
  const auto first = std::find(args.begin(), args.end(), "--first");
  const auto boot = std::find(args.begin(), args.end(), "--bootstrap-peer");
  std::string other;
  for (std::size_t j = 0; j < peers_.size(); ++j) {
    if (j != i && peers_[j].pid > 0) {
      other = peers_[j].address;
      break;
    }
  }
  if (!other.empty()) {
    if (first != args.end()) {
      *first = "--bootstrap-peer";
      args.insert(first + 1, other);
    } else if (boot != args.end()) {
      *(boot + 1) = other;
    }
  }
  // The old log's "listening on" line must not be read as the new one.
  std::error_code ec;
  fs::rename(p.log, p.log.string() + ".old", ec);
  p.pid = spawn(args, p.log);
  wait_listening(p, 15s);
}

std::vector<std::string> process_overlay::addresses() const {
  std::vector<std::string> out;
  for (const auto& p : peers_) {
    if (p.pid > 0 && !p.address.empty()) out.push_back(p.address);
  }
  return out;
}

std::string process_overlay::status_field(std::size_t i, const std::string& key) const {
  return last_status_field(read_file(peers_.at(i).log), key);
}

std::string process_overlay::log_of(std::size_t i) const {
  return read_file(peers_.at(i).log);
}

}  // namespace p2psip::test
