#pragma once
// The client SDK's engine (client::impl): a client_node (p2psip::node) driven by node_driver on
// the I/O thread every client of the process shares (io_thread.hpp), a table of operations in
// flight, and the shared callback thread (the default dispatcher). Every public member of client
// turns into a function posted to the I/O thread; outcomes are turned into results there and
// handed to the dispatcher. An impl is deleted on the I/O thread (impl::make), where everything
// of it runs. Internal to the SDK.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>
#include <variant>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "callback_thread.hpp"
#include "io_thread.hpp"
#include "p2psip/client/client.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "p2psip/node/client_node.hpp"
#include "p2psip/node/crypto_signer.hpp"
#include "p2psip/node/node_driver.hpp"
#include "p2psip/node/node_setup.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/ids.hpp"
#include "shared_overlay.hpp"
#include "sip_agent.hpp"
#include "thread_stack.hpp"

namespace p2psip::client {

namespace detail {

namespace pr = p2psip::protocol;
namespace pe = p2psip::node;
using steady = std::chrono::steady_clock;

inline struct error fail(errc code, std::string message) {
  return {make_error_code(code), std::move(message)};
}

inline data_model model_from(pr::data_model m) {
  switch (m) {
    case pr::data_model::single_value: return data_model::single_value;
    case pr::data_model::array: return data_model::array;
    case pr::data_model::dictionary: return data_model::dictionary;
  }
  return data_model::single_value;
}

/// RELOAD error responses as SDK errors; the message keeps the RELOAD name and the peer's text.
inline struct error error_of(const pr::error_response& e) {
  const auto code = static_cast<pr::reload_errc>(e.error_code);
  std::string text = pr::make_error_code(code).message();
  if (!e.error_info.empty() && code != pr::reload_errc::unknown_kind &&
      code != pr::reload_errc::generation_counter_too_low) {
    std::string info(e.error_info.begin(), e.error_info.end());
    if (std::all_of(info.begin(), info.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) {
      text += ": " + info;
    }
  }
  switch (code) {
    case pr::reload_errc::forbidden: return fail(errc::forbidden, text);
    case pr::reload_errc::not_found: return fail(errc::not_found, text);
    case pr::reload_errc::request_timeout: return fail(errc::timeout, text);
    case pr::reload_errc::generation_counter_too_low: return fail(errc::generation_conflict, text);
    case pr::reload_errc::data_too_large:
    case pr::reload_errc::message_too_large:
    case pr::reload_errc::response_too_large: return fail(errc::too_large, text);
    case pr::reload_errc::unknown_kind: return fail(errc::unknown_kind, text);
    default: return fail(errc::overlay_error, text);
  }
}

/// What a client reads before it starts: the overlay setup it shares with the other clients of
/// the process that use the same document (shared_overlay.hpp), and its own credentials.
struct client_setup {
  std::shared_ptr<const pe::overlay_setup> overlay;
  crypto::credentials creds;
  std::shared_ptr<const transport::tls_credentials> tls;

  const config::overlay_config& config() const noexcept { return overlay->config; }
  /// Thread-safe; shared with the other clients of the overlay setup.
  crypto::trust_store& trust() const noexcept { return *overlay->trust; }
};

}  // namespace detail

using namespace detail;

struct client::impl : std::enable_shared_from_this<client::impl> {
  /// One operation in flight: its request (kept for retries) and what to do with the answer.
  struct operation {
    std::vector<pr::destination> destinations;
    pr::message_body request;
    steady::time_point deadline;
    /// Turns the answer into the result and dispatches it; called once.
    std::function<void(pe::outcome&&)> answered;
    std::function<void(struct error)> failed;
    std::optional<std::uint64_t> txid;
    unsigned attempts = 0;
    unsigned route_retries = 0;  ///< attempts repeated after an answer (see should_retry_after)
  };

  /// Retries after an answer that should pass (should_retry_after), and the first pause
  /// (doubling).
  static constexpr unsigned max_route_retries = 4;
  static constexpr std::chrono::milliseconds first_route_retry_pause{100};

