#include "sip_harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "test_pki.hpp"

#include <botan/auto_rng.h>
#include <botan/certstor.h>
#include <botan/credentials_manager.h>
#include <botan/data_src.h>
#include <botan/hash.h>
#include <botan/hex.h>
#include <botan/pkcs8.h>
#include <botan/tls_callbacks.h>
#include <botan/tls_client.h>
#include <botan/tls_exceptn.h>
#include <botan/tls_policy.h>
#include <botan/tls_server.h>
#include <botan/tls_session_manager.h>
#include <botan/x509cert.h>

namespace p2psip::test::sip {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

fs::path make_temp_dir(const std::string& prefix) {
  std::string templ = (fs::temp_directory_path() / (prefix + ".XXXXXX")).string();
  if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  return templ;
}

/// Exit status of `args` run to completion within `limit` (killed after: -1); output to `log`.
int run_bounded(const std::vector<std::string>& args, const fs::path& log,
                std::chrono::milliseconds limit) {
  const pid_t pid = spawn_process(args, log, log.string() + ".err", false);
  const auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::this_thread::sleep_for(20ms);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

/// "SIP listening on KIND:127.0.0.1:PORT" in the log of a peer, within `timeout`.
std::string wait_sip_listener(const process_overlay& o, std::size_t i, const std::string& kind,
                              std::chrono::milliseconds timeout) {
  const std::string marker = "SIP listening on " + kind + ":";
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    const auto log = o.log_of(i);
    const auto at = log.find(marker);
    if (at != std::string::npos) {
      const auto start = at + marker.size();
      const auto end = log.find_first_of(" \r\n", start);
      return log.substr(start, end == std::string::npos ? std::string::npos : end - start);
    }
    std::this_thread::sleep_for(50ms);
  }
  throw std::runtime_error("peer " + std::to_string(i) + " logged no '" + marker +
                           "...' line in time (does p2psip-peer have its SIP front end?):\n" +
                           o.log_of(i));
}

bool tcp_connects(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;  // NOLINT
  ::close(fd);
  return ok;
}

sockaddr_in address_of(const std::string& ip_port) {
  const auto colon = ip_port.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(ip_port.substr(colon + 1))));
  if (::inet_pton(AF_INET, ip_port.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    throw std::runtime_error("not an IPv4 address: " + ip_port);
  }
  return a;
}

