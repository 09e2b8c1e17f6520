#include "json_dump.hpp"

#include <botan/hash.h>
#include <botan/pkix_types.h>
#include <botan/x509cert.h>

#include <ctime>
#include <exception>
#include <type_traits>
#include <variant>

#include "p2psip/tool/log.hpp"

namespace p2psip::wire {

using namespace p2psip::protocol;

// ---- small helpers ----

std::string hex_number(std::uint64_t v, int digits) {
  static constexpr char alphabet[] = "0123456789abcdef";
  std::string out = "0x";
  for (int i = digits - 1; i >= 0; --i) {
    const auto shift = static_cast<unsigned>(4 * i);
    out.push_back(alphabet[shift < 64 ? (v >> shift) & 0x0F : 0]);
  }
  return out;
}

bool is_printable_text(byte_view v) {
  std::size_t i = 0;
  while (i < v.size()) {
    const std::uint8_t c = v[i];
    if (c < 0x80) {
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
      if (c == 0x7F) return false;
      ++i;
      continue;
    }
    // A multi-byte UTF-8 sequence: lead byte, then 1..3 continuation bytes; no overlong forms,
    // no surrogates, nothing above U+10FFFF.
    std::size_t extra = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (extra >= v.size() - i) return false;  // sequence cut off by the end
    for (std::size_t k = 1; k <= extra; ++k) {
      const std::uint8_t cc = v[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    // C1 control characters are as unreadable as C0 ones.
    if (cp >= 0x80 && cp < 0xA0) return false;
    i += extra + 1;
  }
  return true;
}

void put_text_or_hex(json& obj, const std::string& key, byte_view v) {
  if (is_printable_text(v)) {
    obj[key] = std::string(as_string_view(v));
  } else {
    obj[key + "_hex"] = to_hex(v);
  }
}

std::string utc_from_ms(std::uint64_t ms) {
  return tool::utc_time_text_ms(ms);
}

namespace {

void put_time(json& obj, const std::string& key, std::uint64_t ms) {
  obj[key] = ms;
  const std::string text = utc_from_ms(ms);
  if (!text.empty()) obj[key + "_utc"] = text;
}

json node_list_json(const std::vector<node_id>& ids) {
  json out = json::array();
  for (const auto& id : ids) out.push_back(id.hex());
  return out;
}

void put_kind(json& obj, std::uint32_t kind) {
  obj["kind"] = kind;
  const std::string name = kind_name(kind);
  if (!name.empty()) obj["kind_name"] = name;
}

std::string overlay_link_name(std::uint8_t t) {
  switch (t) {
    case overlay_link_type::dtls_udp_sr: return "DTLS-UDP-SR";
    case overlay_link_type::dtls_udp_sr_no_ice: return "DTLS-UDP-SR-NO-ICE";
    case overlay_link_type::tls_tcp_fh_no_ice: return "TLS-TCP-FH-NO-ICE";
    case overlay_link_type::exp_link: return "EXP-LINK";
    default: return {};
  }
}

std::string candidate_type_name(std::uint8_t t) {
  switch (t) {
    case candidate_type::host: return "host";
    case candidate_type::srflx: return "srflx";
    case candidate_type::prflx: return "prflx";
    case candidate_type::relay: return "relay";
    default: return {};
  }
}

std::string probe_info_name(std::uint8_t t) {
  switch (t) {
    case probe_info_type::responsible_set: return "responsible_set";
    case probe_info_type::num_resources: return "num_resources";
    case probe_info_type::uptime: return "uptime";
    case probe_info_type::exp_probe: return "exp-probe";
    default: return {};
  }
}

std::string application_name(std::uint16_t app) {
  switch (app) {
    case 5060: return "SIP";
    case 5061: return "SIPS";
    default: return {};
  }
}

void put_name(json& obj, const std::string& key, const std::string& name) {
  if (!name.empty()) obj[key] = name;
}

// ---- certificates and signatures ----

std::string botan_hash_name(std::uint8_t h) {
  switch (h) {
    case hash_algorithm::md5: return "MD5";
    case hash_algorithm::sha1: return "SHA-1";
    case hash_algorithm::sha224: return "SHA-224";
    case hash_algorithm::sha256: return "SHA-256";
    case hash_algorithm::sha384: return "SHA-384";
    case hash_algorithm::sha512: return "SHA-512";
    default: return {};
  }
}

bytes digest(const std::string& algorithm, byte_view data) {
  auto hash = Botan::HashFunction::create(algorithm);
  if (!hash) return {};
  hash->update(data.data(), data.size());
  const auto out = hash->final();
  return bytes(out.begin(), out.end());
}

// Index of the certificate whose hash is the signer identity's cert_hash, if any. (For
// cert_hash_node_id the Node-ID that went into the hash is not on the wire, so no match is tried.)
std::optional<std::size_t> signer_certificate(const signer_identity& id, const dump_context& ctx) {
  if (id.type != static_cast<std::uint8_t>(signer_identity_type::cert_hash)) return std::nullopt;
  const std::string algorithm = botan_hash_name(id.hash.hash_alg);
  if (algorithm.empty()) return std::nullopt;
  for (std::size_t i = 0; i < ctx.certificates.size(); ++i) {
    if (digest(algorithm, ctx.certificates[i]) == id.hash.hash) return i;
  }
  return std::nullopt;
}

json signer_identity_json(const signer_identity& id) {
  json out;
  out["type"] = id.type;
  put_name(out, "type_name", signer_identity_type_name(id.type));
  if (id.type == static_cast<std::uint8_t>(signer_identity_type::cert_hash) ||
      id.type == static_cast<std::uint8_t>(signer_identity_type::cert_hash_node_id)) {
    out["hash_alg"] = id.hash.hash_alg;
    put_name(out, "hash_alg_name", hash_algorithm_name(id.hash.hash_alg));
    out["hash"] = to_hex(id.hash.hash);
  } else if (!id.is_none()) {
    out["value"] = to_hex(id.unknown_value);
  }
  return out;
}

// ---- storage ----

std::string model_name(const stored_data_value& v) {
  return std::string(data_model_name(model_of(v)));
}

// Decodes the value of a kind this tool knows the format of.
void put_kind_value(json& out, std::uint32_t kind, const data_value& v, const dump_context& ctx) {
  if (!v.exists || v.value.empty()) return;
  switch (kind) {
    case kinds::sip_registration: {
      auto reg = decode_sip_registration(v.value, ctx.lim);
      if (reg) {
        out["sip_registration"] = sip_registration_json(*reg);
      } else {
        out["sip_registration_error"] = reg.error().message();
      }
      break;
    }
    case kinds::turn_service: {
      auto turn = decode_turn_server(v.value);
      if (turn) {
        out["turn_server"] = json{{"iteration", turn->iteration},
                                  {"server_address", turn->server_address.to_string()}};
      } else {
        out["turn_server_error"] = turn.error().message();
      }
      break;
    }
    case kinds::certificate_by_node:
    case kinds::certificate_by_user:
      out["certificate"] = certificate_json(generic_certificate{0, v.value});
      break;
    default: break;
  }
}

void put_data_value(json& out, const data_value& v) {
  out["exists"] = v.exists;
  out["value_length"] = v.value.size();
  out["value"] = to_hex(v.value);
}

json specifier_json(const stored_data_specifier& s) {
  json out;
  put_kind(out, s.kind);
  out["generation"] = s.generation;
  if (s.model_guessed) out["model_guessed"] = true;
  if (s.undecoded) {
    out["model"] = "unknown";
    out["undecoded"] = to_hex(*s.undecoded);
    return out;
  }
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          out["model"] = "SINGLE";
        } else if constexpr (std::is_same_v<T, std::vector<array_range>>) {
          out["model"] = "ARRAY";
          json ranges = json::array();
          for (const auto& r : m) ranges.push_back(json{{"first", r.first}, {"last", r.last}});
          out["indices"] = std::move(ranges);
        } else {
          out["model"] = "DICTIONARY";
          json keys = json::array();
          for (const auto& k : m) keys.push_back(to_hex(k));
          out["keys"] = std::move(keys);
        }
      },
      s.model);
  return out;
}

json meta_data_json(const meta_data& m) {
  json out;
  out["exists"] = m.exists;
  out["value_length"] = m.value_length;
  out["hash_algorithm"] = m.hash_algorithm;
  put_name(out, "hash_algorithm_name", hash_algorithm_name(m.hash_algorithm));
  out["hash_value"] = to_hex(m.hash_value);
  return out;
}

json stored_meta_data_json(const stored_meta_data& d) {
  json out;
  put_time(out, "storage_time", d.storage_time);
  out["lifetime"] = d.lifetime;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, meta_data>) {
          out["model"] = "SINGLE";
          out["metadata"] = meta_data_json(m);
        } else if constexpr (std::is_same_v<T, array_entry_meta>) {
          out["model"] = "ARRAY";
          out["index"] = m.index;
          out["metadata"] = meta_data_json(m.value);
        } else {
          out["model"] = "DICTIONARY";
          out["key"] = to_hex(m.key);
          out["metadata"] = meta_data_json(m.value);
        }
      },
      d.metadata);
  return out;
}

