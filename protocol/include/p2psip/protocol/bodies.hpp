#pragma once
// Typed message bodies: one struct per message code of RFC 6940's registry (section 14.8), the
// CHORD-RELOAD topology bodies (section 10), and the Error response. decode_body() turns a
// message_contents' code and body bytes into one of them; encode_body() does the reverse.

#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "p2psip/protocol/address.hpp"
#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/data.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/forwarding.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/limits.hpp"
#include "p2psip/protocol/message.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::protocol {

// ---- Probe (RFC 6940 section 6.4.2.5) ----
namespace probe_info_type {
inline constexpr std::uint8_t responsible_set = 1, num_resources = 2, uptime = 3, exp_probe = 4;
}
/// ProbeInformation: type, uint8 length, value (a uint32 for the three defined types).
struct probe_information {
  std::uint8_t type = 0;
  std::uint32_t value = 0;  ///< responsible_ppb, num_resources or uptime
  bytes unknown_value;      ///< for exp_probe and unknown types: the raw value
  friend bool operator==(const probe_information&, const probe_information&) = default;
};
struct probe_req {
  static constexpr std::uint16_t code = codes::probe_req;
  std::vector<std::uint8_t> requested_info;
  friend bool operator==(const probe_req&, const probe_req&) = default;
};
struct probe_ans {
  static constexpr std::uint16_t code = codes::probe_ans;
  std::vector<probe_information> probe_info;
  friend bool operator==(const probe_ans&, const probe_ans&) = default;
};

// ---- Attach / AppAttach (sections 6.5.1, 6.5.2) ----
namespace overlay_link_type {
inline constexpr std::uint8_t dtls_udp_sr = 1, dtls_udp_sr_no_ice = 3, tls_tcp_fh_no_ice = 4,
                              exp_link = 5;
}
namespace candidate_type {
/// prflx (3) is RESERVED in RFC 6940's CandType: the codec rejects it (docs/conformance.md).
inline constexpr std::uint8_t host = 1, srflx = 2, prflx = 3, relay = 4;
}  // namespace candidate_type
struct ice_extension {
  bytes name;
  bytes value;
  friend bool operator==(const ice_extension&, const ice_extension&) = default;
};
struct ice_candidate {
  ip_address_port addr_port;
  std::uint8_t overlay_link = overlay_link_type::tls_tcp_fh_no_ice;
  bytes foundation;
  std::uint32_t priority = 0;
  std::uint8_t type = candidate_type::host;
  std::optional<ip_address_port> rel_addr_port;  ///< present exactly for srflx and relay
  std::vector<ice_extension> extensions;
  friend bool operator==(const ice_candidate&, const ice_candidate&) = default;
};
/// AttachReqAns: the same structure both ways.
struct attach_body {
  bytes ufrag;
  bytes password;
  bytes role;  ///< "passive" in requests, "active" in answers
  std::vector<ice_candidate> candidates;
  bool send_update = false;
  friend bool operator==(const attach_body&, const attach_body&) = default;
};
struct attach_req : attach_body {
  static constexpr std::uint16_t code = codes::attach_req;
};
struct attach_ans : attach_body {
  static constexpr std::uint16_t code = codes::attach_ans;
};
struct app_attach_body {
  bytes ufrag;
  bytes password;
  std::uint16_t application = 5060;
  bytes role;
  std::vector<ice_candidate> candidates;
  friend bool operator==(const app_attach_body&, const app_attach_body&) = default;
};
struct app_attach_req : app_attach_body {
  static constexpr std::uint16_t code = codes::app_attach_req;
};
struct app_attach_ans : app_attach_body {
  static constexpr std::uint16_t code = codes::app_attach_ans;
};

// ---- Ping (6.5.3) ----
struct ping_req {
  static constexpr std::uint16_t code = codes::ping_req;
  bytes padding;
  friend bool operator==(const ping_req&, const ping_req&) = default;
};
struct ping_ans {
  static constexpr std::uint16_t code = codes::ping_ans;
  std::uint64_t response_id = 0;
  std::uint64_t time = 0;  ///< ms since the Unix epoch
  friend bool operator==(const ping_ans&, const ping_ans&) = default;
};