  client_options options;
  client_setup setup;
  pr::body_context body_context;
  pr::node_id own_id;
  pr::limits limits;
  /// The process's I/O thread, held while anything of this client may still run on it.
  std::shared_ptr<detail::io_thread> io_thread;
  asio::io_context& io;
  /// The shared callback thread's account of ours; none with a dispatcher of the application's.
  std::optional<client_callbacks> callbacks;
  /// Set once shutdown's work on the I/O thread is done: the link closed, everything failed.
  std::promise<void> stop_promise;
  std::shared_future<void> stop_done = stop_promise.get_future().share();
  /// Set on the I/O thread once this impl is deleted (make's deleter), for ~client to wait on.
  std::promise<void> deleted;
  asio::steady_timer sweep_timer{io};
  pe::crypto_signer signer;
  pe::system_random rng;
  pe::client_node* node = nullptr;  ///< owned by the driver, once started
  std::unique_ptr<pe::node_driver> driver;
  std::unique_ptr<sip_agent> sip_;                ///< the SIP user agent; used on the I/O thread
  std::map<std::uint64_t, operation> operations;  // by operation number
  std::map<std::uint64_t, std::uint64_t> by_txid;
  std::deque<std::uint64_t> waiting;  // operation numbers waiting for a peer
  std::uint64_t next_operation = 1;
  std::uint64_t last_storage_time = 0;
  steady::time_point last_sent{};
  bool ever_attached = false;
  bool stopped = false;  // I/O thread only

  mutable std::mutex state_mutex;  // guards `attached`, `shutting_down`, `dials`
  std::condition_variable attached_cv;
  std::optional<peer_info> attached;
  bool shutting_down = false;

  /// How a configured peer address fared since the client was last attached: being dialed, or
  /// why its latest dial failed. Once every address has failed and none is being dialed, nothing
  /// can attach until the next round (the node backs off): operations and wait_attached fail at
  /// once with errc::no_peer and these reasons instead of waiting out their timeout.
  struct dial_status {
    std::string address;
    bool dialing = false;
    std::string failure;  ///< empty: not failed (not tried yet, or dialing)
  };
  std::vector<dial_status> dials;  // in the configured order

  impl(client_options o, client_setup s, std::shared_ptr<detail::io_thread> thread)
      : options(std::move(o)),
        setup(std::move(s)),
        own_id(setup.creds.signing.default_node_id()),
        limits(config::limits_of(setup.config())),
        io_thread(std::move(thread)),
        io(io_thread->context()),
        signer(setup.creds.signing, own_id, setup.trust()) {
    body_context.model_of = config::kind_model_lookup_of(setup.config());
    if (!options.dispatcher) callbacks.emplace();
  }

  /// A client's engine on the shared I/O thread, deleted there: its driver, links, timers and
  /// SIP agent are Asio objects of that thread, which other clients' handlers keep running
  /// while the last reference goes on any thread (the application's, the callback thread, a
  /// handler of its own still on the stack). Throws what starting the thread throws.
  static std::shared_ptr<impl> make(client_options o, client_setup s) {
    auto thread = process_shared<detail::io_thread>();
    return std::shared_ptr<impl>(new impl(std::move(o), std::move(s), thread), [](impl* p) {
      auto& io = p->io;
      asio::post(io, [p, keep = p->io_thread]() mutable {
        auto done = std::move(p->deleted);
        delete p;
        keep.reset();  // before the signal: a waiting ~client may hold the last reference
        done.set_value();
      });
    });
  }

  // ---- threads ----

