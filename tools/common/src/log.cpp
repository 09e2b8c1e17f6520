#include "p2psip/tool/log.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace p2psip::tool {

namespace {

std::mutex g_stderr_mutex;

void write_stderr(const std::string& line) {
  std::lock_guard lock(g_stderr_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

std::string utc_time_text_ms(std::uint64_t ms) {
  // Year 9999 ends at 253402300800 s.
  constexpr std::uint64_t max_ms = 253402300799999ULL;
  if (ms > max_ms) return {};
  const auto seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  if (gmtime_r(&seconds, &tm) == nullptr) return {};
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(ms % 1000));
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf) return {};
  return std::string(buf, static_cast<std::size_t>(n));
}

std::string utc_time_text(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  return utc_time_text_ms(ms.count() < 0 ? 0 : static_cast<std::uint64_t>(ms.count()));
}

std::string one_line(std::string_view s) {
  std::string out(s);
  std::replace(out.begin(), out.end(), '\n', ' ');
  std::replace(out.begin(), out.end(), '\r', ' ');
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

void log_line(std::string_view level, std::string_view text) {
  std::string line = utc_time_text(std::chrono::system_clock::now());
  line += ' ';
  line += level;
  line += ' ';
  line += one_line(text);
  line += '\n';
  write_stderr(line);
}

void error_line(std::string_view program, std::string_view message) {
  std::string line(program);
  line += ": ";
  line += one_line(message);
  line += '\n';
  write_stderr(line);
}

}  // namespace p2psip::tool
