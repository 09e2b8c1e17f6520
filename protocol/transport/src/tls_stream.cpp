#include "p2psip/transport/tls_stream.hpp"

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <deque>
#include <exception>
#include <utility>

#include "io_util.hpp"
#include "stream_internal.hpp"
#include "tls_engine.hpp"

// How a stream runs: the link's design (link.cpp) without frames, acks or a message inbox.
//  - reader: async_read_some -> TLS engine (handshake, records, alerts in arrival order) ->
//    plaintext appended to the inbox, which read_some() empties at once. The reader pauses while
//    the inbox holds max_buffered_bytes (a slow application slows the peer through TCP) or while
//    our own output backs up. The read has no timer of its own (see link.cpp).
//  - writer: cuts the queued bytes into TLS records of up to 16 KiB (small writes gathered into
//    one record, large ones split), gathers up to 64 KiB of ciphertext per write, and keeps one
//    async_write outstanding, bounded by write_timeout (and by close_linger once closing) through
//    a watchdog handler on a timer.
//    Between writes it is the stream's clock: it sleeps on one timer until the earliest deadline
//    (handshake, idle, close linger); anything that creates work cancels that timer to wake it.
//  - close: begin_close() records the reason once, queues close_notify (or leaves Botan's fatal
//    alert queued); the writer flushes it and half-closes; the stream is closed when the peer's
//    FIN arrives or close_linger passes. close() first lets the writer send the queued bytes
//    (flushing_), then queues close_notify; close_linger bounds that too. fail() closes at once.
//    Both report the reason once.

namespace p2psip::transport {

namespace pr = p2psip::protocol;
using detail::async_event;
using detail::clock_type;
using detail::housekeeping_interval;
using detail::max_pending_output;
using detail::max_record_plaintext;
using detail::to_ms;
using detail::use_nothrow;
using detail::write_batch;

namespace {

class stream_impl final : public tls_stream, public std::enable_shared_from_this<stream_impl> {
 public:
  stream_impl(asio::ip::tcp::socket socket, tls_role role,
              std::shared_ptr<const tls_credentials> creds, stream_config cfg,
              std::optional<pr::node_id> expected, detail::stream_handshake_hook hook)
      : executor_(socket.get_executor()),
        socket_(std::move(socket)),
        role_(role),
        creds_(std::move(creds)),
        cfg_(std::move(cfg)),
        expected_(std::move(expected)),
        hook_(std::move(hook)),
        wake_timer_(executor_),
        write_timer_(executor_),
        reader_event_(executor_),
        receive_event_(executor_),
        room_event_(executor_),
        handshake_event_(executor_) {}

  void start() {
    const auto now = clock_type::now();
    handshake_deadline_ = now + cfg_.handshake_timeout;
    idle_reference_ = now;
    asio::error_code ec;
    remote_ = socket_.remote_endpoint(ec);
    local_ = socket_.local_endpoint(ec);
    // The writer gathers small writes into records itself: Nagle's algorithm would only delay.
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    // read_into_thread_buffer reads what a peek announced: never blocks, but let it not try.
    socket_.non_blocking(true, ec);

    if (!creds_) {
      fail(make_error_code(transport_errc::invalid_credentials), "no TLS credentials");
    } else {
      detail::peer_requirements req;
      req.required = expected_;
      req.anonymous_client = role_ == tls_role::server && !cfg_.client_certificate_required;
      req.server_name = cfg_.server_name;
      engine_ =
          std::make_unique<detail::tls_engine>(role_ == tls_role::server, creds_, std::move(req),
                                               detail::key_log_path(cfg_.key_log_path));
      if (auto err = engine_->start()) begin_close(err, engine_->detail(), false);
    }

    auto self = shared_from_this();
    asio::co_spawn(executor_, reader(self), [self](std::exception_ptr e) {
      if (e) self->on_coroutine_exception("reader", e);
    });
    asio::co_spawn(executor_, writer(self), [self](std::exception_ptr e) {
      if (e) self->on_coroutine_exception("writer", e);
    });
  }

  // ---- tls_stream interface --------------------------------------------------------------

  asio::awaitable<std::error_code> handshake() override {
    auto self = shared_from_this();
    while (!handshake_result_) co_await handshake_event_.wait();
    co_return *handshake_result_;
  }

