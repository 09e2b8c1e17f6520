// The client SDK's engine: a client_node (p2psip::node) driven by node_driver on one I/O thread,
// a table of operations in flight keyed by transaction id, and a callback thread (the default
// dispatcher). Every public member turns into a function posted to the I/O thread; answers are
// turned into results there and handed to the dispatcher.
#include "p2psip/client/client.hpp"

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
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "p2psip/crypto/signatures.hpp"
#include "p2psip/node/client_node.hpp"
#include "p2psip/node/crypto_signer.hpp"
#include "p2psip/node/node_driver.hpp"
#include "p2psip/node/node_setup.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/ids.hpp"

namespace p2psip::client {

namespace {

namespace pr = p2psip::protocol;
namespace pe = p2psip::node;
using steady = std::chrono::steady_clock;
constexpr auto as_tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

struct error fail(errc code, std::string message) {
  return {make_error_code(code), std::move(message)};
}

data_model model_from(pr::data_model m) {
  switch (m) {
    case pr::data_model::single_value: return data_model::single_value;
    case pr::data_model::array: return data_model::array;
    case pr::data_model::dictionary: return data_model::dictionary;
  }
  return data_model::single_value;
}

/// RELOAD error responses as SDK errors; the message keeps the RELOAD name and the peer's text.
struct error error_of(const pr::error_response& e) {
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

/// The default dispatcher: one thread running callbacks in order.
class callback_thread {
 public:
  void start() {
    thread_ = std::thread([s = state_] { run(*s); });
  }
  void post(std::function<void()> f) {
    {
      std::lock_guard lock(state_->mutex);
      state_->queue.push_back(std::move(f));
    }
    state_->cv.notify_one();
  }
  /// Runs what is queued, then ends the thread; joins it unless called on it (then detaches:
  /// once the current callback returns, the thread runs what is still queued and ends by
  /// itself). Call once.
  void finish() {
    {
      std::lock_guard lock(state_->mutex);
      state_->finishing = true;
    }
    state_->cv.notify_one();
    if (!thread_.joinable()) return;
    if (std::this_thread::get_id() == thread_.get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }

 private:
  // Shared with the thread: a callback may destroy the client (and this object with it) while
  // the thread still has to return from that callback and drain the queue.
  struct state {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<std::function<void()>> queue;
    bool finishing = false;
  };
  static void run(state& s) {
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock lock(s.mutex);
        s.cv.wait(lock, [&s] { return s.finishing || !s.queue.empty(); });
        if (s.queue.empty()) return;
        f = std::move(s.queue.front());
        s.queue.pop_front();
      }
      f();
    }
  }
  std::shared_ptr<state> state_ = std::make_shared<state>();
  std::thread thread_;
};

}  // namespace

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
  };

  client_options options;
  pe::node_setup setup;
  pr::body_context body_context;
  pr::node_id own_id;
  pr::limits limits;
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread io_thread;
  std::atomic<std::thread::id> io_thread_id{};
  callback_thread callbacks;
  pe::crypto_signer signer;
  pe::system_random rng;
  pe::client_node* node = nullptr;  ///< owned by the driver, once started
  std::unique_ptr<pe::node_driver> driver;
  std::map<std::uint64_t, operation> operations;  // by operation number
  std::map<std::uint64_t, std::uint64_t> by_txid;
  std::deque<std::uint64_t> waiting;  // operation numbers waiting for a peer
  std::uint64_t next_operation = 1;
  std::uint64_t last_storage_time = 0;
  steady::time_point last_sent{};
  bool ever_attached = false;
  bool stopped = false;  // I/O thread only

  mutable std::mutex state_mutex;  // guards `attached`, `shutting_down`
  std::condition_variable attached_cv;
  std::optional<peer_info> attached;
  bool shutting_down = false;

  impl(client_options o, pe::node_setup s)
      : options(std::move(o)),
        setup(std::move(s)),
        own_id(setup.creds.signing.default_node_id()),
        limits(config::limits_of(setup.config)),
        signer(setup.creds.signing, own_id, *setup.trust) {
    body_context.model_of = config::kind_model_lookup_of(setup.config);
  }

  // ---- threads ----

  void start(pe::client_config node_config) {
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
    dc.configuration_document = setup.document;
    // A newer signed document offered by our peer: its sequence is taken for this session (the
    // file and the settings read from it stay; other threads read those without a lock).
    dc.accept_configuration = [this](pr::byte_view offered) { return setup.check_update(offered); };
    driver = std::make_unique<pe::node_driver>(io, std::move(dc), setup.tls);
    work.emplace(asio::make_work_guard(io));
    if (!options.dispatcher) callbacks.start();
    io_thread = std::thread([me = shared_from_this()] {
      me->io_thread_id = std::this_thread::get_id();
      try {
        me->io.run();
        // Handlers posted after the stop each hold the client, which owns the io_context: run
        // them now (they answer errc::stopped) so that no cycle outlives this thread.
        me->io.restart();
        me->io.poll();
      } catch (const std::exception& e) {
        if (me->options.log) me->options.log(std::string("I/O thread: ") + e.what());
      }
    });
    asio::post(io, [me = shared_from_this()] {
      if (auto started = me->driver->start(); !started) {
        if (me->options.log) me->options.log(started.error());
      }
      asio::co_spawn(me->io, me->sweep_loop(), asio::detached);
    });
  }

  bool on_io_thread() const { return std::this_thread::get_id() == io_thread_id.load(); }

  void dispatch(std::function<void()> f) {
    if (options.dispatcher) {
      options.dispatcher(std::move(f));
    } else {
      callbacks.post(std::move(f));
    }
  }

  /// Stops: fails what is in flight with errc::stopped, closes the link, ends the I/O thread.
  /// Safe from any thread, including the callback thread and the I/O thread.
  void shutdown() {
    auto me = shared_from_this();
    std::unique_lock lock(state_mutex);
    if (shutting_down) return;
    shutting_down = true;
    attached.reset();
    asio::post(io, [me] {
      me->stopped = true;
      me->fail_all(fail(errc::stopped, "the client was stopped"));
      asio::co_spawn(
          me->io,
          [me]() -> asio::awaitable<void> {
            co_await me->driver->stop();
            me->work.reset();
            me->io.stop();
          },
          asio::detached);
    });
    lock.unlock();
    attached_cv.notify_all();
    if (io_thread.joinable()) {
      if (on_io_thread()) {
        io_thread.detach();
      } else {
        io_thread.join();
      }
    }
  }

  /// Shuts down, then ends the callback thread (after the callbacks queued). The callback thread
  /// outlives stop(): callback forms called after it still get errc::stopped through it.
  void destroy() {
    shutdown();
    if (!options.dispatcher) callbacks.finish();
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
    }
    attached_cv.notify_all();
    if (now_attached) {
      ever_attached = true;
      if (options.log) {
        options.log("attached to " + now_attached->node_id + " at " + now_attached->address);
      }
      send_waiting();
    }
  }

  bool is_attached() const {
    std::lock_guard lock(state_mutex);
    return attached.has_value();
  }

  // ---- operations ----

  /// Starts an operation (I/O thread).
  void begin(operation op) {
    if (stopped) {
      op.failed(fail(errc::stopped, "the client was stopped"));
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
      pr::result<std::uint64_t> tx = make_error_code(pr::reload_errc::underlay_destination_unreachable);
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
    auto done = std::move(op);
    operations.erase(it);
    done.answered(std::move(o));
  }

  void fail_all(const struct error& e) {
    auto ops = std::move(operations);
    operations.clear();
    by_txid.clear();
    waiting.clear();
    for (auto& [id, op] : ops) op.failed(e);
  }

  /// Every 50 ms: operations past their deadline fail; keepalive Pings.
  ///
  /// Holds no reference to the client: shutdown stops the io_context with this coroutine
  /// possibly suspended in it, and a reference held there would keep the client (which owns the
  /// io_context) alive forever. It only resumes inside io.run(), whose thread holds one.
  asio::awaitable<void> sweep_loop() {
    asio::steady_timer timer(io);
    while (!stopped) {
      timer.expires_after(std::chrono::milliseconds(50));
      [[maybe_unused]] auto [ec] = co_await timer.async_wait(as_tuple_awaitable);
      if (stopped) break;
      const auto now = steady::now();
      std::vector<std::uint64_t> expired;
      for (const auto& [id, op] : operations) {
        if (now >= op.deadline) expired.push_back(id);
      }
      for (const auto id : expired) {
        auto it = operations.find(id);
        if (it == operations.end()) continue;
        auto op = std::move(it->second);
        operations.erase(it);
        if (op.txid) by_txid.erase(*op.txid);
        std::erase(waiting, id);
        if (!ever_attached) {
          op.failed(fail(errc::no_peer, "could not attach to any peer within " +
                                            std::to_string(options.operation_timeout.count()) +
                                            " ms"));
        } else {
          op.failed(fail(errc::timeout, "no answer within " +
                                            std::to_string(options.operation_timeout.count()) +
                                            " ms (" + std::to_string(op.attempts) + " attempts)"));
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
  }

  std::optional<pr::node_id> peer_node() const {
    if (!node) return std::nullopt;
    for (const auto& [id, c] : node->links().rows()) return c.remote;
    return std::nullopt;
  }

  // ---- requests ----

  pr::resource_id resource_of(std::string_view name) const {
    return pr::hash_resource_name(name, setup.config.node_id_length);
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
    const auto* def = config::find_kind(setup.config, kind);
    if (!def) {
      return fail(errc::unknown_kind,
                  "kind " + std::to_string(kind) + " is not in the overlay configuration");
    }
    if (items.empty()) return fail(errc::invalid_argument, "nothing to store");
    if (def->model == pr::data_model::single_value && items.size() != 1) {
      return fail(errc::invalid_argument, "a single-value kind takes exactly one item");
    }
    if (items.size() > def->max_count) {
      return fail(errc::too_large, std::to_string(items.size()) + " items: kind " +
                                       std::to_string(kind) + " allows " +
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
                                         " bytes: kind " + std::to_string(kind) + " allows " +
                                         std::to_string(def->max_size));
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
                                                  *setup.trust, now);
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

// ---------------------------------------------------------------------------------------------

namespace {

std::variant<pe::client_config, struct error> make_node_config(const client_options& o,
                                                               const pe::node_setup& s) {
  pe::client_config core;
  core.transport = s.transport();
  core.transport.request_timeout = o.request_timeout;
  for (const auto& p : o.peers) {
    auto a = pr::ip_address_port::parse(p);
    if (!a || a->port() == 0) {
      return fail(errc::invalid_argument, "peer '" + p + "': expected IP:PORT or [IPv6]:PORT");
    }
    core.bootstrap.push_back(*a);
  }
  if (core.bootstrap.empty()) core.bootstrap = s.config.bootstrap_nodes;
  if (core.bootstrap.empty()) {
    return fail(errc::invalid_argument,
                "no peer to attach to: give peers, or bootstrap-node entries in " + o.config_file);
  }
  return core;
}

}  // namespace

result<std::unique_ptr<client>> client::create(client_options options) {
  if (options.config_file.empty()) return {errc::invalid_argument, "no configuration file given"};
  if (options.certificate_file.empty() || options.key_file.empty()) {
    return {errc::invalid_argument, "a certificate file and a key file are required"};
  }
  if (options.operation_timeout.count() <= 0 || options.request_timeout.count() <= 0 ||
      options.keepalive_interval.count() <= 0) {
    return {errc::invalid_argument, "timeouts and the keepalive interval must be positive"};
  }
  auto setup = pe::load_node_setup(options.config_file, options.certificate_file, options.key_file,
                                   options.overlay);
  if (!setup) {
    return {setup.error().what == pe::setup_error::part::configuration ? errc::bad_configuration
                                                                       : errc::bad_credentials,
            setup.error().message};
  }
  if (setup->creds.signing.cert().node_ids().size() != 1) {
    // RFC 6940 4.2.1: a client presents a certificate with one Node-ID.
    return {errc::bad_credentials,
            options.certificate_file + ": a client certificate must carry exactly one Node-ID"};
  }
  auto core = make_node_config(options, *setup);
  if (auto* e = std::get_if<struct error>(&core)) return *e;
  auto p = std::make_shared<impl>(std::move(options), std::move(*setup));
  p->start(std::move(std::get<pe::client_config>(core)));
  return std::make_unique<client>(std::move(p));
}

client::client(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

client::~client() {
  if (impl_) impl_->destroy();
}

void client::stop() {
  impl_->shutdown();
}

std::string client::node_id() const {
  return impl_->own_id.hex();
}

std::optional<data_model> client::model_of(std::uint32_t kind) const {
  const auto m = impl_->body_context.model_of(kind);
  if (!m) return std::nullopt;
  return model_from(*m);
}

std::optional<peer_info> client::attached_peer() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->attached;
}

result<peer_info> client::wait_attached(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->state_mutex);
  impl_->attached_cv.wait_for(lock, timeout,
                              [this] { return impl_->attached || impl_->shutting_down; });
  if (impl_->attached) return *impl_->attached;
  if (impl_->shutting_down) return {errc::stopped, "the client was stopped"};
  return {errc::no_peer, "no peer attached within " + std::to_string(timeout.count()) + " ms"};
}

// ---- operations: each starts on the I/O thread; `direct` is set for the blocking forms ----

namespace {

using impl = client::impl;
template <class T>
using callback = client::callback<T>;

result<kind_data> unknown_kind_error(std::uint32_t kind) {
  return {errc::unknown_kind,
          "kind " + std::to_string(kind) + " is not in the overlay configuration"};
}

void start_store(impl& p, std::string res, std::uint32_t kind, std::vector<item> items,
                 store_options options, bool tombstones, callback<std::uint64_t> done,
                 bool direct) {
  p.on_io(done, direct,
          [res = std::move(res), kind, items = std::move(items), options, tombstones, done,
           direct](impl& self) mutable {
            auto req = self.make_store(res, kind, items, options, tombstones);
            if (auto* e = std::get_if<struct error>(&req)) {
              self.deliver_result<std::uint64_t>(done, *e, direct);
              return;
            }
            auto& sr = std::get<pr::store_req>(req);
            auto dest = std::vector<pr::destination>{pr::to_destination(sr.resource)};
            self.begin(self.make_operation<std::uint64_t>(
                std::move(dest), std::move(sr), std::move(done), direct,
                [&self, kind](pe::outcome&& m) -> result<std::uint64_t> {
                  auto ans = self.answer_of<pr::store_ans>(m, "StoreAns");
                  if (auto* e = std::get_if<struct error>(&ans)) return *e;
                  for (const auto& kr : std::get<pr::store_ans>(ans).kind_responses) {
                    if (kr.kind == kind) return kr.generation_counter;
                  }
                  return {errc::invalid_answer, "the StoreAns does not mention the kind stored"};
                }));
          });
}

/// Fetch (values) or Stat (lengths and hashes) of one kind.
void start_fetch(impl& p, std::string res, std::uint32_t kind, selection which, bool stat,
                 callback<kind_data> done, bool direct) {
  p.on_io(done, direct,
          [res = std::move(res), kind, which = std::move(which), stat, done,
           direct](impl& self) mutable {
            if (!self.body_context.model_of(kind)) {
              self.deliver_result<kind_data>(done, unknown_kind_error(kind), direct);
              return;
            }
            const auto resource = self.resource_of(res);
            std::vector<pr::stored_data_specifier> specifiers{self.specifier(kind, which)};
            pr::message_body request;
            if (stat) {
              request = pr::stat_req{resource, std::move(specifiers)};
            } else {
              request = pr::fetch_req{resource, std::move(specifiers)};
            }
            auto dest = std::vector<pr::destination>{pr::to_destination(resource)};
            self.begin(self.make_operation<kind_data>(
                std::move(dest), std::move(request), std::move(done), direct,
                [&self, resource, kind, stat](pe::outcome&& m) -> result<kind_data> {
                  auto r = stat ? self.kind_items<pr::stat_ans>(m, resource, kind)
                                : self.kind_items<pr::fetch_ans>(m, resource, kind);
                  if (auto* e = std::get_if<struct error>(&r)) return *e;
                  return std::get<kind_data>(std::move(r));
                }));
          });
}

void start_find(impl& p, std::string res, std::uint32_t kind,
                callback<std::optional<std::string>> done, bool direct) {
  using found = std::optional<std::string>;
  p.on_io(done, direct, [res = std::move(res), kind, done, direct](impl& self) mutable {
    if (!self.body_context.model_of(kind)) {
      self.deliver_result<found>(done, unknown_kind_error(kind).error(), direct);
      return;
    }
    pr::find_req req;
    req.resource = self.resource_of(res);
    req.kinds.push_back(kind);
    auto dest = std::vector<pr::destination>{pr::to_destination(req.resource)};
    self.begin(self.make_operation<found>(std::move(dest), req, std::move(done), direct,
                                          [&self, kind](pe::outcome&& m) -> result<found> {
                                            auto ans = self.answer_of<pr::find_ans>(m, "FindAns");
                                            if (auto* e = std::get_if<struct error>(&ans))
                                              return *e;
                                            for (const auto& r :
                                                 std::get<pr::find_ans>(ans).results) {
                                              if (r.kind != kind) continue;
                                              if (!r.found()) return found{};
                                              return found{r.closest.hex()};
                                            }
                                            return found{};
                                          }));
  });
}

void start_ping(impl& p, std::string res, callback<ping_info> done, bool direct) {
  p.on_io(done, direct, [res = std::move(res), done, direct](impl& self) mutable {
    std::vector<pr::destination> dest;
    if (!res.empty()) {
      dest.push_back(pr::to_destination(self.resource_of(res)));
    } else if (const auto peer = self.peer_node()) {
      dest.push_back(pr::to_destination(*peer));
    } else {
      // Not attached yet: address the wildcard Node-ID, which the first peer answers itself.
      dest.push_back(pr::to_destination(pr::node_id::wildcard(self.setup.config.node_id_length)));
    }
    const auto sent = steady::now();
    self.begin(self.make_operation<ping_info>(
        std::move(dest), pr::ping_req{}, std::move(done), direct,
        [&self, sent](pe::outcome&& m) -> result<ping_info> {
          auto ans = self.answer_of<pr::ping_ans>(m, "PingAns");
          if (auto* e = std::get_if<struct error>(&ans)) return *e;
          ping_info info;
          info.round_trip =
              std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - sent);
          // The node verified the signature on arrival; this names the signer.
          if (m.signer) info.responder_node_id = m.signer->node.hex();
          return info;
        }));
  });
}

/// This client's own entry of a put/get name: the generic kind's dictionary key is our Node-ID.
item own_entry(const impl& p) {
  item it;
  const auto id = p.own_id.view();
  it.key = bytes(id.begin(), id.end());
  return it;
}

void start_put(impl& p, std::string name, bytes value, std::uint32_t lifetime, callback<void> done,
               bool direct) {
  auto it = own_entry(p);
  it.value = std::move(value);
  store_options o;
  o.lifetime = lifetime;
  start_store(
      p, std::move(name), client::generic_kind, {std::move(it)}, o, false,
      [done](result<std::uint64_t> r) { r ? done(ok{}) : done(r.error()); }, direct);
}

void start_remove(impl& p, std::string name, callback<void> done, bool direct) {
  start_store(
      p, std::move(name), client::generic_kind, {own_entry(p)}, {}, true,
      [done](result<std::uint64_t> r) { r ? done(ok{}) : done(r.error()); }, direct);
}

void start_get(impl& p, std::string name, callback<std::vector<owned_value>> done, bool direct) {
  start_fetch(
      p, std::move(name), client::generic_kind, selection::all(), false,
      [done](result<kind_data> r) {
        if (!r) {
          done(r.error());
          return;
        }
        std::vector<owned_value> values;
        for (auto& it : r->items) {
          if (!it.exists) continue;
          owned_value v;
          v.owner_node_id = it.signer_node_id;
          v.owner_user = it.signer_user;
          v.value = std::move(it.value);
          v.storage_time = it.storage_time;
          v.lifetime = it.lifetime;
          values.push_back(std::move(v));
        }
        done(std::move(values));
      },
      direct);
}

/// A blocking form: the operation with `direct` set, waited for.
template <class T, class Start>
result<T> blocking(impl& p, Start&& start) {
  if (p.on_io_thread()) {
    return {errc::would_deadlock,
            "a blocking client call on the client's I/O thread; use the callback form"};
  }
  auto promise = std::make_shared<std::promise<result<T>>>();
  auto future = promise->get_future();
  std::forward<Start>(start)([promise](result<T> r) { promise->set_value(std::move(r)); });
  return future.get();
}

}  // namespace

void client::put_async(std::string_view name, bytes value, std::uint32_t lifetime_seconds,
                       callback<void> done) {
  start_put(*impl_, std::string(name), std::move(value), lifetime_seconds, std::move(done), false);
}
void client::get_async(std::string_view name, callback<std::vector<owned_value>> done) {
  start_get(*impl_, std::string(name), std::move(done), false);
}
void client::remove_async(std::string_view name, callback<void> done) {
  start_remove(*impl_, std::string(name), std::move(done), false);
}
void client::store_async(std::string_view resource, std::uint32_t kind, std::vector<item> items,
                         store_options options, callback<std::uint64_t> done) {
  start_store(*impl_, std::string(resource), kind, std::move(items), options, false,
              std::move(done), false);
}
void client::remove_items_async(std::string_view resource, std::uint32_t kind,
                                std::vector<item> items, store_options options,
                                callback<std::uint64_t> done) {
  start_store(*impl_, std::string(resource), kind, std::move(items), options, true, std::move(done),
              false);
}
void client::fetch_async(std::string_view resource, std::uint32_t kind, selection which,
                         callback<kind_data> done) {
  start_fetch(*impl_, std::string(resource), kind, std::move(which), false, std::move(done), false);
}
void client::stat_async(std::string_view resource, std::uint32_t kind, selection which,
                        callback<kind_data> done) {
  start_fetch(*impl_, std::string(resource), kind, std::move(which), true, std::move(done), false);
}
void client::find_async(std::string_view resource, std::uint32_t kind,
                        callback<std::optional<std::string>> done) {
  start_find(*impl_, std::string(resource), kind, std::move(done), false);
}
void client::ping_async(std::string_view resource, callback<ping_info> done) {
  start_ping(*impl_, std::string(resource), std::move(done), false);
}

result<void> client::put(std::string_view name, bytes value, std::uint32_t lifetime_seconds) {
  return blocking<void>(*impl_, [&](callback<void> cb) {
    start_put(*impl_, std::string(name), std::move(value), lifetime_seconds, std::move(cb), true);
  });
}
result<std::vector<owned_value>> client::get(std::string_view name) {
  return blocking<std::vector<owned_value>>(*impl_, [&](callback<std::vector<owned_value>> cb) {
    start_get(*impl_, std::string(name), std::move(cb), true);
  });
}
result<void> client::remove(std::string_view name) {
  return blocking<void>(*impl_, [&](callback<void> cb) {
    start_remove(*impl_, std::string(name), std::move(cb), true);
  });
}
result<std::uint64_t> client::store(std::string_view resource, std::uint32_t kind,
                                    std::vector<item> items, store_options options) {
  return blocking<std::uint64_t>(*impl_, [&](callback<std::uint64_t> cb) {
    start_store(*impl_, std::string(resource), kind, std::move(items), options, false,
                std::move(cb), true);
  });
}
result<std::uint64_t> client::remove_items(std::string_view resource, std::uint32_t kind,
                                           std::vector<item> items, store_options options) {
  return blocking<std::uint64_t>(*impl_, [&](callback<std::uint64_t> cb) {
    start_store(*impl_, std::string(resource), kind, std::move(items), options, true, std::move(cb),
                true);
  });
}
result<kind_data> client::fetch(std::string_view resource, std::uint32_t kind, selection which) {
  return blocking<kind_data>(*impl_, [&](callback<kind_data> cb) {
    start_fetch(*impl_, std::string(resource), kind, std::move(which), false, std::move(cb), true);
  });
}
result<kind_data> client::stat(std::string_view resource, std::uint32_t kind, selection which) {
  return blocking<kind_data>(*impl_, [&](callback<kind_data> cb) {
    start_fetch(*impl_, std::string(resource), kind, std::move(which), true, std::move(cb), true);
  });
}
result<std::optional<std::string>> client::find(std::string_view resource, std::uint32_t kind) {
  return blocking<std::optional<std::string>>(*impl_, [&](callback<std::optional<std::string>> cb) {
    start_find(*impl_, std::string(resource), kind, std::move(cb), true);
  });
}
result<ping_info> client::ping(std::string_view resource) {
  return blocking<ping_info>(*impl_, [&](callback<ping_info> cb) {
    start_ping(*impl_, std::string(resource), std::move(cb), true);
  });
}

}  // namespace p2psip::client
