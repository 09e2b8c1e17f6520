#pragma once
// The I/O-free CHORD-RELOAD overlay core of p2psip-peer (RFC 6940 sections 6.1, 6.2, 6.4, 10).
// Bytes, link events and `now` go in; actions (send, close, open, deliver, log) and the next
// deadline come out. No I/O, no clock reads, no threads: the runtime and the deterministic
// simulator drive the same class.
//
// Readings of the RFC taken here (for docs/conformance.md):
// - A link's remote becomes a peer (routing table) only when it sends Join or Update over that
//   link; before that it is a client (6940 4.2.1) and is reached only on its own link.
// - Routing state is kept in the via list (6.1.2 first strategy); answers go to
//   [previous hop] + reverse(via). Responses are forwarded without via entries.
// - TTL above initial-ttl: Error_TTL_Exceeded for any request; TTL 0: only when it would be
//   forwarded. A response with a bad TTL, duplicate destinations, etc. is dropped, never answered.
// - Own Node-ID in a request's via list (loop) and duplicate destination entries (13.6.5):
//   Error_Invalid_Message. A request is never forwarded to a node already in its via list.
// - A Node-ID destination that is neither connected nor routable onwards (we are responsible for
//   that point): Error_Not_Found. Opaque/compressed ids (we mint none): Error_Invalid_Message.
// - Attach without ICE: one host candidate (TLS-TCP-FH-NO-ICE); the requester opens the link, the
//   answerer Updates it once the link is up (send_update is always set).
// - Fingers: one Attach per finger interval to the finger target (10.5 step 3), Ping for fingers
//   that are not neighbors. A direct Update/Ping without answer is retried once with a Ping; a
//   second silence closes every link to that peer.
// - Replicas (10.4) go to the first two successors right away: the 30 s successor-replacement
//   hold-down of 10.7.1 (a SHOULD) is not applied, because a replica held back for 30 s is a copy
//   missing for 30 s (docs/conformance.md). When our range grows (a predecessor is gone) the whole
//   range is sent again to both replica holders. Replicas and hand-overs are accepted from peers
//   only; anyone else may only store where we are responsible (Error_Forbidden).
// - Data of Resource-IDs with three predecessors between them and us (10.7.3: "SHOULD delete") is
//   dropped, i.e. everything outside (third predecessor, self], but only once the predecessor list
//   has been unchanged for replica_hold_down (30 s, the hold-down time of 10.7.1) and none of the
//   three is under a liveness check, so that a passing wrong view costs no copy.
// - Links (the Connection Table, 10.3/10.7) are pruned: a link we opened (Attach, bootstrap) to a
//   peer that is no longer in the Routing Table, with nothing of ours pending on it, is closed
//   after link_linger (a joined peer's bootstrap link at once) and once quiet for request_timeout
//   (answers to requests we forwarded come back the way they went). Links others opened are theirs
//   to close (we cannot see whether the opener still uses us as a finger); a client's link (no
//   Join/Update ever came over it) is never pruned. A full Connection Table evicts such a surplus
//   peer link rather than refusing a new one. The loss of a link to a peer outside our Routing
//   Table is no "peer lost" event (10.7.1 is about neighbors and fingers).
// - Fingers: any peer in the interval is valid (10.7.4.2); when an Update names one nearer the
//   interval start, the slot is flagged and, at its turn, searched again by an Attach to the
//   finger target (10.7.4.2 alternative 2). So the first peer found (often the bootstrap peer)
//   does not stay everyone's finger, holding a link from every peer.
// - Two links to one peer (both attached at once): the one opened by the lower Node-ID is used by
//   both ends; the other is closed once idle for request_timeout, when the runtime told us which
//   end opened each link (on_link_up's `origin`).
// - Leave: data first to the successor (replica_number 0), then LeaveReq to every neighbor.
// - Hand-over (10.5 step 6, generalized): a Join's data goes straight to the joining peer; when
//   our range shrinks otherwise (new predecessors learnt from Updates, as when two rings merge
//   after a partition), each value of the part we lost is stored by Resource-ID, routed to the
//   peer responsible for it (the 10.7.3 rules alone send data only to new replica holders, so a
//   value written on one side of a partition would stay away from its owner after the merge).
// - Partition detection (10.7.4.4): every partition_check_interval a joined peer opens a link to
//   the next bootstrap peer B (not itself) and sends a Ping routed through B to a Resource-ID
//   equal to its own Node-ID (a Node-ID destination would come straight back over our link to B).
//   If our own Ping reaches us, B's ring is ours. If another peer S' answers and S' is not our
//   successor, the overlay is partitioned: we Attach to S' through B and Update it; stabilization
//   merges the rings from there.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "p2psip/peer/routing_table.hpp"
#include "p2psip/peer/services.hpp"
#include "p2psip/protocol/address.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/limits.hpp"
#include "p2psip/protocol/message.hpp"

