// Live capture of real TLS links, decoded by Wireshark's RELOAD dissector.
//
// 1. A listener and a client link on 127.0.0.1 exchange every sample message (requests from the
//    client, answers from the server), with an NSS key log written by the links themselves.
// 2. dumpcap captures the test's port on lo meanwhile.
// 3. tshark decrypts the capture with the key log and hands the TLS payload to reload-framing
//    (a two-line lua script registers it on the port, since "-d tls.port==P,..." is refused).
// Passes when: no malformed packet, no RELOAD expert item at warning level or above, every
// message code we sent decoded, and data and ack frames both seen.
//
// Needs root (capture on lo) and tshark/dumpcap; installs tshark with apt-get when missing and
// FAILS (never skips) when it cannot.

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "p2psip/transport/link.hpp"
#include "p2psip/transport/listener.hpp"
#include "sample_messages.hpp"
#include "test_pki_tls.hpp"

extern char** environ;

namespace pr = p2psip::protocol;
namespace tr = p2psip::transport;
namespace tp = p2psip::test_pki;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct command_result {
  int status = -1;
  std::string out;
};

/// Runs `cmd` with /bin/sh, stdout to a file in `dir`; returns the exit status and the output.
command_result shell(const std::string& cmd, const fs::path& dir) {
  const fs::path out = dir / "cmd.out";
  const std::string full =
      cmd + " > '" + out.string() + "' 2>> '" + (dir / "cmd.err").string() + "'";
  const int raw = std::system(full.c_str());
  command_result r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  r.out = ss.str();
  return r;
}

bool have(const char* tool, const fs::path& dir) {
  return shell(std::string("command -v ") + tool, dir).status == 0;
}

/// tshark and dumpcap, installed with apt-get if missing (root only). Empty on success.
std::string ensure_tools(const fs::path& dir) {
  if (have("tshark", dir) && have("dumpcap", dir)) return {};
  if (::geteuid() != 0) return "tshark/dumpcap missing and not running as root to install them";
  std::cerr << "transport_live_capture: installing tshark with apt-get\n";
  shell(
      "echo 'wireshark-common wireshark-common/install-setuid boolean false' | "
      "debconf-set-selections",
      dir);
  const std::string install = "DEBIAN_FRONTEND=noninteractive apt-get install -y tshark";
  if (shell(install, dir).status != 0) {
    shell("DEBIAN_FRONTEND=noninteractive apt-get update", dir);
    if (shell(install, dir).status != 0) return "apt-get install tshark failed";
  }
  if (!have("tshark", dir) || !have("dumpcap", dir)) return "tshark installed but not found";
  return {};
}

