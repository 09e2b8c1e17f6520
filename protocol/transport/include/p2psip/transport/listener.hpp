#pragma once
// Accepts TCP connections and turns them into links (TLS server side by default). Hands up only
// links whose handshake succeeded; backs off when accept() fails (EMFILE, ENOBUFS, ...).
//
// Admission under pressure: a connection is unauthenticated until its TLS handshake completes,
// and a flood of idle ones (no certificate needed, not a byte sent) must not keep a real peer
// out. So the handshakes in progress are capped (max_handshakes, and max_handshakes_per_source
// per IPv4 address or IPv6 /64), and a newcomer is always admitted: at its source's limit it
// sheds that source's oldest handshake, into a full table it sheds the oldest of all. The oldest
// is the one most likely idle; a real peer's handshake takes a few round trips, so it completes
// long before it would become the oldest. Accepted connections also get a short handshake bound
// (accept_config::handshake_timeout, 2 s, when shorter than the link's own). Accepting pauses
// only on accept() errors. Shed and timed-out connections are counted (listener_stats) and
// reported, rate-limited, through accept_config::pressure_log.
// Threading as for links: use it from the thread running its executor.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/socket_base.hpp>
#include <asio/steady_timer.hpp>

#include "p2psip/protocol/result.hpp"
#include "p2psip/transport/credentials.hpp"
#include "p2psip/transport/link.hpp"

namespace p2psip::transport {

namespace detail {
class accept_core;
}

/// How a listener accepts connections (shared by listener and stream_listener).
struct accept_config {
  /// TLS role of accepted connections.
  tls_role role = tls_role::server;
  /// Handshakes in progress at most. A connection accepted when all are taken sheds (closes) the
  /// oldest handshake in progress; accepting never pauses for this.
  std::size_t max_handshakes = 64;
  /// Handshakes in progress from one source (an IPv4 address, or the /64 of an IPv6 address) at
  /// most. A connection from a source at its limit sheds that source's oldest handshake, not
  /// itself: a real client behind the same address (or NAT) as a flooder still gets in.
  std::size_t max_handshakes_per_source = 16;
  /// The TLS handshake of an accepted connection must complete within this (or within the
  /// connection's own handshake_timeout when that is shorter), else it is closed with
  /// handshake_timeout. A handshake takes a few round trips; an idle connection holds a slot.
  std::chrono::milliseconds handshake_timeout{2000};
  /// Gets the lines about pressure (shed and timed-out handshakes), meant for WARN: at most one
  /// line per source per pressure_log_interval, and a summary of the rest at the end of each
  /// interval ("N unauthenticated connections closed in the last X s ..."). Runs on the
  /// executor. Empty: the lines go to the connections' log (link_config::log, stream_config::log).
  std::function<void(std::string_view)> pressure_log;
  std::chrono::milliseconds pressure_log_interval{10000};
  /// Pause after a failed accept, doubling up to max_backoff; reset by a successful accept.
  std::chrono::milliseconds min_backoff{10};
  std::chrono::milliseconds max_backoff{2000};
  int backlog = asio::socket_base::max_listen_connections;
};

/// Settings of a listener of RELOAD links.
struct listener_config : accept_config {
  /// Settings of every accepted link.
  link_config link{};
};

/// Counters of a listener (or stream_listener).
struct listener_stats {
  std::uint64_t accepted = 0;           ///< TCP connections accepted
  std::uint64_t established = 0;        ///< handshakes that succeeded (connections handed up)
  std::uint64_t handshakes_failed = 0;  ///< handshakes that failed or timed out
  std::uint64_t accept_errors = 0;      ///< accept() failures (each followed by a back-off)
  /// Handshakes closed to admit a newcomer when all max_handshakes were in progress (also in
  /// handshakes_failed).
  std::uint64_t shed_oldest = 0;
  /// Handshakes closed to admit a newcomer from the same source at max_handshakes_per_source
  /// (also in handshakes_failed).
  std::uint64_t shed_per_source = 0;
  /// Handshakes closed for not completing within handshake_timeout (also in handshakes_failed).
  std::uint64_t handshake_timeouts = 0;
  std::uint64_t pressure_lines = 0;  ///< lines handed to pressure_log (rate-limited)
};

/// Accepts TCP connections and hands up the RELOAD links whose handshake succeeded.
class listener : public std::enable_shared_from_this<listener> {
 public:
  /// Gets each established link (its peer verified). Runs on the executor.
  using link_handler = std::function<void(std::shared_ptr<link>)>;
  /// Gets each failed handshake: the remote endpoint, the close reason and its detail.
  using failure_handler = std::function<void(const asio::ip::tcp::endpoint& remote,
                                             std::error_code reason, const std::string& detail)>;

  /// Binds `local` (port 0 picks a free port; IPv4 or IPv6) and starts accepting. Errors: the
  /// bind/listen error (asio's category), invalid_credentials when `creds` is null without
  /// cfg.link.insecure_plaintext.
  static protocol::result<std::shared_ptr<listener>> open(
      const asio::any_io_executor& executor, const asio::ip::tcp::endpoint& local,
      std::shared_ptr<const tls_credentials> creds, listener_config cfg, link_handler on_link,
      failure_handler on_failure = {});

  /// The bound address (with the port chosen for port 0).
  const asio::ip::tcp::endpoint& local_endpoint() const noexcept;
  /// Stops accepting; no handler runs afterwards. Links already handed up stay open; handshakes
  /// in progress are closed. The accept loop holds the listener until close() (or until the
  /// executor stops): call it when done.
  void close();
  bool is_open() const noexcept;
  const listener_stats& stats() const noexcept;
  /// Handshakes in progress.
  std::size_t pending_handshakes() const noexcept;

  /// Use open().
  listener(const asio::any_io_executor& executor, std::shared_ptr<const tls_credentials> creds,
           listener_config cfg, link_handler on_link, failure_handler on_failure);
  ~listener();

 private:
  asio::any_io_executor executor_;
  std::shared_ptr<const tls_credentials> creds_;
  listener_config cfg_;
  link_handler on_link_;
  failure_handler on_failure_;
  std::shared_ptr<detail::accept_core> core_;  ///< the accept loop, shared with stream_listener
};

}  // namespace p2psip::transport
