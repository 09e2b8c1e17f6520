#pragma once
// One RELOAD overlay link: TLS 1.2 over TCP (RFC 6940 section 6.6.1, TLS-TCP-FH-NO-ICE) carrying
// RELOAD data and ack frames (section 6.6.2), one frame per TLS record.
//
// Threading: a link belongs to the executor it was created on and is not thread-safe. Call its
// members from the thread running that executor (one io_context thread, as the peer runtime and
// the SDK's I/O thread do). Its handlers run there too.
//
// Lifetime: links are shared_ptr. Internally one reader and one writer coroutine hold the link
// until it is closed; a link nobody holds any more stays open until close(), the peer, or a
// timeout ends it. Call close() when done.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/framing.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/limits.hpp"
#include "p2psip/protocol/result.hpp"
#include "p2psip/transport/credentials.hpp"
#include "p2psip/transport/errors.hpp"

namespace p2psip::transport {

/// Received-message rate limit and misbehaviour count of one link.
struct rate_limit_config {
  /// Data frames per second the peer may send on average; 0 disables the limit. Off by default:
  /// a frame over the rate is dropped, which loses answers and forwarded traffic, so RELOAD nodes
  /// limit their clients' requests above the link instead, by reading them more slowly
  /// (node::driver_config::client_rate).
  std::uint32_t messages_per_second = 0;
  /// Data frames the peer may send in a burst.
  std::uint32_t burst = 2000;
  /// A frame above the rate is dropped (still acked) and counts one misbehaviour; more than this
  /// many misbehaviours (including report_misbehaviour()) close the link with rate_limited.
  /// nullopt: count but never close.
  std::optional<std::uint32_t> misbehaviour_limit = 100;
};

/// Settings of a link; the defaults suit an overlay link.
struct link_config {
  /// max_message_size bounds every frame both ways; the list and node-id limits bound how much of
  /// an oversized message's forwarding header is read (protocol::oversized_header_limit). (Peer
  /// certificates are read for the overlay name and NodeIdLength of the tls_credentials.)
  protocol::limits limits{};

  /// Messages accepted by send()/try_send() and not yet handed to TLS: at most this many ...
  std::size_t max_queued_messages = 256;
  /// ... and at most this many bytes (each message counts its own size).
  std::size_t max_queued_bytes = 1024 * 1024;
  /// Whole received messages waiting for receive(). When full the link stops reading the socket,
  /// so a slow reader slows the sender through TCP instead of growing memory. (An oversized
  /// message's header, the last item, may take one place more.)
  std::size_t max_received_messages = 64;

  /// TCP connect plus TLS handshake.
  std::chrono::milliseconds handshake_timeout{10000};
  /// No bytes received for this long closes the link with idle_timeout; nullopt: never.
  std::optional<std::chrono::milliseconds> idle_timeout{std::chrono::seconds(120)};
  /// One write that does not finish in this time closes the link with write_timeout.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  /// Data left unacknowledged for max(RTO, ack_timeout) closes the link with link_failure (RFC 6940
  /// section 6.6.5 uses the RTO only as a failure timeout and keeps a link for about 30 s);
  /// nullopt: never.
  std::optional<std::chrono::milliseconds> ack_timeout{std::chrono::seconds(30)};
  /// A clean close sends what is queued and waits for the peer's close_notify or FIN for at most
  /// this long before closing the socket.
  std::chrono::milliseconds close_linger{2000};
  /// RFC 6298 estimator parameters for the round-trip estimate from acks.
  protocol::rto_config rto{};
  rate_limit_config rate{};

