#pragma once
// The boundary between p2psip-peer and its admin HTTP module, p2psip-admin-http.so, which the
// peer opens (dlopen) only when asked for --admin-listen: civetweb, prometheus-cpp and the
// rendering of /metrics, /status.json and the status page are then loaded into that peer alone,
// not into every idle peer (issue 16: RSS per idle peer).
//
// The boundary itself is C: plain functions, C strings from malloc, and the snapshot as JSON
// text (admin_module_json.hpp). The peer links the C++ standard library statically (issue 16:
// it maps only the parts it uses) and the module uses the shared one, so no standard library
// object crosses: each side has its own. The C++ types below are each side's view of the same
// things: the snapshot (plain values: Node-IDs in hex, message codes and Error-Codes by name, so
// that the module links no p2psip library), the peer's snapshot_source and the module's server.
// The module's one exported symbol is an extern "C" function (module_start_symbol) that checks
// the interface version the peer was built with before it touches anything else.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace p2psip::peer::admin {

/// Bumped whenever a type in this file or admin_module_json.hpp changes: a module of another
/// version refuses to start.
inline constexpr std::uint32_t module_interface_version = 2;
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
  std::uint64_t signatures_made = 0;      ///< RELOAD signature values made (messages, values)
  std::uint64_t signatures_verified = 0;  ///< RELOAD signature values checked, failures too

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

/// A copy of `text` from malloc, NUL-terminated, for the other side to free; null when out of
/// memory.
inline char* malloc_copy(std::string_view text) noexcept {
  auto* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (!out) return nullptr;
  std::memcpy(out, text.data(), text.size());
  out[text.size()] = '\0';
  return out;
}

/// The text of a string the other side made with malloc_copy, freed; empty for null.
inline std::string take_malloced(char* text) {
  if (!text) return {};
  std::string out;
  try {
    out = text;
  } catch (...) {
    std::free(text);
    throw;
  }
  std::free(text);
  return out;
}

}  // namespace p2psip::peer::admin

extern "C" {

/// The peer's snapshot source as the module holds it.
struct p2psip_admin_source {
  void* context;
  /// A snapshot (admin_module_json.hpp) from malloc, NUL-terminated, which the caller frees; null
  /// when none came in time. Called from the module's HTTP threads; never throws.
  char* (*take)(void* context);
};

/// A server of the module; opaque to the peer.
struct p2psip_admin_server;

/// What the module offers, for the interface version the peer asked for.
struct p2psip_admin_module {
  /// The server listening as `config_json` (a server_config) says, serving `source` (whose
  /// context must outlive it); or null with `*error` (from malloc; the caller frees) naming the
  /// address and civetweb's reason.
  p2psip_admin_server* (*start)(const char* config_json, p2psip_admin_source source, char** error);
  /// "IP:PORT" as bound, from malloc (the caller frees).
  char* (*bound_address)(const p2psip_admin_server* server);
  /// Keeps a log line for the status page (the peer passes WARN and ERROR lines). Any thread.
  void (*note_log)(p2psip_admin_server* server, const char* level, std::size_t level_size,
                   const char* time, std::size_t time_size, const char* text,
                   std::size_t text_size);
  /// Stops listening and waits for the requests in progress; no call into the source follows.
  void (*stop)(p2psip_admin_server* server);
};

}  // extern "C"

namespace p2psip::peer::admin {

/// The module's entry point (module_start_symbol): its functions when it implements
/// `interface_version`, else null with `*error` (from malloc; the caller frees) saying which
/// version it has. Never throws.
using module_start_function = const p2psip_admin_module* (*)(std::uint32_t interface_version,
                                                             char** error);

}  // namespace p2psip::peer::admin
