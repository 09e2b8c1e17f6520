// p2psip-peer: the reference RELOAD peer.
//
//   p2psip-peer --config overlay.xml --cert node.crt --key node.key --listen IP:PORT
//               (port 0: a free port, logged as "listening on IP:PORT as NODE-ID")
//               [--data-dir DIR [--accept-store-change] | --memory]
//               [--bootstrap-peer IP:PORT ...] [--first]
//               [--overlay NAME] [--log-level debug|info|warn|error] [--status-interval MS]
//               [--log-file FILE | --log-target auto|stderr|journal]
//               [--client-rate N] [--client-burst N] [--max-clients N] [--max-links N]
//               [--link-misbehaviour-limit N]
//               [--partition-check-interval S] [--request-timeout MS] [--link-linger MS]
//               [--heap-trim-delay MS]
//               [--sip-listen udp|tcp|tls:IP:PORT ... [--sip-users FILE]
//                [--sip-mode proxy|redirect] [--sip-digest MD5,SHA-256]
//                [--sip-source-rate N] [--sip-source-burst N]
//                [--sip-gateway sip:IP:PORT|sips:HOST[:PORT] --sip-gateway-cert F
//                 --sip-gateway-key F [--sip-trunk-ca F] [--sip-trunk-cert F --sip-trunk-key F]]]
//               (each SIP listener logged as "SIP listening on udp:IP:PORT")
//               [--admin-listen IP:PORT]  (/metrics, /status.json and the status page at /;
//                logged as "admin HTTP server at IP:PORT"; not "listening on",
//                which names the overlay listener; served by the module
//                p2psip-admin-http.so, opened only then: a module missing or failing to
//                load is an error, exit 1, naming its path and dlerror's reason)
//
// Exit codes (p2psip/tool/exit_codes.hpp, shared by every tool): 0 after a clean leave
// (SIGTERM/SIGINT), 2 for a usage error, 6 for a configuration or credentials file that is
// missing, unreadable or invalid, 1 for any other error (store, bind). Every error is one line on
// standard error. A data directory whose database is not the store its manifest records (lost,
// emptied, replaced, another node's, truncated: peer/storage's storage_backend.hpp) is such an
// error, unless
// --accept-store-change takes the database as it is (a WARN line, and a new manifest).
// At start the soft limit of open files is raised to the hard limit (one descriptor per link).
// Botan's pool of locked memory for secrets is 64 KiB unless BOTAN_MLOCK_POOL_SIZE (KiB, 0: no
// pool) says otherwise: Botan's own 512 KiB cost every peer 1.5 MiB resident (guard pages).
// Logs: one line each on standard error: "2026-01-02T03:04:05.678Z INFO text"; with --log-file
// appended to FILE instead (SIGHUP reopens it: logrotate); to the journal as "<6>INFO text"
// (log_output.hpp) when standard error is the journal (JOURNAL_STREAM) or --log-target journal.
// Signals (daemon_signals.hpp): SIGTERM and SIGINT leave the overlay; SIGHUP re-reads --config
// (a newer signed document is applied and sent on in ConfigUpdates, config_reload.hpp; anything
// else is refused with a WARN line and the peer runs on) and reopens the log file; SIGUSR1 logs
// the status line at once.
// Under systemd (Type=notify, packaging/systemd/p2psip-peer.service): READY=1 once joined,
// STATUS= the status line, RELOADING=1 / STOPPING=1, WATCHDOG=1 (service_notifier.hpp).
// A status line ("status node=... joined=yes pred=... succ=...,... table=... links=N clients=N
// values=N outbox=N dropped=N"; table: every peer in the routing table; outbox: replica and
// hand-over Stores waiting; dropped: messages of ours dropped, by any reason, since the start) is
// logged whenever the routing table changes (within 200 ms: the runtime reports changes, nothing
// polls), and every --status-interval otherwise.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/resource.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <cxxopts.hpp>

#include "p2psip/config/config_document.hpp"
#include "p2psip/config/overlay_config.hpp"
#include "p2psip/crypto/credentials.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/node/node_setup.hpp"
#include "p2psip/peer/admin_http_module.hpp"
#include "p2psip/peer/data_store.hpp"
#include "p2psip/peer/peer_runtime.hpp"
#include "p2psip/peer/sip_front_end.hpp"
#include "p2psip/protocol/address.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/tool/exit_codes.hpp"
#include "p2psip/tool/log.hpp"
#include "p2psip/tool/options.hpp"
#include "p2psip/tool/version.hpp"
#include "p2psip/transport/credentials.hpp"
#include "p2psip/transport/errors.hpp"
#include "p2psip/transport/link.hpp"

#include "config_reload.hpp"
#include "daemon_signals.hpp"
#include "log_output.hpp"
#include "service_notifier.hpp"
#include "status_reporter.hpp"