/// Parameter `name` of a Digest challenge (quoted or not).
std::string digest_param(const std::string& challenge, const std::string& name) {
  const auto lc = lower(challenge);
  std::size_t at = 0;
  while ((at = lc.find(name + "=", at)) != std::string::npos) {
    if (at == 0 || lc[at - 1] == ' ' || lc[at - 1] == ',') break;
    ++at;
  }
  if (at == std::string::npos) return {};
  auto start = at + name.size() + 1;
  if (start < challenge.size() && challenge[start] == '"') {
    const auto end = challenge.find('"', start + 1);
    return challenge.substr(start + 1, end - start - 1);
  }
  const auto end = challenge.find_first_of(", ", start);
  return challenge.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

/// Takes the first whole SIP message (header and Content-Length body) off a stream's buffer,
/// skipping the keepalive CRLFs before it; nullopt while it is incomplete.
std::optional<std::string> take_message(std::string& buffered) {
  while (buffered.rfind("\r\n", 0) == 0) buffered.erase(0, 2);
  const auto end = buffered.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  const auto cl = header(buffered.substr(0, end + 4), "Content-Length");
  const std::size_t size = end + 4 + (cl.empty() ? 0 : std::stoul(cl));
  if (buffered.size() < size) return std::nullopt;
  auto msg = buffered.substr(0, size);
  buffered.erase(0, size);
  return msg;
}

/// Milliseconds left until `until` (0 when passed), for poll().
int ms_left(std::chrono::steady_clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

/// A socket of `type` bound to `local_ip` (port 0); throws.
int open_socket(int type, const std::string& local_ip) {
  const int fd = ::socket(AF_INET, type, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  const auto local = address_of(local_ip + ":0");
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {  // NOLINT
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("cannot bind to " + local_ip + ": " + why);
  }
  return fd;
}

int local_port_of(int fd) {
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);  // NOLINT
  return ntohs(local.sin_port);
}

std::string md5_hex(const std::string& s) {
  auto h = Botan::HashFunction::create_or_throw("MD5");
  h->update(s);
  return Botan::hex_encode(h->final(), false);
}

}  // namespace

const std::string& sip_server::by_transport(char t) const {
  return t == 't' ? tcp : t == 'l' ? tls : udp;
}

bool sip_target::kamailio_mode() {
  const char* t = std::getenv("P2PSIP_SIP_INTEROP_TARGET");
  return t && std::string(t) == "kamailio";
}

sip_target::sip_target(const std::vector<std::string>& users, const overlay_options& how) {
  if (kamailio_mode()) {
    const auto kamailio = find_tool("kamailio", "kamailio");
    own_dir_ = make_temp_dir("p2psip-sip-kamailio");
    dir_ = own_dir_;
    const int port = free_tcp_udp_port();
    const std::string at = "127.0.0.1:" + std::to_string(port);
    kamailio_log_ = dir_ / "kamailio.log";
    const std::vector<std::string> args{kamailio,    "-f",         P2PSIP_KAMAILIO_CFG,
                                        "-DD",       "-E",         "-l",
                                        "udp:" + at, "-l",         "tcp:" + at,
                                        "-n",        "2",          "-m",
                                        "64",        "-M",         "8",
                                        "-Y",        dir_.string()};
    // Its own process group: the destructor ends the main process and its workers together.
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::setpgid(0, 0);
      const int fd = ::open(kamailio_log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));  // NOLINT
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    kamailio_ = pid;
    const auto until = std::chrono::steady_clock::now() + 15s;
    while (!tcp_connects(port)) {
      if (std::chrono::steady_clock::now() > until) {
        throw std::runtime_error("kamailio did not listen in time:\n" + read_file(kamailio_log_));
      }
      std::this_thread::sleep_for(50ms);
    }
    servers_.assign(how.peers, sip_server{at, at, {}});
    return;
  }

  overlay_ = std::make_unique<process_overlay>(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY, domain_);
  dir_ = overlay_->dir();
  const auto users_file = dir_ / "sip-users";
  for (const auto& u : users) {
    const auto pw_file = dir_ / ("password-" + u);
    std::ofstream(pw_file) << password_of(u) << "\n";
    overlay_->run_admin({"sip-user", "add", "sip:" + u + "@" + domain_, "--users",
                         users_file.string(), "--ca-dir", (dir_ / "ca").string(), "--password-file",
                         pw_file.string()});
  }
  for (std::size_t i = 0; i < how.peers; ++i) {
    std::vector<std::string> args{"--sip-listen",    "udp:127.0.0.1:0",  "--sip-listen",
                                  "tcp:127.0.0.1:0", "--sip-listen",     "tls:127.0.0.1:0",
                                  "--sip-users",     users_file.string()};
    if (i < how.extra_args.size()) {
      args.insert(args.end(), how.extra_args[i].begin(), how.extra_args[i].end());
      // A gateway advertises itself with the gateway role's credentials, issued by the CA.
      if (std::find(how.extra_args[i].begin(), how.extra_args[i].end(), "--sip-gateway") !=
          how.extra_args[i].end()) {
        const auto gw = dir_ / "sip-gateway";
        if (!std::filesystem::exists(gw / "gateway.crt")) {
          overlay_->run_admin({"enroll", "--user", "sip-gateway@" + domain_, "--nodes", "4",
                               "--out", gw.string(), "--ca-dir", (dir_ / "ca").string(), "--name",
                               "gateway"});
        }
        args.insert(args.end(), {"--sip-gateway-cert", (gw / "gateway.crt").string(),
                                 "--sip-gateway-key", (gw / "gateway.key").string()});
      }
    }
    overlay_->start_peer("p" + std::to_string(i), false, args);
    sip_server s;
    s.udp = wait_sip_listener(*overlay_, i, "udp", 15s);
    s.tcp = wait_sip_listener(*overlay_, i, "tcp", 15s);
    s.tls = wait_sip_listener(*overlay_, i, "tls", 15s);
    servers_.push_back(s);
  }
  if (!overlay_->wait_ring(60s)) throw std::runtime_error("the ring did not form:\n" + logs());
  // A gateway is usable once it has advertised itself in the joined overlay.
  for (std::size_t i = 0; i < how.peers && i < how.extra_args.size(); ++i) {
    const auto& extra = how.extra_args[i];
    if (std::find(extra.begin(), extra.end(), "--sip-gateway") == extra.end()) continue;
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (overlay_->log_of(i).find("SIP gateway: advertised") == std::string::npos) {
      if (std::chrono::steady_clock::now() > until) {
        throw std::runtime_error("peer " + std::to_string(i) +
                                 " did not advertise itself as a gateway:\n" + logs());
      }
      std::this_thread::sleep_for(50ms);
    }
  }
}

