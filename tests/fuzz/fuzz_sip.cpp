// Fuzz target: SIP bytes as they arrive from the network (RFC 3261), through the datagram parser
// and the stream parser (split in two at an offset derived from the input). Invariants: nothing
// crashes; every error names a status and a reason; a split stream gives the same events as a
// whole one; every message parsed serializes to a canonical form that parses back to the same
// message, and every typed accessor succeeds on it.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/sip/stream_parser.hpp"

namespace sip = p2psip::sip;

namespace {

void check_error(const sip::parse_error& e) {
  if (e.status < 400 || e.status > 599 || e.reason.empty()) std::abort();
}

void check_message(const sip::message& m) {
  if (!sip::validate(m)) std::abort();
  if (m.is_request() && !sip::request_uri_of(m)) std::abort();
  if (!sip::vias(m) || !sip::cseq_of(m) || !sip::call_id(m) || !sip::from(m) || !sip::to(m) ||
      !sip::max_forwards(m) || !sip::contacts(m) || !sip::route_set(m, "Route") ||
      !sip::route_set(m, "Record-Route") || !sip::route_set(m, "Path") ||
      !sip::option_tags(m, "Supported") || !sip::option_tags(m, "Require") ||
      !sip::delta_seconds(m, "Expires") || !sip::delta_seconds(m, "Flow-Timer") ||
      !sip::content_type(m) || !sip::auth_values(m, "Authorization") ||
      !sip::auth_values(m, "WWW-Authenticate"))
    std::abort();
  const std::string once = sip::serialize(m);
  auto back = sip::parse_datagram(once);
  if (!back) std::abort();
  if (sip::serialize(*back) != once) std::abort();
  if (back->method != m.method || back->request_uri != m.request_uri || back->status != m.status ||
      back->reason != m.reason || back->body != m.body)
    std::abort();
}

std::string describe(const sip::stream_event& e) {
  if (const auto* m = std::get_if<sip::message>(&e)) return "m" + sip::serialize(*m);
  if (const auto* k = std::get_if<sip::keepalive>(&e)) return k->ping ? "ping" : "pong";
  const auto& err = std::get<sip::parse_error>(e);
  return "e" + std::to_string(err.status) + err.reason;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // Small limits so that the fuzzer reaches them.
  sip::sip_limits limits;
  limits.max_start_line = 512;
  limits.max_uri = 256;
  limits.max_headers = 32;
  limits.max_header_bytes = 4096;
  limits.max_body = 2048;

  if (auto m = sip::parse_datagram(bytes, limits)) {
    check_message(*m);
  } else {
    check_error(m.error());
  }

  for (auto side : {sip::stream_parser::side::server, sip::stream_parser::side::client}) {
    const std::size_t split = size == 0 ? 0 : (static_cast<std::size_t>(data[0]) * size) / 256;
    sip::stream_parser whole(limits, side);
    sip::stream_parser parts(limits, side);
    std::vector<std::string> a, b;
    for (const auto& e : whole.feed(bytes)) {
      if (const auto* m = std::get_if<sip::message>(&e)) check_message(*m);
      if (const auto* err = std::get_if<sip::parse_error>(&e)) check_error(*err);
      a.push_back(describe(e));
    }
    for (const auto& e : parts.feed(bytes.substr(0, split))) b.push_back(describe(e));
    for (const auto& e : parts.feed(bytes.substr(split))) b.push_back(describe(e));
    if (a != b) std::abort();
    if (whole.buffered() > limits.max_header_bytes + limits.max_body) std::abort();
  }
  return 0;
}
