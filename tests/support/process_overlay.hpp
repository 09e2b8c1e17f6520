#pragma once
// A real overlay for tests and benchmarks: an overlay CA and configuration made with
// p2psip-admin in a temporary directory, and p2psip-peer processes on 127.0.0.1 with ports they
// pick themselves (read back from their logs). Every wait is bounded; the destructor kills what
// is still running and removes the directory (unless P2PSIP_KEEP_TEST_DIR is set).

#include <sys/types.h>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace p2psip::test {

/// The whole content of a file ("" when it cannot be read).
std::string read_file(const std::filesystem::path& p);
/// The path of tool `name` in PATH, /usr/sbin or /usr/local/sbin; throws naming the Debian
/// package that has it (tests never skip for a missing tool).
std::string find_tool(const std::string& name, const std::string& package);
/// A port of 127.0.0.1 free for TCP and UDP at once (SIP servers use the number for both).
int free_tcp_udp_port();

/// Starts args[0] with `args`: standard input from /dev/null, standard output to `out` and
/// standard error to `err` (created; appended to when `append`, else truncated). Returns the
/// pid; throws std::runtime_error when it cannot start.
pid_t spawn_process(const std::vector<std::string>& args, const std::filesystem::path& out,
                    const std::filesystem::path& err, bool append);

struct peer_process {
  std::string name;
  pid_t pid = -1;       ///< -1 when not running
  std::string address;  ///< "127.0.0.1:PORT" once listening
  std::string node_id;  ///< hex, from its status lines
  std::filesystem::path log;
  std::filesystem::path data_dir;  ///< empty: --memory
};

class process_overlay {
 public:
  /// `peer_binary` and `admin_binary`: paths of p2psip-peer and p2psip-admin.
  process_overlay(std::string peer_binary, std::string admin_binary,
                  std::string overlay_name = "test.p2psip.example");
  ~process_overlay();
  process_overlay(const process_overlay&) = delete;
  process_overlay& operator=(const process_overlay&) = delete;

  const std::filesystem::path& dir() const noexcept { return dir_; }
  std::filesystem::path config_file() const { return dir_ / "ca" / "overlay.xml"; }

  /// Issues credentials for `name` (DIR/NAME/node.crt, node.key) with user NAME@<overlay>.
  /// Throws std::runtime_error (with the admin's message) on failure.
  void enroll(const std::string& name);
  std::filesystem::path cert_of(const std::string& name) const;
  std::filesystem::path key_of(const std::string& name) const;

  /// Starts peer `name` (enrolled first if needed): the first one with --first, later ones
  /// bootstrapping through the first running peer. `durable`: --data-dir DIR/NAME.data (kept
  /// across restarts), else --memory. Waits until it listens. Returns its index.
  std::size_t start_peer(const std::string& name, bool durable = false,
                         std::vector<std::string> extra_args = {});
  /// How start_peer(name, how) starts a peer when the defaults above do not fit.
  struct peer_start {
    bool durable = false;
    bool first = false;                  ///< --first (also without bootstrap peers)
    std::vector<std::string> bootstrap;  ///< --bootstrap-peer for each; none: the defaults
    std::string listen = "127.0.0.1:0";
    std::vector<std::string> extra_args;
  };
  std::size_t start_peer(const std::string& name, const peer_start& how);
  /// Starts `n` peers p0..p(n-1) and waits until every one reports joined=yes and the ring is
  /// consistent (each peer's first successor is the next Node-ID in order). Throws on timeout.
  void start_ring(std::size_t n, bool durable = false,
                  std::chrono::milliseconds timeout = std::chrono::seconds(60));
  /// Waits until every running peer is joined and the ring of running peers is consistent.
  bool wait_ring(std::chrono::milliseconds timeout);

  /// SIGKILL, reaped.
  void kill_peer(std::size_t i);
  /// SIGTERM, waits for the exit (bounded); returns the exit status (-1 if killed by timeout).
  int stop_peer(std::size_t i, std::chrono::milliseconds timeout = std::chrono::seconds(15));
  /// Starts a stopped peer again with the same name, data directory and arguments.
  void restart_peer(std::size_t i);

  std::vector<peer_process>& peers() noexcept { return peers_; }
  /// Addresses of the running peers.
  std::vector<std::string> addresses() const;
  /// The last status line fields of peer i: KEY=VALUE pairs, e.g. "succ", "pred", "joined".
  std::string status_field(std::size_t i, const std::string& key) const;
  /// The peer's whole log (for failure messages).
  std::string log_of(std::size_t i) const;

  /// Runs p2psip-admin with `args`; throws std::runtime_error with its output when it fails.
  void run_admin(const std::vector<std::string>& args);

 private:
  pid_t spawn(const std::vector<std::string>& args, const std::filesystem::path& log);
  void wait_listening(peer_process& p, std::chrono::milliseconds timeout);

  std::string peer_binary_;
  std::string admin_binary_;
  std::string overlay_;
  std::filesystem::path dir_;
  std::vector<peer_process> peers_;
  std::vector<std::vector<std::string>> peer_args_;
};

}  // namespace p2psip::test