namespace {

namespace pr = p2psip::protocol;
namespace pe = p2psip::peer;
namespace fs = std::filesystem;
namespace pd = p2psip::peer_daemon;

namespace tool = p2psip::tool;
constexpr int exit_ok = tool::status(tool::exit_code::ok);
constexpr int exit_error = tool::status(tool::exit_code::failure);
constexpr int exit_usage = tool::status(tool::exit_code::usage);
constexpr int exit_config = tool::status(tool::exit_code::configuration);

pe::log_level g_level = pe::log_level::info;
/// Where log lines go: standard error until the options say otherwise.
pd::log_output g_log;
/// The admin HTTP server, while it runs: it keeps the WARN and ERROR lines for its status page.
std::atomic<pe::admin::server*> g_admin{nullptr};

std::string one_line(std::string_view s) {
  return tool::one_line(s);  // the tools' own, so that every program's lines read alike
}

std::string timestamp() {
  return tool::utc_time_text(std::chrono::system_clock::now());
}

void log_line(pe::log_level level, std::string_view text) {
  if (auto* admin = g_admin.load(); admin && level >= pe::log_level::warn) {
    admin->note_log(pe::log_level_name(level), timestamp(), one_line(text));
  }
  if (level < g_level) return;
  g_log.write(level, timestamp(), one_line(text));
}

/// The one line of a failed start: "p2psip-peer: message".
int fail(int code, std::string_view message) {
  // Under systemd the journal files it as an error (sd-daemon(3)'s "<3>"), not as plain output.
  std::string line =
      (g_log.to_journal() ? "<3>" : "") + std::string("p2psip-peer: ") + one_line(message) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  return code;
}

std::optional<pe::log_level> parse_level(std::string_view s) {
  if (s == "debug") return pe::log_level::debug;
  if (s == "info") return pe::log_level::info;
  if (s == "warn") return pe::log_level::warn;
  if (s == "error") return pe::log_level::error;
  return std::nullopt;
}

/// IP:PORT or [IPv6]:PORT; port 0 only when `allow_zero`.
std::optional<pr::ip_address_port> parse_address(const std::string& s, bool allow_zero = false) {
  auto a = pr::ip_address_port::parse(s);
  if (!a || (a->port() == 0 && !allow_zero)) return std::nullopt;
  return a;
}

asio::ip::tcp::endpoint to_endpoint(const pr::ip_address_port& a) {
  if (const auto* v4 = std::get_if<pr::ipv4_address_port>(&a.value)) {
    return {asio::ip::address_v4(v4->address), v4->port};
  }
  const auto& v6 = std::get<pr::ipv6_address_port>(a.value);
  return {asio::ip::address_v6(v6.address), v6.port};
}

std::string ids_text(const std::vector<pr::node_id>& ids) {
  if (ids.empty()) return "-";
  std::string s;
  for (const auto& id : ids) {
    if (!s.empty()) s += ',';
    s += id.hex();
  }
  return s;
}

std::string status_text(const pe::runtime_status& s, const pe::sip_front_end* sip) {
  std::string line =
      "status node=" + s.self.hex() + " joined=" + (s.joined ? "yes" : "no") +
      " pred=" + ids_text(s.predecessors) + " succ=" + ids_text(s.successors) +
      " table=" + ids_text(s.routing_table) + " links=" + std::to_string(s.links) +
      " clients=" + std::to_string(s.clients) + " values=" + std::to_string(s.stored_values) +
      " outbox=" + std::to_string(s.outbox) + " dropped=" + std::to_string(s.dropped);
  if (sip) {
    const auto f = sip->status();
    line += " sip_registrations=" + std::to_string(f.usage.registrations) +
            " sip_bindings=" + std::to_string(f.usage.bindings) +
            " sip_flows=" + std::to_string(f.flows) +
            " sip_transactions=" + std::to_string(f.usage.transactions);
  }
  return line;
}

constexpr auto as_tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

/// Raises the soft RLIMIT_NOFILE to the hard one: every link is a socket, and the usual soft
/// default (1024) would cap a peer near a thousand links while the hard limit allows far more.
/// Returns the line to log once the peer runs (a failed start stays one line on stderr).
std::pair<pe::log_level, std::string> raise_open_files_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    return {pe::log_level::warn,
            std::string("cannot read the open files limit: ") + std::strerror(errno)};
  }
  const auto text = [](rlim_t n) {
    return n == RLIM_INFINITY ? std::string("unlimited") : std::to_string(n);
  };
  if (lim.rlim_cur == lim.rlim_max) {
    return {pe::log_level::info, "open files limit: " + text(lim.rlim_cur)};
  }
  const rlim_t before = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
    return {pe::log_level::warn, "cannot raise the open files limit from " + text(before) + " to " +
                                     text(lim.rlim_max) + ": " + std::strerror(errno)};
  }
  return {pe::log_level::info,
          "open files limit: " + text(lim.rlim_cur) + " (raised from " + text(before) + ")"};
}

