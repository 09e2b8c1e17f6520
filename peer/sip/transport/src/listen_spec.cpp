#include <cctype>
#include <string>

#include "p2psip/peer/sip_transport.hpp"

namespace p2psip::peer {

std::string_view to_string(sip_transport_kind k) noexcept {
  switch (k) {
    case sip_transport_kind::udp: return "udp";
    case sip_transport_kind::tcp: return "tcp";
    case sip_transport_kind::tls: return "tls";
  }
  return "?";
}

std::string to_string(const sip_listen_spec& spec) {
  std::string out(to_string(spec.kind));
  out += ':';
  if (spec.address.is_v6()) {
    out += '[' + spec.address.to_string() + ']';
  } else {
    out += spec.address.to_string();
  }
  out += ':' + std::to_string(spec.port);
  return out;
}

protocol::result<sip_listen_spec, std::string> parse_sip_listen(std::string_view text) {
  using failure = protocol::unexpected<std::string>;
  const std::string quoted = "\"" + std::string(text) + "\"";
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return failure(quoted + ": expected transport:address:port (udp:127.0.0.1:5060)");
  }
  std::string kind;
  for (const char c : text.substr(0, colon)) {
    kind.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  sip_listen_spec spec;
  if (kind == "udp") {
    spec.kind = sip_transport_kind::udp;
  } else if (kind == "tcp") {
    spec.kind = sip_transport_kind::tcp;
  } else if (kind == "tls") {
    spec.kind = sip_transport_kind::tls;
  } else {
    return failure(quoted + ": unknown transport \"" + kind + "\" (udp, tcp or tls)");
  }
  std::string_view rest = text.substr(colon + 1);
  std::string_view address;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos)
      return failure(quoted + ": missing ']' after IPv6 address");
    address = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
    if (rest.empty() || rest.front() != ':') return failure(quoted + ": missing :port");
    port = rest.substr(1);
  } else {
    const std::size_t last = rest.rfind(':');
    if (last == std::string_view::npos) return failure(quoted + ": missing :port");
    address = rest.substr(0, last);
    port = rest.substr(last + 1);
    if (address.find(':') != std::string_view::npos) {
      return failure(quoted + ": an IPv6 address must be written in brackets ([::1]:5060)");
    }
  }
  asio::error_code ec;
  spec.address = asio::ip::make_address(std::string(address), ec);
  if (ec || address.empty()) {
    return failure(quoted + ": \"" + std::string(address) + "\" is not an IP address");
  }
  if (spec.address.is_v6() && !rest.empty() && address.find('%') != std::string_view::npos) {
    return failure(quoted + ": scoped IPv6 addresses are not supported");
  }
  if (port.empty() || port.size() > 5) return failure(quoted + ": bad port");
  unsigned value = 0;
  for (const char c : port) {
    if (c < '0' || c > '9') return failure(quoted + ": bad port");
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return failure(quoted + ": port over 65535");
  spec.port = static_cast<std::uint16_t>(value);
  return spec;
}

}  // namespace p2psip::peer
