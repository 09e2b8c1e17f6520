// Overlay and link bodies (RFC 6940 sections 6.3.3.1, 6.4.2, 6.5, 10.7-10.9): golden vectors
// written by hand from the RFC structures, round trips, and must-fail vectors.

#include <doctest/doctest.h>

#include <string>
#include <variant>

#include "body_codec.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "test_bytes.hpp"

using namespace p2psip::protocol;
using p2psip::test::hex;

namespace {

node_id nid(std::string_view h) {
  const auto id = node_id::from_hex(h);
  REQUIRE(id.has_value());
  return *id;
}

// Four 16-byte Node-IDs whose bytes are easy to spot in the vectors.
#define ID_A "000102030405060708090a0b0c0d0e0f"
#define ID_B "101112131415161718191a1b1c1d1e1f"
#define ID_C "202122232425262728292a2b2c2d2e2f"
#define ID_D "303132333435363738393a3b3c3d3e3f"

ip_address_port addr(std::string_view text) {
  const auto a = ip_address_port::parse(text);
  REQUIRE(a.has_value());
  return *a;
}

// Encodes `value`, compares with the golden bytes, decodes them back through decode_body.
template <class T>
bytes check_golden(const T& value, std::string_view golden, const limits& lim = {}) {
  const bytes wire = hex(golden);
  const auto enc = encode_body(message_body{value});
  REQUIRE(enc);
  CHECK(to_hex(*enc) == to_hex(wire));
  const auto dec = decode_body(T::code, wire, lim);
  if (!dec) FAIL(dec.error().message());
  CHECK(code_of(*dec) == T::code);
  REQUIRE(std::holds_alternative<T>(*dec));
  CHECK(std::get<T>(*dec) == value);
  return wire;
}

// Encode, decode, compare, re-encode byte-identical.
template <class T>
void check_round_trip(const T& value, const limits& lim = {}) {
  const auto enc = encode_body(message_body{value});
  REQUIRE(enc);
  const auto dec = decode_body(T::code, *enc, lim);
  if (!dec) FAIL(dec.error().message());
  REQUIRE(std::holds_alternative<T>(*dec));
  CHECK(std::get<T>(*dec) == value);
  const auto again = encode_body(*dec);
  REQUIRE(again);
  CHECK(*again == *enc);
}

// Every proper prefix of a golden body fails, and the error points inside the prefix.
void check_truncations(std::uint16_t code, const bytes& wire, const limits& lim = {}) {
  for (std::size_t n = 0; n < wire.size(); ++n) {
    const auto d = decode_body(code, byte_view(wire.data(), n), lim);
    REQUIRE_FALSE_MESSAGE(d, "prefix of " << n << " bytes decoded");
    const auto c = d.error().code;
    CHECK_MESSAGE((c == codec_errc::truncated || c == codec_errc::bad_length), d.error().message());
    CHECK(d.error().offset <= n);
  }
}

// One extra byte after a golden body.
decode_error trailing_error(std::uint16_t code, const bytes& wire, const limits& lim = {}) {
  bytes longer = wire;
  longer.push_back(0);
  const auto d = decode_body(code, longer, lim);
  REQUIRE_FALSE(d);
  return d.error();
}

decode_error must_fail(std::uint16_t code, std::string_view text, const limits& lim = {}) {
  const auto d = decode_body(code, hex(text), lim);
  REQUIRE_FALSE_MESSAGE(d, text);
  return d.error();
}

template <class T>
codec_errc encode_error(const T& value) {
  const auto enc = encode_body(message_body{value});
  REQUIRE_FALSE(enc);
  return static_cast<codec_errc>(enc.error().value());
}

// ---- values matching the golden vectors ----

// 192.0.2.1:6084, TLS-TCP-FH-NO-ICE host candidate: the candidate a no-ICE peer sends.
ice_candidate host_candidate() {
  ice_candidate c;
  c.addr_port = addr("192.0.2.1:6084");
  c.overlay_link = overlay_link_type::tls_tcp_fh_no_ice;
  c.foundation = to_bytes("1");
  c.priority = 0x7e0000ff;
  c.type = candidate_type::host;
  return c;
}
#define HOST_CANDIDATE_HEX                                                    \
  "01 06 c0000201 17c4" /* addr_port: IPv4, length 6, 192.0.2.1, port 6084 */ \
  "04"                  /* overlay_link: TLS-TCP-FH-NO-ICE */                 \
  "01 31"               /* foundation<1>: "1" */                              \
  "7e0000ff"            /* priority */                                        \
  "01"                  /* type: host, so no rel_addr_port */                 \
  "0000"                /* extensions<0> */

ice_candidate srflx_candidate() {
  ice_candidate c;
  c.addr_port = addr("[2001:db8::1]:6084");
  c.overlay_link = overlay_link_type::dtls_udp_sr;
  c.foundation = to_bytes("2");
  c.priority = 0x64ffffff;
  c.type = candidate_type::srflx;
  c.rel_addr_port = addr("192.0.2.1:6084");
  c.extensions.push_back({to_bytes("n"), to_bytes("v")});
  return c;
}
#define SRFLX_CANDIDATE_HEX                                                                  \
  "02 12 20010db8000000000000000000000001 17c4" /* addr_port: IPv6, 18, 2001:db8::1, 6084 */ \
  "01"                                          /* overlay_link: DTLS-UDP-SR */              \
  "01 32"                                       /* foundation<1>: "2" */                     \
  "64ffffff"                                    /* priority */                               \
  "02"                                          /* type: srflx */                            \
  "01 06 c0000201 17c4"                         /* rel_addr_port: 192.0.2.1:6084 */          \
  "0006 0001 6e 0001 76"                        /* extensions<6>: name "n", value "v" */

attach_req golden_attach_req() {
  attach_req a;
  a.ufrag = to_bytes("u1");
  a.password = to_bytes("pw");
  a.role = to_bytes("passive");
  a.candidates = {host_candidate(), srflx_candidate()};
  a.send_update = true;
  return a;
}
const char* const attach_req_hex =
    "02 7531"                                     // ufrag<2>: "u1"
    "02 7077"                                     // password<2>: "pw"
    "07 70617373697665"                           // role<7>: "passive"
    "003e"                                        // candidates<62> = 18 + 44
    HOST_CANDIDATE_HEX SRFLX_CANDIDATE_HEX "01";  // send_update: true

attach_ans golden_attach_ans() {
  attach_ans a;
  a.ufrag = to_bytes("u2");
  a.password = to_bytes("qw");
  a.role = to_bytes("active");
  ice_candidate relay;
  relay.addr_port = addr("198.51.100.7:3478");
  relay.overlay_link = overlay_link_type::dtls_udp_sr;
  relay.foundation = to_bytes("3");
  relay.priority = 0x00ffffff;
  relay.type = candidate_type::relay;
  relay.rel_addr_port = addr("[2001:db8::2]:50000");
  a.candidates = {relay};
  a.send_update = false;
  return a;
}
const char* const attach_ans_hex =
    "02 7532"                                      // ufrag<2>: "u2"
    "02 7177"                                      // password<2>: "qw"
    "06 616374697665"                              // role<6>: "active"
    "0026"                                         // candidates<38>
    "01 06 c6336407 0d96"                          // addr_port: 198.51.100.7:3478
    "01"                                           // overlay_link: DTLS-UDP-SR
    "01 33"                                        // foundation: "3"
    "00ffffff"                                     // priority
    "04"                                           // type: relay
    "02 12 20010db8000000000000000000000002 c350"  // rel_addr_port: [2001:db8::2]:50000
    "0000"                                         // extensions<0>
    "00";                                          // send_update: false

app_attach_req golden_app_attach_req() {
  app_attach_req a;
  a.ufrag = to_bytes("u3");
  a.password = to_bytes("pw");
  a.application = 5060;
  a.role = to_bytes("passive");
  a.candidates = {host_candidate()};
  return a;
}
const char* const app_attach_req_hex =
    "02 7533"            // ufrag: "u3"
    "02 7077"            // password: "pw"
    "13c4"               // application: 5060 (SIP)
    "07 70617373697665"  // role: "passive"
    "0012"               // candidates<18>
    HOST_CANDIDATE_HEX;

app_attach_ans golden_app_attach_ans() {
  app_attach_ans a;
  a.ufrag = to_bytes("u4");
  a.password = to_bytes("px");
  a.application = 5060;
  a.role = to_bytes("active");
  return a;
}
const char* const app_attach_ans_hex =
    "02 7534"          // ufrag: "u4"
    "02 7078"          // password: "px"
    "13c4"             // application: 5060
    "06 616374697665"  // role: "active"
    "0000";            // candidates<0>

probe_ans golden_probe_ans() {
  probe_ans p;
  p.probe_info.push_back({probe_info_type::responsible_set, 12500000, {}});
  p.probe_info.push_back({probe_info_type::num_resources, 42, {}});
  p.probe_info.push_back({probe_info_type::uptime, 3600, {}});
  p.probe_info.push_back({probe_info_type::exp_probe, 0, hex("aabb")});
  return p;
}
const char* const probe_ans_hex =
    "0016"            // probe_info<22>
    "01 04 00bebc20"  // responsible_set, length 4, 12500000 ppb
    "02 04 0000002a"  // num_resources, length 4, 42
    "03 04 00000e10"  // uptime, length 4, 3600 s
    "04 02 aabb";     // exp_probe, length 2, kept raw

config_update_req golden_config_update_config() {
  config_update_req c;
  c.type = config_update_type::config;
  c.config_data = to_bytes("<x/>");
  return c;
}
const char* const config_update_config_hex =
    "01"         // type: config
    "00000007"   // length of the rest: 3-byte prefix + 4
    "000004"     // config_data<4>
    "3c782f3e";  // "<x/>"

config_update_req golden_config_update_kind() {
  config_update_req c;
  c.type = config_update_type::kind;
  c.kinds = {to_bytes("<k/>"), to_bytes("<kk/>")};
  return c;
}
const char* const config_update_kind_hex =
    "02"                // type: kind
    "00000010"          // length of the rest: 3 + 13
    "00000d"            // kinds<13>
    "0004 3c6b2f3e"     // KindDescription<4>: "<k/>"
    "0005 3c6b6b2f3e";  // KindDescription<5>: "<kk/>"

leave_req golden_leave_req() {
  leave_req l;
  l.leaving_peer_id = nid(ID_A);
  l.overlay_specific_data = hex("01 0020" ID_B ID_C);
  return l;
}
const char* const leave_req_hex = ID_A  // leaving_peer_id
    "0023"                              // overlay_specific_data<35>: ChordLeaveData
    "01"                                //   type: from_succ
    "0020"                              //   successors<32>
    ID_B ID_C;

update_req update_peer_ready() {
  update_req u;
  u.uptime = 3600;
  u.type = chord_update_type::peer_ready;
  return u;
}
const char* const update_peer_ready_hex =
    "00000e10"  // uptime 3600
    "01";       // type: peer_ready, nothing follows

update_req update_neighbors() {
  update_req u;
  u.uptime = 60;
  u.type = chord_update_type::neighbors;
  u.predecessors = {nid(ID_A)};
  u.successors = {nid(ID_B), nid(ID_C)};
  return u;
}
const char* const update_neighbors_hex =
    "0000003c"         // uptime 60
    "02"               // type: neighbors
    "0010" ID_A        // predecessors<16>
    "0020" ID_B ID_C;  // successors<32>

update_req update_full() {
  update_req u;
  u.uptime = 86400;
  u.type = chord_update_type::full;
  u.predecessors = {nid(ID_A)};
  u.successors = {nid(ID_B)};
  u.fingers = {nid(ID_C), nid(ID_D)};
  return u;
}
const char* const update_full_hex =
    "00015180"         // uptime 86400
    "03"               // type: full
    "0010" ID_A        // predecessors<16>
    "0010" ID_B        // successors<16>
    "0020" ID_C ID_D;  // fingers<32>, ascending

route_query_req golden_route_query_resource() {
  route_query_req q;
  q.send_update = true;
  q.destination = to_destination(resource_id{to_bytes("FOO")});
  return q;
}
const char* const route_query_resource_hex =
    "01"              // send_update: true
    "02 04 03464f4f"  // destination: resource, length 4, ResourceId<3> "FOO"
    "0000";           // overlay_specific_data<0>

route_query_req golden_route_query_node() {
  route_query_req q;
  q.send_update = false;
  q.destination = to_destination(nid(ID_B));
  q.overlay_specific_data = hex("abcd");
  return q;
}
const char* const route_query_node_hex =
    "00"          // send_update: false
    "01 10" ID_B  // destination: node, length 16
    "0002 abcd";  // overlay_specific_data<2>

error_response golden_error() {
  error_response e;
  e.error_code = static_cast<std::uint16_t>(reload_errc::not_found);
  e.error_info = to_bytes("no such resource");
  return e;
}
// The brief's V7 body.
const char* const error_hex =
    "0003"                                    // error_code: Error_Not_Found
    "0010 6e6f2073756368207265736f75726365";  // error_info<16>: "no such resource"

}  // namespace

