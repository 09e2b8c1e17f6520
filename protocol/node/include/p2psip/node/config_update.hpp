#pragma once
// ConfigUpdate (RFC 6940 6.5.4): a node sent a newer configuration document takes it once the
// runtime has checked it (same overlay, newer sequence, signed by the document's authority,
// 6.5.4.2); from then on its messages carry the new sequence and it hands the document on to
// nodes whose requests show an older one. Kind updates (type "kind") are refused: we take
// kinds only inside a whole signed document (docs/conformance.md).
//
// A peer also pushes a document it newly took (from a ConfigUpdate, or from its operator through
// adopt()) to every node it is linked to, peers and clients: that is how a new document spreads
// across the overlay at once rather than only as old nodes happen to send us requests (6.5.4: "push
// updated configuration data across the overlay"). Each node pushes a given sequence once, when it
// takes it, and refuses it again afterwards (not newer), so the push ends after one round per link.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "p2psip/node/connection_table.hpp"
#include "p2psip/node/message_transport.hpp"
#include "p2psip/protocol/errors.hpp"

namespace p2psip::node {

class config_update_service final : public request_handler {
 public:
  /// Checks a document offered in a ConfigUpdate and, when it is acceptable, makes it the node's
  /// own (in memory, and on disk for a peer); returns its sequence, or why it was refused (the
  /// message goes into the Error_Forbidden answer).
  using acceptor = std::function<protocol::result<std::uint16_t, protocol::error_record>(
      protocol::byte_view document)>;

  explicit config_update_service(message_transport& transport);
  void set_acceptor(acceptor a) { accept_ = std::move(a); }
  /// A peer: documents it takes are pushed to the nodes of `links` (which must outlive us).
  /// Without it (a client) nothing is pushed.
  void push_to_peers_of(const connection_table& links) { links_ = &links; }
  void on_request(const inbound_request& r, time_point now) override;

  /// Makes `document` (already checked: newer, signed by our document's authority, sequence
  /// `sequence`) the node's own: its messages carry `sequence` from now on, and, for a peer, a
  /// ConfigUpdate carrying it goes to every linked node (peers and clients) but the one on
  /// `except`. Returns how many ConfigUpdates were sent.
  std::size_t adopt(protocol::bytes document, std::uint16_t sequence, time_point now,
                    std::optional<link_id> except = std::nullopt);

 private:
  message_transport& transport_;
  acceptor accept_;
  const connection_table* links_ = nullptr;
};

}  // namespace p2psip::node
