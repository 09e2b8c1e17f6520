#include "p2psip/node/node_driver.hpp"

#include <random>
#include <type_traits>
#include <utility>
#include <variant>

#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "p2psip/protocol/errors.hpp"

namespace p2psip::node {

namespace {

constexpr auto as_tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

asio::ip::tcp::endpoint to_endpoint(const protocol::ip_address_port& a) {
  if (const auto* v4 = std::get_if<protocol::ipv4_address_port>(&a.value)) {
    return {asio::ip::address_v4(v4->address), v4->port};
  }
  const auto& v6 = std::get<protocol::ipv6_address_port>(a.value);
  return {asio::ip::address_v6(v6.address), v6.port};
}

std::string endpoint_text(const asio::ip::tcp::endpoint& e) {
  return e.address().to_string() + ":" + std::to_string(e.port());
}

class runtime_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "p2psip.runtime"; }
  std::string message(int ev) const override {
    switch (static_cast<runtime_errc>(ev)) {
      case runtime_errc::ok: return "success";
      case runtime_errc::listen_failed: return "cannot listen for overlay links";
      case runtime_errc::application_listen_failed: return "cannot listen for an application";
    }
    return "unknown runtime error";
  }
};

}  // namespace

const std::error_category& runtime_category() noexcept {
  static const runtime_category_impl category;
  return category;
}

std::error_code make_error_code(runtime_errc e) noexcept {
  return {static_cast<int>(e), runtime_category()};
}

std::string_view log_level_name(log_level l) noexcept {
  switch (l) {
    case log_level::debug: return "DEBUG";
    case log_level::info: return "INFO";
    case log_level::warn: return "WARN";
    case log_level::error: return "ERROR";
  }
  return "?";
}

system_random::system_random() {
  std::random_device rd;
  state_ = (static_cast<std::uint64_t>(rd()) << 32) ^ static_cast<std::uint64_t>(rd());
}