template <class KindResponse, class ValueFn>
json kind_values_json(const KindResponse& k, std::uint64_t generation, const char* generation_key,
                      ValueFn&& value_json) {
  json out;
  put_kind(out, k.kind);
  out[generation_key] = generation;
  if (k.model_guessed) out["model_guessed"] = true;
  if (k.undecoded_values) {
    out["model"] = "unknown";
    out["undecoded_values"] = to_hex(*k.undecoded_values);
  }
  json values = json::array();
  for (const auto& v : k.values) values.push_back(value_json(v));
  out["values"] = std::move(values);
  return out;
}

// ---- ICE ----

json candidate_json(const ice_candidate& c) {
  json out;
  out["addr_port"] = c.addr_port.to_string();
  out["overlay_link"] = c.overlay_link;
  put_name(out, "overlay_link_name", overlay_link_name(c.overlay_link));
  put_text_or_hex(out, "foundation", c.foundation);
  out["priority"] = c.priority;
  out["type"] = c.type;
  put_name(out, "type_name", candidate_type_name(c.type));
  if (c.rel_addr_port) out["rel_addr_port"] = c.rel_addr_port->to_string();
  json exts = json::array();
  for (const auto& e : c.extensions) {
    json ext;
    put_text_or_hex(ext, "name", e.name);
    put_text_or_hex(ext, "value", e.value);
    exts.push_back(std::move(ext));
  }
  out["extensions"] = std::move(exts);
  return out;
}

