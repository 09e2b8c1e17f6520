#include "daemon_signals.hpp"

#include <csignal>
#include <system_error>

namespace p2psip::peer_daemon {

daemon_signals::daemon_signals(asio::io_context& io) : set_(io, SIGHUP, SIGTERM, SIGINT) {
  set_.add(SIGUSR1);
}

void daemon_signals::watch(std::function<void()> on_reload, std::function<void()> on_status,
                           std::function<void(std::string_view)> on_leave) {
  on_reload_ = std::move(on_reload);
  on_status_ = std::move(on_status);
  on_leave_ = std::move(on_leave);
  wait();
}

void daemon_signals::wait() {
  set_.async_wait([this](const std::error_code& ec, int signo) {
    if (ec) return;  // cancelled: the io_context is going away
    if (signo == SIGHUP) {
      if (!leaving_ && on_reload_) on_reload_();
    } else if (signo == SIGUSR1) {
      if (!leaving_ && on_status_) on_status_();
    } else if (!leaving_) {
      leaving_ = true;
      if (on_leave_) on_leave_(signo == SIGINT ? "SIGINT" : "SIGTERM");
    }
    wait();
  });
}

}  // namespace p2psip::peer_daemon
