// p2psip-sip-bench: plain SIP UAs (sipp) against p2psip-peer's SIP front end, next to Kamailio
// from the Debian package measured in the same run, after RFC 7502 (SIP benchmarking
// methodology): for each scenario, the highest rate sustained over a whole run with no failed
// call and no retransmission, found by a bounded binary search on the rate.
//
// Scenarios:
//   - REGISTER/s with digest (REGISTER, 401, REGISTER with credentials, 200), by default from the
//     built-in load generator (register_load.hpp) over --users AORs in turn, each with its own
//     password; with --load-generator sipp, from sipp (tests/sip_interop/scenarios/register.xml)
//     for one AOR;
//   - INVITE calls/s (sipp, tests/sip_interop/scenarios) (INVITE, 180, 200, ACK, BYE, 200) from a
//   UAC at the first server to a UAS
//     registered at the last one.
// Targets:
//   - kamailio: one in-memory registrar and proxy (tests/bench/kamailio/kamailio.cfg);
//   - p2psip through 1 and through 3 peers (tests/support/process_overlay): REGISTER at the
//     first peer; the UAS registers at the last peer and the UAC sends to the first.
// Also the crypto ceiling, measured in the same run by crypto_bench's BM_peer_verify_and_sign
// (Ed25519, the overlay's default: what a storing peer does per request), next to REGISTER/s.
//
//   p2psip-sip-bench [--targets kamailio,p2psip] [--scenarios register,invite] [--peers 1,3]
//                    [--max-rate 10000] [--load-generator builtin|sipp] [--users 100]
//                    [--run-seconds 10] [--steps 8] [--drain-seconds 35] [--quick] [--json]
//
// --quick: 2-second runs, at most 4 steps up to 400/s (the smoke test runs it on Kamailio).
// Each trial is a fresh sipp run at -r RATE -m RATE*SECONDS bounded by -timeout; a trial passes
// when sipp exits 0 with every call successful and its statistics (and the UAS's) show no failed
// call and no retransmission. The built-in generator's trial passes on the same terms (every
// registration a 200, no failure, no retransmission on timer E). Each REGISTER trial also reports
// the servers' CPU time per REGISTER (user + system of every peer process, or of Kamailio's
// process group) and the generator's. The load generator, the UAS and the servers share the
// machine's cores: the figures are for comparison within one run, not absolute.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <cxxopts.hpp>

#include "p2psip/tool/version.hpp"
#include "proc_cpu.hpp"
#include "process_overlay.hpp"
#include "register_load.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using p2psip::test::find_tool;
using p2psip::test::free_tcp_udp_port;
using p2psip::test::process_overlay;
using p2psip::test::read_file;
using p2psip::test::spawn_process;

const std::string k_domain = "bench.p2psip.example";
const std::string k_kamailio_password = "p2psip-bench-secret";  // kamailio.cfg's fixed password

/// Waits for `pid` at most `limit`; SIGKILL after. Exit status, -1 if killed or signalled.
int wait_bounded(pid_t pid, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::this_thread::sleep_for(20ms);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

/// The last line of a sipp -trace_stat file as NAME -> value (cumulative counters end in "(C)").
std::map<std::string, long> last_stats(const fs::path& csv) {
  std::ifstream in(csv);
  std::string head, line, last;
  std::getline(in, head);
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  std::map<std::string, long> out;
  std::istringstream hs(head), ls(last);
  std::string h, v;
  while (std::getline(hs, h, ';') && std::getline(ls, v, ';')) {
    try {
      out[h] = std::stol(v);
    } catch (const std::exception&) {
    }
  }
  return out;
}

struct sipp_tool {
  std::string binary;
  fs::path scenarios;
  fs::path dir;  ///< traces and statistics
};

/// Common sipp options: loopback, no keyboard, statistics every second into `stats`.
std::vector<std::string> sipp_args(const sipp_tool& s, const std::string& scenario,
                                   const fs::path& stats) {
  return {s.binary,
          "-sf",
          (s.scenarios / scenario).string(),
          "-nostdin",
          "-i",
          "127.0.0.1",
          "-t",
          "u1",
          "-trace_stat",
          "-stf",
          stats.string(),
          "-fd",
          "1",
          "-trace_err",
          "-error_file",
          (stats.string() + ".err"),
          "-key",
          "domain",
          k_domain,
          "-key",
          "max_forwards",
          "70",
          "-key",
          "expires",
          "3600"};
}

/// A SIP server under test: where the UAC sends, where the UAS registers, and a password.
struct sip_target {
  std::string name;
  std::string first;  ///< "127.0.0.1:PORT", UDP, where the UAC and REGISTER go
  std::string last;   ///< where the UAS registers
  std::function<std::string(const std::string&)> password;
  std::function<std::vector<pid_t>()> server_processes;  ///< whose CPU time a trial counts
};

/// The built-in generator's AORs: u0000, u0001, ... (their passwords from sip_target::password).
std::vector<std::string> load_user_names(std::size_t n) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n; ++i) {
    std::string digits = std::to_string(i);
    names.push_back("u" + std::string(digits.size() < 4 ? 4 - digits.size() : 0, '0') + digits);
  }
  return names;
}

