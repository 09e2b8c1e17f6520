#pragma once
// What p2psip-wire does, without the command line: hex text to bytes, one RELOAD message to a JSON
// document, a stream of framing-layer frames to a JSON array. Failures are one-line texts (the
// CLI prefixes "p2psip-wire: ") whose offsets count from the first byte of the whole input.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "json_dump.hpp"
#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/data.hpp"
#include "p2psip/protocol/limits.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::wire {

/// The tool's limits: NodeIdLength 16 and everything else as large as the wire allows, so that a
/// debugging session sees a message a peer would refuse as too large (the JSON says how large).
protocol::limits tool_limits();

struct decode_options {
  protocol::limits lim = tool_limits();
  /// Data models given with --kind; they take precedence over the registered kinds' models.
  std::map<std::uint32_t, protocol::data_model> kind_models;
  /// Re-encode the decoded message and compare it with the input.
  bool reencode = false;
};

/// Hex text to bytes. ASCII whitespace and ':' are ignored, '#' starts a comment that runs to the
/// end of the line. Fails on any other character ("bad hex digit 'g' at line 3, column 7") and on
/// an odd number of digits.
protocol::result<protocol::bytes, std::string> parse_hex_text(std::string_view text);

/// Parses a --kind argument "ID=single|array|dictionary" (ID decimal or 0x-hex).
protocol::result<std::pair<std::uint32_t, protocol::data_model>, std::string> parse_kind_override(
    std::string_view text);

/// Decodes one RELOAD message, or the forwarding header of a fragment, to JSON. `base` is the
/// message's position in a larger input (added to error offsets). A failure reads
/// "malformed message: truncated at offset 12 in forwarding_header.length".
protocol::result<json, std::string> decode_message_json(protocol::byte_view in,
                                                        const decode_options& opt,
                                                        std::size_t base = 0);

/// Result of decoding a framed stream: the array of frames is always there (up to and including
/// the frame that failed, which carries an "error" member); `error` is the first failure, or empty.
struct frames_result {
  json frames = json::array();
  std::string error;
};

/// Decodes a stream of RELOAD framing-layer frames (RFC 6940 section 6.6.2) with the codec's
/// frame_decoder; each data frame's message goes through decode_message_json. A bad message does
/// not stop the stream (the framing delimits it); a bad or cut-off frame does.
frames_result decode_frames_json(protocol::byte_view in, const decode_options& opt);

}  // namespace p2psip::wire
