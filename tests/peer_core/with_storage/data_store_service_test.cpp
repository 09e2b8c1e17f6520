// The adapter from peer/storage's data_store to the core's storage_service, driven through a core.
#include <doctest/doctest.h>

#include "p2psip/crypto/signatures.hpp"
#include "p2psip/peer/data_store_service.hpp"
#include "sim_network.hpp"
#include "test_pki.hpp"

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

namespace {

namespace cr = p2psip::crypto;
namespace tp = p2psip::test_pki;

/// crypto_signer's three operations, counting verifications.
class counting_signer final : public peer::message_signer {
 public:
  counting_signer(const cr::node_identity& id, cr::trust_store& trust) : id_(id), trust_(trust) {}
  void sign(pr::message& m) override { REQUIRE(cr::sign_message(m, id_)); }
  pr::result<cr::verified_signer> verify(const pr::message& m) override {
    ++verified;
    return cr::verify_message(m, trust_, std::chrono::system_clock::now());
  }
  pr::result<cr::verified_signer> prepare_own(pr::message& m) override {
    return cr::prepare_own_message(m, id_, id_.default_node_id(), trust_,
                                   std::chrono::system_clock::now());
  }
  int verified = 0;

 private:
  const cr::node_identity& id_;
  cr::trust_store& trust_;
};

}  // namespace

TEST_CASE(
    "data_store_service: our own Store skips re-verifying what this process signed, a forged "
    "value or message from a link is still refused") {
  const tp::test_ca ca("own store test CA");
  cr::trust_store trust(tp::example_overlay());
  REQUIRE(trust.add_root(ca.der()));
  const auto self = tp::make_identity(ca, tp::spec_for({id_at(0x10)}, "peer@example.org"));
  const auto alice = tp::make_identity(ca, tp::spec_for({id_at(0x30)}, "alice@example.org"));
  // A kind the codec knows the data model of: dictionary, each writer its own Node-ID's entry.
  constexpr std::uint32_t kind = pr::kinds::p2psip_generic;
  peer::data_store store(
      peer::make_memory_backend(),
      {{kind, pr::data_model::dictionary, cr::access_policy::node_key, 4, 64, 0}}, trust);
  peer::data_store_service service(store);
  counting_signer signer(self, trust);
  seeded_random rng(3);
  auto cfg = sim_network::default_config(id_at(0x10), peer::node_role::first_peer);
  peer::overlay_core core(cfg, signer, &service, rng);
  auto now = time_point{} + std::chrono::hours(24 * 365 * 50);
  core.start(now);
  (void)core.take_actions();
  const auto resource = pr::hash_resource_name(alice.cert().user());
  const auto wall_ms = [] {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  };
  auto value = [&](const cr::node_identity& by, std::string_view text, std::uint64_t at,
                   cr::trust_store* note) {
    pr::stored_data d;
    d.storage_time = at;
    d.lifetime = 600;
    d.value = pr::dictionary_entry{pr::to_bytes(by.default_node_id().view()),
                                   pr::data_value{true, pr::to_bytes(text)}};
    REQUIRE(cr::sign_stored_data(d, resource, kind, by, by.default_node_id(), note));
    pr::store_req req;
    req.resource = resource;
    pr::store_kind_data kd;
    kd.kind = kind;
    kd.values.push_back(std::move(d));
    req.kind_data.push_back(std::move(kd));
    return req;
  };

  // This peer stores a value of its own (the SIP usage stores the user's, signing as the user):
  // no signature is verified.
  std::optional<p2psip::node::outcome> got;
  const auto t0 = wall_ms();
  REQUIRE(core.send_request(
      {pr::to_destination(resource)}, value(self, "mine", t0, &trust),
      [&](p2psip::node::outcome&& o, time_point) { got = std::move(o); }, now));
  (void)core.take_actions();
  REQUIRE(got);
  INFO(p2psip::node::describe(*got));
  CHECK(got->ok());
  CHECK(std::holds_alternative<pr::store_ans>(got->body));
  CHECK(signer.verified == 0);
  CHECK(trust.stats().own_signatures_taken == 1);
  CHECK(store.counts().values == 1);

  // The same from a link (alice as a client): message and value verified as always.
  const peer::link_id link{7};
  core.on_link_up(link, id_at(0x30), now);
  (void)core.take_actions();
  auto from_alice = [&](const pr::store_req& req, bool break_message_signature) {
    pr::message m;
    m.header.overlay = cfg.overlay;
    m.header.ttl = 100;
    m.header.transaction_id = 0x99 + wall_ms();
    m.header.destination_list = {pr::to_destination(resource)};
    m.contents.code = pr::codes::store_req;
    m.contents.body = *pr::encode_body(req);
    REQUIRE(cr::sign_message(m, alice));
    if (break_message_signature) m.security.signature.value[0] ^= 1;
    auto bytes = pr::encode_message(m, pr::limits{});
    REQUIRE(bytes);
    core.on_message(link, *bytes, now);
    std::optional<pr::message> answer;
    for (auto& a : core.take_actions()) {
      if (auto* s = std::get_if<peer::send_action>(&a); s && s->link == link) {
        auto d = pr::decode_message(s->data, pr::limits{});
        REQUIRE(d);
        answer = std::move(*d);
      }
    }
    return answer;
  };
  // Noted as signed here, but it arrives over a link: verified, accepted, the note unused.
  auto a = from_alice(value(alice, "good", t0 + 1, &trust), false);
  REQUIRE(a);
  CHECK(a->contents.code == pr::codes::store_ans);
  CHECK(signer.verified == 1);
  CHECK(trust.stats().own_signatures_taken == 1);
  // A forged value (altered after it was signed and noted here): Error_Forbidden.
  auto forged = value(alice, "evil", t0 + 2, &trust);
  std::get<pr::dictionary_entry>(forged.kind_data[0].values[0].value).value.value =
      pr::to_bytes("EVIL");
  a = from_alice(forged, false);
  REQUIRE(a);
  CHECK(a->contents.code == pr::codes::error);
  CHECK(signer.verified == 2);
  // A message whose signature does not verify: dropped (RFC 6940 6.3.4), nothing stored.
  CHECK_FALSE(from_alice(value(alice, "later", t0 + 3, nullptr), true));
  CHECK(signer.verified == 3);
  CHECK(store.counts().values == 2);
  CHECK(trust.stats().own_signatures_taken == 1);
}