  void start(pe::client_config node_config) {
    for (const auto& a : node_config.bootstrap) dials.push_back({a.to_string(), false, {}});
    pe::driver_config dc;
    dc.link.limits = node_config.transport.limits;
    // The peer may close an idle client link; our keepalive Pings keep it busy, and a link whose
    // data goes unacknowledged fails (ack_timeout) so that we fail over.
    dc.link.idle_timeout = std::nullopt;
    dc.link.ack_timeout = std::max(options.request_timeout, std::chrono::milliseconds(2000));
    dc.leave_flush_timeout = std::chrono::milliseconds(0);
    dc.close_timeout = std::chrono::milliseconds(1000);
    std::weak_ptr<impl> weak = weak_from_this();
    if (options.log) {
      dc.log = [weak](pe::log_level, std::string_view text) {
        if (auto me = weak.lock()) me->options.log(text);
      };
      dc.link.log = dc.log ? std::function<void(std::string_view)>([weak](std::string_view text) {
        if (auto me = weak.lock()) me->options.log(text);
      })
                           : nullptr;
    }
    dc.make_node = [this, node_config = std::move(node_config)](std::uint16_t) {
      auto made = std::make_unique<pe::client_node>(node_config, signer, rng);
      node = made.get();
      return made;
    };
    dc.links_changed = [weak] {
      if (auto me = weak.lock()) me->links_changed();
    };
    dc.dial_started = [weak](const pr::ip_address_port& a) {
      if (auto me = weak.lock()) me->dial_changed(a.to_string(), true, {});
    };
    dc.dial_failed = [weak](const pr::ip_address_port& a, const pr::error_record& why) {
      if (auto me = weak.lock()) me->dial_changed(a.to_string(), false, why.message);
    };
    // The node keeps the document to send in ConfigUpdates: the shared setup's (an alias that
    // holds the setup).
    dc.configuration_document =
        std::shared_ptr<const pr::bytes>(setup.overlay, &setup.overlay->document);
    // SIP over AppAttach (RFC 7904 5): connections we open for the user agent, and those
    // accepted once it serves SIP (sip_agent::listen).
    sip_ = std::make_unique<sip_agent>(*this);
    dc.applications.push_back(
        pe::application_endpoint{5060, std::nullopt, [weak](pe::app_connection c) {
                                   if (auto me = weak.lock()) {
                                     me->sip_->on_connection(std::move(c));
                                   } else {
                                     c.stream->close();
                                   }
                                 }});
    // A newer signed document offered by our peer: its sequence is taken for this session (the
    // file and the settings read from it stay; other threads read those without a lock).
    dc.accept_configuration = [this](pr::byte_view offered) {
      return pe::check_update(setup.config(), offered);
    };
    driver = std::make_unique<pe::node_driver>(io, std::move(dc), setup.tls);
    asio::post(io, [me = shared_from_this()] {
      if (auto started = me->driver->start(); !started) {
        if (me->options.log) me->options.log(started.error().message);
      }
      me->arm_sweep();
    });
  }

  /// On the I/O thread every client of the process shares: a blocking call here would wait for
  /// the thread that has to answer it.
  bool on_io_thread() const { return io_thread->is_current(); }

  void dispatch(std::function<void()> f) {
    if (options.dispatcher) {
      options.dispatcher(std::move(f));
    } else {
      callbacks->post(std::move(f));
    }
  }

  /// Stops: fails what is in flight with errc::stopped and closes the link, on the I/O thread.
  /// Safe from any thread. Returns once that is done, except on the I/O thread itself (then it
  /// is done after the current handler). Other clients are not disturbed.
  void shutdown() {
    auto me = shared_from_this();
    std::unique_lock lock(state_mutex);
    if (!shutting_down) {
      shutting_down = true;
      attached.reset();
      asio::post(io, [me] {
        me->stopped = true;
        me->sweep_timer.cancel();
        // Done however this ends (a dispatcher that runs callbacks inline may throw out of
        // fail_all): shutdown waits for it.
        asio::co_spawn(
            me->io,
            [me]() -> asio::awaitable<void> {
              if (me->sip_) me->sip_->stop();
              me->fail_all(fail(errc::stopped, "the client was stopped"));
              co_await me->driver->stop();
            },
            [me](const std::exception_ptr&) { me->stop_promise.set_value(); });
      });
    }
    lock.unlock();
    attached_cv.notify_all();
    if (!on_io_thread()) stop_done.wait();
  }

  /// Shuts down, then waits for this client's callbacks queued on the default callback thread
  /// (not on that thread itself). The callback thread outlives stop(): callback forms called
  /// after it still get errc::stopped through it.
  void destroy() {
    shutdown();
    if (callbacks) callbacks->drain();
  }

  // ---- attachment ----

  void links_changed() {
    std::optional<peer_info> now_attached;
    if (driver->link_count() > 0) {
      for (const auto& [id, c] : node->links().rows()) {
        const auto ep = driver->remote_endpoint(id);
        peer_info p;
        p.node_id = c.remote.hex();
        if (ep) {
          p.address = ep->address().is_v6() ? "[" + ep->address().to_string() + "]"
                                            : ep->address().to_string();
          p.address += ":" + std::to_string(ep->port());
        }
        now_attached = p;
        break;
      }
    }
    {
      std::lock_guard lock(state_mutex);
      if (shutting_down) return;
      attached = now_attached;
      // A new round of dials starts from here: what failed before may answer now.
      if (now_attached) {
        for (auto& d : dials) d = {d.address, false, {}};
      }
    }
    attached_cv.notify_all();
    if (now_attached) {
      ever_attached = true;
      if (options.log) {
        options.log("attached to " + now_attached->node_id + " at " + now_attached->address);
      }
      send_waiting();
      // The handshake, the certificate checks and the first signed exchanges run deep in Botan
      // on this thread's stack; an idle client needs none of it (sweep_loop gives it back).
      release_stack_at = steady::now() + stack_release_delay;
    }
    if (sip_) sip_->on_links_changed();
  }

