#include "p2psip/peer/admin_snapshot.hpp"

#include <string>
#include <utility>
#include <vector>

#include "p2psip/crypto/signatures.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/message.hpp"

namespace p2psip::peer {

namespace pr = protocol;

namespace {

std::string endpoint_text(const asio::ip::tcp::endpoint& e) {
  const auto a = e.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

std::vector<std::string> hex_ids(const std::vector<pr::node_id>& ids) {
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (const auto& id : ids) out.push_back(id.hex());
  return out;
}

// The traffic maps count codes outside the registries under other_code, so that a peer sending
// random codes cannot grow them: the label "other".
std::string code_label(std::uint16_t code) {
  if (code == node::transport_traffic::other_code) return "other";
  return std::string(pr::message_code_name(code));
}

std::string error_label(std::uint16_t code) {
  if (code == node::transport_traffic::other_code) return "other";
  return std::string(pr::reload_error_name(code));
}

template <class Label>
std::vector<admin::labelled_count> labelled(const std::map<std::uint16_t, std::uint64_t>& by_code,
                                            Label label) {
  std::vector<admin::labelled_count> out;
  out.reserve(by_code.size());
  for (const auto& [code, n] : by_code) out.push_back({label(code), n});
  return out;
}

}  // namespace

admin::snapshot take_admin_snapshot(const peer_runtime& runtime, const sip_front_end* sip) {
  const auto status = runtime.status();
  const auto c = runtime.counters();
  const auto& t = c.traffic;
  admin::snapshot s;
  s.node_id = status.self.hex();
  s.address = endpoint_text(runtime.local_endpoint());
  s.uptime_s = runtime.uptime_s();
  s.joined = status.joined;
  s.predecessors = hex_ids(status.predecessors);
  s.successors = hex_ids(status.successors);
  s.routing_table = hex_ids(status.routing_table);
  s.link_count = status.links;
  s.client_count = status.clients;
  s.outbox = status.outbox;
  s.dropped = status.dropped;

  s.received_by_code = labelled(t.received_by_code, code_label);
  s.sent_by_code = labelled(t.sent_by_code, code_label);
  s.errors_sent_by_code = labelled(t.errors_sent_by_code, error_label);
  s.errors_received_by_code = labelled(t.errors_received_by_code, error_label);
  s.dropped_by_reason = {
      {"undeliverable", c.core.dropped},
      {"malformed", c.core.malformed},
      {"backlog_full", c.driver.dropped_backlog_full},
      {"too_large", c.driver.dropped_too_large},
      {"link_closed", c.driver.dropped_link_closed},
      {"pending_table_full", c.core.refused_pending_full},
      {"bulk_store_given_up", c.core.bulk_stores_given_up},
  };
  s.links_closed_by_reason = {
      {"pruned", c.core.links_pruned},
      {"evicted", c.core.links_evicted},
      {"client_evicted", c.core.clients_evicted},
  };
  s.latency_bounds_seconds.assign(node::latency_histogram::bounds_seconds.begin(),
                                  node::latency_histogram::bounds_seconds.end());
  for (const auto& [code, h] : t.request_latency) {
    s.request_latency.push_back({code_label(code),
                                 std::vector<std::uint64_t>(h.counts.begin(), h.counts.end()),
                                 h.sum_seconds});
  }
  s.forwarded = c.core.forwarded;
  s.delivered = c.core.delivered_locally;
  s.errors_sent = c.core.errors_sent;
  s.timeouts = c.core.timeouts;
  s.replica_stores = c.core.replica_stores;
  s.handovers = c.core.handovers;
  s.bulk_stores_resent = c.core.bulk_stores_resent;
  s.ranges_dropped = c.core.ranges_dropped;
  s.repairs_requested = c.core.repairs_requested;
  s.values_repaired = c.core.values_repaired;
  s.partition_checks = c.core.partition_checks;
  s.partitions_detected = c.core.partitions_detected;
  s.stored_values = c.store.values;
  s.stored_bytes = c.store.bytes;
  s.stored_resources = c.store.resources;
  s.quarantined = c.store.quarantined;
  const auto signatures = crypto::signature_totals();
  s.signatures_made = signatures.made;
  s.signatures_verified = signatures.verified;

  for (const auto& l : runtime.link_rows()) {
    s.links.push_back(
        {l.link, l.remote.hex(), l.address ? endpoint_text(*l.address) : "", l.peer, l.inbound});
  }
  if (sip) {
    const auto f = sip->status();
    s.sip = admin::sip_counts{
        .registrations = f.usage.registrations,
        .bindings = f.usage.bindings,
        .transactions = f.usage.transactions,
        .flows = f.flows,
        .proxied = f.usage.proxied,
        .registers_stored = f.usage.registers_stored,
        .auth_failures = f.usage.auth_failures,
        .overlay_failures = f.usage.overlay_failures,
    };
  }
  return s;
}

}  // namespace p2psip::peer
