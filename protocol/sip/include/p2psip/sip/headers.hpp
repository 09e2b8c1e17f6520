#pragma once
// Typed values of the header fields the SIP layers need, and their parsers. Each parser takes one
// header value as message::header holds it (unfolded) and fails with a 400 parse_error naming the
// header.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/sip/error.hpp"
#include "p2psip/sip/uri.hpp"

namespace p2psip::sip {

/// The RFC 3261 magic cookie that starts every branch of an RFC 3261 transaction.
inline constexpr std::string_view branch_cookie = "z9hG4bK";

/// True when `branch` starts with the magic cookie and has something after it (RFC 3261 8.1.1.7);
/// a bare "z9hG4bK" (RFC 4475 badbranch) is not a transaction identifier.
bool is_rfc3261_branch(std::string_view branch) noexcept;

/// `[display-name] <uri> *(;param)` or `uri *(;param)` (From, To, Contact, Route, Path, ...).
struct name_addr {
  std::string display_name;  ///< unquoted (quoted-pairs resolved), or the tokens joined by SP
  bool bracketed = false;    ///< the URI was written in <>
  uri address;
  std::vector<param> params;  ///< header parameters (tag, expires, q, +sip.instance, reg-id, ...)

  /// The tag parameter, if present.
  std::optional<std::string> tag() const;
  bool operator==(const name_addr&) const = default;
};

/// One Via value: sent-protocol, sent-by and via-params.
struct via {
  std::string protocol_name;     ///< "SIP"
  std::string protocol_version;  ///< "2.0"
  std::string transport;         ///< upper-cased: UDP, TCP, TLS, SCTP, WS, or any token
  std::string host;              ///< an IPv6 reference keeps its brackets
  std::optional<std::uint16_t> port;
  std::vector<param> params;

  std::optional<std::string> branch() const;
  std::optional<std::string> received() const;
  std::optional<std::string> maddr() const;
  std::optional<std::uint8_t> ttl() const;
  /// rport: absent (nullopt), present without value (a value of nullopt inside), or a port.
  std::optional<std::optional<std::uint16_t>> rport() const;
  bool operator==(const via&) const = default;
};

struct cseq {
  std::uint32_t number = 0;  ///< 32 bits (RFC 3261 8.1.1.5); more is a 400
  std::string method;
  bool operator==(const cseq&) const = default;
};

/// A Contact header value: '*' or a list of addresses.
struct contact_list {
  bool star = false;
  std::vector<name_addr> contacts;
};

/// Contact parameters (RFC 3261 20.10, RFC 5626 +sip.instance and reg-id).
/// expires: delta-seconds, saturated at 2^32-1.
std::optional<std::uint32_t> contact_expires(const name_addr& c);
/// q in thousandths (0..1000); nullopt when absent or malformed.
std::optional<std::uint16_t> contact_q(const name_addr& c);
/// +sip.instance with its quotes removed ("<urn:uuid:...>").
std::optional<std::string> contact_instance(const name_addr& c);
std::optional<std::uint32_t> contact_reg_id(const name_addr& c);

/// type/subtype *(;param), lower-cased type and subtype.
struct media_type {
  std::string type;
  std::string subtype;
  std::vector<param> params;
};

/// WWW-Authenticate / Proxy-Authenticate challenge or Authorization / Proxy-Authorization
/// credentials: a scheme and its auth-params (quoted values unquoted). Unknown schemes are kept.
struct auth_value {
  std::string scheme;  ///< as received ("Digest")
  std::vector<param> params;
  /// The parameter named `name` (case-insensitive), if present.
  std::optional<std::string> get(std::string_view name) const;
};

result<name_addr, parse_error> parse_name_addr(std::string_view value);
/// Like parse_name_addr but the URI must be in <> (Route, Record-Route, Path: RFC 3261 20.34).
result<name_addr, parse_error> parse_bracketed_name_addr(std::string_view value);
result<via, parse_error> parse_via(std::string_view value);
result<cseq, parse_error> parse_cseq(std::string_view value);
result<contact_list, parse_error> parse_contact(std::string_view value);
result<media_type, parse_error> parse_media_type(std::string_view value);
result<auth_value, parse_error> parse_auth(std::string_view value);
/// 1*DIGIT; Max-Forwards must be 0..255.
result<std::uint8_t, parse_error> parse_max_forwards(std::string_view value);
/// delta-seconds (Expires, Flow-Timer, Contact expires): 1*DIGIT saturated at 2^32-1.
result<std::uint32_t, parse_error> parse_delta_seconds(std::string_view value);
/// word ["@" word] (RFC 3261 25.1).
result<std::string, parse_error> parse_call_id(std::string_view value);
/// A comma list of option tags (Supported may be empty).
result<std::vector<std::string>, parse_error> parse_option_tags(std::string_view value);

/// Canonical text of the typed values, for layers that add or rewrite headers.
std::string to_string(const name_addr& v);
std::string to_string(const via& v);

/// Splits a header value at top-level commas (outside quoted strings and <>), trimming LWS.
/// Empty elements are kept so that callers can reject them.
std::vector<std::string_view> split_list(std::string_view value);

}  // namespace p2psip::sip
