#include "p2psip/node/message_transport.hpp"

#include <algorithm>
#include <utility>

#include "p2psip/protocol/framing.hpp"

namespace p2psip::node {

namespace pr = protocol;
using pr::reload_errc;

namespace {

bool has_duplicates(const std::vector<pr::destination>& list) {
  for (std::size_t i = 0; i < list.size(); ++i) {
    for (std::size_t j = i + 1; j < list.size(); ++j) {
      if (list[i] == list[j]) return true;
    }
  }
  return false;
}

bool printable(const pr::bytes& b) {
  return std::all_of(b.begin(), b.end(), [](std::uint8_t c) { return c >= 0x20 && c < 0x7F; });
}

/// Sequence numbers compare modulo 2^16 (RFC 6940 6.3.2.1: "as in TCP").
bool sequence_older(std::uint16_t a, std::uint16_t b) {
  return a != b && static_cast<std::uint16_t>(b - a) < 0x8000;
}

constexpr std::uint16_t kAnySequence = 65535;

}  // namespace

duration jittered(duration base, random_source& rng) {
  const auto b = base.count() <= 0 ? 1 : base.count();
  const auto r = static_cast<std::int64_t>(rng.next_u64() % static_cast<std::uint64_t>(b));
  return duration{b / 2 + r};
}

std::uint64_t epoch_ms(wall_time t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  return ms < 0 ? 0 : static_cast<std::uint64_t>(ms);
}

std::string describe(const outcome& o) {
  switch (o.what) {
    case outcome::kind::answer: return "answered";
    case outcome::kind::timeout: return "no answer";
    case outcome::kind::returned: return "came back to us";
    case outcome::kind::error: break;
  }
  const auto& e = o.error;
  return "error " + std::to_string(e.error_code) + " (" +
         (printable(e.error_info) ? std::string(e.error_info.begin(), e.error_info.end())
                                  : std::to_string(e.error_info.size()) + " bytes of details") +
         ")";
}

message_transport::message_transport(transport_config cfg, connection_table& links,
                                     router& topology, message_signer& signer, random_source& rng,
                                     action_queue& actions)
    : cfg_(std::move(cfg)),
      links_(links),
      topology_(topology),
      signer_(signer),
      rng_(rng),
      actions_(actions) {
  body_context_.model_of = [this](std::uint32_t kind) -> std::optional<pr::data_model> {
    if (const auto it = extra_kinds_.find(kind); it != extra_kinds_.end()) return it->second;
    return cfg_.kind_models ? cfg_.kind_models(kind) : std::nullopt;
  };
}

void latency_histogram::observe(std::chrono::nanoseconds d) {
  const double seconds = d.count() <= 0 ? 0.0 : std::chrono::duration<double>(d).count();
  std::size_t i = 0;
  while (i < bounds_seconds.size() && seconds > bounds_seconds[i]) ++i;
  ++counts[i];
  sum_seconds += seconds;
  ++count;
}

std::uint16_t message_transport::traffic_code(std::uint16_t code) {
  return pr::message_code_name(code).empty() ? transport_traffic::other_code : code;
}

namespace {

/// An Error-Code as counted: registered ones as they are, the rest together.
std::uint16_t error_key(std::uint16_t code) {
  return pr::reload_error_name(code).empty() ? transport_traffic::other_code : code;
}

}  // namespace

void message_transport::add_kind_model(std::uint32_t kind, pr::data_model model) {
  extra_kinds_[kind] = model;
}

std::uint64_t message_transport::new_txid() {
  for (;;) {
    const auto t = rng_.next_u64();
    if (t != 0) return t;
  }
}

void message_transport::malformed(link_id link, std::string_view why) {
  ++stats_.malformed;
  if (!links_.contains(link)) return;
  actions_.log("malformed message on link " + std::to_string(link.value) + ": " + std::string(why));
  if (links_.count_malformed(link, cfg_.max_malformed_per_link)) {
    actions_.push(close_link_action{link, "too many malformed messages"});
  }
}

// ---------------------------------------------------------------------------------------------
// Pending requests

std::vector<link_id> message_transport::busy_links() const {
  std::vector<link_id> out;
  for (const auto& [k, p] : pending_) {
    if (k.link != link_id{}) out.push_back(k.link);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::optional<time_point> message_transport::next_deadline() const {
  std::optional<time_point> d;
  for (const auto& [k, p] : pending_) {
    if (!d || p.deadline < *d) d = p.deadline;
  }
  return d;
}

void message_transport::complete(pending_request&& p, outcome&& o, time_point now) {
  if (o.what == outcome::kind::answer || o.what == outcome::kind::error) {
    traffic_.request_latency[traffic_code(p.code)].observe(now - p.sent_at);
  }
  if (o.what == outcome::kind::error)
    ++traffic_.errors_received_by_code[error_key(o.error.error_code)];
  if (p.done) p.done(std::move(o), now);
}

void message_transport::on_timer(time_point now) {
  std::vector<std::pair<link_id, pending_request>> expired;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline <= now) {
      expired.emplace_back(it->first.link, std::move(it->second));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [link, p] : expired) {
    ++stats_.timeouts;
    outcome o;
    o.what = outcome::kind::timeout;
    o.link = link;
    complete(std::move(p), std::move(o), now);
  }
}

void message_transport::link_down(link_id link, const pr::node_id& remote, time_point now,
                                  std::vector<pr::bytes> undelivered) {
  client_requests_.erase(link);
  reroute_undelivered(std::move(undelivered), now);
  std::vector<std::pair<std::uint64_t, pending_request>> cut;
  for (auto p = pending_.begin(); p != pending_.end();) {
    if (p->first.link == link) {
      cut.emplace_back(p->first.txid, std::move(p->second));
      p = pending_.erase(p);
    } else {
      ++p;
    }
  }
  std::vector<pending_request> lost;
  for (auto& [txid, p] : cut) {
    // Once more on another first hop (a link pruned by its other end can cross our request).
    const auto next = p.resent || closed_ || p.sent.header.destination_list.empty()
                          ? std::nullopt
                          : first_hop(p.sent.header.destination_list.front(), {remote});
    if (next && *next != link && links_.contains(*next) && encode_and_send(*next, p.sent, now)) {
      p.resent = true;
      pending_[pending_key{txid, *next}] = std::move(p);
      continue;
    }
    lost.push_back(std::move(p));
  }
  for (auto& p : lost) {
    outcome o;
    o.what = outcome::kind::timeout;
    o.link = link;
    complete(std::move(p), std::move(o), now);
  }
}

void message_transport::reroute_undelivered(std::vector<pr::bytes> undelivered, time_point now) {
  for (const auto& data : undelivered) {
    if (closed_) return;
    auto m = pr::decode_message(data, cfg_.limits);
    if (!m) continue;  // our own encoding: cannot happen
    if (!pr::is_request(m->contents.code)) {
      // An answer of ours or a response we forwarded: its destination list names the node it
      // was going to first, which another link or the ring may still reach.
      ++stats_.rerouted;
      route_or_deliver(link_id{}, std::move(*m), now);
      continue;
    }
    // A request without via entries is our own (forward() adds the previous hop to every other):
    // sent once more by link_down while it waits.
    if (m->header.via_list.empty()) continue;
    // One we forwarded: take back our forwarding (the previous hop's via entry and the TTL it
    // cost) and route it as it arrived, on the routes left. Its answer goes back the same way.
    const auto* previous = m->header.via_list.back().node();
    const auto from = previous != nullptr ? links_.link_to(*previous) : std::nullopt;
    if (!from) {
      ++stats_.reroute_dropped;
      actions_.log("forwarded request lost with its link: no link left to its previous hop");
      continue;
    }
    m->header.via_list.pop_back();
    ++m->header.ttl;
    ++stats_.rerouted;
    route_or_deliver(*from, std::move(*m), now);
  }
}

// ---------------------------------------------------------------------------------------------
// Sending

bool message_transport::encode_and_send(link_id link, pr::message& m, time_point now) {
  auto enc = pr::encode_message(m, cfg_.limits);
  if (!enc) {
    actions_.log("cannot encode message: " + enc.error().message());
    return false;
  }
  actions_.push(send_action{link, std::move(*enc)});
  links_.note_traffic(link, now);
  count_sent(m.contents.code);
  return true;
}

std::optional<link_id> message_transport::first_hop(const pr::destination& d,
                                                    const std::vector<pr::node_id>& avoid) const {
  if (const auto* n = d.node()) {
    if (const auto l = links_.link_to(*n)) return l;
    if (const auto home = topology_.default_link()) return home;
    const auto hop = topology_.next_hop(*n, avoid);
    return hop ? links_.link_to(*hop) : std::nullopt;
  }
  if (const auto* r = d.resource()) {
    if (const auto home = topology_.default_link()) return home;
    const auto point = r->as_ring_point();
    if (!point) return std::nullopt;
    const auto hop = topology_.next_hop(*point, avoid);
    return hop ? links_.link_to(*hop) : std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> message_transport::originate(
    std::vector<pr::destination> dest, const pr::message_body& body, completion done,
    time_point now, send_options opts, std::vector<pr::generic_certificate> certs) {
  // A route that starts with this node ([self, client]: a client attached here, RFC 6940
  // 4.2.1 / RFC 7904 route values) starts at its next entry: sent as is, the answer would come
  // back on that entry's link while the request waits under the local one, and be dropped.
  while (dest.size() > 1 && dest.front().node() && *dest.front().node() == cfg_.self) {
    dest.erase(dest.begin());
  }
  if (closed_ || dest.empty()) return std::nullopt;
  if (pending_.size() >= cfg_.max_pending) {
    ++stats_.refused_pending_full;
    if (const auto n = pending_full_log_.note(now)) {
      actions_.warn(std::to_string(*n) + " request(s) of this node not sent: " +
                    std::to_string(cfg_.max_pending) + " requests already wait for answers");
    }
    return std::nullopt;
  }
  auto enc = pr::encode_body(body);
  if (!enc) return std::nullopt;
  pr::message m;
  m.header.overlay = cfg_.overlay;
  // A ConfigUpdate goes to nodes whose sequence differs from ours by its nature: 65535 makes
  // them take it whatever theirs (RFC 6940 6.3.2.1), where ours would be refused as too new.
  m.header.configuration_sequence = pr::code_of(body) == pr::codes::config_update_req
                                        ? kAnySequence
                                        : cfg_.configuration_sequence;
  m.header.ttl = cfg_.limits.initial_ttl;
  m.header.transaction_id = new_txid();
  m.header.destination_list = std::move(dest);
  m.contents.code = pr::code_of(body);
  m.contents.body = std::move(*enc);
  m.security.certificates = std::move(certs);
  message_signer& signer = opts.sign_as != nullptr ? *opts.sign_as : signer_;

  // Where does it go first? Locally when this node is responsible (a peer's own request).
  bool local = false;
  std::optional<link_id> link = opts.via;
  if (!link) {
    const auto& first = m.header.destination_list.front();
    if (topology_.routes()) {
      if (const auto* r = first.resource()) {
        const auto p = r->as_ring_point();
        local = p && topology_.is_responsible(*p);
      } else if (const auto* n = first.node()) {
        local = *n == cfg_.self || n->is_wildcard();
      }
    }
    if (!local) link = first_hop(first);
    if (!local && !link) return std::nullopt;
  }
  const auto tx = m.header.transaction_id;
  const pending_key key{tx, local ? link_id{} : *link};
  pending_[key] =
      pending_request{now + cfg_.request_timeout, std::move(done), {}, false, now, m.contents.code};
  if (local) {
    // Delivered here, never sent: no signature to make and verify (the signer's certificate is
    // checked all the same); signed after all if it ever has to be forwarded.
    route_or_deliver(link_id{}, std::move(m), now, &signer);
    return tx;
  }
  signer.sign(m);
  if (!encode_and_send(*link, m, now)) {
    pending_.erase(key);
    return std::nullopt;
  } else if (const auto it = pending_.find(key); it != pending_.end()) {
    it->second.sent = std::move(m);
  }
  return tx;
}

void message_transport::answer(const inbound_request& r, const pr::message_body& body,
                               time_point now, std::vector<pr::generic_certificate> certs) {
  send_answer(r.link, r.message, body, now, std::move(certs));
}

void message_transport::send_answer(link_id from, const pr::message& request,
                                    const pr::message_body& body, time_point now,
                                    std::vector<pr::generic_certificate> certs) {
  pr::message resp;
  resp.header.overlay = cfg_.overlay;
  resp.header.configuration_sequence = cfg_.configuration_sequence;
  resp.header.ttl = cfg_.limits.initial_ttl;
  resp.header.transaction_id = request.header.transaction_id;
  // RFC 6940 6.2.2: destination = the node it came from, then the reversed via list.
  if (from != link_id{}) {
    const auto* c = links_.find(from);
    if (!c) return;
    resp.header.destination_list.push_back(pr::to_destination(c->remote));
  }
  for (auto v = request.header.via_list.rbegin(); v != request.header.via_list.rend(); ++v) {
    resp.header.destination_list.push_back(*v);
  }
  auto enc = pr::encode_body(body);
  if (!enc) {
    actions_.log("cannot encode answer body");
    return;
  }
  resp.contents.code = pr::code_of(body);
  resp.contents.body = std::move(*enc);
  resp.security.certificates = std::move(certs);
  if (resp.header.destination_list.empty()) {
    // Our own request, answered locally: the answer never leaves this process.
    auto signer = signer_.prepare_own(resp);
    handle_response(
        link_id{}, std::move(resp),
        signer ? std::optional<crypto::verified_signer>(std::move(*signer)) : std::nullopt, now);
    return;
  }
  signer_.sign(resp);
  auto bytes = pr::encode_message(resp, cfg_.limits);
  const bool too_large = bytes && request.header.max_response_length != 0 &&
                         bytes->size() > request.header.max_response_length;
  if ((!bytes || too_large) && !std::holds_alternative<pr::error_response>(body)) {
    send_error(from, request,
               too_large ? pr::response_too_large_error : reload_errc::message_too_large,
               "answer too large", now);
    return;
  }
  if (!bytes) return;
  actions_.push(send_action{from, std::move(*bytes)});
  links_.note_traffic(from, now);
  count_sent(resp.contents.code);
  answered_on(from);
}

void message_transport::send_error(link_id from, const pr::message& request, reload_errc code,
                                   std::string_view text, time_point now) {
  ++stats_.errors_sent;
  ++traffic_.errors_sent_by_code[error_key(static_cast<std::uint16_t>(code))];
  pr::error_response e;
  e.error_code = static_cast<std::uint16_t>(code);
  e.error_info = pr::to_bytes(text);
  send_answer(from, request, e, now);
}

void message_transport::refuse_oversized(link_id link, pr::byte_view header_bytes,
                                         std::uint32_t declared_length, time_point now) {
  // RFC 6940 6.6: Error_Message_Too_Large, then close. The answer needs only the header (the
  // transaction id and the via list it goes back along).
  auto header = pr::decode_oversized_header(header_bytes, declared_length, cfg_.limits);
  if (header && header->header.overlay == cfg_.overlay) {
    pr::message request;
    request.header = std::move(header->header);
    send_error(link, request, reload_errc::message_too_large,
               "message larger than max-message-size", now);
  }
  actions_.push(close_link_action{link, "message larger than max-message-size"});
}

// ---------------------------------------------------------------------------------------------
// Receiving and routing (RFC 6940 6.1, 6.2)

void message_transport::on_message(link_id link, pr::byte_view data, time_point now) {
  if (!links_.contains(link)) return;
  auto m = pr::decode_message(data, cfg_.limits);
  if (!m) {
    malformed(link, m.error().message());
    return;
  }
  links_.note_received(link, now);
  ++traffic_.received_by_code[traffic_code(m->contents.code)];
  if (pr::is_request(m->contents.code)) {
    const auto* c = links_.find(link);
    if (c && c->from_client()) client_requests_[link].push_back(now);
  }
  handle_message(link, std::move(*m), now);
}

void message_transport::answered_on(link_id link) {
  const auto it = client_requests_.find(link);
  if (it == client_requests_.end()) return;
  it->second.pop_front();
  if (it->second.empty()) client_requests_.erase(it);
}

std::size_t message_transport::client_requests_in_progress(link_id link, time_point now) {
  const auto it = client_requests_.find(link);
  if (it == client_requests_.end()) return 0;
  auto& q = it->second;
  while (!q.empty() && now - q.front() >= cfg_.request_timeout) q.pop_front();
  const auto n = q.size();
  if (n == 0) client_requests_.erase(it);
  return n;
}

void message_transport::handle_message(link_id link, pr::message&& m, time_point now) {
  const bool request = pr::is_request(m.contents.code);
  if (closed_) {
    ++stats_.dropped;  // gone from the overlay: the runtime is closing our links
    return;
  }
  if (!request && !pr::is_response(m.contents.code)) {
    malformed(link, "neither request nor response");
    return;
  }
  if (m.header.overlay != cfg_.overlay) {
    ++stats_.dropped;
    // A misconfigured node (its overlay's name differs from ours): its admin, or ours, wants to
    // know who. The runtime adds the address and rate-limits the line.
    actions_.refused(link, "for another overlay (its overlay hash " +
                               std::to_string(m.header.overlay) + ", ours " +
                               std::to_string(cfg_.overlay) + ")");
    // Never answered: not in progress either (else each held one of the client's read slots
    // for request_timeout, and a few stalled its link).
    if (request) answered_on(link);
    return;
  }
  if (m.header.ttl > cfg_.limits.initial_ttl) {
    if (request) {
      send_error(link, m, reload_errc::ttl_exceeded, "TTL above initial-ttl", now);
    } else {
      ++stats_.dropped;
    }
    return;
  }
  if (has_duplicates(m.header.destination_list)) {
    // RFC 6940 13.6.5.
    if (request) {
      send_error(link, m, reload_errc::invalid_message, "duplicate destination entries", now);
    } else {
      ++stats_.dropped;
    }
    return;
  }
  if (request &&
      std::any_of(m.header.via_list.begin(), m.header.via_list.end(),
                  [&](const pr::destination& d) { return d.node() && *d.node() == cfg_.self; })) {
    if (own_request_returned(m, now)) return;
    send_error(link, m, reload_errc::invalid_message, "loop: own Node-ID in the via list", now);
    return;
  }
  route_or_deliver(link, std::move(m), now);
}

bool message_transport::own_request_returned(pr::message& m, time_point now) {
  // Our own request came back to us through the overlay (a partition check routed through a
  // bootstrap peer to our own place): its completion learns it; no answer (an error for the
  // "loop" would only travel the same way back).
  const auto& via = m.header.via_list;
  if (via.empty() || via.front().node() == nullptr || *via.front().node() != cfg_.self) {
    return false;
  }
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->first.txid != m.header.transaction_id) continue;
    auto p = std::move(it->second);
    outcome o;
    o.what = outcome::kind::returned;
    o.link = it->first.link;
    pending_.erase(it);
    complete(std::move(p), std::move(o), now);
    return true;
  }
  return false;
}

void message_transport::route_or_deliver(link_id from, pr::message&& m, time_point now,
                                         message_signer* own) {
  const bool request = pr::is_request(m.contents.code);
  auto fail = [&](reload_errc code, std::string_view text) {
    if (request) {
      send_error(from, m, code, text, now);
    } else {
      ++stats_.dropped;
      actions_.log("response dropped: " + std::string(text));
    }
  };
  // Nodes the request already passed (and the one it comes from): never the next hop.
  std::vector<pr::node_id> avoid;
  if (request) {
    for (const auto& v : m.header.via_list) {
      if (const auto* n = v.node()) avoid.push_back(*n);
    }
    if (const auto* c = links_.find(from)) avoid.push_back(c->remote);
  }
  // Greedy next hop towards `point` (RFC 6940 10.3), or Error_Not_Found without one.
  auto forward_towards = [&](const pr::node_id& point) {
    const auto hop = topology_.next_hop(point, avoid);
    const auto l = hop ? links_.link_to(*hop) : std::nullopt;
    if (!l) {
      fail(reload_errc::not_found, "no route");
      return;
    }
    if (own) own->sign(m);
    forward(from, *l, std::move(m), now);
  };
  auto& dl = m.header.destination_list;
  while (!dl.empty()) {
    const auto& first = dl.front();
    if (const auto* n = first.node()) {
      if (*n == cfg_.self) {
        if (dl.size() == 1) break;  // for us
        dl.erase(dl.begin());
        continue;
      }
      if (n->is_wildcard()) break;
      if (const auto l = links_.link_to(*n)) {
        if (own) own->sign(m);
        forward(from, *l, std::move(m), now);
        return;
      }
      if (!topology_.routes() || topology_.is_responsible(*n)) {
        fail(reload_errc::not_found, "no such node");
        return;
      }
      forward_towards(*n);
      return;
    }
    if (const auto* r = first.resource()) {
      if (dl.size() != 1) {
        ++stats_.dropped;
        actions_.log("Resource-ID not last in the destination list: dropped");
        return;
      }
      const auto point = r->as_ring_point();
      if (!point) {
        fail(reload_errc::invalid_message, "Resource-ID of the wrong length");
        return;
      }
      if (!topology_.routes()) {
        fail(reload_errc::not_found, "not a peer of the ring");
        return;
      }
      if (topology_.is_responsible(*point)) break;
      forward_towards(*point);
      return;
    }
    // Opaque and compressed ids: we never mint them, so none can be ours to expand.
    fail(reload_errc::invalid_message, "unknown opaque id");
    return;
  }
  deliver_local(from, std::move(m), now, own);
}

void message_transport::forward(link_id from, link_id to, pr::message&& m, time_point now) {
  const bool request = pr::is_request(m.contents.code);
  if (!cfg_.forwards && from != link_id{}) {
    ++stats_.dropped;  // a client never routes for others
    return;
  }
  if (request && from != link_id{} && client_forward_check_) {
    const auto* c = links_.find(from);
    if (c && !c->is_peer && !links_.has_peer_link(c->remote)) {
      if (const auto why = client_forward_check_(m)) {
        send_error(from, m, reload_errc::forbidden, *why, now);
        return;
      }
    }
  }
  if (request) {
    for (const auto& o : m.header.options) {
      if (o.flags & pr::option_flags::forward_critical) {
        send_error(from, m, reload_errc::unsupported_forwarding_option,
                   "unknown forward-critical option", now);
        return;
      }
    }
  }
  if (from != link_id{}) {
    if (m.header.ttl == 0) {
      if (request)
        send_error(from, m, reload_errc::ttl_exceeded, "TTL exceeded", now);
      else
        ++stats_.dropped;
      return;
    }
    --m.header.ttl;
    if (request) {
      if (m.header.via_list.size() >= cfg_.limits.max_via_entries) {
        send_error(from, m, reload_errc::message_too_large, "via list full", now);
        return;
      }
      m.header.via_list.push_back(pr::to_destination(links_.find(from)->remote));
    }
  }
  auto bytes = pr::encode_message(m, cfg_.limits);
  if (!bytes) {
    if (request && from != link_id{}) {
      m.header.via_list.pop_back();
      send_error(from, m, reload_errc::message_too_large, "message too large to forward", now);
    } else {
      ++stats_.dropped;
    }
    return;
  }
  ++stats_.forwarded;
  count_sent(m.contents.code);
  actions_.push(send_action{to, std::move(*bytes)});
  links_.note_traffic(to, now);
  if (!request) answered_on(to);
}

void message_transport::deliver_local(link_id from, pr::message&& m, time_point now,
                                      message_signer* own) {
  ++stats_.delivered_locally;
  const bool request = pr::is_request(m.contents.code);
  // Our own request, never sent: its signer from the signer that made it. Anything that came
  // over a link is verified.
  const bool from_this_process = own != nullptr;
  auto signer = own ? own->prepare_own(m) : signer_.verify(m);
  if (!signer) {
    // RFC 6940 6.3.4: a message whose signature does not verify is dropped.
    ++stats_.dropped;
    actions_.log("signature check failed: message dropped");
    return;
  }
  if (!request) {
    handle_response(from, std::move(m), std::move(*signer), now);
    return;
  }
  dispatch_request(from, std::move(m), std::move(*signer), now, from_this_process);
}

void message_transport::send_config_update(link_id from, const pr::message& request,
                                           time_point now) {
  // RFC 6940 6.3.2.1: "if the configuration file in the request is too old, the node MUST
  // generate a ConfigUpdate message to update the requesting node", routed back the way the
  // request came (its via list reversed).
  if (!document_ || document_->empty()) return;
  std::vector<pr::destination> back;
  if (const auto* c = links_.find(from)) back.push_back(pr::to_destination(c->remote));
  for (auto v = request.header.via_list.rbegin(); v != request.header.via_list.rend(); ++v) {
    back.push_back(*v);
  }
  if (back.empty()) return;
  pr::config_update_req u;
  u.type = pr::config_update_type::config;
  u.config_data = *document_;
  std::optional<link_id> via;
  if (from != link_id{}) via = from;
  if (originate(std::move(back), u, {}, now, send_options{via, false})) {
    ++stats_.config_updates_sent;
  }
}

void message_transport::dispatch_request(link_id from, pr::message&& m,
                                         crypto::verified_signer&& signer, time_point now,
                                         bool from_this_process) {
  const auto theirs = m.header.configuration_sequence;
  const bool any_sequence =
      theirs == kAnySequence && m.contents.code == pr::codes::config_update_req;
  if (theirs != cfg_.configuration_sequence && !any_sequence) {
    if (sequence_older(theirs, cfg_.configuration_sequence)) {
      send_error(from, m, reload_errc::config_too_old,
                 "configuration sequence " + std::to_string(theirs) + ", ours is " +
                     std::to_string(cfg_.configuration_sequence),
                 now);
      send_config_update(from, m, now);
    } else {
      send_error(from, m, reload_errc::config_too_new,
                 "configuration sequence " + std::to_string(theirs) + ", ours is " +
                     std::to_string(cfg_.configuration_sequence),
                 now);
    }
    return;
  }
  for (const auto& o : m.header.options) {
    if (o.flags & pr::option_flags::destination_critical) {
      send_error(from, m, reload_errc::unsupported_forwarding_option,
                 "unknown destination-critical option", now);
      return;
    }
  }
  for (const auto& e : m.contents.extensions) {
    if (e.critical) {
      send_error(from, m, reload_errc::unknown_extension, "unknown critical extension", now);
      return;
    }
  }
  const auto handler = handlers_.find(m.contents.code);
  if (handler == handlers_.end()) {
    send_error(
        from, m, reload_errc::forbidden,
        "no usage of this node serves " + std::string(pr::message_code_name(m.contents.code)), now);
    return;
  }
  auto body = pr::decode_body(m.contents.code, m.contents.body, cfg_.limits, body_context_);
  if (!body) {
    send_error(from, m, reload_errc::invalid_message, body.error().message(), now);
    return;
  }
  inbound_request r{from,  std::move(m),     std::move(*body), std::move(signer),
                    false, from_this_process};
  const auto* c = links_.find(from);
  r.direct = c && r.message.header.via_list.empty() && c->remote == r.signer.node;
  handler->second->on_request(r, now);
}

void message_transport::handle_response(link_id from, pr::message&& m,
                                        std::optional<crypto::verified_signer> signer,
                                        time_point now) {
  const auto it = pending_.find(pending_key{m.header.transaction_id, from});
  if (it == pending_.end()) {
    ++stats_.dropped;
    actions_.log("answer to no pending request (or on the wrong link) dropped");
    return;
  }
  auto p = std::move(it->second);
  pending_.erase(it);
  outcome o;
  o.link = from;
  o.signer = std::move(signer);
  auto body = pr::decode_body(m.contents.code, m.contents.body, cfg_.limits, body_context_);
  if (!body) {
    o.what = outcome::kind::error;
    o.error.error_code = static_cast<std::uint16_t>(reload_errc::invalid_message);
    o.error.error_info = pr::to_bytes("undecodable answer: " + body.error().message());
  } else if (const auto* e = std::get_if<pr::error_response>(&*body)) {
    o.what = outcome::kind::error;
    o.error = *e;
    o.body = std::move(*body);
  } else {
    o.what = outcome::kind::answer;
    o.body = std::move(*body);
  }
  o.message = std::move(m);
  complete(std::move(p), std::move(o), now);
}

}  // namespace p2psip::node
