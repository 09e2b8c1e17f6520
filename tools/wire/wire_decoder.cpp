#include "wire_decoder.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/forwarding.hpp"
#include "p2psip/protocol/framing.hpp"
#include "p2psip/protocol/message.hpp"

namespace p2psip::wire {

using namespace p2psip::protocol;

namespace {

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string printable_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7F) return std::string("'") + c + "'";
  return "byte " + hex_number(u, 2);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

decode_error shifted(decode_error e, std::size_t by) {
  e.offset += by;
  return e;
}

std::string malformed(const decode_error& e) {
  return "malformed message: " + e.message();
}

// The offset of the first byte where two byte strings differ (or the shorter length).
std::size_t first_difference(byte_view a, byte_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return i;
  }
  return n;
}

// Re-encodes the message with its body re-encoded from the typed value (so that the body codec is
// checked too, not only the copy of the raw body bytes) and compares with the input.
void put_reencoding(json& doc, const message& m, const message_body& body, byte_view in,
                    const limits& lim) {
  auto body_bytes = encode_body(body);
  if (!body_bytes) {
    doc["reencode_error"] = "body: " + body_bytes.error().message();
    return;
  }
  message again = m;
  again.contents.body = std::move(*body_bytes);
  auto encoded = encode_message(again, lim);
  if (!encoded) {
    doc["reencode_error"] = "message: " + encoded.error().message();
    return;
  }
  doc["reencoded_hex"] = to_hex(*encoded);
  const bool equal = *encoded == bytes(in.begin(), in.end());
  doc["reencoded_equal"] = equal;
  if (!equal) doc["reencoded_first_difference"] = first_difference(*encoded, in);
}

body_context make_body_context(const decode_options& opt) {
  body_context ctx;
  ctx.guess_unknown_models = true;
  ctx.model_of = [models = opt.kind_models](std::uint32_t kind) -> std::optional<data_model> {
    if (const auto it = models.find(kind); it != models.end()) return it->second;
    return registered_kind_model(kind);
  };
  return ctx;
}

}  // namespace

limits tool_limits() {
  limits lim;
  lim.max_message_size = std::numeric_limits<std::uint32_t>::max();
  // A list cannot hold more entries than its 16-bit byte length allows (2 bytes per compressed id).
  lim.max_via_entries = 0xFFFF;
  lim.max_destination_entries = 0xFFFF;
  lim.max_options = 0xFFFF;
  lim.max_extensions = std::numeric_limits<std::uint32_t>::max();
  lim.max_certificates = 0xFFFF;
  lim.initial_ttl = 255;
  return lim;
}

result<bytes, std::string> parse_hex_text(std::string_view text) {
  bytes out;
  out.reserve(text.size() / 2);
  int high = -1;
  std::size_t line = 1;
  std::size_t column = 0;
  std::size_t digits = 0;
  bool comment = false;
  for (const char c : text) {
    ++column;
    if (c == '\n') {
      ++line;
      column = 0;
      comment = false;
      continue;
    }
    if (comment) continue;
    if (c == '#') {
      comment = true;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' || c == ':') continue;
    const int v = hex_digit(c);
    if (v < 0) {
      return unexpected("bad hex input: unexpected " + printable_char(c) + " at line " +
                        std::to_string(line) + ", column " + std::to_string(column));
    }
    ++digits;
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<std::uint8_t>((high << 4) | v));
      high = -1;
    }
  }
  if (high >= 0) {
    return unexpected("bad hex input: odd number of hex digits (" + std::to_string(digits) + ")");
  }
  return out;
}

result<std::pair<std::uint32_t, data_model>, std::string> parse_kind_override(
    std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return unexpected("bad --kind '" + std::string(text) + "': " + why +
                      " (expected ID=single|array|dictionary)");
  };
  const std::size_t eq = text.find('=');
  if (eq == std::string_view::npos) return bad("no '='");
  std::string_view id_text = text.substr(0, eq);
  const std::string model_text = lower(text.substr(eq + 1));
  int base = 10;
  if (id_text.size() > 2 && id_text[0] == '0' && (id_text[1] == 'x' || id_text[1] == 'X')) {
    base = 16;
    id_text.remove_prefix(2);
  }
  if (id_text.empty()) return bad("no kind id");
  std::uint64_t id = 0;
  for (const char c : id_text) {
    const int v = hex_digit(c);
    if (v < 0 || v >= base) return bad("kind id is not a number");
    id = id * static_cast<std::uint64_t>(base) + static_cast<std::uint64_t>(v);
    if (id > 0xFFFFFFFFu) return bad("kind id does not fit 32 bits");
  }
  data_model model{};
  if (model_text == "single" || model_text == "single_value") {
    model = data_model::single_value;
  } else if (model_text == "array") {
    model = data_model::array;
  } else if (model_text == "dictionary") {
    model = data_model::dictionary;
  } else {
    return bad("unknown data model");
  }
  return std::pair{static_cast<std::uint32_t>(id), model};
}

