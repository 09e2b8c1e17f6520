#include <doctest/doctest.h>

#include "client_fixture.hpp"

using namespace p2psip;
using p2psip::client::to_bytes;
using p2psip::client::to_string;

TEST_CASE("client: put through one peer, get through another") {
  test::overlay_fixture f;
  auto alice = f.attach("alice", 0);
  auto bob = f.attach("bob", 1);
  auto put = alice->put("greeting", to_bytes("hello from alice"));
  REQUIRE_MESSAGE(put.has_value(), (put ? "" : put.error().message));
  auto got = bob->get("greeting");
  REQUIRE_MESSAGE(got.has_value(), (got ? "" : got.error().message));
  REQUIRE(got->size() == 1);
  CHECK(to_string(got->front().value) == "hello from alice");
  CHECK(got->front().owner_node_id == alice->node_id());
  CHECK(got->front().owner_user == "alice@test.p2psip.example");
}
