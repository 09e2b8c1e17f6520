#pragma once
// A SIP message as a value, the datagram parser, and the serializer. The stream parser is in
// stream_parser.hpp. Parsing validates the start line, the framing and every header this codec
// knows (see README.md): handlers never see a half-checked message.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/sip/error.hpp"
#include "p2psip/sip/headers.hpp"
#include "p2psip/sip/uri.hpp"

namespace p2psip::sip {

/// One header field. `value` is unfolded (each CRLF+LWS became one SP) and trimmed.
struct header {
  std::string received_name;  ///< as on the wire ("v", "MaX-fOrWaRdS")
  std::string name;           ///< canonical long form for known headers ("Via"), else as received
  std::string value;
  bool operator==(const header&) const = default;
};

/// The canonical long name of a header name: compact forms expanded ("i" -> "Call-ID") and known
/// names in their usual case ("cseq" -> "CSeq"); unknown names are returned unchanged.
std::string canonical_header_name(std::string_view name);

/// A request (method and Request-URI) or a response (status and reason), headers in order, body.
struct message {
  std::string method;       ///< empty for a response
  std::string request_uri;  ///< as received
  int status = 0;           ///< 0 for a request
  std::string reason;
  std::vector<header> headers;
  std::string body;

  bool is_request() const noexcept { return status == 0; }

  /// The first header named `name` (canonical or compact, case-insensitive), or null.
  const header* find(std::string_view name) const;
  /// Every list element of every header named `name`, in order (split at top-level commas).
  std::vector<std::string_view> values(std::string_view name) const;
  /// Appends a header (name canonicalized).
  void add(std::string_view name, std::string value);
  /// Replaces every header named `name` by one with this value (appended if absent).
  void set(std::string_view name, std::string value);
  /// Removes every header named `name`; returns how many.
  std::size_t remove(std::string_view name);

  bool operator==(const message&) const = default;
};

/// Typed accessors. They parse on each call; on a message that came from parse_datagram or
/// stream_parser they succeed for every present header.
result<uri, parse_error> request_uri_of(const message& m);
result<std::vector<via>, parse_error> vias(const message& m);
result<cseq, parse_error> cseq_of(const message& m);
result<std::string, parse_error> call_id(const message& m);
result<name_addr, parse_error> from(const message& m);
result<name_addr, parse_error> to(const message& m);
/// nullopt when absent (RFC 2543 requests carry none).
result<std::optional<std::uint8_t>, parse_error> max_forwards(const message& m);
/// All Contact values of all Contact headers ('*' sets star).
result<contact_list, parse_error> contacts(const message& m);
/// Route, Record-Route or Path: every value in order.
result<std::vector<name_addr>, parse_error> route_set(const message& m, std::string_view name);
/// Supported, Require, Proxy-Require, Unsupported: every tag in order.
result<std::vector<std::string>, parse_error> option_tags(const message& m, std::string_view name);
/// Expires, Flow-Timer (delta-seconds), nullopt when absent.
result<std::optional<std::uint32_t>, parse_error> delta_seconds(const message& m,
                                                                std::string_view name);
result<std::optional<media_type>, parse_error> content_type(const message& m);
/// WWW-Authenticate, Proxy-Authenticate, Authorization, Proxy-Authorization: one per header.
result<std::vector<auth_value>, parse_error> auth_values(const message& m, std::string_view name);

/// Checks a parsed or built message as parse_datagram does after framing: start line, known
/// headers well-formed, single-valued headers once, mandatory headers present, CSeq method.
result<void, parse_error> validate(const message& m, const sip_limits& limits = {});

/// 416 Unsupported URI Scheme when the Request-URI is not sip, sips or tel (a UAS or proxy check
/// for later layers; RFC 4475 unkscm, novelsc).
std::optional<parse_error> check_request_uri_scheme(const message& m);

/// Parses one UDP datagram (RFC 3261 18.3): leading CRLFs are skipped, the body is Content-Length
/// bytes (the rest of the datagram when there is no Content-Length); octets after the body are
/// ignored; a Content-Length larger than what is left is a 400.
result<message, parse_error> parse_datagram(std::span<const std::byte> datagram,
                                            const sip_limits& limits = {});
result<message, parse_error> parse_datagram(std::string_view datagram,
                                            const sip_limits& limits = {});

/// The canonical form: start line, every header as "Name: value" with its canonical name, one
/// Content-Length equal to the body size (replacing any), CRLF line ends, the body.
std::string serialize(const message& m);

}  // namespace p2psip::sip
