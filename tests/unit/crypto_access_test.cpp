// Access control policies (RFC 6940 section 7.3) and p2psip's generic kind: each allowed and
// refused.

#include <doctest/doctest.h>

#include "p2psip/crypto/access.hpp"
#include "test_pki.hpp"

namespace cr = p2psip::crypto;
namespace pr = p2psip::protocol;
using namespace p2psip::test_pki;
using namespace std::chrono_literals;

namespace {

const test_ca& overlay_ca() {
  static const test_ca ca("example.org overlay CA");
  return ca;
}

/// A verified signer as verification would return it (the policies take verified signers).
cr::verified_signer signer(std::vector<pr::node_id> nodes, const std::string& user,
                           std::size_t which = 0) {
  const pr::node_id node = nodes.at(which);
  const pr::bytes der = overlay_ca().certify(*cr::generate_private_key(cr::key_type::ed25519),
                                             spec_for(std::move(nodes), user));
  return cr::verified_signer{*cr::certificate::parse(der, example_overlay()), node};
}

pr::stored_data_value single(pr::bytes v = {1}) {
  return pr::data_value{true, std::move(v)};
}
pr::stored_data_value entry(const pr::node_id& key, bool exists = true) {
  return pr::dictionary_entry{pr::to_bytes(key.view()), {exists, {7}}};
}

bool allowed(cr::access_policy p, const cr::verified_signer& s, const pr::resource_id& r,
             const pr::stored_data_value& v, std::uint32_t max = 0) {
  const auto res = cr::check_access(p, s, r, v, max);
  if (!res) CHECK(res.error() == pr::reload_errc::forbidden);
  return res.has_value();
}

}  // namespace