  bool is_attached() const {
    std::lock_guard lock(state_mutex);
    return attached.has_value();
  }

  /// A dial to `address` started (`dialing`) or failed (`failure`) (I/O thread). When that was
  /// the last hope, operations waiting for a peer fail now, with each address's reason.
  void dial_changed(const std::string& address, bool dialing, std::string failure) {
    std::optional<std::string> hopeless;
    {
      std::lock_guard lock(state_mutex);
      for (auto& d : dials) {
        if (d.address != address) continue;
        d.dialing = dialing;
        if (dialing) {
          d.failure.clear();
        } else {
          d.failure = failure.empty() ? "failed" : std::move(failure);
        }
      }
      hopeless = unreachable_locked();
    }
    if (!hopeless) return;
    if (options.log) options.log(*hopeless);
    attached_cv.notify_all();
    fail_waiting(fail(errc::no_peer, *hopeless));
    if (sip_) sip_->on_unreachable(*hopeless);
  }

  /// With state_mutex held: "no peer reachable: ADDRESS: REASON; ..." when not attached and
  /// every configured address failed its latest dial with none being dialed; else nothing.
  std::optional<std::string> unreachable_locked() const {
    if (attached || dials.empty()) return std::nullopt;
    for (const auto& d : dials) {
      if (d.dialing || d.failure.empty()) return std::nullopt;
    }
    return "no peer reachable: " + dials_text_locked();
  }

  /// With state_mutex held: each configured address and how it fares, "; "-separated.
  std::string dials_text_locked() const {
    std::string text;
    for (const auto& d : dials) {
      if (!text.empty()) text += "; ";
      text += d.address + ": " +
              (!d.failure.empty() ? d.failure
               : d.dialing        ? "still dialing"
                                  : "not tried yet");
    }
    return text;
  }

  /// "no peer reachable: ..." when every peer failed (see dial_changed), else nothing.
  std::optional<std::string> unreachable() const {
    std::lock_guard lock(state_mutex);
    return unreachable_locked();
  }

  /// Each configured address and how it fares (for a timeout's message).
  std::string dials_text() const {
    std::lock_guard lock(state_mutex);
    return dials_text_locked();
  }

  // ---- operations ----

  /// Starts an operation (I/O thread).
  void begin(operation op) {
    if (stopped) {
      op.failed(fail(errc::stopped, "the client was stopped"));
      return;
    }
    if (auto hopeless = unreachable()) {
      op.failed(fail(errc::no_peer, *hopeless));
      return;
    }
    const auto id = next_operation++;
    operations.emplace(id, std::move(op));
    waiting.push_back(id);
    send_waiting();
  }

  void send_waiting() {
    if (stopped || !is_attached()) return;
    while (!waiting.empty()) {
      const auto id = waiting.front();
      auto it = operations.find(id);
      if (it == operations.end()) {
        waiting.pop_front();
        continue;
      }
      auto& op = it->second;
      pr::result<std::uint64_t> tx =
          make_error_code(pr::reload_errc::underlay_destination_unreachable);
      std::weak_ptr<impl> weak = weak_from_this();
      const auto attempt = op.attempts + 1;
      driver->with_node([&](pe::node_engine&, pe::time_point now) {
        tx = node->send_request(
            op.destinations, op.request,
            [weak, id, attempt](pe::outcome&& o, pe::time_point) {
              if (auto me = weak.lock()) me->answered(id, attempt, std::move(o));
            },
            now);
      });
      if (!tx) return;  // the link went away: wait for the next one
      waiting.pop_front();
      ++op.attempts;
      op.txid = *tx;
      by_txid[*tx] = id;
      last_sent = steady::now();
    }
  }

