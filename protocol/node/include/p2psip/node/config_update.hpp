#pragma once
// ConfigUpdate (RFC 6940 6.5.4): a node sent a newer configuration document takes it once the
// runtime has checked it (same overlay, newer sequence, signed by the document's authority,
// 6.5.4.2); from then on its messages carry the new sequence and it hands the document on to
// nodes whose requests show an older one. Kind updates (type "kind") are refused: we take
// kinds only inside a whole signed document (docs/conformance.md).

#include <cstdint>
#include <functional>
#include <string>

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
  void on_request(const inbound_request& r, time_point now) override;

 private:
  message_transport& transport_;
  acceptor accept_;
};

}  // namespace p2psip::node
