// The STUN Binding codec of the SIP transport (RFC 5389; keepalives of RFC 5626 4.4.2): golden
// bytes from RFC 5769 and hand-derived ones, and must-fail cases.

#include <doctest/doctest.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "stun.hpp"

namespace stun = p2psip::peer::stun;
using bytes = std::vector<std::uint8_t>;

namespace {

const stun::transaction_id rfc5769_id = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
                                         0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

// RFC 5769 section 2.2: a Binding success response with SOFTWARE, XOR-MAPPED-ADDRESS
// (192.0.2.1:32853), MESSAGE-INTEGRITY and FINGERPRINT.
const bytes rfc5769_ipv4_response = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96};

bytes header(std::uint16_t type, std::uint16_t length) {
  bytes b = {static_cast<std::uint8_t>(type >> 8),
             static_cast<std::uint8_t>(type),
             static_cast<std::uint8_t>(length >> 8),
             static_cast<std::uint8_t>(length),
             0x21,
             0x12,
             0xa4,
             0x42};
  b.insert(b.end(), rfc5769_id.begin(), rfc5769_id.end());
  return b;
}

}  // namespace

TEST_CASE("stun: crc32 check value") {
  const std::string_view s = "123456789";
  CHECK(stun::crc32(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size())) ==
        0xcbf43926U);
}

TEST_CASE("stun: RFC 5769 IPv4 response decodes to 192.0.2.1 port 32853") {
  CHECK(stun::is_stun(rfc5769_ipv4_response));
  CHECK(stun::has_fingerprint(rfc5769_ipv4_response));
  auto m = stun::decode_binding_success(rfc5769_ipv4_response);
  REQUIRE(m);
  CHECK(m->id == rfc5769_id);
  CHECK(m->address == asio::ip::make_address("192.0.2.1"));
  CHECK(m->port == 32853);

  auto broken = rfc5769_ipv4_response;
  broken.back() ^= 1;  // FINGERPRINT no longer matches
  CHECK_FALSE(stun::decode_binding_success(broken));
}

TEST_CASE("stun: binding success for IPv4 is the hand-derived bytes") {
  bytes expected = header(0x0101, 12);
  const bytes attr = {0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43};
  expected.insert(expected.end(), attr.begin(), attr.end());
  CHECK(stun::encode_binding_success(rfc5769_id, asio::ip::make_address("192.0.2.1"), 32853) ==
        expected);
}

TEST_CASE("stun: binding success for IPv6 is the hand-derived bytes (RFC 5769 2.3 address)") {
  bytes expected = header(0x0101, 24);
  const bytes attr = {0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
                      0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9};
  expected.insert(expected.end(), attr.begin(), attr.end());
  const auto address = asio::ip::make_address("2001:db8:1234:5678:11:2233:4455:6677");
  const auto encoded = stun::encode_binding_success(rfc5769_id, address, 32853);
  CHECK(encoded == expected);
  auto back = stun::decode_binding_success(encoded);
  REQUIRE(back);
  CHECK(back->address == address);
  CHECK(back->port == 32853);
}

TEST_CASE("stun: binding request with and without FINGERPRINT") {
  const auto plain = stun::encode_binding_request(rfc5769_id);
  CHECK(plain == header(0x0001, 0));
  auto id = stun::decode_binding_request(plain);
  REQUIRE(id);
  CHECK(*id == rfc5769_id);
  CHECK_FALSE(stun::has_fingerprint(plain));

  const auto fp = stun::encode_binding_request(rfc5769_id, true);
  REQUIRE(fp.size() == 28);
  CHECK(fp[3] == 8);
  CHECK(stun::has_fingerprint(fp));
  CHECK(stun::decode_binding_request(fp));
  // The answer carries a FINGERPRINT too, which checks.
  const auto answer =
      stun::encode_binding_success(*id, asio::ip::make_address("127.0.0.1"), 5060, true);
  CHECK(stun::has_fingerprint(answer));
  CHECK(stun::decode_binding_success(answer));
}

TEST_CASE("stun: must-fail cases") {
  auto ok = stun::encode_binding_request(rfc5769_id);
  CHECK_FALSE(stun::is_stun(bytes(ok.begin(), ok.end() - 1)));  // short header
  auto bad_bits = ok;
  bad_bits[0] |= 0x40;  // first two bits must be zero
  CHECK_FALSE(stun::is_stun(bad_bits));
  auto bad_cookie = ok;
  bad_cookie[7] ^= 1;
  CHECK_FALSE(stun::is_stun(bad_cookie));
  auto bad_length = ok;
  bad_length[3] = 4;  // announces an attribute that is not there
  CHECK_FALSE(stun::is_stun(bad_length));
  // An attribute running past the end.
  auto overrun = header(0x0001, 4);
  const bytes attr = {0x80, 0x22, 0x00, 0x08};
  overrun.insert(overrun.end(), attr.begin(), attr.end());
  CHECK(stun::is_stun(overrun));
  CHECK_FALSE(stun::decode_binding_request(overrun));
  // A wrong FINGERPRINT, and a FINGERPRINT that is not last.
  auto fp = stun::encode_binding_request(rfc5769_id, true);
  fp.back() ^= 0xff;
  CHECK_FALSE(stun::decode_binding_request(fp));
  // A success response is not a request, and a request is not a success response.
  CHECK_FALSE(stun::decode_binding_request(
      stun::encode_binding_success(rfc5769_id, asio::ip::make_address("127.0.0.1"), 1)));
  CHECK_FALSE(stun::decode_binding_success(ok));
  // SIP text never looks like STUN.
  const std::string_view sip = "OPTIONS sip:a@b SIP/2.0\r\n\r\n";
  CHECK_FALSE(
      stun::is_stun(std::span(reinterpret_cast<const std::uint8_t*>(sip.data()), sip.size())));
}