  /// The outcome of operation `id`'s current attempt (I/O thread).
  void answered(std::uint64_t id, unsigned attempt, pe::outcome&& o) {
    auto it = operations.find(id);
    if (it == operations.end()) return;  // one we gave up on
    auto& op = it->second;
    if (!op.txid || op.attempts != attempt) return;  // an earlier attempt's
    by_txid.erase(*op.txid);
    op.txid.reset();
    if (o.what == pe::outcome::kind::timeout && steady::now() < op.deadline) {
      // Lost with its link, or unanswered: try again (through the next peer if need be).
      if (options.log) options.log("retrying a request after: no answer");
      waiting.push_back(id);
      send_waiting();
      return;
    }
    if (should_retry_after(op, o)) {
      const auto pause = first_route_retry_pause * (1u << op.route_retries);
      ++op.route_retries;
      if (options.log) options.log("retrying a request after: " + pe::describe(o));
      auto timer = std::make_shared<asio::steady_timer>(io, pause);
      timer->async_wait([weak = weak_from_this(), id, timer](const std::error_code& ec) {
        auto me = weak.lock();
        if (ec || !me || me->stopped || !me->operations.contains(id)) return;
        me->waiting.push_back(id);
        me->send_waiting();
      });
      return;
    }
    auto done = std::move(op);
    operations.erase(it);
    done.answered(std::move(o));
  }

  /// Whether an error answer is one that passes, so the request goes again after a short pause,
  /// a few times, within its deadline:
  ///  - a Store, Fetch, Stat or Find answered Error_Not_Found never reached the responsible
  ///    peer: the answering peer had no route towards it, or believed another peer responsible
  ///    (RFC 6940 6.4.1, 6.4.3: "not responsible"). Both mean the ring is changing under the
  ///    request (joins, a merge, failures) and pass within a stabilization round;
  ///  - Error_Config_Too_Old: the peer runs a newer configuration and sends it back by
  ///    ConfigUpdate (6.3.2.1), which the node takes; the request goes again with the new
  ///    sequence.
  bool should_retry_after(const operation& op, const pe::outcome& o) const {
    if (o.what != pe::outcome::kind::error || op.route_retries >= max_route_retries) return false;
    const auto code = static_cast<pr::reload_errc>(o.error.error_code);
    const bool data_request = std::holds_alternative<pr::store_req>(op.request) ||
                              std::holds_alternative<pr::fetch_req>(op.request) ||
                              std::holds_alternative<pr::stat_req>(op.request) ||
                              std::holds_alternative<pr::find_req>(op.request);
    const bool passes = (code == pr::reload_errc::not_found && data_request) ||
                        code == pr::reload_errc::config_too_old;
    const auto pause = first_route_retry_pause * (1u << op.route_retries);
    return passes && steady::now() + pause < op.deadline;
  }

  /// Takes operation `id` out of every table, for the caller to answer; none when it is gone.
  std::optional<operation> take_operation(std::uint64_t id) {
    auto it = operations.find(id);
    if (it == operations.end()) return std::nullopt;
    auto op = std::move(it->second);
    operations.erase(it);
    if (op.txid) by_txid.erase(*op.txid);
    std::erase(waiting, id);
    return op;
  }

  /// Fails the operations waiting for a peer to be sent through (none is in flight: no link).
  void fail_waiting(const struct error& e) {
    auto ids = std::move(waiting);
    waiting.clear();
    for (const auto id : ids) {
      if (auto op = take_operation(id)) op->failed(e);
    }
  }

  void fail_all(const struct error& e) {
    auto ops = std::move(operations);
    operations.clear();
    by_txid.clear();
    waiting.clear();
    for (auto& [id, op] : ops) op.failed(e);
  }

  /// When sweep next gives back the stack pages that deep calls touched (I/O thread).
  std::optional<steady::time_point> release_stack_at;
  /// How long after an attachment (or after operations were last pending) that is.
  static constexpr std::chrono::milliseconds stack_release_delay{200};

  /// Runs sweep every 50 ms until the client stops. The wait holds no reference to the client:
  /// a client nobody else holds is deleted (and its timer with it) while it waits.
  void arm_sweep() {
    sweep_timer.expires_after(std::chrono::milliseconds(50));
    sweep_timer.async_wait([weak = weak_from_this()](const std::error_code& ec) {
      auto me = weak.lock();
      if (ec || !me || me->stopped) return;
      me->sweep();
      me->arm_sweep();
    });
  }

