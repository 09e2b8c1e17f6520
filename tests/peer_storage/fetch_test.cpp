// Fetch, Stat and Find (RFC 6940 sections 7.4.2-7.4.4), arrays and dictionaries, tombstones and
// expiry with a fake clock.
#include <botan/hash.h>

#include "storage_fixture.hpp"

namespace p2psip::peer_storage_test {

namespace {
bool is_synthetic(const pr::stored_data& sd) {
  return sd.signature.is_unsigned() && sd.storage_time == 0 && sd.lifetime == 0;
}
const pr::data_value& dv(const pr::stored_data& sd) {
  if (const auto* a = std::get_if<pr::array_entry>(&sd.value)) return a->value;
  if (const auto* d = std::get_if<pr::dictionary_entry>(&sd.value)) return d->value;
  return std::get<pr::data_value>(sd.value);
}
std::uint32_t index_of(const pr::stored_data& sd) {
  return std::get<pr::array_entry>(sd.value).index;
}
}  // namespace

TEST_CASE("array: sparse stores, holes, append, ranges") {
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  const pr::generic_certificate cert = alice.cert().generic();
  CHECK(error_of(f.put(
            alice, store_req(res, {kind_data(k_array, {make_value(alice, res, k_array,
                                                                  entry(2, "two"), f.ms())})}))) ==
        0);

  auto got = f.get(fetch_req(res, {array_spec(k_array, {{0, pr::array_append_index}})}));
  auto values = got.kind_responses.at(0).values;
  REQUIRE(values.size() == 3);
  CHECK(is_synthetic(values[0]));
  CHECK(index_of(values[0]) == 0);
  CHECK_FALSE(dv(values[0]).exists);
  CHECK(is_synthetic(values[1]));
  CHECK(index_of(values[2]) == 2);
  CHECK(dv(values[2]).value == b("two"));

  // Append: stored at index 3, and its signature (over index 0) still verifies when fetched.
  const auto appended =
      make_value(alice, res, k_array, entry(pr::array_append_index, "three"), f.ms(1s));
  CHECK(answered_generation(f.put(alice, store_req(res, {kind_data(k_array, {appended})}))) == 2);
  got = f.get(
      fetch_req(res, {array_spec(k_array, {{pr::array_append_index, pr::array_append_index}})}));
  values = got.kind_responses.at(0).values;
  REQUIRE(values.size() == 1);
  CHECK(index_of(values[0]) == 3);
  CHECK(dv(values[0]).value == b("three"));
  CHECK(cr::verify_stored_data(values[0], res, k_array, std::span(&cert, 1), f.trust, f.t0)
            .has_value());

  // Two ranges; a range past the end is clamped to the array.
  got = f.get(fetch_req(res, {array_spec(k_array, {{0, 0}, {2, 100}})}));
  values = got.kind_responses.at(0).values;
  REQUIRE(values.size() == 3);
  CHECK(index_of(values[0]) == 0);
  CHECK(index_of(values[1]) == 2);
  CHECK(index_of(values[2]) == 3);

  // An array with nothing stored: a range gives nothing.
  got = f.get(fetch_req(user_resource(f.p.bob), {array_spec(k_array, {{0, 5}})}));
  CHECK(got.kind_responses.at(0).values.empty());
  CHECK(got.kind_responses.at(0).generation == 0);
}

TEST_CASE("dictionary: keys, absent keys, wildcard") {
  store_fixture f;
  const auto res = rid("40000000000000000000000000000000");
  for (const auto* id : {&f.p.alice, &f.p.bob}) {
    CHECK(error_of(
              f.put(*id, store_req(res, {kind_data(k_generic, {make_value(*id, res, k_generic,
                                                                          dict(node_key(*id), "hi"),
                                                                          f.ms())})}))) == 0);
  }
  auto got = f.get(fetch_req(res, {dict_spec(k_generic, {})}));
  CHECK(got.kind_responses.at(0).values.size() == 2);
  CHECK(got.kind_responses.at(0).generation == 2);

  got = f.get(fetch_req(res, {dict_spec(k_generic, {node_key(f.p.bob), node_key(f.p.carol)})}));
  const auto& values = got.kind_responses.at(0).values;
  REQUIRE(values.size() == 2);
  CHECK(std::get<pr::dictionary_entry>(values[0].value).key == node_key(f.p.bob));
  CHECK(dv(values[0]).exists);
  CHECK(std::get<pr::dictionary_entry>(values[1].value).key == node_key(f.p.carol));
  CHECK(is_synthetic(values[1]));
  CHECK_FALSE(dv(values[1]).exists);

  // Wildcard over nothing: an empty list.
  got = f.get(fetch_req(rid("50000000000000000000000000000000"), {dict_spec(k_generic, {})}));
  CHECK(got.kind_responses.at(0).values.empty());
}

TEST_CASE("fetch: one answer per specifier, generation short-cut, synthetic single value") {
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  auto got = f.get(fetch_req(res, {spec(k_single)}));
  REQUIRE(got.kind_responses.at(0).values.size() == 1);
  CHECK(is_synthetic(got.kind_responses[0].values[0]));

  CHECK(error_of(f.put(
            alice, store_req(res, {kind_data(k_single, {make_value(alice, res, k_single,
                                                                   single("s"), f.ms())})}))) == 0);
  got = f.get(fetch_req(res, {spec(k_single, 1), spec(k_single, 0), array_spec(k_array, {})}));
  REQUIRE(got.kind_responses.size() == 3);
  CHECK(got.kind_responses[0].generation == 1);
  CHECK(got.kind_responses[0].values.empty());  // generation equal: nothing
  CHECK(got.kind_responses[1].values.size() == 1);
  CHECK(got.kind_responses[2].kind == k_array);
  CHECK(got.kind_responses[2].values.empty());
  // The answer encodes and decodes (what the core sends).
  auto encoded = pr::encode_body(pr::message_body{got});
  CHECK(encoded.has_value());
  // Certificates for the answer's security block.
  auto certs = f.store->signer_certificates(pr::message_body{got});
  REQUIRE(certs.size() == 1);
  CHECK(certs[0].certificate == alice.cert().der());
}

TEST_CASE("tombstones are signed values kept for their lifetime") {
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  CHECK(
      error_of(f.put(
          alice, store_req(res, {kind_data(k_single, {make_value(alice, res, k_single, single("v"),
                                                                 f.ms(), 100)})}))) == 0);
  const auto tomb = make_value(alice, res, k_single, pr::data_value{false, {}}, f.ms(1s), 200);
  CHECK(answered_generation(f.put(alice, store_req(res, {kind_data(k_single, {tomb})}), 1s)) == 2);
  auto got = f.get(fetch_req(res, {spec(k_single)}), 150s);
  REQUIRE(got.kind_responses[0].values.size() == 1);
  const auto& v = got.kind_responses[0].values[0];
  CHECK_FALSE(dv(v).exists);
  CHECK_FALSE(v.signature.is_unsigned());
  CHECK(v.signature == tomb.signature);
  // Replaying the deleted value is refused (older storage_time).
  CHECK(
      error_of(f.put(alice,
                     store_req(res, {kind_data(k_single, {make_value(alice, res, k_single,
                                                                     single("v"), f.ms(), 100)})}),
                     150s)) == code(pr::reload_errc::data_too_old));
  // Find does not report a resource holding only tombstones.
  pr::find_req fr;
  fr.resource = res;
  fr.kinds = {k_single};
  auto found = f.store->find(fr, *res.as_ring_point(), *res.as_ring_point(), f.t0 + 150s);
  CHECK_FALSE(std::get<pr::find_ans>(found).results.at(0).found());
  CHECK(f.store->expire(f.t0 + 202s) == 1);
  CHECK(f.store->counts().values == 0);
}

TEST_CASE("expiry with a fake clock") {
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  CHECK(!f.store->next_expiry().has_value());
  CHECK(error_of(f.put(
            alice,
            store_req(res, {kind_data(k_array, {make_value(alice, res, k_array, entry(0, "short"),
                                                           f.ms(), 10),
                                                make_value(alice, res, k_array, entry(1, "long"),
                                                           f.ms(), 20)})}))) == 0);
  REQUIRE(f.store->next_expiry().has_value());
  CHECK(*f.store->next_expiry() == f.t0 + 10s);

  auto got = f.get(fetch_req(res, {array_spec(k_array, {{0, 1}})}), 9500ms);
  REQUIRE(got.kind_responses[0].values.size() == 2);
  CHECK(got.kind_responses[0].values[0].lifetime == 0);  // 9.5 s held counts as 10: nothing left
  CHECK(got.kind_responses[0].values[1].lifetime == 10);

  // Past its lifetime a value is gone at once, even before the sweep.
  got = f.get(fetch_req(res, {array_spec(k_array, {{0, 1}})}), 10s);
  REQUIRE(got.kind_responses[0].values.size() == 2);
  CHECK(is_synthetic(got.kind_responses[0].values[0]));

  CHECK(f.store->expire(f.t0 + 9999ms) == 0);
  CHECK(f.store->expire(f.t0 + 10s) == 1);
  CHECK(f.store->counts().values == 1);
  CHECK(*f.store->next_expiry() == f.t0 + 20s);
  CHECK(f.store->generation(res, k_array) == 1);
  CHECK(f.store->expire(f.t0 + 1h) == 1);
  CHECK(f.store->counts().values == 0);
  CHECK(f.store->counts().resources == 0);
  CHECK(f.store->counts().bytes == 0);
  CHECK(f.store->generation(res, k_array) == 0);
  CHECK(!f.store->next_expiry().has_value());
}

TEST_CASE("stat: metadata with SHA-256 over the length-prefixed value") {
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  const auto v = make_value(alice, res, k_single, single("hello"), f.ms(), 60);
  CHECK(error_of(f.put(alice, store_req(res, {kind_data(k_single, {v})}))) == 0);
  pr::stat_req sr;
  sr.resource = res;
  sr.specifiers = {spec(k_single), array_spec(k_array, {{0, 0}})};
  auto body = f.store->stat(sr, f.t0);
  REQUIRE(std::holds_alternative<pr::stat_ans>(body));
  const auto& ans = std::get<pr::stat_ans>(body);
  REQUIRE(ans.kind_responses.size() == 2);
  CHECK(ans.kind_responses[0].generation == 1);
  REQUIRE(ans.kind_responses[0].values.size() == 1);
  const auto& m = ans.kind_responses[0].values[0];
  CHECK(m.storage_time == v.storage_time);
  CHECK(m.lifetime == 60);
  const auto& md = std::get<pr::meta_data>(m.metadata);
  CHECK(md.exists);
  CHECK(md.value_length == 5);
  CHECK(md.hash_algorithm == pr::hash_algorithm::sha256);
  auto h = Botan::HashFunction::create_or_throw("SHA-256");
  const std::uint8_t input[] = {0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
  h->update(input, sizeof input);
  const auto expected = h->final();
  CHECK(md.hash_value == pr::bytes(expected.begin(), expected.end()));
  CHECK(ans.kind_responses[1].values.empty());
  CHECK(pr::encode_body(body).has_value());
}

TEST_CASE("find: the first Resource-ID at or after the target within the range") {
  store_fixture f;
  const auto& alice = f.p.alice;
  for (const char* hex : {"20000000000000000000000000000000", "60000000000000000000000000000000",
                          "e0000000000000000000000000000000"}) {
    const auto res = rid(hex);
    CHECK(error_of(f.put(
              alice, store_req(res, {kind_data(k_generic, {make_value(alice, res, k_generic,
                                                                      dict(node_key(alice), "x"),
                                                                      f.ms())})}))) == 0);
  }
  const auto find = [&](std::string_view target, std::string_view after, std::string_view to,
                        std::vector<std::uint32_t> kinds = {k_generic}) {
    pr::find_req fr;
    fr.resource = rid(target);
    fr.kinds = std::move(kinds);
    return f.store->find(fr, nid(after), nid(to), f.t0);
  };
  const auto closest = [&](const pr::message_body& body, std::size_t i = 0) {
    REQUIRE(std::holds_alternative<pr::find_ans>(body));
    return std::get<pr::find_ans>(body).results.at(i).closest.hex();
  };
  const std::string zero(32, '0');
  // Whole ring.
  CHECK(closest(find("30000000000000000000000000000000", "10000000000000000000000000000000",
                     "10000000000000000000000000000000")) == "60000000000000000000000000000000");
  CHECK(closest(find("20000000000000000000000000000000", "10000000000000000000000000000000",
                     "10000000000000000000000000000000")) == "20000000000000000000000000000000");
  // Wraps past the top of the id space.
  CHECK(closest(find("f0000000000000000000000000000000", "10000000000000000000000000000000",
                     "10000000000000000000000000000000")) == "20000000000000000000000000000000");
  // Range (0x10.., 0x50..]: 0x60.. is outside.
  CHECK(closest(find("30000000000000000000000000000000", "10000000000000000000000000000000",
                     "50000000000000000000000000000000")) == zero);
  // Range wrapping zero (0xd0.., 0x30..]: from 0xf0.. the next is 0x20...
  CHECK(closest(find("f0000000000000000000000000000000", "d0000000000000000000000000000000",
                     "30000000000000000000000000000000")) == "20000000000000000000000000000000");
  // Unknown kind and a kind with nothing: zero, one result per kind.
  auto body = find("30000000000000000000000000000000", "10000000000000000000000000000000",
                   "10000000000000000000000000000000", {0x1234, k_single, k_generic});
  CHECK(closest(body, 0) == zero);
  CHECK(closest(body, 1) == zero);
  CHECK(closest(body, 2) == "60000000000000000000000000000000");
  // Not responsible.
  CHECK(error_of(find("70000000000000000000000000000000", "10000000000000000000000000000000",
                      "50000000000000000000000000000000")) == code(pr::reload_errc::not_found));
}

}  // namespace p2psip::peer_storage_test
