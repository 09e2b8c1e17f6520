// The node layer through real peer processes: AppAttach between two clients attached to
// different peers (a test usage echoing bytes over a TLS byte stream), and the RFC 6940 rules a
// client written elsewhere from the RFC found missing: configuration_sequence and ConfigUpdate
// (6.3.2.1, 6.5.4), oversized messages (6.6), replica Stores from non-peers (7.4.1.1), duplicate
// links.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include "p2psip/node/app_attach.hpp"
#include "p2psip/node/client_node.hpp"
#include "p2psip/node/crypto_signer.hpp"
#include "p2psip/node/node_driver.hpp"
#include "p2psip/node/node_setup.hpp"
#include "p2psip/protocol/framing.hpp"
#include "process_overlay.hpp"
#include "raw_link.hpp"

using namespace std::chrono_literals;
namespace pr = p2psip::protocol;
namespace nd = p2psip::node;
using p2psip::test::process_overlay;
using p2psip::test::raw_link;

namespace {

constexpr std::uint16_t kEchoApplication = 5061;

/// A client-role node (client_node on node_driver) serving the echo application: every
/// connection it accepts for it sends back what it receives.
struct echo_node {
  nd::node_setup setup;
  nd::crypto_signer signer;
  nd::system_random rng;
  nd::client_node* node = nullptr;
  std::unique_ptr<nd::node_driver> driver;
  /// Connections this node opened (AppAttach answered), by token.
  std::map<std::uint64_t, nd::app_connection> opened;

  echo_node(asio::io_context& io, process_overlay& o, const std::string& user,
            const std::string& peer_address)
      : setup(raw_link::load(o, user)),
        signer(setup.creds.signing, setup.creds.signing.default_node_id(), *setup.trust) {
    nd::client_config cc;
    cc.transport = setup.transport();
    cc.bootstrap = {*pr::ip_address_port::parse(peer_address)};
    nd::driver_config dc;
    dc.link.limits = cc.transport.limits;
    dc.make_node = [this, cc](std::uint16_t) {
      auto made = std::make_unique<nd::client_node>(cc, signer, rng);
      node = made.get();
      return made;
    };
    nd::application_endpoint echo;
    echo.id = kEchoApplication;
    echo.listen = asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
    echo.connected = [this, &io](nd::app_connection c) {
      if (c.token != 0) {
        opened[c.token] = std::move(c);
        return;
      }
      asio::co_spawn(
          io,
          [s = c.stream]() -> asio::awaitable<void> {
            for (;;) {
              auto got = co_await s->read_some();
              if (!got) co_return;
              auto written = co_await s->async_write(std::move(*got));
              if (!written) co_return;
            }
          },
          asio::detached);
    };
    dc.applications.push_back(std::move(echo));
    driver = std::make_unique<nd::node_driver>(io, std::move(dc), setup.tls);
    REQUIRE(driver->start());
  }
  pr::node_id self() const { return node->self(); }
  std::optional<pr::node_id> home_peer() const {
    for (const auto& [id, c] : node->links().rows()) return c.remote;
    return std::nullopt;
  }
};

/// Runs `io` until `done()` or `limit`.
template <class F>
bool run_until(asio::io_context& io, F done, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < until) {
    io.run_for(20ms);
    if (io.stopped()) io.restart();
  }
  return done();
}

std::uint16_t error_code_of(raw_link& r, const pr::message& m) {
  if (m.contents.code != pr::codes::error) return 0;
  return std::get<pr::error_response>(r.body_of(m)).error_code;
}