// ============================================================================================
// Golden vectors, one per body type, each with its truncations and a trailing byte.
// ============================================================================================

TEST_CASE("ProbeReq golden") {
  probe_req p;
  p.requested_info = {probe_info_type::responsible_set, probe_info_type::num_resources,
                      probe_info_type::uptime};
  const bytes wire = check_golden(p, "03 01 02 03");  // requested_info<3>: 1, 2, 3
  check_truncations(codes::probe_req, wire);
  CHECK(trailing_error(codes::probe_req, wire).code == codec_errc::trailing_bytes);
  check_golden(probe_req{}, "00");  // an empty request list is legal
}

TEST_CASE("ProbeAns golden") {
  const bytes wire = check_golden(golden_probe_ans(), probe_ans_hex);
  check_truncations(codes::probe_ans, wire);
  const auto e = trailing_error(codes::probe_ans, wire);
  CHECK(e.code == codec_errc::trailing_bytes);
  CHECK(e.offset == wire.size());
}

TEST_CASE("AttachReq golden") {
  const bytes wire = check_golden(golden_attach_req(), attach_req_hex);
  CHECK(wire.size() == 14 + 2 + 62 + 1);
  check_truncations(codes::attach_req, wire);
  CHECK(trailing_error(codes::attach_req, wire).code == codec_errc::trailing_bytes);
}

