#pragma once
// Drives one sans-I/O node (node_engine: a peer's overlay_core or a client_node) with Asio: the
// TLS listener (peers only), links opened for the node's open_link actions, one receive loop per
// link, one steady timer re-armed to the node's next deadline, and a bounded clean shutdown
// (Leave, flush, close). Both the peer (peer_runtime, which adds the data store) and the client
// SDK run on it.
//
// Threading: everything runs on the one thread running the io_context given to the constructor;
// call every member from that thread (or through asio::post to it).

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include "p2psip/node/node_engine.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/fifo.hpp"
#include "p2psip/transport/credentials.hpp"
#include "p2psip/transport/link.hpp"
#include "p2psip/transport/listener.hpp"
#include "p2psip/transport/rate_limit.hpp"
#include "p2psip/transport/stream_listener.hpp"
#include "p2psip/transport/tls_stream.hpp"

namespace p2psip::node {

/// Why node_driver::start (or peer_runtime::start) failed: the code of its protocol::error_record,
/// whose message names the address and the system's reason ("cannot listen on 0.0.0.0:6084:
/// Address already in use").
enum class runtime_errc {
  ok = 0,
  listen_failed = 1,          ///< the overlay link listener could not be opened (bind, listen)
  application_listen_failed,  ///< a listener for an AppAttach application could not be opened
};
const std::error_category& runtime_category() noexcept;
std::error_code make_error_code(runtime_errc e) noexcept;

/// Severity of a log line.
enum class log_level : std::uint8_t { debug, info, warn, error };

/// "DEBUG", "INFO", "WARN", "ERROR".
std::string_view log_level_name(log_level l) noexcept;

/// A random_source seeded from std::random_device (splitmix64): transaction ids and jitter only.
class system_random final : public random_source {
 public:
  system_random();
  std::uint64_t next_u64() override;

 private:
  std::uint64_t state_ = 0;
};

/// An application connection (AppAttach, RFC 6940 6.5.2), handed to the usage serving it: a
/// mutually authenticated TLS byte stream (no RELOAD framing) carrying the application's protocol.
struct app_connection {
  std::shared_ptr<transport::tls_stream> stream;
  protocol::node_id remote;  ///< from its certificate
  std::uint16_t application = 0;
  std::uint64_t token = 0;  ///< the AppAttach's (connections we opened); 0 when accepted
};

/// An application a usage serves over AppAttach: connections for it are accepted at `listen`
/// (port 0: any free port) and handed to `connected`, as are those we open for it. Without
/// `listen` the node only opens connections for it until listen_application() is called (a
/// client that serves SIP only once it registers).
struct application_endpoint {
  std::uint16_t id = 0;
  std::optional<asio::ip::tcp::endpoint> listen;
  std::function<void(app_connection)> connected;
};

struct driver_config {
  /// Makes the node once the listener is bound: `listen_port` is the bound port (0 without a
  /// listener), for the address the node announces in its Attach answers.
  std::function<std::unique_ptr<node_engine>(std::uint16_t listen_port)> make_node;
  /// Our configuration document as its file holds it, sent in ConfigUpdates to nodes whose
  /// requests carry an older sequence (RFC 6940 6.3.2.1); null or empty: none sent. Shared
  /// (read-only): the clients of one process hold one copy.
  std::shared_ptr<const protocol::bytes> configuration_document;
  /// Checks and takes a newer document offered in a ConfigUpdate; empty: refused.
  config_update_service::acceptor accept_configuration;
  /// Settings of every application connection (accepted and opened).
  transport::stream_config stream;
  /// Applications served over AppAttach (each with its own listener).
  std::vector<application_endpoint> applications;
  /// Where the listener binds (port 0: any free port); nullopt: no listener (a client).
  std::optional<asio::ip::tcp::endpoint> listen;
  /// Settings of every link (accepted and opened).
  transport::link_config link;
  /// Messages per second, and burst, a client (a node that is not a peer of ours: RFC 6940
  /// 4.2.1) may send us. Enforced by reading its link more slowly, never by dropping: a greedy
  /// client slows itself, through TCP, and nobody else. 0: no limit (a client's own driver).
  std::uint32_t client_messages_per_second = 0;
  std::uint32_t client_burst = 2000;
  /// Requests of one client in progress at most (answered by us or still on their way through
  /// the overlay): its further requests are read once answers went out, so the queues between
  /// peers hold a fair share of each client, and a well-behaved one waits behind few. 0: no
  /// bound.
  std::size_t client_max_in_progress = 0;
  /// Messages waiting for room in a link's send queue (link.max_queued_messages): sent in order
  /// as TLS takes them. Beyond these bounds a message is dropped, counted and logged.
  std::size_t send_backlog_messages = 16384;
  std::size_t send_backlog_bytes = 64 * 1024 * 1024;
  /// Shutdown: how long to wait for the Leave messages to be handed to TLS ...
  std::chrono::milliseconds leave_flush_timeout{2000};
  /// ... and then for the links to finish closing.
  std::chrono::milliseconds close_timeout{3000};
  /// Receives every log line (the node's log actions at debug level); may be empty.
  std::function<void(log_level, std::string_view)> log;
  /// Called after a link came up or went down (for clients watching their attachment).
  std::function<void()> links_changed;
  /// Called after the node's actions were carried out (after every message, timer, link event
  /// and with_node call): lets the owner watch the node's state (the peer's status line) without
  /// polling it. It must not call into the driver.
  std::function<void()> after_actions;
  /// Called when a link the node asked for (open_link_action) starts being dialed ...
  std::function<void(const protocol::ip_address_port& address)> dial_started;
  /// ... and when that dial failed, with the cause in words as the system or TLS gave it ("TCP
  /// connect failed: Connection refused"). A dial that succeeds ends in links_changed. Lets a
  /// client tell "every peer refused" (fail at once) from "still trying" (wait).
  std::function<void(const protocol::ip_address_port& address, const protocol::error_record& why)>
      dial_failed;
};

/// Counters of the driver: what it did with messages the node gave it to send.
struct driver_stats {
  std::uint64_t backlogged = 0;  ///< messages that waited for room in a link's send queue
  /// Messages dropped, by reason: the link's backlog was full ...
  std::uint64_t dropped_backlog_full = 0;
  /// ... the message is larger than the link takes (limits.max_message_size) ...
  std::uint64_t dropped_too_large = 0;
  /// ... or the link closed before the message was handed to TLS (its requests time out and are
  /// sent again by the node; its answers are lost with the link, as the remote's requests are).
  std::uint64_t dropped_link_closed = 0;
  /// Messages from clients that waited for their client's rate (client_messages_per_second).
  std::uint64_t client_messages_delayed = 0;
  /// Times a client's link was not read because it had client_max_in_progress requests out.
  std::uint64_t client_reads_held = 0;
};

class node_driver {
 public:
  /// `tls` must outlive the driver.
  node_driver(asio::io_context& io, driver_config cfg,
              std::shared_ptr<const transport::tls_credentials> tls);
  ~node_driver();
  node_driver(const node_driver&) = delete;
  node_driver& operator=(const node_driver&) = delete;

