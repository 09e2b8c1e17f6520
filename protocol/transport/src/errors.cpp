#include "p2psip/transport/errors.hpp"

#include <string>

namespace p2psip::transport {

namespace {

class transport_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "p2psip.transport"; }
  std::string message(int ev) const override {
    switch (static_cast<transport_errc>(ev)) {
      case transport_errc::ok: return "ok";
      case transport_errc::closed_locally: return "link closed locally";
      case transport_errc::closed_by_peer: return "link closed by the peer";
      case transport_errc::connection_lost: return "connection lost without close_notify";
      case transport_errc::connect_failed: return "TCP connect failed";
      case transport_errc::handshake_timeout: return "TLS handshake timed out";
      case transport_errc::handshake_failed: return "TLS handshake failed";
      case transport_errc::rejected_by_peer: return "the peer rejected our certificate";
      case transport_errc::no_peer_certificate: return "the peer sent no certificate";
      case transport_errc::certificate_rejected:
        return "peer certificate does not verify against the overlay root";
      case transport_errc::no_node_id: return "peer certificate carries no Node-ID";
      case transport_errc::wrong_node_id: return "peer certificate lacks the required Node-ID";
      case transport_errc::tls_error: return "TLS error";
      case transport_errc::idle_timeout: return "idle timeout";
      case transport_errc::write_timeout: return "write timeout";
      case transport_errc::link_failure: return "link failure: data left unacknowledged";
      case transport_errc::frame_too_large: return "received frame exceeds the message size limit";
      case transport_errc::bad_frame: return "malformed framing";
      case transport_errc::rate_limited: return "peer exceeded the misbehaviour limit";
      case transport_errc::message_too_large: return "message exceeds the message size limit";
      case transport_errc::queue_full: return "send queue full";
      case transport_errc::not_connected: return "link not connected";
      case transport_errc::invalid_credentials: return "invalid TLS credentials";
      case transport_errc::operation_aborted: return "operation aborted";
      case transport_errc::internal_error: return "internal error in the link";
      case transport_errc::wrong_server_name:
        return "server certificate does not name the host connected to";
    }
    return "unknown transport error " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& transport_category() noexcept {
  static const transport_category_impl category;
  return category;
}

std::error_code make_error_code(transport_errc e) noexcept {
  return {static_cast<int>(e), transport_category()};
}

}  // namespace p2psip::transport
