#include "p2psip/transport/link.hpp"

#include <asio/co_spawn.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <exception>
#include <utility>

#include "io_util.hpp"
#include "link_internal.hpp"
#include "p2psip/protocol/fifo.hpp"
#include "p2psip/transport/rate_limit.hpp"
#include "tls_engine.hpp"

// How a link runs (one executor, no locks):
//  - reader: async_read_some -> TLS engine (handshake, records, alerts in arrival order) ->
//    frame_decoder -> acks (queued at once) and whole messages into a bounded inbox. When the
//    inbox is full it waits for receive(), so a slow application slows the peer through TCP.
//    A data frame above max_message_size: the decoder keeps only the message's forwarding header
//    and then stops; the header goes to the inbox as the last item, and from then on the reader
//    reads and drops (RFC 6940 section 6.6: the owner answers Error_Message_Too_Large and closes).
//    The read has no timer of its own: a read cancelled by a timer at the same moment it
//    completed would lose bytes of the TLS stream (awaitable_operators' || keeps one result).
//  - writer: frames queued messages into TLS records (one frame per record), gathers up to
//    64 KiB, and keeps one async_write outstanding, bounded by write_timeout through a watchdog
//    handler on a timer (racing the write with || spawns two coroutines per write and halved
//    the round-trip rate in link_bench). Between
//    writes it is also the link's clock: it sleeps on one timer until the earliest deadline
//    (handshake, idle, unacked data, close linger); anything that creates work cancels that
//    timer to wake it. A wake-up lost to a race costs nothing: it re-checks everything.
//  - undelivered: each message sent stays in unacked_ until an ack at or past its sequence comes
//    (TCP keeps order, and the peer acks every frame it takes on arrival). When the peer closes
//    (or the link fails), what it never acked it never took: it acks what it takes before its
//    close_notify and drops what arrives after. After an orderly close of ours the unacked are not
//    handed back: the peer takes everything before our close_notify, and cannot ack what came
//    with it (TLS 1.2 sends nothing after a close_notify is received, RFC 5246 7.2.1).
//  - close: begin_close() records the reason once, queues close_notify (or leaves Botan's fatal
//    alert queued); the writer flushes it and half-closes; the link is closed when the peer's FIN
//    arrives or close_linger passes. close() first lets the writer send the messages queued by
//    send (flushing_), then queues close_notify; close_linger bounds that too. fail() closes at
//    once. Both report the reason once.

namespace p2psip::transport {

namespace pr = p2psip::protocol;
using detail::async_event;
using detail::clock_type;
using detail::earliest;
using detail::housekeeping_interval;
using detail::max_pending_output;
using detail::to_ms;
using detail::use_nothrow;
using detail::write_batch;

namespace {

class link_impl final : public link, public std::enable_shared_from_this<link_impl> {
 public:
  link_impl(asio::ip::tcp::socket socket, tls_role role,
            std::shared_ptr<const tls_credentials> creds, link_config cfg,
            std::optional<pr::node_id> required_peer, detail::handshake_hook hook)
      : executor_(socket.get_executor()),
        socket_(std::move(socket)),
        role_(role),
        creds_(std::move(creds)),
        cfg_(std::move(cfg)),
        required_peer_(std::move(required_peer)),
        hook_(std::move(hook)),
        decoder_(cfg_.limits, pr::oversize_policy::keep_header),
        send_window_(cfg_.rto),
        bucket_(cfg_.rate.messages_per_second, cfg_.rate.burst, clock_type::now()),
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
    // Frames are small and acked one by one: Nagle's algorithm would hold them back.
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    // read_into_thread_buffer reads what a peek announced: never blocks, but let it not try.
    socket_.non_blocking(true, ec);

