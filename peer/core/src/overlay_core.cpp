#include "p2psip/peer/overlay_core.hpp"

#include <algorithm>
#include <utility>

namespace p2psip::peer {

namespace pr = protocol;
using pr::reload_errc;

namespace {

/// AttachReqAns without ICE (TLS-TCP-FH-NO-ICE): fixed credentials and one host candidate, the
/// address we listen on. `role` is "passive" in requests and "active" in answers (RFC
/// 6940 6.5.1.1).
void fill_no_ice_attach(pr::attach_body& body, std::string_view role,
                        const pr::ip_address_port& listen_address) {
  body.ufrag = pr::to_bytes("p2psip");
  body.password = pr::to_bytes("no-ice");
  body.role = pr::to_bytes(role);
  pr::ice_candidate c;
  c.addr_port = listen_address;
  c.overlay_link = pr::overlay_link_type::tls_tcp_fh_no_ice;
  c.foundation = pr::to_bytes("1");
  c.priority = 1;
  c.type = pr::candidate_type::host;
  body.candidates.push_back(std::move(c));
}

bool contains_node(const std::vector<pr::node_id>& v, const pr::node_id& n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

/// `sorted`: as busy_links() returns it.
bool contains_link(const std::vector<link_id>& sorted, link_id l) {
  return std::binary_search(sorted.begin(), sorted.end(), l);
}

bool has_duplicates(const std::vector<pr::destination>& list) {
  for (std::size_t i = 0; i < list.size(); ++i) {
    for (std::size_t j = i + 1; j < list.size(); ++j) {
      if (list[i] == list[j]) return true;
    }
  }
  return false;
}

/// The body of an Error answer (nullopt when it does not decode).
std::optional<pr::error_response> error_of(const pr::message& answer) {
  auto body = pr::decode_body(answer.contents.code, answer.contents.body, pr::limits{});
  if (!body) return std::nullopt;
  const auto* e = std::get_if<pr::error_response>(&*body);
  return e ? std::optional<pr::error_response>(*e) : std::nullopt;
}

/// "error N (text)" for a log line; error_info that is not text (a StoreAns) shows as its size.
std::string describe(const std::optional<pr::error_response>& e) {
  if (!e) return "an undecodable error";
  const bool text = std::all_of(e->error_info.begin(), e->error_info.end(),
                                [](std::uint8_t c) { return c >= 0x20 && c < 0x7F; });
  return "error " + std::to_string(e->error_code) + " (" +
         (text ? std::string(e->error_info.begin(), e->error_info.end())
               : std::to_string(e->error_info.size()) + " bytes of details") +
         ")";
}

/// Hand-overs (Join, Leave, a shrunken range) are replica Stores (RFC 6940 7.4.1.1): the receiver
/// keeps the generation counters of the copy it is given, and the request is signed by the peer
/// handing over, not by the values' writers, so an original Store (replica_number 0) would be
/// refused on both counts.
constexpr std::uint8_t kHandoverReplicaNumber = 1;

/// A routed hand-over is sent at most this many times.
constexpr unsigned kHandoverAttempts = 5;

std::uint64_t epoch_ms(time_point now) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  return ms < 0 ? 0 : static_cast<std::uint64_t>(ms);
}

// The ring share of (after, self] in parts per billion, from the top 64 bits of the distance.
std::uint32_t share_ppb(const pr::node_id& after, const pr::node_id& self) {
  if (after == self) return 1'000'000'000u;
  const auto d = pr::ring_distance(after, self);
  std::uint64_t top = 0;
  for (std::size_t i = 0; i < 8 && i < d.size(); ++i) top = (top << 8) | d.data()[i];
  const double share = static_cast<double>(top) / 18446744073709551616.0;
  return static_cast<std::uint32_t>(share * 1e9);
}

}  // namespace

overlay_core::overlay_core(core_config cfg, message_signer& signer, storage_service* storage,
                           random_source& rng)
    : cfg_(std::move(cfg)),
      body_context_{cfg_.kind_models},
      signer_(signer),
      storage_(storage),
      rng_(rng),
      routes_(cfg_.self, cfg_.neighbors) {
  if (cfg_.finger_slots > routes_.finger_count()) cfg_.finger_slots = routes_.finger_count();
  if (cfg_.finger_slots == 0) cfg_.finger_slots = 1;
  better_finger_heard_.assign(cfg_.finger_slots + 1, false);
}

// ---------------------------------------------------------------------------------------------
// Small helpers

void overlay_core::log(std::string text) {
  actions_.push_back(log_action{std::move(text)});
}

std::uint64_t overlay_core::new_txid() {
  for (;;) {
    const auto t = rng_.next_u64();
    if (t != 0) return t;
  }
}

duration overlay_core::jitter(duration base) {
  // Uniform in [base/2, 3*base/2): spreads the periodic work of many peers (RFC 6940 10.7.1).
  const auto b = base.count() <= 0 ? 1 : base.count();
  const auto r = static_cast<std::int64_t>(rng_.next_u64() % static_cast<std::uint64_t>(b));
  return duration{b / 2 + r};
}

std::vector<action> overlay_core::take_actions() {
  std::vector<action> out(std::make_move_iterator(actions_.begin()),
                          std::make_move_iterator(actions_.end()));
  actions_.clear();
  return out;
}

std::optional<link_id> overlay_core::link_to(const pr::node_id& node) const {
  // Two links to one peer (both attached at once): both ends send on the one the lower Node-ID
  // opened, so that the other one falls idle and can be closed (prune_links).
  const auto keeper = cfg_.self < node ? link_origin::outbound : link_origin::inbound;
  std::optional<link_id> first;
  for (const auto& [id, c] : links_) {
    if (c.remote != node || c.leaving) continue;
    if (c.origin_told && c.origin == keeper) return id;
    if (!first) first = id;
  }
  return first;
}

pr::node_id overlay_core::range_start() const {
  return routes_.predecessors().empty() ? cfg_.self : routes_.predecessors().front();
}

std::vector<pr::node_id> overlay_core::neighbor_set() const {
  std::vector<pr::node_id> out = routes_.successors();
  for (const auto& p : routes_.predecessors()) {
    if (!contains_node(out, p)) out.push_back(p);
  }
  return out;
}

std::vector<pr::node_id> overlay_core::replica_set() const {
  std::vector<pr::node_id> out;
  for (const auto& s : routes_.successors()) {
    if (out.size() == 2) break;
    out.push_back(s);
  }
  return out;
}

void overlay_core::note_traffic(link_id link, time_point now) {
  if (const auto it = links_.find(link); it != links_.end()) it->second.last_traffic = now;
}

void overlay_core::malformed(link_id link, std::string_view why) {
  ++stats_.malformed;
  auto it = links_.find(link);
  if (it == links_.end()) return;
  ++it->second.malformed;
  log("malformed message on link " + std::to_string(link.value) + ": " + std::string(why));
  if (it->second.malformed == cfg_.max_malformed_per_link) {
    actions_.push_back(close_link_action{link, "too many malformed messages"});
  }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

void overlay_core::start(time_point now) {
  started_ = now;
  switch (cfg_.role) {
    case node_role::first_peer:
      state_ = join_state::joined;
      next_update_ = now + jitter(cfg_.update_interval);
      next_finger_ = now + jitter(cfg_.finger_interval);
      if (cfg_.partition_check_interval.count() > 0) {
        next_partition_check_ = now + jitter(cfg_.partition_check_interval);
      }
      last_range_start_ = cfg_.self;  // the whole ring: the first Join shrinks it
      log("first peer of the overlay: joined");
      break;
    case node_role::joining_peer: start_join(now); break;
    case node_role::client:
      state_ = join_state::bootstrapping;
      join_started_ = now;
      if (!cfg_.bootstrap.empty()) {
        actions_.push_back(open_link_action{cfg_.bootstrap[0], std::nullopt});
      }
      break;
  }
}

void overlay_core::start_join(time_point now) {
  state_ = join_state::bootstrapping;
  join_started_ = now;
  admitting_peer_.reset();
  if (bootstrap_link_ && links_.count(*bootstrap_link_) != 0) {
    state_ = join_state::attaching;
    originate({pr::to_destination(pr::resource_id{pr::to_bytes(cfg_.self.next().view())})},
              make_attach_req(), purpose::attach, now, *bootstrap_link_);
    return;
  }
  if (cfg_.bootstrap.empty()) {
    log("no bootstrap peer configured");
    return;
  }
  const auto& addr = cfg_.bootstrap[bootstrap_index_ % cfg_.bootstrap.size()];
  ++bootstrap_index_;
  actions_.push_back(open_link_action{addr, std::nullopt});
}

void overlay_core::on_link_up(link_id link, const pr::node_id& remote, time_point now,
                              link_origin origin) {
  if (remote == cfg_.self || links_.count(link) != 0) {
    if (remote == cfg_.self && partition_check_opening_ && origin != link_origin::inbound) {
      // A bootstrap address that is ours under another name (we listen on 0.0.0.0, say): not
      // one to check through again.
      remember_bootstrap_node(partition_check_opening_->first, cfg_.self);
      partition_check_opening_.reset();
    }
    actions_.push_back(close_link_action{link, "refused: self or duplicate link id"});
    return;
  }
  if (links_.size() >= cfg_.max_links) {
    // Full: a link to a peer we no longer route through makes room; a client's never does.
    const auto victim = evictable_link(now);
    if (!victim) {
      actions_.push_back(close_link_action{link, "refused: connection table full"});
      return;
    }
    ++stats_.links_evicted;
    close_surplus_link(*victim, "evicted: connection table full", now);
  }
  const bool bootstrapping = state_ == join_state::bootstrapping && !bootstrap_link_;
  const bool we_opened = opening_.erase(remote) != 0;
  // The link opened for a partition check (an inbound link cannot be ours; an untold origin is
  // taken as ours: routing the check through another peer than B answers the question too).
  const bool checking = partition_check_opening_ && !bootstrapping && !we_opened &&
                        origin != link_origin::inbound && state_ == join_state::joined;
  if (checking) {
    remember_bootstrap_node(partition_check_opening_->first, remote);
    partition_check_opening_.reset();
    if (const auto existing = link_to(remote)) {
      actions_.push_back(close_link_action{link, "second link to a bootstrap peer"});
      send_partition_check(*existing, now);
      return;
    }
  }
  connection c;
  c.link = link;
  c.remote = remote;
  c.origin_told = origin != link_origin::unknown;
  if (c.origin_told) {
    c.origin = origin;
  } else {
    // Untold: ours when we asked for a link to this node (or to a bootstrap address).
    c.origin = we_opened || bootstrapping ? link_origin::outbound : link_origin::inbound;
  }
  c.last_traffic = now;
  c.partition_check = checking;
  links_[link] = c;
  const bool we_attached = attaching_.erase(remote) != 0;
  if (checking) send_partition_check(link, now);

  if (bootstrapping) {
    bootstrap_link_ = link;
    bootstrap_failures_ = 0;
    bootstrap_backoff_ = duration{0};
    next_bootstrap_.reset();
    if (cfg_.role == node_role::joining_peer) {
      start_join(now);
    } else {
      log("client: home peer link up");
    }
  }
  if (auto it = owe_update_.find(remote); it != owe_update_.end()) {
    owe_update_.erase(it);
    send_update(link, pr::chord_update_type::full, now);
  } else if (we_attached && state_ == join_state::joined) {
    send_update(link, pr::chord_update_type::full, now);
  }
}

void overlay_core::on_link_failed(const pr::ip_address_port& address, time_point now) {
  log("link to " + address.to_string() + " failed");
  if (partition_check_opening_ && partition_check_opening_->first == address) {
    partition_check_opening_.reset();
  }
  if (state_ == join_state::bootstrapping && !bootstrap_link_) bootstrap_failed(now);
}

void overlay_core::bootstrap_failed(time_point now) {
  if (cfg_.bootstrap.empty()) return;
  ++bootstrap_failures_;
  if (bootstrap_failures_ % cfg_.bootstrap.size() != 0) {
    reconnect_bootstrap(now);
    return;
  }
  // Every bootstrap peer failed in a row: wait before the next round rather than reconnecting in
  // a tight loop (a refused connection on loopback fails in microseconds).
  bootstrap_backoff_ = std::clamp(bootstrap_backoff_ * 2, duration{200}, duration{10'000});
  next_bootstrap_ = now + bootstrap_backoff_;
  log("no bootstrap peer reachable: next attempt in " + std::to_string(bootstrap_backoff_.count()) +
      " ms");
}

void overlay_core::reconnect_bootstrap(time_point now) {
  if (cfg_.role == node_role::joining_peer) {
    start_join(now);  // opens a link to the next bootstrap peer
    return;
  }
  ++bootstrap_index_;
  actions_.push_back(
      open_link_action{cfg_.bootstrap[bootstrap_index_ % cfg_.bootstrap.size()], std::nullopt});
}

void overlay_core::on_link_down(link_id link, time_point now) {
  auto it = links_.find(link);
  if (it == links_.end()) return;
  const connection c = it->second;
  links_.erase(it);
  if (bootstrap_link_ && *bootstrap_link_ == link) bootstrap_link_.reset();
  // Requests waiting on this link will not be answered.
  std::vector<pending_request> lost;
  for (auto p = pending_.begin(); p != pending_.end();) {
    if (p->first.link == link) {
      lost.push_back(p->second);
      p = pending_.erase(p);
    } else {
      ++p;
    }
  }
  // A second link to the same peer (both sides attached at once) takes over its role.
  bool other = false;
  for (auto& [id, o] : links_) {
    if (o.remote == c.remote && !o.leaving) {
      o.is_peer = o.is_peer || c.is_peer;
      other = true;
    }
  }
  // Only a peer of our Routing Table is lost with its link (RFC 6940 10.7.1, 10.7.2). A peer we
  // do not route through may have closed a link it no longer needs (see prune_links) and is alive:
  // no departure, no Updates, no replicas for it.
  if (c.is_peer && !other && routes_.contains(c.remote)) peer_lost(c.remote, now);
  for (const auto& p : lost) on_pending_done(p, nullptr, link, now);
  if (cfg_.role == node_role::client && state_ == join_state::bootstrapping && !bootstrap_link_) {
    bootstrap_failed(now);  // the home peer is gone: the next one
  }
}

void overlay_core::leave(time_point now) {
  if (state_ != join_state::joined) {
    state_ = join_state::left;
    return;
  }
  // Hand our data to the successor, which becomes responsible for it (before the Leave, while it
  // still takes us for a peer).
  if (storage_ && !routes_.successors().empty()) {
    const auto succ = routes_.successors().front();
    if (const auto l = link_to(succ)) {
      for (auto& req : storage_->export_range(range_start(), cfg_.self, now)) {
        req.replica_number = kHandoverReplicaNumber;
        originate({pr::to_destination(succ)}, req, purpose::store_handoff, now, *l);
      }
    }
  }
  // RFC 6940 10.9: to predecessors "from_succ" with our successors, to successors "from_pred"
  // with our predecessors.
  for (const auto& n : neighbor_set()) {
    const auto l = link_to(n);
    if (!l) continue;
    pr::chord_leave_data d;
    if (contains_node(routes_.predecessors(), n)) {
      d.type = pr::chord_leave_type::from_succ;
      d.successors = routes_.successors();
    } else {
      d.type = pr::chord_leave_type::from_pred;
      d.predecessors = routes_.predecessors();
    }
    auto enc = pr::encode_chord_leave_data(d);
    if (!enc) continue;
    originate({pr::to_destination(n)}, pr::leave_req{cfg_.self, std::move(*enc)}, purpose::leave,
              now, *l);
  }
  state_ = join_state::left;
  log("left the overlay");
}

// ---------------------------------------------------------------------------------------------
// Timers

std::optional<time_point> overlay_core::next_deadline() const {
  std::optional<time_point> d;
  auto consider = [&](time_point t) {
    if (!d || t < *d) d = t;
  };
  for (const auto& [k, p] : pending_) consider(p.deadline);
  for (const auto& [n, t] : attaching_) consider(t);
  if (next_bootstrap_) consider(*next_bootstrap_);
  if (state_ == join_state::joined) {
    if (next_update_) consider(*next_update_);
    if (next_finger_) consider(*next_finger_);
    if (next_drop_) consider(*next_drop_);
    if (next_handover_retry_) consider(*next_handover_retry_);
    if (next_partition_check_) consider(*next_partition_check_);
    if (partition_check_opening_) consider(partition_check_opening_->second);
  } else if (cfg_.role == node_role::joining_peer && state_ != join_state::idle &&
             state_ != join_state::left) {
    consider(join_started_ + cfg_.join_retry);
  }
  return d;
}

void overlay_core::on_timer(time_point now) {
  std::vector<std::pair<pending_key, pending_request>> expired;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline <= now) {
      expired.emplace_back(it->first, it->second);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [k, p] : expired) {
    ++stats_.timeouts;
    on_pending_done(p, nullptr, k.link, now);
  }
  std::erase_if(attaching_, [&](const auto& e) { return e.second <= now; });
  std::erase_if(opening_, [&](const auto& e) { return e.second <= now; });
  std::erase_if(owe_update_, [&](const auto& e) { return e.second <= now; });
  std::erase_if(candidates_, [&](const auto& e) { return e.second <= now; });
  std::erase_if(departed_, [&](const auto& e) { return e.second <= now; });
  if (next_bootstrap_ && *next_bootstrap_ <= now) {
    next_bootstrap_.reset();
    if (state_ == join_state::bootstrapping && !bootstrap_link_) reconnect_bootstrap(now);
  }

  if (state_ == join_state::joined) {
    if (next_update_ && *next_update_ <= now) {
      next_update_ = now + jitter(cfg_.update_interval);
      stabilize(now);
    }
    if (next_finger_ && *next_finger_ <= now) {
      next_finger_ = now + jitter(cfg_.finger_interval);
      maintain_fingers(now);
      prune_links(now);
    }
    if (next_drop_ && *next_drop_ <= now) {
      next_drop_.reset();
      drop_foreign_data(now);
    }
    if (next_handover_retry_ && *next_handover_retry_ <= now) retry_handovers(now);
    send_queued_handovers(now);
    if (partition_check_opening_ && partition_check_opening_->second <= now) {
      partition_check_opening_.reset();
    }
    if (next_partition_check_ && *next_partition_check_ <= now) {
      next_partition_check_ = now + jitter(cfg_.partition_check_interval);
      start_partition_check(now);
    }
  } else if (cfg_.role == node_role::joining_peer && state_ != join_state::idle &&
             state_ != join_state::left && !next_bootstrap_ &&
             join_started_ + cfg_.join_retry <= now) {
    log("join stalled: starting again");
    start_join(now);
  }
}

void overlay_core::stabilize(time_point now) {
  if (cfg_.role == node_role::joining_peer && routes_.successors().empty() &&
      !cfg_.bootstrap.empty()) {
    // Lost every peer: we are not part of the ring any more. Join again (RFC 6940 10.7.2).
    log("no successor left: joining again");
    start_join(now);
    return;
  }
  send_updates_to_neighbors(now);
  // Candidates heard of earlier that would still improve the neighbor set.
  std::vector<pr::node_id> better;
  for (const auto& [n, t] : candidates_) {
    if (routes_.improves_neighbors(n) && !link_to(n)) better.push_back(n);
  }
  for (const auto& n : better) do_attach(n, false, {}, now);
  prune_links(now);
  drop_foreign_data(now);
}

void overlay_core::maintain_fingers(time_point now) {
  const unsigned i = next_finger_index_;
  next_finger_index_ = next_finger_index_ % cfg_.finger_slots + 1;
  const auto target = pr::finger_target(cfg_.self, i);
  if (routes_.finger(i) && better_finger_heard_.at(i)) {
    // An Update named a peer nearer the target than our finger: Attach to the target's
    // responsible peer, the best finger (the old one's link is pruned once it is replaced).
    better_finger_heard_.at(i) = false;
    do_attach(target, true, {}, now);
  }
  if (routes_.finger(i)) {
    // Liveness of a finger that is not a neighbor (neighbors get Updates).
    const auto f = *routes_.finger(i);
    if (!routes_.is_neighbor(f)) {
      if (const auto l = link_to(f)) {
        if (auto tx = originate({pr::to_destination(f)}, pr::ping_req{}, purpose::ping, now, *l)) {
          pending_[pending_key{*tx, *l}].direct = true;
        }
      }
    }
    return;
  }
  if (routes_.is_responsible(target)) return;
  // Our successor is responsible for targets up to it: nothing to find.
  if (!routes_.successors().empty() &&
      pr::in_half_open_interval(target, cfg_.self, routes_.successors().front())) {
    return;
  }
  do_attach(target, true, {}, now);
}

// ---------------------------------------------------------------------------------------------
// Sending

bool overlay_core::send_message(link_id link, pr::message& m) {
  auto enc = pr::encode_message(m, cfg_.limits);
  if (!enc) {
    log("cannot encode message: " + enc.error().message());
    return false;
  }
  actions_.push_back(send_action{link, std::move(*enc)});
  return true;
}

std::optional<link_id> overlay_core::choose_link(const pr::destination& d) const {
  if (const auto* n = d.node()) {
    if (const auto l = link_to(*n)) return l;
    if (cfg_.role == node_role::client) return bootstrap_link_;
    const auto hop = routes_.next_hop(*n);
    if (!hop) return std::nullopt;
    return link_to(*hop);
  }
  if (const auto* r = d.resource()) {
    if (cfg_.role == node_role::client) return bootstrap_link_;
    const auto point = r->as_ring_point();
    if (!point) return std::nullopt;
    const auto hop = routes_.next_hop(*point);
    if (!hop) return std::nullopt;
    return link_to(*hop);
  }
  return std::nullopt;
}

std::optional<std::uint64_t> overlay_core::originate(std::vector<pr::destination> dest,
                                                     const pr::message_body& body, purpose why,
                                                     time_point now, std::optional<link_id> via) {
  if (dest.empty() || pending_.size() >= cfg_.max_pending) return std::nullopt;
  auto enc = pr::encode_body(body);
  if (!enc) return std::nullopt;
  pr::message m;
  m.header.overlay = cfg_.overlay;
  m.header.ttl = cfg_.limits.initial_ttl;
  m.header.transaction_id = new_txid();
  m.header.destination_list = std::move(dest);
  m.contents.code = pr::code_of(body);
  m.contents.body = std::move(*enc);
  if (storage_ && std::holds_alternative<pr::store_req>(body)) {
    m.security.certificates = storage_->signer_certificates(body);
  }
  signer_.sign(m);

  // Where does it go first? Locally when this peer is responsible (a peer's own request).
  bool local = false;
  std::optional<link_id> link = via;
  if (!link) {
    const auto& first = m.header.destination_list.front();
    if (cfg_.role != node_role::client && state_ == join_state::joined) {
      if (const auto* r = first.resource()) {
        const auto p = r->as_ring_point();
        local = p && routes_.is_responsible(*p);
      } else if (const auto* n = first.node()) {
        local = *n == cfg_.self || n->is_wildcard();
      }
    }
    if (!local) link = choose_link(first);
    if (!local && !link) return std::nullopt;
  }
  pending_request p;
  p.why = why;
  p.deadline = now + cfg_.request_timeout;
  p.txid = m.header.transaction_id;
  if (const auto* n = m.header.destination_list.front().node()) p.target = *n;
  const auto tx = m.header.transaction_id;
  pending_[pending_key{tx, local ? link_id{} : *link}] = p;
  if (local) {
    route_or_deliver(link_id{}, std::move(m), now);
  } else if (!send_message(*link, m)) {
    pending_.erase(pending_key{tx, *link});
    return std::nullopt;
  } else {
    note_traffic(*link, now);
  }
  return tx;
}

pr::result<std::uint64_t> overlay_core::send_request(std::vector<pr::destination> destinations,
                                                     const pr::message_body& body, time_point now) {
  if (!pr::is_request(pr::code_of(body))) return make_error_code(reload_errc::invalid_message);
  if (cfg_.role != node_role::client && state_ != join_state::joined) {
    return make_error_code(reload_errc::in_progress);
  }
  std::optional<link_id> via;
  if (cfg_.role == node_role::client) {
    if (!bootstrap_link_) return make_error_code(reload_errc::underlay_destination_unreachable);
    via = bootstrap_link_;
  }
  const auto tx = originate(std::move(destinations), body, purpose::app, now, via);
  if (!tx) return make_error_code(reload_errc::underlay_destination_unreachable);
  return *tx;
}

void overlay_core::send_answer(link_id from, const pr::message& request,
                               const pr::message_body& body, time_point now) {
  pr::message resp;
  resp.header.overlay = cfg_.overlay;
  resp.header.ttl = cfg_.limits.initial_ttl;
  resp.header.transaction_id = request.header.transaction_id;
  // RFC 6940 6.2.2: destination = the node it came from, then the reversed via list.
  if (from != link_id{}) {
    const auto it = links_.find(from);
    if (it == links_.end()) return;
    resp.header.destination_list.push_back(pr::to_destination(it->second.remote));
  }
  for (auto v = request.header.via_list.rbegin(); v != request.header.via_list.rend(); ++v) {
    resp.header.destination_list.push_back(*v);
  }
  auto enc = pr::encode_body(body);
  if (!enc) {
    log("cannot encode answer body");
    return;
  }
  resp.contents.code = pr::code_of(body);
  resp.contents.body = std::move(*enc);
  if (storage_ && std::holds_alternative<pr::fetch_ans>(body)) {
    resp.security.certificates = storage_->signer_certificates(body);
  }
  signer_.sign(resp);
  if (resp.header.destination_list.empty()) {
    // Our own request, answered locally.
    handle_response(link_id{}, std::move(resp), now);
    return;
  }
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
  actions_.push_back(send_action{from, std::move(*bytes)});
  note_traffic(from, now);
}

void overlay_core::send_error(link_id from, const pr::message& request, reload_errc code,
                              std::string_view text, time_point now) {
  ++stats_.errors_sent;
  pr::error_response e;
  e.error_code = static_cast<std::uint16_t>(code);
  e.error_info = pr::to_bytes(text);
  send_answer(from, request, e, now);
}

void overlay_core::respond(const pr::message& request, link_id arrival,
                           const pr::message_body& body, time_point now) {
  send_answer(arrival, request, body, now);
}

// ---------------------------------------------------------------------------------------------
// Receiving and routing (RFC 6940 6.1, 6.2)

void overlay_core::on_message(link_id link, pr::byte_view data, time_point now) {
  if (links_.count(link) == 0) return;
  auto m = pr::decode_message(data, cfg_.limits);
  if (!m) {
    malformed(link, m.error().message());
    return;
  }
  note_traffic(link, now);
  handle_message(link, std::move(*m), now);
}

void overlay_core::handle_message(link_id link, pr::message&& m, time_point now) {
  const bool request = pr::is_request(m.contents.code);
  if (state_ == join_state::left) {
    ++stats_.dropped;  // gone from the overlay: the runtime is closing our links
    return;
  }
  if (!request && !pr::is_response(m.contents.code)) {
    malformed(link, "neither request nor response");
    return;
  }
  if (m.header.overlay != cfg_.overlay) {
    ++stats_.dropped;
    log("message for another overlay dropped");
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
    if (own_partition_check_returned(m)) return;
    send_error(link, m, reload_errc::invalid_message, "loop: own Node-ID in the via list", now);
    return;
  }
  route_or_deliver(link, std::move(m), now);
}

void overlay_core::route_or_deliver(link_id from, pr::message&& m, time_point now) {
  const bool request = pr::is_request(m.contents.code);
  auto fail = [&](reload_errc code, std::string_view text) {
    if (request) {
      send_error(from, m, code, text, now);
    } else {
      ++stats_.dropped;
      log("response dropped: " + std::string(text));
    }
  };
  // Nodes the request already passed (and the one it comes from): never the next hop.
  std::vector<pr::node_id> avoid;
  if (request) {
    for (const auto& v : m.header.via_list) {
      if (const auto* n = v.node()) avoid.push_back(*n);
    }
    if (const auto it = links_.find(from); it != links_.end()) avoid.push_back(it->second.remote);
  }
  // Greedy next hop towards `point` (RFC 6940 10.3), or Error_Not_Found without one.
  auto forward_towards = [&](const pr::node_id& point) {
    const auto hop = routes_.next_hop(point, avoid);
    const auto l = hop ? link_to(*hop) : std::nullopt;
    if (!l) {
      fail(reload_errc::not_found, "no route");
      return;
    }
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
      if (const auto l = link_to(*n)) {
        forward(from, *l, std::move(m), now);
        return;
      }
      if (cfg_.role == node_role::client || state_ != join_state::joined ||
          routes_.is_responsible(*n)) {
        fail(reload_errc::not_found, "no such node");
        return;
      }
      forward_towards(*n);
      return;
    }
    if (const auto* r = first.resource()) {
      if (dl.size() != 1) {
        ++stats_.dropped;
        log("Resource-ID not last in the destination list: dropped");
        return;
      }
      const auto point = r->as_ring_point();
      if (!point) {
        fail(reload_errc::invalid_message, "Resource-ID of the wrong length");
        return;
      }
      if (cfg_.role == node_role::client || state_ != join_state::joined) {
        fail(reload_errc::not_found, "not a peer of the ring");
        return;
      }
      if (routes_.is_responsible(*point)) break;
      forward_towards(*point);
      return;
    }
    // Opaque and compressed ids: we never mint them, so none can be ours to expand.
    fail(reload_errc::invalid_message, "unknown opaque id");
    return;
  }
  deliver_local(from, std::move(m), now);
}

void overlay_core::forward(link_id from, link_id to, pr::message&& m, time_point now) {
  const bool request = pr::is_request(m.contents.code);
  if (cfg_.role == node_role::client && from != link_id{}) {
    ++stats_.dropped;  // a client never routes for others
    return;
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
      m.header.via_list.push_back(pr::to_destination(links_.at(from).remote));
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
  actions_.push_back(send_action{to, std::move(*bytes)});
  note_traffic(to, now);
}

void overlay_core::deliver_local(link_id from, pr::message&& m, time_point now) {
  ++stats_.delivered_locally;
  const bool request = pr::is_request(m.contents.code);
  auto signer = signer_.verify(m, now);
  if (!signer) {
    // RFC 6940 6.3.4: a message whose signature does not verify is dropped.
    ++stats_.dropped;
    log("signature check failed: message dropped");
    return;
  }
  if (!request) {
    handle_response(from, std::move(m), now);
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
  auto body = pr::decode_body(m.contents.code, m.contents.body, cfg_.limits, body_context_);
  if (!body) {
    send_error(from, m, reload_errc::invalid_message, body.error().message(), now);
    return;
  }
  handle_request(from, m, *body, *signer, now);
}

// ---------------------------------------------------------------------------------------------
// Requests addressed to this node

void overlay_core::handle_request(link_id from, const pr::message& m, const pr::message_body& body,
                                  const crypto::verified_signer& signer, time_point now) {
  const pr::node_id& requester = signer.node;
  const bool direct = from != link_id{} && m.header.via_list.empty() && links_.count(from) != 0 &&
                      links_.at(from).remote == requester;

  if (std::holds_alternative<pr::ping_req>(body)) {
    send_answer(from, m, pr::ping_ans{rng_.next_u64(), epoch_ms(now)}, now);
    return;
  }
  if (const auto* probe = std::get_if<pr::probe_req>(&body)) {
    pr::probe_ans ans;
    for (const auto t : probe->requested_info) {
      pr::probe_information info;
      info.type = t;
      if (t == pr::probe_info_type::responsible_set) {
        info.value = share_ppb(range_start(), cfg_.self);
      } else if (t == pr::probe_info_type::num_resources) {
        info.value = storage_ ? static_cast<std::uint32_t>(
                                    storage_->export_range(range_start(), cfg_.self, now).size())
                              : 0;
      } else if (t == pr::probe_info_type::uptime) {
        info.value = static_cast<std::uint32_t>(
            std::chrono::duration_cast<std::chrono::seconds>(now - started_).count());
      } else {
        continue;
      }
      ans.probe_info.push_back(info);
    }
    send_answer(from, m, ans, now);
    return;
  }
  if (const auto* rq = std::get_if<pr::route_query_req>(&body)) {
    std::optional<pr::node_id> point;
    if (const auto* n = rq->destination.node()) point = *n;
    if (const auto* r = rq->destination.resource()) point = r->as_ring_point();
    if (!point) {
      send_error(from, m, reload_errc::invalid_message, "unroutable destination", now);
      return;
    }
    pr::route_query_ans ans;
    if (*point == cfg_.self || routes_.is_responsible(*point)) {
      ans.next_peer = cfg_.self;
    } else if (link_to(*point) && rq->destination.node()) {
      ans.next_peer = *point;
    } else {
      ans.next_peer = routes_.next_hop(*point).value_or(cfg_.self);
    }
    send_answer(from, m, ans, now);
    if (rq->send_update && from != link_id{} && direct) {
      send_update(from, pr::chord_update_type::full, now);
    }
    return;
  }
  if (const auto* at = std::get_if<pr::attach_req>(&body)) {
    if (cfg_.role == node_role::client) {
      send_error(from, m, reload_errc::forbidden, "a client accepts no Attach", now);
      return;
    }
    pr::attach_ans ans;
    fill_no_ice_attach(ans, "active", cfg_.listen_address);
    send_answer(from, m, ans, now);
    if (at->send_update && requester != cfg_.self) {
      if (const auto l = link_to(requester)) {
        send_update(*l, pr::chord_update_type::full, now);
      } else if (owe_update_.size() < cfg_.max_candidates) {
        owe_update_[requester] = now + cfg_.request_timeout;
      }
    }
    return;
  }
  if (const auto* jr = std::get_if<pr::join_req>(&body)) {
    if (!direct || jr->joining_peer_id != requester || state_ != join_state::joined) {
      send_error(from, m, reload_errc::forbidden, "Join must come from the joining peer directly",
                 now);
      return;
    }
    send_answer(from, m, pr::join_ans{}, now);
    // RFC 6940 10.5 step 6: the data the joining peer now owns, straight over its link (it
    // becomes our first predecessor, so topology_changed sees no further shrink to hand over).
    const auto after = range_start();
    if (storage_ && pr::in_open_interval(requester, after, cfg_.self)) {
      for (auto& req : storage_->export_range(after, requester, now)) {
        handover_queue_.push_back({std::move(req), requester, 1});
      }
      send_queued_handovers(now);
      last_range_start_ = requester;
    }
    const auto before = neighbor_set();
    mark_peer(from, now);
    // Step 8: Update to every neighbor, whether or not the set changed.
    if (neighbor_set() == before || !cfg_.reactive) send_updates_to_neighbors(now);
    return;
  }
  if (const auto* lr = std::get_if<pr::leave_req>(&body)) {
    if (lr->leaving_peer_id != requester) {
      send_error(from, m, reload_errc::forbidden, "Leave for another node", now);
      return;
    }
    send_answer(from, m, pr::leave_ans{}, now);
    std::vector<pr::node_id> told;
    if (auto d = pr::decode_chord_leave_data(lr->overlay_specific_data, cfg_.limits)) {
      told = d->successors;
      told.insert(told.end(), d->predecessors.begin(), d->predecessors.end());
    }
    for (auto& [id, c] : links_) {
      if (c.remote == requester) {
        c.leaving = true;
        c.is_peer = false;
      }
    }
    peer_lost(requester, now);
    for (auto& n : told) {
      if (n != cfg_.self && candidates_.size() < cfg_.max_candidates) {
        candidates_[n] = now + cfg_.update_interval;
      }
    }
    std::vector<pr::node_id> better;
    for (const auto& n : told) {
      if (n != cfg_.self && n != requester && !link_to(n) && routes_.improves_neighbors(n)) {
        better.push_back(n);
      }
    }
    for (const auto& n : better) do_attach(n, false, {}, now);
    return;
  }
  if (const auto* up = std::get_if<pr::update_req>(&body)) {
    send_answer(from, m, pr::update_ans{}, now);
    if (cfg_.role == node_role::client) return;
    if (direct) mark_peer(from, now);
    if (direct && state_ == join_state::joined && up->type != pr::chord_update_type::peer_ready) {
      // Chord's stabilization: when we know peers that belong in the sender's neighbor lists
      // (ourselves included), tell it, so that a stale view cannot persist (RFC 6940 10.7.4.x:
      // "if the Update reveals ... closer peers").
      routing_table theirs(requester, cfg_.neighbors);
      for (const auto& n : up->predecessors) theirs.add(n);
      for (const auto& n : up->successors) theirs.add(n);
      bool stale = theirs.improves_neighbors(cfg_.self);
      for (const auto& n : neighbor_set()) stale = stale || theirs.improves_neighbors(n);
      if (stale) send_update(from, pr::chord_update_type::neighbors, now);
    }
    std::vector<pr::node_id> heard = up->predecessors;
    heard.insert(heard.end(), up->successors.begin(), up->successors.end());
    heard.insert(heard.end(), up->fingers.begin(), up->fingers.end());
    learn_candidates(heard, direct ? from : link_id{}, now);
    maybe_send_join(now);
    return;
  }
  if (const auto* st = std::get_if<pr::store_req>(&body)) {
    if (!storage_ || cfg_.role == node_role::client) {
      send_error(from, m, reload_errc::forbidden, "this node stores nothing", now);
      return;
    }
    // Replicas come from our peers (RFC 6940 10.4: "an appropriate predecessor"); anyone else
    // may only store where we are responsible: an original Store, or a hand-over routed to us
    // as the value's new owner (after a Join elsewhere or two rings merging), but never a
    // replica from a client attached to us. Either way every value must be signed by a writer
    // the kind's access policy admits.
    bool from_peer = false;
    bool from_client = false;
    for (const auto& [id, c] : links_) {
      if (c.remote != requester) continue;
      from_peer = from_peer || c.is_peer;
      from_client = true;
    }
    from_client = from_client && !from_peer;
    const auto point = st->resource.as_ring_point();
    const bool ours = point && state_ == join_state::joined && routes_.is_responsible(*point);
    if (!from_peer && (!ours || (st->replica_number != 0 && from_client))) {
      send_error(from, m, reload_errc::forbidden, "not responsible for this Resource-ID", now);
      return;
    }
    auto ans = storage_->store(*st, signer, m.security.certificates, now);
    // Ours to replicate: an original Store, or a hand-over from a peer outside our replica set
    // (one from our successor, whose Join handing-over made us responsible, is already there).
    const bool replicate =
        st->replica_number == 0 || (ours && !contains_node(replica_set(), requester));
    if (auto* sa = std::get_if<pr::store_ans>(&ans);
        sa && replicate && state_ == join_state::joined) {
      // RFC 6940 10.4: replicas on the first two successors.
      std::vector<pr::node_id> replicas;
      std::uint8_t number = 1;
      // The requester gets a replica too when it is a successor: sending the StoreReq does not
      // mean it stored the value (a hand-over's sender already holds it; the copy is a no-op).
      for (const auto& s : replica_set()) {
        const auto l = link_to(s);
        if (!l) continue;
        auto copy = *st;
        copy.replica_number = number++;
        // A replica carries the generation we just assigned: the holder takes it as is, and a
        // replica with generation 0 is refused (RFC 6940 7.4.1.1); the requester's may be 0.
        for (auto& kd : copy.kind_data) {
          for (const auto& kr : sa->kind_responses) {
            if (kr.kind == kd.kind) kd.generation_counter = kr.generation_counter;
          }
        }
        if (originate({pr::to_destination(s)}, copy, purpose::store_replica, now, *l)) {
          replicas.push_back(s);
        }
      }
      for (auto& kr : sa->kind_responses) kr.replicas = replicas;
    }
    send_answer(from, m, ans, now);
    return;
  }
  const bool reads_storage = std::holds_alternative<pr::fetch_req>(body) ||
                             std::holds_alternative<pr::stat_req>(body) ||
                             std::holds_alternative<pr::find_req>(body);
  if (reads_storage && !storage_) {
    send_error(from, m, reload_errc::not_found, "this node stores nothing", now);
    return;
  }
  if (const auto* fr = std::get_if<pr::fetch_req>(&body)) {
    send_answer(from, m, storage_->fetch(*fr, now), now);
    return;
  }
  if (const auto* sr = std::get_if<pr::stat_req>(&body)) {
    send_answer(from, m, storage_->stat(*sr, now), now);
    return;
  }
  if (const auto* fd = std::get_if<pr::find_req>(&body)) {
    send_answer(from, m, storage_->find(*fd, range_start(), cfg_.self, now), now);
    return;
  }
  // AppAttach, ConfigUpdate, experimental and unknown codes: the application decides.
  actions_.push_back(deliver_action{m, from});
}

// ---------------------------------------------------------------------------------------------
// Answers to our requests

void overlay_core::handle_response(link_id from, pr::message&& m, time_point now) {
  const auto it = pending_.find(pending_key{m.header.transaction_id, from});
  if (it == pending_.end()) {
    ++stats_.dropped;
    log("answer to no pending request (or on the wrong link) dropped");
    return;
  }
  const auto p = it->second;
  pending_.erase(it);
  on_pending_done(p, &m, from, now);
  send_queued_handovers(now);
}

void overlay_core::on_pending_done(const pending_request& p, const pr::message* answer,
                                   link_id link, time_point now) {
  if (p.why == purpose::app) {
    if (answer) {
      actions_.push_back(deliver_action{*answer, link});
    } else {
      pr::message t;
      t.header.overlay = cfg_.overlay;
      t.header.transaction_id = p.txid;
      t.contents.code = pr::codes::error;
      pr::error_response e{static_cast<std::uint16_t>(reload_errc::request_timeout),
                           pr::to_bytes("no answer")};
      if (auto enc = pr::encode_body(e)) t.contents.body = std::move(*enc);
      actions_.push_back(deliver_action{std::move(t), link});
    }
    return;
  }
  if (p.why == purpose::store_handover && (!answer || answer->contents.code == pr::codes::error)) {
    last_handover_failure_ = "no answer";
    if (answer) {
      const auto e = error_of(*answer);
      // The new owner holds a newer value already (written on its side of a partition): the
      // hand-over has nothing to add (RFC 6940 7.4.1.1's merge rule: the newer value wins).
      if (e && e->error_code == static_cast<std::uint16_t>(reload_errc::data_too_old)) return;
      last_handover_failure_ = describe(e);
    }
    if (state_ == join_state::joined && p.attempt < kHandoverAttempts &&
        handover_retry_.size() < cfg_.max_pending) {
      // No route yet (rings still merging) or no answer: again after request_timeout.
      handover_retry_.emplace(p.target, p.attempt);
      if (!next_handover_retry_) next_handover_retry_ = now + cfg_.request_timeout;
    } else {
      log("hand-over of Resource-ID point " + p.target.hex() + " given up after " +
          std::to_string(p.attempt) + " attempts: " + last_handover_failure_);
    }
    return;
  }
  if (!answer) {
    if (p.direct && link != link_id{}) {
      // A neighbor or finger that does not answer is dead (RFC 6940 10.7.2).
      const auto it = links_.find(link);
      if (it != links_.end() && it->second.remote == p.target && p.why != purpose::ping) {
        // One lost answer is not death yet: ask again with a Ping, on the same link.
        if (auto tx = originate({pr::to_destination(p.target)}, pr::ping_req{}, purpose::ping, now,
                                link)) {
          pending_[pending_key{*tx, link}].direct = true;
          return;
        }
      }
      if (it != links_.end() && it->second.remote == p.target) {
        log("no answer from " + p.target.hex() + ": its links closed");
        for (auto l = links_.begin(); l != links_.end();) {
          if (l->second.remote == p.target) {
            actions_.push_back(close_link_action{l->first, "peer unresponsive"});
            l = links_.erase(l);
          } else {
            ++l;
          }
        }
        peer_lost(p.target, now);
      }
    }
    if ((p.why == purpose::attach || p.why == purpose::join) && state_ != join_state::joined &&
        cfg_.role == node_role::joining_peer) {
      log("join step timed out");
    }
    return;
  }
  if (p.why == purpose::partition_check) {
    partition_check_answered(p, *answer, now);
    return;
  }
  if ((p.why == purpose::store_replica || p.why == purpose::store_handoff) &&
      answer->contents.code == pr::codes::error) {
    // A copy that did not land is a copy missing: say so (a refused hand-over once went unseen).
    log(std::string(p.why == purpose::store_replica ? "replica" : "hand-over") +
        " Store refused by " + p.target.hex() + ": " + describe(error_of(*answer)));
    return;
  }
  const bool is_error = answer->contents.code == pr::codes::error;
  if (p.why == purpose::attach) {
    if (is_error) return;
    auto body =
        pr::decode_body(answer->contents.code, answer->contents.body, cfg_.limits, body_context_);
    if (!body) return;
    const auto* ans = std::get_if<pr::attach_ans>(&*body);
    if (!ans) return;
    auto signer = signer_.verify(*answer, now);
    if (!signer) return;
    attach_answered(*ans, signer->node, now);
    return;
  }
  if (p.why == purpose::join) {
    if (is_error || state_ != join_state::joining) {
      log("Join refused");
      return;
    }
    state_ = join_state::joined;
    next_update_ = now + jitter(cfg_.update_interval);
    next_finger_ = now + jitter(cfg_.finger_interval);
    if (cfg_.partition_check_interval.count() > 0) {
      next_partition_check_ = now + jitter(cfg_.partition_check_interval);
    }
    log("joined the overlay");
    // RFC 6940 10.5 step 9.
    send_updates_to_neighbors(now);
    last_replicas_ = replica_set();
    last_range_start_ = range_start();
    note_predecessors(now);
    return;
  }
}

// ---------------------------------------------------------------------------------------------
// Topology

pr::attach_req overlay_core::make_attach_req() const {
  // No ICE (TLS-TCP-FH-NO-ICE): one host candidate, our listening address. The requester opens
  // the link once the answer arrives; send_update asks the answerer for its routing table.
  pr::attach_req req;
  fill_no_ice_attach(req, "passive", cfg_.listen_address);
  req.send_update = true;
  return req;
}

void overlay_core::do_attach(const pr::node_id& target, bool resource,
                             std::vector<pr::destination> prefix, time_point now) {
  if (!resource) {
    if (target == cfg_.self || link_to(target) || attaching_.count(target) != 0) return;
    if (attaching_.size() >= cfg_.max_candidates) return;
  }
  if (links_.size() >= cfg_.max_links && !evictable_link(now)) return;
  auto req = make_attach_req();
  auto dest = std::move(prefix);
  if (resource) {
    dest.push_back(pr::to_destination(pr::resource_id{pr::to_bytes(target.view())}));
  } else {
    dest.push_back(pr::to_destination(target));
  }
  std::optional<link_id> via;
  if (dest.size() > 1 && dest.front().node()) via = link_to(*dest.front().node());
  if (originate(std::move(dest), req, purpose::attach, now, via) && !resource) {
    attaching_[target] = now + cfg_.request_timeout;
  }
}

void overlay_core::attach_answered(const pr::attach_ans& ans, const pr::node_id& responder,
                                   time_point now) {
  if (responder == cfg_.self) return;
  if (cfg_.role == node_role::joining_peer &&
      (state_ == join_state::attaching || state_ == join_state::bootstrapping) &&
      !admitting_peer_) {
    admitting_peer_ = responder;
    state_ = join_state::awaiting_update;
    // Its Update may have overtaken this answer (it comes straight, the answer through the
    // bootstrap peer).
    maybe_send_join(now);
  }
  if (link_to(responder)) return;
  for (const auto& c : ans.candidates) {
    if (c.overlay_link != pr::overlay_link_type::tls_tcp_fh_no_ice) continue;
    attaching_[responder] = now + cfg_.request_timeout;
    if (opening_.size() >= cfg_.max_candidates) opening_.erase(opening_.begin());
    opening_[responder] = now + cfg_.request_timeout;
    actions_.push_back(open_link_action{c.addr_port, responder});
    return;
  }
  log("Attach answer without a usable candidate");
}

void overlay_core::maybe_send_join(time_point now) {
  // RFC 6940 10.5 step 5: once the admitting peer has sent its Update over our link to it.
  if (state_ != join_state::awaiting_update || !admitting_peer_) return;
  for (const auto& [id, c] : links_) {
    if (c.remote == *admitting_peer_ && c.is_peer && !c.leaving) {
      state_ = join_state::joining;
      originate({pr::to_destination(c.remote)}, pr::join_req{cfg_.self, {}}, purpose::join, now,
                id);
      return;
    }
  }
}

void overlay_core::rebuild_routes() {
  std::vector<pr::node_id> peers;
  for (const auto& [id, c] : links_) {
    if (c.is_peer && !c.leaving) peers.push_back(c.remote);
  }
  routes_.rebuild(peers);
}

void overlay_core::mark_peer(link_id link, time_point now) {
  auto it = links_.find(link);
  if (it == links_.end() || it->second.is_peer || it->second.leaving) return;
  const auto old_neighbors = neighbor_set();
  const auto old_replicas = last_replicas_;
  it->second.is_peer = true;
  candidates_.erase(it->second.remote);
  routes_.add(it->second.remote);
  topology_changed(old_neighbors, old_replicas, now);
}

void overlay_core::peer_lost(const pr::node_id& node, time_point now) {
  const auto old_neighbors = neighbor_set();
  const auto old_replicas = last_replicas_;
  rebuild_routes();
  // Others' Updates may name it for a while: do not attach to it again too soon.
  candidates_.erase(node);
  if (departed_.size() >= cfg_.max_candidates) departed_.erase(departed_.begin());
  departed_[node] = now + cfg_.request_timeout;
  topology_changed(old_neighbors, old_replicas, now);
}

void overlay_core::topology_changed(const std::vector<pr::node_id>& old_neighbors,
                                    const std::vector<pr::node_id>& old_replicas, time_point now) {
  note_predecessors(now);
  if (state_ != join_state::joined) return;
  if (neighbor_set() != old_neighbors && cfg_.reactive) send_updates_to_neighbors(now);
  // Re-replicate our range to new members of the replica set (RFC 6940 10.7.3).
  // When our range grew (a predecessor left), the replicas lack the part we took over: send the
  // whole range to every replica holder.
  const auto start = range_start();
  const bool grew = last_range_start_ && start != *last_range_start_ &&
                    pr::in_open_interval(*last_range_start_, start, cfg_.self);
  const bool shrank = last_range_start_ && start != *last_range_start_ &&
                      pr::in_open_interval(start, *last_range_start_, cfg_.self);
  if (shrank) hand_over_lost_range(*last_range_start_, now);
  last_range_start_ = start;
  const auto replicas = replica_set();
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    if (grew || !contains_node(old_replicas, replicas[i])) {
      replicate_range_to(replicas[i], static_cast<std::uint8_t>(i + 1), now);
    }
  }
  last_replicas_ = replicas;
}

void overlay_core::replicate_range_to(const pr::node_id& to, std::uint8_t replica_number,
                                      time_point now) {
  if (!storage_) return;
  const auto l = link_to(to);
  if (!l) return;
  for (auto& req : storage_->export_range(range_start(), cfg_.self, now)) {
    req.replica_number = replica_number;
    originate({pr::to_destination(to)}, req, purpose::store_replica, now, *l);
  }
}

void overlay_core::hand_over_lost_range(const pr::node_id& old_start, time_point now) {
  // Routed by Resource-ID rather than sent to the new predecessor: when two rings merge we may
  // know only some of the peers now between old_start and us, and a value handed to one that is
  // not responsible for it would stay there. Routed, each lands where the overlay says it
  // belongs, and moves on again from there if that peer's range shrinks in turn.
  hand_over(old_start, range_start(), 1, now);
}

void overlay_core::hand_over(const pr::node_id& after, const pr::node_id& up_to, unsigned attempt,
                             time_point now) {
  if (!storage_) return;
  auto lost = storage_->export_range(after, up_to, now);
  if (lost.empty()) return;
  if (attempt == 1) {
    log("range shrank: " + std::to_string(lost.size()) + " resources of (" + after.hex() + ", " +
        up_to.hex() + "] to hand over");
  }
  for (auto& req : lost) handover_queue_.push_back({std::move(req), std::nullopt, attempt});
  send_queued_handovers(now);
}

void overlay_core::send_queued_handovers(time_point now) {
  if (state_ == join_state::left) {
    handover_queue_.clear();  // gone from the overlay: the Leave's hand-over went out already
    return;
  }
  const auto room = cfg_.max_pending - cfg_.max_pending / 4;
  while (!handover_queue_.empty() && pending_.size() < room) {
    auto h = std::move(handover_queue_.front());
    handover_queue_.pop_front();
    h.req.replica_number = kHandoverReplicaNumber;
    ++stats_.handovers;
    if (h.to) {
      // A Join's: straight to the joining peer while its link lasts.
      if (const auto l = link_to(*h.to)) {
        originate({pr::to_destination(*h.to)}, h.req, purpose::store_handoff, now, *l);
      }
      continue;
    }
    const auto point = h.req.resource.as_ring_point();
    if (!point || routes_.is_responsible(*point)) continue;  // ours again meanwhile
    const auto resource = h.req.resource;
    const auto tx = originate({pr::to_destination(resource)}, h.req, purpose::store_handover, now);
    if (!tx) continue;
    const auto it = pending_.lower_bound(pending_key{*tx, link_id{}});
    if (it != pending_.end() && it->first.txid == *tx) {
      it->second.target = *point;
      it->second.attempt = h.attempt;
    }
  }
}

void overlay_core::retry_handovers(time_point now) {
  next_handover_retry_.reset();
  const auto due = std::exchange(handover_retry_, {});
  log("hand-over of " + std::to_string(due.size()) +
      " resources sent again (last failure: " + last_handover_failure_ + ")");
  const auto one = pr::node_id::power_of_two(0, cfg_.self.view().size());
  for (const auto& [point, attempts] : due) hand_over(point - one, point, attempts + 1, now);
}

void overlay_core::send_update(link_id link, pr::chord_update_type type, time_point now) {
  const auto it = links_.find(link);
  if (it == links_.end() || cfg_.role == node_role::client) return;
  if (state_ != join_state::joined) return;
  pr::update_req u;
  u.uptime = static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(now - started_).count());
  u.type = type;
  if (type != pr::chord_update_type::peer_ready) {
    u.predecessors = routes_.predecessors();
    u.successors = routes_.successors();
  }
  if (type == pr::chord_update_type::full) u.fingers = routes_.fingers();
  const auto target = it->second.remote;
  if (auto tx = originate({pr::to_destination(target)}, u, purpose::update, now, link)) {
    pending_[pending_key{*tx, link}].direct = true;
  }
}

void overlay_core::send_updates_to_neighbors(time_point now) {
  for (const auto& n : neighbor_set()) {
    if (const auto l = link_to(n)) send_update(*l, pr::chord_update_type::neighbors, now);
  }
}

void overlay_core::learn_candidates(const std::vector<pr::node_id>& ids, link_id told_by,
                                    time_point now) {
  std::vector<pr::destination> prefix;
  if (told_by != link_id{}) {
    if (const auto it = links_.find(told_by); it != links_.end()) {
      prefix.push_back(pr::to_destination(it->second.remote));
    }
  }
  for (const auto& n : ids) {
    if (n == cfg_.self || n.size() != cfg_.self.size() || departed_.count(n) != 0) continue;
    // Only peers that would enter the Routing Table are worth a link now: a closer neighbor or a
    // finger for an empty interval (RFC 6940 10.7.3, 10.7.4.2).
    const unsigned fi = routes_.finger_index(n);
    const bool finger_gap = fi >= 1 && fi <= cfg_.finger_slots && !routes_.finger(fi);
    // A finger nearer its interval start than ours: flagged, and searched at that slot's turn
    // (RFC 6940 10.7.4.2 alternative 2), one Attach to the target rather than one per name heard.
    if (!finger_gap && would_improve_finger(n)) better_finger_heard_.at(fi) = true;
    const bool useful = routes_.improves_neighbors(n) || finger_gap;
    if (const auto l = link_to(n)) {
      // Linked, but it never told us it is a peer (e.g. our bootstrap link): ask it for an
      // Update (RouteQuery with send_update, RFC 6940 6.4.2.4).
      if (useful && !links_.at(*l).is_peer && attaching_.count(n) == 0 &&
          attaching_.size() < cfg_.max_candidates) {
        pr::route_query_req q;
        q.send_update = true;
        q.destination = pr::to_destination(n);
        if (originate({pr::to_destination(n)}, q, purpose::route_query, now, *l)) {
          attaching_[n] = now + cfg_.request_timeout;
        }
      }
      continue;
    }
    if (useful) {
      if (candidates_.size() < cfg_.max_candidates) candidates_[n] = now + cfg_.update_interval;
      do_attach(n, false, prefix, now);
    }
  }
}

bool overlay_core::would_improve_finger(const pr::node_id& peer) const {
  const unsigned i = routes_.finger_index(peer);
  if (i < 1 || i > cfg_.finger_slots) return false;
  const auto current = routes_.finger(i);
  if (!current) return true;
  // routing_table::add keeps the peer nearest the interval start (the target's responsible
  // peer): without this, the first peer found (often the bootstrap peer) stays everyone's finger.
  const auto target = pr::finger_target(cfg_.self, i);
  return pr::ring_distance(target, peer) < pr::ring_distance(target, *current);
}

// ---------------------------------------------------------------------------------------------
// Partition detection (RFC 6940 10.7.4.4)

void overlay_core::start_partition_check(time_point now) {
  if (cfg_.role == node_role::client || state_ != join_state::joined || partition_check_opening_) {
    return;
  }
  // The next bootstrap peer that is not ourselves.
  const auto is_self = [&](const pr::ip_address_port& a) {
    if (a == cfg_.listen_address) return true;
    return std::any_of(bootstrap_nodes_.begin(), bootstrap_nodes_.end(),
                       [&](const auto& e) { return e.first == a && e.second == cfg_.self; });
  };
  std::optional<pr::ip_address_port> address;
  for (std::size_t tries = 0; tries < cfg_.bootstrap.size() && !address; ++tries) {
    const auto& a = cfg_.bootstrap[partition_check_index_++ % cfg_.bootstrap.size()];
    if (!is_self(a)) address = a;
  }
  if (!address) return;
  for (const auto& [a, node] : bootstrap_nodes_) {
    if (a != *address) continue;
    if (const auto l = link_to(node)) {
      send_partition_check(*l, now);
      return;
    }
  }
  if (links_.size() >= cfg_.max_links && !evictable_link(now)) return;
  partition_check_opening_ = std::pair{*address, now + cfg_.request_timeout};
  actions_.push_back(open_link_action{*address, std::nullopt});
}

void overlay_core::remember_bootstrap_node(const pr::ip_address_port& address,
                                           const pr::node_id& node) {
  std::erase_if(bootstrap_nodes_, [&](const auto& e) { return e.first == address; });
  if (bootstrap_nodes_.size() >= cfg_.bootstrap.size()) bootstrap_nodes_.clear();
  bootstrap_nodes_.emplace_back(address, node);
}

void overlay_core::send_partition_check(link_id link, time_point now) {
  const auto it = links_.find(link);
  if (it == links_.end()) return;
  const auto through = it->second.remote;
  // To the Resource-ID equal to our Node-ID: the peer responsible for our place in B's ring.
  const pr::resource_id own_place{pr::to_bytes(cfg_.self.view())};
  if (auto tx = originate({pr::to_destination(own_place)}, pr::ping_req{}, purpose::partition_check,
                          now, link)) {
    pending_[pending_key{*tx, link}].target = through;
    ++stats_.partition_checks;
  }
}

bool overlay_core::own_partition_check_returned(const pr::message& m) {
  // Our check came back to us through B's ring: B's ring is ours (no answer needed; an error for
  // the "loop" would only travel the same way back).
  const auto& via = m.header.via_list;
  if (via.empty() || via.front().node() == nullptr || *via.front().node() != cfg_.self) {
    return false;
  }
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (it->first.txid == m.header.transaction_id && it->second.why == purpose::partition_check) {
      pending_.erase(it);
      return true;
    }
  }
  return false;
}

void overlay_core::partition_check_answered(const pending_request& p, const pr::message& answer,
                                            time_point now) {
  // An error means B's ring could not route it: nothing learnt.
  if (answer.contents.code != pr::codes::ping_ans || state_ != join_state::joined) return;
  const auto signer = signer_.verify(answer, now);
  if (!signer) return;
  const auto& responder = signer->node;
  if (responder == cfg_.self) return;
  if (!routes_.successors().empty() && responder == routes_.successors().front()) return;
  ++stats_.partitions_detected;
  log("partition check: " + responder.hex() + " answers for our Node-ID through " + p.target.hex() +
      ": attaching to it");
  if (const auto l = link_to(responder)) {
    send_update(*l, pr::chord_update_type::full, now);
    return;
  }
  do_attach(responder, false, {pr::to_destination(p.target)}, now);
}

// ---------------------------------------------------------------------------------------------
// Connection table upkeep

std::vector<link_id> overlay_core::busy_links() const {
  std::vector<link_id> out;
  for (const auto& [k, p] : pending_) {
    if (k.link != link_id{}) out.push_back(k.link);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::map<pr::node_id, link_id> overlay_core::preferred_links() const {
  // link_to()'s choice for every linked node, in one pass over the table.
  std::map<pr::node_id, link_id> out;
  for (const auto& [id, c] : links_) {
    if (c.leaving) continue;
    const auto keeper = cfg_.self < c.remote ? link_origin::outbound : link_origin::inbound;
    const auto [it, fresh] = out.emplace(c.remote, id);
    if (!fresh && c.origin_told && c.origin == keeper) {
      const auto& chosen = links_.at(it->second);
      if (!(chosen.origin_told && chosen.origin == keeper)) it->second = id;
    }
  }
  return out;
}

bool overlay_core::is_surplus_peer_link(const connection& c,
                                        const std::vector<link_id>& busy) const {
  if (c.leaving || contains_link(busy, c.link)) return false;
  if (attaching_.count(c.remote) != 0 || owe_update_.count(c.remote) != 0) return false;
  // Only a link we opened: we asked for it because we wanted the peer in our Routing Table (or to
  // bootstrap). A link the remote opened is its to close: it may use us as a finger, which we
  // cannot see, and a client (no Join or Update ever came over its link) is served through it.
  if (c.origin != link_origin::outbound) return false;
  return !routes_.contains(c.remote);
}

std::optional<link_id> overlay_core::evictable_link(time_point now) const {
  const auto busy = busy_links();
  const auto preferred = preferred_links();
  std::optional<link_id> best;
  int best_rank = 0;
  for (const auto& [id, c] : links_) {
    if (contains_link(busy, id) || (bootstrap_link_ && *bootstrap_link_ == id && !joined())) {
      continue;
    }
    if (attaching_.count(c.remote) != 0 || owe_update_.count(c.remote) != 0) continue;
    // Best first: a leaving peer's link, a second link to a peer, a surplus link we opened, a
    // peer's link that is not in our Routing Table. Never a client's link (not a peer, and
    // opened by it) and never a peer we route through.
    int rank = 0;
    if (c.leaving) {
      rank = 4;
    } else if (preferred.at(c.remote) != id) {
      rank = 3;
    } else if (routes_.contains(c.remote)) {
      rank = 0;
    } else if (c.origin == link_origin::outbound) {
      rank = 2;
    } else if (c.is_peer) {
      rank = 1;
    }
    // Quiet ones first: an answer to a request forwarded over a busy one may still come back
    // that way.
    if (rank > 0 && now - c.last_traffic >= cfg_.request_timeout) rank += 4;
    if (rank > best_rank) {
      best_rank = rank;
      best = id;
    }
  }
  return best;
}

void overlay_core::close_surplus_link(link_id link, std::string reason, time_point now) {
  log("link " + std::to_string(link.value) + " closed: " + reason);
  actions_.push_back(close_link_action{link, std::move(reason)});
  // Forget it now (nothing may be sent on it any more); the runtime's on_link_down for it is then
  // a no-op. Its remote is not in the Routing Table, or still linked: nothing is lost.
  on_link_down(link, now);
}

void overlay_core::prune_links(time_point now) {
  if (cfg_.role == node_role::client || state_ != join_state::joined) return;
  const auto busy = busy_links();
  const auto preferred = preferred_links();
  std::vector<std::pair<link_id, std::string>> to_close;
  for (auto& [id, c] : links_) {
    auto linger = cfg_.link_linger;
    std::string why;
    if (!c.leaving && preferred.at(c.remote) != id) {
      // A second link to a peer (both attached at once). Both ends agree which link is kept when
      // the runtime told each which end opened it; two links opened by one side are that side's
      // to sort out. Idle for request_timeout: the remote's requests on it are answered.
      const auto& kept = links_.at(preferred.at(c.remote));
      const bool agreed = c.origin_told && kept.origin_told &&
                          (c.origin != kept.origin || c.origin == link_origin::outbound);
      if (agreed && !contains_link(busy, id)) why = "second link to the same peer";
      linger = std::max(linger, cfg_.request_timeout);
    }
    if (why.empty() && is_surplus_peer_link(c, busy)) {
      if ((bootstrap_link_ && *bootstrap_link_ == id) || c.partition_check) {
        // Joined, and the bootstrap peer did not enter our table: it served its purpose. No
        // linger, as every joining peer holds one of the bootstrap peer's links until then (and
        // every peer, one per partition check).
        why = "bootstrap link no longer needed";
        linger = duration{0};
      } else {
        why = "peer no longer in the routing table";
      }
    }
    if (why.empty()) {
      c.surplus_since.reset();
      continue;
    }
    if (!c.surplus_since) c.surplus_since = now;
    // Quiet for request_timeout as well: an answer to a request forwarded over it (routing state
    // lives in the via list, so we keep no record of those) comes back the same way.
    if (now - *c.surplus_since >= linger && now - c.last_traffic >= cfg_.request_timeout) {
      to_close.emplace_back(id, std::move(why));
    }
  }
  for (auto& [id, why] : to_close) {
    ++stats_.links_pruned;
    close_surplus_link(id, std::move(why), now);
  }
}

void overlay_core::note_predecessors(time_point now) {
  if (routes_.predecessors() == last_predecessors_) return;
  last_predecessors_ = routes_.predecessors();
  predecessors_since_ = now;
  if (storage_ && cfg_.role != node_role::client) next_drop_ = now + cfg_.replica_hold_down;
}

void overlay_core::drop_foreign_data(time_point now) {
  // RFC 6940 10.7.3: "When peer x detects that it is no longer in the replica set for a resource R
  // (i.e., there are three predecessors between x and R), it SHOULD delete all data associated
  // with R from its local store." We keep (third predecessor, self]: our own range and those of
  // our first two predecessors, whose replica holder we are (10.4). A wrong view must not cost a
  // copy, so only with three predecessors known, the list unchanged for replica_hold_down (the
  // hold-down time of 10.7.1), and none of them suspected dead (a liveness Ping out).
  if (!storage_ || cfg_.role == node_role::client || state_ != join_state::joined) return;
  note_predecessors(now);
  const auto& preds = routes_.predecessors();
  if (preds.size() < 3 || now - predecessors_since_ < cfg_.replica_hold_down) return;
  const std::vector<pr::node_id> first_three(preds.begin(), preds.begin() + 3);
  for (const auto& [k, p] : pending_) {
    if (p.why == purpose::ping && contains_node(first_three, p.target)) return;
  }
  storage_->drop_range(cfg_.self, first_three[2]);
  ++stats_.ranges_dropped;
}

}  // namespace p2psip::peer
