#pragma once
// The accept loop behind listener (RELOAD links) and stream_listener (application streams): binds
// and listens, accepts with back-off on errors, admits each connection into a bounded table of
// handshakes in progress, and counts. What runs on an accepted socket is the owner's business
// (start_fn); the owner reports the end of each handshake through handshake_done(), most simply
// with hand_up().
//
// Admission under pressure: accepting never pauses for a full table. A newcomer from a source at
// its per-source limit sheds that source's oldest handshake; a newcomer into a full table sheds
// the oldest handshake overall. An idle flooder's connections are the oldest; a real client's
// handshake ends within milliseconds, long before enough newer connections push it out. The
// policy (admission_table) and the rate-limited pressure lines (pressure_reporter) take `now`
// and do no I/O, so tests drive them with a fake clock.

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/socket.h>

#include "io_util.hpp"
#include "p2psip/protocol/result.hpp"
#include "p2psip/transport/listener.hpp"

namespace p2psip::transport::detail {

/// Closes one connection whose handshake is in progress.
using abort_fn = std::function<void()>;

/// What the per-source limit counts by: an IPv4 address (IPv4-mapped IPv6 included) or the /64
/// prefix of an IPv6 address (one host or site usually holds a whole /64).
asio::ip::address admission_source(const asio::ip::address& remote);

/// "address:port", IPv6 in brackets.
std::string endpoint_text(const asio::ip::tcp::endpoint& ep);

/// The handshake timeout of an accepted connection: the shorter of the accept side's bound and
/// the connection's own (link_config or stream_config), at least 1 ms.
std::chrono::milliseconds accepted_handshake_timeout(const accept_config& cfg,
                                                     std::chrono::milliseconds connection_timeout);

/// The handshakes in progress of one listener, oldest first, and which one to shed for a
/// newcomer. No I/O; at most max_total entries (linear scans are fine at that size).
class admission_table {
 public:
  struct entry {
    std::uint64_t id = 0;
    asio::ip::address source;  ///< admission_source() of the remote address
    clock_type::time_point started{};
    abort_fn abort;
  };
  enum class shed_reason {
    per_source,  ///< the newcomer's source was at max_per_source: its oldest goes
    oldest,      ///< the table was full: the oldest of all goes
  };
  struct shed {
    entry victim;
    shed_reason reason;
  };

  /// Limits below 1 count as 1.
  admission_table(std::size_t max_total, std::size_t max_per_source);

  /// Makes room for a newcomer from `source`: removes and returns the handshake to shed, if any.
  /// After it, add() of one entry from `source` respects both limits.
  std::optional<shed> make_room(const asio::ip::address& source);
  /// Adds a newcomer, the newest.
  void add(entry e);
  /// Removes handshake `id` and returns it; nothing when it is not in the table (shed already).
  std::optional<entry> remove(std::uint64_t id);
  /// Empties the table, returning what was in it.
  std::deque<entry> take_all();

  std::size_t size() const noexcept { return entries_.size(); }
  /// Handshakes in progress from `source`.
  std::size_t count(const asio::ip::address& source) const;

 private:
  std::size_t max_total_;
  std::size_t max_per_source_;
  std::deque<entry> entries_;  ///< oldest first
};

/// What happened to an unauthenticated connection, for the pressure lines.
enum class pressure_event {
  shed_oldest,        ///< closed because every handshake slot was taken
  shed_per_source,    ///< closed because its source was at its per-source limit
  handshake_timeout,  ///< closed because it did not complete the TLS handshake in time
};

/// Rate-limited lines about pressure on a listener: at most one line per source per `interval`
/// (and lines for at most max_sources_per_interval sources per interval, so a flood from many
/// addresses stays short), and at the end of an interval in which some events went without a
/// line of their own, one summary of them all ("N connections shed in the last X s ..."). No
/// I/O: note() and on_timer() return the line to log.
class pressure_reporter {
 public:
  static constexpr std::size_t max_sources_per_interval = 8;

  /// `listener` names the listener in every line; an interval below 1 ms counts as 1 ms.
  pressure_reporter(std::string listener, std::chrono::milliseconds interval,
                    std::size_t max_handshakes, std::size_t max_per_source,
                    std::chrono::milliseconds handshake_timeout);

