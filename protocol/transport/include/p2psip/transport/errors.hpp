#pragma once
// Why a link failed or closed, and why an operation on it was refused.

#include <system_error>

namespace p2psip::transport {

/// Close reasons of a link and errors of its operations (category "p2psip.transport").
enum class transport_errc {
  ok = 0,
  closed_locally = 1,    ///< close() was called on this side (a clean close)
  closed_by_peer,        ///< the peer sent a TLS close_notify (a clean close)
  connection_lost,       ///< the TCP connection ended or failed without a close_notify
  connect_failed,        ///< the TCP connection could not be opened
  handshake_timeout,     ///< TCP connect plus TLS handshake did not finish in time
  handshake_failed,      ///< the TLS handshake failed (not TLS, no common suite, peer's alert)
  rejected_by_peer,      ///< the peer refused our certificate (bad_certificate, unknown_ca, ...)
  no_peer_certificate,   ///< the peer sent no certificate
  certificate_rejected,  ///< the peer's chain does not verify against the overlay root(s)
  no_node_id,            ///< the peer's certificate holds no reload:// Node-ID for this overlay
  wrong_node_id,         ///< the peer's certificate lacks the Node-ID this link requires
  tls_error,             ///< a TLS error after the handshake (bad record MAC, peer's fatal alert)
  idle_timeout,          ///< nothing was received for the idle timeout
  write_timeout,         ///< a write did not complete in time (the peer stopped reading)
  link_failure,          ///< sent data stayed unacknowledged past the ack timeout (RFC 6940 6.6.5)
  frame_too_large,       ///< a received frame's message exceeds max_message_size
  bad_frame,             ///< the received framing stream is malformed
  rate_limited,          ///< the peer's misbehaviour count passed the configured limit
  message_too_large,     ///< send: the message exceeds max_message_size (the link stays open)
  queue_full,            ///< try_send: the send queue is full (the link stays open)
  not_connected,         ///< send/receive on a link that is closing or closed
  invalid_credentials,   ///< the certificate chain, key or roots given are unusable
  operation_aborted,     ///< the operation was cancelled (listener closed, executor stopped)
  internal_error,        ///< an unexpected exception inside the link (a bug; see the log)
  wrong_server_name,     ///< a named server's certificate does not name the host we connected to
};

const std::error_category& transport_category() noexcept;
std::error_code make_error_code(transport_errc e) noexcept;

}  // namespace p2psip::transport

template <>
struct std::is_error_code_enum<p2psip::transport::transport_errc> : std::true_type {};
