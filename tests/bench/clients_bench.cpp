// p2psip-clients-bench: many idle clients attached to one real p2psip-peer (issue 16 item 5,
// issue 14 item 5). One peer on loopback; --processes worker processes (this program again,
// with --worker) each hold their share of --clients light clients on one io_context: for each a
// client_node on a node_driver, the same node layer, TLS link and codec as the SDK, with the
// SDK's keepalive (a Ping after --keepalive-ms without sending). A few SDK clients attach from
// this process as well. Measured:
//   - the peer's RSS per attached client: the slope between --first-clients and --clients;
//   - the peer's CPU over --idle-seconds with every client attached and keeping alive;
//   - how long one more SDK client takes to attach with all of them attached (target <= 1 s);
//   - put/get by the SDK clients, and one Ping answered for every light client.
// Each figure is printed with its target; --json writes one document on stdout.
//
//   p2psip-clients-bench [--clients 10000] [--processes 4] [--first-clients 1000]
//                        [--idle-seconds 30] [--keepalive-ms 20000] [--json]

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <cxxopts.hpp>

#include "bench_client.hpp"
#include "issuance.hpp"
#include "p2psip/client/client.hpp"
#include "p2psip/crypto/credentials.hpp"
#include "p2psip/node/client_node.hpp"
#include "p2psip/node/crypto_signer.hpp"
#include "p2psip/node/node_driver.hpp"
#include "p2psip/node/node_setup.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/forwarding.hpp"
#include "p2psip/tool/options.hpp"
#include "p2psip/tool/version.hpp"
#include "proc_cpu.hpp"
#include "process_overlay.hpp"

namespace {

namespace fs = std::filesystem;
namespace cl = p2psip::client;
namespace pe = p2psip::node;
namespace pr = p2psip::protocol;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// Raises the soft open-files limit to `wanted` (and the hard one too where we may: root), so
/// that this process and the processes it starts (they inherit it) can hold their sockets.
/// Returns the soft limit in force.
rlim_t raise_open_files(rlim_t wanted) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < wanted) {
    rlimit higher{wanted, wanted};
    if (::setrlimit(RLIMIT_NOFILE, &higher) == 0) lim = higher;
  }
  lim.rlim_cur = lim.rlim_max;
  (void)::setrlimit(RLIMIT_NOFILE, &lim);
  (void)::getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// Worker: light clients on one io_context, driven by commands on standard input, one line each:
//   attach N   attach until N of this worker's clients are attached; answers "attached N"
//   ping       one Ping from every attached client; answers "pinged ANSWERED SENT"
//   stop       exit
// It answers "ready" once its credentials are issued, and "error TEXT" when it cannot go on.

struct worker_options {
  fs::path ca_dir;  ///< overlay.xml, ca.crt, ca.key (p2psip-admin's CA directory)
  fs::path work_dir;
  std::string peer;
  std::size_t count = 0;
  std::size_t first_index = 0;
  std::size_t window = 4;  ///< attaches in progress at once
  std::chrono::milliseconds keepalive{20'000};
};

class light_worker {
 public:
  explicit light_worker(worker_options o) : opt_(std::move(o)) {}

  /// Issues and loads every client's credentials; false (after an "error" line) on failure.
  bool prepare() {
    const p2psip::admin::pem_pair ca{read_text(opt_.ca_dir / "ca.crt"),
                                     read_text(opt_.ca_dir / "ca.key")};
    const auto config_file = opt_.ca_dir / "overlay.xml";
    auto peer = pr::ip_address_port::parse(opt_.peer);
    if (!peer) return fail("not an address: " + opt_.peer);
    peer_ = *peer;
    fs::create_directories(opt_.work_dir);
    for (std::size_t i = 0; i < opt_.count; ++i) {
      const std::string name = "light" + std::to_string(opt_.first_index + i);
      const auto cert = opt_.work_dir / (name + ".crt");
      const auto key = opt_.work_dir / (name + ".key");
      if (!issue(ca, name, cert, key)) return false;
      if (!setup_) {
        // The configuration and trust store once: every client of this worker shares them.
        auto s = pe::load_node_setup(config_file, cert, key);
        if (!s) return fail(s.error().message);
        setup_ = std::make_unique<pe::node_setup>(std::move(*s));
        params_ = {setup_->config.instance_name, setup_->config.node_id_length};
      }
      auto creds = p2psip::crypto::load_credentials(cert, key, params_, setup_->trust.get(),
                                                    std::chrono::system_clock::now());
      if (!creds) return fail(creds.error().message);
      auto c = std::make_unique<client_state>(std::move(*creds));
      auto tls = p2psip::transport::tls_credentials::from_identity(
          c->creds.link, setup_->config.root_certs, params_);
      if (!tls) return fail(name + ": " + tls.error().message());
      c->tls = std::move(*tls);
      c->id = c->creds.signing.default_node_id();
      c->signer = std::make_unique<pe::crypto_signer>(c->creds.signing, c->id, *setup_->trust);
      clients_.push_back(std::move(c));
    }
    return true;
  }

