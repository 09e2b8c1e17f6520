// IpAddressPort (RFC 6940 section 6.3.1.1): wire vectors, must-fail cases and the text forms.

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "p2psip/protocol/address.hpp"
#include "test_bytes.hpp"

using namespace p2psip::protocol;
using p2psip::test::hex;

namespace {

ip_address_port v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d,
                   std::uint16_t port) {
  return ip_address_port{ipv4_address_port{{a, b, c, d}, port}};
}

ip_address_port v6(std::string_view address_hex, std::uint16_t port) {
  const bytes raw = hex(address_hex);
  REQUIRE(raw.size() == 16);
  ipv6_address_port out;
  for (std::size_t i = 0; i < 16; ++i) out.address[i] = raw[i];
  out.port = port;
  return ip_address_port{out};
}

bytes encode(const ip_address_port& a) {
  bytes out;
  writer w(out);
  encode_ip_address_port(w, a);
  REQUIRE(w.ok());
  return out;
}

struct decoded {
  ip_address_port value;
  decode_error error;
  bool ok = false;
};

decoded decode(byte_view in) {
  reader r(in);
  decoded out;
  out.value = decode_ip_address_port(r);
  r.expect_done("test");
  out.ok = r.ok();
  out.error = r.error();
  return out;
}

}  // namespace

TEST_CASE("the RFC's IpAddressPort example is a golden vector") {
  // RFC 6940 section 6.3.1.1: 01 (IPv4) 06 (length) c0 00 02 01 (192.0.2.1) 17 c4 (6084).
  const bytes wire = hex("01 06 c0000201 17c4");
  const auto a = v4(192, 0, 2, 1, 6084);
  CHECK(encode(a) == wire);
  const auto d = decode(wire);
  REQUIRE(d.ok);
  CHECK(d.value == a);
  CHECK(d.value.port() == 6084);
  CHECK(d.value.to_string() == "192.0.2.1:6084");
}

TEST_CASE("an IPv6 IpAddressPort vector") {
  // 02 (IPv6) 12 (length 18) 2001:db8::1 (16 bytes) 17 c4 (6084).
  const bytes wire = hex("02 12 20010db8000000000000000000000001 17c4");
  const auto a = v6("20010db8000000000000000000000001", 6084);
  CHECK(encode(a) == wire);
  const auto d = decode(wire);
  REQUIRE(d.ok);
  CHECK(d.value == a);
  CHECK(d.value.to_string() == "[2001:db8::1]:6084");
}

TEST_CASE("IpAddressPort must-fail cases") {
  SUBCASE("truncated at every offset") {
    for (const char* text :
         {"01 06 c0000201 17c4", "02 12 20010db8000000000000000000000001 17c4"}) {
      const bytes wire = hex(text);
      for (std::size_t n = 0; n < wire.size(); ++n) {
        const auto d = decode(byte_view(wire.data(), n));
        REQUIRE_FALSE(d.ok);
        CHECK(d.error.code == codec_errc::truncated);
      }
    }
  }
  SUBCASE("address type 0 is invalid") {
    const auto d = decode(hex("00 06 c0000201 17c4"));
    REQUIRE_FALSE(d.ok);
    CHECK(d.error.code == codec_errc::invalid_value);
    CHECK(std::string(d.error.field) == "ip_address_port.type");
    CHECK(d.error.offset == 0);
  }
  SUBCASE("an unknown address type") {
    const auto d = decode(hex("03 06 c0000201 17c4"));
    REQUIRE_FALSE(d.ok);
    CHECK(d.error.code == codec_errc::unknown_type);
    CHECK(d.error.offset == 0);
  }
  SUBCASE("IPv4 with the IPv6 length") {
    const auto d = decode(hex("01 12 c0000201 17c4"));
    REQUIRE_FALSE(d.ok);
    CHECK(d.error.code == codec_errc::bad_length);
    CHECK(std::string(d.error.field) == "ip_address_port.length");
    CHECK(d.error.offset == 1);
  }
  SUBCASE("IPv6 with the IPv4 length") {
    const auto d = decode(hex("02 06 20010db8000000000000000000000001 17c4"));
    REQUIRE_FALSE(d.ok);
    CHECK(d.error.code == codec_errc::bad_length);
    CHECK(d.error.offset == 1);
  }
  SUBCASE("length 7 for IPv4") {
    const auto d = decode(hex("01 07 c0000201 17c4 00"));
    REQUIRE_FALSE(d.ok);
    CHECK(d.error.code == codec_errc::bad_length);
  }
}