TEST_CASE("AttachAns golden") {
  const bytes wire = check_golden(golden_attach_ans(), attach_ans_hex);
  check_truncations(codes::attach_ans, wire);
  CHECK(trailing_error(codes::attach_ans, wire).code == codec_errc::trailing_bytes);
}

TEST_CASE("AppAttachReq and AppAttachAns golden") {
  const bytes req = check_golden(golden_app_attach_req(), app_attach_req_hex);
  check_truncations(codes::app_attach_req, req);
  CHECK(trailing_error(codes::app_attach_req, req).code == codec_errc::trailing_bytes);
  const bytes ans = check_golden(golden_app_attach_ans(), app_attach_ans_hex);
  check_truncations(codes::app_attach_ans, ans);
  CHECK(trailing_error(codes::app_attach_ans, ans).code == codec_errc::trailing_bytes);
}

TEST_CASE("PingReq and PingAns golden") {
  ping_req p;
  p.padding = hex("000000");
  const bytes req = check_golden(p, "0003 000000");  // padding<3>
  check_truncations(codes::ping_req, req);
  CHECK(trailing_error(codes::ping_req, req).code == codec_errc::trailing_bytes);
  check_golden(ping_req{}, "0000");  // the usual, unpadded ping

  ping_ans a;
  a.response_id = 0x0102030405060708ull;
  a.time = 1700000000000ull;
  const bytes ans = check_golden(a,
                                 "0102030405060708"    // response_id
                                 "0000018bcfe56800");  // time: 1700000000000 ms
  check_truncations(codes::ping_ans, ans);
  CHECK(trailing_error(codes::ping_ans, ans).code == codec_errc::trailing_bytes);
}

TEST_CASE("ConfigUpdateReq golden, both types, and ConfigUpdateAns") {
  const bytes config = check_golden(golden_config_update_config(), config_update_config_hex);
  check_truncations(codes::config_update_req, config);
  // A stray byte makes the uint32 length disagree with the body.
  auto e = trailing_error(codes::config_update_req, config);
  CHECK(e.code == codec_errc::bad_length);
  CHECK(std::string(e.field) == "config_update_req.length");
  CHECK(e.offset == 1);

  const bytes kind = check_golden(golden_config_update_kind(), config_update_kind_hex);
  check_truncations(codes::config_update_req, kind);
  CHECK(trailing_error(codes::config_update_req, kind).code == codec_errc::bad_length);

  const bytes ans = check_golden(config_update_ans{}, "");
  e = trailing_error(codes::config_update_ans, ans);
  CHECK(e.code == codec_errc::trailing_bytes);
  CHECK(std::string(e.field) == "config_update_ans");
  CHECK(e.offset == 0);
}

TEST_CASE("JoinReq and JoinAns golden") {
  join_req j;
  j.joining_peer_id = nid(ID_A);
  const bytes req = check_golden(j, ID_A "0000");  // joining_peer_id, overlay_specific_data<0>
  check_truncations(codes::join_req, req);
  CHECK(trailing_error(codes::join_req, req).code == codec_errc::trailing_bytes);

  join_ans a;
  a.overlay_specific_data = to_bytes("ok");
  const bytes ans = check_golden(a, "0002 6f6b");  // overlay_specific_data<2>: "ok"
  check_truncations(codes::join_ans, ans);
  CHECK(trailing_error(codes::join_ans, ans).code == codec_errc::trailing_bytes);
}