/// WATCHDOG=1 every `interval` (half the unit's WatchdogSec), from the thread that runs the peer:
/// if it hangs, the keep-alives stop and systemd restarts the peer.
asio::awaitable<void> watchdog_loop(pe::peer_runtime& rt, pd::service_notifier& notifier,
                                    std::chrono::microseconds interval) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!rt.stopped()) {
    notifier.watchdog();
    timer.expires_after(interval);
    auto [ec] = co_await timer.async_wait(as_tuple_awaitable);
    if (ec) break;
  }
}

/// SIP first (its listeners and flows), then the overlay (Leave). A function, not a lambda: a
/// coroutine lambda's captures die with the closure, before the coroutine ends.
asio::awaitable<void> stop_all(pe::sip_front_end* sip, pe::peer_runtime& runtime) {
  if (sip) co_await sip->stop();
  co_await runtime.stop();
}

int run(int argc, char** argv) {
  cxxopts::Options options("p2psip-peer", "RELOAD (RFC 6940) peer: joins a CHORD-RELOAD overlay.");
  // clang-format off
  options.add_options()
      ("config", "overlay configuration document (overlay.xml)", cxxopts::value<std::string>())
      ("cert", "node certificate file (NAME.crt from p2psip-admin enroll)", cxxopts::value<std::string>())
      ("key", "node private key file (NAME.key)", cxxopts::value<std::string>())
      ("listen", "where to accept links, IP:PORT or [IPv6]:PORT (port 0: any free port, logged)", cxxopts::value<std::string>())
      ("data-dir", "keep stored data in SQLite under this directory", cxxopts::value<std::string>())
      ("accept-store-change", "start even if the --data-dir database is not the store its manifest records (lost, emptied, replaced, another node's, truncated): take it as it is")
      ("memory", "keep stored data in memory only (lost when the peer stops)")
      ("bootstrap-peer", "bootstrap peer IP:PORT (repeatable; default: the configuration's)", cxxopts::value<std::vector<std::string>>())
      ("first", "start a new overlay ring (bootstrap peers are then only used to look for other rings)")
      ("overlay", "refuse a configuration for another overlay than NAME", cxxopts::value<std::string>())
      ("log-level", "debug, info, warn or error", cxxopts::value<std::string>()->default_value("info"))
      ("log-file", "append log lines to this file instead of standard error (SIGHUP reopens it)", cxxopts::value<std::string>())
      ("log-target", "auto (the journal when standard error is the journal), stderr, or journal (\"<N>\" priority prefixes)", cxxopts::value<std::string>()->default_value("auto"))
      ("status-interval", "log a status line at least this often (ms)", cxxopts::value<long>()->default_value("30000"))
      ("client-rate", "messages per second a client may send on average; a faster one is read more slowly (0: no limit)", cxxopts::value<long>()->default_value("1000"))
      ("client-burst", "messages a client may send in a burst above its rate", cxxopts::value<long>()->default_value("2000"))
      ("max-clients", "client links at most; when full, the longest idle client makes room", cxxopts::value<long>()->default_value("1024"))
      ("max-links", "links to peers at most (routing table, fingers); surplus ones make room", cxxopts::value<long>()->default_value("256"))
      ("link-misbehaviour-limit", "malformed messages before a link is closed", cxxopts::value<long>()->default_value("100"))
      ("partition-check-interval", "look for another ring through a bootstrap peer this often (s; 0: never)", cxxopts::value<long>()->default_value("600"))
      ("request-timeout", "how long a request of this peer waits for its answer (ms)", cxxopts::value<long>()->default_value("15000"))
      ("link-linger", "how long a link no longer needed stays open before it is closed (ms)", cxxopts::value<long>()->default_value("30000"))
      ("heap-trim-delay", "give memory freed when links close back to the system this long after (ms; 0: never)", cxxopts::value<long>()->default_value("15000"))
      ("sip-listen", "serve SIP user agents at udp:IP:PORT, tcp:IP:PORT or tls:IP:PORT (repeatable; port 0: any free port, logged)", cxxopts::value<std::vector<std::string>>())
      ("sip-users", "the SIP users the registrar authenticates and acts for (p2psip-admin sip-user add)", cxxopts::value<std::string>())
      ("sip-digest", "digest algorithms the registrar challenges with, in order of preference: MD5, SHA-256 or both separated by a comma", cxxopts::value<std::string>()->default_value("MD5,SHA-256"))
      ("sip-gateway", "be the overlay's gateway to this SIP trunk for tel: and other domains' targets: sip:IP[:PORT][;transport=udp|tcp], or over TLS sips:HOST[:PORT] or sip:HOST[:PORT];transport=tls (port 5061 by default; the trunk's certificate must name HOST)", cxxopts::value<std::string>())
      ("sip-gateway-cert", "credentials of the gateway role (p2psip-admin enroll --user sip-gateway@OVERLAY): certificate file", cxxopts::value<std::string>())
      ("sip-gateway-key", "credentials of the gateway role: private key file", cxxopts::value<std::string>())
      ("sip-trunk-ca", "a TLS trunk's CA certificates (PEM bundle) its certificate must verify against (default: the system store, /etc/ssl/certs)", cxxopts::value<std::string>())
      ("sip-trunk-cert", "our client certificate (PEM) for a TLS trunk that asks for one (mutual TLS); needs --sip-trunk-key", cxxopts::value<std::string>())
      ("sip-trunk-key", "the private key (PEM, unencrypted PKCS #8) of --sip-trunk-cert", cxxopts::value<std::string>())
      ("sip-source-rate", "SIP messages per second one source IP may send on average (0: no limit); over it requests get 503 with Retry-After", cxxopts::value<long>()->default_value("100"))
      ("sip-source-burst", "SIP messages one source IP may send in a burst above its rate", cxxopts::value<long>()->default_value("400"))
      ("admin-listen", "serve /metrics (Prometheus), /status.json and a status page over HTTP at IP:PORT (port 0: any free port, logged)", cxxopts::value<std::string>())
      ("sip-t1", "SIP's T1 in milliseconds, the round-trip estimate its retransmissions start from and its transaction timeouts (64*T1) scale with (RFC 3261 17.1.1.1); lower it only where round trips are known to be shorter", cxxopts::value<long>()->default_value("500"))
      ("sip-mode", "proxy (forward requests to the registered UAs) or redirect (answer 302 with their contacts)", cxxopts::value<std::string>()->default_value("proxy"))
      ("version", "show the version")
      ("h,help", "show this help");
  // clang-format on
  cxxopts::ParseResult r;
  try {
    r = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    return fail(exit_usage, tool::usage_message(e, argc, argv));
  }
  if (r.count("help")) {
    std::cout << options.help() +
                     tool::exit_codes_help(
                         {{tool::exit_code::ok, "after a clean leave (SIGTERM, SIGINT)"},
                          {tool::exit_code::failure, "store, bind, runtime"},
                          {tool::exit_code::usage, ""},
                          {tool::exit_code::configuration, ""}});
    return exit_ok;
  }
  if (r.count("version")) {
    std::cout << tool::version_text("p2psip-peer");
    return exit_ok;
  }
  if (!r.unmatched().empty())
    return fail(exit_usage, "unexpected argument '" + r.unmatched().front() + "'");
  for (const char* required : {"config", "cert", "key", "listen"}) {
    if (!r.count(required)) return fail(exit_usage, std::string("--") + required + " is required");
  }
  std::string level_text;
  std::string config_file, cert_file, key_file, listen_text;
  std::vector<std::string> bootstrap_text;
  long status_ms = 0;
  long client_rate = 0, client_burst = 0, link_misbehaviour = 0, max_clients = 0, max_links = 0;
  long partition_check_s = 0;
  long request_timeout_ms = 0, link_linger_ms = 0, heap_trim_delay_ms = 0;
  try {
    level_text = r["log-level"].as<std::string>();
    config_file = r["config"].as<std::string>();
    cert_file = r["cert"].as<std::string>();
    key_file = r["key"].as<std::string>();
    listen_text = r["listen"].as<std::string>();
    if (r.count("bootstrap-peer"))
      bootstrap_text = r["bootstrap-peer"].as<std::vector<std::string>>();
    status_ms = r["status-interval"].as<long>();
    client_rate = r["client-rate"].as<long>();
    client_burst = r["client-burst"].as<long>();
    max_clients = r["max-clients"].as<long>();
    max_links = r["max-links"].as<long>();
    link_misbehaviour = r["link-misbehaviour-limit"].as<long>();
    partition_check_s = r["partition-check-interval"].as<long>();
    request_timeout_ms = r["request-timeout"].as<long>();
    link_linger_ms = r["link-linger"].as<long>();
    heap_trim_delay_ms = r["heap-trim-delay"].as<long>();
  } catch (const cxxopts::exceptions::exception& e) {
    return fail(exit_usage, tool::usage_message(e, argc, argv));
  }
  const auto level = parse_level(level_text);
  if (!level)
    return fail(exit_usage,
                "--log-level '" + level_text + "': expected debug, info, warn or error");
  g_level = *level;
  const std::string log_target_text = r["log-target"].as<std::string>();
  const auto log_target = pd::parse_log_target(log_target_text);
  if (!log_target)
    return fail(exit_usage,
                "--log-target '" + log_target_text + "': expected auto, stderr or journal");
  if (r.count("log-file") && *log_target == pd::log_target::journal)
    return fail(exit_usage, "--log-file and --log-target journal exclude each other");
  if (status_ms <= 0) return fail(exit_usage, "--status-interval must be positive");
  constexpr long max_u32 = 0xFFFFFFFF;
  if (client_rate < 0 || client_rate > max_u32 || client_burst < 1 || client_burst > max_u32 ||
      link_misbehaviour < 1 || link_misbehaviour > max_u32) {
    return fail(exit_usage,
                "--client-rate must be 0 or more, --client-burst and --link-misbehaviour-limit 1 "
                "or more");
  }
  if (max_clients < 1 || max_clients > 1'000'000 || max_links < 8 || max_links > 1'000'000) {
    return fail(exit_usage, "--max-clients must be 1 to 1000000, --max-links 8 to 1000000");
  }
  // At most a day: the interval is jittered in milliseconds.
  if (partition_check_s < 0 || partition_check_s > 86'400) {
    return fail(exit_usage, "--partition-check-interval must be 0 to 86400 seconds");
  }
  if (request_timeout_ms < 100 || request_timeout_ms > 600'000) {
    return fail(exit_usage, "--request-timeout must be 100 to 600000 ms");
  }
  if (link_linger_ms < 0 || link_linger_ms > 3'600'000) {
    return fail(exit_usage, "--link-linger must be 0 to 3600000 ms");
  }
  if (heap_trim_delay_ms < 0 || heap_trim_delay_ms > 3'600'000) {
    return fail(exit_usage, "--heap-trim-delay must be 0 to 3600000 ms");
  }
  std::vector<pe::sip_listen_spec> sip_listen;
  if (r.count("sip-listen")) {
    for (const auto& text : r["sip-listen"].as<std::vector<std::string>>()) {
      auto spec = pe::parse_sip_listen(text);
      if (!spec) return fail(exit_usage, "--sip-listen '" + text + "': " + spec.error());
      sip_listen.push_back(*spec);
    }
  }
  const std::string sip_mode_text = r["sip-mode"].as<std::string>();
  std::vector<p2psip::sip::digest_algorithm> sip_digest;
  {
    const std::string text = r["sip-digest"].as<std::string>();
    std::size_t start = 0;
    while (start <= text.size()) {
      const auto comma = std::min(text.find(',', start), text.size());
      const auto name = text.substr(start, comma - start);
      const auto a = p2psip::sip::parse_digest_algorithm(name);
      if (!a)
        return fail(exit_usage,
                    "--sip-digest '" + text + "': '" + name + "' is not MD5 or SHA-256");
      sip_digest.push_back(*a);
      start = comma + 1;
    }
  }
  const long sip_t1_ms = r["sip-t1"].as<long>();
  if (sip_t1_ms < 10 || sip_t1_ms > 10000)
    return fail(exit_usage, "--sip-t1 " + std::to_string(sip_t1_ms) +
                                ": expected milliseconds from 10 to 10000 (RFC 3261's is 500)");
  if (sip_mode_text != "proxy" && sip_mode_text != "redirect")
    return fail(exit_usage, "--sip-mode '" + sip_mode_text + "': expected proxy or redirect");
  if (sip_listen.empty() &&
      (r.count("sip-users") || sip_mode_text != "proxy" || r.count("sip-gateway")))
    return fail(exit_usage, "--sip-users, --sip-mode and --sip-gateway need --sip-listen");
  if (r.count("sip-gateway") != r.count("sip-gateway-cert") ||
      r.count("sip-gateway") != r.count("sip-gateway-key"))
    return fail(exit_usage, "--sip-gateway needs --sip-gateway-cert and --sip-gateway-key");
  const bool trunk_tls_options =
      r.count("sip-trunk-ca") || r.count("sip-trunk-cert") || r.count("sip-trunk-key");
  if (trunk_tls_options && !r.count("sip-gateway"))
    return fail(exit_usage,
                "--sip-trunk-ca, --sip-trunk-cert and --sip-trunk-key need --sip-gateway");
  if (r.count("sip-trunk-cert") != r.count("sip-trunk-key"))
    return fail(exit_usage, "--sip-trunk-cert and --sip-trunk-key go together");
  if (r.count("sip-gateway")) {
    const auto text = r["sip-gateway"].as<std::string>();
    const auto trunk = pe::parse_sip_trunk(text);
    if (!trunk) return fail(exit_usage, "--sip-gateway '" + text + "': " + trunk.error());
    if (trunk_tls_options && trunk->kind != pe::sip_transport_kind::tls)
      return fail(exit_usage,
                  "--sip-trunk-ca, --sip-trunk-cert and --sip-trunk-key need a TLS "
                  "trunk: --sip-gateway sips:HOST[:PORT] or "
                  "sip:HOST[:PORT];transport=tls, not '" +
                      text + "'");
  }
  const auto listen = parse_address(listen_text, true);
  if (!listen) return fail(exit_usage, "--listen '" + listen_text + "': expected IP:PORT");
  std::optional<pr::ip_address_port> admin_listen;
  if (r.count("admin-listen")) {
    const auto text = r["admin-listen"].as<std::string>();
    admin_listen = parse_address(text, true);
    if (!admin_listen) return fail(exit_usage, "--admin-listen '" + text + "': expected IP:PORT");
  }
  if (r.count("data-dir") && r.count("memory"))
    return fail(exit_usage, "--data-dir and --memory exclude each other");
  // Durable storage is the default a peer should get; losing acknowledged data must be a choice.
  if (!r.count("data-dir") && !r.count("memory"))
    return fail(exit_usage, "say where stored data lives: --data-dir DIR (durable) or --memory");
  if (r.count("accept-store-change") && !r.count("data-dir"))
    return fail(exit_usage, "--accept-store-change needs --data-dir");
  const bool first = r.count("first") > 0;
  std::vector<pr::ip_address_port> bootstrap;
  for (const auto& b : bootstrap_text) {
    auto a = parse_address(b);
    if (!a) return fail(exit_usage, "--bootstrap-peer '" + b + "': expected IP:PORT");
    bootstrap.push_back(*a);
  }
  // The admin HTTP module is opened only when asked for, and before anything else is loaded:
  // a peer that cannot serve what it was asked to stops at once, naming the file and why.
  std::optional<pe::admin_http_module> admin_module;
  if (admin_listen) {
    auto path = pe::admin_http_module::locate();
    if (!path) return fail(exit_error, path.error().message);
    auto opened = pe::admin_http_module::open(*path);
    if (!opened) return fail(exit_error, opened.error().message);
    admin_module = std::move(*opened);
  }

  // Every linked node's certificate stays in the trust store's cache: a client's every
  // keepalive would otherwise parse it and validate its chain again once the links outnumber
  // the default cache (10,000 clients saturated a core that way).
  const auto certificates_cached = static_cast<std::size_t>(max_clients + max_links) + 64;
  auto setup = p2psip::node::load_node_setup(
      config_file, cert_file, key_file, r.count("overlay") ? r["overlay"].as<std::string>() : "",
      std::max<std::size_t>(certificates_cached, 4096));
  if (!setup) return fail(exit_config, setup.error().message);
  const auto& config = setup->config;
  // A first peer joins nobody, but looks for other rings through the bootstrap peers (RFC 6940
  // 10.7.4.4): two rings started apart (say, while the network between them was down) merge.
  if (bootstrap.empty()) bootstrap = config.bootstrap_nodes;
  if (!first && bootstrap.empty()) {
    return fail(exit_usage,
                "no bootstrap peer: give --bootstrap-peer, or --first to start a new overlay");
  }

  pe::runtime_config rc;
  rc.core = pe::core_config_of(*setup);
  rc.core.role = first ? pe::node_role::first_peer : pe::node_role::joining_peer;
  rc.core.listen_address = *listen;
  rc.core.bootstrap = bootstrap;
  rc.core.partition_check_interval = std::chrono::seconds(partition_check_s);
  rc.core.request_timeout = std::chrono::milliseconds(request_timeout_ms);
  rc.core.link_linger = std::chrono::milliseconds(link_linger_ms);
  rc.heap_trim_delay = std::chrono::milliseconds(heap_trim_delay_ms);
  rc.listen = to_endpoint(*listen);
  if (r.count("data-dir")) rc.data_dir = fs::path(r["data-dir"].as<std::string>());
  rc.accept_store_change = r.count("accept-store-change") > 0;
  rc.link.limits = rc.core.limits;
  rc.link.idle_timeout = std::nullopt;  // the core watches its neighbors itself
  rc.client_messages_per_second = static_cast<std::uint32_t>(client_rate);
  rc.client_burst = static_cast<std::uint32_t>(client_burst);
  rc.core.max_clients = static_cast<std::size_t>(max_clients);
  rc.core.max_links = static_cast<std::size_t>(max_links);
  rc.link.rate.misbehaviour_limit = static_cast<std::uint32_t>(link_misbehaviour);
  rc.link.log = [](std::string_view text) { log_line(pe::log_level::warn, text); };
  rc.kinds = pe::kind_rules_of(config);
  rc.log = log_line;
  rc.configuration_document = setup->document;
  // A newer signed document offered in a ConfigUpdate replaces the file: a restart starts from it.
  rc.accept_configuration = [&setup](p2psip::protocol::byte_view offered) {
    auto taken = setup->take_update(offered, true);
    if (!taken && taken.error().code == p2psip::config::config_errc::write_failed) {
      // A read-only --config (systemd's ProtectSystem=strict over /etc/p2psip): the overlay
      // still moves on; a restart starts from the file's older document, and its first request
      // to a neighbour brings it the new one again (Error_Config_Too_Old, then a ConfigUpdate).
      const auto why = taken.error().message;
      taken = setup->take_update(offered, false);
      if (taken) {
        log_line(pe::log_level::warn, "configuration sequence " + std::to_string(*taken) +
                                          " taken from a ConfigUpdate, but not written: " + why);
        return taken;
      }
    }
    if (taken) {
      log_line(pe::log_level::info,
               "configuration sequence " + std::to_string(*taken) + " taken from a ConfigUpdate");
    }
    return taken;
  };

  // From here on log lines go where the options say; a start that fails still says why on
  // standard error (fail()), where whoever started the peer looks first.
  if (r.count("log-file")) {
    auto opened = pd::log_output::open_file(r["log-file"].as<std::string>());
    if (!opened) return fail(exit_error, "--log-file " + opened.error());
    g_log = std::move(*opened);
  } else {
    g_log = pd::log_output(*log_target);
  }
  const auto [files_level, files_text] = raise_open_files_limit();
  asio::io_context io(1);
  // Caught before anything starts: a SIGHUP during the start waits instead of killing us.
  pd::daemon_signals signals(io);
  pd::service_notifier notifier([](std::string_view text) { log_line(pe::log_level::warn, text); });
  std::unique_ptr<pe::sip_front_end> sip;
  if (!sip_listen.empty()) {
    pe::sip_front_end_config sc;
    sc.listen = sip_listen;
    if (r.count("sip-users")) sc.users_file = fs::path(r["sip-users"].as<std::string>());
    sc.mode = sip_mode_text == "redirect" ? pe::sip_mode::redirect : pe::sip_mode::proxy;
    sc.digest_algorithms = sip_digest;
    sc.t1 = std::chrono::milliseconds(sip_t1_ms);
    const long source_rate = r["sip-source-rate"].as<long>();
    const long source_burst = r["sip-source-burst"].as<long>();
    if (source_rate < 0 || source_rate > max_u32 || source_burst < 1 || source_burst > max_u32) {
      return fail(exit_usage, "--sip-source-rate must be 0 or more, --sip-source-burst 1 or more");
    }
    sc.source_limits.messages_per_second = static_cast<std::uint32_t>(source_rate);
    sc.source_limits.burst = static_cast<std::uint32_t>(source_burst);
    if (r.count("sip-gateway")) {
      const bool has_kind = std::any_of(
          config.kinds.begin(), config.kinds.end(),
          [](const auto& k) { return k.id == p2psip::protocol::kinds::p2psip_sip_gateway; });
      if (!has_kind) {
        return fail(exit_error, config_file +
                                    " has no p2psip-sip-gateway kind (id 4026532098): a document "
                                    "from p2psip-admin init has it");
      }
      sc.gateway = r["sip-gateway"].as<std::string>();
      sc.gateway_certificate = r["sip-gateway-cert"].as<std::string>();
      sc.gateway_key = r["sip-gateway-key"].as<std::string>();
      if (r.count("sip-trunk-ca")) sc.trunk_ca = r["sip-trunk-ca"].as<std::string>();
      if (r.count("sip-trunk-cert")) {
        sc.trunk_certificate = r["sip-trunk-cert"].as<std::string>();
        sc.trunk_key = r["sip-trunk-key"].as<std::string>();
      }
    }
    sc.overlay = {config.instance_name, config.node_id_length};
    sc.trust = setup->trust.get();
    sc.tls = setup->tls;
    // AppAttach SIP connections on the overlay listener's address, any free port.
    sc.app_listen = asio::ip::tcp::endpoint(rc.listen.address(), 0);
    sc.log = log_line;
    auto made = pe::sip_front_end::create(io, std::move(sc));
    if (!made) {
      // The trunk's TLS files (CA bundle, client certificate and key) are credentials files.
      const bool credentials =
          made.error().code == p2psip::transport::make_error_code(
                                   p2psip::transport::transport_errc::invalid_credentials);
      return fail(credentials ? exit_config : exit_error, made.error().message);
    }
    sip = std::move(*made);
    rc.applications.push_back(sip->application());
  }
  // The status line when the ring around us changes (the runtime says when it may have; within
  // 200 ms, so that a join's burst of changes is one line), and every --status-interval anyway:
  // no polling, so an idle peer sleeps until the next line is due.
  const pe::peer_runtime* running = nullptr;  // set below; the reporter runs only after start()
  pd::status_reporter reporter(
      io, std::chrono::milliseconds(status_ms),
      std::min(std::chrono::milliseconds(200), std::chrono::milliseconds(status_ms)),
      {.status =
           [&running, &sip] {
             auto s = running->status();
             auto line = status_text(s, sip.get());
             s.links = 0;  // link and client churn alone is not worth a line
             s.clients = 0;
             s.stored_values = 0;
             return pd::status_reporter::texts{status_text(s, nullptr), std::move(line)};
           },
       .emit =
           [&running, &notifier](const std::string& line) {
             log_line(pe::log_level::info, line);
             if (!notifier.ready_sent() && running->core().joined()) {
               notifier.ready(line);
             } else {
               notifier.status(line);
             }
           }});
  rc.ring_changed = [&reporter] { reporter.changed(); };
  auto created =
      pe::peer_runtime::create(io, std::move(rc), setup->tls, setup->creds, *setup->trust);
  if (!created) {
    std::string message = created.error().message;
    if (created.error().code == pe::storage_errc::store_changed) {
      message += " (to start with the store as it is, add --accept-store-change)";
    }
    return fail(exit_error, message);
  }
  auto& runtime = **created;
  running = &runtime;
  // The admin server first: a port it cannot have stops the peer before it joins. It reads the
  // runtime only from snapshots taken on the I/O thread, once io.run() turns.
  // A request waits at most 2 s for the I/O thread's snapshot (then 503).
  pe::io_thread_snapshot_source admin_snapshots(io, runtime, sip.get(),
                                                std::chrono::milliseconds(2000));
  std::unique_ptr<pe::admin::server> admin;
  if (admin_module) {
    auto started = admin_module->start({.listen = admin_listen->to_string()}, admin_snapshots);
    if (!started) return fail(exit_error, started.error().message);
    admin = std::move(*started);
    g_admin = admin.get();
    log_line(pe::log_level::info,
             "admin HTTP server at " + admin->bound_address() + " (/, /status.json, /metrics)");
  }
  // Before `admin` goes: no log line may reach it once it stops.
  struct admin_tap_reset {
    ~admin_tap_reset() { g_admin = nullptr; }
  } admin_tap_reset_at_exit;
  if (auto started = runtime.start(); !started) return fail(exit_error, started.error().message);
  if (sip) {
    sip->attach(runtime);
    if (auto started = sip->start(); !started) return fail(exit_error, started.error().message);
  }
  log_line(files_level, files_text);

  asio::steady_timer watchdog(io);
  auto current_status = [&] { return status_text(runtime.status(), sip.get()); };
  auto on_reload = [&] {
    log_line(pe::log_level::info, std::string("signal SIGHUP: ") +
                                      (g_log.file().empty() ? "" : "reopening the log file, ") +
                                      "re-reading " + setup->config_file.string());
    if (notifier.ready_sent()) notifier.reloading(current_status());
    if (auto reopened = g_log.reopen(); !reopened) {
      log_line(pe::log_level::warn,
               "log file not reopened, still writing the old one: " + reopened.error());
    }
    const auto report = pd::reload_configuration(*setup, runtime);
    log_line(report.level, report.text);
    if (notifier.ready_sent()) notifier.ready(current_status());
  };
  auto on_leave = [&](std::string_view signal_name) {
    log_line(pe::log_level::info, "signal " + std::string(signal_name) + ": leaving");
    reporter.stop();
    notifier.stopping(current_status());
    // Bounded: the runtime's own waits are bounded; the watchdog bounds everything else.
    watchdog.expires_after(std::chrono::seconds(10));
    watchdog.async_wait([&](const std::error_code& wec) {
      if (wec) return;
      log_line(pe::log_level::warn, "shutdown took too long: stopping now");
      io.stop();
    });
    asio::co_spawn(io, stop_all(sip.get(), runtime), [&](const std::exception_ptr&) {
      watchdog.cancel();
      io.stop();
    });
  };
  signals.watch(
      on_reload, [&] { log_line(pe::log_level::info, current_status()); }, on_leave);
  reporter.start();
  if (const auto interval = notifier.watchdog_interval()) {
    asio::co_spawn(io, watchdog_loop(runtime, notifier, *interval),
                   [](const std::exception_ptr& e) {
                     if (e) log_line(pe::log_level::error, "watchdog loop: unexpected exception");
                   });
  }
  try {
    io.run();
  } catch (const std::exception& e) {
    log_line(pe::log_level::error, std::string("unexpected exception: ") + e.what());
    return exit_error;
  }
  log_line(pe::log_level::info, "exit");
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything touches Botan's secure memory (it makes its pool on first use). Botan locks
  // its pool page by page, each between two guard pages: its default 512 KiB is 1.5 MiB of
  // resident memory in every peer, a third of an idle peer's own memory (docs/benchmarks.md). 64
  // KiB keeps the node's keys and the first links' TLS secrets locked; further secure_vectors
  // come from the heap, scrubbed on release all the same. An operator's setting wins.
  ::setenv("BOTAN_MLOCK_POOL_SIZE", "64", 0);
  // Busy links keep their AES-GCM state between records: a put through five peers crosses about
  // seven links, and making the ciphers again costs each hop about 6 us twice. 512 ciphers (a
  // read and a write side each for 256 links, about 1.2 MiB at most) covers the ring links and
  // the active clients; thousands of idle clients' links past it hold none.
  p2psip::transport::set_cipher_budget(512);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return fail(exit_error, std::string("unexpected exception: ") + e.what());
  }
}