std::string file_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("node layer: AppAttach connects two clients on different peers, bytes echo back") {
  process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  o.start_ring(3);
  asio::io_context io;
  echo_node alice(io, o, "alice", o.peers().at(0).address);
  echo_node bob(io, o, "bob", o.peers().at(2).address);
  REQUIRE(run_until(
      io, [&] { return alice.home_peer() && bob.home_peer(); }, 10s));
  REQUIRE(*alice.home_peer() != *bob.home_peer());

  // Bob is reached through the peer he is attached to (RFC 6940 4.2.1): [his peer, bob].
  std::optional<std::string> failure;
  bool answered = false;
  alice.driver->with_node([&](nd::node_engine& n, nd::time_point now) {
    const bool sent = n.app_attach().connect(
        {pr::to_destination(*bob.home_peer()), pr::to_destination(bob.self())}, kEchoApplication, 7,
        [&](std::optional<std::string> error, nd::time_point) {
          answered = true;
          failure = std::move(error);
        },
        now);
    REQUIRE(sent);
  });
  REQUIRE(run_until(
      io, [&] { return answered; }, 15s));
  REQUIRE_MESSAGE(!failure, *failure);
  REQUIRE(run_until(
      io, [&] { return alice.opened.count(7) != 0; }, 10s));
  auto& conn = alice.opened.at(7);
  CHECK(conn.remote == bob.self());
  CHECK(conn.application == kEchoApplication);

  // Echo: a byte stream, no framing: 1 B to 1 MiB pieces, back in order and whole.
  pr::bytes sent;
  for (std::size_t size : {1u, 100u, 5000u, 60000u, 1048576u}) {
    pr::bytes b(size);
    for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + size);
    sent.insert(sent.end(), b.begin(), b.end());
    asio::co_spawn(
        io,
        [s = conn.stream, b = std::move(b)]() mutable -> asio::awaitable<void> {
          (void)co_await s->async_write(std::move(b));
        },
        asio::detached);
  }
  pr::bytes echoed;
  asio::co_spawn(
      io,
      [&, s = conn.stream]() -> asio::awaitable<void> {
        while (echoed.size() < sent.size()) {
          auto got = co_await s->read_some();
          if (!got) co_return;
          echoed.insert(echoed.end(), got->begin(), got->end());
        }
      },
      asio::detached);
  REQUIRE(run_until(
      io, [&] { return echoed.size() >= sent.size(); }, 20s));
  CHECK(echoed == sent);

  // An application nobody serves: Error_Not_Found (6.5.2.2), and no connection.
  answered = false;
  alice.driver->with_node([&](nd::node_engine& n, nd::time_point now) {
    n.app_attach().connect(
        {pr::to_destination(*bob.home_peer()), pr::to_destination(bob.self())}, 5999, 8,
        [&](std::optional<std::string> error, nd::time_point) {
          answered = true;
          failure = std::move(error);
        },
        now);
  });
  REQUIRE(run_until(
      io, [&] { return answered; }, 15s));
  REQUIRE(failure);
  CHECK(failure->find("error 3 ") != std::string::npos);  // Error_Not_Found
  CHECK(alice.opened.count(8) == 0);
}

