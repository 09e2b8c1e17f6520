#pragma once
// Internal: one decode/encode pair per body type. body.cpp dispatches on the message code;
// body_storage.cpp and body_overlay.cpp implement them. Unit tests may include this header.

#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/reader.hpp"
#include "p2psip/protocol/writer.hpp"

namespace p2psip::protocol::detail {

#define P2PSIP_BODY_CODEC(T)                                                       \
  void decode_into(reader& r, const limits& lim, const body_context& ctx, T& out); \
  void encode_to(writer& w, const T& in);

// body_overlay.cpp
P2PSIP_BODY_CODEC(probe_req)
P2PSIP_BODY_CODEC(probe_ans)
P2PSIP_BODY_CODEC(attach_req)
P2PSIP_BODY_CODEC(attach_ans)
P2PSIP_BODY_CODEC(app_attach_req)
P2PSIP_BODY_CODEC(app_attach_ans)
P2PSIP_BODY_CODEC(ping_req)
P2PSIP_BODY_CODEC(ping_ans)
P2PSIP_BODY_CODEC(config_update_req)
P2PSIP_BODY_CODEC(config_update_ans)
P2PSIP_BODY_CODEC(join_req)
P2PSIP_BODY_CODEC(join_ans)
P2PSIP_BODY_CODEC(leave_req)
P2PSIP_BODY_CODEC(leave_ans)
P2PSIP_BODY_CODEC(update_req)
P2PSIP_BODY_CODEC(update_ans)
P2PSIP_BODY_CODEC(route_query_req)
P2PSIP_BODY_CODEC(route_query_ans)
P2PSIP_BODY_CODEC(error_response)

// body_storage.cpp
P2PSIP_BODY_CODEC(store_req)
P2PSIP_BODY_CODEC(store_ans)
P2PSIP_BODY_CODEC(fetch_req)
P2PSIP_BODY_CODEC(fetch_ans)
P2PSIP_BODY_CODEC(stat_req)
P2PSIP_BODY_CODEC(stat_ans)
P2PSIP_BODY_CODEC(find_req)
P2PSIP_BODY_CODEC(find_ans)

#undef P2PSIP_BODY_CODEC

}  // namespace p2psip::protocol::detail
