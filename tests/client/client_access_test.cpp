// Access control seen through the SDK, and bad input refused with the documented errors.
#include <doctest/doctest.h>

#include <fstream>

#include "client_fixture.hpp"

using namespace p2psip;
using namespace std::chrono_literals;
using client::item;
using client::to_bytes;
using client::to_string;
using test::awaited;
using test::why;

namespace {

item keyed(const std::string& node_hex, std::string_view value) {
  item it;
  it.key = test::from_hex(node_hex);
  it.value = to_bytes(value);
  return it;
}

}  // namespace

TEST_CASE("client access: bob cannot overwrite or remove alice's entries") {
  test::overlay_fixture f(2);
  auto alice = f.attach("alice", 0);
  auto bob = f.attach("bob", 1);
  auto put = alice->put("alice's", to_bytes("mine"));
  REQUIRE_MESSAGE(put.has_value(), why(put));

  // put always writes bob's own entry; store() lets bob name alice's key.
  auto overwrite = bob->store("alice's", test::generic_kind, {keyed(alice->node_id(), "bob's")});
  REQUIRE_FALSE(overwrite.has_value());
  CHECK(overwrite.code() == client::errc::forbidden);
  awaited<std::uint64_t> overwrite_async;
  bob->store_async("alice's", test::generic_kind, {keyed(alice->node_id(), "bob's")}, {},
                   overwrite_async.callback());
  CHECK(overwrite_async.get().code() == client::errc::forbidden);
  auto removed = bob->remove_items("alice's", test::generic_kind, {keyed(alice->node_id(), "")});
  REQUIRE_FALSE(removed.has_value());
  CHECK(removed.code() == client::errc::forbidden);
  awaited<std::uint64_t> removed_async;
  bob->remove_items_async("alice's", test::generic_kind, {keyed(alice->node_id(), "")}, {},
                          removed_async.callback());
  CHECK(removed_async.get().code() == client::errc::forbidden);

  // USER-MATCH and NODE-MULTIPLE: bob cannot write at alice's user name or Node-ID either.
  item v;
  v.value = to_bytes("bob was here");
  auto single = bob->store(test::node_multiple_name(alice->node_id(), 1), test::single_kind, {v});
  CHECK(single.code() == client::errc::forbidden);
  item e;
  e.index = 0;
  e.value = to_bytes("bob was here");
  auto array = bob->store(test::user_of("alice"), test::certificate_by_user_kind, {e});
  CHECK(array.code() == client::errc::forbidden);

  // bob's own entry is his to write; alice's is intact.
  put = bob->put("alice's", to_bytes("bob's own"));
  REQUIRE_MESSAGE(put.has_value(), why(put));
  auto got = alice->get("alice's");
  REQUIRE_MESSAGE(got.has_value(), why(got));
  REQUIRE(got->size() == 2);
  for (const auto& o : *got) {
    if (o.owner_node_id == alice->node_id()) CHECK(to_string(o.value) == "mine");
    if (o.owner_node_id == bob->node_id()) CHECK(to_string(o.value) == "bob's own");
  }
}