  /// Operations past their deadline fail; keepalive Pings; the stack given back when idle.
  void sweep() {
    const auto now = steady::now();
    if (release_stack_at && now >= *release_stack_at) {
      if (operations.empty()) {
        // Here, a few frames deep in the event loop. The thread is every client's: what
        // another client's deep calls touched goes too, and comes back zero-filled if needed.
        detail::release_unused_stack();
        release_stack_at.reset();
      } else {
        release_stack_at = now + stack_release_delay;  // busy: when it is idle again
      }
    }
    std::vector<std::uint64_t> expired;
    for (const auto& [id, op] : operations) {
      if (now >= op.deadline) expired.push_back(id);
    }
    for (const auto id : expired) {
      auto op = take_operation(id);
      if (!op) continue;
      if (!ever_attached) {
        op->failed(fail(errc::no_peer, "could not attach to any peer within " +
                                           std::to_string(options.operation_timeout.count()) +
                                           " ms (" + dials_text() + ")"));
      } else {
        op->failed(fail(errc::timeout, "no answer within " +
                                           std::to_string(options.operation_timeout.count()) +
                                           " ms (" + std::to_string(op->attempts) + " attempts)"));
      }
    }
    if (is_attached() && now - last_sent >= options.keepalive_interval) {
      // The answer finds no operation and is dropped; an unacknowledged Ping fails the link.
      last_sent = now;
      if (const auto peer = peer_node()) {
        driver->with_node([&](pe::node_engine&, pe::time_point t) {
          (void)node->send_request({pr::to_destination(*peer)}, pr::ping_req{}, {}, t);
        });
      }
    }
  }

  /// The SIP user agent (I/O thread).
  sip_agent& sip() { return *sip_; }
  /// Any thread.
  void sip_handler(sip_request_handler h) { sip_->set_handler(std::move(h)); }
  std::vector<std::string> sip_calls() const { return sip_->calls(); }

  /// The attached peer's address (I/O thread).
  std::optional<asio::ip::tcp::endpoint> attached_peer_address() const {
    if (!node) return std::nullopt;
    for (const auto& [id, c] : node->links().rows()) return driver->remote_endpoint(id);
    return std::nullopt;
  }

  std::optional<pr::node_id> peer_node() const {
    if (!node) return std::nullopt;
    for (const auto& [id, c] : node->links().rows()) return c.remote;
    return std::nullopt;
  }

  // ---- requests ----

  pr::resource_id resource_of(std::string_view name) const {
    return pr::hash_resource_name(name, setup.config().node_id_length);
  }

  std::uint64_t next_storage_time() {
    const auto now =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    // Strictly increasing: a peer refuses a value not newer than the one it holds (7.4.1.2).
    last_storage_time = std::max(now, last_storage_time + 1);
    return last_storage_time;
  }

  /// Builds a signed StoreReq for `items` (I/O thread: storage times are ours to order).
  std::variant<pr::store_req, struct error> make_store(std::string_view resource,
                                                       std::uint32_t kind,
                                                       const std::vector<item>& items,
                                                       const store_options& opts, bool tombstones) {
    const auto* def = config::find_kind(setup.config(), kind);
    if (!def) {
      return fail(errc::unknown_kind, "kind " + config::kind_display_name(kind) +
                                          " is not in the overlay configuration");
    }
    if (items.empty()) return fail(errc::invalid_argument, "nothing to store");
    if (def->model == pr::data_model::single_value && items.size() != 1) {
      return fail(errc::invalid_argument, "a single-value kind takes exactly one item");
    }
    if (items.size() > def->max_count) {
      return fail(errc::too_large, std::to_string(items.size()) + " items: kind " +
                                       config::kind_display_name(kind) + " allows " +
                                       std::to_string(def->max_count));
    }
    pr::store_req req;
    req.resource = resource_of(resource);
    pr::store_kind_data kd;
    kd.kind = kind;
    kd.generation_counter = opts.generation;
    for (const auto& it : items) {
      if (!tombstones && it.exists && it.value.size() > def->max_size) {
        return fail(errc::too_large, "value of " + std::to_string(it.value.size()) +
                                         " bytes: kind " + config::kind_display_name(kind) +
                                         " allows " + std::to_string(def->max_size));
      }
      pr::data_value dv;
      dv.exists = tombstones ? false : it.exists;
      if (dv.exists) dv.value = pr::bytes(it.value.begin(), it.value.end());
      pr::stored_data d;
      d.storage_time = next_storage_time();
      d.lifetime = it.lifetime != 0 ? it.lifetime : opts.lifetime;
      switch (def->model) {
        case pr::data_model::single_value: d.value = std::move(dv); break;
        case pr::data_model::array: d.value = pr::array_entry{it.index, std::move(dv)}; break;
        case pr::data_model::dictionary:
          d.value = pr::dictionary_entry{pr::bytes(it.key.begin(), it.key.end()), std::move(dv)};
          break;
      }
      if (auto signed_ok = crypto::sign_stored_data(d, req.resource, kind, setup.creds.signing);
          !signed_ok) {
        return fail(errc::bad_credentials, "cannot sign: " + signed_ok.error().message());
      }
      kd.values.push_back(std::move(d));
    }
    req.kind_data.push_back(std::move(kd));
    return req;
  }