sip_target::~sip_target() {
  if (kamailio_ > 0) {
    ::kill(-kamailio_, SIGTERM);
    int status = 0;
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (::waitpid(kamailio_, &status, WNOHANG) != kamailio_) {
      if (std::chrono::steady_clock::now() > until) {
        ::kill(-kamailio_, SIGKILL);
        ::waitpid(kamailio_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    ::kill(-kamailio_, SIGKILL);  // workers that outlived the main process
  }
  if (!own_dir_.empty() && !std::getenv("P2PSIP_KEEP_TEST_DIR")) {
    std::error_code ec;
    fs::remove_all(own_dir_, ec);
  }
}

std::string sip_target::password_of(const std::string& user) const {
  // Kamailio's configuration checks one fixed password for every user.
  return kamailio_mode() ? "p2psip-bench-secret" : "pw-" + user + "-7Hq";
}

std::string sip_target::logs() const {
  if (!overlay_) return "kamailio:\n" + read_file(kamailio_log_);
  std::string out;
  for (std::size_t i = 0; i < overlay_->peers().size(); ++i) {
    out += "---- " + overlay_->peers()[i].name + "\n" + overlay_->log_of(i);
  }
  return out;
}

std::pair<int, std::string> sip_target::fetch_registration(const std::string& aor, std::size_t i) {
  if (!overlay_) throw std::runtime_error("fetch_registration needs a p2psip overlay");
  overlay_->enroll("fetcher");
  const auto out = dir_ / "fetch.out";
  const int rc =
      run_bounded({P2PSIP_CLIENT_BINARY, "--config", overlay_->config_file().string(), "--cert",
                   overlay_->cert_of("fetcher").string(), "--key",
                   overlay_->key_of("fetcher").string(), "--peer", overlay_->peers().at(i).address,
                   "--timeout", "10000", "--json", "fetch", aor, "--kind", "sip-registration"},
                  out, 30s);
  return {rc, read_file(out) + read_file(out.string() + ".err")};
}

std::string sipp_result::describe() const {
  return "sipp exit code " + std::to_string(exit_code) + "\n--- output\n" + output +
         "\n--- unexpected events\n" + errors + "\n--- messages\n" + messages;
}

std::vector<int> sipp_result::received_codes() const {
  // The trace has "... message received [N] bytes :\n\nSIP/2.0 CODE ...".
  std::vector<int> codes;
  std::size_t at = 0;
  while ((at = messages.find("received", at)) != std::string::npos) {
    const auto body = messages.find("\n\n", at);
    if (body == std::string::npos) break;
    const int code = status_of(messages.substr(body + 2, 40));
    if (code) codes.push_back(code);
    at = body;
  }
  return codes;
}

sipp::sipp(const fs::path& dir, const std::string& name, std::vector<std::string> args,
           std::chrono::seconds limit)
    : base_(dir / ("sipp-" + name)), deadline_(std::chrono::steady_clock::now() + limit + 10s) {
  std::vector<std::string> full{find_tool("sipp", "sip-tester"),
                                "-nostdin",
                                "-i",
                                "127.0.0.1",
                                "-timeout",
                                std::to_string(limit.count()) + "s",
                                "-timeout_error",
                                "-recv_timeout",
                                std::to_string(std::min<long>(limit.count(), 70) * 1000),
                                "-trace_msg",
                                "-message_file",
                                base_.string() + ".msg",
                                "-trace_err",
                                "-error_file",
                                base_.string() + ".err"};
  full.insert(full.end(), args.begin(), args.end());
  std::error_code ec;
  fs::remove(base_.string() + ".msg", ec);
  fs::remove(base_.string() + ".err", ec);
  std::ofstream(base_.string() + ".cmd") << [&] {
    std::string s;
    for (const auto& a : full) s += a + " ";
    return s;
  }() << "\n";
  pid_ = spawn_process(full, base_.string() + ".out", base_.string() + ".out", false);
}

sipp::~sipp() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

sipp_result sipp::wait() {
  sipp_result r;
  int status = 0;
  bool done = false;
  while (pid_ > 0 && std::chrono::steady_clock::now() < deadline_) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      done = true;
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  if (pid_ > 0 && !done) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    r.output = "(killed: still running past its time limit)\n";
  } else if (done && WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  }
  pid_ = -1;
  r.output += read_file(base_.string() + ".out") +
              "\n(command: " + read_file(base_.string() + ".cmd") + ")";
  r.messages = read_file(base_.string() + ".msg");
  r.errors = read_file(base_.string() + ".err");
  return r;
}

std::string scenario(const std::string& name) {
  return (fs::path(P2PSIP_SIP_SCENARIO_DIR) / name).string();
}

std::string udp_exchange(const std::string& to, const std::string& bytes,
                         std::chrono::milliseconds wait) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local);  // NOLINT
  const auto dest = address_of(to);
  ::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&dest),  // NOLINT
           sizeof dest);
  std::string out;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) == 1) {
    char buf[65536];
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) out.assign(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

tcp_flow::tcp_flow(const std::string& to) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  const auto dest = address_of(to);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&dest), sizeof dest) != 0) {  // NOLINT
    throw std::runtime_error("cannot connect to " + to + ": " + std::strerror(errno));
  }
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);  // NOLINT
  local_port_ = ntohs(local.sin_port);
}

