#pragma once
// The CHORD-RELOAD topology plugin (RFC 6940 section 10): join through an admitting peer,
// Updates and stabilization, fingers, failure detection, Leave, the partition check (10.7.4.4),
// and the upkeep of the links the Routing Table needs (pruning the rest, evicting before
// refusing). It tells the message transport how to route (router) and data movement when the
// ring around it changes (ring_listener). It stores nothing itself.
//
// Readings of the RFC taken here (for docs/conformance.md):
// - A link's remote becomes a peer (routing table) only when it sends Join or Update over that
//   link; before that it is a client (6940 4.2.1) and is reached only on its own link.
// - Attach without ICE: one host candidate (TLS-TCP-FH-NO-ICE); the requester opens the link, the
//   answerer Updates it once the link is up (send_update is always set), and a joined requester
//   Updates the answerer. An answerer whose full Update shows we would be its finger or neighbor
//   is told so (on_update).
// - Updates carry nothing twice: reactive Updates (a neighbor set changed) go out at once, and
//   changes within neighbor_update_delay of that round together at its end (one Update per
//   neighbor for a burst of changes); an
//   Update whose lists equal those we sent that peer within that delay is not sent (ours is on
//   the wire); the periodic round skips a neighbor we sent the same lists within half an
//   update_interval. The join's Updates (RFC 6940 10.5 steps 7, 8, 9) and those owed for
//   send_update go out at once.
// - Fingers: one Attach per finger interval to the finger target (10.5 step 3), Ping for fingers
//   that are not neighbors. A direct Update/Ping without answer is retried once with a Ping; a
//   second silence closes every link to that peer. Any peer in the interval is valid
//   (10.7.4.2); one nearer the interval start named in an Update flags the slot, searched again
//   at its turn by an Attach to the finger target (alternative 2).
// - Links (the Connection Table, 10.3/10.7) are pruned: a link we opened (Attach, bootstrap) to a
//   peer no longer in the Routing Table, with nothing of ours pending on it, is closed after
//   link_linger (a joined peer's bootstrap link at once) and once quiet for request_timeout,
//   checked every half of the shorter of the two. Links others opened are theirs to close; a
//   client's link is never pruned, but of two links one node opened to us, the one it does
//   not use is closed once quiet (a node that reconnected and kept the old link). A full Connection
//   Table evicts such a surplus peer link rather than refusing a new one. The loss of a link to
//   a peer outside our Routing Table is no "peer lost" event.
// - Two links to one peer (both attached at once): the one opened by the lower Node-ID is used by
//   both ends; the other is closed once idle for request_timeout.
// - Leave: data first to the successor (by data movement), then LeaveReq to every neighbor.
// - Partition detection (10.7.4.4): every partition_check_interval a joined peer sends a Ping
//   routed through the next bootstrap peer B (not itself) to a Resource-ID equal to its own
//   Node-ID. Our own Ping reaching us: B's ring is ours. Another peer S' answering that is not
//   our successor: partitioned; we Attach to S' through B and Update it.

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "p2psip/node/message_transport.hpp"
#include "p2psip/peer/core_config.hpp"
#include "p2psip/peer/routing_table.hpp"

namespace p2psip::peer {

/// What data movement needs to hear from the topology.
class ring_listener {
 public:
  virtual ~ring_listener() = default;
  /// We are joined (10.5 step 9) or were joined first.
  virtual void ring_joined(time_point now) = 0;
  /// Our neighbor set (and with it our range or replica set) may have changed.
  virtual void ring_changed(time_point now) = 0;
  /// We admit `joining` (its JoinReq was answered): the part of our range it takes over goes to
  /// it (RFC 6940 10.5 step 6). `delivered` is called once every Store of it was answered (or
  /// given up), possibly at once: then the topology makes it our predecessor (step 7).
  virtual void peer_joining(const protocol::node_id& joining, time_point now,
                            std::function<void(time_point)> delivered) = 0;
  /// We are leaving: hand our range to `successor` over `link` (before the LeaveReqs go out).
  virtual void leaving(const protocol::node_id& successor, link_id link, time_point now) = 0;
};

class chord_topology final : public node::router, public node::request_handler {
 public:
  chord_topology(const core_config& cfg, node::connection_table& links,
                 node::message_transport& transport, node::action_queue& actions,
                 random_source& rng, core_stats& stats);
  void set_listener(ring_listener* l) { listener_ = l; }

