#pragma once
// Access control policies (RFC 6940 section 7.3): may this signer write this value at this
// Resource-ID for this kind? H is the overlay hash: for CHORD-RELOAD the first NodeIdLength bytes
// of SHA-1 (hash_resource_name), NodeIdLength being the size of the signer's Node-ID.

#include <cstdint>
#include <optional>
#include <string_view>

#include "p2psip/crypto/signatures.hpp"
#include "p2psip/protocol/data.hpp"
#include "p2psip/protocol/ids.hpp"

namespace p2psip::crypto {

enum class access_policy : std::uint8_t {
  user_match,       ///< USER-MATCH (7.3.1): H(user name) == Resource-ID
  node_match,       ///< NODE-MATCH (7.3.2): H(signing Node-ID) == Resource-ID
  user_node_match,  ///< USER-NODE-MATCH (7.3.3): USER-MATCH and dictionary key == Node-ID
  node_multiple,    ///< NODE-MULTIPLE (7.3.4): H(Node-ID || uint32 i) == Resource-ID, 1<=i<=max
  /// p2psip's generic kind (kinds::p2psip_generic): any Resource-ID; a dictionary whose key
  /// must be the signing Node-ID, so each writer owns exactly its own entry.
  node_key,
};

/// The configuration's name of a policy: "USER-MATCH", "NODE-MATCH", "USER-NODE-MATCH",
/// "NODE-MULTIPLE", and ours "P2PSIP-GENERIC".
std::string_view access_policy_name(access_policy p) noexcept;
/// The policy of a configuration name (exact, upper case); nullopt if unknown.
std::optional<access_policy> parse_access_policy(std::string_view name) noexcept;
/// The policy of an IANA-registered kind or of p2psip's generic kind (their policies are fixed,
/// RFC 6940 section 11.1: the configuration's words are ignored for them); nullopt otherwise.
std::optional<access_policy> registered_kind_policy(std::uint32_t kind) noexcept;

/// The Resource-ID of NODE-MULTIPLE index i (and of TURN-SERVICE's d): H(Node-ID || i) with i
/// written as a 4-byte big-endian uint32 (our reading; RFC 6940 does not give the encoding).
protocol::resource_id node_multiple_resource(const protocol::node_id& node, std::uint32_t i);

/// Whether `signer` may store (write, overwrite or delete: a tombstone is a value too) `value`
/// at `resource` for a kind using `policy`. For NODE-MULTIPLE `max_node_multiple` is the kind's
/// <max-node-multiple>. For a non-replica Store both the StoredData's signer and the StoreReq's
/// signer must pass (RFC 6940 section 7.3): call this once for each.
/// Returns reload_errc::forbidden when refused (a USER-NODE-MATCH or node_key value that is not
/// a dictionary entry is refused too).
result<void> check_access(access_policy policy, const verified_signer& signer,
                          const protocol::resource_id& resource,
                          const protocol::stored_data_value& value,
                          std::uint32_t max_node_multiple = 0);

}  // namespace p2psip::crypto
