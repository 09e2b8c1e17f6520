#include "accept_core.hpp"

#include <asio/co_spawn.hpp>

#include <algorithm>
#include <exception>
#include <string>

#include "io_util.hpp"

namespace p2psip::transport::detail {

namespace pr = p2psip::protocol;

accept_core::accept_core(const asio::any_io_executor& executor, const accept_config& cfg)
    : acceptor_(executor), backoff_timer_(executor), slot_timer_(executor), cfg_(cfg) {}

pr::result<std::shared_ptr<accept_core>> accept_core::bind(const asio::any_io_executor& executor,
                                                           const asio::ip::tcp::endpoint& local,
                                                           const accept_config& cfg) {
  auto core = std::make_shared<accept_core>(executor, cfg);
  asio::error_code ec;
  core->acceptor_.open(local.protocol(), ec);
  if (!ec) core->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) core->acceptor_.bind(local, ec);
  if (!ec) core->acceptor_.listen(cfg.backlog, ec);
  if (!ec) core->local_ = core->acceptor_.local_endpoint(ec);
  if (ec) return std::error_code(ec);
  core->open_ = true;
  return core;
}

void accept_core::start(start_fn start, log_fn log, std::shared_ptr<void> owner) {
  start_ = std::move(start);
  auto self = shared_from_this();
  asio::co_spawn(acceptor_.get_executor(), loop(self, std::move(owner)),
                 [self, log = std::move(log)](std::exception_ptr e) {
                   if (!e) return;
                   write_log(log, "p2psip::transport: accept loop failed: " + exception_text(e));
                   self->close();
                 });
}

void accept_core::close() {
  if (!open_) return;
  open_ = false;
  asio::error_code ignored;
  acceptor_.close(ignored);
  backoff_timer_.cancel();
  slot_timer_.cancel();
  // Aborting posts each connection's handshake end; none runs back into this list meanwhile.
  auto in_progress = std::move(handshaking_);
  handshaking_.clear();
  for (auto& [id, abort] : in_progress) {
    if (abort) abort();
  }
  start_ = nullptr;
}

bool accept_core::handshake_done(std::uint64_t id, bool established) {
  std::erase_if(handshaking_, [id](const auto& entry) { return entry.first == id; });
  if (waiting_for_slot_) slot_timer_.cancel();
  if (!established) {
    ++stats_.handshakes_failed;
  } else if (open_) {
    ++stats_.established;
  }
  return open_;
}

asio::awaitable<void> accept_core::loop([[maybe_unused]] std::shared_ptr<accept_core> self,
                                        [[maybe_unused]] std::shared_ptr<void> owner) {
  auto backoff = cfg_.min_backoff;
  while (open_) {
    if (handshaking_.size() >= std::max<std::size_t>(cfg_.max_handshakes, 1)) {
      // Wait for a handshake to end (handshake_done cancels the timer); re-check either way.
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
    const std::uint64_t id = ++next_id_;
    // Links and streams post the end of their handshake, never report it from inside start_.
    handshaking_.emplace_back(id, start_(std::move(socket), id));
  }
}

}  // namespace p2psip::transport::detail
