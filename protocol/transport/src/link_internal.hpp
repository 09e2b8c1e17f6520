#pragma once
// What the listener needs from a link beyond the public interface.

#include <functional>
#include <memory>
#include <optional>
#include <system_error>

#include "p2psip/transport/link.hpp"

namespace p2psip::transport::detail {

/// Called once, posted to the link's executor, when the handshake succeeded (empty error) or
/// failed (the close reason).
using handshake_hook = std::function<void(const std::shared_ptr<link>&, std::error_code)>;

std::shared_ptr<link> start_link_internal(asio::ip::tcp::socket socket, tls_role role,
                                          std::shared_ptr<const tls_credentials> creds,
                                          link_config cfg,
                                          std::optional<protocol::node_id> required_peer,
                                          handshake_hook hook);

}  // namespace p2psip::transport::detail