  asio::awaitable<pr::result<pr::bytes>> read_some() override {
    auto self = shared_from_this();
    for (;;) {
      if (!inbox_.empty()) {
        pr::bytes data;
        data.swap(inbox_);
        reader_event_.notify_all();  // room again: a paused reader may go on
        co_return std::move(data);
      }
      if (state_ == stream_state::closing || state_ == stream_state::closed) break;
      co_await receive_event_.wait();
    }
    co_return reason_;
  }

  pr::result<void> write(pr::bytes data) override {
    if (auto err = writable()) return err;
    if (async_writing_ || data.size() > room()) {
      return make_error_code(transport_errc::queue_full);
    }
    enqueue(std::move(data));
    return {};
  }

  asio::awaitable<pr::result<void>> async_write(pr::bytes data) override {
    auto self = shared_from_this();
    // Another async_write still queuing: wait for its bytes to be in, so none interleave.
    for (;;) {
      if (auto err = writable()) co_return err;
      if (!async_writing_) break;
      co_await room_event_.wait();
    }
    if (data.size() <= room()) {
      enqueue(std::move(data));
      co_return pr::result<void>{};
    }
    async_writing_ = true;
    pr::result<void> outcome;
    std::size_t offset = 0;
    while (offset < data.size()) {
      if (auto err = writable()) {
        outcome = err;
        break;
      }
      const std::size_t left = data.size() - offset;
      const std::size_t free = room();
      // Wait for half the queue (or what is left) rather than trickle in tiny pieces.
      if (free < std::min(left, std::max<std::size_t>(queue_limit() / 2, 1))) {
        co_await room_event_.wait();
        continue;
      }
      const std::size_t n = std::min(left, free);
      const auto first = data.begin() + static_cast<std::ptrdiff_t>(offset);
      enqueue(pr::bytes(first, first + static_cast<std::ptrdiff_t>(n)));
      offset += n;
    }
    async_writing_ = false;
    room_event_.notify_all();  // the next async_write may go on
    co_return outcome;
  }

  void close() override {
    begin_close(make_error_code(transport_errc::closed_locally), {}, true, true);
  }

  void on_close(close_handler handler) override {
    if (state_ == stream_state::closed) {
      if (handler) asio::post(executor_, [h = std::move(handler), r = reason_] { h(r); });
      return;
    }
    close_handler_ = std::move(handler);
  }

  stream_state state() const noexcept override { return state_; }
  std::error_code close_reason() const noexcept override { return reason_; }
  const std::string& close_detail() const noexcept override { return detail_; }
  const std::vector<pr::node_id>& peer_node_ids() const noexcept override {
    return engine_ ? engine_->peer_node_ids() : no_ids_;
  }
  const std::string& peer_user() const noexcept override {
    return engine_ ? engine_->peer_user() : no_text_;
  }
  const pr::bytes& peer_certificate() const noexcept override {
    return engine_ ? engine_->peer_certificate() : no_bytes_;
  }
  const std::string& cipher_suite() const noexcept override {
    return engine_ ? engine_->cipher_suite() : no_text_;
  }
  std::size_t queued_bytes() const noexcept override { return queued_bytes_; }
  std::size_t buffered_bytes() const noexcept override { return inbox_.size(); }
  const stream_stats& stats() const noexcept override { return stats_; }
  const asio::ip::tcp::endpoint& remote_endpoint() const noexcept override { return remote_; }
  const asio::ip::tcp::endpoint& local_endpoint() const noexcept override { return local_; }
  const asio::any_io_executor& get_executor() const noexcept override { return executor_; }

 private:
  // ---- sending -----------------------------------------------------------------------------

  std::error_code writable() const {
    if (state_ == stream_state::closing || state_ == stream_state::closed) {
      return make_error_code(transport_errc::not_connected);
    }
    return {};
  }

  std::size_t queue_limit() const noexcept { return cfg_.max_queued_bytes; }
  std::size_t room() const noexcept {
    return queued_bytes_ >= queue_limit() ? 0 : queue_limit() - queued_bytes_;
  }

  void enqueue(pr::bytes data) {
    if (data.empty()) return;
    queued_bytes_ += data.size();
    queue_.push_back(std::move(data));
    notify_writer();
  }

