// Every SDK operation in its blocking and its callback form, against real peers: put/get/remove
// on the generic kind; store/fetch/stat/find/remove_items on a single-value, an array and a
// dictionary kind, with generation counters, lifetimes, stat hashes and lengths; ping.
#include <doctest/doctest.h>

#include <algorithm>
#include <thread>

#include "client_fixture.hpp"

using namespace p2psip;
using namespace std::chrono_literals;
using client::bytes;
using client::item;
using client::kind_data;
using client::selection;
using client::store_options;
using client::to_bytes;
using client::to_string;
using test::awaited;
using test::why;

namespace {

/// The peers answer the remaining lifetime (whole seconds, rounded up), not the stored one.
bool lifetime_near(std::uint32_t got, std::uint32_t stored) {
  return got <= stored && got + 5 >= stored;
}

item single(std::string_view value, std::uint32_t lifetime = 0) {
  item it;
  it.value = to_bytes(value);
  it.lifetime = lifetime;
  return it;
}

item at_index(std::uint32_t index, std::string_view value) {
  item it;
  it.index = index;
  it.value = to_bytes(value);
  return it;
}

item at_key(bytes key, std::string_view value) {
  item it;
  it.key = std::move(key);
  it.value = to_bytes(value);
  return it;
}

/// A SipRegistration of type sip_registration_uri (RFC 7904 3.2), spelt out byte by byte:
/// type 1, uint16 length of the rest, opaque uri<0..2^16-1>.
std::string uri_registration(std::string_view uri) {
  std::string out;
  out.push_back('\x01');
  const auto rest = uri.size() + 2;
  out.push_back(static_cast<char>(rest >> 8));
  out.push_back(static_cast<char>(rest & 0xFF));
  out.push_back(static_cast<char>(uri.size() >> 8));
  out.push_back(static_cast<char>(uri.size() & 0xFF));
  out.append(uri);
  return out;
}

const client::owned_value* owned_by(const std::vector<client::owned_value>& v,
                                    const std::string& node) {
  const auto it = std::find_if(
      v.begin(), v.end(), [&](const client::owned_value& o) { return o.owner_node_id == node; });
  return it == v.end() ? nullptr : &*it;
}

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace

TEST_CASE("client ops: put/get/remove, blocking and callback forms") {
  test::overlay_fixture f(2);
  auto alice = f.attach("alice", 0);
  auto bob = f.attach("bob", 1);
  const auto before = now_ms();

  auto put = alice->put("song", to_bytes("alice's"), 120);
  REQUIRE_MESSAGE(put.has_value(), why(put));
  awaited<void> bob_put;
  const auto test_thread = std::this_thread::get_id();
  std::thread::id callback_thread;
  bob->put_async("song", to_bytes("bob's"), 3600,
                 [&, cb = bob_put.callback()](client::result<void> r) {
                   callback_thread = std::this_thread::get_id();
                   cb(std::move(r));
                 });
  auto bob_put_r = bob_put.get();
  REQUIRE_MESSAGE(bob_put_r.has_value(), why(bob_put_r));
  // The callback ran on the client's callback thread, not on the caller's stack.
  CHECK(callback_thread != test_thread);

  auto got = bob->get("song");
  REQUIRE_MESSAGE(got.has_value(), why(got));
  REQUIRE(got->size() == 2);
  const auto* a = owned_by(*got, alice->node_id());
  const auto* b = owned_by(*got, bob->node_id());
  REQUIRE(a);
  REQUIRE(b);
  CHECK(to_string(a->value) == "alice's");
  CHECK(a->owner_user == test::user_of("alice"));
  CHECK(lifetime_near(a->lifetime, 120));
  CHECK(a->storage_time >= before);
  CHECK(a->storage_time <= now_ms());
  CHECK(to_string(b->value) == "bob's");
  CHECK(lifetime_near(b->lifetime, 3600));

  // An overwrite replaces only the writer's own entry.
  put = alice->put("song", to_bytes("alice's second"));
  REQUIRE_MESSAGE(put.has_value(), why(put));
  awaited<std::vector<client::owned_value>> got_async;
  alice->get_async("song", got_async.callback());
  auto got2 = got_async.get();
  REQUIRE_MESSAGE(got2.has_value(), why(got2));
  REQUIRE(got2->size() == 2);
  CHECK(to_string(owned_by(*got2, alice->node_id())->value) == "alice's second");
  CHECK(to_string(owned_by(*got2, bob->node_id())->value) == "bob's");

  auto removed = alice->remove("song");
  REQUIRE_MESSAGE(removed.has_value(), why(removed));
  got = bob->get("song");
  REQUIRE_MESSAGE(got.has_value(), why(got));
  REQUIRE(got->size() == 1);
  CHECK(got->front().owner_node_id == bob->node_id());

  awaited<void> bob_removed;
  bob->remove_async("song", bob_removed.callback());
  auto bob_removed_r = bob_removed.get();
  REQUIRE_MESSAGE(bob_removed_r.has_value(), why(bob_removed_r));
  got = alice->get("song");
  REQUIRE_MESSAGE(got.has_value(), why(got));
  CHECK(got->empty());

  // Nothing ever stored under a name: an empty answer, not an error.
  got = alice->get("never stored");
  REQUIRE_MESSAGE(got.has_value(), why(got));
  CHECK(got->empty());
}

TEST_CASE("client ops: single-value kind: generations, lifetimes, stat, find, remove_items") {
  test::overlay_fixture f(2);
  auto alice = f.attach("alice", 0);
  auto bob = f.attach("bob", 1);
  // NODE-MULTIPLE: the resource is alice's Node-ID with an index.
  const auto res = test::node_multiple_name(alice->node_id(), 1);
  REQUIRE(alice->model_of(test::single_kind) == client::data_model::single_value);

  auto g1 = alice->store(res, test::single_kind, {single("v1")}, store_options{600, 0});
  REQUIRE_MESSAGE(g1.has_value(), why(g1));
  CHECK(*g1 > 0);

  auto fetched = bob->fetch(res, test::single_kind);
  REQUIRE_MESSAGE(fetched.has_value(), why(fetched));
  CHECK(fetched->kind == test::single_kind);
  CHECK(fetched->model == client::data_model::single_value);
  CHECK(fetched->generation == *g1);
  REQUIRE(fetched->items.size() == 1);
  CHECK(to_string(fetched->items[0].value) == "v1");
  CHECK(fetched->items[0].exists);
  CHECK(lifetime_near(fetched->items[0].lifetime, 600));  // the store call's
  CHECK(fetched->items[0].signer_node_id == alice->node_id());
  CHECK(fetched->items[0].signer_user == test::user_of("alice"));

  // The matching generation is accepted and moves on; the stale one is refused.
  awaited<std::uint64_t> g2_async;
  alice->store_async(res, test::single_kind, {single("v2", 45)}, store_options{600, *g1},
                     g2_async.callback());
  auto g2 = g2_async.get();
  REQUIRE_MESSAGE(g2.has_value(), why(g2));
  CHECK(*g2 > *g1);
  auto stale = alice->store(res, test::single_kind, {single("v3")}, store_options{600, *g1});
  REQUIRE_FALSE(stale.has_value());
  CHECK(stale.code() == client::errc::generation_conflict);
  awaited<std::uint64_t> stale_async;
  alice->store_async(res, test::single_kind, {single("v3")}, store_options{600, *g1},
                     stale_async.callback());
  CHECK(stale_async.get().code() == client::errc::generation_conflict);

  awaited<kind_data> fetched_async;
  alice->fetch_async(res, test::single_kind, selection::all(), fetched_async.callback());
  auto f2 = fetched_async.get();
  REQUIRE_MESSAGE(f2.has_value(), why(f2));
  CHECK(f2->generation == *g2);
  REQUIRE(f2->items.size() == 1);
  CHECK(to_string(f2->items[0].value) == "v2");
  CHECK(lifetime_near(f2->items[0].lifetime, 45));  // the item's own

  // Stat: the length and the hash, not the value.
  auto st = bob->stat(res, test::single_kind);
  REQUIRE_MESSAGE(st.has_value(), why(st));
  CHECK(st->generation == *g2);
  REQUIRE(st->items.size() == 1);
  CHECK(st->items[0].value.empty());
  CHECK(st->items[0].value_length == 2);
  CHECK(st->items[0].hash == test::stat_hash(to_bytes("v2")));
  CHECK(lifetime_near(st->items[0].lifetime, 45));
  awaited<kind_data> st_async;
  bob->stat_async(res, test::single_kind, selection::all(), st_async.callback());
  auto st2 = st_async.get();
  REQUIRE_MESSAGE(st2.has_value(), why(st2));
  REQUIRE(st2->items.size() == 1);
  CHECK(st2->items[0].hash == st->items[0].hash);

  // Find names the Resource-ID that holds the kind; nothing of a kind never stored.
  auto found = bob->find(res, test::single_kind);
  REQUIRE_MESSAGE(found.has_value(), why(found));
  REQUIRE(found->has_value());
  CHECK(**found == test::resource_hex(res));
  awaited<std::optional<std::string>> none;
  bob->find_async(res, test::certificate_by_node_kind, none.callback());
  auto none_r = none.get();
  REQUIRE_MESSAGE(none_r.has_value(), why(none_r));
  CHECK_FALSE(none_r->has_value());

  // remove_items leaves a tombstone; the async form too, after storing again.
  auto g3 = alice->remove_items(res, test::single_kind, {item{}});
  REQUIRE_MESSAGE(g3.has_value(), why(g3));
  CHECK(*g3 > *g2);
  fetched = bob->fetch(res, test::single_kind);
  REQUIRE_MESSAGE(fetched.has_value(), why(fetched));
  REQUIRE(fetched->items.size() == 1);
  CHECK_FALSE(fetched->items[0].exists);
  CHECK(fetched->items[0].value.empty());
  auto g4 = alice->store(res, test::single_kind, {single("v4")});
  REQUIRE_MESSAGE(g4.has_value(), why(g4));
  awaited<std::uint64_t> removed_async;
  alice->remove_items_async(res, test::single_kind, {item{}}, {}, removed_async.callback());
  auto g5 = removed_async.get();
  REQUIRE_MESSAGE(g5.has_value(), why(g5));
  CHECK(*g5 > *g4);
  fetched = alice->fetch(res, test::single_kind);
  REQUIRE_MESSAGE(fetched.has_value(), why(fetched));
  REQUIRE(fetched->items.size() == 1);
  CHECK_FALSE(fetched->items[0].exists);

  // Ping: the attached peer by default, the responsible peer of a resource otherwise.
  auto pong = alice->ping();
  REQUIRE_MESSAGE(pong.has_value(), why(pong));
  REQUIRE(alice->attached_peer());
  CHECK(pong->responder_node_id == alice->attached_peer()->node_id);
  CHECK(pong->round_trip.count() > 0);
  awaited<client::ping_info> pong_async;
  bob->ping_async(res, pong_async.callback());
  auto pong2 = pong_async.get();
  REQUIRE_MESSAGE(pong2.has_value(), why(pong2));
  CHECK(pong2->responder_node_id.size() == 32);
}

TEST_CASE("client ops: array kind (CERTIFICATE_BY_USER at the user name)") {
  test::overlay_fixture f(2);
  auto alice = f.attach("alice", 0);
  auto bob = f.attach("bob", 1);
  const auto res = test::user_of("alice");
  const auto kind = test::certificate_by_user_kind;
  REQUIRE(alice->model_of(kind) == client::data_model::array);

  auto g1 = alice->store(res, kind, {at_index(0, "zero"), at_index(1, "one")});
  REQUIRE_MESSAGE(g1.has_value(), why(g1));
  // 0xFFFFFFFF appends after the last index.
  awaited<std::uint64_t> appended;
  alice->store_async(res, kind, {at_index(0xFFFFFFFF, "two")}, store_options{60, *g1},
                     appended.callback());
  auto g2 = appended.get();
  REQUIRE_MESSAGE(g2.has_value(), why(g2));
  CHECK(*g2 > *g1);

  auto all = bob->fetch(res, kind);
  REQUIRE_MESSAGE(all.has_value(), why(all));
  CHECK(all->model == client::data_model::array);
  CHECK(all->generation == *g2);
  REQUIRE(all->items.size() == 3);
  for (std::uint32_t i = 0; i < 3; ++i) {
    CHECK(all->items[i].index == i);
    CHECK(all->items[i].signer_node_id == alice->node_id());
  }
  CHECK(to_string(all->items[0].value) == "zero");
  CHECK(to_string(all->items[1].value) == "one");
  CHECK(to_string(all->items[2].value) == "two");
  CHECK(lifetime_near(all->items[0].lifetime, 3600));
  CHECK(lifetime_near(all->items[2].lifetime, 60));

  awaited<kind_data> some;
  bob->fetch_async(res, kind, selection::indices({{1, 1}, {2, 5}}), some.callback());
  auto some_r = some.get();
  REQUIRE_MESSAGE(some_r.has_value(), why(some_r));
  REQUIRE(some_r->items.size() == 2);
  CHECK(some_r->items[0].index == 1);
  CHECK(some_r->items[1].index == 2);

  auto st = bob->stat(res, kind, selection::indices({{0, 0}}));
  REQUIRE_MESSAGE(st.has_value(), why(st));
  REQUIRE(st->items.size() == 1);
  CHECK(st->items[0].index == 0);
  CHECK(st->items[0].value_length == 4);
  CHECK(st->items[0].hash == test::stat_hash(to_bytes("zero")));

  auto found = bob->find(res, kind);
  REQUIRE_MESSAGE(found.has_value(), why(found));
  REQUIRE(found->has_value());
  CHECK(**found == test::resource_hex(res));

  auto g3 = alice->remove_items(res, kind, {at_index(1, "")});
  REQUIRE_MESSAGE(g3.has_value(), why(g3));
  all = alice->fetch(res, kind);
  REQUIRE_MESSAGE(all.has_value(), why(all));
  CHECK(all->generation == *g3);
  REQUIRE(all->items.size() == 3);
  CHECK(all->items[0].exists);
  CHECK_FALSE(all->items[1].exists);
  CHECK(all->items[2].exists);

  // More items than the kind's max-count (4) are refused before anything is sent.
  auto over = alice->store(
      res, kind,
      {at_index(0, "a"), at_index(1, "b"), at_index(2, "c"), at_index(3, "d"), at_index(4, "e")});
  CHECK(over.code() == client::errc::too_large);
}

TEST_CASE("client ops: dictionary kinds (SIP-REGISTRATION, generic) and ping") {
  test::overlay_fixture f(2);
  auto alice = f.attach("alice", 0);
  auto bob = f.attach("bob", 1);
  const auto res = test::user_of("alice");
  const auto alice_key = test::from_hex(alice->node_id());
  const auto bob_key = test::from_hex(bob->node_id());
  REQUIRE(alice->model_of(test::sip_registration_kind) == client::data_model::dictionary);

  // A SIP-REGISTRATION value is a SipRegistration: the bare URI is refused by the storing peer.
  auto bare = alice->store(res, test::sip_registration_kind, {at_key(alice_key, "sip:alice@here")});
  CHECK(bare.code() == client::errc::overlay_error);
  // USER-NODE-MATCH: alice's user name, keyed by alice's Node-ID.
  const auto here = uri_registration("sip:alice@here");
  auto g1 = alice->store(res, test::sip_registration_kind, {at_key(alice_key, here)});
  REQUIRE_MESSAGE(g1.has_value(), why(g1));
  auto reg = bob->fetch(res, test::sip_registration_kind);
  REQUIRE_MESSAGE(reg.has_value(), why(reg));
  CHECK(reg->model == client::data_model::dictionary);
  CHECK(reg->generation == *g1);
  REQUIRE(reg->items.size() == 1);
  CHECK(reg->items[0].key == alice_key);
  CHECK(to_string(reg->items[0].value) == here);
  // A key other than the writer's Node-ID is refused by the policy.
  auto wrong_key = alice->store(res, test::sip_registration_kind,
                                {at_key(bob_key, uri_registration("sip:alice@there"))});
  CHECK(wrong_key.code() == client::errc::forbidden);

  // The generic kind as a dictionary: two writers' entries, fetched by key.
  const std::string name = "shared";
  auto ga = alice->store(name, test::generic_kind, {at_key(alice_key, "from alice")});
  REQUIRE_MESSAGE(ga.has_value(), why(ga));
  awaited<std::uint64_t> gb;
  bob->store_async(name, test::generic_kind, {at_key(bob_key, "from bob")}, {}, gb.callback());
  auto gb_r = gb.get();
  REQUIRE_MESSAGE(gb_r.has_value(), why(gb_r));
  auto both = alice->fetch(name, test::generic_kind);
  REQUIRE_MESSAGE(both.has_value(), why(both));
  CHECK(both->items.size() == 2);
  auto only_bob = alice->fetch(name, test::generic_kind, selection::keys({bob_key}));
  REQUIRE_MESSAGE(only_bob.has_value(), why(only_bob));
  REQUIRE(only_bob->items.size() == 1);
  CHECK(only_bob->items[0].key == bob_key);
  CHECK(to_string(only_bob->items[0].value) == "from bob");
  CHECK(only_bob->items[0].signer_node_id == bob->node_id());
  awaited<kind_data> st;
  alice->stat_async(name, test::generic_kind, selection::keys({alice_key}), st.callback());
  auto st_r = st.get();
  REQUIRE_MESSAGE(st_r.has_value(), why(st_r));
  REQUIRE(st_r->items.size() == 1);
  CHECK(st_r->items[0].key == alice_key);
  CHECK(st_r->items[0].value_length == std::string("from alice").size());
  CHECK(st_r->items[0].hash == test::stat_hash(to_bytes("from alice")));
  awaited<std::optional<std::string>> found;
  alice->find_async(name, test::generic_kind, found.callback());
  auto found_r = found.get();
  REQUIRE_MESSAGE(found_r.has_value(), why(found_r));
  REQUIRE(found_r->has_value());
  CHECK(**found_r == test::resource_hex(name));

  // put/get see the same entries (the generic kind keyed by Node-ID).
  auto got = bob->get(name);
  REQUIRE_MESSAGE(got.has_value(), why(got));
  CHECK(got->size() == 2);

  auto removed = bob->remove_items(name, test::generic_kind, {at_key(bob_key, "")});
  REQUIRE_MESSAGE(removed.has_value(), why(removed));
  got = alice->get(name);
  REQUIRE_MESSAGE(got.has_value(), why(got));
  REQUIRE(got->size() == 1);
  CHECK(got->front().owner_node_id == alice->node_id());

  awaited<client::ping_info> pong;
  alice->ping_async({}, pong.callback());
  auto pong_r = pong.get();
  REQUIRE_MESSAGE(pong_r.has_value(), why(pong_r));
  CHECK(pong_r->responder_node_id == alice->attached_peer()->node_id);
  auto pong2 = bob->ping(name);
  REQUIRE_MESSAGE(pong2.has_value(), why(pong2));
  CHECK_FALSE(pong2->responder_node_id.empty());
}

TEST_CASE("client ops: a kind only the overlay configuration defines is stored and fetched") {
  test::overlay_fixture f(2);
  auto alice = f.attach("alice", 0);
  auto bob = f.attach("bob", 1);
  REQUIRE(alice->model_of(test::private_kind) == client::data_model::single_value);
  // USER-MATCH: alice writes at her user name; bob may not.
  const auto res = test::user_of("alice");
  auto stored = alice->store(res, test::private_kind, {single("private value")});
  REQUIRE_MESSAGE(stored.has_value(), why(stored));
  auto fetched = bob->fetch(res, test::private_kind);
  REQUIRE_MESSAGE(fetched.has_value(), why(fetched));
  REQUIRE(fetched->items.size() == 1);
  CHECK(to_string(fetched->items.front().value) == "private value");
  auto refused = bob->store(res, test::private_kind, {single("not bob's")});
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.code() == client::errc::forbidden);
}

