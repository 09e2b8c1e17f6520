// chord_topology's upkeep of the Connection Table: which links the Routing Table no longer needs
// (RFC 6940 10.3, 10.7), which one to evict when the table is full, and which of two links to
// one peer to close.
#include <algorithm>

#include "p2psip/peer/chord_topology.hpp"

namespace p2psip::peer {

namespace {

/// `sorted`: as message_transport::busy_links() returns it.
bool contains_link(const std::vector<link_id>& sorted, link_id l) {
  return std::binary_search(sorted.begin(), sorted.end(), l);
}

}  // namespace

bool chord_topology::is_surplus_peer_link(const connection& c,
                                          const std::vector<link_id>& busy) const {
  if (contains_link(busy, c.link)) return false;
  if (attaching_.count(c.remote) != 0 || owe_update_.count(c.remote) != 0) return false;
  return may_become_surplus(c);
}

bool chord_topology::may_become_surplus(const connection& c) const {
  if (c.leaving) return false;
  // Only a link we opened: we asked for it because we wanted the peer in our Routing Table (or to
  // bootstrap). A link the remote opened is its to close: it may use us as a finger, which we
  // cannot see, and a client (no Join or Update ever came over its link) is served through it.
  if (c.origin != link_origin::outbound) return false;
  if (routes_.contains(c.remote)) return false;
  // Nor one whose remote has us as a finger: it routes over the link we opened rather than open
  // its own, and a request it forwards onto it just as our close is on the wire is lost (the
  // long suite's seed sweep found such). In a settled ring we are its finger i when the start of
  // its finger interval i falls in our range (predecessor, self].
  const auto& predecessors = routes_.predecessors();
  if (predecessors.empty()) return true;
  return !routing_table::has_finger_start_in(c.remote, predecessors.front(), cfg_.self);
}

std::optional<link_id> chord_topology::evictable_link(time_point now) const {
  const auto busy = transport_.busy_links();
  const auto preferred = links_.preferred_links();
  std::optional<link_id> best;
  int best_rank = 0;
  for (const auto& [id, c] : links_.rows()) {
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

bool chord_topology::is_client_link(const connection& c) const {
  return c.from_client() && c.origin != link_origin::outbound &&
         !(bootstrap_link_ && *bootstrap_link_ == c.link) && !c.partition_check;
}

std::size_t chord_topology::client_links() const {
  return static_cast<std::size_t>(
      std::count_if(links_.rows().begin(), links_.rows().end(),
                    [&](const auto& e) { return is_client_link(e.second); }));
}

std::size_t chord_topology::peer_links() const {
  return links_.size() - client_links();
}

bool chord_topology::peer_links_full() const {
  // Counting the client links walks every row (on every link up and Attach): not while the
  // whole table is under the peer budget.
  return links_.size() >= cfg_.max_links && peer_links() >= cfg_.max_links;
}

bool chord_topology::client_links_full() const {
  return links_.size() >= cfg_.max_clients && client_links() >= cfg_.max_clients;
}

bool chord_topology::evict_idle_client(time_point now) {
  const auto busy = transport_.busy_links();
  const connection* victim = nullptr;
  for (const auto& [id, c] : links_.rows()) {
    if (!is_client_link(c) || contains_link(busy, id)) continue;
    if (!victim || c.last_traffic < victim->last_traffic) victim = &c;
  }
  if (!victim) return false;
  ++stats_.clients_evicted;
  const auto idle_s =
      std::chrono::duration_cast<std::chrono::seconds>(now - victim->last_traffic).count();
  // An admin should see a full table; one line per 10 s at most, with the count since.
  if (const auto n = eviction_log_.note(now)) {
    actions_.warn("client links full (" + std::to_string(cfg_.max_clients) + "): evicted " +
                  std::to_string(*n) + " idle client(s) for newcomers, the last " +
                  victim->remote.hex() + " quiet for " + std::to_string(idle_s) + " s");
  }
  close_surplus_link(victim->link, "evicted: client links full, it was the longest idle", now);
  return true;
}

bool chord_topology::make_room(time_point now) {
  const auto victim = evictable_link(now);
  if (!victim) return false;
  ++stats_.links_evicted;
  close_surplus_link(*victim, "evicted: connection table full", now);
  return true;
}

void chord_topology::close_surplus_link(link_id link, std::string reason, time_point now) {
  log("link " + std::to_string(link.value) + " closed: " + reason);
  actions_.push(node::close_link_action{link, std::move(reason)});
  // Forget it now (nothing may be sent on it any more); the runtime's on_link_down for it is then
  // a no-op. Its remote is not in the Routing Table, or still linked: nothing is lost.
  if (const auto c = links_.remove(link)) {
    on_link_down(*c, now);
    transport_.link_down(link, c->remote, now);
  }
}

bool chord_topology::prune_links(time_point now) {
  if (state_ != join_state::joined) return false;
  const auto busy = transport_.busy_links();
  const auto preferred = links_.preferred_links();
  std::vector<std::pair<link_id, std::string>> to_close;
  bool waiting = false;
  for (const auto& [id, c] : links_.rows()) {
    auto linger = cfg_.link_linger;
    std::string why;
    if (!c.leaving && preferred.at(c.remote) != id) {
      // A second link to a node. Both attached at once: both ends agree which link is kept
      // when the runtime told each which end opened it. Both opened by us: ours to close. Both
      // opened by the remote (a node that connected twice and never closed one): the one it
      // has not sent on lately. Idle for request_timeout: the remote's requests on it are
      // answered.
      const auto& kept = *links_.find(preferred.at(c.remote));
      const bool told = c.origin_told && kept.origin_told;
      if (told && !contains_link(busy, id)) {
        why = c.origin != kept.origin             ? "second link to the same peer"
              : c.origin == link_origin::outbound ? "second link we opened to the same node"
                                                  : "second link the same node opened to us";
      }
      linger = std::max(linger, cfg_.request_timeout);
      // The opener closes its own second link first (it knows which one it uses); we do only
      // when it has not, after twice as long (a node that never does).
      if (told && c.origin == kept.origin && c.origin == link_origin::inbound) linger *= 2;
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
    auto* row = links_.find(id);
    if (why.empty()) {
      row->surplus_since.reset();
      // Held only by a request of ours, an Attach or an Update we owe: look again soon.
      if (may_become_surplus(c) || (!c.leaving && preferred.at(c.remote) != id)) waiting = true;
      continue;
    }
    if (!row->surplus_since) row->surplus_since = now;
    // Quiet for request_timeout as well: an answer to a request forwarded over it (routing state
    // lives in the via list, so we keep no record of those) comes back the same way.
    if (now - *row->surplus_since >= linger && now - row->last_traffic >= cfg_.request_timeout) {
      to_close.emplace_back(id, std::move(why));
    } else {
      waiting = true;
    }
  }
  for (auto& [id, why] : to_close) {
    ++stats_.links_pruned;
    close_surplus_link(id, std::move(why), now);
  }
  return waiting;
}

}  // namespace p2psip::peer