  /// Binds the listener (when configured), then makes and starts the node. Errors: a
  /// runtime_errc with the bind error in words.
  protocol::result<void, protocol::error_record> start();

  /// Graceful, bounded shutdown: Leave to the neighbors (a peer hands its data to the successor),
  /// waits until those messages are handed to TLS (leave_flush_timeout), closes the listener and
  /// every link, and waits for them to close (close_timeout). Idempotent; never throws.
  asio::awaitable<void> stop();

  /// Runs `f(node, now)` on the node (a request of the application's, say), then carries out
  /// the actions it produced. Nothing runs once stopping. Returns whether it ran.
  template <class F>
  bool with_node(F&& f) {
    if (!node_ || stopping_) return false;
    std::forward<F>(f)(*node_, clock::now());
    pump();
    return true;
  }

  /// The address the listener is bound to (after start(); the configured one otherwise).
  std::optional<asio::ip::tcp::endpoint> local_endpoint() const;
  /// Opens the listener of application `id` (one of driver_config::applications) at `at` after
  /// start(), when it has none yet, and announces it in our AppAttach answers; returns the bound
  /// endpoint (the one open already, if any).
  protocol::result<asio::ip::tcp::endpoint, protocol::error_record> listen_application(
      std::uint16_t id, const asio::ip::tcp::endpoint& at);
  /// The node; only after a successful start().
  const node_engine& node() const noexcept { return *node_; }
  bool started() const noexcept { return node_ != nullptr; }
  bool stopped() const noexcept { return stopped_; }
  std::size_t link_count() const noexcept { return links_.size(); }
  const driver_stats& stats() const noexcept { return stats_; }
  /// The remote endpoint of a link (for logs and clients' status).
  std::optional<asio::ip::tcp::endpoint> remote_endpoint(link_id link) const;
  void log(log_level level, std::string_view text) const;

  /// Runs `make()` (returning an awaitable<void>) as a coroutine on the io_context; an exception
  /// escaping it is logged as a bug rather than thrown out of io_context::run.
  template <class F>
  void spawn(std::string_view what, F&& make);

