#pragma once
// The data store as the overlay core sees it, injected so that tests and the simulator can use a
// cheap fake (peer/storage's data_store is adapted to it by data_store_service). Storage times
// and lifetimes are wall time.

#include <span>
#include <vector>

#include "p2psip/node/node_types.hpp"
#include "p2psip/protocol/bodies.hpp"

namespace p2psip::peer {

/// Values of (resource, kind) the store found damaged and dropped: a copy is fetched from
/// another holder to repair them.
struct repair_request {
  protocol::resource_id resource;
  std::uint32_t kind = 0;
  protocol::data_model model = protocol::data_model::single_value;
};

/// Every call answers with a body: the answer (store_ans, fetch_ans, ...) or an error_response.
class storage_service {
 public:
  virtual ~storage_service() = default;
  /// `certificates`: the StoreReq's security block (the values' signers for a replica or
  /// hand-over). replica_number > 0 marks a replica from the responsible peer.
  /// `from_this_process`: this node's own StoreReq delivered to itself (inbound_request's flag):
  /// the values this process signed need not be verified again.
  virtual protocol::message_body store(const protocol::store_req& req,
                                       const crypto::verified_signer& requester,
                                       std::span<const protocol::generic_certificate> certificates,
                                       node::wall_time now, bool from_this_process) = 0;
  virtual protocol::message_body fetch(const protocol::fetch_req& req, node::wall_time now) = 0;
  virtual protocol::message_body stat(const protocol::stat_req& req, node::wall_time now) = 0;
  /// Find over the resources in (range_after, range_to] (this peer's responsible range).
  virtual protocol::message_body find(const protocol::find_req& req,
                                      const protocol::node_id& range_after,
                                      const protocol::node_id& range_to, node::wall_time now) = 0;
  /// Everything stored for Resource-IDs in (after, up_to], as StoreReqs (replica_number 0).
  virtual std::vector<protocol::store_req> export_range(const protocol::node_id& after,
                                                        const protocol::node_id& up_to,
                                                        node::wall_time now) = 0;
  /// How many resources are stored in (after, up_to] (Probe's num_resources).
  virtual std::size_t count_range(const protocol::node_id& after, const protocol::node_id& up_to,
                                  node::wall_time now) {
    return export_range(after, up_to, now).size();
  }
  /// Forgets everything stored for Resource-IDs in (after, up_to].
  virtual void drop_range(const protocol::node_id& after, const protocol::node_id& up_to) = 0;
  /// Certificates of the signers of the values in `body` (a fetch_ans or an exported store_req),
  /// added to the security block of the message that carries it.
  virtual std::vector<protocol::generic_certificate> signer_certificates(
      const protocol::message_body& body) const {
    (void)body;
    return {};
  }
  /// The (resource, kind) pairs whose stored values failed their signature check and were
  /// dropped since the last call.
  virtual std::vector<repair_request> take_repairs() { return {}; }
};

}  // namespace p2psip::peer
