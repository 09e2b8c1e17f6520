#pragma once
// An application byte stream over TLS 1.2 and TCP, for AppAttach (RFC 6940 section 6.5.2): after
// AppAttach the two nodes open a direct connection and run the application protocol (SIP, say)
// over it. Plain TLS: no RELOAD framing, no acks. The same mutual certificate authentication as a
// link: the peer's chain must verify against the overlay root(s) and its certificate must bind
// at least one Node-ID of the overlay (and the expected one, when given).
//
// Threading and lifetime as for links (link.hpp): a stream belongs to the executor it was created
// on and is not thread-safe; call its members, and expect its handlers, on that executor's
// thread. Its reader and writer coroutines hold it until it is closed; call close() when done.
//
// Bytes: write() queues, one writer coroutine sends in order, gathering small writes into TLS
// records of up to 16 KiB. read_some() hands out what arrived, in order, as it arrives; when
// max_buffered_bytes wait unread the stream stops reading the socket, so a slow application
// slows the peer through TCP instead of growing memory.
//
// Closes: a clean close by the peer (its TLS close_notify) ends the stream with
// transport_errc::closed_by_peer after every byte sent before it was read. TLS 1.2 has no
// half-close: the stream answers close_notify with its own at once, so bytes still queued then
// are dropped. A TCP FIN without close_notify (a truncation) is connection_lost.

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
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/result.hpp"
#include "p2psip/transport/credentials.hpp"
#include "p2psip/transport/errors.hpp"
#include "p2psip/transport/link.hpp"

namespace p2psip::transport {

/// Settings of an application stream; the defaults suit a SIP connection.
struct stream_config {
  /// Bytes accepted by write()/async_write() and not yet handed to TLS, at most (0 refuses
  /// every write and leaves async_write waiting until the stream closes).
  std::size_t max_queued_bytes = 1024 * 1024;
  /// Received bytes not yet taken by read_some(): at this many the stream stops reading the
  /// socket until the application reads (backpressure). The last read before it stops may add up
  /// to 33 KiB more (one socket read can complete a TLS record and carry the next one whole).
  std::size_t max_buffered_bytes = 256 * 1024;

  /// TCP connect plus TLS handshake.
  std::chrono::milliseconds handshake_timeout{10000};
  /// No bytes received for this long closes the stream with idle_timeout; nullopt: never. Longer
  /// than a link's: SIP clients send keep-alives only every 95 to 120 s (RFC 5626 section 4.4.1).
  std::optional<std::chrono::milliseconds> idle_timeout{std::chrono::seconds(300)};
  /// One write that does not finish in this time closes the stream with write_timeout.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
  /// close() sends what is queued and waits for the peer's close_notify or FIN for at most this
  /// long in all before closing the socket.
  std::chrono::milliseconds close_linger{2000};

  /// NSS key-log file (CLIENT_RANDOM lines) for decrypting captures; empty: $SSLKEYLOGFILE when
  /// set. Anyone with this file can read the traffic.
  std::string key_log_path;
  /// Diagnostic lines (an exception that escaped a coroutine); default: standard error.
  std::function<void(std::string_view)> log;
  /// TLS server role only: false asks the client for no certificate and accepts it without one
  /// (plain SIP user agents over TLS, RFC 3261 26.2.1: only the server is authenticated). Such a
  /// stream has no peer identity: peer_node_ids(), peer_user() and peer_certificate() are empty.
  /// The client role always verifies the server's chain against the overlay root(s).
  bool client_certificate_required = true;
  /// TLS client role with named-server credentials (tls_credentials::for_named_servers), and
  /// required there: the host name or IP address the server's certificate must name (a name is
  /// also sent as SNI). Must be empty with overlay credentials. A mismatch closes the stream with
  /// invalid_credentials; a certificate that does not name it, with wrong_server_name.
  std::string server_name;
};

/// A stream's life: handshaking, established, closing, closed (as a link's).
using stream_state = link_state;

/// Counters of one stream.
struct stream_stats {
  std::uint64_t app_bytes_sent = 0;      ///< application bytes handed to TLS
  std::uint64_t app_bytes_received = 0;  ///< application bytes received (taken or not)
  std::uint64_t bytes_sent = 0;          ///< bytes written to the socket (TLS included)
  std::uint64_t bytes_received = 0;      ///< bytes read from the socket (TLS included)
  std::uint64_t socket_reads = 0;        ///< completed reads
  std::uint64_t socket_writes = 0;       ///< completed writes
};

/// An established, mutually authenticated TLS connection carrying the application's bytes (or,
/// accepted with stream_config::client_certificate_required false, one whose client is
/// anonymous). See the file comment for threading, lifetime and closes.
class tls_stream {
 public:
  using close_handler = std::function<void(std::error_code reason)>;

  virtual ~tls_stream() = default;