  void start(time_point now);
  void on_link_up(link_id link, const protocol::node_id& remote, time_point now,
                  link_origin origin);
  /// After the transport was told (its requests on the link ended).
  void on_link_down(const connection& c, time_point now);
  /// `reason`: why, in words; a bootstrap link that fails while not joined is logged at WARN.
  void on_link_failed(const protocol::ip_address_port& address, time_point now,
                      std::string_view reason = {});
  void on_timer(time_point now);
  std::optional<time_point> next_deadline() const;
  void leave(time_point now);

  // router
  bool routes() const override { return joined(); }
  bool is_responsible(const protocol::node_id& point) const override;
  std::optional<protocol::node_id> next_hop(
      const protocol::node_id& point, const std::vector<protocol::node_id>& avoid) const override;

  // Attach, Join, Leave, Update, RouteQuery addressed to us.
  void on_request(const node::inbound_request& r, time_point now) override;

  bool joined() const noexcept { return state_ == join_state::joined; }
  bool left() const noexcept { return state_ == join_state::left; }
  const routing_table& routes_table() const noexcept { return routes_; }
  /// The start of our range: (range_start, self] is ours.
  protocol::node_id range_start() const;
  /// Our first two successors (RFC 6940 10.4).
  std::vector<protocol::node_id> replica_set() const;
  std::vector<protocol::node_id> neighbor_set() const;
  /// A liveness Ping to `node` is out (it may be dead): not the time to act on its absence.
  bool suspected(const protocol::node_id& node) const { return liveness_checks_.count(node) != 0; }
  time_point started() const noexcept { return started_; }
  std::uint32_t uptime_s(time_point now) const;

 private:
  enum class join_state : std::uint8_t {
    idle,
    bootstrapping,
    attaching,
    awaiting_update,
    joining,
    /// Join answered: the admitting peer hands our range over, then Updates us with us as its
    /// predecessor (RFC 6940 10.5 steps 6, 7); joined then.
    awaiting_admission,
    joined,
    left
  };

  void on_attach(const node::inbound_request& r, time_point now);
  void on_join(const node::inbound_request& r, time_point now);
  void on_leave(const node::inbound_request& r, time_point now);
  void on_update(const node::inbound_request& r, time_point now);
  void on_route_query(const node::inbound_request& r, time_point now);