tcp_flow::~tcp_flow() {
  close();
}

void tcp_flow::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void tcp_flow::send(const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("tcp send failed");
    sent += static_cast<std::size_t>(n);
  }
}

std::string tcp_flow::read_some(std::chrono::milliseconds wait) {
  const auto until = std::chrono::steady_clock::now() + wait;
  while (buffered_.empty() && fd_ >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) != 1) break;
    char buf[65536];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) break;
    buffered_.append(buf, static_cast<std::size_t>(n));
  }
  std::string out;
  out.swap(buffered_);
  return out;
}

std::string tcp_flow::read_message(std::chrono::milliseconds wait) {
  const auto until = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (auto msg = take_message(buffered_)) return *msg;
    const int left = ms_left(until);
    if (left <= 0 || fd_ < 0) return {};
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, left) != 1) return {};
    char buf[65536];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return {};
    buffered_.append(buf, static_cast<std::size_t>(n));
  }
}

udp_flow::udp_flow(const std::string& to, const std::string& local_ip)
    : fd_(open_socket(SOCK_DGRAM, local_ip)), local_ip_(local_ip) {
  const auto dest = address_of(to);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&dest), sizeof dest) != 0) {  // NOLINT
    ::close(fd_);
    throw std::runtime_error("cannot connect a UDP socket to " + to);
  }
  local_port_ = local_port_of(fd_);
}

udp_flow::~udp_flow() {
  ::close(fd_);
}

void udp_flow::send(const std::string& bytes) {
  if (::send(fd_, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
    throw std::runtime_error(std::string("udp send failed: ") + std::strerror(errno));
  }
}

std::string udp_flow::read_message(std::chrono::milliseconds wait) {
  const auto until = std::chrono::steady_clock::now() + wait;
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, ms_left(until)) != 1) return {};
    char buf[65536];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    // ECONNREFUSED from an ICMP error is no answer: keep waiting.
    if (n > 0) return std::string(buf, static_cast<std::size_t>(n));
  }
}

/// Botan's defaults, except that the overlay CA publishes no revocation data (no CRL, no OCSP).
struct ua_tls_policy final : Botan::TLS::Policy {
  bool require_cert_revocation_info() const override { return false; }
};

/// Botan's TLS client and what it needs, driven by the callbacks below: tls_emit_data writes to
/// the (blocking) socket, received_data() is fed what recv() returns.
struct tls_flow::engine final : Botan::TLS::Callbacks, Botan::Credentials_Manager {
  int fd = -1;
  std::string received;  ///< application data not yet taken
  bool active = false;
  bool closed = false;  ///< close_notify or a fatal alert received, or the connection lost
  std::string why_closed;
  std::string cipher;
  Botan::Certificate_Store_In_Memory roots;
  Botan::AutoSeeded_RNG rng;
  Botan::TLS::Session_Manager_Noop sessions;
  ua_tls_policy policy;
  std::unique_ptr<Botan::TLS::Client> client;

  void tls_emit_data(const uint8_t data[], size_t size) override {
    std::size_t sent = 0;
    while (sent < size && fd >= 0) {
      const auto n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        closed = true;
        why_closed = std::string("send failed: ") + std::strerror(errno);
        return;
      }
      sent += static_cast<std::size_t>(n);
    }
  }
  void tls_record_received(uint64_t, const uint8_t data[], size_t size) override {
    received.append(reinterpret_cast<const char*>(data), size);  // NOLINT
  }
  void tls_alert(Botan::TLS::Alert alert) override {
    if (alert.type() == Botan::TLS::Alert::CLOSE_NOTIFY || alert.is_fatal()) {
      closed = true;
      why_closed = "alert " + alert.type_string();
    }
  }
  bool tls_session_established(const Botan::TLS::Session& session) override {
    cipher = session.ciphersuite().to_string();
    return false;  // nothing to resume later
  }
  void tls_session_activated() override { active = true; }
  // The server's chain verifies against `roots` (Botan's default tls_verify_cert_chain). No
  // cert_chain() override: the client has no certificate to send.
  std::vector<Botan::Certificate_Store*> trusted_certificate_authorities(
      const std::string&, const std::string&) override {
    return {&roots};
  }

  /// Waits for bytes until `until` and feeds them to the client; false on timeout or close.
  bool pump(std::chrono::steady_clock::time_point until) {
    if (closed || fd < 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms_left(until)) != 1) return false;
    std::uint8_t buf[16384];
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      closed = true;
      why_closed = n == 0 ? "connection closed by the server" : std::strerror(errno);
      return false;
    }
    try {
      client->received_data(buf, static_cast<std::size_t>(n));
    } catch (const std::exception& e) {
      closed = true;
      why_closed = e.what();
      return false;
    }
    return true;
  }
};

