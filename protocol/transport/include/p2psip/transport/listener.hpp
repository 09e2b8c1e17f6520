#pragma once
// Accepts TCP connections and turns them into links (TLS server side by default). Hands up only
// links whose handshake succeeded; backs off when accept() fails (EMFILE, ENOBUFS, ...); caps the
// handshakes in progress so a flood of half-open TLS connections cannot exhaust memory.
// Threading as for links: use it from the thread running its executor.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
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
  /// Handshakes in progress at most; accepting pauses at this count.
  std::size_t max_handshakes = 64;
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
