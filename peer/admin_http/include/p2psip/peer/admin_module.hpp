#pragma once
// The boundary between p2psip-peer and its admin HTTP module, p2psip-admin-http.so, which the
// peer opens (dlopen) only when asked for --admin-listen: civetweb, prometheus-cpp and the
// rendering of /metrics, /status.json and the status page are then loaded into that peer alone,
// not into every idle peer (issue 16: RSS per idle peer).
//
// Both sides are built from one source tree by one compiler and share the process's libstdc++
// (the peer keeps it shared for this reason), so the interface may use standard library types;
// it uses nothing else. The snapshot is plain values (Node-IDs in hex, message codes and
// Error-Codes by name), so the module links no p2psip library, and the only call from the module
// into the peer is snapshot_source::take, through its vtable. The module's one exported symbol
// is an extern "C" function (module_start) that checks the interface version the peer was built
// with before it touches anything else.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace p2psip::peer::admin {

/// Bumped whenever a type in this file changes: a module of another version refuses to start.
inline constexpr std::uint32_t module_interface_version = 1;
/// The module's file name, beside the program in a build tree, under LIBDIR/p2psip installed.
inline constexpr char module_file_name[] = "p2psip-admin-http.so";
/// The name of the module's entry point (module_start_function).
inline constexpr char module_start_symbol[] = "p2psip_admin_http_module_start";

/// A WARN or ERROR line of the peer's log, kept for the status page.
struct log_entry {
  std::string time;  ///< UTC, as the log line has it
  std::string level;
  std::string text;
};

/// A counter of one label value ("store_req", "Error_Not_Found", "backlog_full", ...).
struct labelled_count {
  std::string label;
  std::uint64_t value = 0;
};

/// Request latencies of one request code: observations per bucket (not cumulative; the last
/// bucket takes everything above the last bound) and their sum.
struct latency_buckets {
  std::string code;
  std::vector<std::uint64_t> counts;
  double sum_seconds = 0;
};

/// One link of the peer.
struct link_entry {
  std::uint64_t link = 0;
  std::string node_id;  ///< hex, from its certificate
  std::string address;  ///< the remote end of the socket, IP:PORT; empty when unknown
  bool peer = false;    ///< it showed itself a peer; else a client's
  bool inbound = true;  ///< the remote opened it
};

/// The SIP front end's state (with --sip-listen only).
struct sip_counts {
  std::uint64_t registrations = 0;
  std::uint64_t bindings = 0;
  std::uint64_t transactions = 0;
  std::uint64_t flows = 0;
  std::uint64_t proxied = 0;
  std::uint64_t registers_stored = 0;
  std::uint64_t auth_failures = 0;
  std::uint64_t overlay_failures = 0;
};

/// What the pages show, copied in one piece on the peer's I/O thread (the only thread that may
/// read the runtime; docs/admin-http.md says what each field means on the pages).
struct snapshot {
  std::string node_id;  ///< hex
  std::string address;  ///< where the peer's listener is bound, IP:PORT
  std::uint64_t uptime_s = 0;
  bool joined = false;
  std::vector<std::string> predecessors;   ///< hex, nearest first
  std::vector<std::string> successors;     ///< hex, nearest first
  std::vector<std::string> routing_table;  ///< hex, every peer in it
  std::uint64_t link_count = 0;
  std::uint64_t client_count = 0;
  std::uint64_t outbox = 0;   ///< replica and hand-over Stores waiting
  std::uint64_t dropped = 0;  ///< messages of ours dropped, for any reason

  std::vector<labelled_count> received_by_code;
  std::vector<labelled_count> sent_by_code;
  std::vector<labelled_count> errors_sent_by_code;
  std::vector<labelled_count> errors_received_by_code;
  std::vector<labelled_count> dropped_by_reason;
  std::vector<labelled_count> links_closed_by_reason;
  std::vector<double> latency_bounds_seconds;  ///< upper bounds of latency_buckets::counts
  std::vector<latency_buckets> request_latency;
  std::uint64_t forwarded = 0;
  std::uint64_t delivered = 0;
  std::uint64_t errors_sent = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t replica_stores = 0;
  std::uint64_t handovers = 0;
  std::uint64_t bulk_stores_resent = 0;
  std::uint64_t ranges_dropped = 0;
  std::uint64_t repairs_requested = 0;
  std::uint64_t values_repaired = 0;
  std::uint64_t partition_checks = 0;
  std::uint64_t partitions_detected = 0;
  std::uint64_t stored_values = 0;
  std::uint64_t stored_bytes = 0;
  std::uint64_t stored_resources = 0;
  std::uint64_t quarantined = 0;

  std::vector<link_entry> links;
  std::optional<sip_counts> sip;
  /// Filled by the module from its own buffer (note_log), not by the peer.
  std::vector<log_entry> warnings;
};

/// The peer's side: hands the module a snapshot. Implemented in the peer, called from the
/// module's HTTP threads.
class snapshot_source {
 public:
  virtual ~snapshot_source() = default;
  /// A snapshot taken on the peer's I/O thread, or nullopt when none came in time (the module
  /// then answers 503). Never throws.
  virtual std::optional<snapshot> take() noexcept = 0;
};

struct server_config {
  /// Where to listen, "IP:PORT" or "[IPv6]:PORT" (port 0: any free port).
  std::string listen;
  /// Worker threads (each serves one connection at a time).
  std::size_t threads = 2;
  /// WARN and ERROR lines kept for the status page, newest last.
  std::size_t recent_warnings = 20;
};

/// The module's side: the HTTP server, listening from the moment it is returned. Destroying it
/// stops listening and waits for the requests in progress (each bounded by the snapshot
/// source's timeout); no call into the snapshot source follows.
class server {
 public:
  virtual ~server() = default;
  /// "IP:PORT" as bound.
  virtual std::string bound_address() const = 0;
  /// Keeps a log line for the status page (the peer passes WARN and ERROR lines). Any thread.
  virtual void note_log(std::string_view level, std::string_view time, std::string_view text) = 0;
};

/// The module's entry point (module_start_symbol): the server listening at `config.listen`,
/// serving snapshots of `source` (which must outlive it); or null with `error` saying why (the
/// address and civetweb's reason, or a module of another interface version). Never throws.
using module_start_function = server* (*)(std::uint32_t interface_version,
                                          const server_config& config, snapshot_source& source,
                                          std::string& error) noexcept;

}  // namespace p2psip::peer::admin