    if (cfg_.insecure_plaintext) {
      on_established();
    } else if (!creds_) {
      fail(make_error_code(transport_errc::invalid_credentials), "no TLS credentials");
    } else {
      detail::peer_requirements req;
      req.required = required_peer_;
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

  // ---- link interface --------------------------------------------------------------------

  asio::awaitable<std::error_code> handshake() override {
    auto self = shared_from_this();
    while (!handshake_result_) co_await handshake_event_.wait();
    co_return *handshake_result_;
  }

  pr::result<void> try_send(pr::bytes message) override {
    if (auto err = sendable(message.size())) return err;
    if (!has_room(message.size())) return make_error_code(transport_errc::queue_full);
    enqueue(std::move(message));
    return {};
  }

  asio::awaitable<pr::result<void>> send(pr::bytes message) override {
    auto self = shared_from_this();
    for (;;) {
      if (auto err = sendable(message.size())) co_return err;
      if (has_room(message.size())) break;
      co_await room_event_.wait();
    }
    enqueue(std::move(message));
    co_return pr::result<void>{};
  }

  asio::awaitable<pr::result<inbound_message>> receive() override {
    auto self = shared_from_this();
    for (;;) {
      if (auto m = try_receive()) co_return std::move(*m);
      if (state_ == link_state::closing || state_ == link_state::closed) break;
      co_await receive_event_.wait();
    }
    co_return reason_;
  }

  std::optional<inbound_message> try_receive() override {
    if (inbox_.empty()) return std::nullopt;
    inbound_message m = std::move(inbox_.front());
    inbox_.pop_front();
    reader_event_.notify_all();  // room again: a paused reader may go on
    return m;
  }

  void close() override {
    begin_close(make_error_code(transport_errc::closed_locally), {}, true, true);
  }

  void on_close(close_handler handler) override {
    if (state_ == link_state::closed) {
      if (handler) asio::post(executor_, [h = std::move(handler), r = reason_] { h(r); });
      return;
    }
    close_handler_ = std::move(handler);
  }

  link_state state() const noexcept override { return state_; }
  std::error_code close_reason() const noexcept override { return reason_; }
  const std::string& close_detail() const noexcept override { return detail_; }
  const std::vector<pr::node_id>& peer_node_ids() const noexcept override {
    return engine_ ? engine_->peer_node_ids() : no_ids_;
  }
  const std::string& peer_user() const noexcept override {
    return engine_ ? engine_->peer_user() : plaintext_user_;
  }
  const pr::bytes& peer_certificate() const noexcept override {
    return engine_ ? engine_->peer_certificate() : no_bytes_;
  }
  const std::string& cipher_suite() const noexcept override {
    return engine_ ? engine_->cipher_suite() : plaintext_suite_;
  }
  std::optional<clock_type::duration> rtt() const noexcept override {
    return send_window_.estimator().srtt();
  }
  std::chrono::milliseconds rto() const noexcept override { return send_window_.estimator().rto(); }
  std::vector<pr::bytes> take_undelivered() override {
    std::vector<pr::bytes> out;
    if (reason_ == make_error_code(transport_errc::closed_locally)) unacked_.clear();
    out.reserve(unacked_.size() + unsent_.size());
    for (; !unacked_.empty(); unacked_.pop_front())
      out.push_back(std::move(unacked_.front().message));
    for (; !unsent_.empty(); unsent_.pop_front()) out.push_back(std::move(unsent_.front()));
    return out;
  }

  const link_stats& stats() const noexcept override { return stats_; }
  std::size_t queued_messages() const noexcept override { return queue_.size(); }
  std::size_t queued_bytes() const noexcept override { return queued_bytes_; }
  std::uint32_t misbehaviour_count() const noexcept override { return misbehaviour_; }
  void report_misbehaviour(std::uint32_t count) override {
    misbehaviour_ = misbehaviour_ > UINT32_MAX - count ? UINT32_MAX : misbehaviour_ + count;
    if (cfg_.rate.misbehaviour_limit && misbehaviour_ > *cfg_.rate.misbehaviour_limit) {
      begin_close(make_error_code(transport_errc::rate_limited),
                  "misbehaviour count " + std::to_string(misbehaviour_), true);
    }
  }
  const asio::ip::tcp::endpoint& remote_endpoint() const noexcept override { return remote_; }
  const asio::ip::tcp::endpoint& local_endpoint() const noexcept override { return local_; }
  const asio::any_io_executor& get_executor() const noexcept override { return executor_; }

 private:
  // ---- sending -----------------------------------------------------------------------------

  std::error_code sendable(std::size_t size) const {
    if (state_ == link_state::closing || state_ == link_state::closed) {
      return make_error_code(transport_errc::not_connected);
    }
    if (size > std::min(cfg_.limits.max_message_size, pr::max_frame_message)) {
      return make_error_code(transport_errc::message_too_large);
    }
    return {};
  }

  bool has_room(std::size_t size) const {
    // An empty queue takes any message, so one bigger than max_queued_bytes cannot wait forever.
    return queue_.empty() ||
           (queue_.size() < cfg_.max_queued_messages && queued_bytes_ <= cfg_.max_queued_bytes &&
            size <= cfg_.max_queued_bytes - queued_bytes_);
  }

  void enqueue(pr::bytes message) {
    queued_bytes_ += message.size();
    queue_.push_back(std::move(message));
    notify_writer();
  }

  std::vector<std::uint8_t>& output() noexcept {
    return engine_ ? engine_->outbox() : plain_output_;
  }

  /// Hands one frame to the record layer: one TLS record per frame (Wireshark's RELOAD dissector
  /// decodes one frame per record).
  std::error_code emit_frame(pr::byte_view header, pr::byte_view body) {
    if (!engine_) {
      plain_output_.insert(plain_output_.end(), header.begin(), header.end());
      plain_output_.insert(plain_output_.end(), body.begin(), body.end());
      return {};
    }
    scratch_.assign(header.begin(), header.end());
    scratch_.insert(scratch_.end(), body.begin(), body.end());
    return engine_->send(scratch_.data(), scratch_.size());
  }

  /// Moves queued messages into the record layer as data frames, up to one write batch; while a
  /// close flushes, ends the flush with close_notify once the queue is empty.
  void fill_output(clock_type::time_point now) {
    bool popped = false;
    while (!queue_.empty() && output().size() < write_batch &&
           (state_ == link_state::established || flushing_)) {
      pr::bytes message = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= message.size();
      popped = true;
      const std::uint32_t sequence = send_window_.on_send(now);
      const auto header = pr::data_frame_header(sequence, message.size());
      if (!header) {  // cannot happen: sendable() checked the size
        drop_queue();
        begin_close(make_error_code(transport_errc::internal_error), "frame header", false);
        break;
      }
      if (auto err = emit_frame(*header, message)) {
        drop_queue();
        begin_close(err, engine_ ? engine_->detail() : std::string(), false);
        break;
      }
      ++stats_.messages_sent;
      if (unacked_.size() >= max_unacked) unacked_.pop_front();  // too many in flight: forgotten
      unacked_.push_back(sent_frame{sequence, std::move(message)});
    }
    if (popped) room_event_.notify_all();
    if (flushing_ && queue_.empty()) {
      flushing_ = false;
      if (engine_) engine_->close();  // after the last message, in the same write
    }
  }

  /// Stops sending the messages queued by send (kept for take_undelivered), and any flush of
  /// them in progress.
  void drop_queue() {
    for (; !queue_.empty(); queue_.pop_front()) unsent_.push_back(std::move(queue_.front()));
    queued_bytes_ = 0;
    flushing_ = false;
  }

  /// The peer acked `sequence`: it took that frame and, TCP keeping order, every one before.
  void forget_acked(std::uint32_t sequence) {
    while (!unacked_.empty() &&
           static_cast<std::int32_t>(sequence - unacked_.front().sequence) >= 0) {
      unacked_.pop_front();
    }
  }

  void send_ack(std::uint32_t sequence) {
    const pr::ack_frame ack = receive_window_.on_data(sequence);
    // Frames that arrived together with the peer's close_notify are delivered but not acked:
    // TLS cannot carry anything after close_notify.
    if (engine_ && !engine_->can_send()) return;
    const std::array<std::uint8_t, pr::ack_frame_size> frame{
        static_cast<std::uint8_t>(pr::frame_type::ack),
        static_cast<std::uint8_t>(ack.ack_sequence >> 24),
        static_cast<std::uint8_t>(ack.ack_sequence >> 16),
        static_cast<std::uint8_t>(ack.ack_sequence >> 8),
        static_cast<std::uint8_t>(ack.ack_sequence),
        static_cast<std::uint8_t>(ack.received >> 24),
        static_cast<std::uint8_t>(ack.received >> 16),
        static_cast<std::uint8_t>(ack.received >> 8),
        static_cast<std::uint8_t>(ack.received)};
    if (auto err = emit_frame(frame, {})) {
      begin_close(err, engine_ ? engine_->detail() : std::string(), false);
    }
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
    state_ = link_state::established;
    idle_reference_ = clock_type::now();
    finish_handshake({});
    notify_writer();  // messages queued during the handshake may go now
  }

  /// Starts an orderly close: the writer flushes what is in the record layer (a close_notify or
  /// a fatal alert), half-closes the socket, and the link closes when the peer's FIN arrives or
  /// close_linger passes. Messages still queued are dropped, unless `flush` asks for them to be
  /// sent first (only on an established link; close_notify then follows the last of them).
  void begin_close(std::error_code reason, std::string detail, bool send_close_notify,
                   bool flush = false) {
    if (state_ == link_state::closing || state_ == link_state::closed) return;
    set_reason(reason, std::move(detail));
    const bool established = state_ == link_state::established;
    state_ = link_state::closing;
    close_deadline_ = clock_type::now() + cfg_.close_linger;
    if (flush && established && !queue_.empty()) {
      flushing_ = true;  // fill_output sends close_notify (if any) after the last message
    } else {
      drop_queue();
      if (send_close_notify && engine_) engine_->close();
    }
    finish_handshake(reason_);
    notify_all_waiters();
  }

  /// Closes the socket now and reports the close once.
  void fail(std::error_code reason, std::string detail) {
    if (state_ == link_state::closed) return;
    set_reason(reason, std::move(detail));
    state_ = link_state::closed;
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
        cfg_.log, std::string("p2psip::transport: link ") + which + " coroutine failed: " + what);
    fail(make_error_code(transport_errc::internal_error), what);
  }

