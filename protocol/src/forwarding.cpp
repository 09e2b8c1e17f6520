#include "p2psip/protocol/forwarding.hpp"

#include <algorithm>

namespace p2psip::protocol {

destination decode_destination(reader& r, const limits& lim) {
  const std::size_t start = r.offset();
  const byte_view peek = r.rest();
  if (peek.empty()) {
    r.fail(codec_errc::truncated, "destination.type");
    return {};
  }
  if ((peek[0] & 0x80) != 0) {
    return destination{compressed_id{r.u16("destination.compressed_id")}};
  }
  const std::uint8_t type = r.u8("destination.type");
  reader data = r.sub(1, 255, "destination.length");
  if (!r.ok()) return {};
  switch (type) {
    case static_cast<std::uint8_t>(destination_type::node): {
      if (data.remaining() != lim.node_id_length) {
        r.fail_at(start + 1, codec_errc::wrong_id_length, "destination.node_id");
        return {};
      }
      const auto id = node_id::from_bytes(data.take_rest());
      if (!id || id->is_zero()) {
        r.fail_at(start + 2, codec_errc::invalid_value, "destination.node_id");
        return {};
      }
      return destination{*id};
    }
    case static_cast<std::uint8_t>(destination_type::resource): {
      resource_id id{to_bytes(data.opaque(1, 0, 255, "destination.resource_id"))};
      data.expect_done("destination.resource_id");
      return destination{std::move(id)};
    }
    case static_cast<std::uint8_t>(destination_type::opaque_id): {
      opaque_id id{to_bytes(data.opaque(1, 0, 255, "destination.opaque_id"))};
      data.expect_done("destination.opaque_id");
      return destination{std::move(id)};
    }
    case 0: r.fail_at(start, codec_errc::invalid_value, "destination.type"); return {};
    default: r.fail_at(start, codec_errc::unknown_type, "destination.type"); return {};
  }
}

void encode_destination(writer& w, const destination& d) {
  if (const auto* n = std::get_if<node_id>(&d.value)) {
    w.u8(static_cast<std::uint8_t>(destination_type::node));
    w.opaque(1, 255, n->view(), "destination.node_id");
  } else if (const auto* res = std::get_if<resource_id>(&d.value)) {
    w.u8(static_cast<std::uint8_t>(destination_type::resource));
    w.vector(1, 255, "destination.length",
             [&] { w.opaque(1, 255, res->value, "destination.resource_id"); });
  } else if (const auto* o = std::get_if<opaque_id>(&d.value)) {
    w.u8(static_cast<std::uint8_t>(destination_type::opaque_id));
    w.vector(1, 255, "destination.length",
             [&] { w.opaque(1, 255, o->value, "destination.opaque_id"); });
  } else {
    const auto c = std::get<compressed_id>(d.value).value;
    if ((c & 0x8000u) == 0) w.fail(codec_errc::invalid_value, "destination.compressed_id");
    w.u16(c);
  }
}

std::vector<destination> decode_destination_list(reader& r, const limits& lim,
                                                 std::size_t max_entries, const char* field) {
  std::vector<destination> out;
  // Node entries (2 + NodeIdLength bytes) are the common case: one allocation for all of them.
  out.reserve(std::min(max_entries, r.remaining() / (2 + lim.node_id_length) + 1));
  while (r.ok() && !r.at_end()) {
    if (out.size() == max_entries) {
      r.fail(codec_errc::limit_exceeded, field);
      break;
    }
    out.push_back(decode_destination(r, lim));
  }
  return out;
}

void encode_destination_list(writer& w, const std::vector<destination>& list) {
  for (const auto& d : list) encode_destination(w, d);
}

result<decoded_header, decode_error> decode_forwarding_header(byte_view in, const limits& lim) {
  reader r(in);
  decoded_header out;
  auto& h = out.header;
  if (in.size() >= 4 && r.u32("forwarding_header.relo_token") != relo_token) {
    r.fail_at(0, codec_errc::bad_token, "forwarding_header.relo_token");
  } else if (in.size() < 4) {
    r.fail(codec_errc::truncated, "forwarding_header.relo_token");
  }
  h.overlay = r.u32("forwarding_header.overlay");
  h.configuration_sequence = r.u16("forwarding_header.configuration_sequence");
  const std::size_t version_at = r.offset();
  h.version = r.u8("forwarding_header.version");
  if (r.ok() && h.version != reload_version) {
    r.fail_at(version_at, codec_errc::unsupported_version, "forwarding_header.version");
  }
  h.ttl = r.u8("forwarding_header.ttl");
  const std::size_t fragment_at = r.offset();
  h.fragment = r.u32("forwarding_header.fragment");
  if (r.ok() && (h.fragment & 0x80000000u) == 0) {
    // Bit 31 clear is the pre-RFC fragment layout, which RFC 6940 section 6.7 says to discard.
    r.fail_at(fragment_at, codec_errc::invalid_value, "forwarding_header.fragment");
  }
  const std::size_t length_at = r.offset();
  h.length = r.u32("forwarding_header.length");
  if (r.ok()) {
    if (h.length > lim.max_message_size) {
      r.fail_at(length_at, codec_errc::limit_exceeded, "forwarding_header.length");
    } else if (h.length != in.size()) {
      r.fail_at(length_at, in.size() < h.length ? codec_errc::truncated : codec_errc::bad_length,
                "forwarding_header.length");
    }
  }
  h.transaction_id = r.u64("forwarding_header.transaction_id");
  h.max_response_length = r.u32("forwarding_header.max_response_length");
  const std::size_t lengths_at = r.offset();
  const std::size_t via_len = r.u16("forwarding_header.via_list_length");
  const std::size_t dest_len = r.u16("forwarding_header.destination_list_length");
  const std::size_t opt_len = r.u16("forwarding_header.options_length");
  if (r.ok() && via_len + dest_len + opt_len > r.remaining()) {
    r.fail_at(lengths_at, codec_errc::bad_length, "forwarding_header.list_lengths");
  }

  reader via = r.fixed_sub(via_len, "forwarding_header.via_list");
  h.via_list = decode_destination_list(via, lim, lim.max_via_entries, "forwarding_header.via_list");
  for (std::size_t i = 0; r.ok() && i < h.via_list.size(); ++i) {
    if (h.via_list[i].is_resource()) {
      r.fail_at(lengths_at + 6, codec_errc::invalid_value, "forwarding_header.via_list");
    }
  }

  const std::size_t dest_at = r.offset();
  reader dest = r.fixed_sub(dest_len, "forwarding_header.destination_list");
  h.destination_list = decode_destination_list(dest, lim, lim.max_destination_entries,
                                               "forwarding_header.destination_list");
  if (r.ok() && h.destination_list.empty()) {
    r.fail_at(dest_at, codec_errc::invalid_value, "forwarding_header.destination_list");
  }
  for (std::size_t i = 0; r.ok() && i + 1 < h.destination_list.size(); ++i) {
    // A Resource-ID may only be the last entry (RFC 6940 section 6.3.2.2).
    if (h.destination_list[i].is_resource()) {
      r.fail_at(dest_at, codec_errc::invalid_value, "forwarding_header.destination_list");
    }
  }

  reader opts = r.fixed_sub(opt_len, "forwarding_header.options");
  while (opts.ok() && !opts.at_end()) {
    if (h.options.size() == lim.max_options) {
      opts.fail(codec_errc::limit_exceeded, "forwarding_header.options");
      break;
    }
    forwarding_option o;
    o.type = opts.u8("forwarding_option.type");
    o.flags = opts.u8("forwarding_option.flags");
    o.value = to_bytes(opts.opaque(2, 0, 0xFFFF, "forwarding_option.length"));
    h.options.push_back(std::move(o));
  }

  if (!r.ok()) return unexpected(r.error());
  out.size = r.offset();
  return out;
}

void encode_forwarding_header(writer& w, const forwarding_header& h, std::uint32_t total_length) {
  w.u32(relo_token);
  w.u32(h.overlay);
  w.u16(h.configuration_sequence);
  w.u8(h.version);
  w.u8(h.ttl);
  w.u32(h.fragment);
  w.u32(total_length);
  w.u64(h.transaction_id);
  w.u32(h.max_response_length);
  const std::size_t lengths_at = w.size();
  w.u16(0);
  w.u16(0);
  w.u16(0);
  auto& out = w.buffer();
  const auto patch = [&](std::size_t at, std::size_t len, const char* field) {
    if (len > 0xFFFF) {
      w.fail(codec_errc::value_too_long, field);
      return;
    }
    out[at] = static_cast<std::uint8_t>(len >> 8);
    out[at + 1] = static_cast<std::uint8_t>(len);
  };
  std::size_t start = w.size();
  encode_destination_list(w, h.via_list);
  patch(lengths_at, w.size() - start, "forwarding_header.via_list");
  start = w.size();
  encode_destination_list(w, h.destination_list);
  patch(lengths_at + 2, w.size() - start, "forwarding_header.destination_list");
  start = w.size();
  for (const auto& o : h.options) {
    w.u8(o.type);
    w.u8(o.flags);
    w.opaque(2, 0xFFFF, o.value, "forwarding_option.value");
  }
  patch(lengths_at + 4, w.size() - start, "forwarding_header.options");
}

}  // namespace p2psip::protocol
