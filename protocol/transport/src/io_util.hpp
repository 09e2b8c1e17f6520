#pragma once
// What the RELOAD link (link.cpp) and the application stream (tls_stream.cpp) share below their
// protocols: the coroutine completion token, the buffer sizes, a broadcast event between the
// coroutines of one connection, deadline arithmetic, the TCP connect with a deadline, and
// diagnostics.

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/channel.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::transport::detail {

using clock_type = std::chrono::steady_clock;

/// Completion token: the operation's error_code comes back in a tuple instead of an exception.
inline constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);

/// Bytes read from the socket at once: one full TLS record plus its header and expansion.
inline constexpr std::size_t read_chunk = 16 * 1024 + 512;
/// A thread's read buffer while its reads are small (read_into_thread_buffer): a TLS handshake
/// flight or a signed RELOAD message fits. A read that fills it makes it read_chunk...
inline constexpr std::size_t small_read_chunk = 4 * 1024;
/// ...until this many reads in a row would have fitted in small_read_chunk again.
inline constexpr std::uint32_t small_reads_before_shrinking = 64;
/// Ciphertext the writer gathers into one write before sending it.
inline constexpr std::size_t write_batch = 64 * 1024;
/// Ciphertext we owe the peer beyond which the reader stops reading until the writer has
/// drained it: a peer that sends but never reads cannot grow our memory.
inline constexpr std::size_t max_pending_output = 256 * 1024;
/// Largest TLS 1.2 record plaintext (RFC 5246 section 6.2.1).
inline constexpr std::size_t max_record_plaintext = 16 * 1024;
/// Timers wake at least this often when no deadline is due (none is kept at "forever").
inline constexpr auto housekeeping_interval = std::chrono::minutes(10);

/// Broadcast notification among coroutines on one executor. wait() suspends until the next
/// notify_all(); a notification with nobody waiting is lost, so waiters test their condition
/// right before wait() (with no co_await in between, which makes test-and-wait atomic on the
/// connection's single thread).
class async_event {
 public:
  // A timer that never expires, whose waits end only when notify_all cancels them: the same
  // wake-the-current-waiters semantics as a channel nobody sends on, without the channel's heap
  // state (about 280 bytes each; a link has several, kept for its whole life).
  explicit async_event(const asio::any_io_executor& ex)
      : timer_(ex, asio::steady_timer::time_point::max()) {}
  /// Completes at the next notify_all() (its error_code, operation_aborted, says nothing more).
  /// The timer's own awaitable, not a coroutine around it: a waiting coroutine holds one frame
  /// less (every idle link waits here in receive()).
  auto wait() { return timer_.async_wait(use_nothrow); }
  void notify_all() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

/// Empties `v` and gives its storage back. (`v = {}` would not: it picks the initializer_list
/// assignment, which keeps the capacity.)
template <class Vector>
void release_storage(Vector& v) noexcept {
  Vector().swap(v);
}

template <class Duration>
std::chrono::milliseconds to_ms(Duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

/// The earlier of two optional deadlines (nothing when neither is set).
inline std::optional<clock_type::time_point> earliest(std::optional<clock_type::time_point> a,
                                                      std::optional<clock_type::time_point> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

/// The what() of an exception_ptr's exception, or "unknown exception".
std::string exception_text(std::exception_ptr e);

/// Hands `line` to `log`, or writes it to standard error when `log` is empty.
void write_log(const std::function<void(std::string_view)>& log, const std::string& line);

/// The NSS key-log file to use: `configured`, else $SSLKEYLOGFILE, else none (empty).
std::string key_log_path(const std::string& configured);

/// This thread's read buffer: small_read_chunk bytes while the reads it sees are small (an
/// SDK client's I/O thread: handshake flights and signed messages of a KiB or two), read_chunk
/// once a read has filled it (more was waiting: a bulk transfer or a busy peer), back to small
/// after a run of small reads. Allocated on first use and not cleared: only the pages that
/// reads fill are ever touched.
struct thread_read_buffer {
  std::unique_ptr<std::uint8_t[]> data;
  std::size_t size = 0;
  std::size_t wanted = small_read_chunk;  ///< the size for the next read
  std::uint32_t small_reads = 0;          ///< reads in a row that small_read_chunk would have held

  /// The buffer for the next read. Resized here, not after a read: the bytes of the last read
  /// are valid until its reader suspends, and no read on this thread comes before that.
  std::span<std::uint8_t> get() {
    if (!data || size != wanted) {
      data.reset();  // first, so that the two sizes are never held at once
      data.reset(new std::uint8_t[wanted]);
      size = wanted;
    }
    return {data.get(), size};
  }
  /// After a read of `n` bytes into get(): the size for the next one.
  void note_read(std::size_t n) noexcept {
    if (n >= size) {
      wanted = read_chunk;
      small_reads = 0;
    } else if (size > small_read_chunk) {
      small_reads = n <= small_read_chunk ? small_reads + 1 : 0;
      if (small_reads >= small_reads_before_shrinking) {
        wanted = small_read_chunk;
        small_reads = 0;
      }
    }
  }
};

/// Waits until `socket` has bytes to read (or its end, or an error), without a buffer of the
/// connection's own, then reads up to read_chunk of them into the calling thread's read buffer.
/// Idle connections thus hold no read buffer (it was 16.5 KiB of every link); the thread's is
/// small_read_chunk until a read fills it (a thread of small reads, an SDK client's, never
/// grows it; 16.5 KiB of which a few KiB were touched). The bytes are
/// valid until the caller suspends again (another connection of this thread reads into the same
/// buffer): hand them on (TLS, the frame decoder) before the next co_await. Errors: as
/// async_read_some's (asio::error::eof at the peer's FIN, operation_aborted after close).
asio::awaitable<std::tuple<asio::error_code, protocol::byte_view>> read_into_thread_buffer(
    asio::ip::tcp::socket& socket);

/// Opens a TCP connection to `remote` from the calling coroutine's executor by `deadline`.
/// Errors: transport_errc::handshake_timeout (the deadline passed first), connect_failed; the
/// record's message keeps the system's reason ("TCP connect failed: Connection refused"), which
/// a user needs and the code alone loses.
asio::awaitable<protocol::result<asio::ip::tcp::socket, protocol::error_record>> connect_tcp(
    asio::ip::tcp::endpoint remote, clock_type::time_point deadline);

}  // namespace p2psip::transport::detail