  void run() {
    auto work = asio::make_work_guard(io_);
    std::thread input([this] {
      std::string line;
      while (std::getline(std::cin, line)) {
        asio::post(io_, [this, line] { command(line); });
        if (line == "stop") return;
      }
      asio::post(io_, [this] { command("stop"); });
    });
    input.detach();
    keepalive_loop();
    say("ready");
    io_.run();
  }

 private:
  struct client_state {
    explicit client_state(p2psip::crypto::credentials c) : creds(std::move(c)) {}
    p2psip::crypto::credentials creds;
    std::shared_ptr<const p2psip::transport::tls_credentials> tls;
    pr::node_id id;
    std::unique_ptr<pe::crypto_signer> signer;
    std::unique_ptr<pe::node_driver> driver;
    pe::client_node* node = nullptr;  ///< owned by the driver
    bool started = false;
    bool attached = false;
    bool ever_attached = false;  ///< counted out of in_progress_ once
    steady::time_point last_sent{};
  };

  bool fail(const std::string& why) {
    say("error " + why);
    return false;
  }
  static void say(const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }

  bool issue(const p2psip::admin::pem_pair& ca, const std::string& name, const fs::path& cert,
             const fs::path& key) {
    p2psip::admin::node_request req;
    req.overlay = overlay_name();
    req.user = name + "@" + req.overlay;
    req.node_ids = p2psip::admin::random_node_ids(1, node_id_length());
    req.validity = std::chrono::hours(24);
    auto issued = p2psip::admin::issue_node(ca, req);
    if (!issued) return fail(issued.error().message);
    std::ofstream(cert) << issued->link.certificate << issued->signing.certificate;
    std::ofstream(key) << issued->link.private_key << issued->signing.private_key;
    return true;
  }
  /// Read from the configuration once (before setup_ exists, from the document itself).
  std::string overlay_name() {
    if (setup_) return setup_->config.instance_name;
    if (overlay_.empty()) read_overlay();
    return overlay_;
  }
  std::size_t node_id_length() {
    if (setup_) return setup_->config.node_id_length;
    if (overlay_.empty()) read_overlay();
    return node_id_length_;
  }
  void read_overlay() {
    auto doc = p2psip::config::load_document(opt_.ca_dir / "overlay.xml");
    if (!doc) return;
    overlay_ = doc->config.instance_name;
    node_id_length_ = doc->config.node_id_length;
  }

  void command(const std::string& line) {
    if (line == "stop") {
      std::fflush(stdout);
      std::_Exit(0);  // the kernel closes every socket; the peer sees the links go
    }
    if (line.rfind("attach ", 0) == 0) {
      std::size_t wanted = 0;
      const auto* first = line.data() + 7;
      const auto* last = line.data() + line.size();
      if (const auto [end, ec] = std::from_chars(first, last, wanted);
          ec != std::errc{} || end != last) {
        say("error not a count: " + line);
        return;
      }
      target_ = std::min(wanted, clients_.size());
      reported_ = false;
      start_more();
      report_attached();
      return;
    }
    if (line == "ping") {
      ping_all();
      return;
    }
    say("error unknown command: " + line);
  }

  void start_more() {
    while (in_progress_ < opt_.window && next_ < target_ && next_ < clients_.size()) {
      start_client(next_++);
    }
  }