  // ---- receiving -----------------------------------------------------------------------------

  void on_read_error(const asio::error_code& ec) {
    if (state_ == link_state::closing) {
      finish();  // the peer answered our close (or its alert) with FIN: done
      return;
    }
    if (ec == asio::error::operation_aborted) {
      finish();
      return;
    }
    if (inside_oversized_header()) {
      fail(make_error_code(transport_errc::frame_too_large),
           oversized_detail("the stream ended before its forwarding header"));
      return;
    }
    if (!engine_ && ec == asio::error::eof) {
      // Plaintext has no close_notify: FIN is the peer's clean close.
      fail(make_error_code(transport_errc::closed_by_peer), {});
      return;
    }
    fail(make_error_code(transport_errc::connection_lost),
         ec == asio::error::eof ? "peer closed TCP without close_notify" : ec.message());
  }

  /// Delivers one data frame's message (already acked), waiting while the inbox is full. A
  /// close while it waits still puts it in the inbox: receive() hands it out after the close.
  asio::awaitable<void> deliver(pr::bytes message) {
    if (!bucket_.take(clock_type::now())) {
      ++stats_.messages_dropped;
      report_misbehaviour(1);
      co_return;
    }
    while (inbox_.size() >= std::max<std::size_t>(cfg_.max_received_messages, 1) &&
           state_ == link_state::established) {
      reader_paused_ = true;
      notify_writer();  // the acks queued so far go now, not after the app makes room
      co_await reader_event_.wait();
    }
    inbox_.push_back(inbound_message{std::move(message), std::nullopt});
    receive_event_.notify_all();
  }