TEST_CASE("to_string writes RFC 5952 text") {
  CHECK(v4(0, 0, 0, 0, 0).to_string() == "0.0.0.0:0");
  CHECK(v4(255, 255, 255, 255, 65535).to_string() == "255.255.255.255:65535");
  CHECK(v4(10, 1, 20, 100, 5060).to_string() == "10.1.20.100:5060");
  // Lowercase, no leading zeros, "::" for the longest zero run.
  CHECK(v6("20010DB8000000000000000000000001", 6084).to_string() == "[2001:db8::1]:6084");
  CHECK(v6("00000000000000000000000000000000", 1).to_string() == "[::]:1");
  CHECK(v6("00000000000000000000000000000001", 1).to_string() == "[::1]:1");
  CHECK(v6("00010000000000000000000000000000", 1).to_string() == "[1::]:1");
  // Equal runs: the first is compressed (RFC 5952 section 4.2.3).
  CHECK(v6("20010db8000000000001000000000001", 1).to_string() == "[2001:db8::1:0:0:1]:1");
  // The longer run wins even when it comes second.
  CHECK(v6("20010000000000010000000000000001", 1).to_string() == "[2001:0:0:1::1]:1");
  // A single zero group is never "::" (section 4.2.2).
  CHECK(v6("20010db8000000010001000100010001", 1).to_string() == "[2001:db8:0:1:1:1:1:1]:1");
  CHECK(v6("fe800001000200030004000500060007", 1).to_string() == "[fe80:1:2:3:4:5:6:7]:1");
  CHECK(v6("00ab0cd0000f0000ffff00000000abcd", 1).to_string() == "[ab:cd0:f:0:ffff::abcd]:1");
  // IPv4-mapped addresses end in a dotted quad (section 5).
  CHECK(v6("00000000000000000000ffffc0000201", 80).to_string() == "[::ffff:192.0.2.1]:80");
}

TEST_CASE("parse reads what to_string writes and RFC 4291's other forms") {
  const auto check = [](std::string_view text, const ip_address_port& want) {
    const auto got = ip_address_port::parse(text);
    REQUIRE_MESSAGE(got.has_value(), text);
    CHECK_MESSAGE(*got == want, text);
  };
  check("192.0.2.1:6084", v4(192, 0, 2, 1, 6084));
  check("0.0.0.0:0", v4(0, 0, 0, 0, 0));
  check("255.255.255.255:65535", v4(255, 255, 255, 255, 65535));
  check("[2001:db8::1]:6084", v6("20010db8000000000000000000000001", 6084));
  check("[::]:1", v6("00000000000000000000000000000000", 1));
  check("[::1]:1", v6("00000000000000000000000000000001", 1));
  check("[1::]:1", v6("00010000000000000000000000000000", 1));
  check("[2001:DB8:0:0:0:0:0:1]:1", v6("20010db8000000000000000000000001", 1));
  check("[2001:0db8:0000::0001]:1", v6("20010db8000000000000000000000001", 1));
  check("[1:2:3:4:5:6:7::]:1", v6("00010002000300040005000600070000", 1));
  check("[::2:3:4:5:6:7:8]:1", v6("00000002000300040005000600070008", 1));
  check("[::ffff:192.0.2.1]:80", v6("00000000000000000000ffffc0000201", 80));
  check("[1:2:3:4:5:6:1.2.3.4]:1", v6("00010002000300040005000601020304", 1));
}

