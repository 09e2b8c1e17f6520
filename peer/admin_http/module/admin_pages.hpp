#pragma once
// What the admin HTTP module serves, rendered from a snapshot: Prometheus text (/metrics,
// families built with prometheus-cpp), JSON (/status.json) and the status page (/), whose ring is
// drawn server-side as inline SVG (no script, nothing fetched from elsewhere).

#include <string>
#include <string_view>

#include "p2psip/peer/admin_module.hpp"

namespace p2psip::peer::admin {

/// Prometheus text exposition format 0.0.4 of every metric family (prometheus-cpp's
/// TextSerializer over a registry filled from the snapshot).
std::string render_metrics(const snapshot& s);
/// The snapshot as one JSON document (docs/admin-http.md lists the fields).
std::string render_status_json(const snapshot& s);
/// A self-contained HTML page: the ring as SVG, links, store, SIP, recent warnings.
std::string render_status_page(const snapshot& s);

/// Where a Node-ID (hex) sits on the ring, as a fraction of a full turn from zero: its leading
/// 8 bytes over 2^64. Characters that are not hex digits count as 0.
double ring_fraction(std::string_view node_id_hex);

}  // namespace p2psip::peer::admin