result<json, std::string> decode_message_json(byte_view in, const decode_options& opt,
                                              std::size_t base) {
  const limits& lim = opt.lim;
  json doc;
  doc["input_length"] = in.size();

  auto header = decode_forwarding_header(in, lim);
  if (!header) return unexpected(malformed(shifted(header.error(), base)));
  const forwarding_header& h = header->header;
  doc["forwarding_header"] = forwarding_header_json(h, header->size);

  if (h.is_fragment()) {
    // Only the destination reassembles (RFC 6940 section 6.7); one fragment alone has no
    // decodable contents.
    json frag;
    frag["note"] =
        "fragment: the message contents and security block need reassembly of all fragments";
    frag["offset"] = h.fragment_offset();
    frag["last"] = h.is_last_fragment();
    const byte_view payload = in.subspan(header->size);
    frag["payload_length"] = payload.size();
    frag["payload"] = to_hex(payload);
    doc["fragment"] = std::move(frag);
    if (opt.reencode) doc["reencode_skipped"] = "a fragment is not re-encoded";
    return doc;
  }

  auto m = decode_message(in, lim);
  if (!m) return unexpected(malformed(shifted(m.error(), base)));

  dump_context ctx;
  ctx.lim = lim;
  for (const auto& c : m->security.certificates) ctx.certificates.push_back(c.certificate);

  const std::uint16_t code = m->contents.code;
  // MessageContents: uint16 message_code, then the body's uint32 length prefix.
  const std::size_t body_offset = header->size + 2 + 4;
  auto body = decode_body(code, m->contents.body, lim, make_body_context(opt));
  if (!body) return unexpected(malformed(shifted(body.error(), base + body_offset)));

  json contents;
  contents["offset"] = header->size;
  contents["message_code"] = code;
  contents["message_code_hex"] = hex_number(code, 4);
  const std::string_view name = message_code_name(code);
  contents["message_code_name"] = name.empty() ? std::string("unknown") : std::string(name);
  contents["is_request"] = is_request(code);
  contents["is_response"] = is_response(code);
  contents["body_offset"] = body_offset;
  contents["body_length"] = m->contents.body.size();
  contents["body"] = body_json(*body, ctx);
  json extensions = json::array();
  for (const auto& e : m->contents.extensions) extensions.push_back(extension_json(e));
  contents["extensions"] = std::move(extensions);
  doc["message_contents"] = std::move(contents);
  doc["security_block"] = security_block_json(m->security, ctx);

  if (opt.reencode) put_reencoding(doc, *m, *body, in, lim);
  return doc;
}

frames_result decode_frames_json(byte_view in, const decode_options& opt) {
  frames_result out;
  frame_decoder decoder(opt.lim);
  auto put = decoder.put(in);

  std::size_t offset = 0;  // of the next frame in the stream
  std::size_t index = 0;
  while (auto f = decoder.next()) {
    json entry;
    entry["frame"] = index;
    entry["offset"] = offset;
    if (const auto* d = std::get_if<data_frame>(&*f)) {
      entry["type"] = "data";
      entry["type_code"] = hex_number(static_cast<unsigned>(frame_type::data), 2);
      entry["sequence"] = d->sequence;
      entry["message_length"] = d->message.size();
      auto message_json = decode_message_json(d->message, opt, offset + data_frame_overhead);
      if (message_json) {
        entry["message"] = std::move(*message_json);
      } else {
        entry["error"] = message_json.error();
        if (out.error.empty())
          out.error = message_json.error() + " (frame " + std::to_string(index) + ")";
      }
      offset += data_frame_overhead + d->message.size();
    } else {
      const auto& a = std::get<ack_frame>(*f);
      entry["type"] = "ack";
      entry["type_code"] = hex_number(static_cast<unsigned>(frame_type::ack), 2);
      entry["ack_sequence"] = a.ack_sequence;
      entry["received"] = hex_number(a.received, 8);
      // framing.hpp's reading of RFC 6940 section 6.6.2: bit k stands for ack_sequence - (k + 1).
      json seen = json::array();
      for (unsigned k = 0; k < 32; ++k) {
        if ((a.received >> k) & 1u)
          seen.push_back(static_cast<std::uint32_t>(a.ack_sequence - (k + 1)));
      }
      entry["received_sequences"] = std::move(seen);
      offset += ack_frame_size;
    }
    out.frames.push_back(std::move(entry));
    ++index;
  }

  if (!put) {
    const std::string why = "malformed frame stream: " + put.error().message();
    out.frames.push_back(json{{"frame", index}, {"offset", offset}, {"error", why}});
    if (out.error.empty()) out.error = why;
  } else if (!decoder.at_boundary()) {
    const std::string why = "malformed frame stream: truncated at offset " +
                            std::to_string(offset) + " in frame " + std::to_string(index) +
                            " (the input ends inside it)";
    out.frames.push_back(json{{"frame", index}, {"offset", offset}, {"error", why}});
    if (out.error.empty()) out.error = why;
  }
  return out;
}

}  // namespace p2psip::wire