  void start_client(std::size_t i) {
    auto& c = *clients_[i];
    pe::client_config cc;
    cc.transport = setup_->transport();
    cc.transport.self = c.id;
    cc.transport.request_timeout = 10s;
    cc.bootstrap = {peer_};
    pe::driver_config dc;
    dc.link.limits = cc.transport.limits;
    // As the SDK: the keepalives keep the link busy; unacknowledged data fails it.
    dc.link.idle_timeout = std::nullopt;
    dc.link.ack_timeout = 10s;
    dc.leave_flush_timeout = 0ms;
    dc.close_timeout = 1000ms;
    dc.make_node = [this, &c, cc = std::move(cc)](std::uint16_t) {
      auto made = std::make_unique<pe::client_node>(cc, *c.signer, rng_);
      c.node = made.get();
      return made;
    };
    dc.links_changed = [this, i] { links_changed(i); };
    dc.dial_failed = [this](const pr::ip_address_port&, const pr::error_record& why) {
      if (++dial_failures_ <= 20) std::fprintf(stderr, "dial failed: %s\n", why.message.c_str());
    };
    c.driver = std::make_unique<pe::node_driver>(io_, std::move(dc), c.tls);
    c.started = true;
    ++in_progress_;
    if (auto started = c.driver->start(); !started) {
      --in_progress_;
      fail(started.error().message);
    }
  }

  void links_changed(std::size_t i) {
    auto& c = *clients_[i];
    const bool up = c.node && c.node->home_link().has_value();
    if (up == c.attached) return;
    c.attached = up;
    if (up) {
      c.last_sent = steady::now();
      ++attached_;
      if (attached_ % 250 == 0) {
        // Progress on standard error (the worker's log in the test directory).
        std::fprintf(stderr, "attached %zu, in progress %zu, dial failures %zu, lost %zu\n",
                     attached_, in_progress_, dial_failures_, links_lost_);
      }
      if (!c.ever_attached) {
        c.ever_attached = true;
        --in_progress_;
      }
      start_more();
      report_attached();
    } else {
      --attached_;
      ++links_lost_;
    }
  }

  void report_attached() {
    if (reported_ || attached_ < target_) return;
    reported_ = true;
    say("attached " + std::to_string(attached_) + " dial_failures " +
        std::to_string(dial_failures_) + " lost " + std::to_string(links_lost_));
  }

  bool send_ping(client_state& c, pe::completion done) {
    std::optional<pr::node_id> peer;
    for (const auto& [id, row] : c.node->links().rows()) peer = row.remote;
    if (!peer) return false;
    bool sent = false;
    c.last_sent = steady::now();
    c.driver->with_node([&](pe::node_engine&, pe::time_point t) {
      sent = c.node->send_request({pr::to_destination(*peer)}, pr::ping_req{}, std::move(done), t)
                 .has_value();
    });
    return sent;
  }

  /// The SDK's keepalive: a Ping after keepalive without sending anything.
  void keepalive_loop() {
    timer_.expires_after(std::chrono::milliseconds(250));
    timer_.async_wait([this](std::error_code ec) {
      if (ec) return;
      const auto now = steady::now();
      for (auto& c : clients_) {
        if (c->attached && now - c->last_sent >= opt_.keepalive) {
          (void)send_ping(*c, [this](pe::outcome&& o, pe::time_point) {
            if (!o.ok()) ++keepalives_failed_;
          });
        }
      }
      keepalive_loop();
    });
  }

  void ping_all() {
    auto sent = std::make_shared<std::size_t>(0);
    auto answered = std::make_shared<std::size_t>(0);
    auto done = std::make_shared<std::size_t>(0);
    auto finished = std::make_shared<bool>(false);
    const auto report = [sent, answered, finished] {
      *finished = true;
      say("pinged " + std::to_string(*answered) + " " + std::to_string(*sent));
    };
    for (auto& c : clients_) {
      if (!c->attached) continue;
      const bool ok = send_ping(*c, [=](pe::outcome&& o, pe::time_point) {
        if (o.ok()) ++*answered;
        if (++*done == *sent && !*finished) report();
      });
      if (ok) ++*sent;
    }
    if (*sent == 0) report();
  }

  worker_options opt_;
  asio::io_context io_{1};
  asio::steady_timer timer_{io_};
  pe::system_random rng_;
  std::unique_ptr<pe::node_setup> setup_;
  p2psip::crypto::overlay_params params_;
  pr::ip_address_port peer_;
  std::string overlay_;
  std::size_t node_id_length_ = 16;
  std::vector<std::unique_ptr<client_state>> clients_;
  std::size_t target_ = 0, next_ = 0, in_progress_ = 0, attached_ = 0;
  std::size_t dial_failures_ = 0, links_lost_ = 0, keepalives_failed_ = 0;
  bool reported_ = true;
};

}  // namespace