  /// True while the decoder gathers an oversized message's forwarding header: a stream that ends
  /// now ends inside a message too large (frame_too_large, as when the header is bad).
  bool inside_oversized_header() const noexcept {
    return decoder_.oversized_length() && !decoder_.stopped() && !decoder_.failed();
  }

  /// "a message of L bytes (max_message_size M): <what>".
  std::string oversized_detail(const std::string& what) const {
    return "a message of " + std::to_string(decoder_.oversized_length().value_or(0)) +
           " bytes (max_message_size " + std::to_string(cfg_.limits.max_message_size) +
           "): " + what;
  }

  /// Hands the owner an oversized message's forwarding header: the last item of this link. Not
  /// acked (it was not received) and not rate-limited (it ends the link anyway); it may take one
  /// inbox place more than max_received_messages, so the reader never waits for it.
  void deliver_oversized(pr::oversized_frame o) {
    ++stats_.messages_received;
    inbox_.push_back(inbound_message{std::move(o.header), o.message_length});
    receive_event_.notify_all();
  }

  asio::awaitable<void> process_frames() {
    while (auto f = decoder_.next()) {
      if (state_ != link_state::established) continue;  // drain and drop while closing
      if (auto* ack = std::get_if<pr::ack_frame>(&*f)) {
        ++stats_.acks_received;
        // The time now, not of the read: delivering earlier frames may have waited.
        if (send_window_.on_ack(*ack, clock_type::now()).known) forget_acked(ack->ack_sequence);
        continue;
      }
      auto& data = std::get<pr::data_frame>(*f);
      ++stats_.messages_received;
      // Acked at once (RFC 6940 6.6.2): the ack is queued before the app takes the message, and
      // the writer is woken after the app's resumption is posted, so that an answer the app
      // queues while handling the message leaves in the same write as the ack (one send, and one
      // wake-up at the peer, fewer per request and answer). Acked means taken: the sender hands
      // back only what was never acked when the link closes, so deliver() keeps it even then.
      send_ack(data.sequence);
      co_await deliver(std::move(data.message));
      notify_writer();
    }
    if (state_ != link_state::established) co_return;
    // Only after every frame that came before it (the decoder frames nothing after it).
    if (auto o = decoder_.take_oversized()) deliver_oversized(std::move(*o));
  }

