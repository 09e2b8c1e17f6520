#include "body_codec.hpp"

namespace p2psip::protocol {

std::uint16_t code_of(const message_body& body) noexcept {
  return std::visit(
      [](const auto& b) -> std::uint16_t {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, unknown_body>) {
          return b.code;
        } else {
          return T::code;
        }
      },
      body);
}

namespace {

template <class T>
result<message_body, decode_error> decode_as(byte_view in, const limits& lim,
                                             const body_context& ctx) {
  reader r(in);
  T out{};
  detail::decode_into(r, lim, ctx, out);
  r.expect_done("message_body");
  if (!r.ok()) return unexpected(r.error());
  return message_body{std::move(out)};
}

}  // namespace

result<message_body, decode_error> decode_body(std::uint16_t code, byte_view body,
                                               const limits& lim, const body_context& ctx) {
  switch (code) {
    case codes::probe_req: return decode_as<probe_req>(body, lim, ctx);
    case codes::probe_ans: return decode_as<probe_ans>(body, lim, ctx);
    case codes::attach_req: return decode_as<attach_req>(body, lim, ctx);
    case codes::attach_ans: return decode_as<attach_ans>(body, lim, ctx);
    case codes::store_req: return decode_as<store_req>(body, lim, ctx);
    case codes::store_ans: return decode_as<store_ans>(body, lim, ctx);
    case codes::fetch_req: return decode_as<fetch_req>(body, lim, ctx);
    case codes::fetch_ans: return decode_as<fetch_ans>(body, lim, ctx);
    case codes::find_req: return decode_as<find_req>(body, lim, ctx);
    case codes::find_ans: return decode_as<find_ans>(body, lim, ctx);
    case codes::join_req: return decode_as<join_req>(body, lim, ctx);
    case codes::join_ans: return decode_as<join_ans>(body, lim, ctx);
    case codes::leave_req: return decode_as<leave_req>(body, lim, ctx);
    case codes::leave_ans: return decode_as<leave_ans>(body, lim, ctx);
    case codes::update_req: return decode_as<update_req>(body, lim, ctx);
    case codes::update_ans: return decode_as<update_ans>(body, lim, ctx);
    case codes::route_query_req: return decode_as<route_query_req>(body, lim, ctx);
    case codes::route_query_ans: return decode_as<route_query_ans>(body, lim, ctx);
    case codes::ping_req: return decode_as<ping_req>(body, lim, ctx);
    case codes::ping_ans: return decode_as<ping_ans>(body, lim, ctx);
    case codes::stat_req: return decode_as<stat_req>(body, lim, ctx);
    case codes::stat_ans: return decode_as<stat_ans>(body, lim, ctx);
    case codes::app_attach_req: return decode_as<app_attach_req>(body, lim, ctx);
    case codes::app_attach_ans: return decode_as<app_attach_ans>(body, lim, ctx);
    case codes::config_update_req: return decode_as<config_update_req>(body, lim, ctx);
    case codes::config_update_ans: return decode_as<config_update_ans>(body, lim, ctx);
    case codes::error: return decode_as<error_response>(body, lim, ctx);
    case codes::invalid:
      return unexpected(
          decode_error{codec_errc::invalid_value, "message_contents.message_code", 0});
    default: return message_body{unknown_body{code, to_bytes(body)}};
  }
}

result<bytes> encode_body(const message_body& body) {
  bytes out;
  writer w(out);
  std::visit(
      [&](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, unknown_body>) {
          w.raw(b.body);
        } else {
          detail::encode_to(w, b);
        }
      },
      body);
  if (!w.ok()) return w.error();
  return out;
}

}  // namespace p2psip::protocol