TEST_CASE("parse rejects malformed text") {
  for (const char* bad : {"",
                          ":",
                          "192.0.2.1",
                          "192.0.2.1:",
                          "192.0.2.1:65536",
                          "192.0.2.1:-1",
                          "192.0.2.1:+1",
                          "192.0.2.1:01",
                          "192.0.2.1:123456",
                          "192.0.2.1:6084 ",
                          " 192.0.2.1:6084",
                          "192.0.2.256:1",
                          "192.0.2:1",
                          "192.0.2.1.5:1",
                          "01.2.3.4:1",
                          "1..2.3:1",
                          "1.2.3.:1",
                          ".1.2.3:1",
                          "a.b.c.d:1",
                          "1.2.3.4:1:2",
                          "2001:db8::1:6084",
                          "[2001:db8::1]",
                          "[2001:db8::1]6084",
                          "[2001:db8::1:6084",
                          "[2001:db8:::1]:1",
                          "[1::2::3]:1",
                          "[1:2:3:4:5:6:7:8:9]:1",
                          "[1:2:3:4:5:6:7]:1",
                          "[1:2:3:4:5:6:7:8::]:1",
                          "[12345::]:1",
                          "[fe80::1%eth0]:1",
                          "[::ffff:1.2.3]:1",
                          "[1.2.3.4]:1",
                          "[1::2:]:1",
                          "[:1::2]:1",
                          "[::ffff:1.2.3.4:5]:1",
                          "[::g]:1",
                          "[]:1",
                          "[::]:",
                          "[::]:x",
                          "[[::]]:1",
                          "[::1.2.3.4.5]:1",
                          "[1:2:3:4:5:6:7:1.2.3.4]:1",
                          "localhost:80"}) {
    CHECK_MESSAGE(!ip_address_port::parse(bad).has_value(), bad);
  }
}

TEST_CASE("parse(to_string(a)) == a for many addresses") {
  // A small deterministic generator; zero groups are made common so that "::" placement is covered.
  std::uint32_t state = 0x12345678u;
  const auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  for (int i = 0; i < 2000; ++i) {
    ipv6_address_port a;
    for (std::size_t g = 0; g < 8; ++g) {
      const std::uint32_t r = next();
      const std::uint16_t group =
          (r & 3u) != 0 ? 0 : static_cast<std::uint16_t>(r >> 4);  // three in four are zero
      a.address[2 * g] = static_cast<std::uint8_t>(group >> 8);
      a.address[2 * g + 1] = static_cast<std::uint8_t>(group);
    }
    a.port = static_cast<std::uint16_t>(next());
    const ip_address_port addr{a};
    const std::string text = addr.to_string();
    const auto back = ip_address_port::parse(text);
    REQUIRE_MESSAGE(back.has_value(), text);
    CHECK_MESSAGE(*back == addr, text);
    // Canonical: at most one "::" and no group with a leading zero.
    const std::size_t gap = text.find("::");
    CHECK((gap == std::string::npos || text.find("::", gap + 1) == std::string::npos));
    for (std::size_t k = 0; k + 2 < text.size(); ++k) {
      const bool group_start = text[k] == '[' || text[k] == ':';
      const bool hex_next = text[k + 2] != ':' && text[k + 2] != ']';
      CHECK_FALSE((group_start && text[k + 1] == '0' && hex_next));
    }
  }
  for (int i = 0; i < 200; ++i) {
    const std::uint32_t r = next();
    const auto addr = v4(static_cast<std::uint8_t>(r), static_cast<std::uint8_t>(r >> 8),
                         static_cast<std::uint8_t>(r >> 16), static_cast<std::uint8_t>(next()),
                         static_cast<std::uint16_t>(next()));
    const auto back = ip_address_port::parse(addr.to_string());
    REQUIRE(back.has_value());
    CHECK(*back == addr);
  }
}