  std::vector<std::uint8_t>& output() noexcept { return engine_ ? engine_->outbox() : no_output_; }

  /// Takes `n` bytes (at most what is left of it) off the front of the queue.
  void consume(std::size_t n) {
    queued_bytes_ -= n;
    front_offset_ += n;
    if (front_offset_ == queue_.front().size()) {
      queue_.pop_front();
      front_offset_ = 0;
    }
  }

  /// Moves queued bytes into the record layer, up to one write batch: a full record straight
  /// from a large write, or small writes gathered into one record. While a close flushes, ends
  /// the flush with close_notify once the queue is empty.
  void fill_output() {
    bool took = false;
    while (!queue_.empty() && engine_ && output().size() < write_batch &&
           (state_ == stream_state::established || flushing_)) {
      std::error_code err;
      std::size_t n = 0;
      const pr::bytes& front = queue_.front();
      if (front.size() - front_offset_ >= max_record_plaintext) {
        n = max_record_plaintext;
        err = engine_->send(front.data() + front_offset_, n);
        consume(n);
      } else {
        scratch_.clear();
        while (!queue_.empty() && scratch_.size() < max_record_plaintext) {
          const pr::bytes& next = queue_.front();
          const std::size_t take =
              std::min(next.size() - front_offset_, max_record_plaintext - scratch_.size());
          const auto first = next.begin() + static_cast<std::ptrdiff_t>(front_offset_);
          scratch_.insert(scratch_.end(), first, first + static_cast<std::ptrdiff_t>(take));
          consume(take);
        }
        n = scratch_.size();
        err = engine_->send(scratch_.data(), n);
      }
      took = true;
      if (err) {
        drop_queue();
        begin_close(err, engine_->detail(), false);
        break;
      }
      stats_.app_bytes_sent += n;
    }
    if (took) room_event_.notify_all();
    if (flushing_ && queue_.empty()) {
      flushing_ = false;
      if (engine_) engine_->close();  // after the last bytes, in the same write
    }
  }

  /// Forgets the queued bytes, and any flush of them in progress.
  void drop_queue() {
    queue_.clear();
    front_offset_ = 0;
    queued_bytes_ = 0;
    flushing_ = false;
  }

  // ---- state changes -------------------------------------------------------------------------

  void notify_writer() {
    if (writer_waiting_) wake_timer_.cancel();
  }

  void notify_all_waiters() {
    reader_event_.notify_all();
    receive_event_.notify_all();
    room_event_.notify_all();
    handshake_event_.notify_all();
    notify_writer();
  }

  void set_reason(std::error_code reason, std::string detail) {
    if (reason_) return;
    reason_ = reason;
    detail_ = std::move(detail);
  }

  void finish_handshake(std::error_code result) {
    if (handshake_result_) return;
    handshake_result_ = result;
    handshake_event_.notify_all();
    if (hook_) {
      asio::post(executor_,
                 [self = shared_from_this(), h = std::move(hook_), result] { h(self, result); });
      hook_ = nullptr;
    }
  }

  void on_established() {
    state_ = stream_state::established;
    idle_reference_ = clock_type::now();
    finish_handshake({});
    notify_writer();  // bytes written during the handshake may go now
  }

  /// Starts an orderly close: the writer flushes what is in the record layer (a close_notify or
  /// a fatal alert), half-closes the socket, and the stream closes when the peer's FIN arrives
  /// or close_linger passes. Queued bytes are dropped, unless `flush` asks for them to be sent
  /// first (only on an established stream; close_notify then follows the last of them).
  void begin_close(std::error_code reason, std::string detail, bool send_close_notify,
                   bool flush = false) {
    if (state_ == stream_state::closing || state_ == stream_state::closed) return;
    set_reason(reason, std::move(detail));
    const bool established = state_ == stream_state::established;
    state_ = stream_state::closing;
    close_deadline_ = clock_type::now() + cfg_.close_linger;
    // A write blocked by a peer that does not read must not hold the close past close_linger.
    if (writing_ && close_deadline_ < write_limit_) arm_write_watchdog(close_deadline_);
    if (flush && established && !queue_.empty()) {
      flushing_ = true;  // fill_output sends close_notify after the last bytes
    } else {
      drop_queue();
      if (send_close_notify && engine_) engine_->close();
    }
    finish_handshake(reason_);
    notify_all_waiters();
  }

