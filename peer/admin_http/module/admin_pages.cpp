#include "admin_pages.hpp"

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

namespace p2psip::peer::admin {

using json = nlohmann::json;

namespace {

/// Routing-table peers that are neither predecessors nor successors: the fingers.
std::vector<std::string> fingers_of(const snapshot& s) {
  std::set<std::string> neighbors(s.predecessors.begin(), s.predecessors.end());
  neighbors.insert(s.successors.begin(), s.successors.end());
  std::vector<std::string> out;
  for (const auto& id : s.routing_table) {
    if (!neighbors.count(id)) out.push_back(id);
  }
  return out;
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

std::string short_id(const std::string& id) {
  return id.substr(0, 8);
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
  void counters_by(const std::string& name, const std::string& help, const std::string& key,
                   const std::vector<labelled_count>& by) {
    auto& f = prometheus::BuildCounter().Name(name).Help(help).Register(r_);
    for (const auto& c : by) f.Add({{key, c.label}}).Increment(static_cast<double>(c.value));
  }
  void gauge(const std::string& name, const std::string& help, double value,
             const prometheus::Labels& labels = {}) {
    auto& f = prometheus::BuildGauge().Name(name).Help(help).Register(r_);
    f.Add(labels).Set(value);
  }
  void histograms(const std::string& name, const std::string& help,
                  const std::vector<double>& bounds, const std::vector<latency_buckets>& by_code) {
    auto& f = prometheus::BuildHistogram().Name(name).Help(help).Register(r_);
    for (const auto& h : by_code) {
      // ObserveMultiple takes one count per bucket, the one above the last bound included; a
      // snapshot that disagrees is refused here rather than by prometheus-cpp's exception.
      if (h.counts.size() != bounds.size() + 1) continue;
      const std::vector<double> counts(h.counts.begin(), h.counts.end());
      f.Add({{"code", h.code}}, bounds).ObserveMultiple(counts, h.sum_seconds);
    }
  }

 private:
  prometheus::Registry& r_;
};

}  // namespace

double ring_fraction(std::string_view node_id_hex) {
  double f = 0;
  double scale = 1.0 / 16.0;
  for (std::size_t i = 0; i < node_id_hex.size() && i < 16; ++i) {
    const char c = node_id_hex[i];
    const int digit = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                             : 0;
    f += digit * scale;
    scale /= 16.0;
  }
  return f;
}

std::string render_metrics(const snapshot& s) {
  // A registry per scrape, filled from the snapshot: nothing is shared between HTTP threads,
  // and counters are exactly the peer's own (which only grow, as Prometheus expects).
  prometheus::Registry registry;
  families f(registry);
  f.counters_by("p2psip_messages_received_total",
                "RELOAD messages decoded from links, by message code", "code", s.received_by_code);
  f.counters_by("p2psip_messages_sent_total",
                "RELOAD messages sent on links (originated, answered, forwarded), by message code",
                "code", s.sent_by_code);
  f.counters_by("p2psip_errors_sent_total", "Error responses this peer sent, by Error-Code", "code",
                s.errors_sent_by_code);
  f.counters_by("p2psip_errors_received_total",
                "Error responses to this peer's own requests, by Error-Code", "code",
                s.errors_received_by_code);
  f.counter("p2psip_messages_forwarded_total", "messages passed on towards other nodes",
            static_cast<double>(s.forwarded));
  f.counter("p2psip_messages_delivered_total", "messages addressed to this peer",
            static_cast<double>(s.delivered));
  f.counter("p2psip_request_timeouts_total", "requests of this peer nobody answered in time",
            static_cast<double>(s.timeouts));
  f.counters_by("p2psip_messages_dropped_total", "messages dropped, by reason", "reason",
                s.dropped_by_reason);
  f.histograms("p2psip_request_duration_seconds",
               "requests of this peer, from sending to their answer, by request code",
               s.latency_bounds_seconds, s.request_latency);
  f.gauge("p2psip_links", "open links (peers and clients)", static_cast<double>(s.link_count));
  f.gauge("p2psip_clients", "links of clients (nodes that never joined)",
          static_cast<double>(s.client_count));
  f.gauge("p2psip_routing_table_peers", "peers in the routing table",
          static_cast<double>(s.routing_table.size()));
  f.gauge("p2psip_joined", "1 once this peer has joined the ring", s.joined ? 1.0 : 0.0);
  f.gauge("p2psip_uptime_seconds", "seconds since the peer started",
          static_cast<double>(s.uptime_s));
  f.gauge("p2psip_stored_values", "values stored (tombstones included)",
          static_cast<double>(s.stored_values));
  f.gauge("p2psip_stored_bytes", "bytes of the values stored (StoredData encoding)",
          static_cast<double>(s.stored_bytes));
  f.gauge("p2psip_stored_resources", "Resource-IDs with at least one value",
          static_cast<double>(s.stored_resources));
  f.counter("p2psip_values_quarantined_total", "stored values that failed verification",
            static_cast<double>(s.quarantined));
  f.counter("p2psip_signatures_made_total",
            "RELOAD signatures this peer made (messages and stored values)",
            static_cast<double>(s.signatures_made));
  f.counter("p2psip_signatures_verified_total",
            "RELOAD signatures this peer checked (messages and stored values, failures too)",
            static_cast<double>(s.signatures_verified));
  f.gauge("p2psip_replication_outbox", "replica and hand-over Stores waiting to go out",
          static_cast<double>(s.outbox));
  f.counter("p2psip_replica_stores_total", "replica StoreReqs sent to successors",
            static_cast<double>(s.replica_stores));
  f.counter("p2psip_handovers_total", "StoreReqs sent because this peer's range shrank",
            static_cast<double>(s.handovers));
  f.counter("p2psip_bulk_stores_resent_total", "replica and hand-over Stores sent again",
            static_cast<double>(s.bulk_stores_resent));
  f.counter("p2psip_ranges_dropped_total", "ranges of data dropped beyond the third predecessor",
            static_cast<double>(s.ranges_dropped));
  f.counter("p2psip_repairs_requested_total", "Fetches sent to repair damaged values",
            static_cast<double>(s.repairs_requested));
  f.counter("p2psip_values_repaired_total", "damaged values repaired from replicas",
            static_cast<double>(s.values_repaired));
  f.counters_by("p2psip_links_closed_total", "surplus links this peer closed, by reason", "reason",
                s.links_closed_by_reason);
  f.counter("p2psip_partition_checks_total", "partition-check Pings sent",
            static_cast<double>(s.partition_checks));
  f.counter("p2psip_partitions_detected_total", "partition checks that found another ring",
            static_cast<double>(s.partitions_detected));
  if (s.sip) {
    const auto& u = *s.sip;
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

std::string render_status_json(const snapshot& s) {
  const auto ids = [](const std::vector<std::string>& v) {
    json a = json::array();
    for (const auto& id : v) a.push_back(id);
    return a;
  };
  json j;
  j["node_id"] = s.node_id;
  j["address"] = s.address;
  j["uptime_s"] = s.uptime_s;
  j["joined"] = s.joined;
  j["ring"] = {{"predecessors", ids(s.predecessors)},
               {"successors", ids(s.successors)},
               {"fingers", ids(fingers_of(s))},
               {"routing_table", ids(s.routing_table)}};
  json links = json::array();
  for (const auto& l : s.links) {
    links.push_back({{"link", l.link},
                     {"node_id", l.node_id},
                     {"address", l.address},
                     {"role", l.peer ? "peer" : "client"},
                     {"direction", l.inbound ? "inbound" : "outbound"}});
  }
  j["links"] = std::move(links);
  j["link_count"] = s.link_count;
  j["client_count"] = s.client_count;
  j["store"] = {{"values", s.stored_values},
                {"bytes", s.stored_bytes},
                {"resources", s.stored_resources},
                {"quarantined", s.quarantined}};
  j["traffic"] = {{"forwarded", s.forwarded},
                  {"delivered", s.delivered},
                  {"errors_sent", s.errors_sent},
                  {"timeouts", s.timeouts},
                  {"dropped", s.dropped}};
  j["crypto"] = {{"signatures_made", s.signatures_made},
                 {"signatures_verified", s.signatures_verified}};
  j["replication"] = {
      {"outbox", s.outbox}, {"replica_stores", s.replica_stores}, {"handovers", s.handovers}};
  if (s.sip) {
    j["sip"] = {{"registrations", s.sip->registrations},
                {"bindings", s.sip->bindings},
                {"transactions", s.sip->transactions},
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

std::string render_status_page(const snapshot& s) {
  constexpr double cx = 260, cy = 260, radius = 200;
  constexpr double pi = 3.14159265358979323846;
  const auto point = [&](const std::string& id, double r) {
    const double a = ring_fraction(id) * 2 * pi - pi / 2;  // zero at the top, clockwise
    return std::pair{cx + r * std::cos(a), cy + r * std::sin(a)};
  };
  struct marker {
    std::string id;
    std::string role;   ///< its roles, space-separated (a small ring's neighbors are both)
    std::string color;  ///< of its first role
  };
  std::vector<marker> markers;
  const auto add = [&](const std::string& id, const char* role, const char* color) {
    for (auto& m : markers) {
      if (m.id == id) {
        m.role += std::string(" ") + role;
        return;
      }
    }
    markers.push_back({id, role, color});
  };
  add(s.node_id, "self", "#d62728");
  for (const auto& id : s.successors) add(id, "successor", "#2ca02c");
  for (const auto& id : s.predecessors) add(id, "predecessor", "#1f77b4");
  for (const auto& id : fingers_of(s)) add(id, "finger", "#9467bd");

  std::string svg =
      "<svg id=\"ring\" xmlns=\"http://www.w3.org/2000/svg\" width=\"520\" height=\"520\" "
      "viewBox=\"0 0 520 520\" role=\"img\" aria-label=\"the ring as this peer sees it\">\n"
      "<circle class=\"ring\" cx=\"260\" cy=\"260\" r=\"200\" fill=\"none\" stroke=\"#999\" "
      "stroke-width=\"2\"/>\n"
      "<text x=\"260\" y=\"48\" text-anchor=\"middle\" font-size=\"11\" fill=\"#666\">0</text>\n";
  const auto [sx, sy] = point(s.node_id, radius);
  if (!s.predecessors.empty()) {
    // The range this peer is responsible for: (first predecessor, self], clockwise.
    const auto& pred = s.predecessors.front();
    const auto [px, py] = point(pred, radius);
    double turn = ring_fraction(s.node_id) - ring_fraction(pred);
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
    svg += "<g class=\"node " + m.role + "\" data-node-id=\"" + m.id + "\"><title>" + m.role + " " +
           m.id + "</title><circle cx=\"" + fixed(x) + "\" cy=\"" + fixed(y) + "\" r=\"" +
           (m.role == "self" ? "9" : "6") + "\" fill=\"" + m.color + "\"/><text x=\"" + fixed(lx) +
           "\" y=\"" + fixed(ly + 4) +
           "\" text-anchor=\"middle\" font-size=\"11\" font-family=\"monospace\">" +
           short_id(m.id) + "</text></g>\n";
  }
  svg += "<text x=\"260\" y=\"255\" text-anchor=\"middle\" font-size=\"14\">" +
         std::string(s.joined ? "joined" : "not joined") +
         "</text>\n<text x=\"260\" y=\"275\" text-anchor=\"middle\" font-size=\"12\" "
         "fill=\"#666\">" +
         std::to_string(s.routing_table.size()) + " peers in the routing table</text>\n";
  svg += "</svg>\n";

  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"refresh\" content=\"5\">"
      "<title>p2psip peer " +
      short_id(s.node_id) +
      "</title>\n<style>body{font-family:sans-serif;margin:1.5em;color:#222}"
      ".cols{display:flex;flex-wrap:wrap;gap:2em}table{border-collapse:collapse}"
      "td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}"
      "code{font-size:12px}.warn{color:#a60}.error{color:#c00}"
      ".legend span{margin-right:1em}</style></head>\n<body>\n<h1>p2psip peer <code>" +
      s.node_id + "</code></h1>\n<p>listening on " + html_escape(s.address) + " &middot; up " +
      duration_text(s.uptime_s) + " &middot; " + (s.joined ? "joined" : "<b>not joined</b>") +
      " &middot; <a href=\"/status.json\">status.json</a> &middot; <a "
      "href=\"/metrics\">metrics</a></p>\n<div class=\"cols\"><div>\n" +
      svg +
      "<p class=\"legend\"><span style=\"color:#d62728\">&#9679; this peer (its range: the "
      "arc)</span><span "
      "style=\"color:#1f77b4\">&#9679; predecessors</span><span style=\"color:#2ca02c\">&#9679; "
      "successors</span><span style=\"color:#9467bd\">&#9679; fingers</span></p></div>\n<div>\n";
  html += "<h2>Store</h2><table id=\"store\"><tr><th>values</th><td>" +
          std::to_string(s.stored_values) + "</td></tr><tr><th>bytes</th><td>" +
          std::to_string(s.stored_bytes) + "</td></tr><tr><th>resources</th><td>" +
          std::to_string(s.stored_resources) + "</td></tr><tr><th>replication outbox</th><td>" +
          std::to_string(s.outbox) + "</td></tr><tr><th>replica stores sent</th><td>" +
          std::to_string(s.replica_stores) + "</td></tr><tr><th>hand-overs</th><td>" +
          std::to_string(s.handovers) + "</td></tr></table>\n";
  html += "<h2>Traffic</h2><table><tr><th>forwarded</th><td>" + std::to_string(s.forwarded) +
          "</td></tr><tr><th>delivered here</th><td>" + std::to_string(s.delivered) +
          "</td></tr><tr><th>errors sent</th><td>" + std::to_string(s.errors_sent) +
          "</td></tr><tr><th>dropped</th><td>" + std::to_string(s.dropped) + "</td></tr></table>\n";
  if (s.sip) {
    html += "<h2>SIP</h2><table><tr><th>registrations</th><td>" +
            std::to_string(s.sip->registrations) + "</td></tr><tr><th>bindings</th><td>" +
            std::to_string(s.sip->bindings) + "</td></tr><tr><th>transactions</th><td>" +
            std::to_string(s.sip->transactions) + "</td></tr><tr><th>flows</th><td>" +
            std::to_string(s.sip->flows) + "</td></tr></table>\n";
  }
  html += "</div></div>\n<h2>Links: " + std::to_string(s.link_count) + ", " +
          std::to_string(s.client_count) + (s.client_count == 1 ? " client" : " clients") +
          "</h2>\n<table id=\"links\"><tr><th>Node-ID</th><th>address</th><th>role</"
          "th><th>opened by</th></tr>\n";
  for (const auto& l : s.links) {
    html += "<tr><td><code>" + l.node_id + "</code></td><td>" +
            (l.address.empty() ? std::string("-") : html_escape(l.address)) + "</td><td>" +
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

}  // namespace p2psip::peer::admin
