#pragma once
// The error value of the SIP codec and its limits. A parse error carries the SIP status code to
// answer with and a reason phrase that names the problem (or the limit), ready for the wire.

#include <cstddef>
#include <string>
#include <utility>

#include "p2psip/protocol/result.hpp"

namespace p2psip::sip {

using p2psip::protocol::result;
using p2psip::protocol::unexpected;

/// Why bytes are not an acceptable SIP message, and what to answer.
struct parse_error {
  parse_error() = default;
  parse_error(int status_code, std::string reason_phrase, bool is_response = false)
      : status(status_code), reason(std::move(reason_phrase)), response(is_response) {}

  /// The status to answer a request with: 400 (syntax), 413 (body over the limit), 414 (Request-URI
  /// over the limit), 416 (unsupported URI scheme, from check_request_uri_scheme), 501 (unknown
  /// method whose CSeq disagrees), 505 (SIP version), 513 (header section or count over the limit).
  int status = 400;
  /// A reason phrase naming the problem, printable ASCII only ("Malformed CSeq header").
  std::string reason;
  /// True when the input was a response: a response is never answered, only dropped.
  bool response = false;
};

/// Sizes the parser accepts. Every limit is inclusive: a value equal to it passes, one byte more
/// fails with the status named here. Buffering in stream_parser never exceeds
/// max_header_bytes + max_body.
struct sip_limits {
  std::size_t max_start_line = 8192;     ///< start line without CRLF; 414 for a request, 400 else
  std::size_t max_uri = 4096;            ///< Request-URI bytes; 414 Request-URI Too Long
  std::size_t max_headers = 128;         ///< header fields (lines after unfolding); 513
  std::size_t max_header_bytes = 65536;  ///< start line, headers and the empty line; 513
  std::size_t max_body = 1u << 20;       ///< body bytes (Content-Length); 413
};

/// A parse_error with status 400 and the given reason.
inline parse_error bad_request(std::string reason) {
  return parse_error{400, std::move(reason)};
}

}  // namespace p2psip::sip
