#include "config_reload.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

namespace p2psip::peer_daemon {

namespace {

/// Far above any real document (a few KiB, plus root certificates): a file this big is a
/// mistake (a wrong path, a device), not a configuration.
constexpr std::size_t max_document_bytes = 4 * 1024 * 1024;

}  // namespace

protocol::result<protocol::bytes, std::string> read_document(const std::string& file,
                                                             std::size_t max_bytes) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return protocol::unexpected(file + ": " + std::strerror(errno));
  protocol::bytes out;
  std::uint8_t buf[8192];
  for (;;) {
    const auto n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return protocol::unexpected(file + ": " + std::strerror(e));
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max_bytes) {
      ::close(fd);
      return protocol::unexpected(file + ": larger than " + std::to_string(max_bytes) +
                                  " bytes: not a configuration document");
    }
    out.insert(out.end(), buf, buf + n);
  }
  ::close(fd);
  return out;
}

reload_report reload_configuration(node::node_setup& setup, peer::peer_runtime& runtime) {
  const std::string file = setup.config_file.string();
  const std::string keeping = "; keeping sequence " + std::to_string(setup.config.sequence);
  auto bytes = read_document(file, max_document_bytes);
  if (!bytes) {
    return {node::log_level::warn, "configuration not re-read: " + bytes.error() + keeping, false};
  }
  // A reload for the log file alone (logrotate) finds the same document: nothing to say loudly.
  if (*bytes == setup.document) {
    return {node::log_level::info,
            "configuration " + file + " unchanged (sequence " +
                std::to_string(setup.config.sequence) + ")",
            false};
  }
  // The file is the source here: take_update need not write it.
  auto taken = setup.take_update(*bytes, false);
  if (!taken) {
    return {node::log_level::warn,
            "configuration " + file + " refused: " + taken.error().message + keeping, false};
  }
  const auto sent = runtime.adopt_configuration(setup.document, *taken);
  if (!sent) {
    return {node::log_level::warn,
            "configuration sequence " + std::to_string(*taken) + " read from " + file +
                ", but the peer is not running to apply it",
            false};
  }
  return {node::log_level::info,
          "configuration sequence " + std::to_string(*taken) + " applied from " + file +
              "; sent to " + std::to_string(*sent) + " linked node(s) in ConfigUpdates",
          true};
}

}  // namespace p2psip::peer_daemon
