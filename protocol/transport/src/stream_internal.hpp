#pragma once
// What the stream listener needs from a stream beyond the public interface.

#include <functional>
#include <memory>
#include <optional>
#include <system_error>

#include "p2psip/transport/tls_stream.hpp"

namespace p2psip::transport::detail {

/// Called once, posted to the stream's executor, when the handshake succeeded (empty error) or
/// failed (the close reason).
using stream_handshake_hook =
    std::function<void(const std::shared_ptr<tls_stream>&, std::error_code)>;

std::shared_ptr<tls_stream> start_stream_internal(asio::ip::tcp::socket socket, tls_role role,
                                                  std::shared_ptr<const tls_credentials> creds,
                                                  stream_config cfg,
                                                  std::optional<protocol::node_id> expected,
                                                  stream_handshake_hook hook);

}  // namespace p2psip::transport::detail