namespace p2psip::peer {

using duration = std::chrono::milliseconds;

/// Which end opened a link (the TCP/TLS client side). Both ends agree on it, so it decides which
/// of two links between the same peers is kept.
enum class link_origin : std::uint8_t {
  unknown,   ///< the runtime did not say; the core infers it from its own open_link_actions
  outbound,  ///< this node opened it (an open_link_action)
  inbound,   ///< the remote opened it
};

/// A link as the runtime numbers it (one TLS connection). 0 is never a real link.
struct link_id {
  std::uint64_t value = 0;
  friend auto operator<=>(const link_id&, const link_id&) = default;
};

/// Send these bytes (one whole RELOAD message) on a link.
struct send_action {
  link_id link;
  protocol::bytes data;
};
/// Close a link (hostile, dead, or no longer needed).
struct close_link_action {
  link_id link;
  std::string reason;
};
/// Open a link to `address`; the remote certificate must carry `expected` when set (Attach
/// without ICE: TLS-TCP-FH-NO-ICE host candidates). The runtime answers with on_link_up or
/// on_link_failed.
struct open_link_action {
  protocol::ip_address_port address;
  std::optional<protocol::node_id> expected;
};
/// Hand a message to the local application: the answer to one of its requests (or a synthetic
/// Error_Request_Timeout), or a request the core does not handle itself (AppAttach, ...), which
/// the application answers with respond().
struct deliver_action {
  protocol::message msg;
  link_id link;  ///< where it arrived; {} for a locally made answer
};
struct log_action {
  std::string text;
};
using action =
    std::variant<send_action, close_link_action, open_link_action, deliver_action, log_action>;

enum class node_role : std::uint8_t {
  first_peer,    ///< bootstraps a new overlay: responsible for the whole ring at once
  joining_peer,  ///< joins through a bootstrap peer (RFC 6940 section 10.5)
  client,        ///< never joins: one link to a peer, sends requests through it (section 4.2.1)
};

struct core_config {
  protocol::node_id self;
  node_role role = node_role::joining_peer;
  std::uint32_t overlay = 0;  ///< forwarding header `overlay` (overlay_hash of the name)
  protocol::limits limits;    ///< codec limits, node_id_length and initial_ttl
  /// Data models of the overlay's kinds (config::kind_model_lookup_of); bodies naming another
  /// kind keep its values undecoded and the store answers Error_Unknown_Kind.
  protocol::kind_model_lookup kind_models = protocol::registered_kind_model;
  /// Where this peer accepts links (the host candidate of its Attach answers).
  protocol::ip_address_port listen_address;
  /// Bootstrap peers (joining peers and clients open a link to the first that answers).
  std::vector<protocol::ip_address_port> bootstrap;
  std::size_t neighbors = 3;          ///< successors and predecessors kept
  unsigned finger_slots = 16;         ///< finger indices maintained (1..finger_slots)
  duration update_interval{400'000};  ///< chord-update-interval
  duration finger_interval{60'000};   ///< one finger Attach per this (chord-ping-interval)
  duration request_timeout{15'000};   ///< end-to-end request timeout
  duration join_retry{10'000};        ///< restart the join when it stalls this long
  bool reactive = true;               ///< chord-reactive
  std::size_t max_links = 256;
  /// A link we opened to a peer that has left our Routing Table is closed after this long.
  duration link_linger{30'000};
  /// Predecessors unchanged this long before data of Resource-IDs beyond the third is dropped
  /// (RFC 6940 10.7.1's hold-down time).
  duration replica_hold_down{30'000};
  /// How often a joined peer checks through a bootstrap peer whether the overlay is partitioned
  /// (RFC 6940 10.7.4.4: "periodically"); zero turns the check off.
  duration partition_check_interval{600'000};
  std::size_t max_pending = 1024;       ///< outstanding requests of this node
  std::size_t max_candidates = 64;      ///< known-but-unconnected peers remembered
  unsigned max_malformed_per_link = 8;  ///< undecodable messages before close_link
};

/// One row of the connection table.
struct connection {
  link_id link;
  protocol::node_id remote;  ///< from the link's certificate
  bool is_peer = false;      ///< it sent Join or Update: may enter the routing table
  unsigned malformed = 0;
  bool leaving = false;
  link_origin origin = link_origin::unknown;  ///< outbound or inbound (told or inferred)
  bool origin_told = false;                   ///< the runtime said which end opened it
  /// Since when the link has been surplus (unneeded, or the second link to a peer); nullopt
  /// while it is needed.
  std::optional<time_point> surplus_since;
  /// Last message sent or received on it: a link is closed only when quiet (a request we
  /// forwarded over it may still be waiting for its answer, which comes back the same way).
  time_point last_traffic{};
  /// Opened to a bootstrap peer for a partition check: closed once quiet, like a bootstrap link.
  bool partition_check = false;
};

/// Counters for tests and monitoring.
struct core_stats {
  std::uint64_t forwarded = 0;
  std::uint64_t delivered_locally = 0;
  std::uint64_t dropped = 0;
  std::uint64_t errors_sent = 0;
  std::uint64_t malformed = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t links_pruned = 0;      ///< surplus links closed (unneeded or duplicate)
  std::uint64_t links_evicted = 0;     ///< surplus links closed to make room for a new one
  std::uint64_t ranges_dropped = 0;    ///< drop_range calls for data beyond the third predecessor
  std::uint64_t partition_checks = 0;  ///< partition-check Pings sent (10.7.4.4)
  std::uint64_t partitions_detected = 0;  ///< checks answered by a peer outside our ring view
  std::uint64_t handovers = 0;  ///< StoreReqs sent because our range shrank (Join or merge)
};

class overlay_core {
 public:
  overlay_core(core_config cfg, message_signer& signer, storage_service* storage,
               random_source& rng);

  /// Starts: a first peer is joined at once; others open a link to a bootstrap peer.
  void start(time_point now);
  /// A link is up; `remote` is the Node-ID its certificate proved. `origin`: which end opened it
  /// (pass it when known: it lets both ends agree which of two duplicate links to keep).
  void on_link_up(link_id link, const protocol::node_id& remote, time_point now,
                  link_origin origin = link_origin::unknown);
  /// A link is gone (closed by either side or failed).
  void on_link_down(link_id link, time_point now);
  /// An open_link_action could not be carried out.
  void on_link_failed(const protocol::ip_address_port& address, time_point now);
  /// One whole message's bytes arrived on `link`.
  void on_message(link_id link, protocol::byte_view data, time_point now);
  /// Deadlines passed (call at or after next_deadline()).
  void on_timer(time_point now);
  std::optional<time_point> next_deadline() const;
  /// Takes the pending actions, oldest first.
  std::vector<action> take_actions();

  /// Sends an application request towards `destinations`; its answer comes back as a
  /// deliver_action. Returns the transaction id, or an error when the pending table is full or
  /// there is no route (not joined / no link).
  protocol::result<std::uint64_t> send_request(std::vector<protocol::destination> destinations,
                                               const protocol::message_body& body, time_point now);
  /// Answers a request that was delivered to the application.
  void respond(const protocol::message& request, link_id arrival,
               const protocol::message_body& body, time_point now);
  /// Graceful shutdown: Leave to the neighbors, data handed to the successor (section 10.9).
  void leave(time_point now);

  const protocol::node_id& self() const noexcept { return cfg_.self; }
  bool joined() const noexcept { return state_ == join_state::joined; }
  const routing_table& routes() const noexcept { return routes_; }
  const std::map<link_id, connection>& connections() const noexcept { return links_; }
  std::optional<link_id> link_to(const protocol::node_id& node) const;
  const core_stats& stats() const noexcept { return stats_; }
  const core_config& config() const noexcept { return cfg_; }

 private:
  enum class join_state : std::uint8_t {
    idle,
    bootstrapping,
    attaching,
    awaiting_update,
    joining,
    joined,
    left
  };
  enum class purpose : std::uint8_t {
    app,
    attach,
    join,
    update,
    leave,
    store_replica,
    store_handoff,
    ping,
    route_query,
    partition_check,
    store_handover  ///< routed by Resource-ID because our range shrank; retried when it fails
  };
  struct pending_request {
    purpose why = purpose::app;
    time_point deadline;
    protocol::node_id target;  ///< the Node-ID addressed (for liveness) when direct
    bool direct = false;       ///< sent straight to a neighbor: a timeout means it is dead
    std::uint64_t txid = 0;    ///< its transaction id (the synthetic timeout answer carries it)
    unsigned attempt = 0;      ///< store_handover: how many times this value was sent
  };
  struct pending_key {
    std::uint64_t txid = 0;
    link_id link;
    friend auto operator<=>(const pending_key&, const pending_key&) = default;
  };

  // message plumbing
  void handle_message(link_id link, protocol::message&& m, time_point now);
  void route_or_deliver(link_id from, protocol::message&& m, time_point now);
  void forward(link_id from, link_id to, protocol::message&& m, time_point now);
  void deliver_local(link_id from, protocol::message&& m, time_point now);
  void handle_request(link_id from, const protocol::message& m, const protocol::message_body& body,
                      const crypto::verified_signer& signer, time_point now);
  void handle_response(link_id from, protocol::message&& m, time_point now);
  void send_error(link_id from, const protocol::message& request, protocol::reload_errc code,
                  std::string_view text, time_point now);
  void send_answer(link_id from, const protocol::message& request,
                   const protocol::message_body& body, time_point now);
  std::optional<link_id> choose_link(const protocol::destination& d) const;
  bool send_message(link_id link, protocol::message& m);
  std::optional<std::uint64_t> originate(std::vector<protocol::destination> dest,
                                         const protocol::message_body& body, purpose why,
                                         time_point now, std::optional<link_id> via = {});
  void on_pending_done(const pending_request& p, const protocol::message* answer, link_id link,
                       time_point now);

  // topology
  protocol::attach_req make_attach_req() const;
  void do_attach(const protocol::node_id& target_point, bool resource,
                 std::vector<protocol::destination> prefix, time_point now);
  void attach_answered(const protocol::attach_ans& ans, const protocol::node_id& responder,
                       time_point now);
  void mark_peer(link_id link, time_point now);
  void maybe_send_join(time_point now);
  void topology_changed(const std::vector<protocol::node_id>& old_neighbors,
                        const std::vector<protocol::node_id>& old_replicas, time_point now);
  void send_update(link_id link, protocol::chord_update_type type, time_point now);
  void send_updates_to_neighbors(time_point now);
  void learn_candidates(const std::vector<protocol::node_id>& ids, link_id told_by, time_point now);
  bool would_improve_finger(const protocol::node_id& peer) const;
  // connection table upkeep
  void prune_links(time_point now);
  std::map<protocol::node_id, link_id> preferred_links() const;
  bool is_surplus_peer_link(const connection& c, const std::vector<link_id>& busy) const;
  std::optional<link_id> evictable_link(time_point now) const;
  std::vector<link_id> busy_links() const;
  void close_surplus_link(link_id link, std::string reason, time_point now);
  void note_predecessors(time_point now);
  void drop_foreign_data(time_point now);
  void replicate_range_to(const protocol::node_id& to, std::uint8_t replica_number, time_point now);
  void hand_over_lost_range(const protocol::node_id& old_start, time_point now);
  void hand_over(const protocol::node_id& after, const protocol::node_id& up_to, unsigned attempt,
                 time_point now);
  void send_queued_handovers(time_point now);
  void retry_handovers(time_point now);
  // partition detection (10.7.4.4)
  void start_partition_check(time_point now);
  void send_partition_check(link_id link, time_point now);
  void remember_bootstrap_node(const protocol::ip_address_port& address,
                               const protocol::node_id& node);
  void partition_check_answered(const pending_request& p, const protocol::message& answer,
                                time_point now);
  bool own_partition_check_returned(const protocol::message& m);
  void peer_lost(const protocol::node_id& node, time_point now);
  void rebuild_routes();
  std::vector<protocol::node_id> neighbor_set() const;
  std::vector<protocol::node_id> replica_set() const;
  void start_join(time_point now);
  void bootstrap_failed(time_point now);
  void reconnect_bootstrap(time_point now);
  void stabilize(time_point now);
  void maintain_fingers(time_point now);
  protocol::node_id range_start() const;
  duration jitter(duration base);
  std::uint64_t new_txid();
  void log(std::string text);
  void note_traffic(link_id link, time_point now);
  void malformed(link_id link, std::string_view why);

  core_config cfg_;
  protocol::body_context body_context_;  ///< decodes bodies with cfg_.kind_models
  message_signer& signer_;
  storage_service* storage_;
  random_source& rng_;
  routing_table routes_;
  std::map<link_id, connection> links_;
  std::map<pending_key, pending_request> pending_;
  std::deque<action> actions_;
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
  std::optional<time_point> next_update_;
  std::optional<time_point> next_finger_;
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
  std::vector<protocol::node_id> last_replicas_;
  std::optional<protocol::node_id> last_range_start_;
  /// The predecessor list and since when it has been unchanged (the drop hold-down).
  std::vector<protocol::node_id> last_predecessors_;
  time_point predecessors_since_{};
  std::optional<time_point> next_drop_;
  /// Routed hand-overs that failed (no route yet while rings merge, timeout): ring point of the
  /// Resource-ID -> attempts so far; sent again at next_handover_retry_.
  std::map<protocol::node_id, unsigned> handover_retry_;
  std::optional<time_point> next_handover_retry_;
  /// Hand-over Stores waiting for room in the pending table (a Join or a merge may move more
  /// resources than max_pending): `to` set: straight to that peer (a Join's), else routed by
  /// Resource-ID with `attempt`. Sent as answers free room, three quarters full at most.
  struct queued_handover {
    protocol::store_req req;
    std::optional<protocol::node_id> to;
    unsigned attempt = 1;
  };
  std::deque<queued_handover> handover_queue_;
  std::string last_handover_failure_;  ///< for the log line of the next retry
  /// Partition detection: when the next check is due, which bootstrap peer it uses next, the
  /// bootstrap address a link is being opened to for it (and until when), and the Node-IDs
  /// behind bootstrap addresses seen so far (an existing link to one is used instead of a new one).
  std::optional<time_point> next_partition_check_;
  std::size_t partition_check_index_ = 0;
  std::optional<std::pair<protocol::ip_address_port, time_point>> partition_check_opening_;
  std::vector<std::pair<protocol::ip_address_port, protocol::node_id>> bootstrap_nodes_;
  core_stats stats_;
};

}  // namespace p2psip::peer