  /// NSS key-log file (CLIENT_RANDOM lines) for decrypting captures; empty: $SSLKEYLOGFILE when
  /// set, as browsers and curl do. Anyone with this file can read the traffic.
  std::string key_log_path;
  /// Plain TCP with the same framing, no TLS and no peer authentication. For benchmarks and
  /// tests only: RFC 6940 overlays always use (D)TLS.
  bool insecure_plaintext = false;
  /// Diagnostic lines (an exception that escaped a coroutine); default: standard error.
  std::function<void(std::string_view)> log;
};

/// Which side of the TLS handshake this end plays. RFC 6940 decouples it from who opened the TCP
/// connection (the Attach sender is the TLS server); by default the connector is the client.
enum class tls_role { client, server };

enum class link_state {
  handshaking,  ///< TCP is up, the TLS handshake is running
  established,  ///< the peer is verified; messages flow
  closing,      ///< close_notify sent or received, flushing
  closed,       ///< the socket is closed; close_reason() says why
};

/// Counters of one link.
struct link_stats {
  std::uint64_t messages_sent = 0;      ///< data frames handed to TLS
  std::uint64_t messages_received = 0;  ///< data frames received (dropped, oversized included)
  std::uint64_t messages_dropped = 0;   ///< received data frames dropped by the rate limit
  std::uint64_t acks_received = 0;
  std::uint64_t bytes_sent = 0;      ///< bytes written to the socket
  std::uint64_t bytes_received = 0;  ///< bytes read from the socket
  std::uint64_t socket_reads = 0;    ///< completed reads (several TLS records may come in one)
  std::uint64_t socket_writes = 0;   ///< completed writes (each gathers a batch of records)
};

/// One item link::receive() hands out: a whole received message, or the start of one that was too
/// large to take (RFC 6940 section 6.6).
struct inbound_message {
  /// The whole RELOAD message; when oversized_length is set, only its forwarding header.
  protocol::bytes data;
  /// Set when the peer sent a message of this many bytes, more than limits.max_message_size. Then
  /// `data` is exactly the message's forwarding header, already checked: decode it with
  /// protocol::decode_oversized_header(data, *oversized_length, limits). This item is the link's
  /// last: it reads and drops everything after it. RFC 6940 section 6.6: the owner SHOULD answer
  /// with Error_Message_Too_Large (send/try_send) and then close(), which sends that answer before
  /// close_notify.
  std::optional<std::uint32_t> oversized_length;

  /// True when this is an oversized message's forwarding header, not a whole message.
  bool oversized() const noexcept { return oversized_length.has_value(); }
};

/// A TLS-over-TCP RELOAD link. See the file comment for threading and lifetime.
class link {
 public:
  using close_handler = std::function<void(std::error_code reason)>;

  virtual ~link() = default;

  /// Completes once the handshake is over: an empty error_code when the link is established (the
  /// peer verified), else why it failed (the close reason). May be awaited any number of times.
  virtual asio::awaitable<std::error_code> handshake() = 0;

  /// Queues `message` (one whole RELOAD message) as a data frame. Errors: message_too_large (over
  /// limits.max_message_size; the link stays open), queue_full (over max_queued_messages or
  /// max_queued_bytes; nothing queued), not_connected (closing or closed). Messages queued during
  /// the handshake are sent once it completes.
  virtual protocol::result<void> try_send(protocol::bytes message) = 0;
  /// Like try_send but waits while the queue is full (backpressure). Completes with the same
  /// errors except queue_full, or not_connected if the link closes while waiting.
  virtual asio::awaitable<protocol::result<void>> send(protocol::bytes message) = 0;

  /// The next received item, oldest first: a whole message, or (once, last) the forwarding header
  /// of a message above limits.max_message_size (see inbound_message). Waits when none is queued.
  /// After the link closed, queued items are still returned; then the close reason. One caller at
  /// a time. A data frame too large whose forwarding header does not arrive or does not decode
  /// (or is itself larger than max_message_size) closes the link with frame_too_large instead.
  virtual asio::awaitable<protocol::result<inbound_message>> receive() = 0;
  /// A queued received item, if any, without waiting.
  virtual std::optional<inbound_message> try_receive() = 0;

  /// Clean close: messages already queued by send/try_send are still sent (an answer to the last
  /// message received goes out), then close_notify; the socket closes after the peer answers or
  /// close_linger passes. The whole close, flushing included, takes at most close_linger; what
  /// is not written by then is dropped. Messages queued during the handshake are dropped. The
  /// close reason is closed_locally unless the link had already failed. Idempotent.
  virtual void close() = 0;
  /// Called exactly once, from the link's executor, with the close reason, when the link is
  /// closed. Set it before the link can close (right after connect/accept); a handler set on a
  /// closed link is posted at once. Replaces any earlier handler.
  virtual void on_close(close_handler handler) = 0;

  virtual link_state state() const noexcept = 0;
  /// Why the link closed (or is closing); empty while open. Fixed once set.
  virtual std::error_code close_reason() const noexcept = 0;
  /// The close reason in more words (Botan's message, the validation status), maybe empty.
  virtual const std::string& close_detail() const noexcept = 0;

