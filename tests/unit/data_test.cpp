// Data models, the data signature input (RFC 6940 section 7.1), SIP-REGISTRATION values
// (RFC 7904 section 3.2) and TURN-SERVICE values (RFC 6940 section 9).

#include <doctest/doctest.h>

#include <string>

#include "p2psip/protocol/data.hpp"
#include "test_bytes.hpp"

using namespace p2psip::protocol;
using p2psip::test::hex;
using p2psip::test::rep;

namespace {

const char* const alice_hex = "063d3c8b3867a2881074a99102d658d7";
const char* const proxy_hex = "037b6e7a2ffb2a0995042ea570b28fa6";
const char* const resource_hex = "45a6b241a242c97f0492d382c390dfa3";

node_id nid(std::string_view h) {
  auto id = node_id::from_hex(h);
  REQUIRE(id);
  return *id;
}

signer_identity cert_hash_identity() {
  signer_identity id;
  id.type = static_cast<std::uint8_t>(signer_identity_type::cert_hash);
  id.hash.hash_alg = hash_algorithm::sha256;
  id.hash.hash = hex(rep("aa", 32));
  return id;
}

// The SignerIdentity above as encoded: type 1, length 34, sha256, hash<32>.
const std::string signer_hex = "01 0022 04 20" + rep("aa", 32);

}  // namespace

TEST_CASE("data model names and the registered kinds") {
  CHECK(data_model_name(data_model::single_value) == "SINGLE");
  CHECK(data_model_name(data_model::array) == "ARRAY");
  CHECK(data_model_name(data_model::dictionary) == "DICTIONARY");

  CHECK(registered_kind_model(kinds::sip_registration) == data_model::dictionary);
  CHECK(registered_kind_model(kinds::turn_service) == data_model::single_value);
  CHECK(registered_kind_model(kinds::certificate_by_node) == data_model::array);
  CHECK(registered_kind_model(kinds::certificate_by_user) == data_model::array);
  CHECK(registered_kind_model(kinds::redir) == data_model::dictionary);
  CHECK(registered_kind_model(kinds::p2psip_generic) == data_model::dictionary);
  CHECK_FALSE(registered_kind_model(kinds::invalid));
  CHECK_FALSE(registered_kind_model(0xF0000099));
  CHECK_FALSE(registered_kind_model(104));  // Wireshark's decimal REDIR is not ours

  CHECK(model_of(stored_data_value{data_value{}}) == data_model::single_value);
  CHECK(model_of(stored_data_value{array_entry{}}) == data_model::array);
  CHECK(model_of(stored_data_value{dictionary_entry{}}) == data_model::dictionary);

  body_context ctx;
  CHECK(ctx.model_of(kinds::sip_registration) == data_model::dictionary);
  CHECK_FALSE(ctx.guess_unknown_models);
}

TEST_CASE("data signature input: resource raw || uint32 kind || storage_time || value || signer") {
  const resource_id res{hex(resource_hex)};
  const std::uint64_t t = 1700000000000ull;
  const std::string prefix_single = std::string(resource_hex) + "00000002 0000018bcfe56800";

  SUBCASE("single value") {
    const stored_data_value v = data_value{true, to_bytes(std::string_view("abc"))};
    const bytes in = data_signature_input(res, kinds::turn_service, t, v, cert_hash_identity());
    CHECK(in == hex(prefix_single + "01 00000003 616263" + signer_hex));
    CHECK(in.size() == 16 + 4 + 8 + 8 + 37);
  }
  SUBCASE("non-existent single value") {
    const stored_data_value v = data_value{false, {}};
    CHECK(data_signature_input(res, kinds::turn_service, t, v, cert_hash_identity()) ==
          hex(prefix_single + "00 00000000" + signer_hex));
  }
  SUBCASE("array entry: the index is written as 0") {
    const std::string expected = std::string(resource_hex) + "00000003 0000018bcfe56800" +
                                 "00000000 01 00000004 63657274" + signer_hex;
    for (const std::uint32_t index : {0u, 7u, array_append_index}) {
      const stored_data_value v = array_entry{index, data_value{true, hex("63657274")}};
      CHECK(data_signature_input(res, kinds::certificate_by_node, t, v, cert_hash_identity()) ==
            hex(expected));
    }
  }
  SUBCASE("dictionary entry: key with its uint16 length") {
    const stored_data_value v = dictionary_entry{hex(alice_hex), data_value{true, hex("0102")}};
    CHECK(data_signature_input(res, kinds::sip_registration, t, v, cert_hash_identity()) ==
          hex(std::string(resource_hex) + "00000001 0000018bcfe56800 0010" + alice_hex +
              "01 00000002 0102" + signer_hex));
  }
  SUBCASE("no length prefix in front of the resource id, whatever its length") {
    const resource_id foo{to_bytes(std::string_view("FOO"))};
    const stored_data_value v = data_value{true, {}};
    signer_identity none;
    CHECK(data_signature_input(foo, 0x10, 1, v, none) ==
          hex("464f4f 00000010 0000000000000001 01 00000000 03 0000"));
  }
}

