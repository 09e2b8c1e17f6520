#include "p2psip/transport/listener.hpp"

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <exception>
#include <iostream>

#include "link_internal.hpp"

namespace p2psip::transport {

namespace pr = p2psip::protocol;

namespace {
constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr auto housekeeping_interval = std::chrono::minutes(10);
}  // namespace

listener::listener(const asio::any_io_executor& executor,
                   std::shared_ptr<const tls_credentials> creds, listener_config cfg,
                   link_handler on_link, failure_handler on_failure)
    : executor_(executor),
      acceptor_(executor),
      backoff_timer_(executor),
      slot_timer_(executor),
      creds_(std::move(creds)),
      cfg_(std::move(cfg)),
      on_link_(std::move(on_link)),
      on_failure_(std::move(on_failure)) {}

pr::result<std::shared_ptr<listener>> listener::open(const asio::any_io_executor& executor,
                                                     const asio::ip::tcp::endpoint& local,
                                                     std::shared_ptr<const tls_credentials> creds,
                                                     listener_config cfg, link_handler on_link,
                                                     failure_handler on_failure) {
  if (!creds && !cfg.link.insecure_plaintext) {
    return make_error_code(transport_errc::invalid_credentials);
  }
  auto l = std::make_shared<listener>(executor, std::move(creds), std::move(cfg),
                                      std::move(on_link), std::move(on_failure));
  asio::error_code ec;
  l->acceptor_.open(local.protocol(), ec);
  if (!ec) l->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) l->acceptor_.bind(local, ec);
  if (!ec) l->acceptor_.listen(l->cfg_.backlog, ec);
  if (!ec) l->local_ = l->acceptor_.local_endpoint(ec);
  if (ec) return std::error_code(ec);
  l->open_ = true;
  asio::co_spawn(executor, l->accept_loop(l), [l](std::exception_ptr e) {
    if (!e) return;
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
    }
    const std::string line = "p2psip::transport: accept loop failed: " + what;
    if (l->cfg_.link.log) {
      l->cfg_.link.log(line);
    } else {
      std::cerr << line << '\n';
    }
    l->close();
  });
  return l;
}

void listener::close() {
  if (!open_) return;
  open_ = false;
  asio::error_code ignored;
  acceptor_.close(ignored);
  backoff_timer_.cancel();
  slot_timer_.cancel();
  for (auto& w : handshaking_) {
    if (auto l = w.lock()) l->close();
  }
  handshaking_.clear();
}

asio::awaitable<void> listener::accept_loop(std::shared_ptr<listener> self) {
  auto backoff = cfg_.min_backoff;
  while (open_) {
    if (pending_ >= std::max<std::size_t>(cfg_.max_handshakes, 1)) {
      // Wait for a handshake to end (on_handshake cancels the timer); re-check either way.
      slot_timer_.expires_after(housekeeping_interval);
      waiting_for_slot_ = true;
      auto [ec] = co_await slot_timer_.async_wait(use_nothrow);
      waiting_for_slot_ = false;
      (void)ec;
      continue;
    }
    auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
    if (!open_) break;
    if (ec) {
      // EMFILE, ENFILE, ENOBUFS, ECONNABORTED...: the connection waits in the backlog; retry later
      // instead of spinning.
      ++stats_.accept_errors;
      backoff_timer_.expires_after(backoff);
      auto [wait_ec] = co_await backoff_timer_.async_wait(use_nothrow);
      (void)wait_ec;
      backoff = std::min(backoff * 2, cfg_.max_backoff);
      continue;
    }
    backoff = cfg_.min_backoff;
    ++stats_.accepted;
    ++pending_;
    std::weak_ptr<listener> weak = self;
    auto l = detail::start_link_internal(
        std::move(socket), cfg_.role, creds_, cfg_.link, std::nullopt,
        [weak](const std::shared_ptr<link>& established, std::error_code result) {
          if (auto me = weak.lock()) {
            me->on_handshake(established, result);
          } else if (!result) {
            established->close();  // nobody to hand it to
          }
        });
    std::erase_if(handshaking_, [](const std::weak_ptr<link>& w) { return w.expired(); });
    handshaking_.push_back(l);
  }
}

void listener::on_handshake(const std::shared_ptr<link>& l, std::error_code result) {
  if (pending_ > 0) --pending_;
  std::erase_if(handshaking_, [&](const std::weak_ptr<link>& w) {
    auto p = w.lock();
    return !p || p == l;
  });
  if (waiting_for_slot_) slot_timer_.cancel();
  if (result) {
    ++stats_.handshakes_failed;
    if (open_ && on_failure_) on_failure_(l->remote_endpoint(), result, l->close_detail());
    return;
  }
  if (!open_) {  // after close() no handler runs; a late handshake is not handed up
    l->close();
    return;
  }
  ++stats_.established;
  if (on_link_) {
    on_link_(l);
  } else {
    l->close();
  }
}

}  // namespace p2psip::transport
