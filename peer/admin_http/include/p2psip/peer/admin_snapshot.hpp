#pragma once
// What the admin HTTP server shows, taken in one piece on the peer's I/O thread (the only thread
// that may read the runtime), then rendered on an HTTP thread: Prometheus text (/metrics,
// families built with prometheus-cpp), JSON (/status.json) and the status page (/), whose ring is
// drawn server-side as inline SVG (no script, nothing fetched from elsewhere).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "p2psip/peer/peer_runtime.hpp"
#include "p2psip/peer/sip_front_end.hpp"

namespace p2psip::peer {

/// A WARN or ERROR line of the peer's log, kept for the status page.
struct admin_log_entry {
  std::string time;  ///< UTC, as the log line has it
  std::string level;
  std::string text;
};

struct admin_snapshot {
  runtime_status status;
  std::string address;  ///< where the peer's listener is bound, IP:PORT
  std::uint64_t uptime_s = 0;
  runtime_counters counters;
  std::vector<link_row> links;
  std::optional<sip_front_end_status> sip;
  /// Filled by the server from its own buffer (not the I/O thread's to give).
  std::vector<admin_log_entry> warnings;
};

/// The snapshot of `runtime` (and `sip`, when serving SIP). Call on the I/O thread.
admin_snapshot take_admin_snapshot(const peer_runtime& runtime, const sip_front_end* sip);

/// Prometheus text exposition format 0.0.4 of every metric family (prometheus-cpp's
/// TextSerializer over a registry filled from the snapshot).
std::string render_metrics(const admin_snapshot& s);
/// The snapshot as one JSON document (docs/admin-http.md lists the fields).
std::string render_status_json(const admin_snapshot& s);
/// A self-contained HTML page: the ring as SVG, links, store, SIP, recent warnings.
std::string render_status_page(const admin_snapshot& s);

/// Where a Node-ID sits on the ring, as a fraction of a full turn from zero (its leading 8
/// bytes over 2^64).
double ring_fraction(const protocol::node_id& id);

}  // namespace p2psip::peer