TEST_CASE("client input: bad configuration, credentials, kinds, counts and sizes") {
  test::overlay_fixture f(0);
  const auto nowhere = test::closed_port_address();

  SUBCASE("another overlay's name") {
    auto o = f.options("alice", {nowhere});
    o.overlay = "other.p2psip.example";
    auto c = client::client::create(o);
    REQUIRE_FALSE(c.has_value());
    CHECK(c.code() == client::errc::bad_configuration);
    o.overlay = test::overlay_name();
    CHECK(client::client::create(o).has_value());
  }
  SUBCASE("an unreadable or garbage configuration") {
    auto o = f.options("alice", {nowhere});
    o.config_file = (f.overlay.dir() / "missing.xml").string();
    CHECK(client::client::create(o).code() == client::errc::bad_configuration);
    const auto garbage = f.overlay.dir() / "garbage.xml";
    std::ofstream(garbage) << "<overlay>";
    o.config_file = garbage.string();
    CHECK(client::client::create(o).code() == client::errc::bad_configuration);
  }
  SUBCASE("unreadable or foreign credentials") {
    auto o = f.options("alice", {nowhere});
    o.certificate_file = (f.overlay.dir() / "missing.crt").string();
    CHECK(client::client::create(o).code() == client::errc::bad_credentials);
    o = f.options("alice", {nowhere});
    o.key_file = f.overlay.cert_of("alice").string();  // not a key
    CHECK(client::client::create(o).code() == client::errc::bad_credentials);
    o = f.options("alice", {nowhere});
    o.key_file = f.options("bob", {nowhere}).key_file;  // another user's key
    CHECK(client::client::create(o).code() == client::errc::bad_credentials);
  }
  SUBCASE("bad options") {
    auto o = f.options("alice", {"not an address"});
    CHECK(client::client::create(o).code() == client::errc::invalid_argument);
    // Host names are resolved at create (getaddrinfo): a bad port is a usage error, a name that
    // does not resolve (.invalid never does, RFC 6761) a network one; both name the entry.
    for (const char* bad_port : {"localhost:0", "localhost:65536", "localhost:", "localhost:x"}) {
      o = f.options("alice", {bad_port});
      const auto made = client::client::create(o);
      CHECK(made.code() == client::errc::invalid_argument);
      CHECK(made.error().message.find(bad_port) != std::string::npos);
    }
    o = f.options("alice", {"no-such-host.invalid:6084"});
    const auto unresolved = client::client::create(o);
    CHECK(unresolved.code() == client::errc::no_peer);
    CHECK(unresolved.error().message.find("no-such-host.invalid") != std::string::npos);
    o = f.options("alice", {"localhost:6084"});
    CHECK(client::client::create(o).has_value());
    o = f.options("alice", {nowhere});
    o.operation_timeout = 0ms;
    CHECK(client::client::create(o).code() == client::errc::invalid_argument);
    o = f.options("alice", {nowhere});
    o.config_file.clear();
    CHECK(client::client::create(o).code() == client::errc::invalid_argument);
    // No peers given and none in the configuration.
    o = f.options("alice", std::vector<std::string>{});
    CHECK(client::client::create(o).code() == client::errc::invalid_argument);
  }
  SUBCASE("operations refused before anything is sent") {
    // Checked on the client: no peer is needed for these answers.
    auto c = client::client::create(f.options("alice", {nowhere}));
    REQUIRE_MESSAGE(c.has_value(), why(c));
    auto& alice = **c;
    const auto res = test::user_of("alice");
    item v;
    v.value = to_bytes("v");
    CHECK_FALSE(alice.model_of(12345).has_value());
    CHECK(alice.store(res, 12345, {v}).code() == client::errc::unknown_kind);
    CHECK(alice.remove_items(res, 12345, {v}).code() == client::errc::unknown_kind);
    CHECK(alice.fetch(res, 12345).code() == client::errc::unknown_kind);
    CHECK(alice.stat(res, 12345).code() == client::errc::unknown_kind);
    CHECK(alice.find(res, 12345).code() == client::errc::unknown_kind);
    awaited<client::kind_data> fetched;
    alice.fetch_async(res, 12345, client::selection::all(), fetched.callback());
    CHECK(fetched.get(5s).code() == client::errc::unknown_kind);
    awaited<std::uint64_t> stored;
    alice.store_async(res, 12345, {v}, {}, stored.callback());
    CHECK(stored.get(5s).code() == client::errc::unknown_kind);
    awaited<std::optional<std::string>> found;
    alice.find_async(res, 12345, found.callback());
    CHECK(found.get(5s).code() == client::errc::unknown_kind);

    CHECK(alice.store(res, test::single_kind, {v, v}).code() == client::errc::invalid_argument);
    CHECK(alice.store(res, test::single_kind, {}).code() == client::errc::invalid_argument);
    awaited<std::uint64_t> two;
    alice.store_async(res, test::single_kind, {v, v}, {}, two.callback());
    CHECK(two.get(5s).code() == client::errc::invalid_argument);

    item big;
    big.value.assign(test::single_max_size + 1, 'x');
    CHECK(alice.store(res, test::single_kind, {big}).code() == client::errc::too_large);
    CHECK(alice.put("big", client::bytes(test::generic_max_size + 1, 'x')).code() ==
          client::errc::too_large);
    awaited<void> big_put;
    alice.put_async("big", client::bytes(test::generic_max_size + 1, 'x'), 60, big_put.callback());
    CHECK(big_put.get(5s).code() == client::errc::too_large);
  }
}
