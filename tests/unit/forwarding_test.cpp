#include <doctest/doctest.h>

#include "p2psip/protocol/message.hpp"
#include "test_bytes.hpp"

using namespace p2psip::protocol;
using p2psip::test::hex;

namespace {

// The brief's V1 PingReq header (token, overlay example.org, cfgseq 1, ttl 100, unfragmented,
// txid 0102..08, via 0, dest = wildcard node) followed by an empty ping body, no extensions and an
// unsigned security block.
const char* const ping_hex =
    "d2454c4f 4e38fc3f 0001 0a 64 c0000000 0000004d 0102030405060708 00000000 0000 0012 0000"
    "0110 ffffffffffffffffffffffffffffffff"
    "0017 00000002 0000 00000000"
    "0000 0000 03 0000 0000";
}  // namespace

TEST_CASE("a whole PingReq decodes field by field") {
  const bytes in = hex(ping_hex);
  REQUIRE(in.size() == 0x4d);
  auto m = decode_message(in, limits{});
  REQUIRE(m);
  CHECK(m->header.overlay == 0x4E38FC3Fu);
  CHECK(m->header.configuration_sequence == 1);
  CHECK(m->header.ttl == 100);
  CHECK(m->header.transaction_id == 0x0102030405060708ull);
  CHECK(m->header.via_list.empty());
  REQUIRE(m->header.destination_list.size() == 1);
  CHECK(m->header.destination_list[0].node()->is_wildcard());
  CHECK(m->contents.code == codes::ping_req);
  CHECK(m->contents.body == hex("0000"));
  CHECK(m->security.signature.is_unsigned());
  auto again = encode_message(*m, limits{});
  REQUIRE(again);
  CHECK(*again == in);
}

TEST_CASE("header must-fail cases name the field") {
  const bytes good = hex(ping_hex);
  SUBCASE("bad token") {
    bytes b = good;
    b[0] = 0x52;
    auto m = decode_message(b, limits{});
    REQUIRE_FALSE(m);
    CHECK(m.error().code == codec_errc::bad_token);
    CHECK(m.error().offset == 0);
  }
  SUBCASE("draft version") {
    bytes b = good;
    b[10] = 0x01;
    auto m = decode_message(b, limits{});
    REQUIRE_FALSE(m);
    CHECK(m.error().code == codec_errc::unsupported_version);
    CHECK(m.error().offset == 10);
  }
  SUBCASE("truncated at every length") {
    for (std::size_t n = 0; n < good.size(); ++n) {
      auto m = decode_message(byte_view(good.data(), n), limits{});
      CHECK_FALSE(m);
    }
  }
  SUBCASE("length larger than the bytes") {
    bytes b = good;
    b[19] = 0x4e;
    auto m = decode_message(b, limits{});
    REQUIRE_FALSE(m);
    CHECK(m.error().code == codec_errc::truncated);
    CHECK(std::string(m.error().field) == "forwarding_header.length");
  }
  SUBCASE("trailing bytes") {
    bytes b = good;
    b.push_back(0);
    b[19] = 0x4e;
    auto m = decode_message(b, limits{});
    REQUIRE_FALSE(m);
    CHECK(m.error().code == codec_errc::trailing_bytes);
  }
  SUBCASE("destination list length past the end") {
    bytes b = good;
    b[35] = 0x60;
    auto m = decode_message(b, limits{});
    REQUIRE_FALSE(m);
    CHECK(m.error().code == codec_errc::bad_length);
  }
  SUBCASE("empty destination list") {
    // A message must be going somewhere.
    bytes b = hex(
        "d2454c4f 4e38fc3f 0001 0a 64 c0000000 0000003b 0102030405060708 00000000 0000 0000 0000"
        "0017 00000002 0000 00000000 0000 0000 03 0000 0000");
    auto m = decode_message(b, limits{});
    REQUIRE_FALSE(m);
    CHECK(m.error().code == codec_errc::invalid_value);
  }
  SUBCASE("legacy fragment field") {
    bytes b = good;
    b[12] = 0x40;
    CHECK(decode_message(b, limits{}).error().code == codec_errc::invalid_value);
  }
  SUBCASE("a fragment is not a whole message") {
    bytes b = good;
    b[12] = 0x80;  // not the last fragment
    CHECK(decode_message(b, limits{}).error().code == codec_errc::fragmented);
  }
  SUBCASE("max message size, one byte over") {
    limits lim;
    lim.max_message_size = good.size();
    CHECK(decode_message(good, lim));
    lim.max_message_size = good.size() - 1;
    CHECK(decode_message(good, lim).error().code == codec_errc::limit_exceeded);
  }
}

