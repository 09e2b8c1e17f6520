#pragma once
// What the overlay core needs from outside, injected so that tests and the simulator can use
// cheap fakes: message signatures, the data store, and randomness.

#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "p2psip/crypto/signatures.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/message.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::peer {

using time_point = std::chrono::system_clock::time_point;

/// Signs outgoing messages and verifies incoming ones (RFC 6940 section 6.3.4). The real one
/// wraps crypto::sign_message / crypto::verify_message with the node's identity and trust store.
class message_signer {
 public:
  virtual ~message_signer() = default;
  /// Signs `m` as this node; header and contents are final.
  virtual void sign(protocol::message& m) = 0;
  /// Who signed `m`, or an error (the message is then dropped).
  virtual protocol::result<crypto::verified_signer> verify(const protocol::message& m,
                                                           time_point now) = 0;
};

/// The data store as the core sees it (peer/storage's data_store is adapted to this). Every
/// call answers with a body: the answer (store_ans, fetch_ans, ...) or an error_response.
class storage_service {
 public:
  virtual ~storage_service() = default;
  /// `certificates`: the StoreReq's security block (the values' signers for a replica or
  /// hand-over). replica_number > 0 marks a replica from the responsible peer.
  virtual protocol::message_body store(const protocol::store_req& req,
                                       const crypto::verified_signer& requester,
                                       std::span<const protocol::generic_certificate> certificates,
                                       time_point now) = 0;
  virtual protocol::message_body fetch(const protocol::fetch_req& req, time_point now) = 0;
  virtual protocol::message_body stat(const protocol::stat_req& req, time_point now) = 0;
  /// Find over the resources in (range_after, range_to] (this peer's responsible range).
  virtual protocol::message_body find(const protocol::find_req& req,
                                      const protocol::node_id& range_after,
                                      const protocol::node_id& range_to, time_point now) = 0;
  /// Everything stored for Resource-IDs in (after, up_to], as StoreReqs (replica_number 0).
  virtual std::vector<protocol::store_req> export_range(const protocol::node_id& after,
                                                        const protocol::node_id& up_to,
                                                        time_point now) = 0;
  /// Forgets everything stored for Resource-IDs in (after, up_to].
  virtual void drop_range(const protocol::node_id& after, const protocol::node_id& up_to) = 0;
  /// Certificates of the signers of the values in `body` (a fetch_ans or an exported store_req),
  /// added to the security block of the message that carries it.
  virtual std::vector<protocol::generic_certificate> signer_certificates(
      const protocol::message_body& body) const {
    (void)body;
    return {};
  }
};

/// Randomness for transaction ids and timer jitter (a seeded PRNG in the simulator).
class random_source {
 public:
  virtual ~random_source() = default;
  virtual std::uint64_t next_u64() = 0;
};

}  // namespace p2psip::peer