  asio::awaitable<void> reader([[maybe_unused]] std::shared_ptr<link_impl> self) {
    while (state_ != link_state::closed) {
      // Our own output backs up when the peer does not read: stop reading until it drains.
      while (output().size() > max_pending_output && state_ != link_state::closed) {
        reader_paused_ = true;
        co_await reader_event_.wait();
      }
      if (state_ == link_state::closed) break;
      if (reader_paused_) {
        // Time spent paused by our own backpressure is not the peer's silence; and the writer
        // must re-arm the idle and ack deadlines it ignored while we were paused.
        reader_paused_ = false;
        idle_reference_ = clock_type::now();
        notify_writer();
      }
      reading_ = true;
      // Into the thread's buffer: used up below before the next co_await.
      auto [ec, received] = co_await detail::read_into_thread_buffer(socket_);
      const std::size_t n = received.size();
      reading_ = false;
      if (state_ == link_state::closed) break;
      if (ec) {
        on_read_error(ec);
        break;
      }
      idle_reference_ = clock_type::now();
      stats_.bytes_received += n;
      ++stats_.socket_reads;
      if (state_ == link_state::closing) continue;  // wait for the FIN; ignore what comes

      std::error_code tls_error;
      pr::byte_view plain = received;
      if (engine_) {
        tls_error = engine_->feed(received.data(), n);
        // State changes in the order the records came: handshake end, data, then close/error.
        if (state_ == link_state::handshaking && engine_->active()) on_established();
        plain = engine_->plaintext();
      }
      if (!plain.empty()) {
        const auto put = decoder_.put(plain);
        if (engine_) detail::release_storage(engine_->plaintext());  // consumed: keep no capacity
        co_await process_frames();
        if (!put) {
          const auto& e = put.error();
          if (decoder_.oversized_length()) {
            // The forwarding header of a message too large is bad, too long or larger than the
            // limit itself: close without an answer (RFC 6940 section 6.6).
            begin_close(make_error_code(transport_errc::frame_too_large),
                        oversized_detail("its forwarding header: " + e.message()), true);
          } else {
            begin_close(make_error_code(e.code == pr::codec_errc::limit_exceeded
                                            ? transport_errc::frame_too_large
                                            : transport_errc::bad_frame),
                        e.message(), true);
          }
        }
      }
      if (tls_error) {
        begin_close(tls_error, engine_->detail(), false);  // Botan queued the fatal alert
      } else if (engine_ && engine_->peer_closed()) {
        if (inside_oversized_header()) {
          begin_close(make_error_code(transport_errc::frame_too_large),
                      oversized_detail("close_notify came before its forwarding header"), false);
        } else {
          begin_close(make_error_code(transport_errc::closed_by_peer), {}, false);  // reply queued
        }
      }
      notify_writer();
    }
  }