namespace {

// ---------------------------------------------------------------------------------------------
// The main process's side of a worker: its standard input and output as pipes.

class worker_process {
 public:
  /// Starts `args` (args[0] the program) with pipes on standard input and output and standard
  /// error appended to `err`. Throws std::runtime_error when it cannot.
  worker_process(const std::vector<std::string>& args, const fs::path& err) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
      throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    }
    const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (err_fd < 0) throw std::runtime_error("cannot open " + err.string());
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a bench killed does not leave its clients behind
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(err_fd, 2);
      ::execv(argv[0], argv.data());
      std::_Exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err_fd);
    to_ = in[1];
    from_ = out[0];
  }
  ~worker_process() {
    if (to_ >= 0) ::close(to_);
    if (from_ >= 0) ::close(from_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  worker_process(const worker_process&) = delete;
  worker_process& operator=(const worker_process&) = delete;

  pid_t pid() const noexcept { return pid_; }

  void send(const std::string& line) {
    const std::string text = line + "\n";
    (void)!::write(to_, text.data(), text.size());
  }

  /// The next line starting with `prefix` (earlier lines are skipped), within `limit`. An
  /// "error ..." line, the end of the output or the limit throws std::runtime_error.
  std::string expect(const std::string& prefix, steady::time_point limit) {
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        if (line.rfind("error ", 0) == 0) throw std::runtime_error("worker: " + line.substr(6));
        if (line.rfind(prefix, 0) == 0) return line;
        continue;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(limit - steady::now());
      if (left.count() <= 0) {
        throw std::runtime_error("worker " + std::to_string(pid_) + ": no \"" + prefix +
                                 "\" line in time");
      }
      pollfd p{from_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 1000))) <= 0) continue;
      char chunk[4096];
      const auto n = ::read(from_, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error("worker " + std::to_string(pid_) + " ended");
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// Asks it to stop and waits (bounded), then kills it.
  void stop() {
    send("stop");
    for (int i = 0; i < 50; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(100ms);
    }
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1;
  int from_ = -1;
  std::string buffer_;
};

/// Anonymous memory (heap, stacks) of `pid` in KiB: smaps_rollup's Anonymous.
long anonymous_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Anonymous:", 0) == 0) return std::stol(line.substr(10));
  }
  return 0;
}