json candidates_json(const std::vector<ice_candidate>& cs) {
  json out = json::array();
  for (const auto& c : cs) out.push_back(candidate_json(c));
  return out;
}

// ---- per body type ----

json chord_leave_json(const chord_leave_data& d) {
  json out;
  out["type"] = static_cast<unsigned>(d.type);
  switch (d.type) {
    case chord_leave_type::from_succ:
      out["type_name"] = "from_succ";
      out["successors"] = node_list_json(d.successors);
      break;
    case chord_leave_type::from_pred:
      out["type_name"] = "from_pred";
      out["predecessors"] = node_list_json(d.predecessors);
      break;
  }
  return out;
}

void render(json& out, const probe_req& b, const dump_context&) {
  json info = json::array();
  for (const auto t : b.requested_info) {
    json e{{"type", t}};
    put_name(e, "name", probe_info_name(t));
    info.push_back(std::move(e));
  }
  out["requested_info"] = std::move(info);
}

void render(json& out, const probe_ans& b, const dump_context&) {
  json info = json::array();
  for (const auto& p : b.probe_info) {
    json e{{"type", p.type}};
    put_name(e, "name", probe_info_name(p.type));
    if (p.type == probe_info_type::responsible_set || p.type == probe_info_type::num_resources ||
        p.type == probe_info_type::uptime) {
      e["value"] = p.value;
    } else {
      e["value_hex"] = to_hex(p.unknown_value);
    }
    info.push_back(std::move(e));
  }
  out["probe_info"] = std::move(info);
}

void render_attach(json& out, const attach_body& b) {
  put_text_or_hex(out, "ufrag", b.ufrag);
  put_text_or_hex(out, "password", b.password);
  put_text_or_hex(out, "role", b.role);
  out["candidates"] = candidates_json(b.candidates);
  out["send_update"] = b.send_update;
}
void render(json& out, const attach_req& b, const dump_context&) {
  render_attach(out, b);
}
void render(json& out, const attach_ans& b, const dump_context&) {
  render_attach(out, b);
}

