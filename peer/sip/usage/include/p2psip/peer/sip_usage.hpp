#pragma once
// The SIP usage of the peer (RFC 7904 with RFC 3261 and RFC 5626): a registrar for plain SIP user
// agents whose REGISTERs land in the overlay as SIP-REGISTRATION values signed with the user's
// credentials, a stateful proxy that resolves AORs through the overlay and reaches other peers'
// UAs over AppAttach SIP connections, a redirect server, and the route to a gateway peer for
// targets outside the overlay.
//
// SDK clients attached to this peer (RFC 6940 clients) are RFC 5626 UAs over an AppAttach SIP
// connection: their REGISTER is authenticated by the connection's certificate (its user name
// must be the AOR's) instead of digest and kept only here (the client stores its own route in
// the overlay), and requests they send with our URI and `ob` as top Route get the outbound
// proxy's treatment a plain UA's get.
//
// Sans-I/O: SIP messages, overlay answers and `now` in; what to send goes out through the
// sip_services the front end implements (sockets, the overlay, AppAttach). Every entry point and
// every services callback runs on one thread; callbacks may run before the call that started
// them returns.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/crypto/credentials.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/node/message_transport.hpp"
#include "p2psip/protocol/data.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/sip/digest.hpp"
#include "p2psip/sip/message.hpp"
#include "p2psip/sip/proxy.hpp"
#include "p2psip/sip/transaction.hpp"

