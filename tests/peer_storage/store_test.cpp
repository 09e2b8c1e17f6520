// Store semantics (RFC 6940 section 7.4.1) with real signatures: every model, every policy,
// generation counters, storage_time, limits, atomicity and replicas.
#include "storage_fixture.hpp"

namespace p2psip::peer_storage_test {

TEST_CASE("single value: store, fetch the signed bytes unchanged, overwrite bumps the generation") {
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  const auto v1 = make_value(alice, res, k_single, single("one"), f.ms());
  auto ans = f.put(alice, store_req(res, {kind_data(k_single, {v1})}));
  CHECK(answered_generation(ans) == 1);
  CHECK(f.store->counts().values == 1);
  CHECK(f.store->counts().resources == 1);

  auto got = f.get(fetch_req(res, {spec(k_single)}), 1s);
  REQUIRE(got.kind_responses.size() == 1);
  CHECK(got.kind_responses[0].generation == 1);
  REQUIRE(got.kind_responses[0].values.size() == 1);
  auto fetched = got.kind_responses[0].values[0];
  CHECK(fetched.value == v1.value);
  CHECK(fetched.signature == v1.signature);
  CHECK(fetched.storage_time == v1.storage_time);
  CHECK(fetched.lifetime == 599);  // remaining lifetime
  // A fetcher can verify what it got.
  const pr::generic_certificate cert = alice.cert().generic();
  CHECK(cr::verify_stored_data(fetched, res, k_single, std::span(&cert, 1), f.trust, f.t0)
            .has_value());

  const auto v2 = make_value(alice, res, k_single, single("two"), f.ms(1s));
  CHECK(answered_generation(f.put(alice, store_req(res, {kind_data(k_single, {v2})}), 2s)) == 2);
  got = f.get(fetch_req(res, {spec(k_single)}), 2s);
  CHECK(got.kind_responses[0].values.at(0).value == v2.value);
  CHECK(f.store->counts().values == 1);
}

TEST_CASE("every policy: allowed and refused") {
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto& bob = f.p.bob;
  const auto forbidden = code(pr::reload_errc::forbidden);

  SUBCASE("USER-MATCH") {
    const auto res = user_resource(alice);
    CHECK(error_of(f.put(
              alice, store_req(res, {kind_data(k_single, {make_value(alice, res, k_single,
                                                                     single("a"), f.ms())})}))) ==
          0);
    // bob signs a value for alice's name
    CHECK(error_of(f.put(
              bob, store_req(res, {kind_data(k_single, {make_value(bob, res, k_single, single("b"),
                                                                   f.ms(1s))})}))) == forbidden);
    // alice's value, but bob sends the original StoreReq
    CHECK(error_of(f.put(
              bob, store_req(res, {kind_data(k_single, {make_value(alice, res, k_single,
                                                                   single("c"), f.ms(2s))})}))) ==
          forbidden);
  }
  SUBCASE("NODE-MATCH") {
    const auto res = node_resource(alice);
    CHECK(error_of(f.put(
              alice, store_req(res, {kind_data(k_node, {make_value(alice, res, k_node, single("n"),
                                                                   f.ms())})}))) == 0);
    CHECK(error_of(f.put(
              bob, store_req(res, {kind_data(k_node, {make_value(bob, res, k_node, single("n"),
                                                                 f.ms(1s))})}))) == forbidden);
  }
  SUBCASE("USER-NODE-MATCH") {
    const auto res = user_resource(alice);
    CHECK(error_of(f.put(alice, store_req(res, {kind_data(k_user_node,
                                                          {make_value(alice, res, k_user_node,
                                                                      dict(node_key(alice), "reg"),
                                                                      f.ms())})}))) == 0);
    // alice's name but a key that is not her Node-ID
    CHECK(error_of(f.put(
              alice, store_req(res, {kind_data(k_user_node, {make_value(alice, res, k_user_node,
                                                                        dict(node_key(bob), "reg"),
                                                                        f.ms())})}))) == forbidden);
  }
  SUBCASE("NODE-MULTIPLE") {
    const auto res2 = cr::node_multiple_resource(alice.default_node_id(), 2);
    CHECK(error_of(f.put(
              alice,
              store_req(res2, {kind_data(k_multiple, {make_value(alice, res2, k_multiple,
                                                                 single("t"), f.ms())})}))) == 0);
    const auto res4 = cr::node_multiple_resource(alice.default_node_id(), 4);  // above max 3
    CHECK(error_of(f.put(alice, store_req(res4, {kind_data(k_multiple,
                                                           {make_value(alice, res4, k_multiple,
                                                                       single("t"), f.ms())})}))) ==
          forbidden);
  }
  SUBCASE("generic kind: any resource, own key only") {
    const auto res = rid("00112233445566778899aabbccddeeff");
    CHECK(error_of(f.put(
              alice, store_req(res, {kind_data(k_generic, {make_value(alice, res, k_generic,
                                                                      dict(node_key(alice), "x"),
                                                                      f.ms())})}))) == 0);
    CHECK(error_of(f.put(
              bob, store_req(res, {kind_data(k_generic, {make_value(bob, res, k_generic,
                                                                    dict(node_key(alice), "x"),
                                                                    f.ms(1s))})}))) == forbidden);
    CHECK(error_of(
              f.put(bob, store_req(res, {kind_data(k_generic, {make_value(bob, res, k_generic,
                                                                          dict(node_key(bob), "y"),
                                                                          f.ms(1s))})}))) == 0);
    CHECK(f.store->counts().values == 2);
  }
  SUBCASE("unsigned and tampered values") {
    const auto res = user_resource(alice);
    pr::stored_data unsigned_value;
    unsigned_value.storage_time = f.ms();
    unsigned_value.lifetime = 60;
    unsigned_value.value = single("u");
    CHECK(error_of(f.put(alice, store_req(res, {kind_data(k_single, {unsigned_value})}))) ==
          forbidden);
    auto tampered = make_value(alice, res, k_single, single("good"), f.ms());
    std::get<pr::data_value>(tampered.value).value = b("evil");
    CHECK(error_of(f.put(alice, store_req(res, {kind_data(k_single, {tampered})}))) == forbidden);
    // signed for another resource
    const auto other = make_value(alice, user_resource(bob), k_single, single("x"), f.ms());
    CHECK(error_of(f.put(alice, store_req(res, {kind_data(k_single, {other})}))) == forbidden);
  }
  SUBCASE("a value signed by someone whose certificate is not in the request") {
    // Replica carrying carol's value, sent by bob without carol's certificate: signer unknown.
    const auto& carol = f.p.carol;
    const auto res = user_resource(carol);
    const auto v = make_value(carol, res, k_single, single("c"), f.ms());
    CHECK(error_of(f.put(bob, store_req(res, {kind_data(k_single, {v}, 5)}, 1))) == forbidden);
    // With the certificate of the security block it is accepted.
    const pr::generic_certificate cert = carol.cert().generic();
    CHECK(error_of(f.store->store(store_req(res, {kind_data(k_single, {v}, 5)}, 1), signer_of(bob),
                                  std::span(&cert, 1), f.t0)) == 0);
  }
  if (f.store->counts().values == 0) CHECK(f.store->counts().bytes == 0);
}

TEST_CASE("this node's own Store: its own value signatures taken, everything else verified") {
  // RFC 6940 7.4.1.1: every value must verify. A StoreReq this node sent itself and delivered
  // here (from_this_process) may carry a value whose signature this process just made (noted in
  // the trust store): that one is taken without verifying it again. The same value from another
  // node, and any altered value, are verified as always.
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  const auto forbidden = code(pr::reload_errc::forbidden);
  const pr::generic_certificate cert = alice.cert().generic();
  auto own_value = [&](std::string_view text, std::chrono::milliseconds at) {
    pr::stored_data sd;
    sd.storage_time = f.ms(at);
    sd.lifetime = 600;
    sd.value = single(text);
    REQUIRE(cr::sign_stored_data(sd, res, k_single, alice, alice.default_node_id(), &f.trust));
    return sd;
  };
  auto put = [&](const pr::stored_data& v, bool from_this_process) {
    return f.store->store(store_req(res, {kind_data(k_single, {v})}), signer_of(alice),
                          std::span(&cert, 1), f.t0 + 2s, from_this_process);
  };
  auto taken = [&] { return f.trust.stats().own_signatures_taken; };

  CHECK(error_of(put(own_value("one", 0ms), true)) == 0);
  CHECK(taken() == 1);
  // From another node: verified (and accepted, it is good), the note left alone.
  CHECK(error_of(put(own_value("two", 1ms), false)) == 0);
  CHECK(taken() == 1);
  // Altered after signing: refused, whether or not it claims to come from this process.
  auto tampered = own_value("good", 2ms);
  std::get<pr::data_value>(tampered.value).value = b("evil");
  CHECK(error_of(put(tampered, true)) == forbidden);
  CHECK(error_of(put(tampered, false)) == forbidden);
  auto moved = own_value("time", 3ms);
  moved.storage_time += 1;
  CHECK(error_of(put(moved, true)) == forbidden);
  CHECK(taken() == 1);
  CHECK(f.get(fetch_req(res, {spec(k_single)}), 2s).kind_responses.at(0).values.at(0).value ==
        single("two"));
}

TEST_CASE("replica values: signatures verified before first use, forged ones never served") {
  // RFC 6940 7.4.1.1 lists the value-signature check among a Store's checks. A replica holder
  // checks the signer's certificate, chain and access at once and verifies the signature value
  // the first time the value is used: a Fetch, Stat, export_range, or a Store it would decide
  // (docs/conformance.md). A value forged by the (plausible) replica sender is quarantined then
  // and never answered nor handed on.
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto& bob = f.p.bob;  // the responsible peer sending replicas
  const auto res = user_resource(alice);
  auto value_at = [&](std::string_view text, std::chrono::milliseconds at) {
    return make_value(alice, res, k_array, entry(0, text), f.ms(at));
  };
  auto forged_at = [&](std::string_view text, std::chrono::milliseconds at) {
    auto v = value_at("good", at);
    std::get<pr::array_entry>(v.value).value.value = b(text);
    return v;
  };
  // The replica StoreReq's certificate bucket carries the writers' certificates.
  const std::vector<pr::generic_certificate> bucket{alice.cert().generic(),
                                                    f.p.carol.cert().generic()};
  auto replica = [&](pr::stored_data v, std::uint64_t generation = 5) {
    return f.store->store(store_req(res, {kind_data(k_array, {std::move(v)}, generation)}, 1),
                          signer_of(bob), bucket, f.t0);
  };
  auto verified = [&] { return f.store->counts().signatures_verified; };
  auto deferred = [&] { return f.store->counts().signatures_deferred; };
  auto served = [&](std::chrono::milliseconds at) {
    return f.get(fetch_req(res, {array_spec(k_array, {{0, 0}})}), at).kind_responses.at(0).values;
  };

  SUBCASE("a good replica: no verification at the Store, one at the first Fetch, none after") {
    CHECK(error_of(replica(value_at("one", 0ms))) == 0);
    CHECK(verified() == 0);
    CHECK(deferred() == 1);
    CHECK(served(1ms).size() == 1);
    CHECK(verified() == 1);
    CHECK(served(2ms).size() == 1);
    CHECK(verified() == 1);
    CHECK(f.store->counts().quarantined == 0);
  }
  SUBCASE("a newer replica replaces an unverified one without verifying it") {
    CHECK(error_of(replica(value_at("one", 0ms))) == 0);
    CHECK(error_of(replica(value_at("two", 1s), 6)) == 0);
    CHECK(verified() == 0);
    CHECK(deferred() == 2);
    const auto got = served(2s);
    REQUIRE(got.size() == 1);
    CHECK(got[0].value == entry(0, "two"));
    CHECK(verified() == 1);
  }
  SUBCASE("a forged replica is quarantined at first use, never served, never handed on") {
    CHECK(error_of(replica(forged_at("evil", 0ms))) == 0);
    CHECK(f.store->counts().values == 1);
    SUBCASE("fetch") {
      const auto got = served(1ms);
      CHECK((got.empty() || !std::get<pr::array_entry>(got[0].value).value.exists));
    }
    SUBCASE("export_range") {
      const auto reqs = f.store->export_range(*res.as_ring_point(), *res.as_ring_point(), f.t0);
      for (const auto& r : reqs) {
        for (const auto& kd : r.kind_data) CHECK(kd.values.empty());
      }
    }
    SUBCASE("find") {
      pr::find_req fr;
      fr.resource = res;
      fr.kinds = {k_array};
      const auto body = f.store->find(fr, *res.as_ring_point(), *res.as_ring_point(), f.t0);
      REQUIRE(std::holds_alternative<pr::find_ans>(body));
      const auto& found = std::get<pr::find_ans>(body).results.at(0).closest;
      CHECK(std::all_of(found.value.begin(), found.value.end(), [](auto b) { return b == 0; }));
    }
    CHECK(f.store->counts().quarantined == 1);
    CHECK(f.store->counts().values == 0);
    CHECK(f.store->take_quarantined().size() == 1);  // the overlay fetches a good copy
  }
  SUBCASE("an unverified value that would decide a Store is verified first") {
    // Forged with a later storage_time: left unverified it would make the replica holder pass
    // over the good copy (older) as merged; verified, it is quarantined and the good one taken.
    CHECK(error_of(replica(forged_at("evil", 5s))) == 0);
    CHECK(error_of(replica(value_at("good", 1s), 6)) == 0);
    CHECK(f.store->counts().quarantined == 1);
    const auto got = served(6s);
    REQUIRE(got.size() == 1);
    CHECK(got[0].value == entry(0, "good"));
  }
  SUBCASE("an original Store verifies what it finds unverified before deciding") {
    CHECK(error_of(replica(forged_at("evil", 5s))) == 0);
    CHECK(error_of(f.put(alice, store_req(res, {kind_data(k_array, {value_at("mine", 1s)})}))) ==
          0);
    CHECK(f.store->counts().quarantined == 1);
  }
  SUBCASE("the signer's certificate and access are still checked at the replica Store") {
    // Signed (correctly) by carol for alice's resource: USER-MATCH refuses it at once.
    auto foreign = make_value(f.p.carol, res, k_array, entry(0, "carol"), f.ms());
    CHECK(error_of(replica(foreign)) == code(pr::reload_errc::forbidden));
    // Unsigned, or a signer nobody can find: refused at once too.
    auto unsigned_value = value_at("x", 0ms);
    unsigned_value.signature = pr::signature{};
    CHECK(error_of(replica(unsigned_value)) == code(pr::reload_errc::forbidden));
    CHECK(f.store->counts().values == 0);
  }
  SUBCASE("the same value brought again is not verified again") {
    const auto v = value_at("one", 0ms);
    CHECK(error_of(f.put(alice, store_req(res, {kind_data(k_array, {v})}))) == 0);
    CHECK(verified() == 1);
    CHECK(error_of(replica(v)) == 0);
    CHECK(error_of(f.put(alice, store_req(res, {kind_data(k_array, {v})}))) == 0);
    CHECK(verified() == 1);
    CHECK(deferred() == 0);
  }
}

TEST_CASE("a value whose signing certificate has expired is refused") {
  store_fixture f;
  auto spec_ = tp::spec_for({tp::test_node(9)}, "old@example.org");
  spec_.not_before = tp::test_now() - 48h;
  spec_.not_after = tp::test_now() - 1h;
  const auto old = tp::make_identity(f.p.ca, spec_);
  const auto res = user_resource(old);
  CHECK(error_of(
            f.put(old, store_req(res, {kind_data(k_single, {make_value(old, res, k_single,
                                                                       single("a"), f.ms())})}))) ==
        code(pr::reload_errc::forbidden));
}

TEST_CASE("unknown kinds are all listed and nothing is stored") {
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  auto body = f.put(
      alice,
      store_req(res, {kind_data(k_single, {make_value(alice, res, k_single, single("a"), f.ms())}),
                      kind_data(0x77, {}), kind_data(0x78, {})}));
  REQUIRE(error_of(body) == code(pr::reload_errc::unknown_kind));
  auto kinds = pr::decode_unknown_kinds(std::get<pr::error_response>(body).error_info);
  REQUIRE(kinds.has_value());
  CHECK(*kinds == std::vector<std::uint32_t>{0x77, 0x78});
  CHECK(f.store->counts().values == 0);

  auto fetched = f.store->fetch(fetch_req(res, {spec(0x99)}), f.t0);
  CHECK(error_of(fetched) == code(pr::reload_errc::unknown_kind));
}

TEST_CASE("generation counters: originals must match, replicas overwrite") {
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  const auto v = [&](int i) {
    return make_value(alice, res, k_array, entry(static_cast<std::uint32_t>(i), "v"),
                      f.ms(std::chrono::seconds(i)));
  };
  CHECK(answered_generation(f.put(alice, store_req(res, {kind_data(k_array, {v(0)})}))) == 1);
  CHECK(answered_generation(f.put(alice, store_req(res, {kind_data(k_array, {v(1)}, 1)}))) == 2);

  SUBCASE("a stale counter is refused with the correct one in a StoreAns") {
    auto body = f.put(alice, store_req(res, {kind_data(k_array, {v(2)}, 1)}));
    REQUIRE(error_of(body) == code(pr::reload_errc::generation_counter_too_low));
    auto info =
        pr::decode_body(pr::codes::store_ans, std::get<pr::error_response>(body).error_info, {});
    REQUIRE(info.has_value());
    const auto& ans = std::get<pr::store_ans>(*info);
    REQUIRE(ans.kind_responses.size() == 1);
    CHECK(ans.kind_responses[0].kind == k_array);
    CHECK(ans.kind_responses[0].generation_counter == 2);
    CHECK(ans.kind_responses[0].replicas.empty());
    CHECK(f.store->counts().values == 2);
  }
  SUBCASE("a counter ahead of the stored one is refused too (it must equal)") {
    CHECK(error_of(f.put(alice, store_req(res, {kind_data(k_array, {v(2)}, 7)}))) ==
          code(pr::reload_errc::generation_counter_too_low));
  }
  SUBCASE("0 skips the check") {
    CHECK(answered_generation(f.put(alice, store_req(res, {kind_data(k_array, {v(2)}, 0)}))) == 3);
  }
  SUBCASE("replicas set the counter and are not checked") {
    CHECK(answered_generation(
              f.put(f.p.bob, store_req(res, {kind_data(k_array, {v(2)}, 42)}, 1))) == 42);
    CHECK(f.store->generation(res, k_array) == 42);
    CHECK(answered_generation(f.put(f.p.bob, store_req(res, {kind_data(k_array, {v(3)}, 7)}, 2))) ==
          7);
    CHECK(error_of(f.put(f.p.bob, store_req(res, {kind_data(k_array, {v(3)}, 0)}, 1))) ==
          code(pr::reload_errc::invalid_message));
  }
  SUBCASE("a kind without any value answers 0") {
    CHECK(answered_generation(f.put(alice, store_req(res, {kind_data(k_single, {})}))) == 0);
  }
}

TEST_CASE("storage_time must be newer than the value replaced") {
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  const auto v = make_value(alice, res, k_single, single("now"), f.ms(10s));
  CHECK(answered_generation(f.put(alice, store_req(res, {kind_data(k_single, {v})}))) == 1);
  const auto older = make_value(alice, res, k_single, single("old"), f.ms(9s));
  CHECK(error_of(f.put(alice, store_req(res, {kind_data(k_single, {older})}))) ==
        code(pr::reload_errc::data_too_old));
  const auto same_time = make_value(alice, res, k_single, single("other"), f.ms(10s));
  CHECK(error_of(f.put(alice, store_req(res, {kind_data(k_single, {same_time})}))) ==
        code(pr::reload_errc::data_too_old));
  // The very same value again is accepted and changes nothing.
  CHECK(answered_generation(f.put(alice, store_req(res, {kind_data(k_single, {v})}))) == 1);
  const auto newer = make_value(alice, res, k_single, single("new"), f.ms(10s) + 1);
  CHECK(answered_generation(f.put(alice, store_req(res, {kind_data(k_single, {newer})}))) == 2);

  SUBCASE("a replica or hand-over merges: older values are passed over, newer ones taken") {
    // Alice's array: the holder has a newer entry 0; the copy brings an older entry 0 and an
    // entry 1 the holder lacks (two sides of a partition meeting again).
    const auto ares = user_resource(alice);
    const auto e0_new = make_value(alice, ares, k_array, entry(0, "new"), f.ms(20s));
    CHECK(answered_generation(f.put(alice, store_req(ares, {kind_data(k_array, {e0_new})}))) == 1);
    const auto e0_old = make_value(alice, ares, k_array, entry(0, "old"), f.ms(15s));
    const auto e1 = make_value(alice, ares, k_array, entry(1, "only there"), f.ms(16s));
    CHECK(error_of(f.put(alice, store_req(ares, {kind_data(k_array, {e0_old, e1})}))) ==
          code(pr::reload_errc::data_too_old));  // an original Store is all or nothing
    CHECK(answered_generation(
              f.put(f.p.bob, store_req(ares, {kind_data(k_array, {e0_old, e1}, 7)}, 1))) == 7);
    auto got = f.get(fetch_req(ares, {array_spec(k_array, {{0, 1}})}));
    REQUIRE(got.kind_responses[0].values.size() == 2);
    CHECK(got.kind_responses[0].values[0] == e0_new);
    CHECK(got.kind_responses[0].values[1] == e1);
    // A copy older than what we hold does not take the generation counter back.
    CHECK(answered_generation(
              f.put(f.p.bob, store_req(ares, {kind_data(k_array, {e0_old}, 3)}, 1))) == 7);
  }
}

TEST_CASE("max-size and max-count, one over") {
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  const auto too_large = code(pr::reload_errc::data_too_large);
  const std::string fits(max_size, 'x');
  const std::string over(max_size + 1, 'x');
  CHECK(error_of(f.put(
            alice, store_req(res, {kind_data(k_single, {make_value(alice, res, k_single,
                                                                   single(over), f.ms())})}))) ==
        too_large);
  CHECK(error_of(f.put(
            alice, store_req(res, {kind_data(k_single, {make_value(alice, res, k_single,
                                                                   single(fits), f.ms())})}))) ==
        0);

  SUBCASE("array: the length counts (max 4)") {
    CHECK(error_of(f.put(
              alice, store_req(res, {kind_data(k_array, {make_value(alice, res, k_array,
                                                                    entry(4, "x"), f.ms())})}))) ==
          too_large);
    CHECK(error_of(f.put(
              alice, store_req(res, {kind_data(k_array, {make_value(alice, res, k_array,
                                                                    entry(3, "x"), f.ms())})}))) ==
          0);
    CHECK(error_of(f.put(
              alice,
              store_req(res, {kind_data(k_array, {make_value(alice, res, k_array,
                                                             entry(pr::array_append_index, "x"),
                                                             f.ms())})}))) == too_large);
  }
  SUBCASE("dictionary (generic kind, max 4 entries from 5 writers)") {
    const auto any = rid("0f0e0d0c0b0a09080706050403020100");
    // The generic kind keys by Node-ID: make 5 writers.
    std::vector<cr::node_identity> writers{f.p.alice, f.p.bob, f.p.carol};
    writers.push_back(
        tp::make_identity(f.p.ca, tp::spec_for({tp::test_node(4)}, "dave@example.org")));
    writers.push_back(
        tp::make_identity(f.p.ca, tp::spec_for({tp::test_node(5)}, "erin@example.org")));
    for (std::size_t i = 0; i < writers.size(); ++i) {
      const auto& w = writers[i];
      auto body = f.put(
          w, store_req(any, {kind_data(k_generic, {make_value(w, any, k_generic,
                                                              dict(node_key(w), "v"), f.ms())})}));
      CHECK(error_of(body) == (i < 4 ? 0 : too_large));
    }
  }
}

TEST_CASE("a Store is atomic over its kinds") {
  store_fixture f;
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  const auto first = make_value(alice, res, k_single, single("first"), f.ms());
  CHECK(answered_generation(f.put(alice, store_req(res, {kind_data(k_single, {first})}))) == 1);
  const auto counts = f.store->counts();

  const auto good_single = make_value(alice, res, k_single, single("second"), f.ms(1s));
  const auto good_entry = make_value(alice, res, k_array, entry(0, "ok"), f.ms(1s));
  const auto bad_entry =
      make_value(alice, res, k_array, entry(1, std::string(max_size + 1, 'x')), f.ms(1s));
  auto body = f.put(alice, store_req(res, {kind_data(k_single, {good_single}),
                                           kind_data(k_array, {good_entry, bad_entry})}));
  CHECK(error_of(body) == code(pr::reload_errc::data_too_large));
  CHECK(f.store->counts().values == counts.values);
  CHECK(f.store->counts().bytes == counts.bytes);
  CHECK(f.store->generation(res, k_single) == 1);
  CHECK(f.store->generation(res, k_array) == 0);
  auto got = f.get(fetch_req(res, {spec(k_single)}));
  CHECK(got.kind_responses[0].values.at(0).value == first.value);

  // Both kinds in one request succeed together.
  body =
      f.put(alice,
            store_req(res, {kind_data(k_single, {good_single}), kind_data(k_array, {good_entry})}));
  CHECK(answered_generation(body, 0) == 2);
  CHECK(answered_generation(body, 1) == 1);
}

namespace {
/// A backend whose writes fail: a Store must then change nothing and say so.
class failing_backend final : public ps::storage_backend {
 public:
  ps::stored_state load() override { return {}; }
  ps::storage_result<void> apply(const ps::change_set&) override {
    return pr::error_record{ps::make_error_code(ps::storage_errc::write_failed), "test: disk full"};
  }
  std::string describe() const override { return "failing"; }
};
}  // namespace

TEST_CASE("a Store that cannot be made durable is not acknowledged") {
  store_fixture f(std::make_unique<failing_backend>());
  const auto& alice = f.p.alice;
  const auto res = user_resource(alice);
  auto body = f.put(
      alice, store_req(res, {kind_data(k_single,
                                       {make_value(alice, res, k_single, single("a"), f.ms())})}));
  CHECK(error_of(body) == code(pr::reload_errc::request_timeout));
  CHECK(f.store->counts().values == 0);
  CHECK(f.store->last_backend_error().code == ps::storage_errc::write_failed);
}

TEST_CASE("kind rules from the configuration") {
  config::overlay_config cfg;
  cfg.kinds = config::standard_kinds();
  const auto rules = ps::kind_rules_of(cfg);
  REQUIRE(rules.size() == cfg.kinds.size());
  for (const auto& r : rules) {
    if (r.kind == pr::kinds::sip_registration) {
      CHECK(r.model == pr::data_model::dictionary);
      CHECK(r.policy == cr::access_policy::user_node_match);
    }
    if (r.kind == pr::kinds::p2psip_generic) CHECK(r.policy == cr::access_policy::node_key);
    if (r.kind == pr::kinds::certificate_by_node) {
      CHECK(r.model == pr::data_model::array);
      CHECK(r.policy == cr::access_policy::node_match);
    }
    CHECK(r.max_count > 0);
    CHECK(r.max_size > 0);
  }
}

}  // namespace p2psip::peer_storage_test

