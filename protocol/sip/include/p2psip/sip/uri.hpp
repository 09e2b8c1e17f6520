#pragma once
// URIs as RFC 3261 section 19.1 writes them (sip:, sips:), RFC 3966 tel: URIs, and any other
// absolute URI kept opaque. Components are kept as received (escaped); unescape() and uri_equal()
// apply the %HH rules of section 19.1.4.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/sip/error.hpp"

namespace p2psip::sip {

/// A `;name=value` (or `?name=value`) parameter as received; value empty when has_value is false.
/// For header parameters (generic-param) a quoted value is stored without its quotes, unescaped.
struct param {
  std::string name;
  std::string value;
  bool has_value = false;
  bool quoted = false;  ///< the value was a quoted-string on the wire
  bool operator==(const param&) const = default;
};

/// The first parameter named `name` (case-insensitive), or null.
const param* find_param(const std::vector<param>& params, std::string_view name) noexcept;

/// A parsed URI. For sip/sips every field is filled; for tel, `user` holds the number; for any
/// other scheme only `scheme` and `opaque` (everything after the colon).
struct uri {
  std::string scheme;  ///< lower-cased ("sip", "sips", "tel", ...)
  std::string user;    ///< escaped as received; may hold ';' (RFC 4475 semiuri)
  std::optional<std::string> password;
  std::string host;  ///< as received; an IPv6 reference keeps its brackets
  std::optional<std::uint16_t> port;
  std::vector<param> params;   ///< uri-parameters, escaped as received
  std::vector<param> headers;  ///< ?hname=hvalue&..., escaped as received
  std::string opaque;          ///< everything after "scheme:" for schemes other than sip/sips/tel

  bool is_sip() const noexcept { return scheme == "sip" || scheme == "sips"; }
  bool operator==(const uri&) const = default;  ///< field equality; see uri_equal for RFC rules
};

/// Parses a URI. Fails (400) on characters outside the grammar, bad %HH escapes, a bad port, an
/// empty parameter, or a missing host.
result<uri, parse_error> parse_uri(std::string_view text);

/// The canonical text of a URI (what parse_uri would read back as the same value).
std::string to_string(const uri& u);

/// Replaces each valid %HH by the octet it encodes; other bytes are copied (NUL octets included).
std::string unescape(std::string_view text);

/// URI equivalence of RFC 3261 section 19.1.4 (sip/sips; tel compares number and parameters;
/// other schemes compare the opaque part after unescaping).
bool uri_equal(const uri& a, const uri& b);

}  // namespace p2psip::sip