namespace p2psip::peer {

using sip_clock = std::chrono::steady_clock;
using sip_time_point = sip_clock::time_point;

/// One flow of the front end as the usage sees it: a UDP remote, a TCP or TLS connection, or an
/// AppAttach SIP connection to another peer or to a client of this peer (`peer` set).
struct sip_endpoint {
  std::uint64_t flow = 0;
  std::string transport;  ///< "UDP", "TCP" or "TLS" (an AppAttach connection is "TLS")
  bool reliable = false;
  std::string remote_ip;
  std::uint16_t remote_port = 0;
  std::optional<protocol::node_id> peer;  ///< the other node of an AppAttach connection
  /// The user name its certificate carries ("alice@overlay.example", RFC 6940 13.3), for an
  /// AppAttach connection; empty when none. An SDK client registers by it, without digest.
  std::string peer_user;
};

/// An address the front end listens at, for Via, Record-Route and Contact.
struct sip_listen_point {
  std::string transport;  ///< "UDP", "TCP" or "TLS"
  std::string host;       ///< an IP address (IPv6 in brackets)
  std::uint16_t port = 0;
};

/// A user the registrar authenticates and acts for: its digest secrets and RELOAD credentials.
struct sip_account {
  std::string aor;  ///< "sip:alice@overlay.example"
  std::string username;
  std::string ha1_md5;
  std::string ha1_sha256;
  std::shared_ptr<const crypto::credentials> credentials;
};

enum class sip_mode : std::uint8_t { proxy, redirect };

struct sip_usage_config {
  /// The SIP domain: the overlay's name. AORs of this domain are resolved in the overlay.
  std::string domain;
  sip_mode mode = sip_mode::proxy;
  std::vector<sip_listen_point> listen;
  /// Registration intervals (RFC 3261 10.3): shorter than min is 423; longer is cut to max.
  std::uint32_t min_expires = 60;
  std::uint32_t max_expires = 3600;
  std::uint32_t default_expires = 3600;
  /// Secret for digest nonces and flow tokens (32 random bytes).
  protocol::bytes secret;
  std::chrono::seconds nonce_lifetime{300};
  /// Digest algorithms challenged with, one WWW-Authenticate each, in this order (RFC 8760 2.4:
  /// order of preference). MD5 first by default: many UAs (sipp among them) answer only the
  /// first challenge and know only MD5.
  std::vector<sip::digest_algorithm> digest_algorithms{sip::digest_algorithm::md5,
                                                       sip::digest_algorithm::sha256};
  /// Flow-Timer for RFC 5626 flows (seconds): UAs send keepalives this often.
  std::uint32_t flow_timer = 120;
  /// This peer as a gateway: requests for targets outside the overlay (tel:, other domains) go
  /// to this trunk, and the peer advertises itself in the overlay with the gateway role's
  /// credentials (p2psip-sip-gateway kind). Both or neither.
  std::optional<sip::uri> gateway_trunk;
  std::optional<sip_account> gateway_account;
  /// AOR indirections followed when resolving (RFC 7904 4.2).
  int max_indirections = 4;
  /// The overlay's trust anchors, for fetched values' signatures.
  crypto::trust_store* trust = nullptr;
  /// Transaction timers; a proxy sends 100 Trying for an INVITE at once (RFC 3261 16.2).
  /// Completed non-INVITE transactions stay 32 s on UDP (Timer J): 100,000 of them hold about
  /// 3,000 requests a second.
  sip::timer_settings timers{.trying_delay = std::chrono::milliseconds(0),
                             .max_server_transactions = 100000};
};

/// What the usage needs from its front end. Callbacks run on the usage's thread, once.
class sip_services {
 public:
  virtual ~sip_services() = default;
  /// Puts `m` on `flow`; false when the flow is gone.
  virtual bool send(std::uint64_t flow, const sip::message& m) = 0;
  /// Sends `m` to transport:host:port (UDP from a listener; TCP/TLS over a connection reused or
  /// opened); returns the flow, or 0 when it cannot be sent.
  virtual std::uint64_t send_to(std::string_view transport, std::string_view host,
                                std::uint16_t port, const sip::message& m) = 0;
  /// The flow to transport:host:port (UDP from a listener; TCP/TLS: a connection reused, or
  /// opened now with what is sent queued until it is up); 0 when there can be none.
  virtual std::uint64_t flow_to(std::string_view transport, std::string_view host,
                                std::uint16_t port) = 0;
  /// The flow's endpoint, or nullopt once it is gone.
  virtual std::optional<sip_endpoint> endpoint(std::uint64_t flow) const = 0;
  /// A request of ours into the overlay; `sign_as`: the user whose credentials sign it, as its
  /// Node-ID `as_node` (null: the certificate's first).
  virtual bool overlay_request(std::vector<protocol::destination> destinations,
                               protocol::message_body body, const sip_account* sign_as,
                               const protocol::node_id* as_node,
                               std::vector<protocol::generic_certificate> certificates,
                               node::completion done) = 0;
  /// A SIP connection to another peer over AppAttach (an open one is reused): the flow, or an
  /// error in words.
  /// `route` ends in the node to reach: [peer] or [peer, client] (RFC 6940 4.2.1).
  using connect_done =
      std::function<void(std::uint64_t flow, std::string error, sip_time_point now)>;
  virtual void connect_peer(const std::vector<protocol::destination>& route, connect_done done) = 0;
  /// Wall time in ms since the Unix epoch (storage times, nonces).
  virtual std::uint64_t wall_clock_ms() const = 0;
  /// The account of a digest user name.
  virtual std::optional<sip_account> account_by_username(std::string_view username) const = 0;
  virtual void log(int level, std::string_view text) = 0;  ///< 0 debug .. 3 error
};

/// Counters for the status line and metrics.
struct sip_usage_stats {
  std::size_t registrations = 0;  ///< AORs with a live binding at this peer
  std::size_t bindings = 0;       ///< contacts registered at this peer
  std::size_t transactions = 0;   ///< server and client transactions alive
  std::size_t proxied = 0;        ///< requests forwarded, ever
  std::uint64_t registers_stored = 0;
  std::uint64_t auth_failures = 0;
  std::uint64_t overlay_failures = 0;
};

class sip_usage {
 public:
  /// `self`: this peer's Node-ID. `services` must outlive the usage.
  sip_usage(sip_usage_config cfg, protocol::node_id self, sip_services& services,
            std::uint64_t seed);
  ~sip_usage();
  sip_usage(const sip_usage&) = delete;
  sip_usage& operator=(const sip_usage&) = delete;

  /// A message arrived on `from.flow` (parsed and validated by the front end).
  void on_message(sip::message m, const sip_endpoint& from, sip_time_point now);
  /// A flow closed: bindings over it are gone (RFC 5626: 430 for requests to them).
  void on_flow_closed(std::uint64_t flow, sip_time_point now);
  void on_timer(sip_time_point now);
  std::optional<sip_time_point> next_deadline() const;

  sip_usage_stats stats() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The Resource Name of an AOR (RFC 7904 section 2): without the scheme, %-escapes decoded.
std::string sip_resource_name(std::string_view aor);

}  // namespace p2psip::peer