  /// Notes `event` on a connection from `source` (its handshake `age` old) at `now`; returns the
  /// line to log now, if any. Call on_timer(now) first: an interval that has ended gets its
  /// summary before the next event starts a new one.
  std::optional<std::string> note(pressure_event event, const asio::ip::address& source,
                                  clock_type::duration age, clock_type::time_point now);
  /// When on_timer() has a summary to give: the end of an interval with unreported events.
  std::optional<clock_type::time_point> next_deadline() const;
  /// At or after next_deadline(): the summary line, if the interval had unreported events.
  std::optional<std::string> on_timer(clock_type::time_point now);
  /// The summary of the interval so far (when it has unreported events), ending it: for close().
  std::optional<std::string> flush(clock_type::time_point now);

 private:
  std::optional<std::string> summary(clock_type::time_point now);

  std::string listener_;
  std::chrono::milliseconds interval_;
  std::size_t max_handshakes_;
  std::size_t max_per_source_;
  std::chrono::milliseconds handshake_timeout_;
  /// The interval in progress: it starts with its first event.
  std::optional<clock_type::time_point> window_start_;
  std::uint64_t counts_[3] = {0, 0, 0};  ///< by pressure_event, this interval
  std::uint64_t unreported_ = 0;         ///< events of this interval without a line
  std::size_t sources_reported_ = 0;     ///< per-source lines this interval
  std::map<asio::ip::address, std::uint64_t> by_source_;           ///< this interval (bounded)
  std::map<asio::ip::address, clock_type::time_point> last_line_;  ///< per source
};

class accept_core : public std::enable_shared_from_this<accept_core> {
 public:
  using abort_fn = detail::abort_fn;
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
  /// executor stops. An exception out of the loop is logged through `log` and closes. Pressure
  /// lines go to cfg.pressure_log, or to `log` when that is empty.
  void start(start_fn start, log_fn log, std::shared_ptr<void> owner);

  /// The end of handshake `id` with `result` (empty: established): frees its slot and counts it
  /// (an established connection only while open). Returns whether the listener is open, i.e.
  /// whether the connection may be handed up.
  bool handshake_done(std::uint64_t id, std::error_code result);

  /// Stops accepting and aborts the handshakes in progress; releases the owner. Idempotent.
  void close();

  const asio::ip::tcp::endpoint& local_endpoint() const noexcept { return local_; }
  bool is_open() const noexcept { return open_; }
  const listener_stats& stats() const noexcept { return stats_; }
  std::size_t pending_handshakes() const noexcept { return table_.size(); }

  /// Use bind().
  accept_core(const asio::any_io_executor& executor, const accept_config& cfg);

 private:
  asio::awaitable<void> loop(std::shared_ptr<accept_core> self, std::shared_ptr<void> owner);
  /// Admits an accepted socket: sheds what admission_table says, then starts the handshake.
  void admit(asio::ip::tcp::socket socket);
  void report(pressure_event event, const asio::ip::address& source, clock_type::duration age);
  void emit(const std::string& line);
  void arm_pressure_timer();

  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer backoff_timer_;
  asio::steady_timer pressure_timer_;  ///< ends the pressure reporter's intervals
  bool pressure_timer_armed_ = false;
  accept_config cfg_;
  start_fn start_;
  log_fn log_;
  asio::ip::tcp::endpoint local_;
  bool open_ = false;
  std::uint64_t next_id_ = 0;
  admission_table table_;
  std::optional<pressure_reporter> pressure_;  ///< made once the local endpoint is known
  listener_stats stats_;
};

/// The end of handshake `id` of `conn` (a link or a tls_stream) for its listener: counts it on
/// `core`; hands an established connection to `on_ok`, or closes it when the listener is closed
/// or has no handler; reports a failure to `on_failure` while the listener is open.
template <class Connection, class OnOk, class OnFailure>
void hand_up(accept_core& core, std::uint64_t id, const std::shared_ptr<Connection>& conn,
             std::error_code result, const OnOk& on_ok, const OnFailure& on_failure) {
  const bool open = core.handshake_done(id, result);
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
/// handshake closes its connection at once.
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
    const auto fd = socket.native_handle();
    const std::weak_ptr<Connection> started = make(*me, std::move(socket), std::move(hook));
    return [started, fd] {
      const auto conn = started.lock();
      if (!conn || conn->state() == link_state::closed) return;
      conn->close();
      // close() alone waits up to close_linger for the peer's FIN, which an idle flooder never
      // sends: each shed connection would hold its descriptor that long. Shut down both ways,
      // the reader sees the end at once and the connection closes now. `fd` is still this
      // connection's: a connection closes its socket only on entering state closed.
      if (conn->state() != link_state::closed) ::shutdown(fd, SHUT_RDWR);
    };
  };
}

}  // namespace p2psip::transport::detail
