#pragma once
// What a runtime drives: a sans-I/O RELOAD node (a peer's overlay_core or a client_node). Link
// events, bytes and `now` in; actions and the next deadline out.

#include <optional>
#include <string_view>
#include <vector>

#include "p2psip/node/app_attach.hpp"
#include "p2psip/node/config_update.hpp"
#include "p2psip/node/connection_table.hpp"
#include "p2psip/node/message_transport.hpp"
#include "p2psip/node/node_types.hpp"

namespace p2psip::node {

class node_engine {
 public:
  virtual ~node_engine() = default;
  /// Starts: a first peer is joined at once; others open a link to a bootstrap peer.
  virtual void start(time_point now) = 0;
  /// A link is up; `remote` is the Node-ID its certificate proved. `origin`: which end opened it.
  virtual void on_link_up(link_id link, const protocol::node_id& remote, time_point now,
                          link_origin origin = link_origin::unknown) = 0;
  /// A link is gone (closed by either side or failed). `undelivered`: what was sent on it and
  /// never acknowledged by its other end (the link layer's unacked frames, then anything still
  /// queued), oldest first; a peer routes again what it forwarded or answered.
  virtual void on_link_down(link_id link, time_point now,
                            std::vector<protocol::bytes> undelivered = {}) = 0;
  /// An open_link_action could not be carried out; `reason` says why in words (the system's
  /// error, the TLS alert), for the node's own log lines. Empty when unknown.
  virtual void on_link_failed(const protocol::ip_address_port& address, time_point now,
                              std::string_view reason = {}) = 0;
  /// One whole message's bytes arrived on `link`.
  virtual void on_message(link_id link, protocol::byte_view data, time_point now) = 0;
  /// A message larger than max-message-size began to arrive on `link`: its first bytes (the
  /// forwarding header) and the length it declared. It is refused (Error_Message_Too_Large) and the
  /// link closed (6.6).
  virtual void on_oversized_message(link_id link, protocol::byte_view header,
                                    std::uint32_t declared_length, time_point now) = 0;
  /// Deadlines passed (call at or after next_deadline()).
  virtual void on_timer(time_point now) = 0;
  virtual std::optional<time_point> next_deadline() const = 0;
  /// Takes the pending actions, oldest first.
  virtual std::vector<action> take_actions() = 0;
  /// Graceful shutdown (a peer: Leave and hand-over, RFC 6940 10.9).
  virtual void leave(time_point now) = 0;
  virtual const connection_table& links() const = 0;
  virtual message_transport& transport() = 0;
  /// AppAttach: the applications this node serves, and requests for connections to others.
  virtual app_attach_service& app_attach() = 0;
  /// ConfigUpdate: the runtime sets the acceptor that checks and takes newer documents.
  virtual config_update_service& config_updates() = 0;
  /// A client sends no Leave: its runtime does not wait for one to be flushed.
  virtual bool is_client() const = 0;
  /// False while the node has more of its own work queued than it should take on (a peer's
  /// replicas): the runtime reads no client's next request until it is true again.
  virtual bool accepting_client_requests() const { return true; }
};

/// Answers Ping (RFC 6940 6.5.3) with a random response id and our wall time.
class ping_service final : public request_handler {
 public:
  ping_service(message_transport& transport, random_source& rng, wall_clock_source wall);
  void on_request(const inbound_request& r, time_point now) override;

 private:
  message_transport& transport_;
  random_source& rng_;
  wall_clock_source wall_;
};

}  // namespace p2psip::node