void render_app_attach(json& out, const app_attach_body& b) {
  put_text_or_hex(out, "ufrag", b.ufrag);
  put_text_or_hex(out, "password", b.password);
  out["application"] = b.application;
  put_name(out, "application_name", application_name(b.application));
  put_text_or_hex(out, "role", b.role);
  out["candidates"] = candidates_json(b.candidates);
}
void render(json& out, const app_attach_req& b, const dump_context&) {
  render_app_attach(out, b);
}
void render(json& out, const app_attach_ans& b, const dump_context&) {
  render_app_attach(out, b);
}

void render(json& out, const ping_req& b, const dump_context&) {
  out["padding_length"] = b.padding.size();
  out["padding"] = to_hex(b.padding);
}

void render(json& out, const ping_ans& b, const dump_context&) {
  out["response_id"] = hex_number(b.response_id, 16);
  put_time(out, "time", b.time);
}

void render(json& out, const config_update_req& b, const dump_context&) {
  out["config_type"] = static_cast<unsigned>(b.type);
  switch (b.type) {
    case config_update_type::config:
      out["config_type_name"] = "config";
      out["config_data_length"] = b.config_data.size();
      put_text_or_hex(out, "config_data", b.config_data);
      break;
    case config_update_type::kind: {
      out["config_type_name"] = "kind";
      json kinds_out = json::array();
      for (const auto& k : b.kinds) {
        json e;
        put_text_or_hex(e, "kind_description", k);
        kinds_out.push_back(std::move(e));
      }
      out["kinds"] = std::move(kinds_out);
      break;
    }
  }
}
void render(json&, const config_update_ans&, const dump_context&) {}

void render(json& out, const join_req& b, const dump_context&) {
  out["joining_peer_id"] = b.joining_peer_id.hex();
  out["overlay_specific_data"] = to_hex(b.overlay_specific_data);
}
void render(json& out, const join_ans& b, const dump_context&) {
  out["overlay_specific_data"] = to_hex(b.overlay_specific_data);
}

void render(json& out, const leave_req& b, const dump_context& ctx) {
  out["leaving_peer_id"] = b.leaving_peer_id.hex();
  out["overlay_specific_data"] = to_hex(b.overlay_specific_data);
  if (b.overlay_specific_data.empty()) return;
  auto chord = decode_chord_leave_data(b.overlay_specific_data, ctx.lim);
  if (chord) {
    out["chord_leave_data"] = chord_leave_json(*chord);
  } else {
    out["chord_leave_data_error"] = chord.error().message();
  }
}
void render(json&, const leave_ans&, const dump_context&) {}

void render(json& out, const update_req& b, const dump_context&) {
  out["uptime"] = b.uptime;
  out["update_type"] = static_cast<unsigned>(b.type);
  switch (b.type) {
    case chord_update_type::peer_ready: out["update_type_name"] = "peer_ready"; break;
    case chord_update_type::neighbors:
      out["update_type_name"] = "neighbors";
      out["predecessors"] = node_list_json(b.predecessors);
      out["successors"] = node_list_json(b.successors);
      break;
    case chord_update_type::full:
      out["update_type_name"] = "full";
      out["predecessors"] = node_list_json(b.predecessors);
      out["successors"] = node_list_json(b.successors);
      out["fingers"] = node_list_json(b.fingers);
      break;
  }
}
void render(json&, const update_ans&, const dump_context&) {}

void render(json& out, const route_query_req& b, const dump_context&) {
  out["send_update"] = b.send_update;
  out["destination"] = destination_json(b.destination);
  out["overlay_specific_data"] = to_hex(b.overlay_specific_data);
}
void render(json& out, const route_query_ans& b, const dump_context&) {
  out["next_peer"] = b.next_peer.hex();
}

void render(json& out, const store_req& b, const dump_context& ctx) {
  out["resource"] = b.resource.hex();
  out["replica_number"] = b.replica_number;
  json kinds_out = json::array();
  for (const auto& k : b.kind_data) {
    kinds_out.push_back(
        kind_values_json(k, k.generation_counter, "generation_counter",
                         [&](const stored_data& d) { return stored_data_json(d, k.kind, ctx); }));
  }
  out["kind_data"] = std::move(kinds_out);
}

