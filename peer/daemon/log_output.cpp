#include "log_output.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace p2psip::peer_daemon {

namespace {

int open_append(const std::string& file) {
  return ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

/// write(2) until all of `data` is out, through EINTR and short writes.
void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const auto n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

std::optional<log_target> parse_log_target(std::string_view text) {
  if (text == "auto") return log_target::automatic;
  if (text == "stderr") return log_target::stderr_text;
  if (text == "journal") return log_target::journal;
  return std::nullopt;
}

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  struct stat st {};
  if (::fstat(2, &st) != 0) return false;
  const std::string expected = std::to_string(static_cast<unsigned long long>(st.st_dev)) + ":" +
                               std::to_string(static_cast<unsigned long long>(st.st_ino));
  return expected == stream;
}

int journal_priority(node::log_level level) noexcept {
  switch (level) {
    case node::log_level::debug: return 7;
    case node::log_level::info: return 6;
    case node::log_level::warn: return 4;
    case node::log_level::error: return 3;
  }
  return 6;
}

log_output::log_output(log_target target)
    : journal_(target == log_target::journal ||
               (target == log_target::automatic && stderr_is_journal())) {}

protocol::result<log_output, std::string> log_output::open_file(const std::string& file) {
  const int fd = open_append(file);
  if (fd < 0) return protocol::unexpected(file + ": " + std::strerror(errno));
  log_output out(log_target::stderr_text);
  out.fd_ = fd;
  out.file_ = file;
  return out;
}

log_output::log_output(log_output&& other) noexcept
    : fd_(other.fd_), journal_(other.journal_), file_(std::move(other.file_)) {
  other.fd_ = 2;
  other.file_.clear();
}

log_output& log_output::operator=(log_output&& other) noexcept {
  if (this != &other) {
    if (fd_ > 2) ::close(fd_);
    fd_ = other.fd_;
    journal_ = other.journal_;
    file_ = std::move(other.file_);
    other.fd_ = 2;
    other.file_.clear();
  }
  return *this;
}

log_output::~log_output() {
  if (fd_ > 2) ::close(fd_);
}

void log_output::write(node::log_level level, std::string_view timestamp,
                       std::string_view text) const {
  std::string line;
  line.reserve(timestamp.size() + text.size() + 16);
  if (journal_) {
    line += '<';
    line += std::to_string(journal_priority(level));
    line += '>';
  } else {
    line += timestamp;
    line += ' ';
  }
  line += node::log_level_name(level);
  line += ' ';
  line += text;
  line += '\n';
  // One write(2) per line: lines of one process never interleave in an O_APPEND file.
  write_all(fd_, line);
}

protocol::result<void, std::string> log_output::reopen() {
  if (file_.empty()) return {};
  const int fd = open_append(file_);
  if (fd < 0) return protocol::unexpected(file_ + ": " + std::strerror(errno));
  if (fd_ > 2) ::close(fd_);
  fd_ = fd;
  return {};
}

}  // namespace p2psip::peer_daemon
