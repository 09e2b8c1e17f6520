#pragma once
// The I/O edge of the peer's SIP front end (issue 12): listeners for plain SIP user agents over
// UDP, TCP and TLS (RFC 3261 section 18), and SIP over the AppAttach TLS streams between peers.
// It turns bytes into parsed messages with their source, and messages into bytes on a flow; the
// registrar and proxy above decide everything else.
//
// A flow (RFC 5626's word) is one UDP (local socket, remote endpoint) pair, one TCP or TLS
// connection (accepted or opened), or one adopted AppAttach stream. Messages arrive with their
// flow; answers go back on it.
//
// What it does on its own:
//  - answers bytes that fail to parse (a request) with the status the codec names
//    (sip::error_response_bytes) and, on a stream, closes the connection after it (framing lost);
//    unparseable responses are dropped and counted;
//  - answers RFC 5626 keepalives: a STUN Binding request on UDP (XOR-MAPPED-ADDRESS), a CRLFCRLF
//    ping on a stream (CRLF pong); ignores a lone CRLF datagram;
//  - limits each source IP (token bucket): a request over the rate gets 503 with Retry-After
//    (on UDP at most one 503 per source per second, the rest dropped and logged once per 10 s),
//    anything else over the rate is dropped; adopted AppAttach streams are not limited here;
//  - bounds connections per source IP and in total (the longest idle one is shed), closes
//    TCP/TLS connections idle for idle_timeout, and forgets UDP flows idle for as long.
//
// Threading: everything runs on the one thread running the io_context given to the constructor
// (as node_driver does): call every member from that thread, or before it runs; handlers run
// there too. Handlers may call any member (send, close_flow, ...), but must not destroy the
// sip_transport from inside a handler.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>

#include "p2psip/node/node_driver.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/result.hpp"
#include "p2psip/sip/error.hpp"
#include "p2psip/sip/message.hpp"
#include "p2psip/transport/credentials.hpp"
#include "p2psip/transport/tls_stream.hpp"