namespace {

/// A ping with `n` entries in whichever list `fill` grows; encoded with generous limits.
template <class Fill>
bytes message_with(std::size_t n, Fill fill) {
  message m;
  m.header.overlay = 0x4E38FC3F;
  m.header.transaction_id = 7;
  m.header.destination_list.push_back(destination{node_id::wildcard()});
  m.contents.code = codes::ping_req;
  m.contents.body = {0, 0};
  m.security.signature.identity.type = static_cast<std::uint8_t>(signer_identity_type::none);
  for (std::size_t i = 0; i < n; ++i) fill(m, i);
  limits roomy;
  roomy.max_message_size = 1 << 20;
  auto encoded = encode_message(m, roomy);
  REQUIRE(encoded);
  return *encoded;
}

node_id numbered(std::size_t i) {
  bytes raw(16, 0);
  raw[0] = 0x10;
  raw[15] = static_cast<std::uint8_t>(i + 1);
  return *node_id::from_bytes(raw);
}

/// Decodes `in` under `lim` with the limit set to n (accepted) and n - 1 (one over: refused).
template <class Set>
void check_one_over(const bytes& in, std::size_t n, Set set, const char* field) {
  limits lim;
  lim.max_message_size = 1 << 20;
  set(lim, n);
  CHECK(decode_message(in, lim));
  set(lim, n - 1);
  auto refused = decode_message(in, lim);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == codec_errc::limit_exceeded);
  CHECK(std::string(refused.error().field) == field);
}

}  // namespace

TEST_CASE("every list limit refuses one entry over") {
  constexpr std::size_t n = 5;
  SUBCASE("via list") {
    const auto in = message_with(n, [](message& m, std::size_t i) {
      m.header.via_list.push_back(destination{numbered(i)});
    });
    check_one_over(
        in, n, [](limits& l, std::size_t v) { l.max_via_entries = v; },
        "forwarding_header.via_list");
  }
  SUBCASE("destination list") {
    const auto in = message_with(n - 1, [](message& m, std::size_t i) {
      m.header.destination_list.insert(m.header.destination_list.begin(), destination{numbered(i)});
    });
    check_one_over(
        in, n, [](limits& l, std::size_t v) { l.max_destination_entries = v; },
        "forwarding_header.destination_list");
  }
  SUBCASE("forwarding options") {
    const auto in = message_with(n, [](message& m, std::size_t i) {
      m.header.options.push_back(forwarding_option{1, 0, bytes(i, 0xAB)});
    });
    check_one_over(
        in, n, [](limits& l, std::size_t v) { l.max_options = v; }, "forwarding_header.options");
  }
  SUBCASE("message extensions") {
    const auto in = message_with(n, [](message& m, std::size_t i) {
      m.contents.extensions.push_back(message_extension{1, false, bytes(i, 0xCD)});
    });
    check_one_over(
        in, n, [](limits& l, std::size_t v) { l.max_extensions = v; },
        "message_contents.extensions");
  }
  SUBCASE("certificates") {
    const auto in = message_with(n, [](message& m, std::size_t i) {
      m.security.certificates.push_back(generic_certificate{0, bytes(i + 1, 0x30)});
    });
    check_one_over(
        in, n, [](limits& l, std::size_t v) { l.max_certificates = v; },
        "security_block.certificates");
  }
}