int run_worker(const cxxopts::ParseResult& r) {
  worker_options o;
  o.ca_dir = r["ca-dir"].as<std::string>();
  o.work_dir = r["work-dir"].as<std::string>();
  o.peer = r["peer"].as<std::string>();
  o.count = r["count"].as<std::size_t>();
  o.first_index = r["first-index"].as<std::size_t>();
  o.window = std::max<std::size_t>(1, r["window"].as<std::size_t>());
  o.keepalive = std::chrono::milliseconds(r["keepalive-ms"].as<long>());
  raise_open_files(static_cast<rlim_t>(o.count) + 256);
  light_worker w(std::move(o));
  if (!w.prepare()) return 1;
  w.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("p2psip-clients-bench",
                           "many idle clients attached to one peer: RSS, CPU, attach time");
  // clang-format off
  options.add_options()
      ("clients", "light clients to attach", cxxopts::value<std::size_t>()->default_value("10000"))
      ("first-clients", "light clients attached before the first RSS reading (the slope's start)",
       cxxopts::value<std::size_t>()->default_value("1000"))
      ("processes", "worker processes holding the light clients",
       cxxopts::value<std::size_t>()->default_value("4"))
      ("sdk-clients", "SDK clients attached from this process (they put and get)",
       cxxopts::value<std::size_t>()->default_value("4"))
      ("idle-seconds", "idle period over which the peer's CPU is measured",
       cxxopts::value<int>()->default_value("30"))
      ("keepalive-ms", "a light client sends a Ping after this long without sending (the SDK's "
       "keepalive_interval)", cxxopts::value<long>()->default_value("20000"))
      ("window", "attaches in progress at once, all workers together (the peer admits 16 "
       "handshakes per source address)", cxxopts::value<std::size_t>()->default_value("8"))
      ("attach-timeout-s", "limit for all clients to attach",
       cxxopts::value<int>()->default_value("600"))
      ("json", "one JSON document on stdout")
      ("worker", "(internal) run as a worker process")
      ("ca-dir", "(worker) the overlay CA directory", cxxopts::value<std::string>())
      ("work-dir", "(worker) where its credentials go", cxxopts::value<std::string>())
      ("peer", "(worker) the peer's address", cxxopts::value<std::string>())
      ("count", "(worker) its clients", cxxopts::value<std::size_t>()->default_value("0"))
      ("first-index", "(worker) number of its first client",
       cxxopts::value<std::size_t>()->default_value("0"))
      ("version", "print the version")
      ("h,help", "help");
  // clang-format on
  std::size_t n = 0, first_n = 0, processes = 0, sdk_n = 0, window = 0;
  int idle_s = 0, attach_timeout_s = 0;
  long keepalive_ms = 0;
  bool json = false;
  try {
    auto r = options.parse(argc, argv);
    if (r.count("help")) {
      std::cout << options.help();
      return 0;
    }
    if (r.count("version")) {
      std::cout << p2psip::tool::version_text("p2psip-clients-bench");
      return 0;
    }
    if (r.count("worker")) {
      if (!r.count("ca-dir") || !r.count("work-dir") || !r.count("peer")) {
        std::cerr << "p2psip-clients-bench: --worker needs --ca-dir, --work-dir and --peer\n";
        return 2;
      }
      return run_worker(r);
    }
    n = r["clients"].as<std::size_t>();
    first_n = r["first-clients"].as<std::size_t>();
    processes = r["processes"].as<std::size_t>();
    sdk_n = r["sdk-clients"].as<std::size_t>();
    idle_s = r["idle-seconds"].as<int>();
    keepalive_ms = r["keepalive-ms"].as<long>();
    window = r["window"].as<std::size_t>();
    attach_timeout_s = r["attach-timeout-s"].as<int>();
    json = r.count("json") > 0;
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << "p2psip-clients-bench: " << p2psip::tool::usage_message(e, argc, argv) << "\n";
    return 2;
  }
  if (n < 2 || processes < 1 || processes > n || first_n < 1 || first_n >= n || sdk_n < 2 ||
      idle_s < 1 || keepalive_ms < 100 || window < 1 || attach_timeout_s < 1) {
    std::cerr << "p2psip-clients-bench: --clients at least 2, --first-clients 1 to clients - 1, "
                 "--processes 1 to clients, --sdk-clients at least 2, --idle-seconds, --window "
                 "and --attach-timeout-s positive, --keepalive-ms at least 100\n";
    return 2;
  }
  FILE* out = json ? stderr : stdout;
  const rlim_t nofile = raise_open_files(static_cast<rlim_t>(n + sdk_n) + 1024);
  if (nofile < n + sdk_n + 64) {
    std::fprintf(stderr,
                 "p2psip-clients-bench: the open files limit (%llu) is below %zu clients; "
                 "raise it (ulimit -Hn) or run as root\n",
                 static_cast<unsigned long long>(nofile), n + sdk_n);
    return 1;
  }
  std::vector<std::unique_ptr<worker_process>> workers;
  try {
    p2psip::test::process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
    p2psip::test::process_overlay::peer_start how;
    how.first = true;
    how.extra_args = {"--log-level", "info", "--max-clients", std::to_string(n + sdk_n + 64)};
    o.start_peer("p0", how);
    if (!o.wait_ring(30s)) throw std::runtime_error("the peer did not start: " + o.log_of(0));
    const auto address = o.peers()[0].address;
    const pid_t peer = o.peers()[0].pid;

    // SDK clients: enrolled now (child processes), before anything is measured.
    std::vector<cl::client_options> sdk_opts;
    for (std::size_t i = 0; i < sdk_n + 2; ++i) {
      sdk_opts.push_back(p2psip::bench::client_options_for(o, "sdk" + std::to_string(i), address));
    }
    // One attached and gone first: one-time costs (caches, arenas) are not charged per client.
    { auto warm = p2psip::bench::attached_client(sdk_opts.back()); }
    std::this_thread::sleep_for(500ms);
    const long rss_empty = p2psip::bench::rss_kib(peer);

    // The workers: credentials issued in each, in parallel; "ready" once done.
    const auto self = fs::read_symlink("/proc/self/exe").string();
    const std::size_t per_worker_window = std::max<std::size_t>(1, window / processes);
    std::vector<std::size_t> share(processes, n / processes);
    for (std::size_t w = 0; w < n % processes; ++w) ++share[w];
    const auto t_prepare = steady::now();
    std::size_t first_index = 0;
    for (std::size_t w = 0; w < processes; ++w) {
      const auto dir = o.dir() / ("worker" + std::to_string(w));
      fs::create_directories(dir);
      workers.push_back(std::make_unique<worker_process>(
          std::vector<std::string>{
              self, "--worker", "--ca-dir", (o.dir() / "ca").string(), "--work-dir", dir.string(),
              "--peer", address, "--count", std::to_string(share[w]), "--first-index",
              std::to_string(first_index), "--window", std::to_string(per_worker_window),
              "--keepalive-ms", std::to_string(keepalive_ms)},
          dir / "stderr.log"));
      first_index += share[w];
    }
    for (auto& w : workers) w->expect("ready", steady::now() + std::chrono::seconds(600));
    const double prepare_s = std::chrono::duration<double>(steady::now() - t_prepare).count();

    // The SDK clients attach first: they are among the attached clients throughout.
    std::vector<std::unique_ptr<cl::client>> sdk;
    for (std::size_t i = 0; i < sdk_n; ++i) {
      sdk.push_back(p2psip::bench::attached_client(sdk_opts[i]));
    }

    // Attaches every worker's share of `total` light clients; returns the seconds taken.
    const auto attach_up_to = [&](std::size_t total) {
      const auto t0 = steady::now();
      const auto limit = t0 + std::chrono::seconds(attach_timeout_s);
      for (std::size_t w = 0; w < processes; ++w) {
        // The same proportion of each worker's share.
        workers[w]->send("attach " + std::to_string((share[w] * total + n - 1) / n));
      }
      for (auto& w : workers) w->expect("attached", limit);
      return std::chrono::duration<double>(steady::now() - t0).count();
    };
    // Every light client's link answers a Ping; the answers' count comes back.
    const auto ping_all = [&] {
      std::size_t answered = 0, sent = 0;
      for (auto& w : workers) w->send("ping");
      for (auto& w : workers) {
        std::istringstream line(w->expect("pinged", steady::now() + 120s).substr(7));
        std::size_t a = 0, s = 0;
        line >> a >> s;
        answered += a;
        sent += s;
      }
      return std::pair{answered, sent};
    };
    // Each RSS reading follows one Ping from every client: a client costs the peer its
    // certificate (parsed and checked into the trust store's cache) only once it sent a signed
    // message, which an idle one does with its first keepalive.
    const double first_attach_s = attach_up_to(first_n);
    (void)ping_all();
    std::this_thread::sleep_for(2s);
    const long rss_first = p2psip::bench::rss_kib(peer);
    const long anon_first = anonymous_kib(peer);
    const double rest_attach_s = attach_up_to(n);
    (void)ping_all();
    std::this_thread::sleep_for(2s);
    const long rss_all = p2psip::bench::rss_kib(peer);
    const long anon_all = anonymous_kib(peer);
    const double slope =
        static_cast<double>(rss_all - rss_first) / static_cast<double>(n - first_n);
    const double anon_slope =
        static_cast<double>(anon_all - anon_first) / static_cast<double>(n - first_n);
    const double mean_per_client =
        static_cast<double>(rss_all - rss_empty) / static_cast<double>(n + sdk_n);

    // Idle: every client attached and keeping alive; the peer's CPU over the period.
    const double cpu0 = p2psip::bench::cpu_seconds(peer);
    const auto idle0 = steady::now();
    std::this_thread::sleep_for(std::chrono::seconds(idle_s));
    const double idle_wall = std::chrono::duration<double>(steady::now() - idle0).count();
    const double idle_cpu_pct = 100.0 * (p2psip::bench::cpu_seconds(peer) - cpu0) / idle_wall;
    const long rss_idle = p2psip::bench::rss_kib(peer);

    // One more SDK client, timed from create() to attached.
    const auto t_new = steady::now();
    auto newcomer = p2psip::bench::attached_client(sdk_opts[sdk_n]);
    const double new_attach_ms =
        std::chrono::duration<double, std::milli>(steady::now() - t_new).count();
    sdk.push_back(std::move(newcomer));

    // Put by each SDK client, get of each value by the next one.
    std::size_t puts = 0, gets = 0;
    for (std::size_t i = 0; i < sdk.size(); ++i) {
      const std::string text = "clients-bench value " + std::to_string(i);
      if (sdk[i]->put("clients-bench-" + std::to_string(i), cl::bytes(text.begin(), text.end()))) {
        ++puts;
      }
    }
    for (std::size_t i = 0; i < sdk.size(); ++i) {
      const std::string text = "clients-bench value " + std::to_string(i);
      auto got = sdk[(i + 1) % sdk.size()]->get("clients-bench-" + std::to_string(i));
      if (got && got->size() == 1 && got->front().value == cl::bytes(text.begin(), text.end())) {
        ++gets;
      }
    }
    // Every light client's link still answers.
    const auto [pinged, ping_sent] = ping_all();
    const std::string peer_links = o.status_field(0, "links");

    const std::size_t attached_total = n + sdk_n;
    std::fprintf(out,
                 "p2psip-clients-bench: %zu light clients in %zu processes + %zu SDK clients "
                 "attached to one peer (credentials issued in %.1f s; attached in %.1f s + "
                 "%.1f s)\n",
                 n, processes, sdk_n, prepare_s, first_attach_s, rest_attach_s);
    std::fprintf(out,
                 "  peer RSS: %ld KiB empty, %ld KiB with %zu clients, %ld KiB with %zu, %ld KiB "
                 "after %d s idle\n",
                 rss_empty, rss_first, first_n + sdk_n, rss_all, attached_total, rss_idle, idle_s);
    std::fprintf(out,
                 "  peer RSS per attached client: %.1f KiB (slope %zu -> %zu; %.1f KiB of it "
                 "anonymous; mean over all %.1f KiB)  (target <= 16: %s; issue 14 <= 32: %s)\n",
                 slope, first_n + sdk_n, attached_total, anon_slope, mean_per_client,
                 slope <= 16.0 ? "met" : "NOT MET", slope <= 32.0 ? "met" : "NOT MET");
    std::fprintf(out,
                 "  peer CPU while idle: %.2f %% of a core over %.0f s (keepalive every %ld ms)\n",
                 idle_cpu_pct, idle_wall, keepalive_ms);
    std::fprintf(out,
                 "  a new SDK client attached in %.0f ms with %zu attached  (target <= 1000: %s)\n",
                 new_attach_ms, attached_total, new_attach_ms <= 1000.0 ? "met" : "NOT MET");
    std::fprintf(out, "  put/get by the SDK clients: %zu/%zu put, %zu/%zu read back by another\n",
                 puts, sdk.size(), gets, sdk.size());
    std::fprintf(
        out,
        "  light clients answering a Ping at the end: %zu of %zu (%zu attached); peer links=%s\n",
        pinged, ping_sent, n, peer_links.c_str());
    if (json) {
      std::ostringstream js;
      js << "{\"clients\": " << n << ", \"processes\": " << processes
         << ", \"sdk_clients\": " << sdk_n << ", \"first_clients\": " << first_n
         << ", \"prepare_s\": " << prepare_s << ", \"attach_first_s\": " << first_attach_s
         << ", \"attach_rest_s\": " << rest_attach_s << ", \"rss_empty_kib\": " << rss_empty
         << ", \"rss_first_kib\": " << rss_first << ", \"rss_all_kib\": " << rss_all
         << ", \"rss_idle_kib\": " << rss_idle << ", \"rss_kib_per_client\": " << slope
         << ", \"anonymous_kib_per_client\": " << anon_slope
         << ", \"rss_kib_per_client_mean\": " << mean_per_client
         << ", \"idle_cpu_pct\": " << idle_cpu_pct << ", \"idle_seconds\": " << idle_wall
         << ", \"keepalive_ms\": " << keepalive_ms << ", \"new_attach_ms\": " << new_attach_ms
         << ", \"puts\": " << puts << ", \"gets\": " << gets << ", \"sdk_total\": " << sdk.size()
         << ", \"pinged\": " << pinged << ", \"ping_sent\": " << ping_sent
         << ", \"target_rss_16_met\": " << (slope <= 16.0 ? "true" : "false")
         << ", \"target_rss_32_met\": " << (slope <= 32.0 ? "true" : "false")
         << ", \"target_attach_1s_met\": " << (new_attach_ms <= 1000.0 ? "true" : "false") << "}";
      std::cout << js.str() << "\n";
    }
    const bool all_worked =
        puts == sdk.size() && gets == sdk.size() && pinged == n && ping_sent == n;
    for (auto& w : workers) w->stop();
    workers.clear();
    sdk.clear();
    return all_worked ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "p2psip-clients-bench: " << e.what() << "\n";
    return 1;
  }
}
