// Overlay and link bodies of RFC 6940: Probe (6.4.2.5), Attach (6.5.1), AppAttach (6.5.2),
// Ping (6.5.3), ConfigUpdate (6.5.4), Join/Leave (6.4.2.1/6.4.2.2), Update and RouteQuery as
// CHORD-RELOAD defines them (10.7, 10.8), ChordLeaveData (10.9) and ErrorResponse (6.3.3.1).
//
// Decoders read straight through and let the reader record the first failure; every select tag is
// checked before the bytes it governs are read, because without it the rest cannot be framed.
// Encoders refuse values the decoder would refuse, so what we send always parses.

#include <cstddef>
#include <cstdint>

#include "body_codec.hpp"

namespace p2psip::protocol {

namespace {

constexpr std::size_t max_u8_len = 0xFF;
constexpr std::size_t max_u16_len = 0xFFFF;
constexpr std::size_t max_u24_len = 0xFFFFFF;
constexpr std::size_t max_u32_len = 0xFFFFFFFF;

// `NodeId` is `opaque NodeId[NodeIdLength]`: a fixed array whose size the overlay configures.
node_id read_node_id(reader& r, const limits& lim, const char* field) {
  const std::size_t at = r.offset();
  const byte_view v = r.fixed(lim.node_id_length, field);
  if (!r.ok()) return {};
  const auto id = node_id::from_bytes(v);
  if (!id) {
    // Only reachable when lim.node_id_length is outside 16..20.
    r.fail_at(at, codec_errc::wrong_id_length, field);
    return {};
  }
  return *id;
}

// `NodeId list<0..2^16-1>`: the prefix counts bytes, so it must be a whole number of ids.
std::vector<node_id> read_node_id_list(reader& r, const limits& lim, const char* field) {
  const std::size_t at = r.offset();
  reader list = r.sub(2, max_u16_len, field);
  std::vector<node_id> out;
  if (!r.ok()) return out;
  if (lim.node_id_length == 0 || list.remaining() % lim.node_id_length != 0) {
    r.fail_at(at, codec_errc::bad_length, field);
    return out;
  }
  // The count is bounded by the bytes present, so reserving cannot be driven beyond the input.
  out.reserve(list.remaining() / lim.node_id_length);
  while (list.ok() && !list.at_end()) out.push_back(read_node_id(list, lim, field));
  return out;
}

void write_node_id_list(writer& w, const std::vector<node_id>& ids, const char* field) {
  w.vector(2, max_u16_len, field, [&] {
    for (const auto& id : ids) w.raw(id.view());
  });
}

// Reads an enum byte whose value 0 is the RFC's `invalid...(0)`.
std::uint8_t read_nonzero_u8(reader& r, const char* field) {
  const std::size_t at = r.offset();
  const std::uint8_t v = r.u8(field);
  if (r.ok() && v == 0) r.fail_at(at, codec_errc::invalid_value, field);
  return v;
}

// ---- Probe ----

bool probe_type_is_uint32(std::uint8_t type) noexcept {
  return type == probe_info_type::responsible_set || type == probe_info_type::num_resources ||
         type == probe_info_type::uptime;
}

probe_information read_probe_information(reader& r) {
  probe_information p;
  p.type = read_nonzero_u8(r, "probe_information.type");
  const std::size_t length_at = r.offset();
  reader value = r.sub(1, max_u8_len, "probe_information.length");
  if (!r.ok()) return p;
  if (probe_type_is_uint32(p.type)) {
    if (value.remaining() != 4) {
      r.fail_at(length_at, codec_errc::bad_length, "probe_information.length");
      return p;
    }
    p.value = value.u32("probe_information.value");
  } else {
    // "This structure allows for unknown option types": keep the value as it came.
    p.unknown_value = to_bytes(value.take_rest());
  }
  return p;
}

void write_probe_information(writer& w, const probe_information& p) {
  if (p.type == 0) w.fail(codec_errc::invalid_value, "probe_information.type");
  w.u8(p.type);
  w.vector(1, max_u8_len, "probe_information.length", [&] {
    if (probe_type_is_uint32(p.type)) {
      w.u32(p.value);
    } else {
      w.raw(p.unknown_value);
    }
  });
}

// ---- IceCandidate ----

bool candidate_has_rel_addr(std::uint8_t type) noexcept {
  return type == candidate_type::srflx || type == candidate_type::relay;
}

ice_candidate read_ice_candidate(reader& r) {
  ice_candidate c;
  c.addr_port = decode_ip_address_port(r);
  // Unknown link types are kept: the value frames nothing, and a receiver simply skips candidates
  // whose link protocol it does not speak (new values come through the IANA registry, 14.10).
  c.overlay_link = read_nonzero_u8(r, "ice_candidate.overlay_link");
  c.foundation = to_bytes(r.opaque(1, 0, max_u8_len, "ice_candidate.foundation"));
  c.priority = r.u32("ice_candidate.priority");
  const std::size_t type_at = r.offset();
  c.type = r.u8("ice_candidate.type");
  if (!r.ok()) return c;
  switch (c.type) {
    case candidate_type::host: break;
    case candidate_type::srflx:
    case candidate_type::relay: c.rel_addr_port = decode_ip_address_port(r); break;
    case 0: r.fail_at(type_at, codec_errc::invalid_value, "ice_candidate.type"); return c;
    default:
      // 3 is RESERVED (the draft's prflx) and later values are undefined: the select has no case
      // for them and no length, so the rest of the candidate cannot be framed
      // (docs/conformance.md).
      r.fail_at(type_at, codec_errc::unknown_type, "ice_candidate.type");
      return c;
  }
  reader ext = r.sub(2, max_u16_len, "ice_candidate.extensions");
  while (ext.ok() && !ext.at_end()) {
    ice_extension e;
    e.name = to_bytes(ext.opaque(2, 0, max_u16_len, "ice_extension.name"));
    e.value = to_bytes(ext.opaque(2, 0, max_u16_len, "ice_extension.value"));
    c.extensions.push_back(std::move(e));
  }
  return c;
}

void write_ice_candidate(writer& w, const ice_candidate& c) {
  encode_ip_address_port(w, c.addr_port);
  if (c.overlay_link == 0) w.fail(codec_errc::invalid_value, "ice_candidate.overlay_link");
  w.u8(c.overlay_link);
  w.opaque(1, max_u8_len, c.foundation, "ice_candidate.foundation");
  w.u32(c.priority);
  if (c.type != candidate_type::host && !candidate_has_rel_addr(c.type)) {
    w.fail(codec_errc::invalid_value, "ice_candidate.type");
  }
  w.u8(c.type);
  if (candidate_has_rel_addr(c.type) != c.rel_addr_port.has_value()) {
    w.fail(codec_errc::invalid_value, "ice_candidate.rel_addr_port");
  }
  if (c.rel_addr_port) encode_ip_address_port(w, *c.rel_addr_port);
  w.vector(2, max_u16_len, "ice_candidate.extensions", [&] {
    for (const auto& e : c.extensions) {
      w.opaque(2, max_u16_len, e.name, "ice_extension.name");
      w.opaque(2, max_u16_len, e.value, "ice_extension.value");
    }
  });
}

std::vector<ice_candidate> read_ice_candidates(reader& r, const char* field) {
  reader list = r.sub(2, max_u16_len, field);
  std::vector<ice_candidate> out;
  while (list.ok() && !list.at_end()) out.push_back(read_ice_candidate(list));
  return out;
}

void write_ice_candidates(writer& w, const std::vector<ice_candidate>& cs, const char* field) {
  w.vector(2, max_u16_len, field, [&] {
    for (const auto& c : cs) write_ice_candidate(w, c);
  });
}

// ---- Attach / AppAttach: the request and the answer share a layout, not their field names ----

struct attach_fields {
  const char* ufrag;
  const char* password;
  const char* role;
  const char* candidates;
  const char* send_update;
};
constexpr attach_fields attach_req_fields{"attach_req.ufrag", "attach_req.password",
                                          "attach_req.role", "attach_req.candidates",
                                          "attach_req.send_update"};
constexpr attach_fields attach_ans_fields{"attach_ans.ufrag", "attach_ans.password",
                                          "attach_ans.role", "attach_ans.candidates",
                                          "attach_ans.send_update"};

void read_attach(reader& r, const attach_fields& f, attach_body& out) {
  out.ufrag = to_bytes(r.opaque(1, 0, max_u8_len, f.ufrag));
  out.password = to_bytes(r.opaque(1, 0, max_u8_len, f.password));
  out.role = to_bytes(r.opaque(1, 0, max_u8_len, f.role));
  out.candidates = read_ice_candidates(r, f.candidates);
  out.send_update = r.boolean(f.send_update);
}

void write_attach(writer& w, const attach_fields& f, const attach_body& in) {
  w.opaque(1, max_u8_len, in.ufrag, f.ufrag);
  w.opaque(1, max_u8_len, in.password, f.password);
  w.opaque(1, max_u8_len, in.role, f.role);
  write_ice_candidates(w, in.candidates, f.candidates);
  w.boolean(in.send_update);
}

struct app_attach_fields {
  const char* ufrag;
  const char* password;
  const char* application;
  const char* role;
  const char* candidates;
};
constexpr app_attach_fields app_attach_req_fields{
    "app_attach_req.ufrag", "app_attach_req.password", "app_attach_req.application",
    "app_attach_req.role", "app_attach_req.candidates"};
constexpr app_attach_fields app_attach_ans_fields{
    "app_attach_ans.ufrag", "app_attach_ans.password", "app_attach_ans.application",
    "app_attach_ans.role", "app_attach_ans.candidates"};

void read_app_attach(reader& r, const app_attach_fields& f, app_attach_body& out) {
  out.ufrag = to_bytes(r.opaque(1, 0, max_u8_len, f.ufrag));
  out.password = to_bytes(r.opaque(1, 0, max_u8_len, f.password));
  out.application = r.u16(f.application);
  out.role = to_bytes(r.opaque(1, 0, max_u8_len, f.role));
  out.candidates = read_ice_candidates(r, f.candidates);
}

void write_app_attach(writer& w, const app_attach_fields& f, const app_attach_body& in) {
  w.opaque(1, max_u8_len, in.ufrag, f.ufrag);
  w.opaque(1, max_u8_len, in.password, f.password);
  w.u16(in.application);
  w.opaque(1, max_u8_len, in.role, f.role);
  write_ice_candidates(w, in.candidates, f.candidates);
}

// An empty struct: nothing to read; naming the body makes a stray byte's error say where it was.
void read_empty(reader& r, const char* field) {
  r.expect_done(field);
}

}  // namespace

namespace detail {

// ---- Probe ----

void decode_into(reader& r, const limits&, const body_context&, probe_req& out) {
  reader list = r.sub(1, max_u8_len, "probe_req.requested_info");
  // Unknown requested types are legal (the responder leaves them out); only invalid(0) is not.
  while (list.ok() && !list.at_end()) {
    out.requested_info.push_back(read_nonzero_u8(list, "probe_req.requested_info"));
  }
}

void encode_to(writer& w, const probe_req& in) {
  w.vector(1, max_u8_len, "probe_req.requested_info", [&] {
    for (const auto t : in.requested_info) {
      if (t == 0) w.fail(codec_errc::invalid_value, "probe_req.requested_info");
      w.u8(t);
    }
  });
}

void decode_into(reader& r, const limits&, const body_context&, probe_ans& out) {
  reader list = r.sub(2, max_u16_len, "probe_ans.probe_info");
  while (list.ok() && !list.at_end()) out.probe_info.push_back(read_probe_information(list));
}

void encode_to(writer& w, const probe_ans& in) {
  w.vector(2, max_u16_len, "probe_ans.probe_info", [&] {
    for (const auto& p : in.probe_info) write_probe_information(w, p);
  });
}

// ---- Attach / AppAttach ----

void decode_into(reader& r, const limits&, const body_context&, attach_req& out) {
  read_attach(r, attach_req_fields, out);
}
void encode_to(writer& w, const attach_req& in) {
  write_attach(w, attach_req_fields, in);
}

void decode_into(reader& r, const limits&, const body_context&, attach_ans& out) {
  read_attach(r, attach_ans_fields, out);
}
void encode_to(writer& w, const attach_ans& in) {
  write_attach(w, attach_ans_fields, in);
}

void decode_into(reader& r, const limits&, const body_context&, app_attach_req& out) {
  read_app_attach(r, app_attach_req_fields, out);
}
void encode_to(writer& w, const app_attach_req& in) {
  write_app_attach(w, app_attach_req_fields, in);
}

void decode_into(reader& r, const limits&, const body_context&, app_attach_ans& out) {
  read_app_attach(r, app_attach_ans_fields, out);
}
void encode_to(writer& w, const app_attach_ans& in) {
  write_app_attach(w, app_attach_ans_fields, in);
}

// ---- Ping ----

void decode_into(reader& r, const limits&, const body_context&, ping_req& out) {
  out.padding = to_bytes(r.opaque(2, 0, max_u16_len, "ping_req.padding"));
}
void encode_to(writer& w, const ping_req& in) {
  w.opaque(2, max_u16_len, in.padding, "ping_req.padding");
}

void decode_into(reader& r, const limits&, const body_context&, ping_ans& out) {
  out.response_id = r.u64("ping_ans.response_id");
  out.time = r.u64("ping_ans.time");
}
void encode_to(writer& w, const ping_ans& in) {
  w.u64(in.response_id);
  w.u64(in.time);
}

// ---- ConfigUpdate ----

void decode_into(reader& r, const limits&, const body_context&, config_update_req& out) {
  const std::size_t type_at = r.offset();
  const std::uint8_t type = r.u8("config_update_req.type");
  const std::size_t length_at = r.offset();
  const std::uint32_t length = r.u32("config_update_req.length");
  if (!r.ok()) return;
  if (type == 0) {
    r.fail_at(type_at, codec_errc::invalid_value, "config_update_req.type");
    return;
  }
  if (type != static_cast<std::uint8_t>(config_update_type::config) &&
      type != static_cast<std::uint8_t>(config_update_type::kind)) {
    // The length would let a reader skip a new type, but there would be nothing left to act on.
    r.fail_at(type_at, codec_errc::unknown_type, "config_update_req.type");
    return;
  }
  // `length` is "the length of the remainder of the message": it covers the select's own
  // 3-byte length prefix and must end exactly where the body ends (docs/conformance.md).
  if (length != r.remaining()) {
    r.fail_at(length_at, length > r.remaining() ? codec_errc::truncated : codec_errc::bad_length,
              "config_update_req.length");
    return;
  }
  out.type = static_cast<config_update_type>(type);
  if (out.type == config_update_type::config) {
    out.config_data = to_bytes(r.opaque(3, 0, max_u24_len, "config_update_req.config_data"));
  } else {
    reader list = r.sub(3, max_u24_len, "config_update_req.kinds");
    while (list.ok() && !list.at_end()) {
      out.kinds.push_back(to_bytes(list.opaque(2, 0, max_u16_len, "kind_description")));
    }
  }
}

void encode_to(writer& w, const config_update_req& in) {
  w.u8(static_cast<std::uint8_t>(in.type));
  // The uint32 length is back-patched like any other prefix.
  w.vector(4, max_u32_len, "config_update_req.length", [&] {
    switch (in.type) {
      case config_update_type::config:
        if (!in.kinds.empty()) w.fail(codec_errc::invalid_value, "config_update_req.kinds");
        w.opaque(3, max_u24_len, in.config_data, "config_update_req.config_data");
        break;
      case config_update_type::kind:
        if (!in.config_data.empty()) {
          w.fail(codec_errc::invalid_value, "config_update_req.config_data");
        }
        w.vector(3, max_u24_len, "config_update_req.kinds", [&] {
          for (const auto& k : in.kinds) w.opaque(2, max_u16_len, k, "kind_description");
        });
        break;
      default: w.fail(codec_errc::invalid_value, "config_update_req.type"); break;
    }
  });
}

void decode_into(reader& r, const limits&, const body_context&, config_update_ans&) {
  read_empty(r, "config_update_ans");
}
void encode_to(writer&, const config_update_ans&) {}

// ---- Join / Leave ----

void decode_into(reader& r, const limits& lim, const body_context&, join_req& out) {
  out.joining_peer_id = read_node_id(r, lim, "join_req.joining_peer_id");
  out.overlay_specific_data =
      to_bytes(r.opaque(2, 0, max_u16_len, "join_req.overlay_specific_data"));
}
void encode_to(writer& w, const join_req& in) {
  w.raw(in.joining_peer_id.view());
  w.opaque(2, max_u16_len, in.overlay_specific_data, "join_req.overlay_specific_data");
}

void decode_into(reader& r, const limits&, const body_context&, join_ans& out) {
  out.overlay_specific_data =
      to_bytes(r.opaque(2, 0, max_u16_len, "join_ans.overlay_specific_data"));
}
void encode_to(writer& w, const join_ans& in) {
  w.opaque(2, max_u16_len, in.overlay_specific_data, "join_ans.overlay_specific_data");
}

void decode_into(reader& r, const limits& lim, const body_context&, leave_req& out) {
  out.leaving_peer_id = read_node_id(r, lim, "leave_req.leaving_peer_id");
  // Kept opaque here: decode_chord_leave_data() reads it when the topology is CHORD-RELOAD.
  out.overlay_specific_data =
      to_bytes(r.opaque(2, 0, max_u16_len, "leave_req.overlay_specific_data"));
}
void encode_to(writer& w, const leave_req& in) {
  w.raw(in.leaving_peer_id.view());
  w.opaque(2, max_u16_len, in.overlay_specific_data, "leave_req.overlay_specific_data");
}

void decode_into(reader& r, const limits&, const body_context&, leave_ans&) {
  read_empty(r, "leave_ans");
}
void encode_to(writer&, const leave_ans&) {}

// ---- Update (ChordUpdate, RFC 6940 section 10.7) ----

void decode_into(reader& r, const limits& lim, const body_context&, update_req& out) {
  out.uptime = r.u32("chord_update.uptime");
  const std::size_t type_at = r.offset();
  const std::uint8_t type = r.u8("chord_update.type");
  if (!r.ok()) return;
  switch (type) {
    case static_cast<std::uint8_t>(chord_update_type::peer_ready):
      out.type = chord_update_type::peer_ready;
      break;
    case static_cast<std::uint8_t>(chord_update_type::neighbors):
      out.type = chord_update_type::neighbors;
      out.predecessors = read_node_id_list(r, lim, "chord_update.predecessors");
      out.successors = read_node_id_list(r, lim, "chord_update.successors");
      break;
    case static_cast<std::uint8_t>(chord_update_type::full):
      out.type = chord_update_type::full;
      out.predecessors = read_node_id_list(r, lim, "chord_update.predecessors");
      out.successors = read_node_id_list(r, lim, "chord_update.successors");
      out.fingers = read_node_id_list(r, lim, "chord_update.fingers");
      break;
    case 0: r.fail_at(type_at, codec_errc::invalid_value, "chord_update.type"); break;
    default: r.fail_at(type_at, codec_errc::unknown_type, "chord_update.type"); break;
  }
}

void encode_to(writer& w, const update_req& in) {
  w.u32(in.uptime);
  w.u8(static_cast<std::uint8_t>(in.type));
  // Lists the chosen type does not carry must be empty: silently dropping them would lose state.
  switch (in.type) {
    case chord_update_type::peer_ready:
      if (!in.predecessors.empty() || !in.successors.empty() || !in.fingers.empty()) {
        w.fail(codec_errc::invalid_value, "chord_update.type");
      }
      break;
    case chord_update_type::neighbors:
      if (!in.fingers.empty()) w.fail(codec_errc::invalid_value, "chord_update.fingers");
      write_node_id_list(w, in.predecessors, "chord_update.predecessors");
      write_node_id_list(w, in.successors, "chord_update.successors");
      break;
    case chord_update_type::full:
      write_node_id_list(w, in.predecessors, "chord_update.predecessors");
      write_node_id_list(w, in.successors, "chord_update.successors");
      write_node_id_list(w, in.fingers, "chord_update.fingers");
      break;
    default: w.fail(codec_errc::invalid_value, "chord_update.type"); break;
  }
}

void decode_into(reader& r, const limits&, const body_context&, update_ans&) {
  read_empty(r, "update_ans");
}
void encode_to(writer&, const update_ans&) {}

// ---- RouteQuery (6.4.2.4, 10.8) ----

void decode_into(reader& r, const limits& lim, const body_context&, route_query_req& out) {
  out.send_update = r.boolean("route_query_req.send_update");
  if (!r.ok()) return;
  out.destination = decode_destination(r, lim);
  out.overlay_specific_data =
      to_bytes(r.opaque(2, 0, max_u16_len, "route_query_req.overlay_specific_data"));
}
void encode_to(writer& w, const route_query_req& in) {
  w.boolean(in.send_update);
  encode_destination(w, in.destination);
  w.opaque(2, max_u16_len, in.overlay_specific_data, "route_query_req.overlay_specific_data");
}

void decode_into(reader& r, const limits& lim, const body_context&, route_query_ans& out) {
  out.next_peer = read_node_id(r, lim, "chord_route_query_ans.next_peer");
}
void encode_to(writer& w, const route_query_ans& in) {
  w.raw(in.next_peer.view());
}

// ---- ErrorResponse (6.3.3.1) ----

void decode_into(reader& r, const limits&, const body_context&, error_response& out) {
  const std::size_t code_at = r.offset();
  out.error_code = r.u16("error_response.error_code");
  // Code 0 is "invalid" in the registry (14.9); unassigned codes are kept for the caller to judge.
  if (r.ok() && out.error_code == 0) {
    r.fail_at(code_at, codec_errc::invalid_value, "error_response.error_code");
  }
  out.error_info = to_bytes(r.opaque(2, 0, max_u16_len, "error_response.error_info"));
}
void encode_to(writer& w, const error_response& in) {
  if (in.error_code == 0) w.fail(codec_errc::invalid_value, "error_response.error_code");
  w.u16(in.error_code);
  w.opaque(2, max_u16_len, in.error_info, "error_response.error_info");
}

}  // namespace detail

// ---- ChordLeaveData (10.9) ----

result<chord_leave_data, decode_error> decode_chord_leave_data(byte_view in, const limits& lim) {
  reader r(in);
  chord_leave_data out;
  const std::uint8_t type = r.u8("chord_leave_data.type");
  if (r.ok()) {
    switch (type) {
      case static_cast<std::uint8_t>(chord_leave_type::from_succ):
        out.type = chord_leave_type::from_succ;
        out.successors = read_node_id_list(r, lim, "chord_leave_data.successors");
        break;
      case static_cast<std::uint8_t>(chord_leave_type::from_pred):
        out.type = chord_leave_type::from_pred;
        out.predecessors = read_node_id_list(r, lim, "chord_leave_data.predecessors");
        break;
      case 0: r.fail_at(0, codec_errc::invalid_value, "chord_leave_data.type"); break;
      default: r.fail_at(0, codec_errc::unknown_type, "chord_leave_data.type"); break;
    }
  }
  r.expect_done("chord_leave_data");
  if (!r.ok()) return unexpected(r.error());
  return out;
}

result<bytes> encode_chord_leave_data(const chord_leave_data& d) {
  bytes out;
  writer w(out);
  w.u8(static_cast<std::uint8_t>(d.type));
  switch (d.type) {
    case chord_leave_type::from_succ:
      if (!d.predecessors.empty())
        w.fail(codec_errc::invalid_value, "chord_leave_data.predecessors");
      write_node_id_list(w, d.successors, "chord_leave_data.successors");
      break;
    case chord_leave_type::from_pred:
      if (!d.successors.empty()) w.fail(codec_errc::invalid_value, "chord_leave_data.successors");
      write_node_id_list(w, d.predecessors, "chord_leave_data.predecessors");
      break;
    default: w.fail(codec_errc::invalid_value, "chord_leave_data.type"); break;
  }
  if (!w.ok()) return w.error();
  return out;
}

// ---- Error_Unknown_Kind's error_info (6.3.3.1) ----

result<std::vector<std::uint32_t>, decode_error> decode_unknown_kinds(byte_view error_info) {
  reader r(error_info);
  std::vector<std::uint32_t> out;
  reader list = r.sub(1, max_u8_len, "error_info.unknown_kinds");
  if (r.ok() && list.remaining() % 4 != 0) {
    r.fail_at(0, codec_errc::bad_length, "error_info.unknown_kinds");
  }
  while (list.ok() && !list.at_end()) out.push_back(list.u32("error_info.unknown_kinds"));
  r.expect_done("error_info");
  if (!r.ok()) return unexpected(r.error());
  return out;
}

result<bytes> encode_unknown_kinds(const std::vector<std::uint32_t>& kinds) {
  bytes out;
  writer w(out);
  w.vector(1, max_u8_len, "error_info.unknown_kinds", [&] {
    for (const auto k : kinds) w.u32(k);
  });
  if (!w.ok()) return w.error();
  return out;
}

}  // namespace p2psip::protocol