TEST_CASE("LeaveReq golden with ChordLeaveData inside, and LeaveAns") {
  const leave_req l = golden_leave_req();
  const bytes req = check_golden(l, leave_req_hex);
  check_truncations(codes::leave_req, req);
  CHECK(trailing_error(codes::leave_req, req).code == codec_errc::trailing_bytes);

  const auto data = decode_chord_leave_data(l.overlay_specific_data, limits{});
  REQUIRE(data);
  CHECK(data->type == chord_leave_type::from_succ);
  CHECK(data->successors == std::vector<node_id>{nid(ID_B), nid(ID_C)});
  CHECK(data->predecessors.empty());

  const bytes ans = check_golden(leave_ans{}, "");
  const auto e = trailing_error(codes::leave_ans, ans);
  CHECK(e.code == codec_errc::trailing_bytes);
  CHECK(std::string(e.field) == "leave_ans");
}

TEST_CASE("ChordLeaveData golden, both types") {
  chord_leave_data pred;
  pred.type = chord_leave_type::from_pred;
  pred.predecessors = {nid(ID_D)};
  const bytes wire = hex("02 0010" ID_D);  // from_pred, predecessors<16>
  const auto enc = encode_chord_leave_data(pred);
  REQUIRE(enc);
  CHECK(*enc == wire);
  const auto dec = decode_chord_leave_data(wire, limits{});
  REQUIRE(dec);
  CHECK(*dec == pred);
  for (std::size_t n = 0; n < wire.size(); ++n) {
    CHECK_FALSE(decode_chord_leave_data(byte_view(wire.data(), n), limits{}));
  }
  bytes longer = wire;
  longer.push_back(0);
  const auto t = decode_chord_leave_data(longer, limits{});
  REQUIRE_FALSE(t);
  CHECK(t.error().code == codec_errc::trailing_bytes);

  chord_leave_data succ;
  succ.type = chord_leave_type::from_succ;
  succ.successors = {nid(ID_B), nid(ID_C)};
  const auto enc2 = encode_chord_leave_data(succ);
  REQUIRE(enc2);
  CHECK(*enc2 == hex("01 0020" ID_B ID_C));
  const auto dec2 = decode_chord_leave_data(*enc2, limits{});
  REQUIRE(dec2);
  CHECK(*dec2 == succ);
}

TEST_CASE("UpdateReq (ChordUpdate) golden for each type, and UpdateAns") {
  for (const auto& [value, text] : {std::pair{update_peer_ready(), update_peer_ready_hex},
                                    std::pair{update_neighbors(), update_neighbors_hex},
                                    std::pair{update_full(), update_full_hex}}) {
    CAPTURE(text);
    const bytes wire = check_golden(value, text);
    check_truncations(codes::update_req, wire);
    CHECK(trailing_error(codes::update_req, wire).code == codec_errc::trailing_bytes);
  }
  const bytes ans = check_golden(update_ans{}, "");
  const auto e = trailing_error(codes::update_ans, ans);
  CHECK(e.code == codec_errc::trailing_bytes);
  CHECK(std::string(e.field) == "update_ans");
}

TEST_CASE("RouteQueryReq and ChordRouteQueryAns golden") {
  for (const auto& [value, text] :
       {std::pair{golden_route_query_resource(), route_query_resource_hex},
        std::pair{golden_route_query_node(), route_query_node_hex}}) {
    CAPTURE(text);
    const bytes wire = check_golden(value, text);
    check_truncations(codes::route_query_req, wire);
    CHECK(trailing_error(codes::route_query_req, wire).code == codec_errc::trailing_bytes);
  }
  route_query_ans a;
  a.next_peer = nid(ID_B);
  const bytes ans = check_golden(a, ID_B);  // next_peer
  check_truncations(codes::route_query_ans, ans);
  CHECK(trailing_error(codes::route_query_ans, ans).code == codec_errc::trailing_bytes);
}

TEST_CASE("ErrorResponse golden (the brief's V7 body)") {
  const bytes wire = check_golden(golden_error(), error_hex);
  check_truncations(codes::error, wire);
  CHECK(trailing_error(codes::error, wire).code == codec_errc::trailing_bytes);
}

TEST_CASE("Error_Unknown_Kind error_info golden") {
  const bytes wire = hex("08 00000001 00000104");  // unknown_kinds<8>: 1, 0x104
  const std::vector<std::uint32_t> list{kinds::sip_registration, kinds::redir};
  const auto enc = encode_unknown_kinds(list);
  REQUIRE(enc);
  CHECK(*enc == wire);
  const auto dec = decode_unknown_kinds(wire);
  REQUIRE(dec);
  CHECK(*dec == list);
  for (std::size_t n = 0; n < wire.size(); ++n) {
    CHECK_FALSE(decode_unknown_kinds(byte_view(wire.data(), n)));
  }
  const auto empty = decode_unknown_kinds(hex("00"));
  REQUIRE(empty);
  CHECK(empty->empty());

  SUBCASE("a length that is not a whole number of KindIds") {
    const auto d = decode_unknown_kinds(hex("05 00000001 00"));
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::bad_length);
    CHECK(d.error().offset == 0);
  }
  SUBCASE("trailing bytes") {
    const auto d = decode_unknown_kinds(hex("04 00000001 00"));
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::trailing_bytes);
    CHECK(d.error().offset == 5);
  }
  SUBCASE("more than 63 kinds do not fit") {
    const auto e = encode_unknown_kinds(std::vector<std::uint32_t>(64, 1));
    REQUIRE_FALSE(e);
    CHECK(e.error() == codec_errc::value_too_long);
    CHECK(encode_unknown_kinds(std::vector<std::uint32_t>(63, 1)));
  }
}

// ============================================================================================
// Round trips
// ============================================================================================

