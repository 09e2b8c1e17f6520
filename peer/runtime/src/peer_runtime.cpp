#include "p2psip/peer/peer_runtime.hpp"

#include <exception>
#include <random>
#include <type_traits>
#include <utility>
#include <variant>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "p2psip/peer/storage_backend.hpp"
#include "p2psip/protocol/errors.hpp"

namespace p2psip::peer {

namespace {

using clock = std::chrono::system_clock;
constexpr auto as_tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

asio::ip::tcp::endpoint to_endpoint(const protocol::ip_address_port& a) {
  if (const auto* v4 = std::get_if<protocol::ipv4_address_port>(&a.value)) {
    return {asio::ip::address_v4(v4->address), v4->port};
  }
  const auto& v6 = std::get<protocol::ipv6_address_port>(a.value);
  return {asio::ip::address_v6(v6.address), v6.port};
}

std::string short_id(const protocol::node_id& id) {
  return id.hex();
}

}  // namespace

std::string_view log_level_name(log_level l) noexcept {
  switch (l) {
    case log_level::debug: return "DEBUG";
    case log_level::info: return "INFO";
    case log_level::warn: return "WARN";
    case log_level::error: return "ERROR";
  }
  return "?";
}

/// splitmix64 seeded from std::random_device: transaction ids and timer jitter only.
class peer_runtime::random final : public random_source {
 public:
  random() {
    std::random_device rd;
    state_ = (static_cast<std::uint64_t>(rd()) << 32) ^ static_cast<std::uint64_t>(rd());
  }
  std::uint64_t next_u64() override {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_ = 0;
};

protocol::result<std::unique_ptr<peer_runtime>, std::string> peer_runtime::create(
    asio::io_context& io, runtime_config cfg, std::shared_ptr<const transport::tls_credentials> tls,
    const crypto::credentials& creds, crypto::trust_store& trust) {
  std::unique_ptr<storage_backend> backend;
  if (cfg.data_dir) {
    std::error_code ec;
    std::filesystem::create_directories(*cfg.data_dir, ec);
    if (ec) {
      return protocol::unexpected(cfg.data_dir->string() + ": cannot create: " + ec.message());
    }
    auto opened = open_sqlite_backend(*cfg.data_dir);
    if (!opened) return protocol::unexpected(opened.error().message);
    backend = std::move(*opened);
  } else {
    backend = make_memory_backend();
  }
  std::string description = backend->describe();
  std::unique_ptr<data_store> store;
  try {
    store = std::make_unique<data_store>(std::move(backend), cfg.kinds, trust);
  } catch (const std::exception& e) {
    return protocol::unexpected(std::string("data store: ") + e.what());
  }
  return std::make_unique<peer_runtime>(io, std::move(cfg), std::move(tls), creds, trust,
                                        std::move(store), std::move(description));
}

peer_runtime::peer_runtime(asio::io_context& io, runtime_config cfg,
                           std::shared_ptr<const transport::tls_credentials> tls,
                           const crypto::credentials& creds, crypto::trust_store& trust,
                           std::unique_ptr<data_store> store, std::string store_description)
    : io_(io),
      cfg_(std::move(cfg)),
      tls_(std::move(tls)),
      creds_(creds),
      trust_(trust),
      store_(std::move(store)),
      store_description_(std::move(store_description)),
      timer_(io),
      expire_timer_(io),
      alive_(std::make_shared<bool>(true)) {
  storage_ = std::make_unique<data_store_service>(*store_);
  signer_ = std::make_unique<crypto_signer>(creds_.signing, cfg_.core.self, trust_);
  rng_ = std::make_unique<random>();
}

peer_runtime::~peer_runtime() {
  *alive_ = false;
  if (listener_) listener_->close();
  for (auto& [id, e] : links_) e.link->close();
}

void peer_runtime::log(log_level level, std::string_view text) const {
  if (cfg_.log) cfg_.log(level, text);
}

template <class F>
void peer_runtime::spawn(std::string_view what, F&& make) {
  // Long-lived coroutines end with a handler that logs an escaped exception (a bug) instead of
  // letting it out of io_context::run.
  std::weak_ptr<bool> alive = alive_;
  asio::co_spawn(io_, std::forward<F>(make)(),
                 [this, alive, name = std::string(what)](const std::exception_ptr& e) {
                   if (!e || alive.expired()) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     log(log_level::error, name + ": unexpected exception: " + ex.what());
                   } catch (...) {
                     log(log_level::error, name + ": unexpected exception");
                   }
                 });
}

protocol::result<void, std::string> peer_runtime::start() {
  if (started_) return {};
  transport::listener_config lc;
  lc.link = cfg_.link;
  std::weak_ptr<bool> alive = alive_;
  auto opened = transport::listener::open(
      io_.get_executor(), cfg_.listen, tls_, lc,
      [this, alive](std::shared_ptr<transport::link> l) {
        if (alive.expired()) return;
        add_link(std::move(l), std::nullopt);
      },
      [this, alive](const asio::ip::tcp::endpoint& remote, std::error_code reason,
                    const std::string& detail) {
        if (alive.expired()) return;
        log(log_level::debug, "inbound handshake from " + remote.address().to_string() + ":" +
                                  std::to_string(remote.port()) + " failed: " + reason.message() +
                                  (detail.empty() ? "" : " (" + detail + ")"));
      });
  if (!opened) {
    return protocol::unexpected("cannot listen on " + cfg_.listen.address().to_string() + ":" +
                                std::to_string(cfg_.listen.port()) + ": " +
                                opened.error().message());
  }
  listener_ = std::move(*opened);
  started_ = true;
  // Port 0 asked the system for a free port: announce the one bound.
  const auto bound_port = listener_->local_endpoint().port();
  std::visit([bound_port](auto& a) { a.port = bound_port; }, cfg_.core.listen_address.value);
  core_ = std::make_unique<overlay_core>(cfg_.core, *signer_, storage_.get(), *rng_);
  log(log_level::info, "listening on " + listener_->local_endpoint().address().to_string() + ":" +
                           std::to_string(listener_->local_endpoint().port()) + " as " +
                           short_id(cfg_.core.self) + " (store: " + store_description_ + ")");
  core_->start(clock::now());
  pump();
  spawn("timer", [this] { return timer_loop(); });
  spawn("expire", [this] { return expire_loop(); });
  return {};
}

asio::ip::tcp::endpoint peer_runtime::local_endpoint() const {
  return listener_ ? listener_->local_endpoint() : cfg_.listen;
}

runtime_status peer_runtime::status() const {
  runtime_status s;
  s.self = cfg_.core.self;
  s.links = links_.size();
  s.stored_values = store_->counts().values;
  if (!core_) return s;
  s.joined = core_->joined();
  s.predecessors = core_->routes().predecessors();
  s.successors = core_->routes().successors();
  return s;
}

void peer_runtime::add_link(std::shared_ptr<transport::link> l,
                            std::optional<protocol::node_id> expected) {
  const auto& ids = l->peer_node_ids();
  protocol::node_id remote;
  if (expected) {
    remote = *expected;
  } else if (!ids.empty()) {
    remote = ids.front();
  } else {
    log(log_level::warn, "link without a Node-ID in its certificate: closed");
    l->close();
    return;
  }
  if (stopping_) {
    l->close();
    return;
  }
  const link_id id{next_link_++};
  links_.emplace(id, link_entry{l, remote});
  std::weak_ptr<bool> alive = alive_;
  l->on_close([this, alive, id](std::error_code reason) {
    if (alive.expired()) return;
    link_closed(id, reason);
  });
  log(log_level::debug, "link " + std::to_string(id.value) + " up with " + short_id(remote) + " (" +
                            l->remote_endpoint().address().to_string() + ":" +
                            std::to_string(l->remote_endpoint().port()) + ")");
  core_->on_link_up(id, remote, clock::now());
  spawn("receive", [this, id, l] { return receive_loop(id, l); });
  pump();
}

void peer_runtime::link_closed(link_id id, std::error_code reason) {
  const auto it = links_.find(id);
  if (it == links_.end()) return;
  log(log_level::debug, "link " + std::to_string(id.value) + " to " + short_id(it->second.remote) +
                            " closed: " + reason.message());
  links_.erase(it);
  if (stopped_) return;
  core_->on_link_down(id, clock::now());
  pump();
}

asio::awaitable<void> peer_runtime::receive_loop(link_id id, std::shared_ptr<transport::link> l) {
  std::weak_ptr<bool> alive = alive_;
  for (;;) {
    auto received = co_await l->receive();
    if (alive.expired() || !received) break;
    if (stopped_ || !links_.contains(id)) break;
    core_->on_message(id, *received, clock::now());
    pump();
  }
}

asio::awaitable<void> peer_runtime::open_link(protocol::ip_address_port address,
                                              std::optional<protocol::node_id> expected) {
  std::weak_ptr<bool> alive = alive_;
  auto connected = co_await transport::connect(to_endpoint(address), tls_, cfg_.link, expected);
  if (alive.expired()) co_return;
  if (!connected) {
    log(log_level::debug,
        "link to " + address.to_string() + " failed: " + connected.error().message());
    if (!stopping_) {
      core_->on_link_failed(address, clock::now());
      pump();
    }
    co_return;
  }
  add_link(std::move(*connected), expected);
}

void peer_runtime::pump() {
  if (in_pump_) return;  // executing an action never re-enters the core; be safe anyway
  in_pump_ = true;
  for (;;) {
    auto actions = core_->take_actions();
    if (actions.empty()) break;
    for (auto& a : actions) execute(a);
  }
  in_pump_ = false;
  arm_timer();
}

void peer_runtime::execute(action& a) {
  std::visit(
      [this](auto& act) {
        using T = std::decay_t<decltype(act)>;
        if constexpr (std::is_same_v<T, send_action>) {
          const auto it = links_.find(act.link);
          if (it == links_.end()) return;
          auto sent = it->second.link->try_send(std::move(act.data));
          if (!sent) {
            log(log_level::debug, "send on link " + std::to_string(act.link.value) +
                                      " failed: " + sent.error().message());
          }
        } else if constexpr (std::is_same_v<T, close_link_action>) {
          const auto it = links_.find(act.link);
          if (it == links_.end()) return;
          log(log_level::debug,
              "closing link " + std::to_string(act.link.value) + ": " + act.reason);
          it->second.link->close();  // on_close reports it to the core
        } else if constexpr (std::is_same_v<T, open_link_action>) {
          if (stopping_) return;
          log(log_level::debug, "opening link to " + act.address.to_string());
          spawn("connect", [this, address = act.address, expected = act.expected] {
            return open_link(address, expected);
          });
        } else if constexpr (std::is_same_v<T, deliver_action>) {
          const auto code = act.msg.contents.code;
          if (protocol::is_request(code)) {
            // No application runs in the daemon: refuse what the core did not handle itself.
            protocol::error_response err;
            err.error_code = static_cast<std::uint16_t>(protocol::reload_errc::forbidden);
            err.error_info = protocol::to_bytes("no application on this peer");
            core_->respond(act.msg, act.link, err, clock::now());
          } else {
            log(log_level::debug, "answer " + std::to_string(code) + " delivered (no application)");
          }
        } else if constexpr (std::is_same_v<T, log_action>) {
          log(log_level::debug, act.text);
        }
      },
      a);
}

void peer_runtime::arm_timer() {
  if (stopped_) return;
  const auto now = clock::now();
  auto when = core_->next_deadline().value_or(now + std::chrono::hours(1));
  if (armed_ && *armed_ == when) return;
  armed_ = when;
  timer_.expires_at(when);  // cancels a pending wait: the loop waits again on the new expiry
}

asio::awaitable<void> peer_runtime::timer_loop() {
  std::weak_ptr<bool> alive = alive_;
  while (!alive.expired() && !stopped_) {
    auto [ec] = co_await timer_.async_wait(as_tuple_awaitable);
    if (alive.expired() || stopped_) break;
    if (ec == asio::error::operation_aborted) continue;  // re-armed
    const auto now = clock::now();
    armed_.reset();
    const auto deadline = core_->next_deadline();
    if (deadline && *deadline <= now) core_->on_timer(now);
    pump();
    // A deadline the core did not move past would spin: wait at least 1 ms.
    if (armed_ && *armed_ <= now) {
      armed_ = now + std::chrono::milliseconds(1);
      timer_.expires_at(*armed_);
    }
  }
}

asio::awaitable<void> peer_runtime::expire_loop() {
  std::weak_ptr<bool> alive = alive_;
  while (!alive.expired() && !stopped_) {
    expire_timer_.expires_after(cfg_.expire_interval);
    auto [ec] = co_await expire_timer_.async_wait(as_tuple_awaitable);
    if (alive.expired() || stopped_ || ec) break;
    const auto removed = store_->expire(clock::now());
    if (removed > 0) log(log_level::debug, "expired " + std::to_string(removed) + " values");
  }
}

asio::awaitable<void> peer_runtime::stop() {
  if (stopping_ || !started_) {
    stopped_ = true;
    co_return;
  }
  std::weak_ptr<bool> alive = alive_;
  stopping_ = true;
  log(log_level::info, "leaving the overlay");
  core_->leave(clock::now());
  pump();

  asio::steady_timer wait(io_);
  const auto poll = std::chrono::milliseconds(20);
  // 1. The Leave (and hand-over) messages reach TLS.
  const auto flush_until = std::chrono::steady_clock::now() + cfg_.leave_flush_timeout;
  while (std::chrono::steady_clock::now() < flush_until) {
    bool queued = false;
    for (const auto& [id, e] : links_) {
      if (e.link->state() != transport::link_state::closed && e.link->queued_messages() > 0) {
        queued = true;
      }
    }
    if (!queued) break;
    wait.expires_after(poll);
    [[maybe_unused]] auto [ec] = co_await wait.async_wait(as_tuple_awaitable);
    if (alive.expired()) co_return;
  }
  // Give the written records a moment on the wire before close_notify.
  wait.expires_after(std::chrono::milliseconds(100));
  {
    [[maybe_unused]] auto [ec] = co_await wait.async_wait(as_tuple_awaitable);
    if (alive.expired()) co_return;
  }

  // 2. Stop everything and close every link.
  stopped_ = true;
  timer_.cancel();
  expire_timer_.cancel();
  if (listener_) listener_->close();
  std::vector<std::shared_ptr<transport::link>> closing;
  for (auto& [id, e] : links_) closing.push_back(e.link);
  for (auto& l : closing) l->close();

  const auto close_until = std::chrono::steady_clock::now() + cfg_.close_timeout;
  while (!links_.empty() && std::chrono::steady_clock::now() < close_until) {
    wait.expires_after(poll);
    [[maybe_unused]] auto [ec] = co_await wait.async_wait(as_tuple_awaitable);
    if (alive.expired()) co_return;
  }
  if (!links_.empty()) {
    log(log_level::warn, std::to_string(links_.size()) + " links did not close in time");
  }
  log(log_level::info, "stopped (" + std::to_string(store_->counts().values) + " values stored)");
}

}  // namespace p2psip::peer
