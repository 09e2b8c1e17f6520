#include <doctest/doctest.h>

#include "p2psip/protocol/ids.hpp"

using namespace p2psip::protocol;

namespace {
node_id id(std::string_view hex) {
  return *node_id::from_hex(hex);
}
}  // namespace

TEST_CASE("resource name hashing is the first 16 bytes of SHA-1") {
  CHECK(hash_resource_name("alice@example.org").hex() == "45a6b241a242c97f0492d382c390dfa3");
  CHECK(hash_resource_name("alice@example.org", 20).value.size() == 20);
}

TEST_CASE("overlay hash is the low 32 bits of SHA-1 of the name") {
  CHECK(overlay_hash("example.org") == 0x4E38FC3Fu);
}

TEST_CASE("node ids parse only at 16..20 bytes") {
  CHECK_FALSE(node_id::from_hex("00"));
  CHECK_FALSE(node_id::from_bytes(bytes(15, 1)));
  CHECK(node_id::from_bytes(bytes(16, 1)));
  CHECK(node_id::from_bytes(bytes(20, 1)));
  CHECK_FALSE(node_id::from_bytes(bytes(21, 1)));
  CHECK(node_id::wildcard().is_wildcard());
}

TEST_CASE("ring arithmetic wraps around") {
  const auto max = node_id::wildcard();
  const auto one = node_id::power_of_two(0);
  CHECK((max + one).is_zero());
  CHECK(max.next().is_zero());
  CHECK((node_id{} - one) == max);
  CHECK(ring_distance(max, one) == node_id::power_of_two(1));
  CHECK(node_id::power_of_two(127).hex() == "80000000000000000000000000000000");
  CHECK(node_id::power_of_two(128).is_zero());
}

TEST_CASE("highest set bit of an id") {
  CHECK(node_id{}.highest_bit() == -1);
  CHECK(node_id::power_of_two(0).highest_bit() == 0);
  CHECK(node_id::power_of_two(7).highest_bit() == 7);
  CHECK(node_id::power_of_two(8).highest_bit() == 8);
  CHECK(node_id::power_of_two(127).highest_bit() == 127);
  CHECK((node_id::power_of_two(90) + node_id::power_of_two(3)).highest_bit() == 90);
  CHECK(node_id::wildcard().highest_bit() == 127);
  CHECK(node_id::wildcard(20).highest_bit() == 159);
  CHECK(node_id::power_of_two(150, 20).highest_bit() == 150);
}

TEST_CASE("intervals on the ring") {
  const auto a = id("10000000000000000000000000000000");
  const auto b = id("20000000000000000000000000000000");
  const auto x = id("18000000000000000000000000000000");
  const auto y = id("f0000000000000000000000000000000");
  CHECK(in_open_interval(x, a, b));
  CHECK_FALSE(in_open_interval(a, a, b));
  CHECK_FALSE(in_open_interval(b, a, b));
  CHECK(in_half_open_interval(b, a, b));
  CHECK_FALSE(in_half_open_interval(a, a, b));
  // Wrapping: (b, a) goes through the top of the ring.
  CHECK(in_open_interval(y, b, a));
  CHECK_FALSE(in_open_interval(x, b, a));
  CHECK(in_half_open_interval(node_id{}, y, a));
  // (a, a) is everything but a; a lone peer owns all of (a, a].
  CHECK(in_open_interval(x, a, a));
  CHECK_FALSE(in_open_interval(a, a, a));
  CHECK(in_half_open_interval(a, a, a));
}

TEST_CASE("finger targets halve the ring") {
  const auto self = id("00000000000000000000000000000001");
  CHECK(finger_target(self, 1).hex() == "80000000000000000000000000000001");
  CHECK(finger_target(self, 2).hex() == "40000000000000000000000000000001");
  CHECK(finger_target(self, 128).hex() == "00000000000000000000000000000002");
  const auto top = id("c0000000000000000000000000000000");
  CHECK(finger_target(top, 1).hex() == "40000000000000000000000000000000");
}

TEST_CASE("CERTIFICATE_BY_NODE's resource name is the raw Node-ID") {
  const auto node = id("063d3c8b3867a2881074a99102d658d7");
  CHECK(certificate_by_node_resource(node) == hash_resource_name(node.view()));
  CHECK(certificate_by_node_resource(node) != hash_resource_name(node.hex()));
}
