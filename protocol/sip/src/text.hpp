#pragma once
// Character classes and small scanners of the RFC 3261 grammar (section 25.1), internal.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/sip/error.hpp"
#include "p2psip/sip/headers.hpp"
#include "p2psip/sip/message.hpp"
#include "p2psip/sip/uri.hpp"

namespace p2psip::sip::detail {

inline bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
inline bool is_alnum(char c) noexcept {
  return is_alpha(c) || is_digit(c);
}
inline bool is_hex(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
inline bool is_ws(char c) noexcept {
  return c == ' ' || c == '\t';
}
/// token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
bool is_token_char(char c) noexcept;
/// unreserved = alphanum / mark
bool is_unreserved(char c) noexcept;
/// word characters of Call-ID (RFC 3261 25.1)
bool is_word_char(char c) noexcept;

bool is_token(std::string_view s) noexcept;
bool iequals(std::string_view a, std::string_view b) noexcept;
std::string to_lower(std::string_view s);
std::string to_upper(std::string_view s);
std::string_view trim(std::string_view s) noexcept;

/// 1*DIGIT into a 64-bit value; nullopt on no digits, a non-digit, or overflow past `max`.
std::optional<std::uint64_t> parse_number(std::string_view s, std::uint64_t max) noexcept;
/// 1*DIGIT saturated at `max`; nullopt on no digits or a non-digit.
std::optional<std::uint64_t> parse_saturated(std::string_view s, std::uint64_t max) noexcept;

/// Reads a quoted-string at s[pos] == '"'; returns its unescaped content and moves pos past the
/// closing quote; nullopt when unterminated.
std::optional<std::string> read_quoted(std::string_view s, std::size_t& pos);
/// `s` as a quoted-string: '"' and '\' become quoted-pairs (RFC 3261 25.1).
std::string quote(std::string_view s);

/// Parses `*( SEMI generic-param )` (header parameters, RFC 3261 25.1) from `s`, allowing LWS
/// around ';' and '='. Fails on an empty parameter or a bad value.
bool parse_generic_params(std::string_view s, std::vector<param>& out);

/// host [":" port] (sent-by, hostport). Host: hostname, IPv4 or [IPv6].
bool parse_hostport(std::string_view s, std::string& host, std::optional<std::uint16_t>& port);

/// A parse_error for a malformed header.
parse_error malformed(std::string_view header_name);

}  // namespace p2psip::sip::detail

namespace p2psip::sip::detail {
/// From, To, Contact items, Route items: name_addr with the header's name in errors.
result<name_addr, parse_error> parse_address_header(std::string_view value, bool brackets,
                                                    std::string_view header);
/// Parses a head (start line and header lines, without the empty line) into `m` and validates it;
/// returns the Content-Length, if present.
result<std::optional<std::size_t>, parse_error> parse_head(std::string_view head,
                                                           const sip_limits& limits, message& m);
/// True when bytes start like a status line ("SIP/", any case).
bool looks_like_response(std::string_view bytes) noexcept;
/// The error for a start line with no CRLF within max_start_line bytes.
parse_error start_line_too_long(std::string_view bytes, const sip_limits& limits);
}  // namespace p2psip::sip::detail
