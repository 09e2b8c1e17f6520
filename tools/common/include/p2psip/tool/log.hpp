#pragma once
// One timestamp and one log-line format for the daemon and the tools, so that their lines sort
// and grep alike: "2026-01-02T03:04:05.678Z INFO text" for logs, "program: message" for the
// one-line errors of a command.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace p2psip::tool {

/// UTC with milliseconds, ISO 8601: "2026-01-02T03:04:05.678Z".
std::string utc_time_text(std::chrono::system_clock::time_point t);
/// The same for milliseconds since the Unix epoch (RELOAD storage times); empty when the time is
/// past year 9999 (not a plausible timestamp, and gmtime could not say it).
std::string utc_time_text_ms(std::uint64_t ms_since_epoch);

/// `s` on one line: CR and LF turned into spaces, trailing spaces dropped.
std::string one_line(std::string_view s);

/// Writes "TIMESTAMP LEVEL text" (text on one line) to standard error in one write. Any thread.
void log_line(std::string_view level, std::string_view text);

/// Writes "program: message" (message on one line) to standard error in one write. Any thread.
void error_line(std::string_view program, std::string_view message);

}  // namespace p2psip::tool
