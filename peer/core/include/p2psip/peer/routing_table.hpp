#pragma once
// The CHORD-RELOAD routing table (RFC 6940 section 10.3): predecessors, successors and fingers of
// one peer, and the greedy next-hop choice. Bounded: `neighbors` entries each way and at most 8n
// fingers (n = NodeIdLength). Only peers go in here; clients live in the connection table only.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "p2psip/protocol/ids.hpp"

namespace p2psip::peer {

class routing_table {
 public:
  /// `neighbors`: how many successors and predecessors to keep (RFC: at least 3).
  explicit routing_table(const protocol::node_id& self, std::size_t neighbors = 3);

  const protocol::node_id& self() const noexcept { return self_; }
  /// Offers a peer: it takes a neighbor place if it is closer than a current one, and the finger
  /// place of its interval when that one is empty. True when it entered the table anywhere.
  bool add(const protocol::node_id& peer);
  /// Would `peer` become a successor or a predecessor if it were added?
  bool improves_neighbors(const protocol::node_id& peer) const;
  /// Removes a peer from every place (does not refill; see rebuild()).
  void remove(const protocol::node_id& peer);
  /// Empties the table and offers each of `peers` (used after a loss, with every connected peer).
  void rebuild(const std::vector<protocol::node_id>& peers);
  void clear();

  /// Successors, nearest first (clockwise).
  const std::vector<protocol::node_id>& successors() const noexcept { return successors_; }
  /// Predecessors, nearest first (counter-clockwise).
  const std::vector<protocol::node_id>& predecessors() const noexcept { return predecessors_; }
  /// Finger i (1-based, RFC 6940 10.3: the interval [self + 2^(8n-i), self + 2^(8n-i+1))).
  std::optional<protocol::node_id> finger(unsigned i) const;
  /// Fingers in ascending finger-index order, without duplicates.
  std::vector<protocol::node_id> fingers() const;
  /// The finger index whose interval holds `peer` (1..8n); 0 for self.
  unsigned finger_index(const protocol::node_id& peer) const noexcept;
  unsigned finger_count() const noexcept { return static_cast<unsigned>(fingers_.size()); }

  /// Every distinct peer of the table.
  std::vector<protocol::node_id> peers() const;
  bool contains(const protocol::node_id& peer) const;
  bool is_neighbor(const protocol::node_id& peer) const;
  bool empty() const noexcept { return successors_.empty() && predecessors_.empty(); }
  /// Counts the changes of the table's contents (a neighbor or finger added or removed): a
  /// watcher (the daemon's status line) compares it with the count it saw last instead of
  /// comparing the tables.
  std::uint64_t changes() const noexcept { return changes_; }

  /// k in (predecessor, self]; with no predecessor known, the whole ring.
  bool is_responsible(const protocol::node_id& k) const;
  /// Greedy next hop for k (RFC 6940 10.3): the table peer with the largest Node-ID in
  /// (self, k), else the one with the smallest Node-ID greater than k (clockwise from k).
  /// nullopt when the table is empty. Peers in `avoid` (those a request already passed, from its
  /// via list) are not chosen, so that a request never goes back where it came from.
  std::optional<protocol::node_id> next_hop(const protocol::node_id& k,
                                            const std::vector<protocol::node_id>& avoid = {}) const;

  /// Whether the start of some finger interval of `peer` (peer + 2^(8n-i), i = 1..8n) lies in
  /// (a, b]: in a settled ring, whether `peer` has the owner of (a, b] as a finger.
  static bool has_finger_start_in(const protocol::node_id& peer, const protocol::node_id& a,
                                  const protocol::node_id& b) noexcept;

 private:
  protocol::node_id self_;
  std::size_t neighbors_;
  std::vector<protocol::node_id> successors_;
  std::vector<protocol::node_id> predecessors_;
  std::vector<std::optional<protocol::node_id>> fingers_;  // index i-1
  std::uint64_t changes_ = 0;
  /// The distinct peers of fingers_ and how many slots each holds: membership and next hops
  /// without walking all 8n slots (asked for every message routed and every Update heard).
  std::vector<std::pair<protocol::node_id, unsigned>> finger_refs_;
  void add_finger_ref(const protocol::node_id& peer);
  void drop_finger_ref(const protocol::node_id& peer);
};

}  // namespace p2psip::peer
