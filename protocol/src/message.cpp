#include "p2psip/protocol/message.hpp"

namespace p2psip::protocol {

std::string_view message_code_name(std::uint16_t code) noexcept {
  switch (code) {
    case codes::probe_req: return "probe_req";
    case codes::probe_ans: return "probe_ans";
    case codes::attach_req: return "attach_req";
    case codes::attach_ans: return "attach_ans";
    case codes::store_req: return "store_req";
    case codes::store_ans: return "store_ans";
    case codes::fetch_req: return "fetch_req";
    case codes::fetch_ans: return "fetch_ans";
    case codes::find_req: return "find_req";
    case codes::find_ans: return "find_ans";
    case codes::join_req: return "join_req";
    case codes::join_ans: return "join_ans";
    case codes::leave_req: return "leave_req";
    case codes::leave_ans: return "leave_ans";
    case codes::update_req: return "update_req";
    case codes::update_ans: return "update_ans";
    case codes::route_query_req: return "route_query_req";
    case codes::route_query_ans: return "route_query_ans";
    case codes::ping_req: return "ping_req";
    case codes::ping_ans: return "ping_ans";
    case codes::stat_req: return "stat_req";
    case codes::stat_ans: return "stat_ans";
    case codes::app_attach_req: return "app_attach_req";
    case codes::app_attach_ans: return "app_attach_ans";
    case codes::config_update_req: return "config_update_req";
    case codes::config_update_ans: return "config_update_ans";
    case codes::exp_a_req: return "exp_a_req";
    case codes::exp_a_ans: return "exp_a_ans";
    case codes::exp_b_req: return "exp_b_req";
    case codes::exp_b_ans: return "exp_b_ans";
    case codes::error: return "error";
    default: return {};
  }
}

namespace {

message_contents decode_contents_fields(reader& r, const limits& lim) {
  message_contents c;
  const std::size_t code_at = r.offset();
  c.code = r.u16("message_contents.message_code");
  if (r.ok() && c.code == codes::invalid) {
    r.fail_at(code_at, codec_errc::invalid_value, "message_contents.message_code");
  }
  c.body = to_bytes(r.opaque(4, 0, 0xFFFFFFFF, "message_contents.message_body"));
  reader ext = r.sub(4, 0xFFFFFFFF, "message_contents.extensions");
  while (ext.ok() && !ext.at_end()) {
    if (c.extensions.size() == lim.max_extensions) {
      ext.fail(codec_errc::limit_exceeded, "message_contents.extensions");
      break;
    }
    message_extension e;
    e.type = ext.u16("message_extension.type");
    e.critical = ext.boolean("message_extension.critical");
    e.contents = to_bytes(ext.opaque(4, 0, 0xFFFFFFFF, "message_extension.extension_contents"));
    c.extensions.push_back(std::move(e));
  }
  return c;
}

}  // namespace

result<message_contents, decode_error> decode_contents(reader& r, const limits& lim) {
  message_contents c = decode_contents_fields(r, lim);
  if (!r.ok()) return unexpected(r.error());
  return c;
}

result<message, decode_error> decode_message(byte_view in, const limits& lim) {
  auto header = decode_forwarding_header(in, lim);
  if (!header) return unexpected(header.error());
  if (header->header.is_fragment()) {
    return unexpected(decode_error{codec_errc::fragmented, "forwarding_header.fragment", 12});
  }
  reader r(in);
  (void)r.fixed(header->size, "forwarding_header");
  message m;
  m.header = std::move(header->header);
  m.contents = decode_contents_fields(r, lim);
  m.security = decode_security_block(r, lim);
  r.expect_done("message");
  if (!r.ok()) return unexpected(r.error());
  return m;
}

void encode_contents(writer& w, const message_contents& c) {
  w.u16(c.code);
  w.opaque(4, 0xFFFFFFFF, c.body, "message_contents.message_body");
  w.vector(4, 0xFFFFFFFF, "message_contents.extensions", [&] {
    for (const auto& e : c.extensions) {
      w.u16(e.type);
      w.boolean(e.critical);
      w.opaque(4, 0xFFFFFFFF, e.contents, "message_extension.extension_contents");
    }
  });
}

result<bytes> encode_message(const message& m, const limits& lim) {
  bytes out;
  out.reserve(256 + m.contents.body.size());
  writer w(out);
  encode_forwarding_header(w, m.header, 0);
  encode_contents(w, m.contents);
  encode_security_block(w, m.security);
  if (!w.ok()) return w.error();
  if (out.size() > lim.max_message_size || out.size() > 0xFFFFFFFFu) {
    return make_error_code(codec_errc::limit_exceeded);
  }
  const auto len = static_cast<std::uint32_t>(out.size());
  for (int i = 0; i < 4; ++i)
    out[16 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(len >> (24 - 8 * i));
  return out;
}

bytes message_signature_input(std::uint32_t overlay, std::uint64_t transaction_id,
                              const message_contents& contents, const signer_identity& signer) {
  bytes out;
  out.reserve(16 + contents.body.size());
  writer w(out);
  w.u32(overlay);
  w.u64(transaction_id);
  encode_contents(w, contents);
  encode_signer_identity(w, signer);
  return out;
}

}  // namespace p2psip::protocol