void render(json& out, const store_ans& b, const dump_context&) {
  json responses = json::array();
  for (const auto& k : b.kind_responses) {
    json e;
    put_kind(e, k.kind);
    e["generation_counter"] = k.generation_counter;
    e["replicas"] = node_list_json(k.replicas);
    responses.push_back(std::move(e));
  }
  out["kind_responses"] = std::move(responses);
}

void render_specifiers(json& out, const resource_id& resource,
                       const std::vector<stored_data_specifier>& specifiers) {
  out["resource"] = resource.hex();
  json specs = json::array();
  for (const auto& s : specifiers) specs.push_back(specifier_json(s));
  out["specifiers"] = std::move(specs);
}
void render(json& out, const fetch_req& b, const dump_context&) {
  render_specifiers(out, b.resource, b.specifiers);
}
void render(json& out, const stat_req& b, const dump_context&) {
  render_specifiers(out, b.resource, b.specifiers);
}

void render(json& out, const fetch_ans& b, const dump_context& ctx) {
  json responses = json::array();
  for (const auto& k : b.kind_responses) {
    responses.push_back(kind_values_json(k, k.generation, "generation", [&](const stored_data& d) {
      return stored_data_json(d, k.kind, ctx);
    }));
  }
  out["kind_responses"] = std::move(responses);
}

void render(json& out, const stat_ans& b, const dump_context&) {
  json responses = json::array();
  for (const auto& k : b.kind_responses) {
    responses.push_back(kind_values_json(k, k.generation, "generation", stored_meta_data_json));
  }
  out["kind_responses"] = std::move(responses);
}

void render(json& out, const find_req& b, const dump_context&) {
  out["resource"] = b.resource.hex();
  json kinds_out = json::array();
  for (const auto k : b.kinds) {
    json e;
    put_kind(e, k);
    kinds_out.push_back(std::move(e));
  }
  out["kinds"] = std::move(kinds_out);
}

void render(json& out, const find_ans& b, const dump_context&) {
  json results = json::array();
  for (const auto& r : b.results) {
    json e;
    put_kind(e, r.kind);
    e["closest"] = r.closest.hex();
    results.push_back(std::move(e));
  }
  out["results"] = std::move(results);
}

void render(json& out, const error_response& b, const dump_context& ctx) {
  out["error_code"] = b.error_code;
  const std::string_view name = reload_error_name(b.error_code);
  if (!name.empty()) out["error_name"] = std::string(name);
  // Two codes carry structures in error_info (RFC 6940 sections 6.3.3.1, 7.4.1.2).
  if (b.error_code == static_cast<std::uint16_t>(reload_errc::generation_counter_too_low)) {
    auto ans = decode_body(codes::store_ans, b.error_info, ctx.lim);
    if (ans) {
      out["error_info_hex"] = to_hex(b.error_info);
      out["error_info_store_ans"] = body_json(*ans, ctx);
      return;
    }
  } else if (b.error_code == static_cast<std::uint16_t>(reload_errc::unknown_kind)) {
    auto kinds_in = decode_unknown_kinds(b.error_info);
    if (kinds_in) {
      out["error_info_hex"] = to_hex(b.error_info);
      json list = json::array();
      for (const auto k : *kinds_in) {
        json e;
        put_kind(e, k);
        list.push_back(std::move(e));
      }
      out["error_info_unknown_kinds"] = std::move(list);
      return;
    }
  }
  put_text_or_hex(out, "error_info", b.error_info);
}

void render(json& out, const unknown_body& b, const dump_context&) {
  out["code"] = b.code;
  out["body_length"] = b.body.size();
  out["body"] = to_hex(b.body);
}

template <class T>
std::string body_type_name() {
  if constexpr (std::is_same_v<T, error_response>) {
    return "error_response";
  } else if constexpr (std::is_same_v<T, unknown_body>) {
    return "unknown";
  } else {
    return std::string(message_code_name(T::code));
  }
}

}  // namespace

// ---- public ----

