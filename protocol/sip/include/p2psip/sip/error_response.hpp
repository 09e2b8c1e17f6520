#pragma once
// Stateless answers of the transport layer (sans-I/O): the best-effort response to bytes that
// failed to parse, and an error response to a parsed request (503 when a source is over its rate,
// say). RFC 3261 8.2.6 and 16.7: a response copies the request's Via values in order, From, To
// (with a To tag added when absent), Call-ID and CSeq.

#include <optional>
#include <string>
#include <string_view>

#include "p2psip/sip/error.hpp"
#include "p2psip/sip/message.hpp"

namespace p2psip::sip {

/// A response to `raw`, bytes that failed to parse with `error`: "SIP/2.0 <error.status>
/// <error.reason>", then the Via (every one, in order), From, To, Call-ID and CSeq lines found
/// textually in the header section (compact forms v, f, t, i too; folded lines unfolded; values
/// with control characters skipped), a To tag when the To has none, and Content-Length: 0.
/// The tag is derived from the Call-ID, CSeq and first Via, so a retransmission gets the same one.
/// nullopt when nothing must or can be sent: error.response is set or the bytes start like a
/// response ("SIP/"), or no Via can be found (there would be nowhere to send it).
std::optional<std::string> error_response_bytes(std::string_view raw, const parse_error& error);

/// An error response to `request` (a parsed, validated request): status and reason as given, its
/// Via values, From, To (a tag added when absent, derived as above), Call-ID and CSeq copied, no
/// body. The caller adds headers (Retry-After, Unsupported, ...) before serializing.
message error_response(const message& request, int status, std::string reason);

}  // namespace p2psip::sip