  // ---- writing and time ----------------------------------------------------------------------

  /// The earliest time the writer must look at the link again, if any.
  std::optional<clock_type::time_point> next_deadline() const {
    switch (state_) {
      case link_state::handshaking: return handshake_deadline_;
      case link_state::closing: return close_deadline_;
      case link_state::closed: return std::nullopt;
      case link_state::established: break;
    }
    // Silence and missing acks only count while the reader is waiting on the socket.
    if (!reading_) return std::nullopt;
    std::optional<clock_type::time_point> deadline;
    if (cfg_.idle_timeout) deadline = idle_reference_ + *cfg_.idle_timeout;
    if (cfg_.ack_timeout) {
      if (const auto oldest = send_window_.oldest_outstanding()) {
        const auto wait = std::max<std::chrono::milliseconds>(*cfg_.ack_timeout, rto());
        deadline = earliest(deadline, std::max(*oldest, idle_reference_) + wait);
      }
    }
    return deadline;
  }

  /// Acts on a deadline that has passed; true when the link closed.
  bool check_deadlines(clock_type::time_point now) {
    switch (state_) {
      case link_state::handshaking:
        if (now >= handshake_deadline_) {
          fail(make_error_code(transport_errc::handshake_timeout),
               "no TLS handshake within " + std::to_string(cfg_.handshake_timeout.count()) + " ms");
          return true;
        }
        return false;
      case link_state::closing:
        if (now >= close_deadline_) {
          finish();
          return true;
        }
        return false;
      case link_state::closed: return true;
      case link_state::established: break;
    }
    if (!reading_) return false;
    if (cfg_.idle_timeout && now >= idle_reference_ + *cfg_.idle_timeout) {
      const std::string silence =
          "nothing received for " + std::to_string(to_ms(now - idle_reference_).count()) + " ms";
      if (inside_oversized_header()) {
        fail(make_error_code(transport_errc::frame_too_large),
             oversized_detail(silence + " before its forwarding header"));
      } else {
        fail(make_error_code(transport_errc::idle_timeout), silence);
      }
      return true;
    }
    if (cfg_.ack_timeout) {
      if (const auto oldest = send_window_.oldest_outstanding()) {
        const auto wait = std::max<std::chrono::milliseconds>(*cfg_.ack_timeout, rto());
        if (now >= std::max(*oldest, idle_reference_) + wait) {
          fail(make_error_code(transport_errc::link_failure),
               "frame " + std::to_string(send_window_.next_sequence()) +
                   " and earlier unacknowledged for " + std::to_string(wait.count()) + " ms");
          return true;
        }
      }
    }
    return false;
  }