TEST_CASE("client ops: register an AOR, resolve it (through an indirection), unregister") {
  test::overlay_fixture f(2);
  auto alice = f.attach("alice", 0);
  auto bob = f.attach("bob", 1);
  const auto alice_aor = "sip:" + test::user_of("alice");
  const auto bob_aor = test::user_of("bob");

  // Alice: a route through her peer to her (the default).
  auto g = alice->register_aor(alice_aor);
  REQUIRE_MESSAGE(g.has_value(), why(g));
  auto found = bob->resolve(alice_aor);
  REQUIRE_MESSAGE(found.has_value(), why(found));
  REQUIRE(found->size() == 1);
  const auto& b = found->front();
  CHECK(b.aor == test::user_of("alice"));
  CHECK(b.owner_node_id == alice->node_id());
  CHECK(b.contact.uri.empty());
  CHECK(b.contact.route ==
        std::vector<std::string>{alice->attached_peer()->node_id, alice->node_id()});
  CHECK(b.lifetime > 3500);

  // Bob forwards his AOR to Alice's: resolving Bob finds Alice's binding.
  client::sip_contact to_alice;
  to_alice.uri = alice_aor;
  REQUIRE(bob->register_aor(bob_aor, to_alice, 600));
  auto via = alice->resolve("sip:" + bob_aor);
  REQUIRE_MESSAGE(via.has_value(), why(via));
  REQUIRE(via->size() == 1);
  CHECK(via->front().aor == test::user_of("alice"));
  CHECK(via->front().owner_node_id == alice->node_id());
  // The callback forms give the same.
  awaited<std::vector<client::sip_binding>> resolved;
  alice->resolve_async("sip:" + bob_aor, resolved.callback());
  auto via_async = resolved.get();
  REQUIRE_MESSAGE(via_async.has_value(), why(via_async));
  REQUIRE(via_async->size() == 1);
  CHECK(via_async->front().owner_node_id == alice->node_id());
  awaited<std::uint64_t> again;
  alice->register_aor_async(alice_aor, {}, 1200, again.callback());
  auto again_r = again.get();
  REQUIRE_MESSAGE(again_r.has_value(), why(again_r));
  CHECK(*again_r > *g);

  // Nobody may register under another's AOR (USER-NODE-MATCH).
  CHECK(alice->register_aor(bob_aor).code() == client::errc::forbidden);
  // A route that is not made of Node-IDs is refused before anything is sent.
  client::sip_contact bad;
  bad.route = {"not-hex"};
  CHECK(alice->register_aor(alice_aor, bad).code() == client::errc::invalid_argument);

  // Unregistered: nothing left to resolve.
  REQUIRE(alice->unregister_aor(alice_aor));
  auto gone = bob->resolve(alice_aor);
  REQUIRE_MESSAGE(gone.has_value(), why(gone));
  CHECK(gone->empty());
  auto none = bob->resolve("sip:nobody@" + test::user_of("alice").substr(6));
  REQUIRE(none.has_value());
  CHECK(none->empty());
}