TEST_CASE("node layer: configuration_sequence is sent, checked, and an older node is updated") {
  process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  o.start_ring(2);
  raw_link r(o, "foreign", 0);
  const auto ours = r.setup.config.sequence;
  REQUIRE(ours >= 1);  // p2psip-admin starts at 1 and counts up
  const auto wildcard = pr::to_destination(pr::node_id::wildcard(r.setup.config.node_id_length));

  // The document's own sequence: answered, and the answer carries the peer's sequence too.
  REQUIRE(r.link->try_send(r.signed_bytes(r.request({wildcard}, pr::ping_req{}, 1))));
  auto a = r.receive_within(10s);
  REQUIRE(a);
  CHECK(a->contents.code == pr::codes::ping_ans);
  CHECK(a->header.configuration_sequence == ours);

  // A newer one than the peer's: Error_Config_Too_New.
  auto newer = r.request({wildcard}, pr::ping_req{}, 2);
  newer.header.configuration_sequence = static_cast<std::uint16_t>(ours + 1);
  REQUIRE(r.link->try_send(r.signed_bytes(newer)));
  a = r.receive_within(10s);
  REQUIRE(a);
  CHECK(error_code_of(r, *a) == static_cast<std::uint16_t>(pr::reload_errc::config_too_new));

  // An older one: Error_Config_Too_Old, then a ConfigUpdate carrying the peer's document.
  auto older = r.request({wildcard}, pr::ping_req{}, 3);
  older.header.configuration_sequence = static_cast<std::uint16_t>(ours - 1);
  REQUIRE(r.link->try_send(r.signed_bytes(older)));
  a = r.receive_within(10s);
  REQUIRE(a);
  CHECK(error_code_of(r, *a) == static_cast<std::uint16_t>(pr::reload_errc::config_too_old));
  auto update = r.receive_within(10s);
  REQUIRE(update);
  REQUIRE(update->contents.code == pr::codes::config_update_req);
  const auto update_body = r.body_of(*update);
  const auto& u = std::get<pr::config_update_req>(update_body);
  CHECK(u.type == pr::config_update_type::config);
  CHECK(std::string(u.config_data.begin(), u.config_data.end()) == file_text(o.config_file()));
  // Our answer to it goes back the way it came.
  pr::message ans = r.request({}, pr::config_update_ans{}, update->header.transaction_id);
  ans.header.destination_list = {
      pr::to_destination(*pr::node_id::from_hex(o.peers().at(0).node_id))};
  for (auto v = update->header.via_list.rbegin(); v != update->header.via_list.rend(); ++v) {
    ans.header.destination_list.push_back(*v);
  }
  (void)r.link->try_send(r.signed_bytes(ans));
}

TEST_CASE("node layer: a newer signed document spreads by ConfigUpdate, a forged one does not") {
  process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  o.start_ring(2);
  // The operator signs a newer document (p2psip-admin add-bootstrap counts the sequence up) in
  // a copy: the running peers still hold the old one.
  const auto old_text = file_text(o.config_file());
  const auto copy = o.dir() / "newer.xml";
  std::filesystem::copy_file(o.config_file(), copy);
  o.run_admin({"add-bootstrap", "127.0.0.1:1", "--config", copy.string(), "--ca-dir",
               (o.dir() / "ca").string()});
  const auto newer_text = file_text(copy);
  REQUIRE(newer_text != old_text);

  raw_link r(o, "operator-tool", 0);
  const auto peer0 = pr::to_destination(*pr::node_id::from_hex(o.peers().at(0).node_id));
  auto send_update = [&](const std::string& text, std::uint64_t txid) {
    pr::config_update_req u;
    u.type = pr::config_update_type::config;
    u.config_data = pr::bytes(text.begin(), text.end());
    REQUIRE(r.link->try_send(r.signed_bytes(r.request({peer0}, u, txid))));
    return r.receive_within(10s);
  };

  // Forged: the newer document with one byte changed inside the signed part.
  auto forged = newer_text;
  const auto at = forged.find("<max-message-size>32768<");
  REQUIRE(at != std::string::npos);
  forged[at + 22] = '9';
  auto a = send_update(forged, 11);
  REQUIRE(a);
  CHECK(error_code_of(r, *a) == static_cast<std::uint16_t>(pr::reload_errc::forbidden));
  CHECK(file_text(o.config_file()) == old_text);

  // The real one: taken, written to the peer's configuration file, and its sequence used.
  a = send_update(newer_text, 12);
  REQUIRE(a);
  CHECK(a->contents.code == pr::codes::config_update_ans);
  CHECK(file_text(o.config_file()) == newer_text);
  REQUIRE(r.link->try_send(r.signed_bytes(r.request({peer0}, pr::ping_req{}, 13))));
  a = r.receive_within(10s);
  REQUIRE(a);
  // Our request still carries the old sequence: the peer now finds it too old.
  CHECK(error_code_of(r, *a) == static_cast<std::uint16_t>(pr::reload_errc::config_too_old));
  CHECK(a->header.configuration_sequence == r.setup.config.sequence + 1);

  // The same document again is not newer: refused.
  auto again = send_update(newer_text, 14);
  while (again && again->contents.code == pr::codes::config_update_req)
    again = r.receive_within(10s);
  REQUIRE(again);
  CHECK(error_code_of(r, *again) == static_cast<std::uint16_t>(pr::reload_errc::config_too_old));
}