  pr::stored_data_specifier specifier(std::uint32_t kind, const selection& which) const {
    pr::stored_data_specifier s;
    s.kind = kind;
    const auto model = body_context.model_of(kind);
    if (model == pr::data_model::array) {
      std::vector<pr::array_range> ranges;
      for (const auto& [first, last] : which.ranges) ranges.push_back({first, last});
      // All of an array: the whole index space.
      if (ranges.empty()) ranges.push_back({0, 0xFFFFFFFF});
      s.model = std::move(ranges);
    } else if (model == pr::data_model::dictionary) {
      std::vector<pr::bytes> keys;
      for (const auto& k : which.keys_) keys.emplace_back(k.begin(), k.end());
      s.model = std::move(keys);
    }
    return s;
  }

  /// Decodes an answer that should be `Answer`; an Error response becomes its SDK error.
  template <class Answer>
  std::variant<Answer, struct error> answer_of(pe::outcome& o, std::string_view what) const {
    switch (o.what) {
      case pe::outcome::kind::timeout:
        return fail(errc::timeout, pr::make_error_code(pr::reload_errc::request_timeout).message());
      case pe::outcome::kind::returned:
        return fail(errc::invalid_answer, "the request came back unanswered");
      case pe::outcome::kind::error: return error_of(o.error);
      case pe::outcome::kind::answer: break;
    }
    auto* ans = std::get_if<Answer>(&o.body);
    if (!ans) return fail(errc::invalid_answer, "the answer is not a " + std::string(what));
    return std::move(*ans);
  }

  /// The value part of a stored (or stat'ed) entry of any data model, with the array index or
  /// dictionary key copied into `it`. `Entry` is data_value or meta_data.
  template <class Entry, class ArrayEntry, class DictionaryEntry, class Variant>
  static const Entry& unpack_entry(const Variant& v, item& it) {
    if (const auto* a = std::get_if<ArrayEntry>(&v)) {
      it.index = a->index;
      return a->value;
    }
    if (const auto* k = std::get_if<DictionaryEntry>(&v)) {
      it.key = bytes(k->key.begin(), k->key.end());
      return k->value;
    }
    return std::get<Entry>(v);
  }

  /// Items of a FetchAns (values, each signature verified) or a StatAns (lengths and hashes) for
  /// `kind`.
  template <class Answer>
  std::variant<kind_data, struct error> kind_items(pe::outcome& m, const pr::resource_id& res,
                                                   std::uint32_t kind) const {
    constexpr bool is_fetch = std::is_same_v<Answer, pr::fetch_ans>;
    auto decoded = answer_of<Answer>(m, is_fetch ? "FetchAns" : "StatAns");
    if (auto* e = std::get_if<struct error>(&decoded)) return *e;
    const auto& ans = std::get<Answer>(decoded);
    kind_data out;
    out.kind = kind;
    out.model = model_from(body_context.model_of(kind).value_or(pr::data_model::single_value));
    const auto now = std::chrono::system_clock::now();
    for (const auto& kr : ans.kind_responses) {
      if (kr.kind != kind) continue;
      out.generation = kr.generation;
      for (const auto& d : kr.values) {
        item it;
        it.storage_time = d.storage_time;
        it.lifetime = d.lifetime;
        if constexpr (is_fetch) {
          const auto& dv =
              unpack_entry<pr::data_value, pr::array_entry, pr::dictionary_entry>(d.value, it);
          it.exists = dv.exists;
          it.value = bytes(dv.value.begin(), dv.value.end());
          it.value_length = static_cast<std::uint32_t>(dv.value.size());
          // A value nobody stored comes back unsigned (exists=false, storage_time 0: 7.4.2.2).
          const bool synthetic = !dv.exists && d.storage_time == 0;
          if (!synthetic) {
            auto who = crypto::verify_stored_data(d, res, kind, m.message.security.certificates,
                                                  setup.trust(), now);
            if (!who) {
              return fail(errc::invalid_answer,
                          "a fetched value's signature does not verify: " + who.error().message());
            }
            it.signer_node_id = who->node.hex();
            it.signer_user = who->user();
          }
        } else {
          const auto& md =
              unpack_entry<pr::meta_data, pr::array_entry_meta, pr::dictionary_entry_meta>(
                  d.metadata, it);
          it.exists = md.exists;
          it.value_length = md.value_length;
          it.hash = bytes(md.hash_value.begin(), md.hash_value.end());
        }
        out.items.push_back(std::move(it));
      }
    }
    return out;
  }

