#pragma once
// The peers a client is given: "IP:PORT", "[IPv6]:PORT", or "HOST:PORT" resolved with
// getaddrinfo. Resolution happens once, in client::create on the caller's thread, so a slow
// resolver never stalls the I/O thread; every address a name has is tried in order.

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "p2psip/client/client.hpp"
#include "p2psip/protocol/address.hpp"

namespace p2psip::client::detail {

/// The addresses of `text`: one for an IP literal, every one getaddrinfo gives for a host name.
/// Errors: invalid_argument (not HOST:PORT, port 0 or out of range), no_peer (the name does not
/// resolve; the message names it and the resolver's reason).
std::variant<std::vector<protocol::ip_address_port>, error> resolve_peer(std::string_view text);

}  // namespace p2psip::client::detail