TEST_CASE("node layer: setup, ConfigUpdate and listener failures carry codes to branch on") {
  process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  auto setup = raw_link::load(o, "coder");
  const auto missing = o.dir() / "missing.xml";
  auto no_config = nd::load_node_setup(missing, o.cert_of("coder"), o.key_of("coder"));
  REQUIRE_FALSE(no_config);
  CHECK(no_config.error().code == nd::setup_errc::configuration);
  CHECK(no_config.error().message == missing.string() + ": no such file");
  auto no_key = nd::load_node_setup(o.config_file(), o.cert_of("coder"), o.cert_of("coder"));
  REQUIRE_FALSE(no_key);
  CHECK(no_key.error().code == nd::setup_errc::credentials);

  // A ConfigUpdate's document: the config library's codes.
  auto same = setup.check_update(setup.document);
  REQUIRE_FALSE(same);
  CHECK(same.error().code == p2psip::config::config_errc::not_newer);
  const std::string garbage = "<overlay";
  auto bad = setup.take_update(pr::bytes(garbage.begin(), garbage.end()), false);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == p2psip::config::config_errc::malformed);

  // A listener on a port already taken.
  asio::io_context io;
  asio::ip::tcp::acceptor taken(io,
                                asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  nd::driver_config dc;
  dc.listen = taken.local_endpoint();
  nd::node_driver driver(io, std::move(dc), setup.tls);
  auto started = driver.start();
  REQUIRE_FALSE(started);
  CHECK(started.error().code == nd::runtime_errc::listen_failed);
  CHECK(started.error().message.starts_with("cannot listen on 127.0.0.1:"));
}

TEST_CASE(
    "node layer: a message over max-message-size is refused before it is read, then the "
    "link closes") {
  process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  o.start_ring(1);
  raw_link r(o, "big", 0);
  const auto limit = p2psip::config::limits_of(r.setup.config).max_message_size;
  // A Store far above the limit, sent as one frame by a link that allows it.
  pr::store_req st;
  st.resource = pr::hash_resource_name("big", r.setup.config.node_id_length);
  pr::store_kind_data kd;
  kd.kind = pr::kinds::p2psip_generic;
  pr::stored_data d;
  d.value =
      pr::dictionary_entry{pr::to_bytes("k"), pr::data_value{true, pr::bytes(limit + 1000, 7)}};
  kd.values.push_back(d);
  st.kind_data.push_back(kd);
  auto m = r.request({pr::to_destination(st.resource)}, st, 21);
  REQUIRE(p2psip::crypto::sign_message(m, r.setup.creds.signing));
  pr::limits big = p2psip::config::limits_of(r.setup.config);
  big.max_message_size = limit * 4;
  auto bytes = pr::encode_message(m, big);
  REQUIRE(bytes);
  REQUIRE(bytes->size() > limit);
  // Our own link would refuse to send it: a second link whose limits allow it.
  raw_link sender(o, "big2", 0, big);
  REQUIRE(sender.link->try_send(*bytes));
  auto a = sender.receive_within(10s);
  REQUIRE(a);
  CHECK(a->header.transaction_id == 21);
  CHECK(error_code_of(sender, *a) ==
        static_cast<std::uint16_t>(pr::reload_errc::message_too_large));
  CHECK(sender.closes_within(10s));
  // The peer is unharmed.
  REQUIRE(r.link->try_send(r.ping(22)));
  a = r.receive_within(10s);
  REQUIRE(a);
  CHECK(a->contents.code == pr::codes::ping_ans);
  // Its admin sees who sent it (INFO, with the address).
  const auto from = "refused oversized message from 127.0.0.1:" +
                    std::to_string(sender.link->local_endpoint().port()) + ": ";
  CHECK_MESSAGE(o.log_of(0).find(from) != std::string::npos, o.log_of(0));
}

