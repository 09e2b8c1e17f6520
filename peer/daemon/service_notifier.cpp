#include "service_notifier.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include <systemd/sd-daemon.h>

namespace p2psip::peer_daemon {

namespace {

/// "STATUS=" takes one line; ours are, but a newline would end the field early.
std::string status_field(std::string_view status) {
  std::string s = "STATUS=";
  for (const char c : status) s += (c == '\n' || c == '\r') ? ' ' : c;
  return s;
}

}  // namespace

service_notifier::service_notifier(std::function<void(std::string_view)> warn)
    : warn_(std::move(warn)) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  active_ = socket != nullptr && *socket != '\0';
}

void service_notifier::send(const std::string& state) {
  if (!active_) return;
  // unset_environment 0: we notify again and again.
  const int r = sd_notify(0, state.c_str());
  if (r >= 0 || warned_) return;
  warned_ = true;
  if (warn_) {
    warn_(std::string("cannot notify the service manager (NOTIFY_SOCKET): ") + std::strerror(-r));
  }
}

void service_notifier::ready(std::string_view status) {
  send("READY=1\n" + status_field(status));
  ready_ = true;
}

void service_notifier::status(std::string_view status) {
  send(status_field(status));
}

void service_notifier::reloading(std::string_view status) {
  send("RELOADING=1\n" + status_field(status));
}

void service_notifier::stopping(std::string_view status) {
  send("STOPPING=1\n" + status_field(status));
}

void service_notifier::watchdog() {
  send("WATCHDOG=1");
}

std::optional<std::chrono::microseconds> service_notifier::watchdog_interval() const {
  if (!active_) return std::nullopt;
  std::uint64_t usec = 0;
  // 0: keep WATCHDOG_USEC; > 0 only when it is set and WATCHDOG_PID (if any) is us.
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

}  // namespace p2psip::peer_daemon