namespace p2psip::peer_storage_test {

TEST_CASE("the standard kinds: certificates by node and user, a SIP registration") {
  config::overlay_config cfg;
  cfg.kinds = config::standard_kinds();
  cr::trust_store trust{tp::example_overlay()};
  const auto& p = pki::get();
  REQUIRE(trust.add_root(p.ca.der()).has_value());
  ps::data_store store(ps::make_memory_backend(), ps::kind_rules_of(cfg), trust);
  const auto now = tp::test_now();
  const auto t = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  const auto& alice = p.alice;
  const pr::bytes der = alice.cert().der();

  const auto by_node = pr::certificate_by_node_resource(alice.default_node_id());
  auto v = make_value(alice, by_node, pr::kinds::certificate_by_node,
                      pr::array_entry{pr::array_append_index, {true, der}}, t);
  CHECK(error_of(store.store(store_req(by_node, {kind_data(pr::kinds::certificate_by_node, {v})}),
                             signer_of(alice), now)) == 0);
  const auto by_user = user_resource(alice);
  v = make_value(alice, by_user, pr::kinds::certificate_by_user,
                 pr::array_entry{pr::array_append_index, {true, der}}, t);
  // A SIP-REGISTRATION value must be a SipRegistration (RFC 7904 3.2): a route through Alice's
  // own Node-ID is; the bytes "sip:alice@..." are not.
  pr::sip_registration route;
  route.type = pr::sip_registration_type::route;
  route.destination_list = {pr::to_destination(alice.default_node_id())};
  const auto route_bytes = pr::encode_sip_registration(route);
  REQUIRE(route_bytes.has_value());
  auto bad = make_value(alice, by_user, pr::kinds::sip_registration,
                        dict(node_key(alice), "sip:alice@example.org"), t);
  CHECK(error_of(store.store(store_req(by_user, {kind_data(pr::kinds::sip_registration, {bad})}),
                             signer_of(alice), now)) == code(pr::reload_errc::invalid_message));
  auto reg = make_value(alice, by_user, pr::kinds::sip_registration,
                        pr::dictionary_entry{node_key(alice), {true, *route_bytes}}, t);
  auto body = store.store(store_req(by_user, {kind_data(pr::kinds::certificate_by_user, {v}),
                                              kind_data(pr::kinds::sip_registration, {reg})}),
                          signer_of(alice), now);
  CHECK(answered_generation(body, 0) == 1);
  CHECK(answered_generation(body, 1) == 1);
  // Bob may not put his certificate under alice's Node-ID.
  v = make_value(p.bob, by_node, pr::kinds::certificate_by_node,
                 pr::array_entry{pr::array_append_index, {true, p.bob.cert().der()}}, t);
  CHECK(error_of(store.store(store_req(by_node, {kind_data(pr::kinds::certificate_by_node, {v})}),
                             signer_of(p.bob), now)) == code(pr::reload_errc::forbidden));
  CHECK(store.counts().values == 3);
  CHECK(store.counts().resources == 2);
}

TEST_CASE("export_range splits a large resource over several StoreReqs") {
  store_fixture f;
  const auto res = rid("30000000000000000000000000000000");
  std::vector<cr::node_identity> writers{f.p.alice, f.p.bob, f.p.carol};
  for (const auto& w : writers) {
    CHECK(error_of(f.put(w, store_req(res, {kind_data(k_generic, {make_value(w, res, k_generic,
                                                                             dict(node_key(w), "v"),
                                                                             f.ms())})}))) == 0);
  }
  const std::size_t all_but_one = f.store->counts().bytes - 1;
  auto reqs = f.store->export_range(nid(std::string(32, '0')), nid(std::string(32, '0')), f.t0,
                                    all_but_one);
  REQUIRE(reqs.size() == 2);
  CHECK(reqs[0].kind_data.at(0).values.size() == 2);
  CHECK(reqs[1].kind_data.at(0).values.size() == 1);
  CHECK(reqs[1].kind_data.at(0).generation_counter == 3);
  // Even a limit below one value gives one value per request.
  CHECK(
      f.store->export_range(nid(std::string(32, '0')), nid(std::string(32, '0')), f.t0, 1).size() ==
      3);
  CHECK(f.store->export_range(nid(std::string(32, '0')), nid(std::string(32, '0')), f.t0).size() ==
        1);
}

}  // namespace p2psip::peer_storage_test