TEST_CASE(
    "node layer: messages for another overlay are dropped and logged at INFO with the sender's "
    "address, a flood of them in a bounded number of lines") {
  process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  o.start_ring(1);
  raw_link r(o, "stranger", 0);
  const auto started = std::chrono::steady_clock::now();
  constexpr int flood = 200;
  for (int i = 0; i < flood; ++i) {
    auto m = r.request({pr::to_destination(pr::node_id::wildcard(r.setup.config.node_id_length))},
                       pr::ping_req{}, 1000 + static_cast<std::uint64_t>(i));
    m.header.overlay = pr::overlay_hash("another.overlay.example");
    const auto bytes = r.signed_bytes(std::move(m));
    // The link's queue is bounded: let it drain when full.
    for (int tries = 0; tries < 100 && !r.link->try_send(bytes); ++tries) {
      r.io.run_for(5ms);
      r.io.restart();
    }
  }
  // Nothing answers those; a Ping of our own overlay after them is answered (the link lives).
  REQUIRE(r.link->try_send(r.ping(7)));
  std::optional<pr::message> a;
  for (int i = 0; i < 5 && !(a && a->header.transaction_id == 7); ++i) a = r.receive_within(5s);
  REQUIRE_MESSAGE(a, o.log_of(0));
  CHECK(a->header.transaction_id == 7);
  CHECK(a->contents.code == pr::codes::ping_ans);
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started)
          .count();
  const auto log = o.log_of(0);
  const auto line =
      "INFO refused message from 127.0.0.1:" + std::to_string(r.link->local_endpoint().port()) +
      ": for another overlay";
  std::size_t lines = 0;
  for (auto at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) ++lines;
  MESSAGE(flood << " messages for another overlay in " << seconds << " s: " << lines
                << " log lines");
  CHECK(lines >= 1);
  // A burst of 5, then one a second.
  CHECK(lines <= 5 + static_cast<std::size_t>(seconds) + 1);
}

TEST_CASE(
    "node layer: a request forwarded onto a link its far end closes before taking it goes on "
    "by another link") {
  process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  o.start_ring(1);
  raw_link sender(o, "sender", 0);
  // Yolanda has two links to the peer. The peer sends to her on the one she last sent on (A),
  // whose application takes one message at a time: the first fills its inbox, the second is
  // acked and waits for room, and the link reads (and acks) no further.
  raw_link yolanda_b(o, "yolanda", 0);
  raw_link yolanda_a(o, "yolanda", 0, std::nullopt, 1);
  REQUIRE(yolanda_a.link->try_send(yolanda_a.ping(1)));
  REQUIRE(yolanda_a.receive_within(5s));
  const auto yolanda = yolanda_a.setup.creds.signing.default_node_id();
  for (std::uint64_t tx = 11; tx <= 13; ++tx) {
    REQUIRE(sender.link->try_send(
        sender.signed_bytes(sender.request({pr::to_destination(yolanda)}, pr::ping_req{}, tx))));
  }
  sender.io.run_for(200ms);
  sender.io.restart();
  yolanda_a.io.run_for(300ms);
  yolanda_a.io.restart();
  // She closes A with the third unread and unacked. The peer gets it back from its link and
  // forwards it again, now on B.
  yolanda_a.link->close();
  REQUIRE(yolanda_a.closes_within(5s));
  std::optional<pr::message> again;
  for (int i = 0; i < 3 && !(again && again->header.transaction_id == 13); ++i) {
    again = yolanda_b.receive_within(5s);
  }
  REQUIRE_MESSAGE(again, o.log_of(0));
  CHECK(again->header.transaction_id == 13);
  CHECK(again->contents.code == pr::codes::ping_req);
  REQUIRE(again->header.via_list.size() == 1);
  CHECK(*again->header.via_list[0].node() == sender.setup.creds.signing.default_node_id());
  // The two A acked are still hers, handed out after the close.
  std::vector<std::uint64_t> taken;
  while (auto m = yolanda_a.link->try_receive()) {
    if (auto d = pr::decode_message(m->data, p2psip::config::limits_of(yolanda_a.setup.config))) {
      taken.push_back(d->header.transaction_id);
    }
  }
  CHECK(taken == std::vector<std::uint64_t>{11, 12});
}