tls_flow::tls_flow(const std::string& to, const fs::path& roots_pem, std::chrono::milliseconds wait)
    : engine_(std::make_unique<engine>()) {
  auto& e = *engine_;
  std::size_t roots = 0;
  {
    Botan::DataSource_Stream in(roots_pem.string());
    while (!in.end_of_data()) {
      try {
        e.roots.add_certificate(Botan::X509_Certificate(in));
        ++roots;
      } catch (const std::exception&) {
        break;  // trailing text after the last certificate
      }
    }
  }
  if (roots == 0) {
    throw std::runtime_error("no CA certificate in " + roots_pem.string());
  }
  e.fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const auto dest = address_of(to);
  if (::connect(e.fd, reinterpret_cast<const sockaddr*>(&dest), sizeof dest) != 0) {  // NOLINT
    throw std::runtime_error("cannot connect to " + to + ": " + std::strerror(errno));
  }
  local_port_ = local_port_of(e.fd);
  // No server name: the peer's certificate names a Node-ID, not a host.
  e.client = std::make_unique<Botan::TLS::Client>(e, e.sessions, e, e.policy, e.rng,
                                                  Botan::TLS::Server_Information(),
                                                  Botan::TLS::Protocol_Version::TLS_V12);
  const auto until = std::chrono::steady_clock::now() + wait;
  while (!e.active) {
    if (!e.pump(until)) {
      throw std::runtime_error("TLS handshake with " + to +
                               " failed: " + (e.closed ? e.why_closed : "no answer in time"));
    }
  }
}

tls_flow::~tls_flow() {
  close();
}

const std::string& tls_flow::cipher_suite() const noexcept {
  return engine_->cipher;
}

void tls_flow::send(const std::string& bytes) {
  auto& e = *engine_;
  if (e.closed || !e.client->is_active()) throw std::runtime_error("tls send on a closed flow");
  e.client->send(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());  // NOLINT
  if (e.closed) throw std::runtime_error("tls send failed: " + e.why_closed);
}

std::string tls_flow::read_message(std::chrono::milliseconds wait) {
  auto& e = *engine_;
  const auto until = std::chrono::steady_clock::now() + wait;
  for (;;) {
    if (auto msg = take_message(e.received)) return *msg;
    if (!e.pump(until)) return {};
  }
}

void tls_flow::close() {
  auto& e = *engine_;
  if (e.fd < 0) return;
  if (!e.closed && e.client->is_active()) {
    try {
      e.client->close();
    } catch (const std::exception&) {
      // Closing anyway.
    }
  }
  ::close(e.fd);
  e.fd = -1;
}

// ---- the TLS trunk ----

namespace {

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

/// One PEM-encoded certificate of `pem` after another (the first one at least); throws.
std::vector<Botan::X509_Certificate> load_certificates(const fs::path& pem) {
  std::vector<Botan::X509_Certificate> out;
  Botan::DataSource_Stream in(pem.string());
  while (!in.end_of_data()) {
    try {
      out.emplace_back(in);
    } catch (const std::exception&) {
      break;  // trailing text after the last certificate
    }
  }
  if (out.empty()) throw std::runtime_error("no certificate in " + pem.string());
  return out;
}

}  // namespace

trunk_pki::trunk_pki() : dir_(make_temp_dir("p2psip-trunk-pki")) {
  namespace tp = p2psip::test_pki;
  const tp::test_ca ca("p2psip test trunk CA");
  const tp::test_ca other("p2psip test other CA");
  ca_ = dir_ / "trunk-ca.pem";
  write_text(ca_, ca.certificate().PEM_encode());
  auto issue = [this](const std::string& name, const tp::test_ca& by, const tp::cert_spec& spec) {
    const auto issued = by.issue(spec);
    files f{dir_ / (name + ".crt"), dir_ / (name + ".key")};
    write_text(f.certificate, issued.certificate.PEM_encode());
    write_text(f.key, Botan::PKCS8::PEM_encode(*issued.key));
    return f;
  };
  localhost_ = issue("trunk-localhost", ca, tp::server_spec({"localhost"}, {"127.0.0.1"}));
  wrong_name_ = issue("trunk-wrong-name", ca, tp::server_spec({"trunk.other.test"}));
  other_ca_ = issue("trunk-other-ca", other, tp::server_spec({"localhost"}, {"127.0.0.1"}));
  gateway_client_ = issue("gateway-client", ca, tp::server_spec({"gateway.test"}));
}

