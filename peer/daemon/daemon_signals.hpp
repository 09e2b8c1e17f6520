#pragma once
// The signals p2psip-peer answers: SIGHUP re-reads the configuration and reopens the log file
// (the usual meaning for a daemon, and systemd's ExecReload), SIGUSR1 logs the status line now
// (between --status-interval lines, without the admin HTTP server), SIGTERM and SIGINT make it
// leave the overlay cleanly. They are caught from construction on, so that a signal arriving while
// the peer still starts is held until watch() rather than killing it.

#include <functional>
#include <string_view>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

namespace p2psip::peer_daemon {

class daemon_signals {
 public:
  explicit daemon_signals(asio::io_context& io);

  /// From now on each SIGHUP runs `on_reload`, each SIGUSR1 `on_status`, and the first SIGTERM or
  /// SIGINT runs `on_leave` with the signal's name ("SIGTERM"); signals after that are caught
  /// and ignored (the peer is already leaving, within a bounded time). Handlers run on the
  /// io_context's thread.
  void watch(std::function<void()> on_reload, std::function<void()> on_status,
             std::function<void(std::string_view)> on_leave);

 private:
  void wait();

  asio::signal_set set_;
  std::function<void()> on_reload_;
  std::function<void()> on_status_;
  std::function<void(std::string_view)> on_leave_;
  bool leaving_ = false;
};

}  // namespace p2psip::peer_daemon