namespace p2psip::peer {

/// The transport of a listener or flow. Adopted AppAttach streams are tls.
enum class sip_transport_kind { udp, tcp, tls };

/// "udp", "tcp", "tls".
std::string_view to_string(sip_transport_kind k) noexcept;

/// Where to listen: a transport, an address and a port (0: any free port).
struct sip_listen_spec {
  sip_transport_kind kind = sip_transport_kind::udp;
  asio::ip::address address;
  std::uint16_t port = 0;
  bool operator==(const sip_listen_spec&) const = default;
};

/// Parses "udp:127.0.0.1:5060", "tcp:[::1]:5060", "tls:0.0.0.0:5061" (transport case-insensitive;
/// an IPv6 address in brackets; port 0..65535, 0 meaning any free port). The error names what is
/// wrong in words.
protocol::result<sip_listen_spec, std::string> parse_sip_listen(std::string_view text);

/// "udp:127.0.0.1:5060", "tcp:[::1]:5060": the form parse_sip_listen reads.
std::string to_string(const sip_listen_spec& spec);

/// Names a flow; 0 is no flow. Never reused by one sip_transport.
using sip_flow_id = std::uint64_t;

/// Where a message came from: its flow and both ends of it.
struct sip_source {
  sip_flow_id flow = 0;
  sip_transport_kind kind = sip_transport_kind::udp;
  bool reliable = false;  ///< a stream (TCP, TLS, AppAttach): RFC 3261 17.1.1.2 timers differ
  asio::ip::address remote_address;
  std::uint16_t remote_port = 0;
  asio::ip::address local_address;
  std::uint16_t local_port = 0;
  /// Set for adopted AppAttach streams: the remote peer (from its certificate).
  std::optional<protocol::node_id> node;
  /// For adopted AppAttach streams: the user name the remote's certificate carries
  /// (tls_stream::peer_user()); empty when none.
  std::string peer_user;
};

/// A bound listener: its transport and address (with the port chosen for port 0).
struct sip_local_endpoint {
  sip_transport_kind kind = sip_transport_kind::udp;
  asio::ip::address address;
  std::uint16_t port = 0;
};

/// A TLS server reached by host name rather than Node-ID: a SIP trunk behind a gateway peer
/// (RFC 3261 26.3.1: its certificate must name the host of its URI).
struct sip_named_server {
  std::string host;  ///< a DNS name or an IP address (IPv6 with or without brackets)
  std::uint16_t port = 5061;
  /// Named-server credentials (transport::tls_credentials::for_named_servers): the anchors the
  /// server's chain must verify against, and the client certificate for mutual TLS, if any.
  std::shared_ptr<const transport::tls_credentials> tls;
  /// What log lines call it ("SIP trunk sips:pbx.example.com:5061").
  std::string label;
};

/// Limits applied to each source IP address (adopted AppAttach streams are exempt).
struct sip_source_limits {
  /// Messages per second one source IP may send on average (all its flows together), and in a
  /// burst; 0: no limit.
  std::uint32_t messages_per_second = 100;
  std::uint32_t burst = 400;
  /// The Retry-After of the 503 sent to a request over the rate.
  std::uint32_t retry_after_seconds = 5;
  /// TCP and TLS connections from one source IP, and in total (accepted and opened; adopted
  /// streams not counted). A new connection over either sheds the longest idle one.
  std::size_t max_connections_per_source = 32;
  std::size_t max_connections = 4096;
  /// UDP flows remembered at most (the longest idle one is forgotten first).
  std::size_t max_udp_flows = 65536;
  /// Source IPs whose buckets are remembered at most (full buckets are forgotten first).
  std::size_t max_tracked_sources = 65536;
};

/// Settings of a sip_transport.
struct sip_transport_config {
  /// Listeners to open in start(), in this order (local_endpoints() keeps it).
  std::vector<sip_listen_spec> listen;
  /// For tls listeners and TLS connections opened by send_to: the node's link certificate. TLS
  /// listeners do not ask for a client certificate (plain UAs have none); a connection opened by
  /// send_to requires the server's chain to verify against the overlay root(s).
  std::shared_ptr<const transport::tls_credentials> tls;
  /// Parser limits for every transport.
  sip::sip_limits limits;
  sip_source_limits source;
  /// A TCP or TLS connection (accepted or opened) that receives nothing for this long is closed
  /// (longer than the 95..120 s RFC 5626 keepalive interval); UDP flows are forgotten after it.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(300)};
  /// TCP connect (plus TLS handshake) for send_to.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  /// One write that does not complete in this time closes the connection.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  /// Bytes queued for one TCP/TLS connection at most (a send beyond it fails).
  std::size_t max_queued_bytes = 1024 * 1024;
  /// Received UDP datagrams larger than this are dropped (at most 65535).
  std::size_t max_datagram = 65535;
  /// stop() waits at most this long for connections to close.
  std::chrono::milliseconds stop_timeout{std::chrono::seconds(3)};
  /// Receives log lines; may be empty.
  std::function<void(node::log_level, std::string_view)> log;
};

/// Counters and current sizes.
struct sip_transport_stats {
  std::size_t udp_flows = 0;                ///< open UDP flows
  std::size_t tcp_flows = 0;                ///< open TCP connections (connecting included)
  std::size_t tls_flows = 0;                ///< open TLS connections (connecting included)
  std::size_t adopted_flows = 0;            ///< open adopted AppAttach streams
  std::uint64_t messages_in = 0;            ///< messages handed to on_message
  std::uint64_t messages_out = 0;           ///< messages accepted by send/send_to
  std::uint64_t parse_errors_answered = 0;  ///< error responses sent for unparseable requests
  std::uint64_t keepalives_answered = 0;    ///< STUN Binding responses and CRLF pongs
  std::uint64_t rate_limited_answered = 0;  ///< 503s sent to requests over the rate
  std::uint64_t dropped_rate_limited = 0;   ///< messages over the rate not answered
  std::uint64_t dropped_bad_response = 0;   ///< unparseable responses
  std::uint64_t dropped_unanswerable = 0;   ///< unparseable requests without a Via
  std::uint64_t dropped_oversized = 0;      ///< datagrams over max_datagram
  std::uint64_t dropped_stun = 0;           ///< STUN messages other than a Binding request
  std::uint64_t send_failures = 0;          ///< sends refused (queue full, socket error, flow gone)
  std::uint64_t connections_shed = 0;       ///< connections closed to admit a newer one
  std::uint64_t connect_failures = 0;       ///< connections send_to could not open
  /// Rounds of the timer that forgets idle UDP flows and sources: none while there are none.
  std::uint64_t housekeeping_rounds = 0;
};

class sip_transport {
 public:
  struct handlers {
    /// Each parsed message (validated by the codec) with where it came from.
    std::function<void(sip::message, const sip_source&)> on_message;
    /// A flow ended: its connection closed (by the peer, an error, the idle timeout, a shed), its
    /// connect failed, or (UDP) it was idle for idle_timeout. Not called for close_flow() or
    /// stop(). The flow id is never reused.
    std::function<void(sip_flow_id)> on_flow_closed;
  };