  /// Closes the socket now and reports the close once.
  void fail(std::error_code reason, std::string detail) {
    if (state_ == stream_state::closed) return;
    set_reason(reason, std::move(detail));
    state_ = stream_state::closed;
    drop_queue();
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    wake_timer_.cancel();
    write_timer_.cancel();
    finish_handshake(reason_);
    notify_all_waiters();
    if (close_handler_) {
      asio::post(executor_, [h = std::move(close_handler_), r = reason_] { h(r); });
      close_handler_ = nullptr;
    }
  }

  void finish() { fail(reason_ ? reason_ : make_error_code(transport_errc::connection_lost), {}); }

  void on_coroutine_exception(const char* which, std::exception_ptr e) {
    const std::string what = detail::exception_text(e);
    detail::write_log(
        cfg_.log, std::string("p2psip::transport: stream ") + which + " coroutine failed: " + what);
    fail(make_error_code(transport_errc::internal_error), what);
  }

  // ---- receiving -----------------------------------------------------------------------------

  void on_read_error(const asio::error_code& ec) {
    if (state_ == stream_state::closing || ec == asio::error::operation_aborted) {
      finish();  // the peer answered our close (or its alert) with FIN, or we closed: done
      return;
    }
    // A FIN without close_notify may be an attacker truncating the stream: not a clean close.
    fail(make_error_code(transport_errc::connection_lost),
         ec == asio::error::eof ? "peer closed TCP without close_notify" : ec.message());
  }

  /// True while the reader must not read: our output backs up (the peer does not read), or the
  /// application has max_buffered_bytes unread.
  bool reader_must_wait() noexcept {
    return output().size() > max_pending_output ||
           (state_ == stream_state::established &&
            inbox_.size() >= std::max<std::size_t>(cfg_.max_buffered_bytes, 1));
  }

  asio::awaitable<void> reader([[maybe_unused]] std::shared_ptr<stream_impl> self) {
    while (state_ != stream_state::closed) {
      while (reader_must_wait() && state_ != stream_state::closed) {
        reader_paused_ = true;
        co_await reader_event_.wait();
      }
      if (state_ == stream_state::closed) break;
      if (reader_paused_) {
        // Time spent paused by our own backpressure is not the peer's silence; and the writer
        // must re-arm the idle deadline it ignored while we were paused.
        reader_paused_ = false;
        idle_reference_ = clock_type::now();
        notify_writer();
      }
      reading_ = true;
      // Into the thread's buffer: used up below before the next co_await.
      auto [ec, received] = co_await detail::read_into_thread_buffer(socket_);
      const std::size_t n = received.size();
      reading_ = false;
      if (state_ == stream_state::closed) break;
      if (ec) {
        on_read_error(ec);
        break;
      }
      idle_reference_ = clock_type::now();
      stats_.bytes_received += n;
      ++stats_.socket_reads;
      if (state_ == stream_state::closing) continue;  // wait for the FIN; ignore what comes

      // State changes in the order the records came: handshake end, data, then close/error.
      const std::error_code tls_error = engine_->feed(received.data(), n);
      if (state_ == stream_state::handshaking && engine_->active()) on_established();
      auto& plain = engine_->plaintext();
      if (!plain.empty()) {
        if (state_ == stream_state::established) {
          stats_.app_bytes_received += plain.size();
          inbox_.insert(inbox_.end(), plain.begin(), plain.end());
          receive_event_.notify_all();
        }
        plain.clear();
      }
      if (tls_error) {
        begin_close(tls_error, engine_->detail(), false);  // Botan queued the fatal alert
      } else if (engine_->peer_closed()) {
        begin_close(make_error_code(transport_errc::closed_by_peer), {}, false);  // reply queued
      }
      notify_writer();
    }
  }

  // ---- writing and time ----------------------------------------------------------------------