 private:
  using clock = std::chrono::steady_clock;
  struct link_entry {
    std::shared_ptr<transport::link> link;
    protocol::node_id remote;
    /// Messages waiting for room in the link's send queue, oldest first, and their bytes.
    protocol::fifo<protocol::bytes> backlog;  ///< no memory while empty (nearly always)
    std::size_t backlog_bytes = 0;
    bool draining = false;  ///< a coroutine is moving the backlog into the link
    transport::token_bucket client_bucket;
  };

  void add_link(std::shared_ptr<transport::link> l, std::optional<protocol::node_id> expected,
                link_origin origin);
  void link_closed(link_id id, std::error_code reason);
  asio::awaitable<void> receive_loop(link_id id, std::shared_ptr<transport::link> l);
  /// The link's remote has not shown itself to be a peer (RFC 6940 4.2.1): a client's.
  bool from_client(link_id id) const;
  /// Waits until the client at the other end of `id` may send another message: its rate, and
  /// its requests in progress.
  asio::awaitable<void> pace_client(link_id id);
  /// Waits while the client at the other end of `id` has client_max_in_progress requests out.
  asio::awaitable<void> hold_while_busy(link_id id);
  void send_on(link_id id, protocol::bytes data);
  asio::awaitable<void> drain_backlog(link_id id, std::shared_ptr<transport::link> l);
  /// A dropped message: counted, and logged at WARN at most once per 10 s per reason.
  void dropped(std::uint64_t& counter, link_id id, std::string_view why);
  /// Logs "WHAT N COUNTED WHY (last: link, remote)" at most once per 10 s per (what, why), N
  /// counting the events since the last line: pressure an admin should see, without a flood.
  void report(log_level level, link_id id, std::string_view what, std::string_view counted,
              std::string_view why);
  /// Logs "refused KIND from IP:PORT: WHY" at INFO (a TLS handshake, a message for another
  /// overlay, an oversized frame): an admin can find the misconfigured node, and a flood of them
  /// costs at most refusal_burst lines and then one a second per kind.
  void refused(std::string_view kind, const asio::ip::tcp::endpoint& remote, std::string_view why);
  asio::awaitable<void> open_link(protocol::ip_address_port address,
                                  std::optional<protocol::node_id> expected);
  asio::awaitable<void> timer_loop();
  protocol::result<void, protocol::error_record> open_application_listeners();
  protocol::result<asio::ip::tcp::endpoint, protocol::error_record> open_application_listener(
      std::uint16_t id, const asio::ip::tcp::endpoint& at);
  void open_app_connection(open_app_connection_action act);
  asio::awaitable<void> app_connect(open_app_connection_action act);
  void application_connected(app_connection c);
  void pump();
  void arm_timer();
  void execute(action& a);

  asio::io_context& io_;
  driver_config cfg_;
  std::shared_ptr<const transport::tls_credentials> tls_;
  std::unique_ptr<node_engine> node_;
  std::shared_ptr<transport::listener> listener_;
  std::vector<std::shared_ptr<transport::stream_listener>> app_listeners_;
  std::map<std::uint16_t, asio::ip::tcp::endpoint> app_listen_points_;
  std::vector<std::weak_ptr<transport::tls_stream>> app_streams_;
  std::map<link_id, link_entry> links_;
  std::uint64_t next_link_ = 1;
  driver_stats stats_;
  /// One throttle per reported (what, why).
  std::map<std::string, log_throttle, std::less<>> report_log_;
  /// Lines about what a remote sent that we refused, per kind: a burst, then one a second; the
  /// lines held back are counted in the next one.
  struct refusal_log {
    transport::token_bucket lines;
    std::uint64_t held_back = 0;
  };
  std::map<std::string, refusal_log, std::less<>> refusal_log_;
  asio::steady_timer timer_;
  std::optional<time_point> armed_;
  bool stopping_ = false;
  bool stopped_ = false;
  bool in_pump_ = false;
  /// Set while the driver lives; coroutines and handlers check it before touching `this`.
  std::shared_ptr<bool> alive_;
};

template <class F>
void node_driver::spawn(std::string_view what, F&& make) {
  std::weak_ptr<bool> alive = alive_;
  asio::co_spawn(io_, std::forward<F>(make)(),
                 [this, alive, name = std::string(what)](const std::exception_ptr& e) {
                   if (!e || alive.expired()) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     log(log_level::error, name + ": unexpected exception: " + ex.what());
                   } catch (...) {
                     log(log_level::error, name + ": unexpected exception");
                   }
                 });
}

}  // namespace p2psip::node

template <>
struct std::is_error_code_enum<p2psip::node::runtime_errc> : std::true_type {};