  /// A request of ours to a neighbor or finger (Update, liveness Ping): silence means trouble.
  void send_direct(link_id link, const protocol::message_body& body, bool is_ping, time_point now);
  void direct_unanswered(link_id link, const protocol::node_id& target, bool was_ping,
                         time_point now);
  protocol::attach_req make_attach_req() const;
  /// Attach to the peer at (or responsible for, `resource`) `target_point`, through `prefix`
  /// or on `via` (a joining peer's bootstrap link: its only way in, RFC 6940 10.5 step 1).
  void do_attach(const protocol::node_id& target_point, bool resource,
                 std::vector<protocol::destination> prefix, time_point now,
                 std::optional<link_id> via = {});
  void attach_answered(const protocol::attach_ans& ans, const protocol::node_id& responder,
                       time_point now);
  void mark_peer(link_id link, time_point now);
  void maybe_send_join(time_point now);
  void join_answered(const node::outcome& o, time_point now);
  /// The admitting peer made us its predecessor (or we stopped waiting for it): joined.
  void finish_join(time_point now);
  /// Waiting for admission: still hearing from the admitting peer, or time to go on without it.
  void check_admission(time_point now);
  /// The admitting peer's Update shows it took us into its table.
  bool admitted_by(const protocol::update_req& up) const;
  /// A joining peer has its range (RFC 6940 10.5 step 6 done): it becomes our predecessor.
  void admit(const protocol::node_id& joining, time_point now);
  void neighbors_changed(const std::vector<protocol::node_id>& old_neighbors, time_point now);
  /// `repeat_after`: a neighbors Update with the lists we sent this link less than that ago is
  /// not sent again (zero: always sent).
  void send_update(link_id link, protocol::chord_update_type type, time_point now,
                   duration repeat_after = duration{0});
  void send_updates_to_neighbors(time_point now, duration repeat_after);
  /// What we last sent a link in an Update: its lists and when.
  struct update_sent {
    time_point at{};
    std::vector<protocol::node_id> predecessors;
    std::vector<protocol::node_id> successors;
  };
  void learn_candidates(const std::vector<protocol::node_id>& ids, link_id told_by, time_point now);
  bool would_improve_finger(const protocol::node_id& peer) const;
  /// `n` would be among our nearest neighbors, the peers we are attaching to counted with the
  /// linked ones.
  bool would_be_neighbor(const protocol::node_id& n) const;
  /// Searches, with one Attach to its target each, every finger slot an Update named a nearer
  /// peer for since the last upkeep.
  void search_better_fingers(time_point now);
  /// Finger slot `i` is empty and `heard` is in its interval: an Attach to it, unless one to a
  /// peer at least as near the slot's target is in flight.
  void fill_finger_gap(unsigned i, const protocol::node_id& heard,
                       const std::vector<protocol::destination>& prefix, time_point now);
  void peer_lost(const protocol::node_id& node, time_point now);
  void rebuild_routes();
  void start_join(time_point now);
  /// Joined (first peer, or our Join answered): the periodic work starts.
  void become_joined(time_point now);
  /// A link to bootstrap address `address` failed (`reason` in words) while not joined: the next
  /// one, or after a whole round a pause; each try logged at WARN with the reason.
  void bootstrap_failed(const protocol::ip_address_port& address, std::string_view reason,
                        time_point now);
  void stabilize(time_point now);
  void maintain_fingers(time_point now);
  /// A neighbor whose liveness we check: linked, and no Ping of ours to it pending.
  struct checked_neighbor {
    protocol::node_id node;
    link_id link;
    time_point last_received;
  };
  std::vector<checked_neighbor> neighbors_to_check() const;
  /// Pings the neighbors that have been quiet for quiet_before_ping.
  void check_neighbors(time_point now);
  /// neighbor_check_interval for the first successor and predecessor, three for the others.
  duration quiet_before_ping(const protocol::node_id& n) const;
  /// An Update from `sender` (its lists in `theirs`) left out neighbors of ours that belong in
  /// them: pings those not heard from for omitted_neighbor_quiet.
  void check_omitted_neighbors(const protocol::node_id& sender, const routing_table& theirs,
                               time_point now);
  /// When check_neighbors and prune_links next have something to do (`links_waiting`: as
  /// prune_links returned).
  time_point next_upkeep(time_point now, bool links_waiting);
  // partition detection (10.7.4.4)
  void start_partition_check(time_point now);
  void send_partition_check(link_id link, time_point now);
  void remember_bootstrap_node(const protocol::ip_address_port& address,
                               const protocol::node_id& node);
  void partition_check_answered(const protocol::node_id& through, const node::outcome& o,
                                time_point now);
  // link upkeep (link_upkeep.cpp)
  duration prune_interval() const;
  /// Closes the links no longer needed; true when one is left that is or may soon be surplus
  /// (it must linger, be quiet for request_timeout, or is held for a while).
  bool prune_links(time_point now);
  bool is_surplus_peer_link(const connection& c, const std::vector<link_id>& busy) const;
  /// is_surplus_peer_link but for what holds a link for a while (a request of ours on it, an
  /// Attach under way, an Update we owe).
  bool may_become_surplus(const connection& c) const;
  std::optional<link_id> evictable_link(time_point now) const;
  void close_surplus_link(link_id link, std::string reason, time_point now);
  /// Room for one more link (evicting a surplus one if need be); false when full.
  bool make_room(time_point now);
  /// A link in the client budget: inbound, from a node that is no peer (yet).
  bool is_client_link(const connection& c) const;
  std::size_t client_links() const;
  std::size_t peer_links() const;
  /// peer_links() >= max_links, client_links() >= max_clients, without counting when the whole
  /// table is smaller.
  bool peer_links_full() const;
  bool client_links_full() const;
  /// Closes the client link quiet the longest (none with a request of ours pending); false when
  /// there is none.
  bool evict_idle_client(time_point now);
  void log(std::string text) { actions_.log(std::move(text)); }