/// The processes of process group `group` (Kamailio and its workers).
std::vector<pid_t> process_group(pid_t group) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    const auto stat = read_file("/proc/" + std::string(e->d_name) + "/stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    long ppid = 0, pgrp = 0;
    if (rest >> state >> ppid >> pgrp && pgrp == group) out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

/// One sipp trial at `rate` for `seconds`: passes with every call successful, none failed, and
/// no retransmission (also none at the UAS whose statistics file is `uas_stats`, if any).
struct trial {
  bool pass = false;
  long successful = 0;
  long failed = 0;
  long retrans = 0;
  int exit_code = 0;
  double server_cpu_us = 0;     ///< the servers' CPU per REGISTER (0: not measured)
  double generator_cpu_us = 0;  ///< the built-in generator's CPU per REGISTER (0: sipp)
  std::string note;             ///< the generator's first failure, its lag
};

/// One trial of the built-in REGISTER generator against `t` over `users`.
trial run_builtin_register_trial(const sip_target& t, const std::vector<std::string>& users,
                                 double rate, double seconds) {
  p2psip::bench::register_load_config c;
  c.target = t.first;
  c.domain = k_domain;
  for (const auto& u : users) c.users.push_back({u, t.password(u)});
  c.rate = rate;
  c.seconds = seconds;
  const auto pids = t.server_processes ? t.server_processes() : std::vector<pid_t>{};
  const double cpu0 = p2psip::bench::cpu_seconds(pids);
  const auto out = p2psip::bench::run_register_load(c);
  const double cpu1 = p2psip::bench::cpu_seconds(pids);
  if (out.error) throw std::runtime_error("load generator: " + out.error_text);
  const auto& r = out.result;
  trial tr;
  tr.successful = r.successful;
  tr.failed = r.failed;
  tr.retrans = r.retransmissions;
  tr.pass = r.pass();
  if (r.started > 0) {
    tr.server_cpu_us = (cpu1 - cpu0) * 1e6 / static_cast<double>(r.started);
    tr.generator_cpu_us = r.cpu_seconds * 1e6 / static_cast<double>(r.started);
  }
  char note[96];
  std::snprintf(note, sizeof note, "lag max %.1f ms, stray %ld", r.max_lag_ms, r.stray);
  tr.note = note;
  if (!r.first_failure.empty()) tr.note += "; first failure: " + r.first_failure;
  return tr;
}

trial run_trial(const sipp_tool& s, const sip_target& t, const std::string& scenario,
                std::vector<std::string> keys, double rate, double seconds,
                const std::optional<fs::path>& uas_stats) {
  const long calls = std::max<long>(1, static_cast<long>(rate * seconds));
  static int n = 0;
  const auto stats = s.dir / ("trial-" + std::to_string(++n) + ".csv");
  auto args = sipp_args(s, scenario, stats);
  args.insert(args.end(), keys.begin(), keys.end());
  const long limit_s = static_cast<long>(seconds * 3) + 20;
  args.insert(
      args.end(),
      {"-r", std::to_string(static_cast<long>(rate)), "-m", std::to_string(calls), "-d", "0", "-p",
       std::to_string(free_tcp_udp_port()), "-timeout", std::to_string(limit_s) + "s",
       "-timeout_error", "-recv_timeout", "10000", "-l", std::to_string(calls), t.first});
  const auto uas_before = uas_stats ? last_stats(*uas_stats) : std::map<std::string, long>{};
  const pid_t pid = spawn_process(args, stats.string() + ".out", stats.string() + ".out", false);
  trial r;
  r.exit_code = wait_bounded(pid, std::chrono::seconds(limit_s + 10));
  std::this_thread::sleep_for(1100ms);  // the UAS's next statistics line
  auto st = last_stats(stats);
  r.successful = st["SuccessfulCall(C)"];
  r.failed = st["FailedCall(C)"];
  r.retrans = st["Retransmissions(C)"];
  if (uas_stats) {
    auto after = last_stats(*uas_stats);
    r.failed += after["FailedCall(C)"] - uas_before.at("FailedCall(C)");
    r.retrans += after["Retransmissions(C)"] - uas_before.at("Retransmissions(C)");
  }
  r.pass = r.exit_code == 0 && r.successful == calls && r.failed == 0 && r.retrans == 0;
  return r;
}

struct search_result {
  double rate = 0;  ///< highest passing rate (0: none passed)
  int trials = 0;
  double server_cpu_us = 0;  ///< the servers' CPU per REGISTER in the last passing trial
};

/// RFC 7502-style search: try the maximum; if it fails, bisect between the highest rate that
/// passed and the lowest that failed, `steps` trials at most, to 5% of the rate. After a failed
/// trial the server is left `drain` to finish what it holds (transactions stay 32 s in Completed,
/// retransmissions keep coming): otherwise an overloaded first trial spoils the lower ones.
template <class Trial>
search_result find_rate(const std::string& label, double max_rate, int steps,
                        std::chrono::milliseconds drain, Trial&& run) {
  search_result out;
  double lo = 0, hi = max_rate, rate = max_rate;
  for (int i = 0; i < steps; ++i) {
    const trial t = run(rate);
    ++out.trials;
    std::fprintf(stderr, "  %s: %6.0f /s -> %s (ok %ld, failed %ld, retrans %ld, sipp exit %d)",
                 label.c_str(), rate, t.pass ? "pass" : "fail", t.successful, t.failed, t.retrans,
                 t.exit_code);
    if (t.server_cpu_us > 0 || t.generator_cpu_us > 0) {
      std::fprintf(stderr, " server CPU %.0f us/REGISTER, generator %.0f us", t.server_cpu_us,
                   t.generator_cpu_us);
    }
    if (!t.note.empty()) std::fprintf(stderr, " [%s]", t.note.c_str());
    std::fprintf(stderr, "\n");
    if (t.pass) out.server_cpu_us = t.server_cpu_us;
    if (t.pass) {
      lo = rate;
      if (rate >= max_rate) break;
    } else {
      hi = rate;
    }
    if (hi - lo <= std::max(1.0, 0.05 * hi)) break;
    rate = std::max(1.0, (lo + hi) / 2);
    if (!t.pass && i + 1 < steps) std::this_thread::sleep_for(drain);
  }
  out.rate = lo;
  return out;
}

/// A UAS for the call scenario: registered as `user` at `t.last`, then uas_call.xml on the same
/// port until the destructor.
class uas {
 public:
  uas(const sipp_tool& s, const sip_target& t, const std::string& user) {
    const int port = free_tcp_udp_port();
    static int n = 0;
    stats_ = s.dir / ("uas-" + std::to_string(++n) + ".csv");
    auto reg = sipp_args(s, "register.xml", s.dir / ("register-uas-" + t.name + ".csv"));
    reg.insert(reg.end(),
               {"-key", "user", user, "-au", user, "-ap", t.password(user), "-m", "1", "-p",
                std::to_string(port), "-timeout", "20s", "-timeout_error", t.last});
    const auto log = s.dir / ("register-uas-" + t.name + ".out");
    if (wait_bounded(spawn_process(reg, log, log, false), 30s) != 0) {
      throw std::runtime_error("the UAS could not register at " + t.name + ": " + read_file(log));
    }
    auto args = sipp_args(s, "uas_call.xml", stats_);
    args.insert(args.end(),
                {"-key", "user", user, "-key", "from_user", user, "-key", "ruri",
                 "sip:" + user + "@" + k_domain, "-d", "0", "-p", std::to_string(port)});
    pid_ = spawn_process(args, stats_.string() + ".out", stats_.string() + ".out", false);
    std::this_thread::sleep_for(1500ms);  // bound, and its first statistics line written
  }
  ~uas() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  uas(const uas&) = delete;
  uas& operator=(const uas&) = delete;
  const fs::path& stats() const { return stats_; }

 private:
  pid_t pid_ = -1;
  fs::path stats_;
};

struct figures {
  double register_rate = 0;
  double call_rate = 0;
  double register_cpu_us = 0;  ///< the servers' CPU per REGISTER at the highest passing rate
};

figures measure(const sipp_tool& s, const sip_target& t, double max_rate, double seconds, int steps,
                std::chrono::milliseconds drain, bool registers, bool calls,
                const std::vector<std::string>* builtin_users) {
  figures f;
  std::fprintf(stderr, "%s:\n", t.name.c_str());
  if (registers) {
    const auto found = find_rate(t.name + " REGISTER", max_rate, steps, drain, [&](double rate) {
      if (builtin_users != nullptr) {
        return run_builtin_register_trial(t, *builtin_users, rate, seconds);
      }
      return run_trial(s, t, "register.xml",
                       {"-key", "user", "alice", "-au", "alice", "-ap", t.password("alice")}, rate,
                       seconds, std::nullopt);
    });
    f.register_rate = found.rate;
    f.register_cpu_us = found.server_cpu_us;
  }
  if (!calls) return f;
  // A fresh UAS for every trial: calls a failed trial left behind at the UAS (waiting for an ACK
  // or retransmitting its 200) must not count against the next one.
  f.call_rate =
      find_rate(t.name + " INVITE", max_rate, steps, drain, [&](double rate) {
        uas callee(s, t, "bob");
        return run_trial(s, t, "uac_call.xml",
                         {"-key", "user", "carol", "-key", "from_user", "carol", "-key", "ruri",
                          "sip:bob@" + k_domain, "-au", "carol", "-ap", t.password("carol")},
                         rate, seconds, callee.stats());
      }).rate;
  return f;
}

/// Kamailio from the Debian package with tests/bench/kamailio/kamailio.cfg, in its own process
/// group (the destructor ends it and its workers together).
class kamailio {
 public:
  explicit kamailio(const fs::path& dir) {
    const auto binary = find_tool("kamailio", "kamailio");
    port_ = free_tcp_udp_port();
    const std::string at = "127.0.0.1:" + std::to_string(port_);
    log_ = dir / "kamailio.log";
    const std::vector<std::string> args{binary,      "-f",  P2PSIP_KAMAILIO_CFG,
                                        "-DD",       "-E",  "-l",
                                        "udp:" + at, "-n",  "4",
                                        "-m",        "256", "-M",
                                        "16",        "-Y",  dir.string()};
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::setpgid(0, 0);
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));  // NOLINT
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);
    // Ready when its UDP listener exists: the log's "Listening on" block is printed after
    // the sockets are bound.
    const auto until = std::chrono::steady_clock::now() + 15s;
    while (read_file(log_).find("udp: 127.0.0.1") == std::string::npos) {
      if (std::chrono::steady_clock::now() > until) {
        throw std::runtime_error("kamailio did not start: " + read_file(log_));
      }
      std::this_thread::sleep_for(50ms);
    }
    std::this_thread::sleep_for(500ms);
  }
  ~kamailio() {
    ::kill(-pid_, SIGTERM);
    if (wait_bounded(pid_, 5s) == -1) ::kill(-pid_, SIGKILL);
    ::kill(-pid_, SIGKILL);
  }
  kamailio(const kamailio&) = delete;
  kamailio& operator=(const kamailio&) = delete;
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t process_group() const noexcept { return pid_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  fs::path log_;
};