TEST_CASE("SIP-REGISTRATION route: the value of the brief's V2") {
  const std::string route_hex =
      std::string("02 0028 0000 0024 0110") + proxy_hex + "0110" + alice_hex;
  const bytes in = hex(route_hex);
  REQUIRE(in.size() == 43);
  auto reg = decode_sip_registration(in, limits{});
  REQUIRE(reg);
  CHECK(reg->type == sip_registration_type::route);
  CHECK(reg->contact_prefs.empty());
  REQUIRE(reg->destination_list.size() == 2);
  CHECK(*reg->destination_list[0].node() == nid(proxy_hex));
  CHECK(*reg->destination_list[1].node() == nid(alice_hex));
  auto again = encode_sip_registration(*reg);
  REQUIRE(again);
  CHECK(*again == in);
}

TEST_CASE("SIP-REGISTRATION round trips") {
  SUBCASE("uri") {
    sip_registration reg;
    reg.type = sip_registration_type::uri;
    reg.uri = to_bytes(std::string_view("bob@example.org"));
    auto enc = encode_sip_registration(reg);
    REQUIRE(enc);
    CHECK(*enc == hex("01 0011 000f 626f62406578616d706c652e6f7267"));
    auto dec = decode_sip_registration(*enc, limits{});
    REQUIRE(dec);
    CHECK(*dec == reg);
  }
  SUBCASE("route with contact preferences and a single entry") {
    sip_registration reg;
    reg.contact_prefs = to_bytes(std::string_view("(sip.schemes=SIPS)"));
    reg.destination_list = {to_destination(nid(alice_hex))};
    auto enc = encode_sip_registration(reg);
    REQUIRE(enc);
    CHECK(*enc == hex(std::string("02 0028 0012 287369702e736368656d65733d5349505329 0012 0110") +
                      alice_hex));
    auto dec = decode_sip_registration(*enc, limits{});
    REQUIRE(dec);
    CHECK(*dec == reg);
    CHECK(*encode_sip_registration(*dec) == *enc);
  }
  SUBCASE("route through a compressed id") {
    sip_registration reg;
    reg.destination_list = {to_destination(nid(proxy_hex)), destination{compressed_id{0x8001}}};
    auto enc = encode_sip_registration(reg);
    REQUIRE(enc);
    auto dec = decode_sip_registration(*enc, limits{});
    REQUIRE(dec);
    CHECK(*dec == reg);
  }
  SUBCASE("an unknown type keeps its data") {
    const bytes in = hex("07 0003 abcdef");
    auto dec = decode_sip_registration(in, limits{});
    REQUIRE(dec);
    CHECK(static_cast<std::uint8_t>(dec->type) == 7);
    CHECK(dec->unknown_value == hex("abcdef"));
    CHECK(*encode_sip_registration(*dec) == in);
  }
}