// ---- ConfigUpdate (6.5.4) ----
enum class config_update_type : std::uint8_t { config = 1, kind = 2 };
struct config_update_req {
  static constexpr std::uint16_t code = codes::config_update_req;
  config_update_type type = config_update_type::config;
  bytes config_data;         ///< type config: `opaque config_data<0..2^24-1>`
  std::vector<bytes> kinds;  ///< type kind: KindDescription (each `opaque<0..2^16-1>` XML)
  friend bool operator==(const config_update_req&, const config_update_req&) = default;
};
struct config_update_ans {
  static constexpr std::uint16_t code = codes::config_update_ans;
  friend bool operator==(const config_update_ans&, const config_update_ans&) = default;
};

// ---- Join / Leave / Update / RouteQuery (6.4.2, 10) ----
struct join_req {
  static constexpr std::uint16_t code = codes::join_req;
  node_id joining_peer_id;
  bytes overlay_specific_data;
  friend bool operator==(const join_req&, const join_req&) = default;
};
struct join_ans {
  static constexpr std::uint16_t code = codes::join_ans;
  bytes overlay_specific_data;
  friend bool operator==(const join_ans&, const join_ans&) = default;
};
enum class chord_leave_type : std::uint8_t { from_succ = 1, from_pred = 2 };
/// ChordLeaveData, carried in LeaveReq.overlay_specific_data.
struct chord_leave_data {
  chord_leave_type type = chord_leave_type::from_succ;
  std::vector<node_id> successors;    ///< from_succ
  std::vector<node_id> predecessors;  ///< from_pred
  friend bool operator==(const chord_leave_data&, const chord_leave_data&) = default;
};
struct leave_req {
  static constexpr std::uint16_t code = codes::leave_req;
  node_id leaving_peer_id;
  bytes overlay_specific_data;
  friend bool operator==(const leave_req&, const leave_req&) = default;
};
struct leave_ans {
  static constexpr std::uint16_t code = codes::leave_ans;
  friend bool operator==(const leave_ans&, const leave_ans&) = default;
};
result<chord_leave_data, decode_error> decode_chord_leave_data(byte_view in, const limits& lim);
result<bytes> encode_chord_leave_data(const chord_leave_data& d);

enum class chord_update_type : std::uint8_t { peer_ready = 1, neighbors = 2, full = 3 };
/// UpdateReq for CHORD-RELOAD (ChordUpdate, section 10.7.1).
struct update_req {
  static constexpr std::uint16_t code = codes::update_req;
  std::uint32_t uptime = 0;
  chord_update_type type = chord_update_type::peer_ready;
  std::vector<node_id> predecessors;  ///< neighbors, full
  std::vector<node_id> successors;    ///< neighbors, full
  std::vector<node_id> fingers;       ///< full
  friend bool operator==(const update_req&, const update_req&) = default;
};
struct update_ans {
  static constexpr std::uint16_t code = codes::update_ans;
  friend bool operator==(const update_ans&, const update_ans&) = default;
};
struct route_query_req {
  static constexpr std::uint16_t code = codes::route_query_req;
  bool send_update = false;
  struct destination destination;
  bytes overlay_specific_data;
  friend bool operator==(const route_query_req&, const route_query_req&) = default;
};
/// ChordRouteQueryAns.
struct route_query_ans {
  static constexpr std::uint16_t code = codes::route_query_ans;
  node_id next_peer;
  friend bool operator==(const route_query_ans&, const route_query_ans&) = default;
};