TEST_CASE("node layer: replica Stores from a client are refused, directly and routed") {
  process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  o.start_ring(3);
  raw_link r(o, "mallory", 0);
  // A replica Store (replica_number 1) would set the resource's generation counter wherever it
  // lands: for every resource, whoever is responsible, the client's own peer refuses it.
  for (int i = 0; i < 6; ++i) {
    pr::store_req st;
    st.resource =
        pr::hash_resource_name("victim" + std::to_string(i), r.setup.config.node_id_length);
    st.replica_number = 1;
    pr::store_kind_data kd;
    kd.kind = pr::kinds::p2psip_generic;
    kd.generation_counter = 1000;
    st.kind_data.push_back(kd);
    REQUIRE(r.link->try_send(r.signed_bytes(
        r.request({pr::to_destination(st.resource)}, st, static_cast<std::uint64_t>(30 + i)))));
    auto a = r.receive_within(10s);
    REQUIRE(a);
    CHECK(a->header.transaction_id == static_cast<std::uint64_t>(30 + i));
    CHECK(error_code_of(r, *a) == static_cast<std::uint16_t>(pr::reload_errc::forbidden));
  }
  // And an original Store from it still works where it is allowed (not shown refused by the
  // rule): a Ping goes through.
  REQUIRE(r.link->try_send(r.ping(40)));
  auto a = r.receive_within(10s);
  REQUIRE(a);
  CHECK(a->contents.code == pr::codes::ping_ans);
}

TEST_CASE(
    "node layer: of two links a node opened, the unused one is closed, clients counted once") {
  process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  o.start_peer("p0", false,
               {"--request-timeout", "1000", "--link-linger", "1000", "--status-interval", "300"});
  REQUIRE(o.wait_ring(30s));
  // A foreign client that connected twice and uses only its second link.
  raw_link first(o, "twice", 0);
  raw_link second(o, "twice", 0);
  std::uint64_t tx = 100;
  bool closed = false;
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (!closed && std::chrono::steady_clock::now() < until) {
    REQUIRE(second.link->try_send(second.ping(tx++)));
    REQUIRE(second.receive_within(2s));
    closed = first.closes_within(200ms);
  }
  CHECK_MESSAGE(closed, "the unused second link of one node was never closed");
  CHECK(second.link->state() != p2psip::transport::link_state::closed);

  // A peer that attaches to p0 (say, as its finger) and then links: a peer, not a client.
  raw_link finger(o, "finger", 0);
  pr::attach_req at;
  p2psip::node::fill_no_ice(at, "passive", pr::ip_address_port{});
  const auto p0 = pr::to_destination(*pr::node_id::from_hex(o.peers().at(0).node_id));
  REQUIRE(finger.link->try_send(finger.signed_bytes(finger.request({p0}, at, 50))));
  auto a = finger.receive_within(10s);
  REQUIRE(a);
  CHECK(a->contents.code == pr::codes::attach_ans);
  raw_link finger_link(o, "finger", 0);
  // Keep 'twice' busy on its link while the status is read.
  REQUIRE(second.link->try_send(second.ping(tx++)));
  (void)second.receive_within(2s);
  // The status line: 'twice' is one client; 'finger' attached first, so it is no client.
  bool counted = false;
  const auto status_until = std::chrono::steady_clock::now() + 10s;
  while (!counted && std::chrono::steady_clock::now() < status_until) {
    counted = o.status_field(0, "clients") == "1" && o.status_field(0, "links") == "3";
    if (!counted) {
      (void)second.link->try_send(second.ping(tx++));
      (void)second.receive_within(100ms);
    }
  }
  CHECK_MESSAGE(counted, "status: links=" << o.status_field(0, "links")
                                          << " clients=" << o.status_field(0, "clients"));
}