TEST_CASE("every overlay body round-trips") {
  probe_req pr;
  pr.requested_info = {1, 3, 200};  // unknown requested types are legal
  check_round_trip(pr);
  check_round_trip(golden_probe_ans());
  probe_ans long_info;
  long_info.probe_info.push_back({99, 0, bytes(255, 0x5a)});  // an unknown type, maximal value
  long_info.probe_info.push_back({99, 0, {}});                // and an empty one
  check_round_trip(long_info);
  check_round_trip(golden_attach_req());
  check_round_trip(golden_attach_ans());
  attach_req bare;  // no candidates, empty strings
  check_round_trip(bare);
  check_round_trip(golden_app_attach_req());
  check_round_trip(golden_app_attach_ans());
  ping_req big;
  big.padding = bytes(0xFFFF, 0);  // the largest padding
  check_round_trip(big);
  check_round_trip(ping_ans{0xFFFFFFFFFFFFFFFFull, 0});
  check_round_trip(golden_config_update_config());
  check_round_trip(golden_config_update_kind());
  config_update_req no_kinds;
  no_kinds.type = config_update_type::kind;
  check_round_trip(no_kinds);
  check_round_trip(config_update_ans{});
  check_round_trip(join_req{nid(ID_D), hex("0102")});
  check_round_trip(join_ans{});
  check_round_trip(golden_leave_req());
  check_round_trip(leave_ans{});
  check_round_trip(update_peer_ready());
  check_round_trip(update_neighbors());
  check_round_trip(update_full());
  update_req empty_full;
  empty_full.type = chord_update_type::full;  // a lone peer has no neighbors or fingers
  check_round_trip(empty_full);
  check_round_trip(update_ans{});
  check_round_trip(golden_route_query_resource());
  check_round_trip(golden_route_query_node());
  route_query_req opaque_dest;
  opaque_dest.destination = destination{opaque_id{hex("0a0b")}};
  check_round_trip(opaque_dest);
  route_query_req compressed;
  compressed.destination = destination{compressed_id{0x8123}};
  check_round_trip(compressed);
  check_round_trip(route_query_ans{nid(ID_C)});
  check_round_trip(golden_error());
  check_round_trip(error_response{static_cast<std::uint16_t>(reload_errc::ttl_hops_exceeded), {}});
  check_round_trip(error_response{0x7777, to_bytes("unassigned codes are kept")});
}

TEST_CASE("Node-IDs follow the overlay's NodeIdLength") {
  limits lim20;
  lim20.node_id_length = 20;
  const node_id a = *node_id::from_hex("0102030405060708090a0b0c0d0e0f1011121314");
  const node_id b = *node_id::from_hex("1102030405060708090a0b0c0d0e0f1011121314");
  update_req u;
  u.type = chord_update_type::full;
  u.uptime = 1;
  u.predecessors = {a};
  u.successors = {b, a};
  u.fingers = {b};
  check_round_trip(u, lim20);
  check_round_trip(join_req{a, {}}, lim20);
  check_round_trip(leave_req{b, {}}, lim20);
  check_round_trip(route_query_ans{a}, lim20);
  chord_leave_data d;
  d.type = chord_leave_type::from_pred;
  d.predecessors = {a, b};
  const auto enc = encode_chord_leave_data(d);
  REQUIRE(enc);
  const auto dec = decode_chord_leave_data(*enc, lim20);
  REQUIRE(dec);
  CHECK(*dec == d);

  SUBCASE("a 16-byte list under a 20-byte overlay") {
    const auto e = must_fail(codes::update_req, update_neighbors_hex, lim20);
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "chord_update.predecessors");
    CHECK(e.offset == 5);
  }
  SUBCASE("a 16-byte JoinReq under a 20-byte overlay") {
    const auto e = must_fail(codes::join_req, ID_A "0000", lim20);
    CHECK(e.code == codec_errc::truncated);
    CHECK(std::string(e.field) == "join_req.joining_peer_id");
  }
  SUBCASE("a 20-byte RouteQueryAns under the default 16") {
    const auto e = must_fail(codes::route_query_ans, "0102030405060708090a0b0c0d0e0f1011121314");
    CHECK(e.code == codec_errc::trailing_bytes);
    CHECK(e.offset == 16);
  }
  SUBCASE("a 20-byte ChordLeaveData under the default 16") {
    const auto e = decode_chord_leave_data(*enc, limits{});
    REQUIRE_FALSE(e);
    CHECK(e.error().code == codec_errc::bad_length);
  }
}

// ============================================================================================
// Must-fail vectors
// ============================================================================================

