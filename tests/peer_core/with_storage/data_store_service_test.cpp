// The adapter from peer/storage's data_store to the core's storage_service, driven through a core.
#include <doctest/doctest.h>

#include "p2psip/peer/data_store_service.hpp"
#include "sim_network.hpp"

namespace pr = p2psip::protocol;
namespace peer = p2psip::peer;
using namespace p2psip::sim;

TEST_CASE("data_store_service: a Fetch of nothing reaches the real store through the core") {
  p2psip::crypto::trust_store trust(p2psip::crypto::overlay_params{"example.org", 16});
  peer::data_store store(peer::make_memory_backend(), {}, trust);
  peer::data_store_service service(store);
  fake_signer signer(id_at(0x10));
  seeded_random rng(3);
  auto cfg = sim_network::default_config(id_at(0x10), peer::node_role::first_peer);
  peer::overlay_core core(cfg, signer, &service, rng);
  const auto now = time_point{} + std::chrono::hours(24 * 365 * 50);
  core.start(now);
  pr::fetch_req f;
  f.resource = pr::hash_resource_name("nobody@example.org");
  f.specifiers.push_back(pr::stored_data_specifier{});
  f.specifiers.back().kind = pr::kinds::sip_registration;
  std::optional<pr::message> got;
  auto tx = core.send_request(
      {pr::to_destination(f.resource)}, f,
      [&](p2psip::node::outcome&& o, time_point) { got = std::move(o.message); }, now);
  REQUIRE(tx);
  (void)core.take_actions();
  REQUIRE(got);
  CHECK(got->header.transaction_id == *tx);
  // An answer (fetch_ans or an error such as Error_Unknown_Kind), produced by data_store.
  CHECK((got->contents.code == pr::codes::fetch_ans || got->contents.code == pr::codes::error));
  CHECK(store.counts().resources == 0);
}