TEST_SUITE("crypto access control") {
  TEST_CASE("policy names") {
    for (auto p : {cr::access_policy::user_match, cr::access_policy::node_match,
                   cr::access_policy::user_node_match, cr::access_policy::node_multiple,
                   cr::access_policy::node_key}) {
      CHECK(cr::parse_access_policy(cr::access_policy_name(p)) == p);
    }
    CHECK(cr::access_policy_name(cr::access_policy::node_key) == "P2PSIP-GENERIC");
    CHECK(cr::parse_access_policy("USER-NODE-MATCH") == cr::access_policy::user_node_match);
    CHECK_FALSE(cr::parse_access_policy("user-match"));
    CHECK_FALSE(cr::parse_access_policy("NODE-ID-MATCH"));
    CHECK(cr::registered_kind_policy(pr::kinds::sip_registration) ==
          cr::access_policy::user_node_match);
    CHECK(cr::registered_kind_policy(pr::kinds::turn_service) == cr::access_policy::node_multiple);
    CHECK(cr::registered_kind_policy(pr::kinds::certificate_by_node) ==
          cr::access_policy::node_match);
    CHECK(cr::registered_kind_policy(pr::kinds::certificate_by_user) ==
          cr::access_policy::user_match);
    CHECK(cr::registered_kind_policy(pr::kinds::p2psip_generic) == cr::access_policy::node_key);
    CHECK_FALSE(cr::registered_kind_policy(0xF0000001));
  }

  TEST_CASE("USER-MATCH: H(user name) is the Resource-ID") {
    const auto alice = signer({test_node(1)}, "alice@example.org");
    const auto nameless = signer({test_node(2)}, "");
    const auto own = pr::hash_resource_name("alice@example.org");
    CHECK(allowed(cr::access_policy::user_match, alice, own, single()));
    CHECK_FALSE(allowed(cr::access_policy::user_match, alice,
                        pr::hash_resource_name("bob@example.org"), single()));
    CHECK_FALSE(
        allowed(cr::access_policy::user_match, nameless, pr::hash_resource_name(""), single()));
  }

  TEST_CASE("NODE-MATCH: H(signing Node-ID) is the Resource-ID") {
    const auto s = signer({test_node(3), test_node(4)}, "alice@example.org", 1);
    CHECK(allowed(cr::access_policy::node_match, s, pr::hash_resource_name(test_node(4).view()),
                  single()));
    // The certificate's other Node-ID is not the one the SignerIdentity named.
    CHECK_FALSE(allowed(cr::access_policy::node_match, s,
                        pr::hash_resource_name(test_node(3).view()), single()));
    CHECK_FALSE(allowed(cr::access_policy::node_match, s,
                        pr::hash_resource_name("alice@example.org"), single()));
  }

  TEST_CASE("USER-NODE-MATCH: user's resource and the signer's own dictionary key") {
    const auto alice = signer({test_node(5)}, "alice@example.org");
    const auto aor = pr::hash_resource_name("alice@example.org");
    CHECK(allowed(cr::access_policy::user_node_match, alice, aor, entry(test_node(5))));
    CHECK(allowed(cr::access_policy::user_node_match, alice, aor, entry(test_node(5), false)));
    CHECK_FALSE(allowed(cr::access_policy::user_node_match, alice, aor, entry(test_node(6))));
    CHECK_FALSE(allowed(cr::access_policy::user_node_match, alice,
                        pr::hash_resource_name("bob@example.org"), entry(test_node(5))));
    CHECK_FALSE(allowed(cr::access_policy::user_node_match, alice, aor, single()));
  }

  TEST_CASE("NODE-MULTIPLE: H(Node-ID || uint32 i) for 1 <= i <= max") {
    const auto s = signer({test_node(7)}, "alice@example.org");
    // Our reading of the encoding of i: 4 bytes, big-endian.
    pr::bytes name = pr::to_bytes(test_node(7).view());
    name.insert(name.end(), {0, 0, 0, 3});
    CHECK(cr::node_multiple_resource(test_node(7), 3) ==
          pr::hash_resource_name(pr::byte_view(name)));

    CHECK(allowed(cr::access_policy::node_multiple, s, cr::node_multiple_resource(test_node(7), 1),
                  single(), 5));
    CHECK(allowed(cr::access_policy::node_multiple, s, cr::node_multiple_resource(test_node(7), 5),
                  single(), 5));
    CHECK_FALSE(allowed(cr::access_policy::node_multiple, s,
                        cr::node_multiple_resource(test_node(7), 6), single(), 5));
    CHECK_FALSE(allowed(cr::access_policy::node_multiple, s,
                        cr::node_multiple_resource(test_node(7), 0), single(), 5));
    CHECK_FALSE(allowed(cr::access_policy::node_multiple, s,
                        cr::node_multiple_resource(test_node(8), 1), single(), 5));
    CHECK_FALSE(allowed(cr::access_policy::node_multiple, s,
                        cr::node_multiple_resource(test_node(7), 1), single(), 0));
  }

  TEST_CASE("generic kind: any resource, each writer only its own entry") {
    const auto alice = signer({test_node(9)}, "alice@example.org");
    const auto bob = signer({test_node(10)}, "bob@example.org");
    const auto any = pr::hash_resource_name("shared/whiteboard");
    CHECK(allowed(cr::access_policy::node_key, alice, any, entry(test_node(9))));
    CHECK(allowed(cr::access_policy::node_key, bob, any, entry(test_node(10))));
    CHECK(allowed(cr::access_policy::node_key, alice, pr::hash_resource_name("x"),
                  entry(test_node(9))));
    // Writing or deleting another writer's entry is refused.
    CHECK_FALSE(allowed(cr::access_policy::node_key, bob, any, entry(test_node(9))));
    CHECK_FALSE(allowed(cr::access_policy::node_key, bob, any, entry(test_node(9), false)));
    // Only dictionary entries.
    CHECK_FALSE(allowed(cr::access_policy::node_key, alice, any, single()));
    CHECK_FALSE(allowed(cr::access_policy::node_key, alice, any, pr::array_entry{0, {true, {1}}}));
  }
}
