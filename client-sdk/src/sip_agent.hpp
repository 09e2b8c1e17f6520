#pragma once
// The SDK's SIP user agent (RFC 3261 UA core on p2psip::sip's transaction layer) over the
// overlay's AppAttach connections, in one of two routing modes (client.hpp, sip_routing):
//   - direct: a request for an AOR of the overlay is sent over a connection to the node its
//     registration's route ends at (a peer for a plain UA registered there, the client itself
//     for an SDK client); bindings are tried in turn until one answers other than 408, 430,
//     480, 503.
//   - outbound_proxy: one RFC 5626 flow to the attached peer carries every request (Route with
//     ;ob) and every incoming one; the peer resolves and proxies.
// Dialogs keep the connection they were set up on: later requests of the call use it.
// Internal to the SDK; every member runs on the SDK's I/O thread unless it says otherwise.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "p2psip/client/client.hpp"
#include "p2psip/node/node_driver.hpp"

namespace p2psip::client {

class sip_agent {
 public:
  explicit sip_agent(client::impl& owner);
  ~sip_agent();
  sip_agent(const sip_agent&) = delete;
  sip_agent& operator=(const sip_agent&) = delete;

  /// An AppAttach connection for SIP: opened by us (token set) or accepted.
  void on_connection(node::app_connection c);
  /// The client attached to another peer (or lost its peer): register again through it.
  void on_links_changed();
  /// Every peer address failed (`why` names each and its reason): a registration waiting for a
  /// peer fails now with errc::no_peer rather than at its operation timeout.
  void on_unreachable(const std::string& why);
  /// Fails what is in flight with errc::stopped and closes the connections.
  void stop();

  // Each `done` runs once, on the I/O thread.
  void sip_register(std::string aor, std::uint32_t lifetime, client::callback<void> done);
  void sip_unregister(client::callback<void> done);
  void send_message(std::string to, bytes body, std::string content_type,
                    client::callback<sip_response> done);
  void call(std::string to, call_options options, client::callback<sip_response> done);
  void hang_up(std::string call_id, client::callback<void> done);

  /// Any thread.
  void set_handler(sip_request_handler handler);
  std::vector<std::string> calls() const;

 private:
  struct state;
  std::shared_ptr<state> s_;
};

}  // namespace p2psip::client
