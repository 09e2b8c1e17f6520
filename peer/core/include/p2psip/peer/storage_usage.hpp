#pragma once
// The storage usage (RFC 6940 section 7): Store, Fetch, Stat and Find addressed to this peer,
// answered from the data store; original Stores are copied to the replica set by data movement.
// Replica Stores (replica_number > 0) are taken only from a sender consistent with being the
// responsible node (7.4.1.1): a peer of ours over its own link, or a hand-over routed to us as the
// value's new owner from a node outside our range that we do not know as a client. A peer also
// refuses to forward a replica Store that a client sent it.

#include "p2psip/peer/chord_topology.hpp"
#include "p2psip/peer/data_movement.hpp"
#include "p2psip/peer/services.hpp"

namespace p2psip::peer {

class storage_usage final : public node::request_handler {
 public:
  storage_usage(const core_config& cfg, storage_service& storage, const chord_topology& ring,
                const node::connection_table& links, node::message_transport& transport,
                data_movement& movement);

  void on_request(const node::inbound_request& r, time_point now) override;

 private:
  void serve(const node::inbound_request& r, time_point now);
  void on_store(const node::inbound_request& r, const protocol::store_req& st, time_point now);
  /// Why a replica Store from this sender is not plausible (empty: it is).
  std::string implausible_replica(const node::inbound_request& r, const protocol::node_id& point,
                                  bool ours) const;

  const core_config& cfg_;
  storage_service& storage_;
  const chord_topology& ring_;
  const node::connection_table& links_;
  node::message_transport& transport_;
  data_movement& movement_;
};

}  // namespace p2psip::peer
