#pragma once
// Accepts TCP connections and turns them into application streams (tls_stream.hpp), TLS server
// side by default: for the node that answers AppAttach (RFC 6940 section 6.5.2). The same accept
// loop as the link listener (listener.hpp): only streams whose handshake succeeded are handed
// up, accept() errors back off, and admission under pressure is the same (a short handshake
// bound, per-source and overall caps on handshakes in progress that shed the oldest, counters
// and rate-limited pressure lines).
// Threading as for streams: use it from the thread running its executor.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <system_error>

#include <asio/any_io_executor.hpp>
#include <asio/ip/tcp.hpp>

#include "p2psip/protocol/result.hpp"
#include "p2psip/transport/credentials.hpp"
#include "p2psip/transport/listener.hpp"
#include "p2psip/transport/tls_stream.hpp"

namespace p2psip::transport {

/// Settings of a stream listener: how it accepts (role, admission limits, back-off, backlog,
/// pressure lines) and the settings of every accepted stream.
struct stream_listener_config : accept_config {
  /// Settings of every accepted stream.
  stream_config stream{};
};

/// Accepts TCP connections and hands up the application streams whose handshake succeeded.
class stream_listener : public std::enable_shared_from_this<stream_listener> {
  struct token {
    explicit token() = default;
  };

 public:
  /// Gets each established stream (its peer verified: check peer_node_ids() against the node the
  /// AppAttach was exchanged with). Runs on the executor.
  using stream_handler = std::function<void(std::shared_ptr<tls_stream>)>;
  /// Gets each failed handshake: the remote endpoint, the close reason and its detail.
  using failure_handler = listener::failure_handler;

  /// Binds `local` (port 0 picks a free port; IPv4 or IPv6) and starts accepting. Errors: the
  /// bind/listen error (asio's category), invalid_credentials when `creds` is null.
  static protocol::result<std::shared_ptr<stream_listener>> open(
      const asio::any_io_executor& executor, const asio::ip::tcp::endpoint& local,
      std::shared_ptr<const tls_credentials> creds, stream_listener_config cfg,
      stream_handler on_stream, failure_handler on_failure = {});

  /// The bound address (with the port chosen for port 0).
  const asio::ip::tcp::endpoint& local_endpoint() const noexcept;
  /// Stops accepting; no handler runs afterwards. Streams already handed up stay open;
  /// handshakes in progress are closed. The accept loop holds the listener until close() (or
  /// until the executor stops): call it when done. Idempotent.
  void close();
  /// True until close().
  bool is_open() const noexcept;
  /// Accepted connections, established streams, failed handshakes, accept errors, shed and
  /// timed-out handshakes.
  const listener_stats& stats() const noexcept;
  /// Handshakes in progress.
  std::size_t pending_handshakes() const noexcept;

  /// Use open() (only it can name the token).
  stream_listener(token, std::shared_ptr<detail::accept_core> core,
                  std::shared_ptr<const tls_credentials> creds, stream_listener_config cfg,
                  stream_handler on_stream, failure_handler on_failure);
  ~stream_listener();

 private:
  std::shared_ptr<const tls_credentials> creds_;
  stream_listener_config cfg_;
  stream_handler on_stream_;
  failure_handler on_failure_;
  std::shared_ptr<detail::accept_core> core_;  ///< the accept loop, shared with listener
};

}  // namespace p2psip::transport