trunk_pki::~trunk_pki() {
  if (!std::getenv("P2PSIP_KEEP_TEST_DIR")) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

struct tls_trunk::state {
  /// Botan's defaults, asking for a client certificate when there is a CA to check it against;
  /// no revocation data in the test PKI.
  struct policy final : Botan::TLS::Policy {
    bool ask_client = false;
    bool require_cert_revocation_info() const override { return false; }
    bool require_client_certificate_authentication() const override { return ask_client; }
    bool request_client_certificate_authentication() const override { return ask_client; }
  };

  /// The server's chain and key, the client CA, and the SNI name Botan passes as context.
  struct credentials final : Botan::Credentials_Manager {
    state* owner = nullptr;
    std::vector<Botan::X509_Certificate> chain;
    std::unique_ptr<Botan::Private_Key> key;
    Botan::Certificate_Store_In_Memory client_roots;
    bool ask_client = false;
    std::vector<Botan::Certificate_Store*> trusted_certificate_authorities(
        const std::string& type, const std::string&) override {
      if (type == "tls-server" && ask_client) return {&client_roots};
      return {};
    }
    std::vector<Botan::X509_Certificate> cert_chain(const std::vector<std::string>& key_types,
                                                    const std::string& type,
                                                    const std::string& context) override {
      if (type == "tls-server") {
        std::lock_guard lock(owner->mutex);
        owner->server_name = context;
      }
      const auto algo = key->algo_name();
      if (std::find(key_types.begin(), key_types.end(), algo) == key_types.end()) return {};
      return chain;
    }
    Botan::Private_Key* private_key_for(const Botan::X509_Certificate&, const std::string&,
                                        const std::string&) override {
      return key.get();
    }
  };

  /// One accepted connection: Botan's server driven by these callbacks over a blocking socket.
  struct connection final : Botan::TLS::Callbacks {
    state& owner;
    int fd;
    std::string received;
    bool closed = false;
    std::unique_ptr<Botan::TLS::Server> server;

    connection(state& o, int socket) : owner(o), fd(socket) {
      server = std::make_unique<Botan::TLS::Server>(*this, owner.sessions, owner.creds,
                                                    owner.tls_policy, owner.rng);
    }
    ~connection() override { ::close(fd); }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    void tls_emit_data(const uint8_t data[], size_t size) override {
      std::size_t sent = 0;
      while (sent < size && !closed) {
        const auto n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
        if (n <= 0) {
          closed = true;
          return;
        }
        sent += static_cast<std::size_t>(n);
      }
    }
    void tls_record_received(uint64_t, const uint8_t data[], size_t size) override {
      received.append(reinterpret_cast<const char*>(data), size);  // NOLINT
    }
    void tls_alert(Botan::TLS::Alert alert) override {
      if (alert.type() == Botan::TLS::Alert::CLOSE_NOTIFY) {
        closed = true;
      } else if (alert.is_fatal()) {
        closed = true;
        owner.note_failure("the client sent alert " + alert.type_string());
      }
    }
    bool tls_session_established(const Botan::TLS::Session&) override { return false; }
    void tls_session_activated() override {
      std::lock_guard lock(owner.mutex);
      ++owner.handshakes;
    }
    void tls_verify_cert_chain(
        const std::vector<Botan::X509_Certificate>& chain,
        const std::vector<std::shared_ptr<const Botan::OCSP::Response>>& ocsp,
        const std::vector<Botan::Certificate_Store*>& roots, Botan::Usage_Type usage,
        const std::string& hostname, const Botan::TLS::Policy& p) override {
      Botan::TLS::Callbacks::tls_verify_cert_chain(chain, ocsp, roots, usage, hostname, p);
      std::lock_guard lock(owner.mutex);
      owner.client_names = chain.front().subject_info("DNS");
    }

    void on_readable() {
      std::uint8_t buf[16384];
      const auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        closed = true;
        return;
      }
      try {
        server->received_data(buf, static_cast<std::size_t>(n));
      } catch (const std::exception& e) {
        closed = true;
        owner.note_failure(e.what());
        return;
      }
      while (auto m = take_message(received)) answer(*m);
    }

    void answer(const std::string& request) {
      if (status_of(request) != 0) return;  // a response: not expected here
      const std::string method = request.substr(0, request.find(' '));
      {
        std::lock_guard lock(owner.mutex);
        owner.methods.push_back(method);
      }
      if (method == "ACK") return;
      if (method == "INVITE") {
        send(response(request, "180 Ringing", false));
        send(response(request, "200 OK", true));
      } else {
        send(response(request, "200 OK", false));
      }
    }

    std::string response(const std::string& request, const std::string& status, bool contact) {
      std::string out = "SIP/2.0 " + status + "\r\n";
      std::istringstream in(request);
      std::string line;
      while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) break;
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto name = lower(line.substr(0, colon));
        name.erase(name.find_last_not_of(" \t") + 1);
        if (name == "to" || name == "t") {
          out +=
              line + (lower(line).find(";tag=") == std::string::npos ? ";tag=trunk1" : "") + "\r\n";
        } else if (name == "via" || name == "v" || name == "record-route" || name == "from" ||
                   name == "f" || name == "call-id" || name == "i" || name == "cseq") {
          out += line + "\r\n";
        }
      }
      if (contact) {
        out +=
            "Contact: <sip:trunk@127.0.0.1:" + std::to_string(owner.port) + ";transport=tls>\r\n";
      }
      return out + "Content-Length: 0\r\n\r\n";
    }

    void send(const std::string& bytes) {
      if (closed || !server->is_active()) return;
      try {
        server->send(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());  // NOLINT
      } catch (const std::exception& e) {
        closed = true;
        owner.note_failure(std::string("send: ") + e.what());
      }
    }

    void close_tls() {
      if (closed) return;
      try {
        if (server->is_active()) server->close();
      } catch (const std::exception&) {
        // The socket closes anyway.
      }
      closed = true;
    }
  };

  int port = 0;
  int listen_fd = -1;
  std::atomic<bool> stop{false};
  std::atomic<bool> drop{false};
  mutable std::mutex mutex;  // guards what the test thread reads
  std::size_t connections = 0;
  std::size_t handshakes = 0;
  std::vector<std::string> methods;
  std::vector<std::string> failures;
  std::vector<std::string> client_names;
  std::string server_name;

  // Used by the trunk's thread only, after the constructor.
  Botan::AutoSeeded_RNG rng;
  Botan::TLS::Session_Manager_Noop sessions;
  credentials creds;
  policy tls_policy;
  std::vector<std::unique_ptr<connection>> open;

  void note_failure(const std::string& why) {
    std::lock_guard lock(mutex);
    failures.push_back(why);
  }

  void run() {
    while (!stop) {
      if (drop.exchange(false)) {
        for (auto& c : open) c->close_tls();
        open.clear();
      }
      std::vector<pollfd> fds{{listen_fd, POLLIN, 0}};
      for (const auto& c : open) fds.push_back({c->fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        const int fd = ::accept(listen_fd, nullptr, nullptr);
        if (fd >= 0) {
          {
            std::lock_guard lock(mutex);
            ++connections;
          }
          open.push_back(std::make_unique<connection>(*this, fd));
        }
      }
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) open[i - 1]->on_readable();
      }
      std::erase_if(open, [](const auto& c) { return c->closed; });
    }
    for (auto& c : open) c->close_tls();
    open.clear();
  }
};