TEST_CASE("SIP-REGISTRATION must-fail cases") {
  const bytes good = hex(std::string("02 0028 0000 0024 0110") + proxy_hex + "0110" + alice_hex);
  SUBCASE("truncated at every length") {
    for (std::size_t n = 0; n < good.size(); ++n) {
      CHECK_FALSE(decode_sip_registration(byte_view(good.data(), n), limits{}));
    }
  }
  SUBCASE("length longer than the value") {
    bytes b = good;
    b[2] = 0x29;
    auto r = decode_sip_registration(b, limits{});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == codec_errc::bad_length);
    CHECK(std::string(r.error().field) == "sip_registration.length");
    CHECK(r.error().offset == 1);
  }
  SUBCASE("length shorter than the route") {
    bytes b = good;
    b[2] = 0x27;
    CHECK_FALSE(decode_sip_registration(b, limits{}));
  }
  SUBCASE("bytes after the registration") {
    bytes b = good;
    b.push_back(0);
    auto r = decode_sip_registration(b, limits{});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == codec_errc::trailing_bytes);
    CHECK(r.error().offset == 43);
  }
  SUBCASE("bytes inside the length after the destination list") {
    auto r = decode_sip_registration(hex(std::string("02 0017 0000 0012 0110") + alice_hex + "00"),
                                     limits{});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == codec_errc::trailing_bytes);
    CHECK(std::string(r.error().field) == "sip_registration.length");
  }
  SUBCASE("empty destination list (RFC 7904: <3..2^16-1>)") {
    auto r = decode_sip_registration(hex("02 0004 0000 0000"), limits{});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == codec_errc::bad_length);
    CHECK(std::string(r.error().field) == "sip_registration.destination_list");
    CHECK(r.error().offset == 5);
    sip_registration empty;
    auto e = encode_sip_registration(empty);
    REQUIRE_FALSE(e);
    CHECK(e.error() == make_error_code(codec_errc::invalid_value));
  }
  SUBCASE("a Node-ID of the wrong length for the overlay") {
    limits lim;
    lim.node_id_length = 20;
    auto r = decode_sip_registration(good, lim);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == codec_errc::wrong_id_length);
  }
  SUBCASE("destination list one entry over the limit") {
    limits lim;
    lim.max_destination_entries = 2;
    CHECK(decode_sip_registration(good, lim));
    lim.max_destination_entries = 1;
    auto r = decode_sip_registration(good, lim);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == codec_errc::limit_exceeded);
  }
  SUBCASE("uri longer than its container") {
    auto r = decode_sip_registration(hex("01 0003 0005 6162"), limits{});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == codec_errc::bad_length);
  }
}

TEST_CASE("TURN-SERVICE value") {
  SUBCASE("IPv4 golden") {
    const bytes in = hex("01 01 06 c0000201 17c4");
    auto t = decode_turn_server(in);
    REQUIRE(t);
    CHECK(t->iteration == 1);
    CHECK(t->server_address == ip_address_port{ipv4_address_port{{192, 0, 2, 1}, 6084}});
    auto again = encode_turn_server(*t);
    REQUIRE(again);
    CHECK(*again == in);
  }
  SUBCASE("IPv6 round trip") {
    turn_server t;
    t.iteration = 20;
    ipv6_address_port v6;
    v6.address = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    v6.port = 3478;
    t.server_address = ip_address_port{v6};
    auto enc = encode_turn_server(t);
    REQUIRE(enc);
    CHECK(*enc == hex("14 02 12 20010db8000000000000000000000001 0d96"));
    auto dec = decode_turn_server(*enc);
    REQUIRE(dec);
    CHECK(*dec == t);
  }
  SUBCASE("must fail") {
    const bytes good = hex("01 01 06 c0000201 17c4");
    for (std::size_t n = 0; n < good.size(); ++n) {
      CHECK_FALSE(decode_turn_server(byte_view(good.data(), n)));
    }
    bytes b = good;
    b.push_back(0);
    auto r = decode_turn_server(b);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == codec_errc::trailing_bytes);
    CHECK(std::string(r.error().field) == "turn_server");
  }
}