/// dumpcap on lo for one TCP port, started with posix_spawn so that it can be stopped by pid.
class capture {
 public:
  capture(const fs::path& file, const fs::path& log, unsigned short port) : file_(file) {
    const std::string filter = "tcp port " + std::to_string(port);
    std::vector<std::string> args{"dumpcap", "-q", "-i", "lo", "-f", filter, "-w", file.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (posix_spawnp(&pid_, "dumpcap", &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  capture(const capture&) = delete;
  capture& operator=(const capture&) = delete;
  ~capture() { stop(); }

  bool started() const { return pid_ > 0; }

  /// Waits (at most 10 s) until dumpcap has written its file header, then a little longer so
  /// that the filter is attached before the first packet.
  bool wait_ready() {
    for (int i = 0; i < 200; ++i) {
      std::error_code ec;
      if (fs::exists(file_, ec) && fs::file_size(file_, ec) > 0) {
        std::this_thread::sleep_for(500ms);
        return true;
      }
      if (exited()) return false;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  /// SIGINT (dumpcap flushes and exits), then SIGKILL after 10 s. True when it exited cleanly.
  bool stop() {
    if (pid_ <= 0) return false;
    ::kill(pid_, SIGINT);
    for (int i = 0; i < 200; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) || WIFSIGNALED(status);
      }
      std::this_thread::sleep_for(50ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return false;
  }

 private:
  bool exited() {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    return false;
  }

  fs::path file_;
  pid_t pid_ = -1;
};

struct exchange_result {
  bool ok = false;
  std::string error;
  std::set<std::uint16_t> codes_sent;
  std::size_t messages = 0;
};

/// Client and server links exchange every sample: requests client -> server, answers back.
exchange_result run_exchange(asio::io_context& io, const std::shared_ptr<tr::listener>& lst,
                             std::shared_ptr<std::shared_ptr<tr::link>> accepted,
                             std::shared_ptr<const tr::tls_credentials> client_creds,
                             const tr::link_config& cfg,
                             const std::vector<p2psip::test_support::sample_message>& samples) {
  exchange_result res;
  bool done = false;
  auto body = [&]() -> asio::awaitable<void> {
    auto c = co_await tr::connect(lst->local_endpoint(), client_creds, cfg);
    if (!c) {
      res.error = "connect: " + c.error().message();
      co_return;
    }
    auto client = *c;
    asio::steady_timer timer(io);
    for (int i = 0; i < 400 && !*accepted; ++i) {
      timer.expires_after(5ms);
      auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      (void)ec;
    }
    if (!*accepted) {
      res.error = "the listener did not hand up the link";
      co_return;
    }
    auto server = *accepted;
    for (const auto& s : samples) {
      auto& from = s.is_request() ? client : server;
      auto& to = s.is_request() ? server : client;
      auto sent = co_await from->send(s.encoded);
      if (!sent) {
        res.error = "send " + s.name + ": " + sent.error().message();
        co_return;
      }
      auto got = co_await to->receive();
      if (!got || got->oversized() || got->data != s.encoded) {
        res.error = "receive " + s.name + ": " + (got ? "bytes differ" : got.error().message());
        co_return;
      }
      res.codes_sent.insert(s.message.contents.code);
      ++res.messages;
    }
    // Let the last acks go out before closing.
    timer.expires_after(200ms);
    auto [ec] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
    (void)ec;
    client->close();
    auto end = co_await server->receive();
    if (end || end.error() != tr::make_error_code(tr::transport_errc::closed_by_peer)) {
      res.error = "server did not see a clean close";
      co_return;
    }
    res.ok = true;
  };
  asio::co_spawn(io, body(), [&](std::exception_ptr e) {
    if (e) res.error = "exception in the exchange";
    done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!done && std::chrono::steady_clock::now() < deadline) io.run_one_for(50ms);
  if (!done) res.error = "exchange timed out";
  lst->close();
  const auto settle = std::chrono::steady_clock::now() + 3s;
  io.restart();
  while (!io.stopped() && std::chrono::steady_clock::now() < settle) io.run_one_for(20ms);
  return res;
}

}  // namespace

int main() {
  char tmpl[] = "/tmp/p2psip_transport_capture_XXXXXX";
  const char* made = ::mkdtemp(tmpl);
  if (!made) {
    std::cerr << "FAIL: mkdtemp\n";
    return 1;
  }
  const fs::path dir(made);
  int failures = 0;
  auto fail = [&](const std::string& what) {
    std::cerr << "FAIL: " << what << "\n";
    ++failures;
  };

  if (::geteuid() != 0) {
    std::cerr << "FAIL: capturing on lo needs root\n";
    return 1;
  }
  if (auto err = ensure_tools(dir); !err.empty()) {
    std::cerr << "FAIL: " << err << "\n";
    return 1;
  }

  // The samples: every message code, signed by a throwaway identity.
  const auto identity = p2psip::test_support::make_sample_identity(1);
  const auto samples = p2psip::test_support::make_sample_messages(identity, 1);
  std::size_t largest = 0;
  for (const auto& s : samples) largest = std::max(largest, s.encoded.size());

  asio::io_context io;
  tp::test_ca ca;
  auto server_creds = tp::link_credentials(ca, {tp::random_node_id()});
  auto client_creds = tp::link_credentials(ca, {tp::random_node_id()});
  const fs::path keys = dir / "keys.log";
  tr::link_config cfg;
  cfg.key_log_path = keys.string();
  cfg.limits.max_message_size = std::max<std::size_t>(largest, 5000);
  cfg.close_linger = 500ms;
  tr::listener_config lcfg;
  lcfg.link = cfg;
  auto accepted = std::make_shared<std::shared_ptr<tr::link>>();
  auto lst = tr::listener::open(
      io.get_executor(), asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0),
      server_creds, lcfg, [accepted](std::shared_ptr<tr::link> l) { *accepted = l; });
  if (!lst) {
    std::cerr << "FAIL: listener: " << lst.error().message() << "\n";
    return 1;
  }
  const unsigned short port = (*lst)->local_endpoint().port();
  const fs::path pcap = dir / "links.pcapng";

  exchange_result ex;
  {
    capture cap(pcap, dir / "dumpcap.log", port);
    if (!cap.started() || !cap.wait_ready()) {
      std::cerr << "FAIL: dumpcap did not start (see " << (dir / "dumpcap.log") << ")\n";
      return 1;
    }
    ex = run_exchange(io, *lst, accepted, client_creds, cfg, samples);
    std::this_thread::sleep_for(300ms);  // let the last packets reach the capture
    cap.stop();
  }
  if (!ex.ok) fail("exchange: " + ex.error);
  std::cout << "exchanged " << ex.messages << " messages (" << ex.codes_sent.size()
            << " message codes, largest " << largest << " bytes) on port " << port << "\n";

  const fs::path lua = dir / "reload_tls.lua";
  {
    std::ofstream out(lua);
    out << "local f = Dissector.get(\"reload-framing\")\n"
           "for _, p in ipairs({...}) do DissectorTable.get(\"tls.port\"):add(tonumber(p), f) "
           "end\n";
  }
  const std::string p = std::to_string(port);
  const std::string tshark = "tshark -r '" + pcap.string() +
                             "' -o 'tls.keylog_file:" + keys.string() + "' -d tcp.port==" + p +
                             ",tls -X 'lua_script:" + lua.string() + "' -X lua_script1:" + p;

  // Decrypted at all? Every sent code must be decoded.
  const auto codes = shell(tshark + " -Y reload -T fields -e reload.message.code", dir);
  std::set<std::uint16_t> decoded;
  {
    std::istringstream in(codes.out);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string v;
      while (std::getline(fields, v, ',')) {
        if (v.empty()) continue;
        try {
          decoded.insert(static_cast<std::uint16_t>(std::stoul(v, nullptr, 0)));
        } catch (...) {
        }
      }
    }
  }
  for (auto code : ex.codes_sent) {
    if (!decoded.count(code)) fail("message code " + std::to_string(code) + " not decoded");
  }
  if (ex.codes_sent.empty()) fail("no message sent");
  std::cout << "tshark decoded " << decoded.size() << " distinct message codes\n";

  const auto malformed = shell(tshark + " -Y _ws.malformed -T fields -e frame.number", dir);
  if (malformed.status != 0)
    fail("tshark -Y _ws.malformed exited " + std::to_string(malformed.status));
  if (!malformed.out.empty()) fail("malformed packets: " + malformed.out);

  const auto expert = shell(tshark + " -q -z expert,warn", dir);
  std::size_t reload_warnings = 0;
  {
    std::istringstream in(expert.out);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find(" RELOAD") != std::string::npos) {
        ++reload_warnings;
        std::cerr << "  expert: " << line << "\n";
      }
    }
  }
  if (reload_warnings) fail(std::to_string(reload_warnings) + " RELOAD expert warnings");

  // Both frame types on the wire: data (128) and acks (129).
  const auto types =
      shell(tshark + " -Y reload_framing.type -T fields -e reload_framing.type", dir);
  std::map<std::string, std::size_t> type_count;
  {
    std::istringstream in(types.out);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string v;
      while (std::getline(fields, v, ',')) ++type_count[v];
    }
  }
  std::size_t data = type_count["128"] + type_count["0x80"];
  std::size_t acks = type_count["129"] + type_count["0x81"];
  std::cout << "frames seen: " << data << " data, " << acks << " ack\n";
  if (data < ex.messages) fail("fewer data frames decoded than messages sent");
  if (acks < ex.messages) fail("fewer ack frames decoded than messages sent");

  const auto suites =
      shell(tshark + " -Y tls.handshake.type==2 -T fields -e tls.handshake.ciphersuite", dir);
  std::cout << "cipher suite: " << suites.out;

  if (failures) {
    std::cerr << "transport_live_capture: " << failures << " failure(s); files kept in " << dir
              << "\n";
    return 1;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  std::cout << "transport_live_capture: OK\n";
  return 0;
}
