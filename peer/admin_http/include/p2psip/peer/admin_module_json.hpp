#pragma once
// The snapshot and the server's configuration as JSON text: what crosses the C boundary between
// p2psip-peer and its admin HTTP module (admin_module.hpp). Both sides compile these functions,
// each with its own standard library; only the text crosses. Every field is written; a field
// missing on reading keeps its default. The JSON holds every field of admin::snapshot and is
// internal (the public /status.json is rendered by the module, admin_pages.cpp).

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "p2psip/peer/admin_module.hpp"

namespace p2psip::peer::admin {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(log_entry, time, level, text)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(labelled_count, label, value)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(latency_buckets, code, counts, sum_seconds)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(link_entry, link, node_id, address, peer, inbound)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(sip_counts, registrations, bindings, transactions,
                                                flows, proxied, registers_stored, auth_failures,
                                                overlay_failures)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(server_config, listen, threads, recent_warnings)

// Every field of snapshot but the optional `sip` (written only when present). One per line, so
// that clang-format leaves the list alone.
// clang-format off
#define P2PSIP_ADMIN_SNAPSHOT_FIELDS(X) \
  X(node_id) \
  X(address) \
  X(uptime_s) \
  X(joined) \
  X(predecessors) \
  X(successors) \
  X(routing_table) \
  X(link_count) \
  X(client_count) \
  X(outbox) \
  X(dropped) \
  X(received_by_code) \
  X(sent_by_code) \
  X(errors_sent_by_code) \
  X(errors_received_by_code) \
  X(dropped_by_reason) \
  X(links_closed_by_reason) \
  X(latency_bounds_seconds) \
  X(request_latency) \
  X(forwarded) \
  X(delivered) \
  X(errors_sent) \
  X(timeouts) \
  X(replica_stores) \
  X(handovers) \
  X(bulk_stores_resent) \
  X(ranges_dropped) \
  X(repairs_requested) \
  X(values_repaired) \
  X(partition_checks) \
  X(partitions_detected) \
  X(stored_values) \
  X(stored_bytes) \
  X(stored_resources) \
  X(quarantined) \
  X(signatures_made) \
  X(signatures_verified) \
  X(links) \
  X(warnings)
// clang-format on

inline void to_json(nlohmann::json& j, const snapshot& s) {
#define P2PSIP_ADMIN_WRITE(field) j[#field] = s.field;
  P2PSIP_ADMIN_SNAPSHOT_FIELDS(P2PSIP_ADMIN_WRITE)
#undef P2PSIP_ADMIN_WRITE
  if (s.sip) j["sip"] = *s.sip;
}

inline void from_json(const nlohmann::json& j, snapshot& s) {
#define P2PSIP_ADMIN_READ(field) \
  if (const auto it = j.find(#field); it != j.end()) it->get_to(s.field);
  P2PSIP_ADMIN_SNAPSHOT_FIELDS(P2PSIP_ADMIN_READ)
#undef P2PSIP_ADMIN_READ
  if (const auto it = j.find("sip"); it != j.end()) s.sip = it->get<sip_counts>();
}

#undef P2PSIP_ADMIN_SNAPSHOT_FIELDS

}  // namespace p2psip::peer::admin
