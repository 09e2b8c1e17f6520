#pragma once
// One realistic, signed RELOAD message for every message code of bodies.hpp, plus variants
// (three ChordUpdate types, both ConfigUpdate types, two errors, a message that went through
// peers). Shared by unit tests, the tshark conformance test, fuzz seeds and benchmarks.
//
// The cast: the identity's Node-ID is "alice", a client on overlay "example.org" that talks to a
// proxy peer; the responsible peer for alice@example.org answers. Requests go from alice,
// answers come back to alice with the request's transaction id.

#include <cstdint>
#include <string>
#include <vector>

#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/message.hpp"
#include "test_identity.hpp"

namespace p2psip::test_support {

/// A sample: its name (a file-name-safe identifier), the message (signed; header.length set),
/// its typed body and the encoded bytes.
struct sample_message {
  std::string name;
  protocol::message message;
  protocol::message_body body;
  protocol::bytes encoded;

  bool is_request() const noexcept { return protocol::is_request(message.contents.code); }
};

/// The overlay every sample belongs to.
inline constexpr const char* sample_overlay_name = "example.org";
/// The AOR whose registration the storage samples carry.
inline constexpr const char* sample_aor = "alice@example.org";
/// storage_time of the stored values (ms since the epoch: 2023-11-14T22:13:20Z).
inline constexpr std::uint64_t sample_storage_time = 1700000000000ull;

/// The other nodes the samples mention; all derived from the seed.
struct sample_cast {
  protocol::node_id proxy;                    ///< the peer alice is connected to
  protocol::node_id responsible;              ///< responsible for alice@example.org
  protocol::node_id alice_phone;              ///< a second device of alice (a second registration)
  std::vector<protocol::node_id> successors;  ///< of the responsible peer
  std::vector<protocol::node_id> predecessors;  ///< of the responsible peer
  std::vector<protocol::node_id> fingers;
};
sample_cast make_sample_cast(std::uint64_t seed);

/// Every sample, in a fixed order (requests directly followed by their answers). Ids, transaction
/// ids, padding and the like come from `seed`; only signatures (and the identity) vary between
/// runs. Throws std::runtime_error naming the sample if a body or message fails to encode.
std::vector<sample_message> make_sample_messages(const test_identity& id, std::uint64_t seed = 1);

/// A stable identity for samples: Node-ID from the seed, user alice@example.org. (The key and the
/// certificate are fresh each call.)
test_identity make_sample_identity(std::uint64_t seed = 1);

}  // namespace p2psip::test_support
