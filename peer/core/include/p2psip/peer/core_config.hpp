#pragma once
// Settings and counters of a peer's overlay core, and the names the peer shares with the node
// layer (p2psip::node) below it.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "p2psip/node/connection_table.hpp"
#include "p2psip/node/message_transport.hpp"
#include "p2psip/node/node_types.hpp"
#include "p2psip/protocol/address.hpp"
#include "p2psip/protocol/data.hpp"
#include "p2psip/protocol/limits.hpp"

namespace p2psip::peer {

using node::action;
using node::close_link_action;
using node::connection;
using node::duration;
using node::link_id;
using node::link_origin;
using node::log_action;
using node::message_signer;
using node::open_app_connection_action;
using node::open_link_action;
using node::random_source;
using node::send_action;
using node::time_point;
using node::wall_time;

enum class node_role : std::uint8_t {
  first_peer,    ///< bootstraps a new overlay: responsible for the whole ring at once
  joining_peer,  ///< joins through a bootstrap peer (RFC 6940 section 10.5)
};

/// A peer's settings: the message transport's (self, overlay, configuration sequence, limits,
/// kinds, request timeout, pending table) and the topology's and data movement's.
struct core_config : node::transport_config {
  node_role role = node_role::joining_peer;
  /// Where this peer accepts links (the host candidate of its Attach answers).
  protocol::ip_address_port listen_address;
  /// Bootstrap peers (joining peers open a link to the first that answers).
  std::vector<protocol::ip_address_port> bootstrap;
  std::size_t neighbors = 3;          ///< successors and predecessors kept
  unsigned finger_slots = 16;         ///< finger indices maintained (1..finger_slots)
  duration update_interval{400'000};  ///< chord-update-interval
  duration finger_interval{60'000};   ///< one finger Attach per this (chord-ping-interval)
  duration join_retry{10'000};        ///< restart the join when it stalls this long
  /// A neighbor we have heard nothing from for this long is sent a Ping; unanswered (and once
  /// more), it is dead (RFC 6940 10.7.2). Bounds how long a hung successor goes unnoticed between
  /// Updates: about this plus two request timeouts. Zero: only Updates check neighbors.
  duration neighbor_check_interval{15'000};
  bool reactive = true;  ///< chord-reactive
  /// Links we opened or peers opened after an Attach (the Routing Table's and fingers').
  std::size_t max_links = 256;
  /// Other inbound links: clients, and joining peers' bootstrap links. When full, the client
  /// quiet the longest is evicted for a newcomer.
  std::size_t max_clients = 1024;
  /// A link we opened to a peer that has left our Routing Table is closed after this long.
  duration link_linger{30'000};
  /// Predecessors unchanged this long before data of Resource-IDs beyond the third is dropped
  /// (RFC 6940 10.7.1's hold-down time).
  duration replica_hold_down{30'000};
  /// How often a joined peer checks through a bootstrap peer whether the overlay is partitioned
  /// (RFC 6940 10.7.4.4: "periodically"); zero turns the check off.
  duration partition_check_interval{600'000};
  std::size_t max_candidates = 64;  ///< known-but-unconnected peers remembered
  /// Replica and hand-over Stores in flight at once (data movement's flow control).
  std::size_t max_bulk_in_flight = 32;
  /// Wall time (PingAns, storage times); unset: the system clock (overlay_core sets it). The
  /// simulator's follows its virtual clock.
  node::wall_clock_source wall;
};

/// Counters for tests and monitoring: the message transport's and the topology's and data
/// movement's.
struct core_stats : node::transport_stats {
  std::uint64_t links_pruned = 0;      ///< surplus links closed (unneeded or duplicate)
  std::uint64_t links_evicted = 0;     ///< surplus links closed to make room for a new one
  std::uint64_t clients_evicted = 0;   ///< idle clients' links closed to make room for a new one
  std::uint64_t ranges_dropped = 0;    ///< drop_range calls for data beyond the third predecessor
  std::uint64_t partition_checks = 0;  ///< partition-check Pings sent (10.7.4.4)
  std::uint64_t partitions_detected = 0;  ///< checks answered by a peer outside our ring view
  std::uint64_t handovers = 0;       ///< StoreReqs sent because our range shrank (Join or merge)
  std::uint64_t replica_stores = 0;  ///< replica StoreReqs sent to our successors
  /// Replica and Join hand-over Stores sent again (unanswered), and those given up because
  /// their peer was gone (unlinked, out of the replica set) before answering.
  std::uint64_t bulk_stores_resent = 0;
  std::uint64_t bulk_stores_given_up = 0;
  /// Fetches sent to repair values our store dropped as damaged, and repairs that landed.
  std::uint64_t repairs_requested = 0;
  std::uint64_t values_repaired = 0;
};

}  // namespace p2psip::peer
