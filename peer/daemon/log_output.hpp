#pragma once
// Where p2psip-peer's log lines go: standard error (the default), a file that SIGHUP reopens
// (--log-file, for logrotate), or the systemd journal. For the journal each line goes to standard
// error with a "<N>" syslog priority prefix (sd-daemon(3)), which journald turns into the entry's
// PRIORITY and strips; the journal stamps entries itself, so the line carries no timestamp.
// That needs no socket of our own, keeps the order of lines, and `journalctl -p warning` works.

#include <optional>
#include <string>
#include <string_view>

#include "p2psip/node/node_driver.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::peer_daemon {

/// The --log-target values.
enum class log_target {
  automatic,  ///< journal when standard error is connected to the journal, else stderr
  stderr_text,
  journal,
};

/// "auto", "stderr" or "journal"; nullopt for anything else.
std::optional<log_target> parse_log_target(std::string_view text);

/// Standard error is a stream the journal reads: JOURNAL_STREAM ("DEVICE:INODE", set by systemd
/// for StandardError=journal, systemd.exec(5)) names the very file standard error is. Checking
/// the inode keeps a child of a service, whose stderr went elsewhere, from taking it for one.
bool stderr_is_journal();

/// The journal's priority for a level (syslog: 7 debug, 6 info, 4 warning, 3 error).
int journal_priority(node::log_level level) noexcept;

class log_output {
 public:
  /// Lines to standard error, as `target` says (automatic: decided here, once).
  explicit log_output(log_target target = log_target::automatic);
  /// Lines appended to `file` (created 0640 when absent). Errors: the file and the system's
  /// reason, in words.
  static protocol::result<log_output, std::string> open_file(const std::string& file);

  log_output(log_output&& other) noexcept;
  log_output& operator=(log_output&& other) noexcept;
  log_output(const log_output&) = delete;
  log_output& operator=(const log_output&) = delete;
  ~log_output();

  /// Writes one line: "TIMESTAMP LEVEL text" (stderr, file) or "<N>LEVEL text" (journal).
  /// `text` is one line already. A failed write is lost: there is nowhere left to report it.
  void write(node::log_level level, std::string_view timestamp, std::string_view text) const;

  /// Opens the file again by its name (logrotate moved the old one away): lines go to the new
  /// file from now on. Errors (the old file is kept then): the file and the reason. Nothing to
  /// do, and no error, without a file.
  protocol::result<void, std::string> reopen();

  bool to_journal() const noexcept { return journal_; }
  /// The file written, empty for standard error.
  const std::string& file() const noexcept { return file_; }

 private:
  int fd_ = 2;
  bool journal_ = false;
  std::string file_;
};

}  // namespace p2psip::peer_daemon