/// The SIP listener of peer `i`: its "SIP listening on udp:IP:PORT" line.
std::string sip_udp_of(const process_overlay& o, std::size_t i) {
  const std::string marker = "SIP listening on udp:";
  const auto until = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < until) {
    const auto log = o.log_of(i);
    const auto at = log.find(marker);
    if (at != std::string::npos) {
      const auto start = at + marker.size();
      return log.substr(start, log.find_first_of(" \r\n", start) - start);
    }
    std::this_thread::sleep_for(50ms);
  }
  throw std::runtime_error("peer " + std::to_string(i) +
                           " logged no 'SIP listening on udp:' line (no SIP front end yet?)");
}

/// The crypto ceiling of this run: crypto_bench's BM_peer_verify_and_sign/1 (Ed25519: verify a
/// request, sign the answer), per second on one core.
double crypto_ceiling(const fs::path& dir, bool quick) {
  const auto out = dir / "crypto_bench.json";
  const pid_t pid = spawn_process(
      {P2PSIP_CRYPTO_BENCH_BINARY, "--benchmark_filter=BM_peer_verify_and_sign/1$",
       "--benchmark_format=json", quick ? "--benchmark_min_time=0.2" : "--benchmark_min_time=2"},
      out, dir / "crypto_bench.err", false);
  const int status = wait_bounded(pid, 120s);
  const auto json = read_file(out);
  // cpu_time: one core's worth, as the ceiling is defined (the wall time also counts the other
  // processes of this machine).
  const auto at = json.find("\"cpu_time\":");
  const auto unit = json.find("\"time_unit\": \"", at == std::string::npos ? 0 : at);
  if (at == std::string::npos || unit == std::string::npos) {
    throw std::runtime_error("crypto_bench gave no result (exit " + std::to_string(status) +
                             "): " + read_file(dir / "crypto_bench.err"));
  }
  if (status != 0) {
    // Its result is complete; only its exit failed (it crashes at exit in some builds).
    std::fprintf(stderr, "note: crypto_bench exited with status %d after printing its result\n",
                 status);
  }
  const double t = std::stod(json.substr(at + 11));
  const auto u = json.substr(unit + 14, 2);
  const double ns = u == "ns" ? t : u == "us" ? t * 1e3 : u == "ms" ? t * 1e6 : t * 1e9;
  return 1e9 / ns;
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("p2psip-sip-bench",
                           "Highest SIP rate with no failure or retransmission (RFC 7502): "
                           "p2psip peers vs Kamailio");
  // clang-format off
  options.add_options()
      ("targets", "kamailio and/or p2psip", cxxopts::value<std::vector<std::string>>()->default_value("kamailio,p2psip"))
      ("scenarios", "register and/or invite", cxxopts::value<std::vector<std::string>>()->default_value("register,invite"))
      ("peers", "p2psip overlay sizes", cxxopts::value<std::vector<std::size_t>>()->default_value("1,3"))
      ("max-rate", "highest rate tried (per second)", cxxopts::value<double>()->default_value("10000"))
      ("run-seconds", "length of each trial", cxxopts::value<double>()->default_value("10"))
      ("steps", "trials per search at most", cxxopts::value<int>()->default_value("8"))
      ("drain-seconds", "pause after a failed trial, for the server to finish what it holds (default 35; 0 with --quick)", cxxopts::value<double>())
      ("load-generator", "REGISTER load: builtin (one thread of this program, little CPU; default) or sipp (one AOR, as CPU-hungry as the server)", cxxopts::value<std::string>()->default_value("builtin"))
      ("users", "AORs the built-in generator registers in turn (each its own password)", cxxopts::value<std::size_t>()->default_value("100"))
      ("peer-binary", "the p2psip-peer to measure (default: this build's), e.g. an older build for a before/after comparison", cxxopts::value<std::string>()->default_value(P2PSIP_PEER_BINARY))
      ("quick", "short runs (2 s, 4 steps, up to 400/s) for a smoke test")
      ("json", "one JSON document on stdout")
      ("version", "show the version")
      ("h,help", "help");
  // clang-format on
  std::vector<std::string> targets, scenarios;
  std::vector<std::size_t> sizes;
  double max_rate = 0, seconds = 0, drain_seconds = 0;
  int steps = 0;
  bool quick = false, json = false;
  std::string generator, peer_binary;
  std::size_t load_users = 0;
  try {
    auto r = options.parse(argc, argv);
    if (r.count("version")) {
      std::cout << p2psip::tool::version_text("p2psip-sip-bench");
      return 0;
    }
    if (r.count("help")) {
      std::cout << options.help();
      return 0;
    }
    targets = r["targets"].as<std::vector<std::string>>();
    scenarios = r["scenarios"].as<std::vector<std::string>>();
    sizes = r["peers"].as<std::vector<std::size_t>>();
    quick = r.count("quick") > 0;
    json = r.count("json") > 0;
    max_rate = r.count("max-rate") || !quick ? r["max-rate"].as<double>() : 400;
    seconds = r.count("run-seconds") || !quick ? r["run-seconds"].as<double>() : 2;
    steps = r.count("steps") || !quick ? r["steps"].as<int>() : 4;
    generator = r["load-generator"].as<std::string>();
    peer_binary = r["peer-binary"].as<std::string>();
    load_users = r["users"].as<std::size_t>();
    drain_seconds = r.count("drain-seconds") ? r["drain-seconds"].as<double>() : quick ? 0 : 35;
  } catch (const std::exception& e) {
    std::cerr << "p2psip-sip-bench: " << e.what() << "\n";
    return 2;
  }
  if (drain_seconds < 0 || drain_seconds > 600) {
    std::cerr << "p2psip-sip-bench: --drain-seconds must be 0 to 600\n";
    return 2;
  }
  if (generator != "builtin" && generator != "sipp") {
    std::cerr << "p2psip-sip-bench: unknown --load-generator '" << generator
              << "' (builtin, sipp)\n";
    return 2;
  }
  if (load_users < 1 || load_users > 100000) {
    std::cerr << "p2psip-sip-bench: --users must be 1 to 100000\n";
    return 2;
  }
  const bool builtin = generator == "builtin";
  const auto user_names = load_user_names(load_users);
  const std::vector<std::string>* builtin_users = builtin ? &user_names : nullptr;
  const auto drain = std::chrono::milliseconds(static_cast<long long>(drain_seconds * 1000));
  for (const auto& t : targets) {
    if (t != "kamailio" && t != "p2psip") {
      std::cerr << "p2psip-sip-bench: unknown target '" << t << "' (kamailio, p2psip)\n";
      return 2;
    }
  }
  for (const auto& sc : scenarios) {
    if (sc != "register" && sc != "invite") {
      std::cerr << "p2psip-sip-bench: unknown scenario '" << sc << "' (register, invite)\n";
      return 2;
    }
  }
  const bool registers =
      std::find(scenarios.begin(), scenarios.end(), "register") != scenarios.end();
  const bool calls = std::find(scenarios.begin(), scenarios.end(), "invite") != scenarios.end();
  if (max_rate < 1 || seconds <= 0 || steps < 1) {
    std::cerr << "p2psip-sip-bench: --max-rate, --run-seconds and --steps must be positive\n";
    return 2;
  }
  const bool with_kamailio = std::find(targets.begin(), targets.end(), "kamailio") != targets.end();
  const bool with_p2psip = std::find(targets.begin(), targets.end(), "p2psip") != targets.end();

  std::string templ = (fs::temp_directory_path() / "p2psip-sip-bench.XXXXXX").string();
  if (!::mkdtemp(templ.data())) {
    std::cerr << "p2psip-sip-bench: mkdtemp failed\n";
    return 1;
  }
  const fs::path dir = templ;
  int rc = 0;
  std::ostringstream js;
  std::FILE* out = stdout;
  try {
    const sipp_tool s{find_tool("sipp", "sip-tester"), P2PSIP_SIP_SCENARIO_DIR, dir};
    // With --json the human-readable lines go to standard error, the document to standard output.
    out = json ? stderr : stdout;
    std::fprintf(
        out,
        "p2psip-sip-bench: runs of %.0f s, rates up to %.0f /s, %d trials per search, "
        "REGISTER load from %s\n",
        seconds, max_rate, steps,
        builtin ? ("the built-in generator over " + std::to_string(load_users) + " AORs").c_str()
                : "sipp (one AOR)");
    const double ceiling = crypto_ceiling(dir, quick);
    std::fprintf(out,
                 "crypto ceiling (crypto_bench BM_peer_verify_and_sign/1, one core): %.0f /s\n",
                 ceiling);
    js << "{\"run_seconds\": " << seconds << ", \"max_rate\": " << max_rate
       << ", \"crypto_ceiling_per_s\": " << ceiling << ", \"results\": [";

    std::optional<figures> base;
    bool first_json = true;
    auto report = [&](const std::string& name, const figures& f) {
      std::fprintf(out, "%-18s REGISTER %7.0f /s", name.c_str(), f.register_rate);
      if (base && base->register_rate > 0) {
        std::fprintf(out, " = %.3f x kamailio", f.register_rate / base->register_rate);
      }
      std::fprintf(out, " = %.3f x crypto ceiling", f.register_rate / ceiling);
      if (f.register_cpu_us > 0) {
        std::fprintf(out, " (server CPU %.0f us/REGISTER)", f.register_cpu_us);
      }
      std::fprintf(out, ";  INVITE calls %7.0f /s", f.call_rate);
      if (base && base->call_rate > 0) {
        std::fprintf(out, " = %.3f x kamailio", f.call_rate / base->call_rate);
      }
      std::fprintf(out, "\n");
      std::fflush(out);
      js << (first_json ? "" : ", ") << "{\"target\": \"" << name
         << "\", \"register_per_s\": " << f.register_rate << ", \"calls_per_s\": " << f.call_rate;
      if (base) {
        js << ", \"register_vs_kamailio\": "
           << (base->register_rate > 0 ? f.register_rate / base->register_rate : 0)
           << ", \"calls_vs_kamailio\": "
           << (base->call_rate > 0 ? f.call_rate / base->call_rate : 0);
      }
      js << ", \"register_vs_crypto_ceiling\": " << f.register_rate / ceiling
         << ", \"register_server_cpu_us\": " << f.register_cpu_us << "}";
      first_json = false;
    };

    if (with_kamailio) {
      kamailio k(dir);
      // Kamailio accepts every user name with the one password of kamailio.cfg.
      const sip_target t{"kamailio", k.address(), k.address(),
                         [](const std::string&) { return k_kamailio_password; },
                         [&k] { return process_group(k.process_group()); }};
      const auto f =
          measure(s, t, max_rate, seconds, steps, drain, registers, calls, builtin_users);
      report("kamailio", f);
      base = f;
      if ((registers && f.register_rate <= 0) || (calls && f.call_rate <= 0)) {
        std::fprintf(stderr, "kamailio sustained no rate at all: see %s\n", dir.c_str());
        rc = 1;
      }
    }
    if (with_p2psip) {
      for (const auto n : sizes) {
        process_overlay o(peer_binary, P2PSIP_ADMIN_BINARY, k_domain);
        const auto users = o.dir() / "sip-users";
        auto password = [](const std::string& u) { return "bench-" + u + "-pw"; };
        // Every user in one p2psip-admin run (`sip-user add --batch`): one process and one write
        // of the users file instead of one of each per user.
        std::vector<std::string> names{"alice", "bob", "carol"};
        if (builtin && registers) names.insert(names.end(), user_names.begin(), user_names.end());
        const auto batch = o.dir() / "sip-users.batch";
        {
          std::ofstream b(batch);
          for (const auto& u : names)
            b << "sip:" << u << "@" << k_domain << " " << password(u) << "\n";
        }
        o.run_admin({"sip-user", "add", "--batch", batch.string(), "--users", users.string(),
                     "--ca-dir", (o.dir() / "ca").string()});
        for (std::size_t i = 0; i < n; ++i) {
          o.start_peer(
              "p" + std::to_string(i), false,
              {"--sip-listen", "udp:127.0.0.1:0", "--sip-users", users.string(),
               // The load comes from one source: the per-source limit would cap every rate.
               "--sip-source-rate", "0",
               // A deployment's level (process_overlay asks for debug, a line per
               // request): Kamailio runs at its own default too.
               "--log-level", "info"});
        }
        if (!o.wait_ring(60s)) throw std::runtime_error("the ring did not form");
        const std::string name = "p2psip " + std::to_string(n) + (n == 1 ? " peer" : " peers");
        const sip_target t{name, sip_udp_of(o, 0), sip_udp_of(o, n - 1), password, [&o] {
                             std::vector<pid_t> pids;
                             for (const auto& p : o.peers()) {
                               if (p.pid > 0) pids.push_back(p.pid);
                             }
                             return pids;
                           }};
        report(name,
               measure(s, t, max_rate, seconds, steps, drain, registers, calls, builtin_users));
      }
    }
    js << "]}";
  } catch (const std::exception& e) {
    std::cerr << "p2psip-sip-bench: " << e.what() << "\n(traces kept in " << dir << ")\n";
    return 1;
  }
  if (json) std::cout << js.str() << "\n";
  if (rc == 0 && !std::getenv("P2PSIP_KEEP_TEST_DIR")) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  return rc;
}