TEST_CASE("bad length fields") {
  SUBCASE("probe_info list longer than the body") {
    const auto e =
        must_fail(codes::probe_ans, "0017 01 04 00bebc20 02 04 0000002a 03 04 00000e10 04 02 aabb");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "probe_ans.probe_info");
    CHECK(e.offset == 0);
  }
  SUBCASE("a uint32 probe value with length 5") {
    const auto e = must_fail(codes::probe_ans, "0007 03 05 00000e10 00");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "probe_information.length");
    CHECK(e.offset == 3);
  }
  SUBCASE("a uint32 probe value with length 3") {
    const auto e = must_fail(codes::probe_ans, "0005 01 03 000001");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(e.offset == 3);
  }
  SUBCASE("a probe value running past its list") {
    const auto e = must_fail(codes::probe_ans, "0004 04 05 aabb 00000000");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "probe_information.length");
  }
  SUBCASE("attach candidates one byte too long") {
    bytes b = hex(attach_req_hex);
    b[15] = 0x40;  // candidates<62> -> <64>: more than the 63 bytes that follow
    const auto d = decode_body(codes::attach_req, b, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::bad_length);
    CHECK(std::string(d.error().field) == "attach_req.candidates");
    CHECK(d.error().offset == 14);
  }
  SUBCASE("attach candidates one byte short") {
    bytes b = hex(attach_req_hex);
    b[15] = 0x3d;  // the second candidate's extensions now run past the list
    const auto d = decode_body(codes::attach_req, b, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::bad_length);
    CHECK(std::string(d.error().field) == "ice_candidate.extensions");
    CHECK(d.error().offset == 16 + 18 + 36);
  }
  SUBCASE("a foundation longer than the candidate list") {
    const auto e = must_fail(codes::app_attach_ans, "00 00 13c4 00 000a 01 06 c0000201 17c4 04 ff");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "ice_candidate.foundation");
    CHECK(e.offset == 16);
  }
  SUBCASE("ufrag longer than the body") {
    const auto e = must_fail(codes::attach_req, "05 7531");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "attach_req.ufrag");
    CHECK(e.offset == 0);
  }
  SUBCASE("the answer's fields are named as the answer's") {
    const auto e = must_fail(codes::attach_ans, "00 00 00 0000 07");
    CHECK(e.code == codec_errc::invalid_value);
    CHECK(std::string(e.field) == "attach_ans.send_update");
  }
  SUBCASE("ping padding longer than the body") {
    const auto e = must_fail(codes::ping_req, "0004 000000");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "ping_req.padding");
  }
  SUBCASE("config_update length larger than the body") {
    const auto e = must_fail(codes::config_update_req, "01 00000008 000004 3c782f3e");
    CHECK(e.code == codec_errc::truncated);
    CHECK(std::string(e.field) == "config_update_req.length");
    CHECK(e.offset == 1);
  }
  SUBCASE("config_update length smaller than the body") {
    const auto e = must_fail(codes::config_update_req, "01 00000006 000004 3c782f3e");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(e.offset == 1);
  }
  SUBCASE("config_data prefix disagreeing with the uint32 length") {
    const auto e = must_fail(codes::config_update_req, "01 00000007 000005 3c782f3e");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "config_update_req.config_data");
    CHECK(e.offset == 5);
  }
  SUBCASE("config_data shorter than the uint32 length says") {
    const auto e = must_fail(codes::config_update_req, "01 00000007 000003 3c782f3e");
    CHECK(e.code == codec_errc::trailing_bytes);
    CHECK(e.offset == 11);
  }
  SUBCASE("a KindDescription running past the kinds list") {
    const auto e =
        must_fail(codes::config_update_req, "02 00000010 00000d 0004 3c6b2f3e 0006 3c6b6b2f3e");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "kind_description");
    CHECK(e.offset == 14);
  }
  SUBCASE("a Node-ID list that is not a whole number of ids") {
    const auto e = must_fail(codes::update_req, "0000003c 02 0011" ID_A "00 0000");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "chord_update.predecessors");
    CHECK(e.offset == 5);
  }
  SUBCASE("a fingers list longer than the body") {
    const auto e = must_fail(codes::update_req, "00015180 03 0000 0000 0020" ID_C);
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "chord_update.fingers");
    CHECK(e.offset == 9);
  }
  SUBCASE("overlay_specific_data longer than the body") {
    const auto e = must_fail(codes::join_req, ID_A "0003 0102");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "join_req.overlay_specific_data");
    CHECK(e.offset == 16);
  }
  SUBCASE("error_info longer than the body") {
    const auto e = must_fail(codes::error, "0003 0011 6e6f2073756368207265736f75726365");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "error_response.error_info");
    CHECK(e.offset == 2);
  }
  SUBCASE("a ChordLeaveData list that is not a whole number of ids") {
    const auto d = decode_chord_leave_data(hex("01 000f" ID_B), limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::bad_length);
    CHECK(std::string(d.error().field) == "chord_leave_data.successors");
    CHECK(d.error().offset == 1);
  }
}

TEST_CASE("bad booleans") {
  SUBCASE("AttachReq.send_update = 2") {
    bytes b = hex(attach_req_hex);
    b.back() = 2;
    const auto d = decode_body(codes::attach_req, b, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::invalid_value);
    CHECK(std::string(d.error().field) == "attach_req.send_update");
    CHECK(d.error().offset == b.size() - 1);
  }
  SUBCASE("RouteQueryReq.send_update = 0xff") {
    const auto e = must_fail(codes::route_query_req, "ff 02 04 03464f4f 0000");
    CHECK(e.code == codec_errc::invalid_value);
    CHECK(std::string(e.field) == "route_query_req.send_update");
    CHECK(e.offset == 0);
  }
}

TEST_CASE("IceCandidate rel_addr_port must match the candidate type") {
  SUBCASE("a host candidate carrying a rel_addr_port") {
    // The decoder reads the rel_addr's first two bytes (01 06) as the extensions length.
    const auto e = must_fail(codes::app_attach_ans,
                             "00 00 13c4 00"
                             "001a"  // candidates<26>
                             "01 06 c0000201 17c4 04 01 31 7e0000ff"
                             "01"                   // host
                             "01 06 c0000201 17c4"  // a rel_addr_port it must not have
                             "0000");
    CHECK(e.code == codec_errc::bad_length);
    CHECK(std::string(e.field) == "ice_candidate.extensions");
    CHECK(e.offset == 7 + 16);
  }
  SUBCASE("a srflx candidate without one") {
    // The decoder reads the extensions length (00 00) as an address of type 0.
    const auto e = must_fail(codes::app_attach_ans,
                             "00 00 13c4 00"
                             "0012"  // candidates<18>
                             "01 06 c0000201 17c4 04 01 31 7e0000ff"
                             "02"  // srflx
                             "0000");
    CHECK(e.code == codec_errc::invalid_value);
    CHECK(std::string(e.field) == "ip_address_port.type");
    CHECK(e.offset == 7 + 16);
  }
  SUBCASE("a relay candidate without one runs off the end") {
    const auto e = must_fail(codes::app_attach_ans,
                             "00 00 13c4 00 0010 01 06 c0000201 17c4 04 01 31 7e0000ff 04");
    CHECK(e.code == codec_errc::truncated);
    CHECK(std::string(e.field) == "ip_address_port.type");
  }
  SUBCASE("the encoder refuses both mistakes") {
    attach_req a = golden_attach_req();
    a.candidates[0].rel_addr_port = addr("192.0.2.9:1");
    CHECK(encode_error(a) == codec_errc::invalid_value);
    a = golden_attach_req();
    a.candidates[1].rel_addr_port.reset();
    CHECK(encode_error(a) == codec_errc::invalid_value);
  }
}

