#pragma once
// The accept loop behind listener (RELOAD links) and stream_listener (application streams): binds
// and listens, accepts with back-off on errors, caps the handshakes in progress, and counts. What
// runs on an accepted socket is the owner's business (start_fn); the owner reports the end of
// each handshake through handshake_done(), most simply with hand_up().

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "p2psip/protocol/result.hpp"
#include "p2psip/transport/listener.hpp"

namespace p2psip::transport::detail {

class accept_core : public std::enable_shared_from_this<accept_core> {
 public:
  /// Closes one connection whose handshake is in progress (close() calls it).
  using abort_fn = std::function<void()>;
  /// Starts the TLS handshake on an accepted socket, which the accept loop numbered `id`. The
  /// owner must call handshake_done(id, ...) once when that handshake ends, and returns how to
  /// abort it.
  using start_fn = std::function<abort_fn(asio::ip::tcp::socket socket, std::uint64_t id)>;
  using log_fn = std::function<void(std::string_view)>;

  /// Opens, binds (with reuse_address) and listens on `local`. Errors: asio's.
  static protocol::result<std::shared_ptr<accept_core>> bind(const asio::any_io_executor& executor,
                                                             const asio::ip::tcp::endpoint& local,
                                                             const accept_config& cfg);

  /// Starts the accept loop. It holds `owner` (the public listener) until close() or until the
  /// executor stops. An exception out of the loop is logged through `log` and closes.
  void start(start_fn start, log_fn log, std::shared_ptr<void> owner);

  /// The end of handshake `id`: frees its slot and counts it (an established connection only
  /// while open). Returns whether the listener is open, i.e. whether the connection may be handed
  /// up.
  bool handshake_done(std::uint64_t id, bool established);

  /// Stops accepting and aborts the handshakes in progress; releases the owner. Idempotent.
  void close();

  const asio::ip::tcp::endpoint& local_endpoint() const noexcept { return local_; }
  bool is_open() const noexcept { return open_; }
  const listener_stats& stats() const noexcept { return stats_; }
  std::size_t pending_handshakes() const noexcept { return handshaking_.size(); }

  /// Use bind().
  accept_core(const asio::any_io_executor& executor, const accept_config& cfg);

 private:
  asio::awaitable<void> loop(std::shared_ptr<accept_core> self, std::shared_ptr<void> owner);

  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer backoff_timer_;
  asio::steady_timer slot_timer_;  ///< wakes the accept loop when a handshake slot frees up
  accept_config cfg_;
  start_fn start_;
  asio::ip::tcp::endpoint local_;
  bool open_ = false;
  bool waiting_for_slot_ = false;
  std::uint64_t next_id_ = 0;
  std::vector<std::pair<std::uint64_t, abort_fn>> handshaking_;  ///< in progress, by id
  listener_stats stats_;
};

/// The end of handshake `id` of `conn` (a link or a tls_stream) for its listener: counts it on
/// `core`; hands an established connection to `on_ok`, or closes it when the listener is closed
/// or has no handler; reports a failure to `on_failure` while the listener is open.
template <class Connection, class OnOk, class OnFailure>
void hand_up(accept_core& core, std::uint64_t id, const std::shared_ptr<Connection>& conn,
             std::error_code result, const OnOk& on_ok, const OnFailure& on_failure) {
  const bool open = core.handshake_done(id, !result);
  if (result) {
    if (open && on_failure) on_failure(conn->remote_endpoint(), result, conn->close_detail());
    return;
  }
  if (open && on_ok) {
    on_ok(conn);
  } else {
    conn->close();  // after close() no handler runs; a late handshake is not handed up
  }
}

/// The start_fn of a listener `owner` (held weakly) whose connections are `Connection`s made by
/// `make(owner&, socket, hook)`; a connection calls `hook(conn, result)` once, posted, when its
/// handshake ends. Then `done(owner&, id, conn, result)` takes the connection over (typically
/// through hand_up); with the owner gone an established connection is closed. Aborting a
/// handshake closes its connection.
template <class Connection, class Owner, class Make, class Done>
accept_core::start_fn handshake_starter(const std::weak_ptr<Owner>& owner, Make make, Done done) {
  return [owner, make = std::move(make), done = std::move(done)](
             asio::ip::tcp::socket socket, std::uint64_t id) -> accept_core::abort_fn {
    const auto me = owner.lock();  // the accept loop holds its owner: always there
    if (!me) return {};
    auto hook = [owner, done, id](const std::shared_ptr<Connection>& conn, std::error_code result) {
      if (const auto still = owner.lock()) {
        done(*still, id, conn, result);
      } else if (!result) {
        conn->close();  // nobody to hand it to
      }
    };
    const std::weak_ptr<Connection> started = make(*me, std::move(socket), std::move(hook));
    return [started] {
      if (const auto conn = started.lock()) conn->close();
    };
  };
}

}  // namespace p2psip::transport::detail
