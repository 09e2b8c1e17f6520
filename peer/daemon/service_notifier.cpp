#include "service_notifier.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

namespace p2psip::peer_daemon {

namespace {

// The notification protocol itself, not libsystemd's sd_notify(3): systemd documents it as a
// stable interface for exactly this (one datagram of "KEY=value" lines to the AF_UNIX socket
// that NOTIFY_SOCKET names, a path or "@" for the abstract namespace). Linking libsystemd for
// two calls loaded it with libgcrypt, libgpg-error, liblz4, libzstd, liblzma and libcap into
// every peer: about 0.8 MiB of every idle peer's RSS, 0.1 MiB of it private (docs/benchmarks.md).

/// Where NOTIFY_SOCKET points, as a socket address; an error for a value that is no AF_UNIX path.
std::error_code notify_address(const char* socket, sockaddr_un& address, socklen_t& length) {
  const std::size_t size = std::strlen(socket);
  if (size < 2 || (socket[0] != '/' && socket[0] != '@'))
    return std::make_error_code(std::errc::address_family_not_supported);
  if (size >= sizeof(address.sun_path)) return std::make_error_code(std::errc::filename_too_long);
  address = {};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket, size);
  if (socket[0] == '@') address.sun_path[0] = '\0';  // abstract: no terminating NUL counted
  length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + size + (socket[0] == '/' ? 1 : 0));
  return {};
}

/// One datagram with `state` to the service manager at `socket`.
std::error_code notify(const char* socket, const std::string& state) {
  sockaddr_un address;
  socklen_t length = 0;
  if (const auto bad = notify_address(socket, address, length)) return bad;
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {errno, std::generic_category()};
  // MSG_NOSIGNAL: a manager gone away is an error here, not a SIGPIPE.
  const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&address), length);
  const int send_errno = errno;
  ::close(fd);
  if (sent < 0) return {send_errno, std::generic_category()};
  if (static_cast<std::size_t>(sent) != state.size())
    return std::make_error_code(std::errc::message_size);
  return {};
}

/// An unsigned decimal environment value, or nullopt when unset or not a number.
std::optional<std::uint64_t> environment_number(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  std::uint64_t value = 0;
  const char* end = text + std::strlen(text);
  const auto [stop, error] = std::from_chars(text, end, value);
  if (error != std::errc{} || stop != end) return std::nullopt;
  return value;
}

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
  const char* socket = std::getenv("NOTIFY_SOCKET");
  const std::error_code failed =
      socket != nullptr ? notify(socket, state) : std::make_error_code(std::errc::not_connected);
  if (!failed || warned_) return;
  warned_ = true;
  if (warn_) {
    warn_("cannot notify the service manager (NOTIFY_SOCKET): " + failed.message());
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
  // As sd_watchdog_enabled(3): WATCHDOG_USEC set and positive, and WATCHDOG_PID, when set, us
  // (a child that inherited the environment must not keep its parent alive).
  const auto usec = environment_number("WATCHDOG_USEC");
  if (!usec || *usec == 0) return std::nullopt;
  if (std::getenv("WATCHDOG_PID") != nullptr) {
    const auto pid = environment_number("WATCHDOG_PID");
    if (!pid || *pid != static_cast<std::uint64_t>(::getpid())) return std::nullopt;
  }
  return std::chrono::microseconds(*usec / 2);
}

}  // namespace p2psip::peer_daemon