  /// Node-IDs bound by the peer's verified certificate (empty in plaintext mode or before the
  /// handshake). Check the Node-ID a peer claims against these on every message (Eclipse).
  virtual const std::vector<protocol::node_id>& peer_node_ids() const noexcept = 0;
  /// The rfc822Name (user) of the peer's certificate, if any.
  virtual const std::string& peer_user() const noexcept = 0;
  /// The peer's certificate (DER), empty in plaintext mode or before the handshake.
  virtual const protocol::bytes& peer_certificate() const noexcept = 0;
  /// The negotiated cipher suite, e.g. "ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".
  virtual const std::string& cipher_suite() const noexcept = 0;

  /// Smoothed round-trip time from frame acks; nothing before the first ack.
  virtual std::optional<std::chrono::steady_clock::duration> rtt() const noexcept = 0;
  /// The current retransmission timeout (RFC 6298) derived from the acks.
  virtual std::chrono::milliseconds rto() const noexcept = 0;

  /// Messages the peer never took, oldest first: those sent and not acknowledged (the peer acks
  /// each frame it takes as it arrives, RFC 6940 6.6.2, and a peer closing the link takes none
  /// after its close), then those never sent. Meant for after the link closed: the owner may
  /// send them another way (a forwarded request crossing its link's close is routed again).
  /// After close() only those never sent: the peer takes all before our close_notify. Takes
  /// them: a second call returns what is new since. Up to the last 64 sent are tracked.
  virtual std::vector<protocol::bytes> take_undelivered() = 0;

  virtual const link_stats& stats() const noexcept = 0;
  virtual std::size_t queued_messages() const noexcept = 0;
  virtual std::size_t queued_bytes() const noexcept = 0;
  /// Misbehaviours counted so far (rate-limit drops plus report_misbehaviour()).
  virtual std::uint32_t misbehaviour_count() const noexcept = 0;
  /// Lets the layer above count the peer's glitches (invalid messages, wrong Node-ID claims)
  /// against rate.misbehaviour_limit; past the limit the link closes with rate_limited.
  virtual void report_misbehaviour(std::uint32_t count = 1) = 0;

  virtual const asio::ip::tcp::endpoint& remote_endpoint() const noexcept = 0;
  virtual const asio::ip::tcp::endpoint& local_endpoint() const noexcept = 0;
  virtual const asio::any_io_executor& get_executor() const noexcept = 0;
};

/// Wraps a connected TCP socket and starts the TLS handshake in `role`. The link runs on the
/// socket's executor. `required_peer`: a Node-ID the peer's certificate must bind (wrong_node_id
/// otherwise). `creds` may be null only with cfg.insecure_plaintext.
std::shared_ptr<link> start_link(asio::ip::tcp::socket socket, tls_role role,
                                 std::shared_ptr<const tls_credentials> creds, link_config cfg,
                                 std::optional<protocol::node_id> required_peer = std::nullopt);

/// Opens a TCP connection to `remote` from the calling coroutine's executor and runs the TLS
/// handshake as `role` (client by default), all within cfg.handshake_timeout. Errors:
/// connect_failed, handshake_timeout, and the handshake errors of transport_errc.
asio::awaitable<protocol::result<std::shared_ptr<link>>> connect(
    asio::ip::tcp::endpoint remote, std::shared_ptr<const tls_credentials> creds, link_config cfg,
    std::optional<protocol::node_id> required_peer = std::nullopt,
    tls_role role = tls_role::client);

/// connect() with the failure in words for people: the record's code is connect()'s error, its
/// message the cause as the system or TLS gave it ("TCP connect failed: Connection refused",
/// "the peer rejected our certificate: peer sent fatal alert bad_certificate").
asio::awaitable<protocol::result<std::shared_ptr<link>, protocol::error_record>> connect_explained(
    asio::ip::tcp::endpoint remote, std::shared_ptr<const tls_credentials> creds, link_config cfg,
    std::optional<protocol::node_id> required_peer = std::nullopt,
    tls_role role = tls_role::client);

/// How many AES-GCM cipher objects (one per direction of a link on our own TLS record layer)
/// the process keeps from one record to the next. With 0, the default, a link makes its ciphers
/// again for each read and each drained write (about 6 us each) and an idle link holds none (an
/// SDK's idle clients; a peer's thousands of attached clients). Up to the budget, links keep them
/// (about 2.3 KiB each); past it, a link drops its own after each use. A peer sets a budget for
/// its busy links (ring neighbours, active clients), whose every hop would pay the 6 us twice.
void set_cipher_budget(std::size_t cipher_objects) noexcept;
/// Cipher objects alive in the process now.
std::size_t ciphers_held() noexcept;

}  // namespace p2psip::transport