TEST_CASE("IceCandidate types and link types") {
  // "00 00 13c4 00 0012" + host candidate, with the type byte at offset 7 + 15.
  const bytes good = hex("00 00 13c4 00 0012" HOST_CANDIDATE_HEX);
  REQUIRE(decode_body(codes::app_attach_ans, good, limits{}));
  const std::size_t type_at = 7 + 15;
  const std::size_t link_at = 7 + 8;
  SUBCASE("CandType 3 is RESERVED") {
    bytes b = good;
    b[type_at] = 3;
    const auto d = decode_body(codes::app_attach_ans, b, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::unknown_type);
    CHECK(std::string(d.error().field) == "ice_candidate.type");
    CHECK(d.error().offset == type_at);
  }
  SUBCASE("CandType 5 is unknown") {
    bytes b = good;
    b[type_at] = 5;
    const auto d = decode_body(codes::app_attach_ans, b, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::unknown_type);
  }
  SUBCASE("CandType 0 is invalid") {
    bytes b = good;
    b[type_at] = 0;
    const auto d = decode_body(codes::app_attach_ans, b, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::invalid_value);
  }
  SUBCASE("OverlayLinkType 0 is invalid") {
    bytes b = good;
    b[link_at] = 0;
    const auto d = decode_body(codes::app_attach_ans, b, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::invalid_value);
    CHECK(std::string(d.error().field) == "ice_candidate.overlay_link");
    CHECK(d.error().offset == link_at);
  }
  SUBCASE("an unregistered OverlayLinkType is kept") {
    bytes b = good;
    b[link_at] = 0x77;
    const auto d = decode_body(codes::app_attach_ans, b, limits{});
    REQUIRE(d);
    CHECK(std::get<app_attach_ans>(*d).candidates.at(0).overlay_link == 0x77);
  }
  SUBCASE("the encoder refuses reserved and invalid types") {
    app_attach_ans a = golden_app_attach_ans();
    a.candidates = {host_candidate()};
    a.candidates[0].type = candidate_type::prflx;
    CHECK(encode_error(a) == codec_errc::invalid_value);
    a.candidates[0].type = candidate_type::host;
    a.candidates[0].overlay_link = 0;
    CHECK(encode_error(a) == codec_errc::invalid_value);
  }
}

TEST_CASE("bad addresses inside candidates") {
  // The first candidate of the golden AttachReq starts at offset 16.
  SUBCASE("address type 0") {
    bytes b = hex(attach_req_hex);
    b[16] = 0;
    const auto d = decode_body(codes::attach_req, b, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::invalid_value);
    CHECK(std::string(d.error().field) == "ip_address_port.type");
    CHECK(d.error().offset == 16);
  }
  SUBCASE("an unknown address type") {
    bytes b = hex(attach_req_hex);
    b[16] = 9;
    const auto d = decode_body(codes::attach_req, b, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::unknown_type);
    CHECK(d.error().offset == 16);
  }
  SUBCASE("IPv4 with length 18") {
    bytes b = hex(attach_req_hex);
    b[17] = 18;
    const auto d = decode_body(codes::attach_req, b, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::bad_length);
    CHECK(std::string(d.error().field) == "ip_address_port.length");
    CHECK(d.error().offset == 17);
  }
  SUBCASE("IPv6 with length 6 (the srflx candidate at 16 + 18)") {
    bytes b = hex(attach_req_hex);
    b[35] = 6;
    const auto d = decode_body(codes::attach_req, b, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::bad_length);
    CHECK(d.error().offset == 35);
  }
  SUBCASE("a bad rel_addr_port (at 16 + 18 + 28)") {
    bytes b = hex(attach_req_hex);
    b[62] = 2;  // IPv6 with the IPv4 length
    const auto d = decode_body(codes::attach_req, b, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::bad_length);
    CHECK(d.error().offset == 63);
  }
}

TEST_CASE("unknown and invalid select tags") {
  SUBCASE("ChordUpdate type 4") {
    const auto e = must_fail(codes::update_req, "00000e10 04");
    CHECK(e.code == codec_errc::unknown_type);
    CHECK(std::string(e.field) == "chord_update.type");
    CHECK(e.offset == 4);
  }
  SUBCASE("ChordUpdate type 0") {
    const auto e = must_fail(codes::update_req, "00000e10 00");
    CHECK(e.code == codec_errc::invalid_value);
    CHECK(e.offset == 4);
  }
  SUBCASE("peer_ready carries nothing") {
    const auto e = must_fail(codes::update_req, "00000e10 01 0000");
    CHECK(e.code == codec_errc::trailing_bytes);
    CHECK(e.offset == 5);
  }
  SUBCASE("neighbors carries no fingers") {
    const auto e = must_fail(codes::update_req, "00000e10 02 0000 0000 0000");
    CHECK(e.code == codec_errc::trailing_bytes);
    CHECK(e.offset == 9);
  }
  SUBCASE("ChordLeaveType 3 and 0") {
    auto d = decode_chord_leave_data(hex("03 0000"), limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::unknown_type);
    CHECK(std::string(d.error().field) == "chord_leave_data.type");
    d = decode_chord_leave_data(hex("00 0000"), limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::invalid_value);
    d = decode_chord_leave_data({}, limits{});
    REQUIRE_FALSE(d);
    CHECK(d.error().code == codec_errc::truncated);
  }
  SUBCASE("ConfigUpdateType 3 and 0") {
    auto e = must_fail(codes::config_update_req, "03 00000003 000000");
    CHECK(e.code == codec_errc::unknown_type);
    CHECK(std::string(e.field) == "config_update_req.type");
    CHECK(e.offset == 0);
    e = must_fail(codes::config_update_req, "00 00000003 000000");
    CHECK(e.code == codec_errc::invalid_value);
  }
  SUBCASE("ProbeInformationType 0 in a request and in an answer") {
    auto e = must_fail(codes::probe_req, "02 01 00");
    CHECK(e.code == codec_errc::invalid_value);
    CHECK(std::string(e.field) == "probe_req.requested_info");
    CHECK(e.offset == 2);
    e = must_fail(codes::probe_ans, "0006 00 04 00000001");
    CHECK(e.code == codec_errc::invalid_value);
    CHECK(std::string(e.field) == "probe_information.type");
    CHECK(e.offset == 2);
  }
  SUBCASE("Error-Code 0") {
    const auto e = must_fail(codes::error, "0000 0000");
    CHECK(e.code == codec_errc::invalid_value);
    CHECK(std::string(e.field) == "error_response.error_code");
  }
  SUBCASE("a bad destination in RouteQueryReq") {
    const auto e =
        must_fail(codes::route_query_req, "00 01 0f 000102030405060708090a0b0c0d0e 0000");
    CHECK(e.code == codec_errc::wrong_id_length);
    CHECK(std::string(e.field) == "destination.node_id");
  }
}