std::string kind_name(std::uint32_t kind) {
  switch (kind) {
    case kinds::sip_registration: return "SIP-REGISTRATION";
    case kinds::turn_service: return "TURN-SERVICE";
    case kinds::certificate_by_node: return "CERTIFICATE_BY_NODE";
    case kinds::certificate_by_user: return "CERTIFICATE_BY_USER";
    case kinds::redir: return "REDIR";
    case kinds::p2psip_generic: return "P2PSIP-GENERIC";
    default: return {};
  }
}

std::string hash_algorithm_name(std::uint8_t h) {
  switch (h) {
    case hash_algorithm::none: return "none";
    case hash_algorithm::md5: return "md5";
    case hash_algorithm::sha1: return "sha1";
    case hash_algorithm::sha224: return "sha224";
    case hash_algorithm::sha256: return "sha256";
    case hash_algorithm::sha384: return "sha384";
    case hash_algorithm::sha512: return "sha512";
    case hash_algorithm::intrinsic: return "intrinsic";
    default: return {};
  }
}

std::string signature_algorithm_name(std::uint8_t s) {
  switch (s) {
    case signature_algorithm::anonymous: return "anonymous";
    case signature_algorithm::rsa: return "rsa";
    case signature_algorithm::dsa: return "dsa";
    case signature_algorithm::ecdsa: return "ecdsa";
    case signature_algorithm::ed25519: return "ed25519";
    case 8: return "ed448";
    default: return {};
  }
}

std::string signer_identity_type_name(std::uint8_t t) {
  switch (t) {
    case static_cast<std::uint8_t>(signer_identity_type::cert_hash): return "cert_hash";
    case static_cast<std::uint8_t>(signer_identity_type::cert_hash_node_id):
      return "cert_hash_node_id";
    case static_cast<std::uint8_t>(signer_identity_type::none): return "none";
    default: return {};
  }
}

json destination_json(const destination& d) {
  json out;
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, node_id>) {
          out["type"] = "node";
          out["value"] = v.hex();
          if (v.is_wildcard()) out["wildcard"] = true;
        } else if constexpr (std::is_same_v<T, resource_id>) {
          out["type"] = "resource";
          out["value"] = v.hex();
        } else if constexpr (std::is_same_v<T, opaque_id>) {
          out["type"] = "opaque_id";
          out["value"] = to_hex(v.value);
        } else {
          out["type"] = "compressed";
          out["value"] = hex_number(v.value, 4);
        }
      },
      d.value);
  return out;
}

json destination_list_json(const std::vector<destination>& list) {
  json out = json::array();
  for (const auto& d : list) out.push_back(destination_json(d));
  return out;
}

json forwarding_option_json(const forwarding_option& o) {
  json out;
  out["type"] = o.type;
  if (o.type == 1) out["type_name"] = "exp-forward";
  if (o.type == 2) out["type_name"] = "extensive_routing_mode";
  out["flags"] = hex_number(o.flags, 2);
  json names = json::array();
  if ((o.flags & option_flags::forward_critical) != 0) names.push_back("FORWARD_CRITICAL");
  if ((o.flags & option_flags::destination_critical) != 0) names.push_back("DESTINATION_CRITICAL");
  if ((o.flags & option_flags::response_copy) != 0) names.push_back("RESPONSE_COPY");
  out["flag_names"] = std::move(names);
  out["length"] = o.value.size();
  out["value"] = to_hex(o.value);
  return out;
}

json forwarding_header_json(const forwarding_header& h, std::size_t header_size) {
  json out;
  out["relo_token"] = hex_number(relo_token, 8);
  out["overlay"] = hex_number(h.overlay, 8);
  out["configuration_sequence"] = h.configuration_sequence;
  out["version"] = h.version;
  out["ttl"] = h.ttl;
  out["fragment"] = hex_number(h.fragment, 8);
  out["is_fragment"] = h.is_fragment();
  out["last_fragment"] = h.is_last_fragment();
  out["fragment_offset"] = h.fragment_offset();
  out["length"] = h.length;
  out["transaction_id"] = hex_number(h.transaction_id, 16);
  out["max_response_length"] = h.max_response_length;
  out["via_list"] = destination_list_json(h.via_list);
  out["destination_list"] = destination_list_json(h.destination_list);
  json opts = json::array();
  for (const auto& o : h.options) opts.push_back(forwarding_option_json(o));
  out["options"] = std::move(opts);
  out["header_size"] = header_size;
  return out;
}

