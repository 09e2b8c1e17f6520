#include "status_reporter.hpp"

#include <utility>

#include <asio/error.hpp>

namespace p2psip::peer_daemon {

status_reporter::status_reporter(asio::io_context& io, std::chrono::milliseconds interval,
                                 std::chrono::milliseconds coalesce, callbacks cb)
    : timer_(io), interval_(interval), coalesce_(coalesce), cb_(std::move(cb)) {}

void status_reporter::start() {
  if (!stopped_) return;
  stopped_ = false;
  last_line_at_ = clock::now();
  arm(last_line_at_ + coalesce_);
}

void status_reporter::changed() {
  if (stopped_) return;
  const auto soon = clock::now() + coalesce_;
  if (!armed_ || *armed_ > soon) arm(soon);
}

void status_reporter::stop() {
  stopped_ = true;
  armed_.reset();
  timer_.cancel();
}

void status_reporter::arm(clock::time_point when) {
  armed_ = when;
  // expires_at cancels the wait pending (its handler sees operation_aborted and returns): one
  // wait at a time, on the earliest time anything is due.
  timer_.expires_at(when);
  timer_.async_wait([this](const std::error_code& ec) { on_timer(ec); });
}

void status_reporter::on_timer(const std::error_code& ec) {
  if (ec == asio::error::operation_aborted || stopped_) return;
  armed_.reset();
  const auto now = clock::now();
  auto status = cb_.status();
  if (lines_ == 0 || status.ring != last_ring_ || now - last_line_at_ >= interval_) {
    cb_.emit(status.line);
    ++lines_;
    last_ring_ = std::move(status.ring);
    last_line_at_ = now;
  }
  // The callbacks may have stopped us (a line that ends the process in a test) or re-armed.
  if (!stopped_ && !armed_) arm(last_line_at_ + interval_);
}

}  // namespace p2psip::peer_daemon