std::uint64_t system_random::next_u64() {
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

node_driver::node_driver(asio::io_context& io, driver_config cfg,
                         std::shared_ptr<const transport::tls_credentials> tls)
    : io_(io),
      cfg_(std::move(cfg)),
      tls_(std::move(tls)),
      timer_(io),
      alive_(std::make_shared<bool>(true)) {}

node_driver::~node_driver() {
  *alive_ = false;
  alive_.reset();
  if (listener_) listener_->close();
  for (auto& l : app_listeners_) l->close();
  for (auto& [id, e] : links_) e.link->close();
  for (auto& w : app_streams_) {
    if (auto l = w.lock()) l->close();
  }
}

void node_driver::log(log_level level, std::string_view text) const {
  if (cfg_.log) cfg_.log(level, text);
}

protocol::result<void, protocol::error_record> node_driver::start() {
  if (node_) return {};
  std::uint16_t bound_port = 0;
  if (cfg_.listen) {
    transport::listener_config lc;
    lc.link = cfg_.link;
    std::weak_ptr<bool> alive = alive_;
    // Connections shed under a flood (idle, unauthenticated): an admin should see the source.
    lc.pressure_log = [this, alive](std::string_view text) {
      if (!alive.expired()) log(log_level::warn, text);
    };
    auto opened = transport::listener::open(
        io_.get_executor(), *cfg_.listen, tls_, lc,
        [this, alive](std::shared_ptr<transport::link> l) {
          if (alive.expired()) return;
          add_link(std::move(l), std::nullopt, link_origin::inbound);
        },
        [this, alive](const asio::ip::tcp::endpoint& remote, std::error_code reason,
                      const std::string& detail) {
          if (alive.expired()) return;
          refused("TLS handshake", remote,
                  reason.message() + (detail.empty() ? "" : " (" + detail + ")"));
        });
    if (!opened) {
      return protocol::error_record{
          make_error_code(runtime_errc::listen_failed),
          "cannot listen on " + endpoint_text(*cfg_.listen) + ": " + opened.error().message()};
    }
    listener_ = std::move(*opened);
    // Port 0 asked the system for a free port: the node announces the one bound.
    bound_port = listener_->local_endpoint().port();
  }
  node_ = cfg_.make_node(bound_port);
  node_->transport().set_configuration_document(std::move(cfg_.configuration_document));
  if (cfg_.accept_configuration) node_->config_updates().set_acceptor(cfg_.accept_configuration);
  if (auto apps = open_application_listeners(); !apps) return apps;
  node_->start(clock::now());
  pump();
  spawn("timer", [this] { return timer_loop(); });
  return {};
}

protocol::result<void, protocol::error_record> node_driver::open_application_listeners() {
  for (const auto& app : cfg_.applications) {
    if (!app.listen) continue;
    if (auto opened = open_application_listener(app.id, *app.listen); !opened) {
      return opened.error();
    }
  }
  return {};
}

protocol::result<asio::ip::tcp::endpoint, protocol::error_record> node_driver::listen_application(
    std::uint16_t id, const asio::ip::tcp::endpoint& at) {
  if (const auto it = app_listen_points_.find(id); it != app_listen_points_.end()) {
    return it->second;
  }
  if (!node_) {
    return protocol::error_record{make_error_code(runtime_errc::application_listen_failed),
                                  "the node is not started"};
  }
  return open_application_listener(id, at);
}

protocol::result<asio::ip::tcp::endpoint, protocol::error_record>
node_driver::open_application_listener(std::uint16_t id, const asio::ip::tcp::endpoint& at) {
  transport::stream_listener_config lc;
  lc.stream = cfg_.stream;
  std::weak_ptr<bool> alive = alive_;
  lc.pressure_log = [this, alive](std::string_view text) {
    if (!alive.expired()) log(log_level::warn, text);
  };
  auto opened = transport::stream_listener::open(
      io_.get_executor(), at, tls_, lc,
      [this, alive, id](std::shared_ptr<transport::tls_stream> s) {
        if (alive.expired()) return;
        if (stopping_) {
          s->close();
          return;
        }
        const auto remote = s->peer_node_ids().front();  // a handed-up stream has one
        application_connected(app_connection{std::move(s), remote, id, 0});
      },
      [this, alive](const asio::ip::tcp::endpoint& remote, std::error_code reason,
                    const std::string&) {
        if (alive.expired()) return;
        log(log_level::debug,
            "application handshake from " + endpoint_text(remote) + " failed: " + reason.message());
      });
  if (!opened) {
    return protocol::error_record{make_error_code(runtime_errc::application_listen_failed),
                                  "cannot listen for application " + std::to_string(id) + " on " +
                                      endpoint_text(at) + ": " + opened.error().message()};
  }
  const auto bound = (*opened)->local_endpoint();
  app_listeners_.push_back(std::move(*opened));
  app_listen_points_[id] = bound;
  protocol::ip_address_port announced;
  if (bound.address().is_v4()) {
    announced.value = protocol::ipv4_address_port{bound.address().to_v4().to_bytes(), bound.port()};
  } else {
    announced.value = protocol::ipv6_address_port{bound.address().to_v6().to_bytes(), bound.port()};
  }
  node_->app_attach().serve(id, announced);
  log(log_level::info, "application " + std::to_string(id) + " served at " + endpoint_text(bound));
  return bound;
}

void node_driver::application_connected(app_connection c) {
  std::erase_if(app_streams_, [](const auto& w) { return w.expired(); });
  app_streams_.push_back(c.stream);
  for (const auto& app : cfg_.applications) {
    if (app.id == c.application && app.connected) {
      app.connected(std::move(c));
      return;
    }
  }
  c.stream->close();
}

void node_driver::open_app_connection(open_app_connection_action act) {
  spawn("app-connect", [this, act = std::move(act)] { return app_connect(act); });
}

asio::awaitable<void> node_driver::app_connect(open_app_connection_action act) {
  std::weak_ptr<bool> alive = alive_;
  auto connected =
      co_await transport::connect_stream(to_endpoint(act.address), tls_, cfg_.stream, act.expected);
  if (alive.expired()) co_return;
  if (!connected) {
    log(log_level::warn, "application connection to " + act.address.to_string() +
                             " failed: " + connected.error().message());
    co_return;
  }
  application_connected(app_connection{*connected, act.expected, act.application, act.token});
}

std::optional<asio::ip::tcp::endpoint> node_driver::local_endpoint() const {
  if (listener_) return listener_->local_endpoint();
  return cfg_.listen;
}

std::optional<asio::ip::tcp::endpoint> node_driver::remote_endpoint(link_id link) const {
  const auto it = links_.find(link);
  if (it == links_.end()) return std::nullopt;
  return it->second.link->remote_endpoint();
}

void node_driver::add_link(std::shared_ptr<transport::link> l,
                           std::optional<protocol::node_id> expected, link_origin origin) {
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
  links_.emplace(id, link_entry{l,
                                remote,
                                {},
                                0,
                                false,
                                transport::token_bucket(cfg_.client_messages_per_second,
                                                        cfg_.client_burst, clock::now())});
  std::weak_ptr<bool> alive = alive_;
  l->on_close([this, alive, id](std::error_code reason) {
    if (alive.expired()) return;
    link_closed(id, reason);
  });
  log(log_level::debug, "link " + std::to_string(id.value) + " up with " + remote.hex() + " (" +
                            endpoint_text(l->remote_endpoint()) + ")");
  node_->on_link_up(id, remote, clock::now(), origin);
  spawn("receive", [this, id, l] { return receive_loop(id, l); });
  pump();
  if (cfg_.links_changed) cfg_.links_changed();
}

void node_driver::link_closed(link_id id, std::error_code reason) {
  const auto it = links_.find(id);
  if (it == links_.end()) return;
  log(log_level::debug, "link " + std::to_string(id.value) + " to " + it->second.remote.hex() +
                            " closed: " + reason.message());
  if (reason == make_error_code(transport::transport_errc::frame_too_large) ||
      reason == make_error_code(transport::transport_errc::bad_frame)) {
    refused("frame", it->second.link->remote_endpoint(),
            reason.message() + (it->second.link->close_detail().empty()
                                    ? ""
                                    : " (" + it->second.link->close_detail() + ")"));
  }
  // What the remote never took, oldest first: the link's unacked and unsent messages, then our
  // backlog. The node routes again what it forwarded or answered.
  auto undelivered = it->second.link->take_undelivered();
  if (!it->second.backlog.empty()) {
    const auto lost = it->second.backlog.size();
    stats_.dropped_link_closed += lost - 1;
    dropped(stats_.dropped_link_closed, id,
            "link closed before its send backlog went out (" + std::to_string(lost) + " messages)");
    for (auto& b = it->second.backlog; !b.empty(); b.pop_front()) {
      undelivered.push_back(std::move(b.front()));
    }
  }
  const auto l = it->second.link;
  links_.erase(it);  // the receive loop stops
  if (stopped_) return;
  // What the link took (and acked) that the receive loop has not had its turn for: its sender
  // counts it as delivered. (Not an oversized header: the link is gone, nothing to answer on.)
  while (auto m = l->try_receive()) {
    if (!m->oversized()) node_->on_message(id, m->data, clock::now());
  }
  node_->on_link_down(id, clock::now(), std::move(undelivered));
  pump();
  if (cfg_.links_changed) cfg_.links_changed();
}

asio::awaitable<void> node_driver::receive_loop(link_id id, std::shared_ptr<transport::link> l) {
  std::weak_ptr<bool> alive = alive_;
  for (;;) {
    if (from_client(id) &&
        (cfg_.client_max_in_progress != 0 || !node_->accepting_client_requests())) {
      co_await hold_while_busy(id);
      if (alive.expired() || stopped_ || !links_.contains(id)) break;
    }
    auto received = co_await l->receive();
    if (alive.expired() || !received) break;
    if (stopped_ || !links_.contains(id)) break;
    if (cfg_.client_messages_per_second != 0 && from_client(id)) {
      co_await pace_client(id);
      if (alive.expired() || stopped_ || !links_.contains(id)) break;
    }
    if (received->oversized_length) {
      refused("oversized message", l->remote_endpoint(),
              std::to_string(*received->oversized_length) + " bytes, more than max-message-size " +
                  std::to_string(cfg_.link.limits.max_message_size));
      // RFC 6940 6.6: answered Error_Message_Too_Large by the node, which then closes the link.
      node_->on_oversized_message(id, received->data, *received->oversized_length, clock::now());
      pump();
      break;
    }
    node_->on_message(id, received->data, clock::now());
    pump();
    // One message per turn: every link with messages waiting gets its turn before this one's
    // next (round robin), so a node flooding its link delays itself, not the others.
    co_await asio::post(io_, asio::use_awaitable);
    if (alive.expired()) break;
  }
}

bool node_driver::from_client(link_id id) const {
  const auto* row = node_->links().find(id);
  return !row || row->from_client();
}

asio::awaitable<void> node_driver::hold_while_busy(link_id id) {
  std::weak_ptr<bool> alive = alive_;
  asio::steady_timer wait(io_);
  bool counted = false;
  const auto busy = [&] {
    if (!node_->accepting_client_requests()) return true;
    return cfg_.client_max_in_progress != 0 && node_->transport().client_requests_in_progress(
                                                   id, clock::now()) >= cfg_.client_max_in_progress;
  };
  while (links_.contains(id) && busy()) {
    if (!counted) {
      ++stats_.client_reads_held;
      report(log_level::info, id, "held", "time(s) since the last report: ",
             "a client with its requests in progress at the bound, or the node's outbox long, is "
             "read more slowly");
      counted = true;
    }
    // Answers free room within milliseconds under load; a lost one ages out (request_timeout).
    wait.expires_after(std::chrono::milliseconds(2));
    [[maybe_unused]] auto [ec] = co_await wait.async_wait(as_tuple_awaitable);
    if (alive.expired() || stopped_) co_return;
  }
}

asio::awaitable<void> node_driver::pace_client(link_id id) {
  std::weak_ptr<bool> alive = alive_;
  asio::steady_timer wait(io_);
  bool counted = false;
  const auto step = std::chrono::microseconds(
      1'000'000 / std::max<std::uint32_t>(cfg_.client_messages_per_second, 1) + 1);
  for (;;) {
    const auto it = links_.find(id);
    if (it == links_.end() || it->second.client_bucket.take(clock::now())) co_return;
    if (!counted) {
      ++stats_.client_messages_delayed;
      report(log_level::info, id, "delayed",
             "message(s) since the last report: ", "a client over its rate is read more slowly");
      counted = true;
    }
    wait.expires_after(step);
    [[maybe_unused]] auto [ec] = co_await wait.async_wait(as_tuple_awaitable);
    if (alive.expired() || stopped_) co_return;
  }
}

void node_driver::send_on(link_id id, protocol::bytes data) {
  const auto it = links_.find(id);
  if (it == links_.end()) return;  // gone: the node heard of it, or hears of it next
  auto& e = it->second;
  const bool room = e.backlog.empty() &&
                    e.link->queued_messages() < cfg_.link.max_queued_messages &&
                    e.link->queued_bytes() + data.size() <= cfg_.link.max_queued_bytes;
  if (room) {
    auto sent = e.link->try_send(std::move(data));
    if (sent) return;
    if (sent.error() == make_error_code(transport::transport_errc::message_too_large)) {
      dropped(stats_.dropped_too_large, id, "message larger than the link takes");
    } else {
      dropped(stats_.dropped_link_closed, id, "link closing");
    }
    return;
  }
  if (e.backlog.size() >= cfg_.send_backlog_messages ||
      e.backlog_bytes + data.size() > cfg_.send_backlog_bytes) {
    dropped(stats_.dropped_backlog_full, id,
            "send backlog full (the remote does not read fast enough)");
    return;
  }
  ++stats_.backlogged;
  e.backlog_bytes += data.size();
  e.backlog.push_back(std::move(data));
  if (!e.draining) {
    e.draining = true;
    spawn("send", [this, id, l = e.link] { return drain_backlog(id, l); });
  }
}

asio::awaitable<void> node_driver::drain_backlog(link_id id, std::shared_ptr<transport::link> l) {
  std::weak_ptr<bool> alive = alive_;
  for (;;) {
    const auto it = links_.find(id);
    if (it == links_.end() || it->second.link != l) co_return;
    auto& e = it->second;
    if (e.backlog.empty()) {
      e.draining = false;
      co_return;
    }
    auto data = std::move(e.backlog.front());
    e.backlog.pop_front();
    e.backlog_bytes -= data.size();
    // Waits for room in the link's queue: TLS and TCP pace the backlog.
    auto sent = co_await l->send(std::move(data));
    if (alive.expired()) co_return;
    if (!sent) {
      if (sent.error() == make_error_code(transport::transport_errc::message_too_large)) {
        dropped(stats_.dropped_too_large, id, "message larger than the link takes");
        continue;
      }
      dropped(stats_.dropped_link_closed, id, "link closing");
      co_return;  // link_closed counts the rest
    }
  }
}

void node_driver::dropped(std::uint64_t& counter, link_id id, std::string_view why) {
  ++counter;
  report(log_level::warn, id, "dropped", "outgoing message(s) since the last report: ", why);
}

void node_driver::report(log_level level, link_id id, std::string_view what,
                         std::string_view counted, std::string_view why) {
  const auto count = report_log_.try_emplace(std::string(what) + ": " + std::string(why))
                         .first->second.note(clock::now());
  if (!count) return;
  std::string remote;
  if (const auto l = links_.find(id); l != links_.end()) {
    remote =
        " " + l->second.remote.hex() + " at " + endpoint_text(l->second.link->remote_endpoint());
  }
  log(level, std::string(what) + " " + std::to_string(*count) + " " + std::string(counted) +
                 std::string(why) + " (last: link " + std::to_string(id.value) + remote + ")");
}

void node_driver::refused(std::string_view kind, const asio::ip::tcp::endpoint& remote,
                          std::string_view why) {
  // 5 lines at once, then one a second per kind: enough to see a misconfigured neighbour's
  // address at once, never a flood when someone hammers the port.
  constexpr std::uint32_t refusal_burst = 5;
  const auto now = clock::now();
  auto it = refusal_log_.find(kind);
  if (it == refusal_log_.end()) {
    it =
        refusal_log_
            .emplace(std::string(kind), refusal_log{transport::token_bucket(1, refusal_burst, now)})
            .first;
  }
  auto& r = it->second;
  if (!r.lines.take(now)) {
    ++r.held_back;
    return;
  }
  std::string line =
      "refused " + std::string(kind) + " from " + endpoint_text(remote) + ": " + std::string(why);
  if (r.held_back != 0) {
    line += " (and " + std::to_string(r.held_back) + " more refused " + std::string(kind) +
            "s not logged since the last such line)";
    r.held_back = 0;
  }
  log(log_level::info, line);
}

asio::awaitable<void> node_driver::open_link(protocol::ip_address_port address,
                                             std::optional<protocol::node_id> expected) {
  std::weak_ptr<bool> alive = alive_;
  if (cfg_.dial_started) cfg_.dial_started(address);
  auto connected =
      co_await transport::connect_explained(to_endpoint(address), tls_, cfg_.link, expected);
  if (alive.expired()) co_return;
  if (!connected) {
    const auto& why = connected.error();
    log(log_level::debug, "link to " + address.to_string() + " failed: " + why.message);
    if (!stopping_) {
      node_->on_link_failed(address, clock::now(), why.message);
      pump();
      if (cfg_.dial_failed) cfg_.dial_failed(address, why);
    }
    co_return;
  }
  add_link(std::move(*connected), expected, link_origin::outbound);
}

void node_driver::pump() {
  if (in_pump_) return;  // an action's callback may call back in: the outer loop picks it up
  in_pump_ = true;
  for (;;) {
    auto actions = node_->take_actions();
    if (actions.empty()) break;
    for (auto& a : actions) execute(a);
  }
  in_pump_ = false;
  arm_timer();
  if (cfg_.after_actions) cfg_.after_actions();
}

void node_driver::execute(action& a) {
  std::visit(
      [this](auto& act) {
        using T = std::decay_t<decltype(act)>;
        if constexpr (std::is_same_v<T, send_action>) {
          send_on(act.link, std::move(act.data));
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
        } else if constexpr (std::is_same_v<T, open_app_connection_action>) {
          if (stopping_) return;
          open_app_connection(std::move(act));
        } else if constexpr (std::is_same_v<T, log_action>) {
          if (act.refused_from) {
            const auto it = links_.find(*act.refused_from);
            if (it != links_.end()) {
              refused("message", it->second.link->remote_endpoint(), act.text);
              return;
            }
          }
          log(act.notable ? log_level::warn : log_level::debug, act.text);
        }
      },
      a);
}

void node_driver::arm_timer() {
  if (stopped_) return;
  const auto now = clock::now();
  auto when = node_->next_deadline().value_or(now + std::chrono::hours(1));
  if (armed_ && *armed_ == when) return;
  armed_ = when;
  timer_.expires_at(when);  // cancels a pending wait: the loop waits again on the new expiry
}

asio::awaitable<void> node_driver::timer_loop() {
  std::weak_ptr<bool> alive = alive_;
  while (!alive.expired() && !stopped_) {
    auto [ec] = co_await timer_.async_wait(as_tuple_awaitable);
    if (alive.expired() || stopped_) break;
    if (ec == asio::error::operation_aborted) continue;  // re-armed
    const auto now = clock::now();
    armed_.reset();
    const auto deadline = node_->next_deadline();
    if (deadline && *deadline <= now) node_->on_timer(now);
    pump();
    // A deadline the core did not move past would spin: wait at least 1 ms.
    if (armed_ && *armed_ <= now) {
      armed_ = now + std::chrono::milliseconds(1);
      timer_.expires_at(*armed_);
    }
  }
}

asio::awaitable<void> node_driver::stop() {
  if (stopping_ || !node_) {
    stopped_ = true;
    if (listener_) listener_->close();
    co_return;
  }
  std::weak_ptr<bool> alive = alive_;
  stopping_ = true;
  node_->leave(clock::now());
  pump();

  asio::steady_timer wait(io_);
  const auto poll = std::chrono::milliseconds(20);
  // 1. The Leave (and hand-over) messages reach TLS.
  const auto flush_until = std::chrono::steady_clock::now() + cfg_.leave_flush_timeout;
  bool flushed_any = false;
  while (std::chrono::steady_clock::now() < flush_until) {
    bool queued = false;
    for (const auto& [id, e] : links_) {
      if (e.link->state() != transport::link_state::closed &&
          (e.link->queued_messages() > 0 || !e.backlog.empty())) {
        queued = true;
      }
    }
    if (!queued) break;
    flushed_any = true;
    wait.expires_after(poll);
    [[maybe_unused]] auto [ec] = co_await wait.async_wait(as_tuple_awaitable);
    if (alive.expired()) co_return;
  }
  // Give the written records a moment on the wire before close_notify (a peer that sent Leave
  // messages; a client sends none).
  if (flushed_any || !node_->is_client()) {
    wait.expires_after(std::chrono::milliseconds(100));
    [[maybe_unused]] auto [ec] = co_await wait.async_wait(as_tuple_awaitable);
    if (alive.expired()) co_return;
  }

  // 2. Stop everything and close every link.
  stopped_ = true;
  timer_.cancel();
  if (listener_) listener_->close();
  for (auto& l : app_listeners_) l->close();
  for (auto& w : app_streams_) {
    if (auto l = w.lock()) l->close();
  }
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
}

}  // namespace p2psip::node