  sip_transport(asio::io_context& io, sip_transport_config cfg, handlers h);
  /// Closes every socket at once (call stop() first for a clean close). No handler runs after.
  ~sip_transport();
  sip_transport(const sip_transport&) = delete;
  sip_transport& operator=(const sip_transport&) = delete;

  /// Binds every configured listener and starts receiving. Errors (nothing left open then): the
  /// system's error code of the bind or listen (asio::error::address_in_use, ...) with a message
  /// naming the address and the reason ("cannot listen on udp:127.0.0.1:5060: Address already in
  /// use"), or transport_errc::invalid_credentials for a tls listener without credentials.
  protocol::result<void, protocol::error_record> start();

  /// The bound listeners, in configuration order (after start()).
  std::vector<sip_local_endpoint> local_endpoints() const;

  /// Serializes `m` and writes it on `flow` (queued behind earlier writes). False when the flow
  /// is gone or closing, or its queue is full: the caller answers 430/503 or fails the
  /// transaction. On UDP, true means handed to the socket.
  bool send(sip_flow_id flow, const sip::message& m);

  /// Sends `m` to address:port. UDP: from the first UDP listener of the address family, on the
  /// flow of that pair (created if new). TCP/TLS: on an open connection to that address and port
  /// if there is one, else on a new connection opened now (asynchronously; `m` is queued until it
  /// is up; a failure ends the flow with on_flow_closed). Returns the flow, 0 when nothing can be
  /// sent (no UDP listener of that family, no TLS credentials, stopped).
  sip_flow_id send_to(sip_transport_kind kind, const asio::ip::address& address, std::uint16_t port,
                      const sip::message& m);

  /// The flow send_to(kind, address, port, m) would send on (UDP: that pair's; TCP/TLS: an open
  /// connection, or one opened now: send() queues on it until it is up, and a failure ends it
  /// with on_flow_closed). For a transaction that needs its flow before its first send. 0 as
  /// send_to.
  sip_flow_id flow_to(sip_transport_kind kind, const asio::ip::address& address,
                      std::uint16_t port);
  /// The flow to a named TLS server: its open connection, else one opened now (the host resolved
  /// unless it is an address, each address tried in turn until TCP connects, then the TLS
  /// handshake, which verifies the server by name; all within connect_timeout). send() queues on
  /// it until it is up. A failure logs one WARN line naming the server and the reason (per server
  /// and reason at most once per 10 s, with a count of those left out) and ends the flow with
  /// on_flow_closed. A flow that ended is never reused: the next call connects again. 0 when
  /// stopped, or when `server` has no named-server credentials.
  sip_flow_id flow_to_server(const sip_named_server& server);
  /// Carries SIP over an AppAttach stream (established; from node::app_connection): framing as
  /// on TLS, sources with node = `remote` and peer_user = the stream's peer_user(). The transport
  /// closes it when the flow ends. Returns its flow (0 when stopped).
  sip_flow_id adopt(std::shared_ptr<transport::tls_stream> stream, protocol::node_id remote);

  /// The flow's source (its ends, transport, node); nullopt when it is gone.
  std::optional<sip_source> source_of(sip_flow_id flow) const;

  /// Closes a flow: a stream after what is queued is written (then its FIN is awaited for at most
  /// 2 s); a UDP flow is forgotten. The flow is gone at once (source_of: nullopt, send: false).
  /// No on_flow_closed for it.
  void close_flow(sip_flow_id flow);

  /// Closes the listeners and every flow and waits (at most stop_timeout) for connections to
  /// finish. No handler runs once it has begun. Idempotent; never throws.
  asio::awaitable<void> stop();

  sip_transport_stats stats() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace p2psip::peer
