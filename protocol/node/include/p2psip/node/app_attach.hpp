#pragma once
// AppAttach (RFC 6940 6.5.2) for peers and clients alike: a usage registers the applications it
// serves (SIP: 5060) with the address where the runtime accepts their connections; this answers
// AppAttach requests for them with that address as the one host candidate (no ICE, as our
// Attach), and asks other nodes for theirs. When an answer comes, the runtime is told to open a
// TLS connection to the candidate, checks the certificate carries the target's Node-ID, and hands
// the connection to the usage as a byte stream (open_app_connection_action).

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "p2psip/node/message_transport.hpp"

namespace p2psip::node {

class app_attach_service final : public request_handler {
 public:
  app_attach_service(message_transport& transport, action_queue& actions);

  /// Connections for `application` are accepted at `address` (the runtime's listener for it).
  void serve(std::uint16_t application, protocol::ip_address_port address);
  bool serves(std::uint16_t application) const { return served_.count(application) != 0; }

  /// Called once: empty on success (an open_app_connection_action with `token` was queued), or
  /// why the AppAttach failed.
  using attach_done = std::function<void(std::optional<std::string> error, time_point now)>;
  /// Asks the node at the end of `route` for a connection for `application`. `route` is a
  /// destination list ending in the target's Node-ID; a client is reached through the peer it is
  /// attached to ([peer, client], RFC 6940 4.2.1), a peer by its Node-ID alone. The answer must be
  /// signed by the target. False when the request could not be sent (no route, table full).
  bool connect(std::vector<protocol::destination> route, std::uint16_t application,
               std::uint64_t token, attach_done done, time_point now);

  void on_request(const inbound_request& r, time_point now) override;

 private:
  message_transport& transport_;
  action_queue& actions_;
  std::map<std::uint16_t, protocol::ip_address_port> served_;
};

/// No-ICE AttachReqAns / AppAttachReqAns fields (TLS-TCP-FH-NO-ICE): fixed credentials and one
/// host candidate. `role` is "passive" in requests and "active" in answers (RFC 6940 6.5.1.1).
template <class Body>
void fill_no_ice(Body& body, std::string_view role, const protocol::ip_address_port& address) {
  body.ufrag = protocol::to_bytes("p2psip");
  body.password = protocol::to_bytes("no-ice");
  body.role = protocol::to_bytes(role);
  protocol::ice_candidate c;
  c.addr_port = address;
  c.overlay_link = protocol::overlay_link_type::tls_tcp_fh_no_ice;
  c.foundation = protocol::to_bytes("1");
  c.priority = 1;
  c.type = protocol::candidate_type::host;
  body.candidates.push_back(std::move(c));
}

}  // namespace p2psip::node
