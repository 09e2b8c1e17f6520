#pragma once
// Data movement between peers (RFC 6940 10.4, 10.5 step 6, 10.7.3, 10.9): replicas of our range
// on our first two successors, the hand-over of a range we no longer own (a Join's straight to
// the joining peer, a Leave's to the successor, any other shrink routed value by value to
// whoever is responsible), and dropping data beyond the third predecessor. Bulk Stores (a
// range's replicas, hand-overs, and the copies of each client write) wait in one outbox and go
// out max_bulk_in_flight at a time (flow control: they share the links with the clients'
// requests), each sent again until it is answered while its target still needs it: paced, never
// dropped silently. A long outbox holds the clients' next requests back (overloaded()). Every
// hand-over is a replica Store, merged by the receiver by storage time.
//
// A Join is admitted in the RFC's order (10.5 steps 6 and 7): the joining peer becomes our
// predecessor only once it holds its range, every hand-over Store answered, including copies of
// values written to us meanwhile. Until then we stay responsible for its range, so a Fetch
// never reaches a responsible peer that lacks a value some replica holder has.
//
// Readings of the RFC taken here (docs/conformance.md):
// - Replicas go to the first two successors right away: the 30 s successor-replacement hold-down
//   of 10.7.1 (a SHOULD) is not applied, because a replica held back for 30 s is a copy missing
//   for 30 s. When our range grows (a predecessor is gone) the whole range is sent again.
// - Data of Resource-IDs with three predecessors between them and us (10.7.3: "SHOULD delete")
//   is dropped only once the predecessor list has been unchanged for replica_hold_down and none
//   of the three is under a liveness check, so that a passing wrong view costs no copy.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "p2psip/peer/chord_topology.hpp"
#include "p2psip/peer/services.hpp"

namespace p2psip::peer {

class data_movement final : public ring_listener {
 public:
  data_movement(const core_config& cfg, storage_service& storage, const chord_topology& ring,
                node::connection_table& links, node::message_transport& transport,
                node::action_queue& actions, core_stats& stats);

  void ring_joined(time_point now) override;
  void ring_changed(time_point now) override;
  void peer_joining(const protocol::node_id& joining, time_point now,
                    std::function<void(time_point)> delivered) override;
  void leaving(const protocol::node_id& successor, link_id link, time_point now) override;

  /// An original Store we took (answer `ans`): copies to the replica set (RFC 6940 10.4). Returns
  /// the peers a copy went to. `requester`: who sent the Store (it may hold the value already).
  std::vector<protocol::node_id> replicate(const protocol::store_req& req,
                                           const protocol::store_ans& ans, time_point now);

  /// Values of `damaged` were dropped by our store (they no longer verify): fetch the kind from
  /// the other holders (our replica set when it is our range, else the responsible peer) and
  /// take what they have as a replica Store (each value checked again, newer copies kept).
  void repair(const repair_request& damaged, time_point now);

  void on_timer(time_point now);
  std::optional<time_point> next_deadline() const;
  /// Sends queued Stores while the pending table has room (call after answers free some).
  void send_queued(time_point now);
  /// Stores waiting in the outbox (for tests and the status line).
  std::size_t queued() const noexcept { return queued_; }
  /// So many copies of client writes wait that client writes (each adding copies) should wait
  /// too. (A large hand-over does not hold clients back: it is not theirs.)
  bool overloaded() const noexcept { return queued_write_copies_ >= kOutboxHigh; }
  static constexpr std::size_t kOutboxHigh = 4096;

 private:
  void note_predecessors(time_point now);
  void drop_foreign_data(time_point now);
  void replicate_range_to(const protocol::node_id& to, std::uint8_t replica_number, time_point now);
  void hand_over(const protocol::node_id& after, const protocol::node_id& up_to, unsigned attempt,
                 time_point now);
  void retry_handovers(time_point now);
  void handover_failed(const protocol::node_id& point, unsigned attempt, const node::outcome& o,
                       time_point now);
  /// Why a Store waits in the outbox.
  enum class purpose : std::uint8_t {
    replica,          ///< a copy for a member of our replica set (straight to it)
    join_handover,    ///< a joining peer's range (straight to it)
    routed_handover,  ///< a range we no longer own, routed by Resource-ID
  };
  struct queued_store {
    protocol::store_req req;  ///< replica_number set
    std::optional<protocol::node_id> to;
    purpose what = purpose::replica;
    unsigned attempt = 1;
    bool write_copy = false;  ///< a copy of a client's write (counted for overloaded())
  };
  /// Whose queue a Store waits in: its peer, or nullopt for routed hand-overs.
  using target_key = std::optional<protocol::node_id>;
  void enqueue(queued_store s);
  void clear_outbox();
  void send_one(queued_store s, const target_key& key, time_point now);
  /// Queues a Store and sends what the flow control lets out.
  void send_store(queued_store s, time_point now);
  /// A straight Store (replica, join hand-over) answered, refused or unanswered.
  void straight_store_done(queued_store s, const node::outcome& o, time_point now);
  /// The target still wants this straight Store (still in our replica set, still joining).
  bool still_wanted(const queued_store& s) const;
  void join_store_settled(const protocol::node_id& joining, time_point now);
  /// A Store of ours to a peer, not retried (a Leave's hand-over); a refusal is logged.
  void store_at(const protocol::node_id& to, link_id link, const protocol::store_req& req,
                std::string_view what, time_point now);

  const core_config& cfg_;
  storage_service& storage_;
  const chord_topology& ring_;
  node::connection_table& links_;
  node::message_transport& transport_;
  node::action_queue& actions_;
  core_stats& stats_;
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
  /// Stores waiting for room in the pending table (a range's replicas, a Join's or a merge's
  /// hand-over may be more than max_pending): sent as answers free room.
  std::map<target_key, std::deque<queued_store>> outbox_;
  std::size_t queued_ = 0;
  std::size_t queued_write_copies_ = 0;
  /// Per target: Stores of the outbox sent and not answered yet (max_bulk_in_flight at most).
  std::map<target_key, std::size_t> in_flight_;
  target_key last_served_;  ///< the round robin's place
  /// Joins we are admitting: Stores of theirs not answered yet, and whom to tell when none is.
  struct admission {
    std::size_t unsettled = 0;
    std::function<void(time_point)> delivered;
    bool ready = false;  ///< every Store settled; waits for those joining below it
  };
  /// Tells the topology of the admissions that are ready, nearest our range start first, up to
  /// the first that is not.
  void release_admissions(time_point now);
  std::map<protocol::node_id, admission> admissions_;
  std::string last_handover_failure_;  ///< for the log line of the next retry
};

}  // namespace p2psip::peer