  /// The earliest time the writer must look at the stream again, if any.
  std::optional<clock_type::time_point> next_deadline() const {
    switch (state_) {
      case stream_state::handshaking: return handshake_deadline_;
      case stream_state::closing: return close_deadline_;
      case stream_state::closed: return std::nullopt;
      case stream_state::established: break;
    }
    // Silence only counts while the reader is waiting on the socket.
    if (!reading_ || !cfg_.idle_timeout) return std::nullopt;
    return idle_reference_ + *cfg_.idle_timeout;
  }

  /// Acts on a deadline that has passed; true when the stream closed.
  bool check_deadlines(clock_type::time_point now) {
    switch (state_) {
      case stream_state::handshaking:
        if (now >= handshake_deadline_) {
          fail(make_error_code(transport_errc::handshake_timeout),
               "no TLS handshake within " + std::to_string(cfg_.handshake_timeout.count()) + " ms");
          return true;
        }
        return false;
      case stream_state::closing:
        if (now >= close_deadline_) {
          finish();
          return true;
        }
        return false;
      case stream_state::closed: return true;
      case stream_state::established: break;
    }
    if (reading_ && cfg_.idle_timeout && now >= idle_reference_ + *cfg_.idle_timeout) {
      fail(make_error_code(transport_errc::idle_timeout),
           "nothing received for " + std::to_string(to_ms(now - idle_reference_).count()) + " ms");
      return true;
    }
    return false;
  }

  /// Bounds the write in flight by `limit`: a watchdog handler on a timer, not a second
  /// coroutine racing the write with || (see link.cpp). The generation makes a timer that fired
  /// just as the write completed harmless.
  void arm_write_watchdog(clock_type::time_point limit) {
    write_limit_ = limit;
    write_timer_.expires_at(limit);
    write_timer_.async_wait(
        [weak = weak_from_this(), generation = write_generation_](const asio::error_code& ec) {
          auto me = weak.lock();
          if (ec || !me || me->write_generation_ != generation) return;
          me->fail(make_error_code(me->state_ == stream_state::handshaking
                                       ? transport_errc::handshake_timeout
                                       : transport_errc::write_timeout),
                   "write did not complete in time");
        });
  }

  asio::awaitable<void> writer([[maybe_unused]] std::shared_ptr<stream_impl> self) {
    while (state_ != stream_state::closed) {
      auto now = clock_type::now();
      // A close that flushes queued bytes gets no more time than close_linger in all.
      if (state_ == stream_state::closing && check_deadlines(now)) break;
      fill_output();
      if (!output().empty()) {
        write_buffer_.clear();
        write_buffer_.swap(output());
        // One write at a time, bounded in time (and by the handshake deadline while handshaking).
        auto limit = now + cfg_.write_timeout;
        if (state_ == stream_state::handshaking) limit = std::min(limit, handshake_deadline_);
        if (state_ == stream_state::closing) limit = std::min(limit, close_deadline_);
        ++write_generation_;
        arm_write_watchdog(limit);
        writing_ = true;
        auto [ec, written] =
            co_await asio::async_write(socket_, asio::buffer(write_buffer_), use_nothrow);
        writing_ = false;
        ++write_generation_;
        write_timer_.cancel();
        if (state_ == stream_state::closed) break;
        if (ec) {
          if (state_ == stream_state::closing) {
            finish();
          } else {
            fail(make_error_code(transport_errc::connection_lost), ec.message());
          }
          break;
        }
        stats_.bytes_sent += written;
        ++stats_.socket_writes;
        write_buffer_.clear();
        reader_event_.notify_all();  // output drained: a paused reader may read again
        continue;
      }
      if (state_ == stream_state::closing && !half_closed_ && !flushing_) {
        // Everything we owe is written (close_notify or alert last): send FIN, await the peer's.
        half_closed_ = true;
        asio::error_code ignored;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
      }
      now = clock_type::now();
      if (check_deadlines(now)) break;
      const auto deadline = next_deadline();
      wake_timer_.expires_at(deadline ? *deadline : now + housekeeping_interval);
      writer_waiting_ = true;
      auto [ec] = co_await wake_timer_.async_wait(use_nothrow);
      writer_waiting_ = false;
      (void)ec;  // expired or woken: look again either way
    }
  }

  // ---- members ------------------------------------------------------------------------------

