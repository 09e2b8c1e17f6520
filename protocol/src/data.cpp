// Data models, the data signature input and the usage values (SIP-REGISTRATION, TURN-SERVICE).
#include "p2psip/protocol/data.hpp"

#include "stored_data_codec.hpp"

namespace p2psip::protocol {

std::string_view data_model_name(data_model m) noexcept {
  switch (m) {
    case data_model::single_value: return "SINGLE";
    case data_model::array: return "ARRAY";
    case data_model::dictionary: return "DICTIONARY";
  }
  return "";
}

std::optional<data_model> registered_kind_model(std::uint32_t kind) noexcept {
  // The registry fixes these models; a configuration document cannot change them (RFC 6940
  // section 11.1: registered kinds' data-model in the config is ignored).
  switch (kind) {
    case kinds::sip_registration: return data_model::dictionary;  // RFC 7904 section 3
    case kinds::turn_service: return data_model::single_value;    // RFC 6940 section 9
    case kinds::certificate_by_node: return data_model::array;    // RFC 6940 section 8
    case kinds::certificate_by_user: return data_model::array;    // RFC 6940 section 8
    case kinds::redir: return data_model::dictionary;             // RFC 7374
    case kinds::p2psip_generic: return data_model::dictionary;    // docs/conformance.md
    default: return std::nullopt;
  }
}

data_model model_of(const stored_data_value& v) noexcept {
  switch (v.index()) {
    case 1: return data_model::array;
    case 2: return data_model::dictionary;
    default: return data_model::single_value;
  }
}

namespace detail {

data_value decode_data_value(reader& r) {
  data_value v;
  v.exists = r.boolean("data_value.exists");
  v.value = to_bytes(r.opaque(4, 0, max_for_prefix(4), "data_value.value"));
  return v;
}

void encode_data_value(writer& w, const data_value& v) {
  w.boolean(v.exists);
  w.opaque(4, max_for_prefix(4), v.value, "data_value.value");
}

stored_data_value decode_stored_data_value(reader& r, data_model m) {
  switch (m) {
    case data_model::array: {
      array_entry e;
      e.index = r.u32("array_entry.index");
      e.value = decode_data_value(r);
      return e;
    }
    case data_model::dictionary: {
      dictionary_entry e;
      e.key = to_bytes(r.opaque(2, 0, 0xFFFF, "dictionary_entry.key"));
      e.value = decode_data_value(r);
      return e;
    }
    case data_model::single_value: break;
  }
  return decode_data_value(r);
}

void encode_stored_data_value(writer& w, const stored_data_value& v, bool zero_index) {
  if (const auto* a = std::get_if<array_entry>(&v)) {
    w.u32(zero_index ? 0 : a->index);
    encode_data_value(w, a->value);
  } else if (const auto* d = std::get_if<dictionary_entry>(&v)) {
    w.opaque(2, 0xFFFF, d->key, "dictionary_entry.key");
    encode_data_value(w, d->value);
  } else {
    encode_data_value(w, std::get<data_value>(v));
  }
}

}  // namespace detail

bytes data_signature_input(const resource_id& resource, std::uint32_t kind,
                           std::uint64_t storage_time, const stored_data_value& value,
                           const signer_identity& signer) {
  // RFC 6940 section 7.1 concatenates the values without saying how resource_id and kind are
  // written. We take the Resource-ID's raw bytes (no length prefix: "the Resource-ID", not the
  // ResourceId structure) and the Kind-ID as its wire type, uint32. docs/conformance.md.
  bytes out;
  writer w(out);
  w.raw(resource.value);
  w.u32(kind);
  w.u64(storage_time);
  detail::encode_stored_data_value(w, value, /*zero_index=*/true);
  encode_signer_identity(w, signer);
  return out;
}

// ---- SIP-REGISTRATION (RFC 7904 section 3.2) ----

result<sip_registration, decode_error> decode_sip_registration(byte_view value, const limits& lim) {
  reader r(value);
  sip_registration reg;
  reg.type = static_cast<sip_registration_type>(r.u8("sip_registration.type"));
  reader data = r.sub(2, 0xFFFF, "sip_registration.length");
  if (r.ok()) {
    switch (reg.type) {
      case sip_registration_type::uri:
        reg.uri = to_bytes(data.opaque(2, 0, 0xFFFF, "sip_registration.uri"));
        data.expect_done("sip_registration.length");
        break;
      case sip_registration_type::route: {
        reg.contact_prefs = to_bytes(data.opaque(2, 0, 0xFFFF, "sip_registration.contact_prefs"));
        const std::size_t list_at = data.offset();
        reader list = data.sub(2, 0xFFFF, "sip_registration.destination_list");
        // `Destination destination_list<3..2^16-1>`: a route goes somewhere.
        if (data.ok() && list.remaining() < 3) {
          data.fail_at(list_at, codec_errc::bad_length, "sip_registration.destination_list");
        }
        reg.destination_list = decode_destination_list(list, lim, lim.max_destination_entries,
                                                       "sip_registration.destination_list");
        data.expect_done("sip_registration.length");
        break;
      }
      default:
        // "This type can be extended": keep what we cannot read, the length delimits it.
        reg.unknown_value = to_bytes(data.take_rest());
        break;
    }
  }
  // The registration must fill the DataValue's value exactly.
  r.expect_done("sip_registration");
  if (!r.ok()) return unexpected{r.error()};
  return reg;
}

result<bytes> encode_sip_registration(const sip_registration& reg) {
  bytes out;
  writer w(out);
  w.u8(static_cast<std::uint8_t>(reg.type));
  w.vector(2, 0xFFFF, "sip_registration.length", [&] {
    switch (reg.type) {
      case sip_registration_type::uri: w.opaque(2, 0xFFFF, reg.uri, "sip_registration.uri"); break;
      case sip_registration_type::route:
        w.opaque(2, 0xFFFF, reg.contact_prefs, "sip_registration.contact_prefs");
        if (reg.destination_list.empty()) {
          w.fail(codec_errc::invalid_value, "sip_registration.destination_list");
        }
        w.vector(2, 0xFFFF, "sip_registration.destination_list",
                 [&] { encode_destination_list(w, reg.destination_list); });
        break;
      default: w.raw(reg.unknown_value); break;
    }
  });
  if (!w.ok()) return w.error();
  return out;
}

// ---- TURN-SERVICE (RFC 6940 section 9) ----

result<turn_server, decode_error> decode_turn_server(byte_view value) {
  reader r(value);
  turn_server t;
  t.iteration = r.u8("turn_server.iteration");
  t.server_address = decode_ip_address_port(r);
  r.expect_done("turn_server");
  if (!r.ok()) return unexpected{r.error()};
  return t;
}

result<bytes> encode_turn_server(const turn_server& t) {
  bytes out;
  writer w(out);
  w.u8(t.iteration);
  encode_ip_address_port(w, t.server_address);
  if (!w.ok()) return w.error();
  return out;
}

}  // namespace p2psip::protocol