  asio::awaitable<void> writer([[maybe_unused]] std::shared_ptr<link_impl> self) {
    while (state_ != link_state::closed) {
      auto now = clock_type::now();
      // A close that flushes queued messages gets no more time than close_linger in all.
      if (state_ == link_state::closing && check_deadlines(now)) break;
      fill_output(now);
      if (!output().empty()) {
        write_buffer_.clear();
        write_buffer_.swap(output());
        // One write at a time, bounded in time (and by the handshake deadline while handshaking).
        auto limit = now + cfg_.write_timeout;
        const bool handshaking = state_ == link_state::handshaking;
        if (handshaking) limit = std::min(limit, handshake_deadline_);
        if (state_ == link_state::closing) limit = std::min(limit, close_deadline_);
        // The write's watchdog: a plain handler, not a second coroutine racing the write with ||
        // (that costs two coroutine spawns per write; see the benchmark). The generation makes
        // a timer that fired just as the write completed harmless.
        const std::uint64_t generation = ++write_generation_;
        write_timer_.expires_at(limit);
        write_timer_.async_wait(
            [weak = weak_from_this(), generation, handshaking](const asio::error_code& timer_ec) {
              auto me = weak.lock();
              if (timer_ec || !me || me->write_generation_ != generation) return;
              me->fail(make_error_code(handshaking ? transport_errc::handshake_timeout
                                                   : transport_errc::write_timeout),
                       "write did not complete in time");
            });
        auto [ec, written] =
            co_await asio::async_write(socket_, asio::buffer(write_buffer_), use_nothrow);
        ++write_generation_;
        write_timer_.cancel();
        if (state_ == link_state::closed) break;
        if (ec) {
          if (state_ == link_state::closing) {
            finish();
          } else {
            fail(make_error_code(transport_errc::connection_lost), ec.message());
          }
          break;
        }
        stats_.bytes_sent += written;
        ++stats_.socket_writes;
        write_buffer_.clear();
        if (output().empty()) {
          // Nothing more to write for now: an idle link keeps no buffer (both would otherwise
          // keep the capacity of the largest flight, the handshake's, for the link's life), nor
          // TLS state it can make again for the next record.
          detail::release_storage(write_buffer_);
          detail::release_storage(output());
          if (engine_) engine_->release_idle_state();
        }
        reader_event_.notify_all();  // output drained: a paused reader may read again
        continue;
      }
      if (state_ == link_state::closing && !half_closed_ && !flushing_) {
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
  link_config cfg_;
  std::optional<pr::node_id> required_peer_;
  detail::handshake_hook hook_;
  std::unique_ptr<detail::tls_engine> engine_;

  link_state state_ = link_state::handshaking;
  std::error_code reason_;
  std::string detail_;
  std::optional<std::error_code> handshake_result_;
  close_handler close_handler_;

  pr::frame_decoder decoder_;
  pr::receive_window receive_window_;
  pr::send_window send_window_;
  token_bucket bucket_;
  std::uint32_t misbehaviour_ = 0;
  link_stats stats_;

  // Both queues are empty nearly all the time: a fifo holds no memory then (a deque did).
  pr::fifo<pr::bytes> queue_;  ///< messages accepted by send, not yet framed
  std::size_t queued_bytes_ = 0;
  bool flushing_ = false;  ///< closing: queue_ is still being sent, close_notify comes after it
  pr::fifo<inbound_message> inbox_;  ///< received items not yet taken by receive()
  /// Data frames sent and not yet acked, oldest first (take_undelivered).
  struct sent_frame {
    std::uint32_t sequence = 0;
    pr::bytes message;
  };
  static constexpr std::size_t max_unacked = 64;
  pr::fifo<sent_frame> unacked_;
  pr::fifo<pr::bytes> unsent_;  ///< queued by send, never framed: the link closed first

  asio::steady_timer wake_timer_;       ///< the writer's sleep: a deadline, or cancel() to wake it
  asio::steady_timer write_timer_;      ///< bounds each write
  std::uint64_t write_generation_ = 0;  ///< changes when a write ends: stale watchdogs do nothing
  async_event reader_event_;            ///< inbox room, output drained
  async_event receive_event_;           ///< a message arrived, or the link is closing
  async_event room_event_;              ///< send queue room, or the link is closing
  async_event handshake_event_;         ///< the handshake finished
  bool writer_waiting_ = false;
  bool reading_ = false;
  bool reader_paused_ = false;
  bool half_closed_ = false;

  clock_type::time_point handshake_deadline_{};
  clock_type::time_point close_deadline_{};
  clock_type::time_point idle_reference_{};  ///< last bytes received, or reader resumed

  std::vector<std::uint8_t> write_buffer_;
  std::vector<std::uint8_t> plain_output_;
  std::vector<std::uint8_t> scratch_;

  asio::ip::tcp::endpoint remote_;
  asio::ip::tcp::endpoint local_;
  std::vector<pr::node_id> no_ids_;
  pr::bytes no_bytes_;
  std::string plaintext_suite_ = "plaintext (insecure)";
  std::string plaintext_user_;
};

}  // namespace

namespace detail {

std::shared_ptr<link> start_link_internal(asio::ip::tcp::socket socket, tls_role role,
                                          std::shared_ptr<const tls_credentials> creds,
                                          link_config cfg, std::optional<pr::node_id> required_peer,
                                          handshake_hook hook) {
  auto l = std::make_shared<link_impl>(std::move(socket), role, std::move(creds), std::move(cfg),
                                       std::move(required_peer), std::move(hook));
  l->start();
  return l;
}

}  // namespace detail

std::shared_ptr<link> start_link(asio::ip::tcp::socket socket, tls_role role,
                                 std::shared_ptr<const tls_credentials> creds, link_config cfg,
                                 std::optional<pr::node_id> required_peer) {
  return detail::start_link_internal(std::move(socket), role, std::move(creds), std::move(cfg),
                                     std::move(required_peer), {});
}

asio::awaitable<pr::result<std::shared_ptr<link>, pr::error_record>> connect_explained(
    asio::ip::tcp::endpoint remote, std::shared_ptr<const tls_credentials> creds, link_config cfg,
    std::optional<pr::node_id> required_peer, tls_role role) {
  if (!creds && !cfg.insecure_plaintext) {
    const auto code = make_error_code(transport_errc::invalid_credentials);
    co_return pr::error_record{code, code.message()};
  }
  const auto deadline = clock_type::now() + cfg.handshake_timeout;
  auto socket = co_await detail::connect_tcp(remote, deadline);
  if (!socket) co_return socket.error();

  // The handshake gets what is left of the budget.
  cfg.handshake_timeout =
      std::max(std::chrono::milliseconds(1), to_ms(deadline - clock_type::now()));
  auto l = start_link(std::move(*socket), role, std::move(creds), std::move(cfg),
                      std::move(required_peer));
  const std::error_code handshake = co_await l->handshake();
  if (handshake) {
    // The close detail holds Botan's words: the alert the peer sent, the validation status.
    const auto& detail = l->close_detail();
    co_return pr::error_record{handshake,
                               handshake.message() + (detail.empty() ? "" : ": " + detail)};
  }
  co_return l;
}

asio::awaitable<pr::result<std::shared_ptr<link>>> connect(
    asio::ip::tcp::endpoint remote, std::shared_ptr<const tls_credentials> creds, link_config cfg,
    std::optional<pr::node_id> required_peer, tls_role role) {
  auto connected = co_await connect_explained(remote, std::move(creds), std::move(cfg),
                                              std::move(required_peer), role);
  if (!connected) co_return connected.error().code;
  co_return std::move(*connected);
}

}  // namespace p2psip::transport