// ---- Storage (7.4) ----
struct store_req {
  static constexpr std::uint16_t code = codes::store_req;
  resource_id resource;
  std::uint8_t replica_number = 0;
  std::vector<store_kind_data> kind_data;
  friend bool operator==(const store_req&, const store_req&) = default;
};
struct store_kind_response {
  std::uint32_t kind = 0;
  std::uint64_t generation_counter = 0;
  std::vector<node_id> replicas;
  friend bool operator==(const store_kind_response&, const store_kind_response&) = default;
};
struct store_ans {
  static constexpr std::uint16_t code = codes::store_ans;
  std::vector<store_kind_response> kind_responses;
  friend bool operator==(const store_ans&, const store_ans&) = default;
};
struct fetch_req {
  static constexpr std::uint16_t code = codes::fetch_req;
  resource_id resource;
  std::vector<stored_data_specifier> specifiers;
  friend bool operator==(const fetch_req&, const fetch_req&) = default;
};
struct fetch_kind_response {
  std::uint32_t kind = 0;
  std::uint64_t generation = 0;
  std::vector<stored_data> values;
  std::optional<bytes> undecoded_values;  ///< model unknown and not guessed
  bool model_guessed = false;
  friend bool operator==(const fetch_kind_response&, const fetch_kind_response&) = default;
};
struct fetch_ans {
  static constexpr std::uint16_t code = codes::fetch_ans;
  std::vector<fetch_kind_response> kind_responses;
  friend bool operator==(const fetch_ans&, const fetch_ans&) = default;
};
/// StatReq has FetchReq's layout.
struct stat_req {
  static constexpr std::uint16_t code = codes::stat_req;
  resource_id resource;
  std::vector<stored_data_specifier> specifiers;
  friend bool operator==(const stat_req&, const stat_req&) = default;
};
struct stat_kind_response {
  std::uint32_t kind = 0;
  std::uint64_t generation = 0;
  std::vector<stored_meta_data> values;
  std::optional<bytes> undecoded_values;
  bool model_guessed = false;
  friend bool operator==(const stat_kind_response&, const stat_kind_response&) = default;
};
struct stat_ans {
  static constexpr std::uint16_t code = codes::stat_ans;
  std::vector<stat_kind_response> kind_responses;
  friend bool operator==(const stat_ans&, const stat_ans&) = default;
};
struct find_req {
  static constexpr std::uint16_t code = codes::find_req;
  resource_id resource;
  std::vector<std::uint32_t> kinds;  ///< `KindId kinds<0..2^8-1>`, each at most once
  friend bool operator==(const find_req&, const find_req&) = default;
};
/// FindKindData. RFC 6940 section 7.4.4.2: `closest` "is 0 if no Resource-ID is known". We send
/// "none" as an all-zero id of the requested Resource-ID's length (the number 0 in the id space,
/// as a Chord peer would compare it) and accept both that and a zero-length id on receipt.
struct find_kind_data {
  std::uint32_t kind = 0;
  resource_id closest;  ///< written as given; see found()
  /// False for the "0 = none known" answer in either form (empty, or all zero bytes).
  bool found() const noexcept {
    for (const auto b : closest.value) {
      if (b != 0) return true;
    }
    return false;
  }
  friend bool operator==(const find_kind_data&, const find_kind_data&) = default;
};
struct find_ans {
  static constexpr std::uint16_t code = codes::find_ans;
  std::vector<find_kind_data> results;
  friend bool operator==(const find_ans&, const find_ans&) = default;
};

// ---- Error (6.3.3.1) ----
struct error_response {
  static constexpr std::uint16_t code = codes::error;
  std::uint16_t error_code = 0;
  bytes error_info;  ///< UTF-8 text, or a StoreAns / unknown-kind list for two codes
  friend bool operator==(const error_response&, const error_response&) = default;
};
/// Error_Unknown_Kind's error_info: `KindId unknown_kinds<0..2^8-1>`.
result<std::vector<std::uint32_t>, decode_error> decode_unknown_kinds(byte_view error_info);
result<bytes> encode_unknown_kinds(const std::vector<std::uint32_t>& kinds);

/// A code outside the registry (exp_a/exp_b, extensions): its body bytes as they are.
struct unknown_body {
  std::uint16_t code = 0;
  bytes body;
  friend bool operator==(const unknown_body&, const unknown_body&) = default;
};

using message_body =
    std::variant<probe_req, probe_ans, attach_req, attach_ans, store_req, store_ans, fetch_req,
                 fetch_ans, find_req, find_ans, join_req, join_ans, leave_req, leave_ans,
                 update_req, update_ans, route_query_req, route_query_ans, ping_req, ping_ans,
                 stat_req, stat_ans, app_attach_req, app_attach_ans, config_update_req,
                 config_update_ans, error_response, unknown_body>;

/// The message code a body is sent with.
std::uint16_t code_of(const message_body& body) noexcept;

/// Decodes `body` as the body of message `code`. The body must be consumed exactly.
/// Offsets in errors count from the first body byte (add the body's offset in the message).
result<message_body, decode_error> decode_body(std::uint16_t code, byte_view body,
                                               const limits& lim, const body_context& ctx = {});
/// Encodes a body (without the code); fails when a field does not fit its length prefix.
result<bytes> encode_body(const message_body& body);

}  // namespace p2psip::protocol
