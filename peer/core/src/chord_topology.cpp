#include "p2psip/peer/chord_topology.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "p2psip/node/app_attach.hpp"
#include "p2psip/protocol/errors.hpp"

namespace p2psip::peer {

namespace pr = protocol;
using pr::reload_errc;

namespace {

/// After a round of reactive Updates, further changes of the neighbor set wait this long and go
/// out together, so that a burst of changes (peers joining close together) sends one Update per
/// neighbor rather than one per change; also how recent an Update with the same lists must be
/// for a repeat to be left out. Ten times a LAN's round trip, a small part of any
/// update_interval.
constexpr duration neighbor_update_delay{100};

/// A neighbor left out of another's Update is pinged unless we heard from it this recently
/// (then it was alive after the sender made its lists).
constexpr duration omitted_neighbor_quiet{1000};

bool contains_node(const std::vector<pr::node_id>& v, const pr::node_id& n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

/// Why a join step failed, for the WARN line: the RELOAD error's name and the peer's words
/// ("refused: Error_Config_Too_Old ..."), or "unanswered" (a peer of another overlay drops our
/// messages without a word).
std::string join_failure_text(const node::outcome& o) {
  if (o.what == node::outcome::kind::error) {
    const std::string info(o.error.error_info.begin(), o.error.error_info.end());
    const bool printable = !info.empty() && std::all_of(info.begin(), info.end(), [](char c) {
      return c >= 0x20 && c < 0x7f;
    });
    return "refused by " + (o.signer ? o.signer->node.hex() : std::string("a peer")) + ": " +
           pr::make_error_code(static_cast<pr::reload_errc>(o.error.error_code)).message() +
           (printable ? " (" + info + ")" : "");
  }
  if (o.what == node::outcome::kind::timeout) {
    return "got no answer (a peer of another overlay, or a dead one, answers nothing)";
  }
  return node::describe(o);
}

}  // namespace

chord_topology::chord_topology(const core_config& cfg, node::connection_table& links,
                               node::message_transport& transport, node::action_queue& actions,
                               random_source& rng, core_stats& stats)
    : cfg_(cfg),
      links_(links),
      transport_(transport),
      actions_(actions),
      rng_(rng),
      stats_(stats),
      routes_(cfg.self, cfg.neighbors) {
  finger_slots_ = std::clamp(cfg_.finger_slots, 1u, routes_.finger_count());
  better_finger_heard_.assign(finger_slots_ + 1, false);
  for (const auto code : {pr::codes::attach_req, pr::codes::join_req, pr::codes::leave_req,
                          pr::codes::update_req, pr::codes::route_query_req}) {
    transport_.handle(code, *this);
  }
}

// ---------------------------------------------------------------------------------------------
// Views

bool chord_topology::is_responsible(const pr::node_id& point) const {
  return routes_.is_responsible(point);
}

std::optional<pr::node_id> chord_topology::next_hop(const pr::node_id& point,
                                                    const std::vector<pr::node_id>& avoid) const {
  return routes_.next_hop(point, avoid);
}

pr::node_id chord_topology::range_start() const {
  return routes_.predecessors().empty() ? cfg_.self : routes_.predecessors().front();
}

std::vector<pr::node_id> chord_topology::neighbor_set() const {
  std::vector<pr::node_id> out = routes_.successors();
  for (const auto& p : routes_.predecessors()) {
    if (!contains_node(out, p)) out.push_back(p);
  }
  return out;
}

std::vector<pr::node_id> chord_topology::replica_set() const {
  std::vector<pr::node_id> out;
  for (const auto& s : routes_.successors()) {
    if (out.size() == 2) break;
    out.push_back(s);
  }
  return out;
}

void chord_topology::become_joined(time_point now) {
  state_ = join_state::joined;
  next_update_ = now + node::jittered(cfg_.update_interval, rng_);
  next_finger_ = now + node::jittered(cfg_.finger_interval, rng_);
  next_upkeep_ = now + node::jittered(cfg_.neighbor_check_interval.count() > 0
                                          ? cfg_.neighbor_check_interval / 3
                                          : prune_interval(),
                                      rng_);
  if (cfg_.partition_check_interval.count() > 0) {
    next_partition_check_ = now + node::jittered(cfg_.partition_check_interval, rng_);
  }
}

duration chord_topology::prune_interval() const {
  // Surplus links are closed after link_linger and request_timeout of quiet: look that often,
  // whatever the (RFC default: hourly) finger interval.
  return std::max(duration{500}, std::min(cfg_.link_linger, cfg_.request_timeout) / 2);
}

std::uint32_t chord_topology::uptime_s(time_point now) const {
  return static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::seconds>(now - started_).count());
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

void chord_topology::start(time_point now) {
  started_ = now;
  if (cfg_.role == node_role::joining_peer) {
    start_join(now);
    return;
  }
  become_joined(now);
  log("first peer of the overlay: joined");
  if (listener_) listener_->ring_joined(now);  // the whole ring: the first Join shrinks it
}

void chord_topology::start_join(time_point now) {
  state_ = join_state::bootstrapping;
  join_started_ = now;
  admitting_peer_.reset();
  if (bootstrap_link_ && links_.contains(*bootstrap_link_)) {
    state_ = join_state::attaching;
    do_attach(cfg_.self.next(), true, {}, now, *bootstrap_link_);
    return;
  }
  if (cfg_.bootstrap.empty()) {
    log("no bootstrap peer configured");
    return;
  }
  const auto& addr = cfg_.bootstrap[bootstrap_index_ % cfg_.bootstrap.size()];
  ++bootstrap_index_;
  actions_.push(node::open_link_action{addr, std::nullopt});
}

void chord_topology::on_link_up(link_id link, const pr::node_id& remote, time_point now,
                                link_origin origin) {
  if (remote == cfg_.self || links_.contains(link)) {
    if (remote == cfg_.self && partition_check_opening_ && origin != link_origin::inbound) {
      // A bootstrap address that is ours under another name (we listen on 0.0.0.0, say): not
      // one to check through again.
      remember_bootstrap_node(partition_check_opening_->first, cfg_.self);
      partition_check_opening_.reset();
    }
    actions_.push(node::close_link_action{link, "refused: self or duplicate link id"});
    return;
  }
  const bool bootstrapping = state_ == join_state::bootstrapping && !bootstrap_link_;
  const bool we_opened = opening_.count(remote) != 0;
  // Separate budgets (RFC 6940 leaves admission to the implementation): links we opened and
  // links of peers that Attached to us first count against max_links; a full peer budget
  // evicts a surplus peer link, and a peer that Attached is admitted even then (a joining peer
  // always gets in; pruning brings the table back). Any other inbound link is a client's (or a
  // joining peer's bootstrap link) and counts against max_clients: when those are full, the
  // client quiet the longest makes room, so idle clients cannot keep newcomers out.
  const bool peer_budget = we_opened || bootstrapping || origin == link_origin::outbound ||
                           attached_by_.count(remote) != 0 ||
                           (partition_check_opening_ && origin != link_origin::inbound);
  if (peer_budget) {
    if (peer_links_full() && !make_room(now) && attached_by_.count(remote) == 0) {
      actions_.push(node::close_link_action{link, "refused: connection table full"});
      return;
    }
  } else if (client_links_full() && !evict_idle_client(now)) {
    actions_.push(node::close_link_action{link, "refused: client links full and all busy"});
    return;
  }
  opening_.erase(remote);
  // The link opened for a partition check (an inbound link cannot be ours; an untold origin is
  // taken as ours: routing the check through another peer than B answers the question too).
  const bool checking = partition_check_opening_ && !bootstrapping && !we_opened &&
                        origin != link_origin::inbound && state_ == join_state::joined;
  if (checking) {
    remember_bootstrap_node(partition_check_opening_->first, remote);
    partition_check_opening_.reset();
    if (const auto existing = links_.link_to(remote)) {
      actions_.push(node::close_link_action{link, "second link to a bootstrap peer"});
      send_partition_check(*existing, now);
      return;
    }
  }
  connection c;
  c.link = link;
  c.remote = remote;
  c.origin_told = origin != link_origin::unknown;
  // Untold: ours when we asked for a link to this node (or to a bootstrap address).
  c.origin = c.origin_told                ? origin
             : we_opened || bootstrapping ? link_origin::outbound
                                          : link_origin::inbound;
  c.last_traffic = now;
  c.partition_check = checking;
  c.attached_peer = attached_by_.count(remote) != 0;
  links_.add(c);
  const bool we_attached = attaching_.erase(remote) != 0;
  if (checking) send_partition_check(link, now);

  if (bootstrapping) {
    bootstrap_link_ = link;
    bootstrap_failures_ = 0;
    bootstrap_backoff_ = duration{0};
    next_bootstrap_.reset();
    start_join(now);
  }
  // The Attach answerer owes its Update (RFC 6940 6.4.2.4.1); a joined requester Updates the
  // answerer too, which takes it into its table (as a finger, say).
  if (auto it = owe_update_.find(remote); it != owe_update_.end()) {
    owe_update_.erase(it);
    send_update(link, pr::chord_update_type::full, now);
  } else if (we_attached && state_ == join_state::joined) {
    send_update(link, pr::chord_update_type::full, now);
  }
}

void chord_topology::on_link_failed(const pr::ip_address_port& address, time_point now,
                                    std::string_view reason) {
  if (partition_check_opening_ && partition_check_opening_->first == address) {
    partition_check_opening_.reset();
  }
  if (state_ == join_state::bootstrapping && !bootstrap_link_) {
    bootstrap_failed(address, reason, now);
    return;
  }
  log("link to " + address.to_string() + " failed" +
      (reason.empty() ? std::string() : ": " + std::string(reason)));
}

void chord_topology::bootstrap_failed(const pr::ip_address_port& address, std::string_view reason,
                                      time_point now) {
  if (cfg_.bootstrap.empty()) return;
  // Not joined, and this is why: the one line an admin needs (it was at DEBUG, behind a status
  // line saying joined=no). One per try, and the tries back off, so this cannot flood.
  std::string line = "not joined: bootstrap peer " + address.to_string() +
                     " failed: " + (reason.empty() ? std::string("no link") : std::string(reason));
  ++bootstrap_failures_;
  if (bootstrap_failures_ % cfg_.bootstrap.size() != 0) {
    actions_.warn(line + "; trying the next bootstrap peer");
    start_join(now);  // opens a link to the next bootstrap peer
    return;
  }
  // Every bootstrap peer failed in a row: wait before the next round rather than reconnecting in
  // a tight loop (a refused connection on loopback fails in microseconds).
  bootstrap_backoff_ = std::clamp(bootstrap_backoff_ * 2, duration{200}, duration{10'000});
  next_bootstrap_ = now + bootstrap_backoff_;
  actions_.warn(line + "; next attempt in " + std::to_string(bootstrap_backoff_.count()) + " ms");
}

void chord_topology::on_link_down(const connection& c, time_point now) {
  last_update_sent_.erase(c.link);
  if (bootstrap_link_ && *bootstrap_link_ == c.link) bootstrap_link_.reset();
  // A second link to the same peer (both sides attached at once) takes over its role.
  bool other = false;
  for (const auto& [id, o] : links_.rows()) {
    if (o.remote == c.remote && !o.leaving) {
      if (c.is_peer) links_.find(id)->is_peer = true;
      other = true;
    }
  }
  // Only a peer of our Routing Table is lost with its link (RFC 6940 10.7.1, 10.7.2). A peer we
  // do not route through may have closed a link it no longer needs (see prune_links) and is alive.
  if (c.is_peer && !other && routes_.contains(c.remote)) peer_lost(c.remote, now);
}

void chord_topology::leave(time_point now) {
  if (state_ != join_state::joined) {
    state_ = join_state::left;
    return;
  }
  // Our data goes to the successor, which becomes responsible for it (before the Leave, while it
  // still takes us for a peer).
  if (listener_ && !routes_.successors().empty()) {
    const auto succ = routes_.successors().front();
    if (const auto l = links_.link_to(succ)) listener_->leaving(succ, *l, now);
  }
  // RFC 6940 10.9: to predecessors "from_succ" with our successors, to successors "from_pred"
  // with our predecessors.
  for (const auto& n : neighbor_set()) {
    const auto l = links_.link_to(n);
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
    transport_.originate({pr::to_destination(n)}, pr::leave_req{cfg_.self, std::move(*enc)}, {},
                         now, node::send_options{*l, true});
  }
  state_ = join_state::left;
  log("left the overlay");
}

// ---------------------------------------------------------------------------------------------
// Timers

std::optional<time_point> chord_topology::next_deadline() const {
  std::optional<time_point> d;
  auto consider = [&](time_point t) {
    if (!d || t < *d) d = t;
  };
  for (const auto& [n, t] : attaching_) consider(t);
  if (next_bootstrap_) consider(*next_bootstrap_);
  if (state_ == join_state::joined) {
    if (next_update_) consider(*next_update_);
    if (neighbors_update_due_) consider(*neighbors_update_due_);
    if (next_finger_) consider(*next_finger_);
    if (next_upkeep_) consider(*next_upkeep_);
    if (next_partition_check_) consider(*next_partition_check_);
    if (partition_check_opening_) consider(partition_check_opening_->second);
  } else if (state_ != join_state::idle && state_ != join_state::left) {
    consider(join_started_ + cfg_.join_retry);
  }
  return d;
}

void chord_topology::on_timer(time_point now) {
  std::erase_if(attaching_, [&](const auto& e) { return e.second <= now; });
  std::erase_if(opening_, [&](const auto& e) { return e.second <= now; });
  std::erase_if(owe_update_, [&](const auto& e) { return e.second <= now; });
  std::erase_if(candidates_, [&](const auto& e) { return e.second <= now; });
  std::erase_if(departed_, [&](const auto& e) { return e.second <= now; });
  std::erase_if(attached_by_, [&](const auto& e) { return e.second <= now; });
  if (next_bootstrap_ && *next_bootstrap_ <= now) {
    next_bootstrap_.reset();
    if (state_ == join_state::bootstrapping && !bootstrap_link_) start_join(now);
  }
  if (state_ == join_state::joined) {
    if (neighbors_update_due_ && *neighbors_update_due_ <= now) {
      neighbors_update_due_.reset();
      last_neighbors_round_ = now;
      send_updates_to_neighbors(now, neighbor_update_delay);
    }
    if (next_update_ && *next_update_ <= now) {
      next_update_ = now + node::jittered(cfg_.update_interval, rng_);
      stabilize(now);
    }
    if (next_finger_ && *next_finger_ <= now) {
      next_finger_ = now + node::jittered(cfg_.finger_interval, rng_);
      maintain_fingers(now);
      prune_links(now);
    }
    if (next_upkeep_ && *next_upkeep_ <= now) {
      if (cfg_.neighbor_check_interval.count() > 0) check_neighbors(now);
      search_better_fingers(now);
      next_upkeep_ = next_upkeep(now, prune_links(now));
    }
    if (partition_check_opening_ && partition_check_opening_->second <= now) {
      partition_check_opening_.reset();
    }
    if (next_partition_check_ && *next_partition_check_ <= now) {
      next_partition_check_ = now + node::jittered(cfg_.partition_check_interval, rng_);
      start_partition_check(now);
    }
  } else if (state_ == join_state::awaiting_admission) {
    if (join_started_ + cfg_.join_retry <= now) check_admission(now);
  } else if (state_ != join_state::idle && state_ != join_state::left && !next_bootstrap_ &&
             join_started_ + cfg_.join_retry <= now) {
    log("join stalled: starting again");
    start_join(now);
  }
}

void chord_topology::stabilize(time_point now) {
  if (cfg_.role == node_role::joining_peer && routes_.successors().empty() &&
      !cfg_.bootstrap.empty()) {
    // Lost every peer: we are not part of the ring any more. Join again (RFC 6940 10.7.2).
    log("no successor left: joining again");
    start_join(now);
    return;
  }
  // RFC 6940 10.7.4.1: every neighbor, but one we told the same lists within half an interval
  // (a reactive Update) has heard them and answered, which is what this round checks.
  std::erase_if(last_update_sent_, [&](const auto& e) { return !links_.contains(e.first); });
  send_updates_to_neighbors(now, cfg_.update_interval / 2);
  // Candidates heard of earlier that would still improve the neighbor set.
  std::vector<pr::node_id> better;
  for (const auto& [n, t] : candidates_) {
    if (routes_.improves_neighbors(n) && !links_.link_to(n)) better.push_back(n);
  }
  for (const auto& n : better) do_attach(n, false, {}, now);
  prune_links(now);
  if (listener_) listener_->ring_changed(now);
}

void chord_topology::search_better_fingers(time_point now) {
  // A slot's turn comes every finger_slots_ chord-ping-intervals (16 hours at the RFC's default):
  // a finger taken from the first Updates a peer gets (often an old peer, named in every Update)
  // would stay that long, and the old peer would hold a link from most of the ring. So a slot
  // flagged since the last upkeep is searched now, once: its target's responsible peer answers.
  // The target's responsible peer is the best finger; the old one's link is pruned once it is
  // replaced.
  for (unsigned i = 1; i <= finger_slots_; ++i) {
    if (!better_finger_heard_.at(i) || !routes_.finger(i)) continue;
    better_finger_heard_.at(i) = false;
    do_attach(pr::finger_target(cfg_.self, i), true, {}, now);
  }
}

void chord_topology::maintain_fingers(time_point now) {
  const unsigned i = next_finger_index_;
  next_finger_index_ = next_finger_index_ % finger_slots_ + 1;
  const auto target = pr::finger_target(cfg_.self, i);
  // A slot an Update named a nearer peer for is searched at the link upkeep
  // (search_better_fingers), not here at its turn.
  if (routes_.finger(i)) {
    // Liveness of a finger that is not a neighbor (neighbors get Updates).
    const auto f = *routes_.finger(i);
    if (!routes_.is_neighbor(f)) {
      if (const auto l = links_.link_to(f)) send_direct(*l, pr::ping_req{}, true, now);
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
// Liveness (RFC 6940 10.7.2)

duration chord_topology::quiet_before_ping(const pr::node_id& n) const {
  // The first successor and the first predecessor are checked every interval; the others every
  // third. A neighbor that hangs is found by the two peers beside it within an interval; they
  // drop it and Update their neighbors at once (reactive recovery), and an Update that leaves
  // out a neighbor of ours has us ping that neighbor then (check_omitted_neighbors). So the
  // farther neighbors learn one Ping timeout after the nearest, with a third of the Pings
  // between them.
  const bool beside = (!routes_.successors().empty() && routes_.successors().front() == n) ||
                      (!routes_.predecessors().empty() && routes_.predecessors().front() == n);
  return beside ? cfg_.neighbor_check_interval : 3 * cfg_.neighbor_check_interval;
}

std::vector<chord_topology::checked_neighbor> chord_topology::neighbors_to_check() const {
  std::vector<checked_neighbor> out;
  for (const auto& n : neighbor_set()) {
    // A neighbor being pinged: its answer (traffic) or its timeout (its links close) decides.
    if (suspected(n)) continue;
    if (const auto l = links_.link_to(n)) out.push_back({n, *l, links_.find(*l)->last_received});
  }
  return out;
}

void chord_topology::check_neighbors(time_point now) {
  for (const auto& c : neighbors_to_check()) {
    if (now - c.last_received >= quiet_before_ping(c.node)) {
      send_direct(c.link, pr::ping_req{}, true, now);
    }
  }
}

void chord_topology::check_omitted_neighbors(const pr::node_id& sender, const routing_table& theirs,
                                             time_point now) {
  if (cfg_.neighbor_check_interval.count() <= 0) return;
  for (const auto& c : neighbors_to_check()) {
    // A neighbor of ours that belongs in the sender's lists but is not there: the sender may
    // have found it dead. Ask it ourselves, unless we heard from it a moment ago.
    if (c.node == sender || !theirs.improves_neighbors(c.node)) continue;
    if (now - c.last_received < omitted_neighbor_quiet) continue;
    send_direct(c.link, pr::ping_req{}, true, now);
  }
}

time_point chord_topology::next_upkeep(time_point now, bool links_waiting) {
  // Link upkeep at a random phase, as on its own timer before: peers whose links became
  // surplus together (a ring just formed) do not all close them at one moment, when requests
  // routed over the new fingers are on the wire (the seed sweep lost requests so).
  const auto prune_look = node::jittered(prune_interval(), rng_);
  if (cfg_.neighbor_check_interval.count() <= 0) return now + prune_look;
  // An idle peer's CPU goes mostly to waking up (issue 16), so this timer wakes when a neighbor
  // is due, not on a fixed tick (a third of an interval, which woke three times per interval
  // whatever was due): once neighbor n has been quiet for quiet_before_ping(n) plus offset(n),
  // a part of that tick fixed by n's Node-ID. Both ends of a pair see the pair's
  // last exchange at about the same time; the offsets, each from the other's Node-ID, differ,
  // so one end pings first and the other, hearing it, has nothing to do (equal wake times had
  // both ping at once: twice the Pings). Neighbors due by then share the wake-up.
  const auto tick = cfg_.neighbor_check_interval / 3;
  const auto offset = [&](const pr::node_id& n) {
    const auto fraction = (unsigned{n.data()[0]} << 8) | n.data()[1];
    return tick * fraction / 65536;
  };
  // Links that are or may soon become surplus are looked at every prune interval; otherwise
  // (a link that becomes surplus, or a neighbor's, on a change we are not told of) once per two
  // intervals at least.
  auto next = now + (links_waiting ? prune_look : 2 * cfg_.neighbor_check_interval);
  for (const auto& c : neighbors_to_check()) {
    const auto due = c.last_received + quiet_before_ping(c.node) + offset(c.node);
    next = std::min(next, std::max(due, now + tick / 5));
  }
  return next;
}

void chord_topology::send_direct(link_id link, const pr::message_body& body, bool is_ping,
                                 time_point now) {
  const auto* c = links_.find(link);
  if (!c) return;
  const auto target = c->remote;
  auto done = [this, link, target, is_ping](node::outcome&& o, time_point t) {
    if (is_ping) {
      if (auto it = liveness_checks_.find(target); it != liveness_checks_.end()) {
        if (--it->second == 0) liveness_checks_.erase(it);
      }
    }
    if (o.what == node::outcome::kind::timeout) direct_unanswered(link, target, is_ping, t);
  };
  if (transport_.originate({pr::to_destination(target)}, body, std::move(done), now,
                           node::send_options{link, true}) &&
      is_ping) {
    ++liveness_checks_[target];
  }
}

void chord_topology::direct_unanswered(link_id link, const pr::node_id& target, bool was_ping,
                                       time_point now) {
  if (state_ == join_state::left) return;
  const auto* c = links_.find(link);
  if (!c || c->remote != target) return;
  if (!was_ping) {
    // One lost answer is not death yet: ask again with a Ping, on the same link.
    send_direct(link, pr::ping_req{}, true, now);
    if (liveness_checks_.count(target) != 0) return;
  }
  log("no answer from " + target.hex() + ": its links closed");
  std::vector<link_id> to_close;
  for (const auto& [id, row] : links_.rows()) {
    if (row.remote == target) to_close.push_back(id);
  }
  for (const auto id : to_close) {
    actions_.push(node::close_link_action{id, "peer unresponsive"});
    links_.remove(id);
  }
  peer_lost(target, now);
}

// ---------------------------------------------------------------------------------------------
// Requests addressed to us

void chord_topology::on_request(const node::inbound_request& r, time_point now) {
  if (std::holds_alternative<pr::attach_req>(r.body)) return on_attach(r, now);
  if (std::holds_alternative<pr::join_req>(r.body)) return on_join(r, now);
  if (std::holds_alternative<pr::leave_req>(r.body)) return on_leave(r, now);
  if (std::holds_alternative<pr::update_req>(r.body)) return on_update(r, now);
  if (std::holds_alternative<pr::route_query_req>(r.body)) return on_route_query(r, now);
  transport_.send_error(r, reload_errc::invalid_message, "not a topology request", now);
}

void chord_topology::on_route_query(const node::inbound_request& r, time_point now) {
  const auto& rq = std::get<pr::route_query_req>(r.body);
  std::optional<pr::node_id> point;
  if (const auto* n = rq.destination.node()) point = *n;
  if (const auto* res = rq.destination.resource()) point = res->as_ring_point();
  if (!point) {
    transport_.send_error(r, reload_errc::invalid_message, "unroutable destination", now);
    return;
  }
  pr::route_query_ans ans;
  if (*point == cfg_.self || routes_.is_responsible(*point)) {
    ans.next_peer = cfg_.self;
  } else if (links_.link_to(*point) && rq.destination.node()) {
    ans.next_peer = *point;
  } else {
    ans.next_peer = routes_.next_hop(*point).value_or(cfg_.self);
  }
  transport_.answer(r, ans, now);
  if (rq.send_update && r.direct) send_update(r.link, pr::chord_update_type::full, now);
}

void chord_topology::on_attach(const node::inbound_request& r, time_point now) {
  const auto& at = std::get<pr::attach_req>(r.body);
  const auto& requester = r.signer.node;
  pr::attach_ans ans;
  node::fill_no_ice(ans, "active", cfg_.listen_address);
  transport_.answer(r, ans, now);
  // Peers Attach (to neighbors and fingers); the link it opens next is a peer's, Update or not.
  if (requester != cfg_.self) {
    if (attached_by_.size() >= cfg_.max_candidates) attached_by_.erase(attached_by_.begin());
    attached_by_[requester] = now + cfg_.request_timeout;
    // Usually no link yet (the Attach was routed): then no row to walk.
    if (links_.link_to(requester)) {
      for (const auto& [id, c] : links_.rows()) {
        if (c.remote == requester) links_.find(id)->attached_peer = true;
      }
    }
  }
  if (at.send_update && requester != cfg_.self) {
    if (const auto l = links_.link_to(requester)) {
      send_update(*l, pr::chord_update_type::full, now);
    } else if (owe_update_.size() < cfg_.max_candidates) {
      owe_update_[requester] = now + cfg_.request_timeout;
    }
  }
}

void chord_topology::on_join(const node::inbound_request& r, time_point now) {
  const auto& jr = std::get<pr::join_req>(r.body);
  const auto& requester = r.signer.node;
  if (!r.direct || jr.joining_peer_id != requester || state_ != join_state::joined) {
    transport_.send_error(r, reload_errc::forbidden,
                          "Join must come from the joining peer directly", now);
    return;
  }
  transport_.answer(r, pr::join_ans{}, now);
  // RFC 6940 10.5 step 6: the data the joining peer now owns, straight over its link; step 7 once
  // it holds it: until then we stay responsible for its range.
  const bool repeated = admitting_.count(requester) != 0;
  admitting_[requester] = r.link;
  if (repeated) return;  // again (over a new link, say): its hand-over is under way
  if (!listener_) return admit(requester, now);
  listener_->peer_joining(requester, now, [this, requester](time_point t) { admit(requester, t); });
}

void chord_topology::admit(const pr::node_id& joining, time_point now) {
  const auto it = admitting_.find(joining);
  if (it == admitting_.end()) return;
  const auto link = it->second;
  admitting_.erase(it);
  const auto* c = links_.find(link);
  if (!c || c->remote != joining || state_ != join_state::joined) return;  // it joins again
  mark_peer(link, now);
  // Step 7 (an Update naming it our predecessor) and step 8 (Update to every neighbor), whether
  // or not the set changed, at once: the joining peer waits for step 7. Those mark_peer's
  // reactive round sent already with these lists are not sent twice.
  send_updates_to_neighbors(now, neighbor_update_delay);
  if (!contains_node(neighbor_set(), joining)) {
    send_update(link, pr::chord_update_type::neighbors, now);
  }
}

void chord_topology::on_leave(const node::inbound_request& r, time_point now) {
  const auto& lr = std::get<pr::leave_req>(r.body);
  const auto& requester = r.signer.node;
  if (lr.leaving_peer_id != requester) {
    transport_.send_error(r, reload_errc::forbidden, "Leave for another node", now);
    return;
  }
  transport_.answer(r, pr::leave_ans{}, now);
  std::vector<pr::node_id> told;
  if (auto d = pr::decode_chord_leave_data(lr.overlay_specific_data, cfg_.limits)) {
    told = d->successors;
    told.insert(told.end(), d->predecessors.begin(), d->predecessors.end());
  }
  for (const auto& [id, c] : links_.rows()) {
    if (c.remote != requester) continue;
    auto* row = links_.find(id);
    row->leaving = true;
    row->is_peer = false;
  }
  peer_lost(requester, now);
  for (auto& n : told) {
    if (n != cfg_.self && candidates_.size() < cfg_.max_candidates) {
      candidates_[n] = now + cfg_.update_interval;
    }
  }
  std::vector<pr::node_id> better;
  for (const auto& n : told) {
    if (n != cfg_.self && n != requester && !links_.link_to(n) && routes_.improves_neighbors(n)) {
      better.push_back(n);
    }
  }
  for (const auto& n : better) do_attach(n, false, {}, now);
}

void chord_topology::on_update(const node::inbound_request& r, time_point now) {
  const auto& up = std::get<pr::update_req>(r.body);
  const auto& requester = r.signer.node;
  transport_.answer(r, pr::update_ans{}, now);
  if (r.direct) mark_peer(r.link, now);
  if (r.direct && state_ == join_state::awaiting_admission && admitting_peer_ &&
      requester == *admitting_peer_ && admitted_by(up)) {
    finish_join(now);  // RFC 6940 10.5 step 7: in its table now, our range handed over
  }
  if (r.direct && state_ == join_state::joined && up.type != pr::chord_update_type::peer_ready) {
    // Chord's stabilization: when we know peers that belong in the sender's neighbor lists
    // (ourselves included), tell it, so that a stale view cannot persist (RFC 6940 10.7.4.x:
    // "if the Update reveals ... closer peers").
    routing_table theirs(requester, cfg_.neighbors);
    for (const auto& n : up.predecessors) theirs.add(n);
    for (const auto& n : up.successors) theirs.add(n);
    bool stale = theirs.improves_neighbors(cfg_.self);
    for (const auto& n : neighbor_set()) stale = stale || theirs.improves_neighbors(n);
    check_omitted_neighbors(requester, theirs, now);
    // Not when our Update with these lists is on its way to it already (the two crossed).
    if (stale) send_update(r.link, pr::chord_update_type::neighbors, now, neighbor_update_delay);
  }
  std::vector<pr::node_id> heard = up.predecessors;
  heard.insert(heard.end(), up.successors.begin(), up.successors.end());
  heard.insert(heard.end(), up.fingers.begin(), up.fingers.end());
  learn_candidates(heard, r.direct ? r.link : link_id{}, now);
  maybe_send_join(now);
}

// ---------------------------------------------------------------------------------------------
// Topology

pr::attach_req chord_topology::make_attach_req() const {
  // No ICE (TLS-TCP-FH-NO-ICE): one host candidate, our listening address. The requester opens
  // the link once the answer arrives; send_update asks the answerer for its routing table.
  pr::attach_req req;
  node::fill_no_ice(req, "passive", cfg_.listen_address);
  req.send_update = true;
  return req;
}

void chord_topology::do_attach(const pr::node_id& target, bool resource,
                               std::vector<pr::destination> prefix, time_point now,
                               std::optional<link_id> via) {
  if (!resource) {
    if (target == cfg_.self || links_.link_to(target) || attaching_.count(target) != 0) return;
    if (attaching_.size() >= cfg_.max_candidates) return;
  }
  if (peer_links_full() && !evictable_link(now)) return;
  auto dest = std::move(prefix);
  if (resource) {
    dest.push_back(pr::to_destination(pr::resource_id{pr::to_bytes(target.view())}));
  } else {
    dest.push_back(pr::to_destination(target));
  }
  node::send_options opts;
  opts.via = via;
  if (!via && dest.size() > 1 && dest.front().node()) {
    opts.via = links_.link_to(*dest.front().node());
  }
  // The join's Attach for our own place, this attempt's (started at join_started_).
  const bool join_step = resource && cfg_.role == node_role::joining_peer && !joined() &&
                         state_ == join_state::attaching;
  auto done = [this, resource, join_step, attempt = join_started_](node::outcome&& o,
                                                                   time_point t) {
    if (resource && !o.ok() && !joined() && cfg_.role == node_role::joining_peer) {
      // The join's first step (to our own place) went wrong: why, where an admin looks. A peer
      // of another overlay drops it (no answer); one with a newer configuration refuses it.
      actions_.warn("not joined: Attach for our place " + join_failure_text(o));
    }
    if (o.what == node::outcome::kind::timeout) {
      if (!joined() && cfg_.role == node_role::joining_peer) log("join step timed out");
      // Lost on the way (while peers join close together, a stale table can send it round the
      // ring until its TTL): again now, rather than after join_retry.
      if (join_step && state_ == join_state::attaching && !admitting_peer_ &&
          join_started_ == attempt) {
        start_join(t);
      }
      return;
    }
    const auto* ans = std::get_if<pr::attach_ans>(&o.body);
    if (!o.ok() || !ans || !o.signer) return;
    attach_answered(*ans, o.signer->node, t);
  };
  if (transport_.originate(std::move(dest), make_attach_req(), std::move(done), now, opts) &&
      !resource) {
    attaching_[target] = now + cfg_.request_timeout;
  }
}

void chord_topology::attach_answered(const pr::attach_ans& ans, const pr::node_id& responder,
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
  if (links_.link_to(responder)) return;
  for (const auto& c : ans.candidates) {
    if (c.overlay_link != pr::overlay_link_type::tls_tcp_fh_no_ice) continue;
    attaching_[responder] = now + cfg_.request_timeout;
    if (opening_.size() >= cfg_.max_candidates) opening_.erase(opening_.begin());
    opening_[responder] = now + cfg_.request_timeout;
    actions_.push(node::open_link_action{c.addr_port, responder});
    return;
  }
  log("Attach answer without a usable candidate");
}

void chord_topology::maybe_send_join(time_point now) {
  // RFC 6940 10.5 step 5: once the admitting peer has sent its Update over our link to it.
  if (state_ != join_state::awaiting_update || !admitting_peer_) return;
  for (const auto& [id, c] : links_.rows()) {
    if (c.remote == *admitting_peer_ && c.is_peer && !c.leaving) {
      state_ = join_state::joining;
      transport_.originate(
          {pr::to_destination(c.remote)}, pr::join_req{cfg_.self, {}},
          [this](node::outcome&& o, time_point t) { join_answered(o, t); }, now,
          node::send_options{id, false});
      return;
    }
  }
}

void chord_topology::join_answered(const node::outcome& o, time_point now) {
  if (o.what == node::outcome::kind::timeout) {
    if (!joined()) actions_.warn("not joined: Join " + join_failure_text(o));
    return;
  }
  if (!o.ok() || state_ != join_state::joining) {
    if (!o.ok()) {
      actions_.warn("not joined: Join " + join_failure_text(o));
    } else {
      log("Join answered out of turn");
    }
    return;
  }
  state_ = join_state::awaiting_admission;
  join_started_ = now;
  log("Join answered: receiving our range from the admitting peer");
}

void chord_topology::finish_join(time_point now) {
  become_joined(now);
  log("joined the overlay");
  // RFC 6940 10.5 step 9.
  send_updates_to_neighbors(now, duration{0});
  if (listener_) listener_->ring_joined(now);
}

bool chord_topology::admitted_by(const pr::update_req& up) const {
  // Step 7's Update names us its predecessor. Peers joining at once may come between us and the
  // admitting peer: then we are in its lists further on, or beyond them (its predecessors all
  // lie between us and it, and the range it handed over went to them, who pass our part on).
  if (contains_node(up.predecessors, cfg_.self) || contains_node(up.successors, cfg_.self)) {
    return true;
  }
  return up.predecessors.size() >= cfg_.neighbors &&
         pr::in_open_interval(up.predecessors.back(), cfg_.self, *admitting_peer_);
}

void chord_topology::check_admission(time_point now) {
  const auto link = admitting_peer_ ? links_.link_to(*admitting_peer_) : std::nullopt;
  if (!link) {
    log("admitting peer lost during the join: starting again");
    start_join(now);
    return;
  }
  // Its hand-over may take a while (a large range; it serves every joining peer in turn):
  // waiting while it keeps sending.
  const auto last = links_.find(*link)->last_received;
  if (now - last < cfg_.join_retry) {
    join_started_ = last;
    return;
  }
  // An admitting peer that never names us its predecessor (not the RFC's step 7): joined anyway
  // rather than joining again and again.
  log("admitting peer silent (or slow) without naming us in an Update: joined without it");
  finish_join(now);
}

void chord_topology::rebuild_routes() {
  std::vector<pr::node_id> peers;
  for (const auto& [id, c] : links_.rows()) {
    if (c.is_peer && !c.leaving) peers.push_back(c.remote);
  }
  routes_.rebuild(peers);
}

void chord_topology::mark_peer(link_id link, time_point now) {
  auto* c = links_.find(link);
  if (!c || c->is_peer || c->leaving) return;
  const auto old_neighbors = neighbor_set();
  c->is_peer = true;
  candidates_.erase(c->remote);
  routes_.add(c->remote);
  neighbors_changed(old_neighbors, now);
}

void chord_topology::peer_lost(const pr::node_id& node, time_point now) {
  const auto old_neighbors = neighbor_set();
  rebuild_routes();
  // Others' Updates may name it for a while: do not attach to it again too soon.
  candidates_.erase(node);
  if (departed_.size() >= cfg_.max_candidates) departed_.erase(departed_.begin());
  departed_[node] = now + cfg_.request_timeout;
  neighbors_changed(old_neighbors, now);
}

void chord_topology::neighbors_changed(const std::vector<pr::node_id>& old_neighbors,
                                       time_point now) {
  if (state_ == join_state::joined && neighbor_set() != old_neighbors && cfg_.reactive &&
      !neighbors_update_due_) {
    // The first change goes out at once; more within neighbor_update_delay of it wait for the
    // end of that delay and go out together.
    if (last_neighbors_round_ && now - *last_neighbors_round_ < neighbor_update_delay) {
      neighbors_update_due_ = *last_neighbors_round_ + neighbor_update_delay;
    } else {
      last_neighbors_round_ = now;
      send_updates_to_neighbors(now, neighbor_update_delay);
    }
  }
  if (listener_) listener_->ring_changed(now);
}

void chord_topology::send_update(link_id link, pr::chord_update_type type, time_point now,
                                 duration repeat_after) {
  if (!links_.contains(link) || state_ != join_state::joined) return;
  const auto last = last_update_sent_.find(link);
  if (type == pr::chord_update_type::neighbors && last != last_update_sent_.end() &&
      now - last->second.at < repeat_after && last->second.predecessors == routes_.predecessors() &&
      last->second.successors == routes_.successors()) {
    return;  // it has these lists from us (or will in a moment)
  }
  pr::update_req u;
  u.uptime = uptime_s(now);
  u.type = type;
  if (type != pr::chord_update_type::peer_ready) {
    u.predecessors = routes_.predecessors();
    u.successors = routes_.successors();
    last_update_sent_[link] = update_sent{now, u.predecessors, u.successors};
  }
  if (type == pr::chord_update_type::full) u.fingers = routes_.fingers();
  send_direct(link, u, false, now);
}

void chord_topology::send_updates_to_neighbors(time_point now, duration repeat_after) {
  for (const auto& n : neighbor_set()) {
    if (const auto l = links_.link_to(n)) {
      send_update(*l, pr::chord_update_type::neighbors, now, repeat_after);
    }
  }
}

void chord_topology::learn_candidates(const std::vector<pr::node_id>& ids, link_id told_by,
                                      time_point now) {
  std::vector<pr::destination> prefix;
  if (told_by != link_id{}) {
    if (const auto* c = links_.find(told_by)) prefix.push_back(pr::to_destination(c->remote));
  }
  for (const auto& n : ids) {
    if (n == cfg_.self || n.size() != cfg_.self.size() || departed_.count(n) != 0) continue;
    // Only peers that would enter the Routing Table are worth a link now: a closer neighbor or a
    // finger for an empty interval (RFC 6940 10.7.3, 10.7.4.2).
    const unsigned fi = routes_.finger_index(n);
    const bool finger_gap = fi >= 1 && fi <= finger_slots_ && !routes_.finger(fi);
    // A finger nearer its interval start than ours: flagged, and searched at the next link upkeep
    // (RFC 6940 10.7.4.2 alternative 2), one Attach to the target rather than one per name heard.
    if (!finger_gap && would_improve_finger(n)) better_finger_heard_.at(fi) = true;
    const bool neighbor = would_be_neighbor(n);
    if (const auto l = links_.link_to(n)) {
      // Linked, but it never told us it is a peer (e.g. our bootstrap link): ask it for an
      // Update (RouteQuery with send_update, RFC 6940 6.4.2.4).
      if ((neighbor || finger_gap) && !links_.find(*l)->is_peer && attaching_.count(n) == 0 &&
          attaching_.size() < cfg_.max_candidates) {
        pr::route_query_req q;
        q.send_update = true;
        q.destination = pr::to_destination(n);
        if (transport_.originate({pr::to_destination(n)}, q, {}, now,
                                 node::send_options{*l, false})) {
          attaching_[n] = now + cfg_.request_timeout;
        }
      }
      continue;
    }
    if (!neighbor && !finger_gap) continue;
    if (candidates_.size() < cfg_.max_candidates) candidates_[n] = now + cfg_.update_interval;
    if (neighbor) {
      do_attach(n, false, prefix, now);
    } else {
      fill_finger_gap(fi, n, prefix, now);
    }
  }
}

void chord_topology::fill_finger_gap(unsigned i, const pr::node_id& heard,
                                     const std::vector<pr::destination>& prefix, time_point now) {
  // One Attach per empty slot, unless a peer nearer the slot's target is heard of: a joining peer
  // hears of every peer in several Updates at once (about twenty each), and an Attach to each
  // opened 40 to 90 links in its first second at 150 to 600 peers, all but the one the slot
  // keeps closed as surplus half a minute later. The nearest one heard is the finger the routing
  // table would keep of them (routing_table::add); each nearer one heard replaces it, which in a
  // random order of names happens about ln(names) times.
  // The Attaches in flight are attaching_'s: one to a peer of this slot at least as near its
  // target as `heard` will fill it.
  const auto target = pr::finger_target(cfg_.self, i);
  const auto distance = pr::ring_distance(target, heard);
  for (const auto& [q, deadline] : attaching_) {
    if (deadline > now && routes_.finger_index(q) == i &&
        pr::ring_distance(target, q) <= distance) {
      return;
    }
  }
  do_attach(heard, false, prefix, now);
}

bool chord_topology::would_be_neighbor(const pr::node_id& n) const {
  if (!routes_.improves_neighbors(n)) return false;
  // The peers being attached count as neighbors already: a joining peer's lists are empty until
  // its first links are up, and every peer named meanwhile (each Update names about twenty)
  // would otherwise get an Attach and a link.
  const auto after = pr::ring_distance(cfg_.self, n);
  const auto before = pr::ring_distance(n, cfg_.self);
  std::size_t nearer_after = 0, nearer_before = 0;
  const auto count = [&](const pr::node_id& q) {
    if (pr::ring_distance(cfg_.self, q) < after) ++nearer_after;
    if (pr::ring_distance(q, cfg_.self) < before) ++nearer_before;
  };
  for (const auto& q : routes_.peers()) count(q);
  for (const auto& [q, deadline] : attaching_) {
    if (!routes_.contains(q)) count(q);
  }
  return nearer_after < cfg_.neighbors || nearer_before < cfg_.neighbors;
}

bool chord_topology::would_improve_finger(const pr::node_id& peer) const {
  const unsigned i = routes_.finger_index(peer);
  if (i < 1 || i > finger_slots_) return false;
  const auto current = routes_.finger(i);
  if (!current) return true;
  // routing_table::add keeps the peer nearest the interval start (the target's responsible
  // peer): without this, the first peer found (often the bootstrap peer) stays everyone's finger.
  const auto target = pr::finger_target(cfg_.self, i);
  return pr::ring_distance(target, peer) < pr::ring_distance(target, *current);
}

// ---------------------------------------------------------------------------------------------
// Partition detection (RFC 6940 10.7.4.4)

void chord_topology::start_partition_check(time_point now) {
  if (state_ != join_state::joined || partition_check_opening_) return;
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
    if (const auto l = links_.link_to(node)) {
      send_partition_check(*l, now);
      return;
    }
  }
  if (peer_links_full() && !evictable_link(now)) return;
  partition_check_opening_ = std::pair{*address, now + cfg_.request_timeout};
  actions_.push(node::open_link_action{*address, std::nullopt});
}

void chord_topology::remember_bootstrap_node(const pr::ip_address_port& address,
                                             const pr::node_id& node) {
  std::erase_if(bootstrap_nodes_, [&](const auto& e) { return e.first == address; });
  if (bootstrap_nodes_.size() >= cfg_.bootstrap.size()) bootstrap_nodes_.clear();
  bootstrap_nodes_.emplace_back(address, node);
}

void chord_topology::send_partition_check(link_id link, time_point now) {
  const auto* c = links_.find(link);
  if (!c) return;
  const auto through = c->remote;
  // To the Resource-ID equal to our Node-ID: the peer responsible for our place in B's ring.
  const pr::resource_id own_place{pr::to_bytes(cfg_.self.view())};
  auto done = [this, through](node::outcome&& o, time_point t) {
    partition_check_answered(through, o, t);
  };
  if (transport_.originate({pr::to_destination(own_place)}, pr::ping_req{}, std::move(done), now,
                           node::send_options{link, false})) {
    ++stats_.partition_checks;
  }
}

void chord_topology::partition_check_answered(const pr::node_id& through, const node::outcome& o,
                                              time_point now) {
  // Our own Ping came back (B's ring is ours), an error (B's ring could not route it) or silence:
  // nothing learnt.
  if (!o.ok() || !std::holds_alternative<pr::ping_ans>(o.body) || !o.signer || !joined()) return;
  const auto& responder = o.signer->node;
  if (responder == cfg_.self) return;
  if (!routes_.successors().empty() && responder == routes_.successors().front()) return;
  ++stats_.partitions_detected;
  log("partition check: " + responder.hex() + " answers for our Node-ID through " + through.hex() +
      ": attaching to it");
  if (const auto l = links_.link_to(responder)) {
    send_update(*l, pr::chord_update_type::full, now);
    return;
  }
  do_attach(responder, false, {pr::to_destination(through)}, now);
}

}  // namespace p2psip::peer
