#pragma once
// JSON renderings of the codec's typed values, for p2psip-wire. Pure functions of their inputs:
// no I/O. Field order follows the wire order (ordered_json), so the output reads like the RFC's
// structures.
//
// Conventions (also in `p2psip-wire --help`):
// - numbers stay numbers; fields the RFC treats as bit patterns or tokens (overlay, fragment,
//   transaction_id, flags, compressed ids) are "0x..." strings;
// - ids and binary opaque fields are lowercase hex without a prefix;
// - opaque fields that normally hold text (ufrag, error_info, URIs, XML) are a string when they are
//   printable UTF-8, otherwise the same key with "_hex" appended holds the hex.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/data.hpp"
#include "p2psip/protocol/forwarding.hpp"
#include "p2psip/protocol/limits.hpp"
#include "p2psip/protocol/message.hpp"
#include "p2psip/protocol/security.hpp"

namespace p2psip::wire {

using json = nlohmann::ordered_json;

/// What renderers need beyond the value itself: limits for nested decodes (SIP registrations,
/// ChordLeaveData) and the message's certificates, to say which one signed a value.
struct dump_context {
  protocol::limits lim;
  /// The certificates of the enclosing message's security block (DER), in order.
  std::vector<protocol::bytes> certificates;
};

/// "0x" followed by `digits` lowercase hex digits of v.
std::string hex_number(std::uint64_t v, int digits);
/// True for bytes that are valid UTF-8 with no control characters other than tab, CR and LF.
bool is_printable_text(protocol::byte_view v);
/// Sets obj[key] to the text of v when printable, otherwise obj[key + "_hex"] to its hex.
void put_text_or_hex(json& obj, const std::string& key, protocol::byte_view v);
/// "2023-11-14T22:13:20.000Z" for milliseconds since the epoch; empty when out of range.
std::string utc_from_ms(std::uint64_t ms);

/// Registry names; empty for a value outside the registry.
std::string kind_name(std::uint32_t kind);
std::string hash_algorithm_name(std::uint8_t h);
std::string signature_algorithm_name(std::uint8_t s);
std::string signer_identity_type_name(std::uint8_t t);

json destination_json(const protocol::destination& d);
json destination_list_json(const std::vector<protocol::destination>& list);
json forwarding_option_json(const protocol::forwarding_option& o);
/// The forwarding header; `header_size` is the size of its encoding (lists included).
json forwarding_header_json(const protocol::forwarding_header& h, std::size_t header_size);
json extension_json(const protocol::message_extension& e);

json certificate_json(const protocol::generic_certificate& c);
json signature_json(const protocol::signature& s, const dump_context& ctx);
json security_block_json(const protocol::security_block& b, const dump_context& ctx);

json sip_registration_json(const protocol::sip_registration& r);
/// A StoredData of `kind`; kind-specific values (SIP-REGISTRATION, TURN-SERVICE, certificates) are
/// decoded as well.
json stored_data_json(const protocol::stored_data& d, std::uint32_t kind, const dump_context& ctx);

/// Any typed body, with a "type" naming it ("ping_req", "error_response", "unknown").
json body_json(const protocol::message_body& body, const dump_context& ctx);

}  // namespace p2psip::wire