  /// Completes once the handshake is over: an empty error_code when established (the peer
  /// verified), else why it failed (the close reason). May be awaited any number of times.
  /// connect_stream() and stream_listener hand out streams whose handshake is over already.
  virtual asio::awaitable<std::error_code> handshake() = 0;

  /// The next received bytes, in order, as they arrive: everything received and not yet taken
  /// (never empty), waiting while there is nothing. After the stream closed, what was received
  /// before is still returned; then the close reason: closed_by_peer (the peer's close_notify,
  /// after all its data), closed_locally, connection_lost, idle_timeout, tls_error, ... One
  /// caller at a time.
  virtual asio::awaitable<protocol::result<protocol::bytes>> read_some() = 0;

  /// Queues `data` to be sent after everything queued before it. Errors, with nothing queued:
  /// queue_full (queued_bytes() + data.size() would exceed max_queued_bytes, or an async_write
  /// is still queuing its bytes), not_connected (closing or closed). Empty data is accepted and
  /// sends nothing. Bytes written during the handshake are sent once it completes.
  virtual protocol::result<void> write(protocol::bytes data) = 0;
  /// Like write() but waits for room instead of failing with queue_full; data larger than
  /// max_queued_bytes is queued piece by piece as room appears, so the queue bound holds. Errors:
  /// not_connected (when called, or when the stream closes while waiting; a prefix may have been
  /// queued and sent then). The bytes of one async_write are never interleaved with another
  /// write's: concurrent async_writes take turns, and write() refuses with queue_full while one
  /// is still queuing.
  virtual asio::awaitable<protocol::result<void>> async_write(protocol::bytes data) = 0;

  /// Clean close: the bytes already queued are still sent, then close_notify; the socket closes
  /// after the peer answers or close_linger passes. The whole close, flushing included, takes at
  /// most close_linger; what is not written by then is dropped, as is what was written during a
  /// handshake still in progress. The close reason is closed_locally unless the stream had
  /// already failed. Idempotent.
  virtual void close() = 0;
  /// Called exactly once, from the stream's executor, with the close reason, when the stream is
  /// closed. A handler set on a closed stream is posted at once. Replaces any earlier handler.
  virtual void on_close(close_handler handler) = 0;

  virtual stream_state state() const noexcept = 0;
  /// Why the stream closed (or is closing); empty while open. Fixed once set.
  virtual std::error_code close_reason() const noexcept = 0;
  /// The close reason in more words (Botan's message, the validation status), maybe empty.
  virtual const std::string& close_detail() const noexcept = 0;

  /// Node-IDs bound by the peer's verified certificate (empty before the handshake completes).
  virtual const std::vector<protocol::node_id>& peer_node_ids() const noexcept = 0;
  /// The rfc822Name (user) of the peer's certificate, if any.
  virtual const std::string& peer_user() const noexcept = 0;
  /// The peer's certificate (DER), empty before the handshake completes.
  virtual const protocol::bytes& peer_certificate() const noexcept = 0;
  /// The negotiated cipher suite, e.g. "ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".
  virtual const std::string& cipher_suite() const noexcept = 0;

  /// Bytes accepted by write()/async_write() and not yet handed to TLS.
  virtual std::size_t queued_bytes() const noexcept = 0;
  /// Bytes received and not yet taken by read_some().
  virtual std::size_t buffered_bytes() const noexcept = 0;
  virtual const stream_stats& stats() const noexcept = 0;

  virtual const asio::ip::tcp::endpoint& remote_endpoint() const noexcept = 0;
  virtual const asio::ip::tcp::endpoint& local_endpoint() const noexcept = 0;
  virtual const asio::any_io_executor& get_executor() const noexcept = 0;
};

/// Wraps a connected TCP socket and starts the TLS handshake in `role`; await handshake() before
/// relying on the peer's identity. The stream runs on the socket's executor. `expected`: a
/// Node-ID the peer's certificate must bind (wrong_node_id otherwise). A null `creds` closes the
/// stream at once with invalid_credentials.
std::shared_ptr<tls_stream> start_stream(asio::ip::tcp::socket socket, tls_role role,
                                         std::shared_ptr<const tls_credentials> creds,
                                         stream_config cfg,
                                         std::optional<protocol::node_id> expected = std::nullopt);

/// Opens a TCP connection to `remote` from the calling coroutine's executor and runs the TLS
/// handshake as `role` (client by default), all within cfg.handshake_timeout; the result is
/// established. `expected`: a Node-ID the peer's certificate must bind. Errors: connect_failed,
/// handshake_timeout, invalid_credentials (null creds), and the handshake errors of
/// transport_errc (certificate_rejected, no_node_id, wrong_node_id, rejected_by_peer,
/// handshake_failed, connection_lost, ...).
asio::awaitable<protocol::result<std::shared_ptr<tls_stream>>> connect_stream(
    asio::ip::tcp::endpoint remote, std::shared_ptr<const tls_credentials> creds, stream_config cfg,
    std::optional<protocol::node_id> expected = std::nullopt, tls_role role = tls_role::client);

}  // namespace p2psip::transport