  asio::any_io_executor executor_;
  asio::ip::tcp::socket socket_;
  tls_role role_;
  std::shared_ptr<const tls_credentials> creds_;
  stream_config cfg_;
  std::optional<pr::node_id> expected_;
  detail::stream_handshake_hook hook_;
  std::unique_ptr<detail::tls_engine> engine_;

  stream_state state_ = stream_state::handshaking;
  std::error_code reason_;
  std::string detail_;
  std::optional<std::error_code> handshake_result_;
  close_handler close_handler_;
  stream_stats stats_;

  std::deque<pr::bytes> queue_;   ///< bytes accepted by write, not yet handed to TLS
  std::size_t front_offset_ = 0;  ///< bytes of queue_.front() already handed to TLS
  std::size_t queued_bytes_ = 0;  ///< bytes in queue_ not yet handed to TLS
  bool flushing_ = false;         ///< closing: queue_ is still being sent, close_notify after it
  bool async_writing_ = false;    ///< an async_write is queuing its bytes piece by piece
  pr::bytes inbox_;               ///< received bytes not yet taken by read_some()

  asio::steady_timer wake_timer_;       ///< the writer's sleep: a deadline, or cancel() to wake it
  asio::steady_timer write_timer_;      ///< bounds each write
  std::uint64_t write_generation_ = 0;  ///< changes when a write ends: stale watchdogs do nothing
  clock_type::time_point write_limit_{};  ///< when the write in flight times out
  bool writing_ = false;                  ///< a socket write is in flight
  async_event reader_event_;              ///< inbox room, output drained
  async_event receive_event_;             ///< bytes arrived, or the stream is closing
  async_event room_event_;                ///< send queue room, or the stream is closing
  async_event handshake_event_;           ///< the handshake finished
  bool writer_waiting_ = false;
  bool reading_ = false;
  bool reader_paused_ = false;
  bool half_closed_ = false;

  clock_type::time_point handshake_deadline_{};
  clock_type::time_point close_deadline_{};
  clock_type::time_point idle_reference_{};  ///< last bytes received, or reader resumed

  std::vector<std::uint8_t> write_buffer_;
  std::vector<std::uint8_t> scratch_;
  std::vector<std::uint8_t> no_output_;  ///< output() without an engine: always empty

  asio::ip::tcp::endpoint remote_;
  asio::ip::tcp::endpoint local_;
  std::vector<pr::node_id> no_ids_;
  pr::bytes no_bytes_;
  std::string no_text_;
};

}  // namespace

namespace detail {

std::shared_ptr<tls_stream> start_stream_internal(asio::ip::tcp::socket socket, tls_role role,
                                                  std::shared_ptr<const tls_credentials> creds,
                                                  stream_config cfg,
                                                  std::optional<pr::node_id> expected,
                                                  stream_handshake_hook hook) {
  auto s = std::make_shared<stream_impl>(std::move(socket), role, std::move(creds), std::move(cfg),
                                         std::move(expected), std::move(hook));
  s->start();
  return s;
}

}  // namespace detail

std::shared_ptr<tls_stream> start_stream(asio::ip::tcp::socket socket, tls_role role,
                                         std::shared_ptr<const tls_credentials> creds,
                                         stream_config cfg, std::optional<pr::node_id> expected) {
  return detail::start_stream_internal(std::move(socket), role, std::move(creds), std::move(cfg),
                                       std::move(expected), {});
}

asio::awaitable<pr::result<std::shared_ptr<tls_stream>>> connect_stream(
    asio::ip::tcp::endpoint remote, std::shared_ptr<const tls_credentials> creds, stream_config cfg,
    std::optional<pr::node_id> expected, tls_role role) {
  if (!creds) co_return make_error_code(transport_errc::invalid_credentials);
  const auto deadline = clock_type::now() + cfg.handshake_timeout;
  auto socket = co_await detail::connect_tcp(remote, deadline);
  if (!socket) co_return socket.error().code;

  // The handshake gets what is left of the budget.
  cfg.handshake_timeout =
      std::max(std::chrono::milliseconds(1), to_ms(deadline - clock_type::now()));
  auto s =
      start_stream(std::move(*socket), role, std::move(creds), std::move(cfg), std::move(expected));
  const std::error_code handshake = co_await s->handshake();
  if (handshake) co_return handshake;
  co_return s;
}

}  // namespace p2psip::transport
