#pragma once
// A whole RELOAD message: ForwardingHeader || MessageContents || SecurityBlock (RFC 6940 6.3).

#include <cstdint>
#include <string_view>
#include <vector>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/forwarding.hpp"
#include "p2psip/protocol/limits.hpp"
#include "p2psip/protocol/result.hpp"
#include "p2psip/protocol/security.hpp"

namespace p2psip::protocol {

/// Message codes (RFC 6940 section 14.8). Requests are odd, answers are request + 1.
namespace codes {
inline constexpr std::uint16_t invalid = 0;
inline constexpr std::uint16_t probe_req = 0x01, probe_ans = 0x02;
inline constexpr std::uint16_t attach_req = 0x03, attach_ans = 0x04;
inline constexpr std::uint16_t store_req = 0x07, store_ans = 0x08;
inline constexpr std::uint16_t fetch_req = 0x09, fetch_ans = 0x0A;
inline constexpr std::uint16_t find_req = 0x0D, find_ans = 0x0E;
inline constexpr std::uint16_t join_req = 0x0F, join_ans = 0x10;
inline constexpr std::uint16_t leave_req = 0x11, leave_ans = 0x12;
inline constexpr std::uint16_t update_req = 0x13, update_ans = 0x14;
inline constexpr std::uint16_t route_query_req = 0x15, route_query_ans = 0x16;
inline constexpr std::uint16_t ping_req = 0x17, ping_ans = 0x18;
inline constexpr std::uint16_t stat_req = 0x19, stat_ans = 0x1A;
inline constexpr std::uint16_t app_attach_req = 0x1D, app_attach_ans = 0x1E;
inline constexpr std::uint16_t config_update_req = 0x21, config_update_ans = 0x22;
inline constexpr std::uint16_t exp_a_req = 0x23, exp_a_ans = 0x24;
inline constexpr std::uint16_t exp_b_req = 0x25, exp_b_ans = 0x26;
inline constexpr std::uint16_t error = 0xFFFF;
}  // namespace codes

constexpr bool is_request(std::uint16_t code) noexcept {
  return code != 0 && code < 0x8000 && (code & 1u);
}
constexpr bool is_response(std::uint16_t code) noexcept {
  return code == codes::error || (code != 0 && code < 0x8000 && !(code & 1u));
}
/// The answer code of a request code.
constexpr std::uint16_t answer_code(std::uint16_t request) noexcept {
  return static_cast<std::uint16_t>(request + 1);
}
/// "ping_req", "store_ans", "error", or "" for a code outside the registry.
std::string_view message_code_name(std::uint16_t code) noexcept;

/// MessageExtension (RFC 6940 section 6.3.3).
struct message_extension {
  std::uint16_t type = 0;
  bool critical = false;
  bytes contents;
  friend bool operator==(const message_extension&, const message_extension&) = default;
};

/// MessageContents: the code, the still-encoded body, the extensions. decode_body() types the body.
struct message_contents {
  std::uint16_t code = codes::invalid;
  bytes body;
  std::vector<message_extension> extensions;
  friend bool operator==(const message_contents&, const message_contents&) = default;
};

struct message {
  forwarding_header header;
  message_contents contents;
  security_block security;
  friend bool operator==(const message&, const message&) = default;
};

/// Decodes a whole unfragmented message, enforcing `lim`. A fragment gives codec_errc::fragmented.
result<message, decode_error> decode_message(byte_view in, const limits& lim);
/// Decodes MessageContents || SecurityBlock (the bytes after the forwarding header).
result<message_contents, decode_error> decode_contents(reader& r, const limits& lim);

/// Encodes `m` (header.length is computed). Fails when a field does not fit its length prefix or
/// the result is larger than lim.max_message_size.
result<bytes> encode_message(const message& m, const limits& lim);
void encode_contents(writer& w, const message_contents& c);

/// The bytes a message signature covers (RFC 6940 section 6.3.4):
/// overlay || transaction_id || MessageContents || SignerIdentity.
bytes message_signature_input(std::uint32_t overlay, std::uint64_t transaction_id,
                              const message_contents& contents, const signer_identity& signer);

}  // namespace p2psip::protocol
