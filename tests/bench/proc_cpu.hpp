#pragma once
// CPU time and resident memory of other processes, for the benchmarks' "CPU seconds per
// operation" of the servers they load (p2psip peers, OpenDHT nodes) and their memory: utime +
// stime from /proc/<pid>/stat, VmRSS and RssAnon from /proc/<pid>/status, Pss from
// /proc/<pid>/smaps_rollup.

#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace p2psip::bench {

/// User plus system CPU seconds that process `pid` has used so far (its threads included); 0 when
/// it cannot be read (the process is gone).
inline double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(in, stat);
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // Fields 3..13, then utime (14) and stime (15).
  for (int i = 3; i <= 13 && rest >> field; ++i) {
  }
  rest >> utime >> stime;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// Seconds that process `pid`'s threads have run on a CPU, from the scheduler's nanosecond
/// count (/proc/<pid>/task/*/schedstat, first field), not sampled at 10 ms ticks as
/// cpu_seconds is: an idle peer runs about 100 us at a time, so ticks resolve its CPU only as a
/// mean over many processes. 0 when it cannot be read.
inline double run_seconds(pid_t pid) {
  std::error_code ec;
  unsigned long long ns = 0;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "schedstat");
    unsigned long long run = 0;
    if (in >> run) ns += run;
  }
  return static_cast<double>(ns) / 1e9;
}

/// How often process `pid`'s threads have gone to sleep waiting for something (their
/// voluntary_ctxt_switches summed): an idle peer's wake-ups. 0 when it cannot be read.
inline long long voluntary_switches(pid_t pid) {
  std::error_code ec;
  long long n = 0;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "status");
    std::string line;
    const std::string key = "voluntary_ctxt_switches:";
    while (std::getline(in, line)) {
      if (line.rfind(key, 0) == 0) n += std::stoll(line.substr(key.size()));
    }
  }
  return n;
}

/// The sum of cpu_seconds over `pids`.
inline double cpu_seconds(const std::vector<pid_t>& pids) {
  double s = 0;
  for (const auto p : pids) s += cpu_seconds(p);
  return s;
}

/// The first "KEY: N kB" field of /proc/<pid>/FILE in KiB (`key` with its colon); 0 when it
/// cannot be read.
inline long proc_field_kib(pid_t pid, const std::string& file, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  }
  return 0;
}

/// A "KEY: N kB" field of /proc/<pid>/status in KiB (`key` with its colon); 0 when it cannot be
/// read.
inline long status_kib(pid_t pid, const std::string& key) {
  return proc_field_kib(pid, "status", key);
}

/// Resident set size of `pid` in KiB (VmRSS); 0 when it cannot be read.
inline long rss_kib(pid_t pid) {
  return status_kib(pid, "VmRSS:");
}

/// The part of `pid`'s RSS that is its own, in KiB (RssAnon: heap, stacks, written data); the
/// rest (RssFile) is mostly program and library code that every process mapping it shares.
inline long private_rss_kib(pid_t pid) {
  return status_kib(pid, "RssAnon:");
}

/// Proportional set size of `pid` in KiB (Pss of /proc/<pid>/smaps_rollup): its private pages
/// plus each shared page divided by the number of processes mapping it. Summed over processes it
/// is the memory they take together, so it says how many peers fit a machine; 0 when it cannot
/// be read.
inline long pss_kib(pid_t pid) {
  return proc_field_kib(pid, "smaps_rollup", "Pss:");
}

}  // namespace p2psip::bench