json extension_json(const message_extension& e) {
  json out;
  out["type"] = e.type;
  if (e.type == 1) out["type_name"] = "exp-ext";
  out["critical"] = e.critical;
  out["length"] = e.contents.size();
  out["contents"] = to_hex(e.contents);
  return out;
}

json certificate_json(const generic_certificate& c) {
  json out;
  out["type"] = c.type;
  if (c.type == 0) out["type_name"] = "X.509";
  out["length"] = c.certificate.size();
  out["sha256"] = to_hex(digest("SHA-256", c.certificate));
  if (c.type != 0) return out;
  try {
    const Botan::X509_Certificate cert(c.certificate.data(), c.certificate.size());
    out["subject"] = cert.subject_dn().to_string();
    out["issuer"] = cert.issuer_dn().to_string();
    json uris = json::array();
    for (const auto& uri : cert.subject_alt_name().get_attribute("URI")) uris.push_back(uri);
    out["subject_alt_name_uris"] = std::move(uris);
    json emails = json::array();
    for (const auto& e : cert.subject_alt_name().get_attribute("RFC822")) emails.push_back(e);
    out["subject_alt_name_emails"] = std::move(emails);
    out["not_before"] = cert.not_before().readable_string();
    out["not_after"] = cert.not_after().readable_string();
  } catch (const std::exception& e) {
    out["parse_error"] = std::string(e.what());
  }
  return out;
}

json signature_json(const signature& s, const dump_context& ctx) {
  json out;
  json alg;
  alg["hash"] = s.algorithm.hash;
  put_name(alg, "hash_name", hash_algorithm_name(s.algorithm.hash));
  alg["signature"] = s.algorithm.signature;
  put_name(alg, "signature_name", signature_algorithm_name(s.algorithm.signature));
  out["algorithm"] = std::move(alg);
  out["identity"] = signer_identity_json(s.identity);
  out["value_length"] = s.value.size();
  out["unsigned"] = s.is_unsigned();
  if (const auto index = signer_certificate(s.identity, ctx)) out["signer_certificate"] = *index;
  return out;
}

json security_block_json(const security_block& b, const dump_context& ctx) {
  json out;
  json certs = json::array();
  for (const auto& c : b.certificates) certs.push_back(certificate_json(c));
  out["certificate_count"] = b.certificates.size();
  out["certificates"] = std::move(certs);
  out["signature"] = signature_json(b.signature, ctx);
  return out;
}

json sip_registration_json(const sip_registration& r) {
  json out;
  out["type"] = static_cast<unsigned>(r.type);
  if (r.type == sip_registration_type::uri) {
    out["type_name"] = "uri";
    put_text_or_hex(out, "uri", r.uri);
  } else if (r.type == sip_registration_type::route) {
    out["type_name"] = "route";
    put_text_or_hex(out, "contact_prefs", r.contact_prefs);
    out["destination_list"] = destination_list_json(r.destination_list);
  } else {
    out["value"] = to_hex(r.unknown_value);
  }
  return out;
}

json stored_data_json(const stored_data& d, std::uint32_t kind, const dump_context& ctx) {
  json out;
  put_time(out, "storage_time", d.storage_time);
  out["lifetime"] = d.lifetime;
  out["model"] = model_name(d.value);
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, data_value>) {
          put_data_value(out, v);
          put_kind_value(out, kind, v, ctx);
        } else if constexpr (std::is_same_v<T, array_entry>) {
          out["index"] = v.index;
          if (v.index == array_append_index) out["append"] = true;
          put_data_value(out, v.value);
          put_kind_value(out, kind, v.value, ctx);
        } else {
          out["key"] = to_hex(v.key);
          put_data_value(out, v.value);
          put_kind_value(out, kind, v.value, ctx);
        }
      },
      d.value);
  out["signature"] = signature_json(d.signature, ctx);
  return out;
}

json body_json(const message_body& body, const dump_context& ctx) {
  json out;
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        out["type"] = body_type_name<T>();
        render(out, b, ctx);
      },
      body);
  return out;
}

}  // namespace p2psip::wire
