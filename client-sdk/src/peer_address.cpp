#include "peer_address.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>
#include <optional>

#include "p2psip/client/errors.hpp"

namespace p2psip::client::detail {

namespace pr = p2psip::protocol;

namespace {

error make_failure(errc code, std::string message) {
  return {make_error_code(code), std::move(message)};
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v == 0 || v > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(v);
}

}  // namespace

std::variant<std::vector<pr::ip_address_port>, error> resolve_peer(std::string_view text) {
  const std::string quoted = "peer '" + std::string(text) + "'";
  if (auto literal = pr::ip_address_port::parse(text)) {
    if (literal->port() == 0) {
      return make_failure(errc::invalid_argument, quoted + ": port 0 is not a peer's port");
    }
    return std::vector<pr::ip_address_port>{*literal};
  }
  const auto colon = text.rfind(':');
  const std::string_view host = colon == std::string_view::npos ? text : text.substr(0, colon);
  // A host name has no ':' or brackets (those are IPv6 literals, which parse above or are wrong).
  if (colon == std::string_view::npos || host.empty() ||
      host.find_first_of(":[]") != std::string_view::npos) {
    return make_failure(errc::invalid_argument,
                        quoted + ": expected IP:PORT, [IPv6]:PORT or HOST:PORT");
  }
  const auto port = parse_port(text.substr(colon + 1));
  if (!port) {
    return make_failure(errc::invalid_argument, quoted + ": expected a port from 1 to 65535");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  const std::string host_text(host);
  const int rc = ::getaddrinfo(host_text.c_str(), nullptr, &hints, &found);
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, &::freeaddrinfo);
  if (rc != 0) {
    return make_failure(errc::no_peer,
                        quoted + ": cannot resolve '" + host_text + "': " + ::gai_strerror(rc));
  }
  std::vector<pr::ip_address_port> out;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    pr::ip_address_port address;
    if (a->ai_family == AF_INET && a->ai_addrlen >= sizeof(sockaddr_in)) {
      sockaddr_in sin{};
      std::memcpy(&sin, a->ai_addr, sizeof sin);
      pr::ipv4_address_port v4;
      std::memcpy(v4.address.data(), &sin.sin_addr, v4.address.size());
      v4.port = *port;
      address.value = v4;
    } else if (a->ai_family == AF_INET6 && a->ai_addrlen >= sizeof(sockaddr_in6)) {
      sockaddr_in6 sin6{};
      std::memcpy(&sin6, a->ai_addr, sizeof sin6);
      pr::ipv6_address_port v6;
      std::memcpy(v6.address.data(), &sin6.sin6_addr, v6.address.size());
      v6.port = *port;
      address.value = v6;
    } else {
      continue;
    }
    if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(address);
  }
  if (out.empty()) {
    return make_failure(errc::no_peer, quoted + ": '" + host_text + "' has no IP address");
  }
  return out;
}

}  // namespace p2psip::client::detail