TEST_CASE("encoders refuse what the decoders refuse") {
  SUBCASE("padding beyond 2^16-1") {
    ping_req p;
    p.padding = bytes(0x10000, 0);
    CHECK(encode_error(p) == codec_errc::value_too_long);
  }
  SUBCASE("ufrag beyond 255 bytes") {
    attach_req a;
    a.ufrag = bytes(256, 'u');
    CHECK(encode_error(a) == codec_errc::value_too_long);
  }
  SUBCASE("candidates beyond 2^16-1 bytes") {
    app_attach_req a;
    a.candidates.assign(65536 / 18 + 1, host_candidate());
    CHECK(encode_error(a) == codec_errc::value_too_long);
  }
  SUBCASE("an unknown probe value beyond 255 bytes") {
    probe_ans p;
    p.probe_info.push_back({9, 0, bytes(256, 1)});
    CHECK(encode_error(p) == codec_errc::value_too_long);
  }
  SUBCASE("ChordUpdate lists the type does not carry") {
    update_req u = update_neighbors();
    u.type = chord_update_type::peer_ready;
    CHECK(encode_error(u) == codec_errc::invalid_value);
    u = update_full();
    u.type = chord_update_type::neighbors;
    CHECK(encode_error(u) == codec_errc::invalid_value);
    u = update_peer_ready();
    u.type = static_cast<chord_update_type>(0);
    CHECK(encode_error(u) == codec_errc::invalid_value);
  }
  SUBCASE("ConfigUpdate data of the other type") {
    config_update_req c = golden_config_update_config();
    c.kinds.push_back(to_bytes("<k/>"));
    CHECK(encode_error(c) == codec_errc::invalid_value);
    c = golden_config_update_kind();
    c.config_data = to_bytes("x");
    CHECK(encode_error(c) == codec_errc::invalid_value);
    c.type = static_cast<config_update_type>(7);
    CHECK(encode_error(c) == codec_errc::invalid_value);
  }
  SUBCASE("ChordLeaveData lists the type does not carry") {
    chord_leave_data d;
    d.type = chord_leave_type::from_succ;
    d.predecessors = {nid(ID_A)};
    const auto e = encode_chord_leave_data(d);
    REQUIRE_FALSE(e);
    CHECK(e.error() == codec_errc::invalid_value);
  }
  SUBCASE("Error-Code 0 and ProbeInformationType 0") {
    CHECK(encode_error(error_response{}) == codec_errc::invalid_value);
    probe_req p;
    p.requested_info = {0};
    CHECK(encode_error(p) == codec_errc::invalid_value);
  }
}

TEST_CASE("the detail codec reads a body embedded in a larger buffer") {
  // decode_into leaves the end check to its caller, so it can be used on a sub-reader.
  const bytes wire = hex("0102030405060708 0000018bcfe56800 ffff");
  reader r(wire);
  ping_ans out;
  p2psip::protocol::detail::decode_into(r, limits{}, body_context{}, out);
  REQUIRE(r.ok());
  CHECK(out.response_id == 0x0102030405060708ull);
  CHECK(out.time == 1700000000000ull);
  CHECK(r.remaining() == 2);
}

TEST_CASE("every one-byte mutation of a golden body fails cleanly or re-encodes identically") {
  // Hostile-input property: no crash (run under ASan/UBSan), and whatever decodes is canonical, so
  // that the bytes a peer signed are the bytes we would send.
  const std::pair<std::uint16_t, std::string> goldens[] = {
      {codes::probe_req, "03 01 02 03"},
      {codes::probe_ans, probe_ans_hex},
      {codes::attach_req, attach_req_hex},
      {codes::attach_ans, attach_ans_hex},
      {codes::app_attach_req, app_attach_req_hex},
      {codes::app_attach_ans, app_attach_ans_hex},
      {codes::ping_req, "0003 000000"},
      {codes::ping_ans, "0102030405060708 0000018bcfe56800"},
      {codes::config_update_req, config_update_config_hex},
      {codes::config_update_req, config_update_kind_hex},
      {codes::join_req, ID_A "0000"},
      {codes::join_ans, "0002 6f6b"},
      {codes::leave_req, leave_req_hex},
      {codes::update_req, update_peer_ready_hex},
      {codes::update_req, update_neighbors_hex},
      {codes::update_req, update_full_hex},
      {codes::route_query_req, route_query_resource_hex},
      {codes::route_query_req, route_query_node_hex},
      {codes::route_query_ans, ID_B},
      {codes::error, error_hex},
  };
  std::size_t decoded = 0;
  std::size_t rejected = 0;
  for (const auto& [code, text] : goldens) {
    const bytes wire = hex(text);
    for (std::size_t i = 0; i < wire.size(); ++i) {
      for (const int v : {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x7f, 0x80, 0xfe, 0xff}) {
        bytes b = wire;
        b[i] = static_cast<std::uint8_t>(v);
        const auto d = decode_body(code, b, limits{});
        if (!d) {
          ++rejected;
          CHECK(d.error().offset <= b.size());
          continue;
        }
        ++decoded;
        const auto again = encode_body(*d);
        REQUIRE(again);
        CHECK_MESSAGE(*again == b, to_hex(b));
      }
    }
  }
  CHECK(decoded > 0);
  CHECK(rejected > 0);
}