  const core_config& cfg_;
  node::connection_table& links_;
  node::message_transport& transport_;
  node::action_queue& actions_;
  random_source& rng_;
  core_stats& stats_;
  ring_listener* listener_ = nullptr;
  routing_table routes_;
  unsigned finger_slots_ = 1;
  join_state state_ = join_state::idle;
  time_point started_{};
  time_point join_started_{};
  std::optional<link_id> bootstrap_link_;
  std::size_t bootstrap_index_ = 0;
  /// Bootstrap links failed (or lost) in a row; after each whole round of the list the next
  /// attempt waits `bootstrap_backoff_` (200 ms doubling to 10 s) until `next_bootstrap_`.
  std::size_t bootstrap_failures_ = 0;
  duration bootstrap_backoff_{0};
  std::optional<time_point> next_bootstrap_;
  std::optional<protocol::node_id> admitting_peer_;
  /// Peers whose Join we answered and whose range is being handed over, with their link.
  std::map<protocol::node_id, link_id> admitting_;
  std::optional<time_point> next_update_;
  /// Our neighbor set changed: the Updates to the neighbors are due then (one per burst).
  std::optional<time_point> neighbors_update_due_;
  /// When the last reactive round of Updates went out.
  std::optional<time_point> last_neighbors_round_;
  /// The last Update sent on each link (dropped with the link): the same lists again soon after
  /// tell its peer nothing.
  std::map<link_id, update_sent> last_update_sent_;
  std::optional<time_point> next_finger_;
  /// Liveness checks and link upkeep share this timer, so that one wake-up serves both
  /// (next_upkeep).
  std::optional<time_point> next_upkeep_;
  unsigned next_finger_index_ = 1;
  /// Per finger index (1..finger_slots): an Update named a peer nearer that interval's start.
  std::vector<bool> better_finger_heard_;
  /// Nodes whose Attach we answered with send_update: Update them when their link is up.
  std::map<protocol::node_id, time_point> owe_update_;
  /// Nodes we are attaching to (request sent or link opening), with a deadline.
  std::map<protocol::node_id, time_point> attaching_;
  /// Nodes we sent an open_link_action for (link not up yet): infers link_origin when untold.
  std::map<protocol::node_id, time_point> opening_;
  /// Peers heard of (from Updates, Leaves) but not connected.
  std::map<protocol::node_id, time_point> candidates_;
  /// Peers lost or gone recently (link loss, timeout, Leave), not to be attached again yet.
  std::map<protocol::node_id, time_point> departed_;
  /// Nodes whose Attach we answered lately: the link each opens next is a peer's.
  std::map<protocol::node_id, time_point> attached_by_;
  /// WARN lines about client evictions.
  node::log_throttle eviction_log_;
  /// Liveness Pings out, per peer.
  std::map<protocol::node_id, unsigned> liveness_checks_;
  /// Partition detection: when the next check is due, which bootstrap peer it uses next, the
  /// bootstrap address a link is being opened to for it (and until when), and the Node-IDs
  /// behind bootstrap addresses seen so far (an existing link to one is used instead of a new one).
  std::optional<time_point> next_partition_check_;
  std::size_t partition_check_index_ = 0;
  std::optional<std::pair<protocol::ip_address_port, time_point>> partition_check_opening_;
  std::vector<std::pair<protocol::ip_address_port, protocol::node_id>> bootstrap_nodes_;
};

}  // namespace p2psip::peer
