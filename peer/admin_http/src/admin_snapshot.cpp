#include "p2psip/peer/admin_snapshot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <nlohmann/json.hpp>

#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/message.hpp"

namespace p2psip::peer {

namespace pr = protocol;
using json = nlohmann::json;

namespace {

std::string endpoint_text(const asio::ip::tcp::endpoint& e) {
  const auto a = e.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

/// Routing-table peers that are neither predecessors nor successors: the fingers.
std::vector<pr::node_id> fingers_of(const runtime_status& s) {
  std::set<pr::node_id> neighbors(s.predecessors.begin(), s.predecessors.end());
  neighbors.insert(s.successors.begin(), s.successors.end());
  std::vector<pr::node_id> out;
  for (const auto& id : s.routing_table) {
    if (!neighbors.count(id)) out.push_back(id);
  }
  return out;
}

std::string code_label(std::uint16_t code) {
  if (code == node::transport_traffic::other_code) return "other";
  return std::string(pr::message_code_name(code));
}

std::string error_label(std::uint16_t code) {
  if (code == node::transport_traffic::other_code) return "other";
  return std::string(pr::reload_error_name(code));
}

std::string html_escape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (const char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fixed(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string short_id(const pr::node_id& id) {
  return id.hex().substr(0, 8);
}

std::string duration_text(std::uint64_t s) {
  const auto d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
  std::string out;
  if (d) out += std::to_string(d) + "d ";
  if (d || h) out += std::to_string(h) + "h ";
  if (d || h || m) out += std::to_string(m) + "m ";
  return out + std::to_string(sec) + "s";
}

// ---- Prometheus families --------------------------------------------------------------------

class families {
 public:
  explicit families(prometheus::Registry& r) : r_(r) {}

  void counter(const std::string& name, const std::string& help, double value,
               const prometheus::Labels& labels = {}) {
    auto& f = prometheus::BuildCounter().Name(name).Help(help).Register(r_);
    f.Add(labels).Increment(value);
  }
  template <class Map, class Label>
  void counters_by(const std::string& name, const std::string& help, const std::string& key,
                   const Map& by, Label label) {
    auto& f = prometheus::BuildCounter().Name(name).Help(help).Register(r_);
    for (const auto& [k, n] : by) f.Add({{key, label(k)}}).Increment(static_cast<double>(n));
  }
  void gauge(const std::string& name, const std::string& help, double value,
             const prometheus::Labels& labels = {}) {
    auto& f = prometheus::BuildGauge().Name(name).Help(help).Register(r_);
    f.Add(labels).Set(value);
  }
  void histograms(const std::string& name, const std::string& help,
                  const std::map<std::uint16_t, node::latency_histogram>& by_code) {
    auto& f = prometheus::BuildHistogram().Name(name).Help(help).Register(r_);
    const prometheus::Histogram::BucketBoundaries bounds(
        node::latency_histogram::bounds_seconds.begin(),
        node::latency_histogram::bounds_seconds.end());
    for (const auto& [code, h] : by_code) {
      std::vector<double> counts(h.counts.begin(), h.counts.end());
      f.Add({{"code", code_label(code)}}, bounds).ObserveMultiple(counts, h.sum_seconds);
    }
  }

 private:
  prometheus::Registry& r_;
};

}  // namespace

double ring_fraction(const pr::node_id& id) {
  double f = 0;
  double scale = 1.0 / 256.0;
  const auto v = id.view();
  for (std::size_t i = 0; i < v.size() && i < 8; ++i) {
    f += v[i] * scale;
    scale /= 256.0;
  }
  return f;
}

admin_snapshot take_admin_snapshot(const peer_runtime& runtime, const sip_front_end* sip) {
  admin_snapshot s;
  s.status = runtime.status();
  s.address = endpoint_text(runtime.local_endpoint());
  s.uptime_s = runtime.uptime_s();
  s.counters = runtime.counters();
  s.links = runtime.link_rows();
  if (sip) s.sip = sip->status();
  return s;
}

std::string render_metrics(const admin_snapshot& s) {
  // A registry per scrape, filled from the snapshot: nothing is shared between HTTP threads,
  // and counters are exactly the peer's own (which only grow, as Prometheus expects).
  prometheus::Registry registry;
  families f(registry);
  const auto& c = s.counters;
  const auto& t = c.traffic;
  const auto by_code = [](std::uint16_t code) { return code_label(code); };
  const auto by_error = [](std::uint16_t code) { return error_label(code); };
  f.counters_by("p2psip_messages_received_total",
                "RELOAD messages decoded from links, by message code", "code", t.received_by_code,
                by_code);
  f.counters_by("p2psip_messages_sent_total",
                "RELOAD messages sent on links (originated, answered, forwarded), by message code",
                "code", t.sent_by_code, by_code);
  f.counters_by("p2psip_errors_sent_total", "Error responses this peer sent, by Error-Code", "code",
                t.errors_sent_by_code, by_error);
  f.counters_by("p2psip_errors_received_total",
                "Error responses to this peer's own requests, by Error-Code", "code",
                t.errors_received_by_code, by_error);
  f.counter("p2psip_messages_forwarded_total", "messages passed on towards other nodes",
            static_cast<double>(c.core.forwarded));
  f.counter("p2psip_messages_delivered_total", "messages addressed to this peer",
            static_cast<double>(c.core.delivered_locally));
  f.counter("p2psip_request_timeouts_total", "requests of this peer nobody answered in time",
            static_cast<double>(c.core.timeouts));
  {
    const std::vector<std::pair<std::string, std::uint64_t>> dropped{
        {"undeliverable", c.core.dropped},
        {"malformed", c.core.malformed},
        {"backlog_full", c.driver.dropped_backlog_full},
        {"too_large", c.driver.dropped_too_large},
        {"link_closed", c.driver.dropped_link_closed},
        {"pending_table_full", c.core.refused_pending_full},
        {"bulk_store_given_up", c.core.bulk_stores_given_up},
    };
    f.counters_by("p2psip_messages_dropped_total", "messages dropped, by reason", "reason", dropped,
                  [](const std::string& r) { return r; });
  }
  f.histograms("p2psip_request_duration_seconds",
               "requests of this peer, from sending to their answer, by request code",
               t.request_latency);
  f.gauge("p2psip_links", "open links (peers and clients)", static_cast<double>(s.status.links));
  f.gauge("p2psip_clients", "links of clients (nodes that never joined)",
          static_cast<double>(s.status.clients));
  f.gauge("p2psip_routing_table_peers", "peers in the routing table",
          static_cast<double>(s.status.routing_table.size()));
  f.gauge("p2psip_joined", "1 once this peer has joined the ring", s.status.joined ? 1.0 : 0.0);
  f.gauge("p2psip_uptime_seconds", "seconds since the peer started",
          static_cast<double>(s.uptime_s));
  f.gauge("p2psip_stored_values", "values stored (tombstones included)",
          static_cast<double>(c.store.values));
  f.gauge("p2psip_stored_bytes", "bytes of the values stored (StoredData encoding)",
          static_cast<double>(c.store.bytes));
  f.gauge("p2psip_stored_resources", "Resource-IDs with at least one value",
          static_cast<double>(c.store.resources));
  f.counter("p2psip_values_quarantined_total", "stored values that failed verification",
            static_cast<double>(c.store.quarantined));
  f.gauge("p2psip_replication_outbox", "replica and hand-over Stores waiting to go out",
          static_cast<double>(s.status.outbox));
  f.counter("p2psip_replica_stores_total", "replica StoreReqs sent to successors",
            static_cast<double>(c.core.replica_stores));
  f.counter("p2psip_handovers_total", "StoreReqs sent because this peer's range shrank",
            static_cast<double>(c.core.handovers));
  f.counter("p2psip_bulk_stores_resent_total", "replica and hand-over Stores sent again",
            static_cast<double>(c.core.bulk_stores_resent));
  f.counter("p2psip_ranges_dropped_total", "ranges of data dropped beyond the third predecessor",
            static_cast<double>(c.core.ranges_dropped));
  f.counter("p2psip_repairs_requested_total", "Fetches sent to repair damaged values",
            static_cast<double>(c.core.repairs_requested));
  f.counter("p2psip_values_repaired_total", "damaged values repaired from replicas",
            static_cast<double>(c.core.values_repaired));
  {
    const std::vector<std::pair<std::string, std::uint64_t>> closed{
        {"pruned", c.core.links_pruned},
        {"evicted", c.core.links_evicted},
        {"client_evicted", c.core.clients_evicted},
    };
    f.counters_by("p2psip_links_closed_total", "surplus links this peer closed, by reason",
                  "reason", closed, [](const std::string& r) { return r; });
  }
  f.counter("p2psip_partition_checks_total", "partition-check Pings sent",
            static_cast<double>(c.core.partition_checks));
  f.counter("p2psip_partitions_detected_total", "partition checks that found another ring",
            static_cast<double>(c.core.partitions_detected));
  if (s.sip) {
    const auto& u = s.sip->usage;
    f.gauge("p2psip_sip_registrations", "SIP AORs with a live binding at this peer",
            static_cast<double>(u.registrations));
    f.gauge("p2psip_sip_bindings", "SIP contacts registered at this peer",
            static_cast<double>(u.bindings));
    f.gauge("p2psip_sip_transactions", "SIP transactions alive",
            static_cast<double>(u.transactions));
    f.gauge("p2psip_sip_flows", "SIP flows (RFC 5626) open", static_cast<double>(s.sip->flows));
    f.counter("p2psip_sip_requests_proxied_total", "SIP requests forwarded",
              static_cast<double>(u.proxied));
    f.counter("p2psip_sip_registers_stored_total", "REGISTERs stored in the overlay",
              static_cast<double>(u.registers_stored));
    f.counter("p2psip_sip_auth_failures_total", "SIP digest authentication failures",
              static_cast<double>(u.auth_failures));
    f.counter("p2psip_sip_overlay_failures_total", "SIP requests the overlay could not serve",
              static_cast<double>(u.overlay_failures));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry.Collect());
  return out.str();
}

std::string render_status_json(const admin_snapshot& s) {
  const auto ids = [](const std::vector<pr::node_id>& v) {
    json a = json::array();
    for (const auto& id : v) a.push_back(id.hex());
    return a;
  };
  const auto& c = s.counters;
  json j;
  j["node_id"] = s.status.self.hex();
  j["address"] = s.address;
  j["uptime_s"] = s.uptime_s;
  j["joined"] = s.status.joined;
  j["ring"] = {{"predecessors", ids(s.status.predecessors)},
               {"successors", ids(s.status.successors)},
               {"fingers", ids(fingers_of(s.status))},
               {"routing_table", ids(s.status.routing_table)}};
  json links = json::array();
  for (const auto& l : s.links) {
    links.push_back({{"link", l.link},
                     {"node_id", l.remote.hex()},
                     {"address", l.address ? endpoint_text(*l.address) : ""},
                     {"role", l.peer ? "peer" : "client"},
                     {"direction", l.inbound ? "inbound" : "outbound"}});
  }
  j["links"] = std::move(links);
  j["link_count"] = s.status.links;
  j["client_count"] = s.status.clients;
  j["store"] = {{"values", c.store.values},
                {"bytes", c.store.bytes},
                {"resources", c.store.resources},
                {"quarantined", c.store.quarantined}};
  j["traffic"] = {{"forwarded", c.core.forwarded},
                  {"delivered", c.core.delivered_locally},
                  {"errors_sent", c.core.errors_sent},
                  {"timeouts", c.core.timeouts},
                  {"dropped", s.status.dropped}};
  j["replication"] = {{"outbox", s.status.outbox},
                      {"replica_stores", c.core.replica_stores},
                      {"handovers", c.core.handovers}};
  if (s.sip) {
    j["sip"] = {{"registrations", s.sip->usage.registrations},
                {"bindings", s.sip->usage.bindings},
                {"transactions", s.sip->usage.transactions},
                {"flows", s.sip->flows}};
  } else {
    j["sip"] = nullptr;
  }
  json warnings = json::array();
  for (const auto& w : s.warnings) {
    warnings.push_back({{"time", w.time}, {"level", w.level}, {"text", w.text}});
  }
  j["warnings"] = std::move(warnings);
  // Replace: a log line may hold bytes that are not UTF-8 (a remote's text); never throw.
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

std::string render_status_page(const admin_snapshot& s) {
  constexpr double cx = 260, cy = 260, radius = 200;
  constexpr double pi = 3.14159265358979323846;
  const auto point = [&](const pr::node_id& id, double r) {
    const double a = ring_fraction(id) * 2 * pi - pi / 2;  // zero at the top, clockwise
    return std::pair{cx + r * std::cos(a), cy + r * std::sin(a)};
  };
  struct marker {
    pr::node_id id;
    std::string role;   ///< its roles, space-separated (a small ring's neighbors are both)
    std::string color;  ///< of its first role
  };
  std::vector<marker> markers;
  const auto add = [&](const pr::node_id& id, const char* role, const char* color) {
    for (auto& m : markers) {
      if (m.id == id) {
        m.role += std::string(" ") + role;
        return;
      }
    }
    markers.push_back({id, role, color});
  };
  add(s.status.self, "self", "#d62728");
  for (const auto& id : s.status.successors) add(id, "successor", "#2ca02c");
  for (const auto& id : s.status.predecessors) add(id, "predecessor", "#1f77b4");
  for (const auto& id : fingers_of(s.status)) add(id, "finger", "#9467bd");

  std::string svg =
      "<svg id=\"ring\" xmlns=\"http://www.w3.org/2000/svg\" width=\"520\" height=\"520\" "
      "viewBox=\"0 0 520 520\" role=\"img\" aria-label=\"the ring as this peer sees it\">\n"
      "<circle class=\"ring\" cx=\"260\" cy=\"260\" r=\"200\" fill=\"none\" stroke=\"#999\" "
      "stroke-width=\"2\"/>\n"
      "<text x=\"260\" y=\"48\" text-anchor=\"middle\" font-size=\"11\" fill=\"#666\">0</text>\n";
  const auto [sx, sy] = point(s.status.self, radius);
  if (!s.status.predecessors.empty()) {
    // The range this peer is responsible for: (first predecessor, self], clockwise.
    const auto& pred = s.status.predecessors.front();
    const auto [px, py] = point(pred, radius);
    double turn = ring_fraction(s.status.self) - ring_fraction(pred);
    if (turn < 0) turn += 1;
    svg += "<path class=\"responsible-range\" d=\"M " + fixed(px) + " " + fixed(py) +
           " A 200 200 0 " + (turn > 0.5 ? "1" : "0") + " 1 " + fixed(sx) + " " + fixed(sy) +
           "\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"6\" stroke-opacity=\"0.35\"/>\n";
  }
  for (const auto& m : markers) {
    if (m.role == "self") continue;
    const auto [x, y] = point(m.id, radius);
    svg += "<line class=\"edge " + m.role.substr(0, m.role.find(' ')) + "\" x1=\"" + fixed(sx) +
           "\" y1=\"" + fixed(sy) + "\" x2=\"" + fixed(x) + "\" y2=\"" + fixed(y) + "\" stroke=\"" +
           m.color + "\" stroke-opacity=\"0.5\"/>\n";
  }
  for (const auto& m : markers) {
    const auto [x, y] = point(m.id, radius);
    const auto [lx, ly] = point(m.id, radius + 26);
    svg += "<g class=\"node " + m.role + "\" data-node-id=\"" + m.id.hex() + "\"><title>" + m.role +
           " " + m.id.hex() + "</title><circle cx=\"" + fixed(x) + "\" cy=\"" + fixed(y) +
           "\" r=\"" + (m.role == "self" ? "9" : "6") + "\" fill=\"" + m.color + "\"/><text x=\"" +
           fixed(lx) + "\" y=\"" + fixed(ly + 4) +
           "\" text-anchor=\"middle\" font-size=\"11\" font-family=\"monospace\">" +
           short_id(m.id) + "</text></g>\n";
  }
  svg += "<text x=\"260\" y=\"255\" text-anchor=\"middle\" font-size=\"14\">" +
         std::string(s.status.joined ? "joined" : "not joined") +
         "</text>\n<text x=\"260\" y=\"275\" text-anchor=\"middle\" font-size=\"12\" "
         "fill=\"#666\">" +
         std::to_string(s.status.routing_table.size()) + " peers in the routing table</text>\n";
  svg += "</svg>\n";

  const auto& c = s.counters;
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"refresh\" content=\"5\">"
      "<title>p2psip peer " +
      short_id(s.status.self) +
      "</title>\n<style>body{font-family:sans-serif;margin:1.5em;color:#222}"
      ".cols{display:flex;flex-wrap:wrap;gap:2em}table{border-collapse:collapse}"
      "td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}"
      "code{font-size:12px}.warn{color:#a60}.error{color:#c00}"
      ".legend span{margin-right:1em}</style></head>\n<body>\n<h1>p2psip peer <code>" +
      s.status.self.hex() + "</code></h1>\n<p>listening on " + html_escape(s.address) +
      " &middot; up " + duration_text(s.uptime_s) + " &middot; " +
      (s.status.joined ? "joined" : "<b>not joined</b>") +
      " &middot; <a href=\"/status.json\">status.json</a> &middot; <a "
      "href=\"/metrics\">metrics</a></p>\n<div class=\"cols\"><div>\n" +
      svg +
      "<p class=\"legend\"><span style=\"color:#d62728\">&#9679; this peer (its range: the "
      "arc)</span><span "
      "style=\"color:#1f77b4\">&#9679; predecessors</span><span style=\"color:#2ca02c\">&#9679; "
      "successors</span><span style=\"color:#9467bd\">&#9679; fingers</span></p></div>\n<div>\n";
  html += "<h2>Store</h2><table id=\"store\"><tr><th>values</th><td>" +
          std::to_string(c.store.values) + "</td></tr><tr><th>bytes</th><td>" +
          std::to_string(c.store.bytes) + "</td></tr><tr><th>resources</th><td>" +
          std::to_string(c.store.resources) + "</td></tr><tr><th>replication outbox</th><td>" +
          std::to_string(s.status.outbox) + "</td></tr><tr><th>replica stores sent</th><td>" +
          std::to_string(c.core.replica_stores) + "</td></tr><tr><th>hand-overs</th><td>" +
          std::to_string(c.core.handovers) + "</td></tr></table>\n";
  html += "<h2>Traffic</h2><table><tr><th>forwarded</th><td>" + std::to_string(c.core.forwarded) +
          "</td></tr><tr><th>delivered here</th><td>" + std::to_string(c.core.delivered_locally) +
          "</td></tr><tr><th>errors sent</th><td>" + std::to_string(c.core.errors_sent) +
          "</td></tr><tr><th>dropped</th><td>" + std::to_string(s.status.dropped) +
          "</td></tr></table>\n";
  if (s.sip) {
    html += "<h2>SIP</h2><table><tr><th>registrations</th><td>" +
            std::to_string(s.sip->usage.registrations) + "</td></tr><tr><th>bindings</th><td>" +
            std::to_string(s.sip->usage.bindings) + "</td></tr><tr><th>transactions</th><td>" +
            std::to_string(s.sip->usage.transactions) + "</td></tr><tr><th>flows</th><td>" +
            std::to_string(s.sip->flows) + "</td></tr></table>\n";
  }
  html += "</div></div>\n<h2>Links: " + std::to_string(s.status.links) + ", " +
          std::to_string(s.status.clients) + (s.status.clients == 1 ? " client" : " clients") +
          "</h2>\n<table id=\"links\"><tr><th>Node-ID</th><th>address</th><th>role</"
          "th><th>opened by</th></tr>\n";
  for (const auto& l : s.links) {
    html += "<tr><td><code>" + l.remote.hex() + "</code></td><td>" +
            (l.address ? html_escape(endpoint_text(*l.address)) : std::string("-")) + "</td><td>" +
            (l.peer ? "peer" : "client") + "</td><td>" + (l.inbound ? "them" : "us") +
            "</td></tr>\n";
  }
  html += "</table>\n<h2>Recent warnings</h2>\n";
  if (s.warnings.empty()) {
    html += "<p id=\"warnings\">none</p>\n";
  } else {
    html += "<ul id=\"warnings\">\n";
    for (auto w = s.warnings.rbegin(); w != s.warnings.rend(); ++w) {
      const std::string cls = w->level == "ERROR" ? "error" : "warn";
      html += "<li class=\"" + cls + "\"><code>" + html_escape(w->time) + " " +
              html_escape(w->level) + "</code> " + html_escape(w->text) + "</li>\n";
    }
    html += "</ul>\n";
  }
  html += "</body></html>\n";
  return html;
}

}  // namespace p2psip::peer