tls_trunk::tls_trunk(int port, const trunk_pki::files& certificate, const fs::path& client_ca)
    : state_(std::make_unique<state>()) {
  auto& st = *state_;
  st.port = port;
  st.creds.owner = &st;
  st.creds.chain = load_certificates(certificate.certificate);
  {
    Botan::DataSource_Stream key(certificate.key.string());
    st.creds.key = Botan::PKCS8::load_key(key);
  }
  if (!client_ca.empty()) {
    for (const auto& c : load_certificates(client_ca)) st.creds.client_roots.add_certificate(c);
    st.creds.ask_client = true;
    st.tls_policy.ask_client = true;
  }
  st.listen_fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(st.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const auto local = address_of("127.0.0.1:" + std::to_string(port));
  if (::bind(st.listen_fd, reinterpret_cast<const sockaddr*>(&local), sizeof local) !=
          0 ||  // NOLINT
      ::listen(st.listen_fd, 16) != 0) {
    const std::string why = std::strerror(errno);
    ::close(st.listen_fd);
    throw std::runtime_error("the TLS trunk cannot listen on 127.0.0.1:" + std::to_string(port) +
                             ": " + why);
  }
  thread_ = std::thread([&st] { st.run(); });
}

tls_trunk::~tls_trunk() {
  state_->stop = true;
  if (thread_.joinable()) thread_.join();
  ::close(state_->listen_fd);
}

std::size_t tls_trunk::connections() const {
  std::lock_guard lock(state_->mutex);
  return state_->connections;
}

std::size_t tls_trunk::handshakes() const {
  std::lock_guard lock(state_->mutex);
  return state_->handshakes;
}

std::vector<std::string> tls_trunk::methods() const {
  std::lock_guard lock(state_->mutex);
  return state_->methods;
}

std::string tls_trunk::server_name() const {
  std::lock_guard lock(state_->mutex);
  return state_->server_name;
}

std::vector<std::string> tls_trunk::client_names() const {
  std::lock_guard lock(state_->mutex);
  return state_->client_names;
}

std::vector<std::string> tls_trunk::failures() const {
  std::lock_guard lock(state_->mutex);
  return state_->failures;
}

void tls_trunk::drop_connections() {
  state_->drop = true;
}

udp_flooder::udp_flooder(const std::string& to,
                         std::function<std::string(std::uint64_t, int)> request,
                         std::uint32_t per_second, std::chrono::milliseconds duration,
                         const std::string& local_ip)
    : fd_(open_socket(SOCK_DGRAM, local_ip)) {
  const auto dest = address_of(to);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&dest), sizeof dest) != 0) {  // NOLINT
    ::close(fd_);
    throw std::runtime_error("cannot connect a UDP socket to " + to);
  }
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  local_port_ = local_port_of(fd_);
  thread_ = std::thread([this, request = std::move(request), per_second, duration] {
    run(request, per_second, duration);
  });
}

