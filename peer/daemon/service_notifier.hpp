#pragma once
// Tells the service manager (systemd's notification protocol, sd_notify(3)) how the peer is
// doing: READY=1 once the peer has joined the overlay (a first peer: once it serves), STATUS= with
// each status line, RELOADING=1 ... READY=1 around a SIGHUP, STOPPING=1 when it leaves, and
// WATCHDOG=1 keep-alives when the unit sets WatchdogSec=. Without NOTIFY_SOCKET (not started by
// systemd with Type=notify) every call does nothing.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace p2psip::peer_daemon {

class service_notifier {
 public:
  /// `warn` receives one line the first time a notification cannot be sent (a socket gone,
  /// refused); later failures are silent, so a broken socket does not flood the log.
  explicit service_notifier(std::function<void(std::string_view)> warn);

  /// NOTIFY_SOCKET is set: someone listens.
  bool active() const noexcept { return active_; }
  /// Whether READY=1 was sent.
  bool ready_sent() const noexcept { return ready_; }

  /// READY=1 with the status line.
  void ready(std::string_view status);
  /// STATUS= the status line (one line).
  void status(std::string_view status);
  /// RELOADING=1 (a SIGHUP is being handled; ready() again when done).
  void reloading(std::string_view status);
  /// STOPPING=1: the peer leaves.
  void stopping(std::string_view status);
  /// WATCHDOG=1.
  void watchdog();
  /// How often to send WATCHDOG=1: half the manager's WatchdogSec (WATCHDOG_USEC for this
  /// process); nullopt when the manager does not watch us.
  std::optional<std::chrono::microseconds> watchdog_interval() const;

 private:
  void send(const std::string& state);

  std::function<void(std::string_view)> warn_;
  bool active_ = false;
  bool ready_ = false;
  bool warned_ = false;
};

}  // namespace p2psip::peer_daemon
