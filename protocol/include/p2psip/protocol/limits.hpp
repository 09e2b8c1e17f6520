#pragma once
// Limits are part of the codec's API: every decode path enforces them, and each has a test that
// goes one over. Defaults are conservative; the overlay configuration may raise them.

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "p2psip/protocol/ids.hpp"

namespace p2psip::protocol {

struct limits {
  /// NodeIdLength of the overlay (16..20 bytes).
  std::size_t node_id_length = default_node_id_length;
  /// Largest whole message, header included (RFC 6940 `max-message-size`, default 5000).
  std::size_t max_message_size = 5000;
  /// Entries in a via list. A message crosses about log2(N)/2 peers; 64 leaves ample room.
  std::size_t max_via_entries = 64;
  /// Entries in a destination list (source routes are short).
  std::size_t max_destination_entries = 16;
  /// Forwarding options in one header.
  std::size_t max_options = 8;
  /// Message extensions in one message.
  std::size_t max_extensions = 8;
  /// Certificates in one security block.
  std::size_t max_certificates = 8;
  /// Partially reassembled messages held at once, over all links.
  std::size_t max_fragments_in_flight = 64;
  /// Fragments that make up one message.
  std::size_t max_fragments_per_message = 64;
  /// How long a partial message is kept (RFC 6940 section 6.7: the maximum request lifetime).
  std::chrono::milliseconds reassembly_timeout{15000};
  /// The largest TTL accepted (RFC 6940 `initial-ttl`, default 100).
  std::uint8_t initial_ttl = 100;
};

}  // namespace p2psip::protocol