  /// Hands a result to its callback: through the dispatcher, or at once on the I/O thread for
  /// the blocking forms (their caller may be the dispatcher's thread, waiting).
  template <class T>
  void deliver_result(const client::callback<T>& done, result<T> r, bool direct) {
    if (direct) {
      done(std::move(r));
    } else {
      dispatch([done, r = std::move(r)]() mutable { done(std::move(r)); });
    }
  }

  /// An operation whose answer `convert` turns into a result<T>.
  template <class T, class Convert>
  operation make_operation(std::vector<pr::destination> dest, pr::message_body request,
                           client::callback<T> done, bool direct, Convert convert) {
    operation op;
    op.destinations = std::move(dest);
    op.request = std::move(request);
    op.deadline = steady::now() + options.operation_timeout;
    auto me = shared_from_this();
    op.answered = [me, done, direct, convert = std::move(convert)](pe::outcome&& m) mutable {
      me->deliver_result<T>(done, convert(std::move(m)), direct);
    };
    op.failed = [me, done, direct](struct error e) {
      me->deliver_result<T>(done, result<T>(e), direct);
    };
    return op;
  }

  /// Runs `start(impl&)` on the I/O thread. Once the client is stopping, `done` gets
  /// errc::stopped instead (the I/O thread may be gone): at once for the blocking forms, through
  /// the dispatcher for the callback forms (never on the caller's stack, which may hold a lock
  /// the callback takes). The check and the post share the lock shutdown() posts under, so
  /// nothing posted is left unanswered.
  template <class T, class F>
  void on_io(const client::callback<T>& done, bool direct, F&& start) {
    std::unique_lock lock(state_mutex);
    if (shutting_down) {
      lock.unlock();
      deliver_result<T>(done, result<T>(errc::stopped, "the client was stopped"), direct);
      return;
    }
    asio::post(io, [me = shared_from_this(), f = std::forward<F>(start)]() mutable { f(*me); });
  }
};

/// A blocking form: the operation with `direct` set, waited for.
template <class T, class Start>
result<T> blocking(client::impl& p, Start&& start) {
  if (p.on_io_thread()) {
    return {
        errc::would_deadlock,
        "a blocking client call on the SDK's I/O thread (every client's); use the callback form"};
  }
  auto promise = std::make_shared<std::promise<result<T>>>();
  auto future = promise->get_future();
  std::forward<Start>(start)([promise](result<T> r) { promise->set_value(std::move(r)); });
  return future.get();
}

/// fetch_async of every item of `kind` on the impl itself (for multi-step operations that must
/// not hold the public client object, which the application may destroy meanwhile).
/// `on_io_thread`: `done` runs on the I/O thread (the SDK's own steps), else through the
/// dispatcher.
void fetch_all_async(client::impl& p, std::string resource, std::uint32_t kind,
                     client::callback<kind_data> done, bool on_io_thread = false);
/// store_async / remove_items_async on the impl itself (`tombstones`: remove), as above.
void store_items_async(client::impl& p, std::string resource, std::uint32_t kind,
                       std::vector<item> items, bool tombstones,
                       client::callback<std::uint64_t> done, bool on_io_thread);

/// The SIP usage's data on the impl itself, answered on the I/O thread (sip_registration.cpp):
/// register_aor, unregister_aor and resolve for the SIP user agent.
void register_aor_on_io(client::impl& p, std::string aor, sip_contact contact,
                        std::uint32_t lifetime, client::callback<std::uint64_t> done);
void unregister_aor_on_io(client::impl& p, std::string aor, client::callback<std::uint64_t> done);
void resolve_on_io(client::impl& p, std::string aor,
                   client::callback<std::vector<sip_binding>> done);

}  // namespace p2psip::client