udp_flooder::~udp_flooder() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  ::close(fd_);
}

flood_result udp_flooder::wait() {
  if (thread_.joinable()) thread_.join();
  return result_;
}

void udp_flooder::run(const std::function<std::string(std::uint64_t, int)>& request,
                      std::uint32_t per_second, std::chrono::milliseconds duration) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto stop_sending = start + duration;
  const auto stop_reading = stop_sending + 500ms;
  char buf[65536];
  auto drain = [&] {
    for (;;) {
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == ECONNREFUSED) continue;
      if (n <= 0) return;
      const std::string m(buf, static_cast<std::size_t>(n));
      ++result_.received;
      if (status_of(m) == 503) {
        ++result_.code_503;
        if (!header(m, "Retry-After").empty()) ++result_.code_503_retry;
        if (result_.first_503.empty()) result_.first_503 = m;
      } else {
        ++result_.other_codes;
      }
    }
  };
  while (!stop_ && clock::now() < stop_sending) {
    // Catch up to the rate: as many as the elapsed time allows, then a millisecond's pause.
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - start).count();
    const auto due = static_cast<std::uint64_t>(elapsed) * per_second / 1'000'000 + 1;
    while (result_.sent < due && !stop_) {
      const auto m = request(result_.sent + 1, local_port_);
      const auto n = ::send(fd_, m.data(), m.size(), 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;  // the socket is full
      if (n < 0 && errno != ECONNREFUSED) break;
      if (n >= 0) ++result_.sent;
    }
    drain();
    std::this_thread::sleep_for(1ms);
  }
  result_.duration = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
  while (!stop_ && clock::now() < stop_reading) {
    drain();
    pollfd p{fd_, POLLIN, 0};
    ::poll(&p, 1, std::min(ms_left(stop_reading), 50));
  }
}

std::vector<std::string> headers(const std::string& message, const std::string& name) {
  std::vector<std::string> out;
  std::istringstream in(message);
  std::string line;
  const auto want = lower(name) + ":";
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) break;
    if (lower(line).rfind(want, 0) == 0) {
      auto v = line.substr(want.size());
      v.erase(0, v.find_first_not_of(" \t"));
      out.push_back(v);
    }
  }
  return out;
}

std::string header(const std::string& message, const std::string& name) {
  auto all = headers(message, name);
  return all.empty() ? std::string() : all.front();
}

int status_of(const std::string& message) {
  if (message.rfind("SIP/2.0 ", 0) != 0 || message.size() < 11) return 0;
  const auto code = message.substr(8, 3);
  if (!std::all_of(code.begin(), code.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return 0;
  }
  return std::stoi(code);
}

std::string digest_authorization(const std::string& challenge, const std::string& user,
                                 const std::string& password, const std::string& method,
                                 const std::string& uri) {
  const auto realm = digest_param(challenge, "realm");
  const auto nonce = digest_param(challenge, "nonce");
  const auto opaque = digest_param(challenge, "opaque");
  const auto qop = digest_param(challenge, "qop");
  const auto ha1 = md5_hex(user + ":" + realm + ":" + password);
  const auto ha2 = md5_hex(method + ":" + uri);
  std::string out = "Digest username=\"" + user + "\", realm=\"" + realm + "\", nonce=\"" + nonce +
                    "\", uri=\"" + uri + "\", algorithm=MD5";
  if (lower(qop).find("auth") != std::string::npos) {
    const std::string cnonce = "0a4f113b", nc = "00000001";
    out += ", qop=auth, nc=" + nc + ", cnonce=\"" + cnonce + "\", response=\"" +
           md5_hex(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + ha2) + "\"";
  } else {
    out += ", response=\"" + md5_hex(ha1 + ":" + nonce + ":" + ha2) + "\"";
  }
  if (!opaque.empty()) out += ", opaque=\"" + opaque + "\"";
  return out;
}

}  // namespace p2psip::test::sip
