// Real TLS links on loopback: handshakes, identities, frames, limits, timeouts and closes.

#include <doctest/doctest.h>

#include <asio/detached.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "test_util.hpp"

namespace pr = p2psip::protocol;
namespace tr = p2psip::transport;
namespace tt = p2psip::transport_test;
namespace tp = p2psip::test_pki;
using tt::nothrow;
using namespace std::chrono_literals;

// The loopback addresses, the fixture (a CA and two nodes' credentials), raw TCP peers.
using tt::errc;
using tt::fixture;
using tt::raw_acceptor;
using tt::raw_connect;
using tt::v4;
using tt::v6;

TEST_CASE("link: handshake, peer Node-IDs from certificates, frames both ways (IPv4 and ::1)") {
  fixture f;
  for (const auto& address : {v4(), v6()}) {
    CAPTURE(address.to_string());
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      auto p = co_await tt::connect_pair(address, f.server_creds, f.client_creds);
      CHECK(p.client->state() == tr::link_state::established);
      CHECK(p.server->state() == tr::link_state::established);
      CHECK(p.client->peer_node_ids() == std::vector<pr::node_id>{f.server_id});
      CHECK(p.server->peer_node_ids() == std::vector<pr::node_id>{f.client_id});
      CHECK(p.client->peer_user() == "node@example.org");
      CHECK_FALSE(p.client->peer_certificate().empty());
      CHECK(p.client->cipher_suite() == "ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
      CHECK(p.client->remote_endpoint().address() == address);
      CHECK(p.server->remote_endpoint() == p.client->local_endpoint());

      for (std::uint32_t i = 0; i < 20; ++i) {
        REQUIRE(p.client->try_send(tt::numbered_message(i, 100 + i)));
        REQUIRE(p.server->try_send(tt::numbered_message(1000 + i, 60)));
      }
      for (std::uint32_t i = 0; i < 20; ++i) {
        auto a = co_await p.server->receive();
        REQUIRE(a);
        CHECK(tt::message_index(a->data) == i);
        CHECK(a->data.size() == 100 + i);
        CHECK_FALSE(a->oversized());
        CHECK(a->data == tt::numbered_message(i, 100 + i));
        auto b = co_await p.client->receive();
        REQUIRE(b);
        CHECK(tt::message_index(b->data) == 1000 + i);
      }
      // Every data frame is acked; the acks give a round-trip estimate.
      const bool acked = co_await tt::wait_until([&] {
        return p.client->stats().acks_received == 20 && p.server->stats().acks_received == 20;
      });
      CHECK(acked);
      REQUIRE(p.client->rtt().has_value());
      CHECK(*p.client->rtt() > std::chrono::steady_clock::duration::zero());
      CHECK(p.client->rto() >= 1ms);
      CHECK(p.client->stats().messages_sent == 20);
      CHECK(p.server->stats().messages_received == 20);
      CHECK(p.client->stats().bytes_sent > 20 * 100);

      p.client->close();
      p.listener->close();
      const bool closed =
          co_await tt::wait_until([&] { return p.server->state() == tr::link_state::closed; });
      CHECK(closed);
    });
  }
}

TEST_CASE("link: a certificate with several Node-IDs, a required Node-ID must be one of them") {
  fixture f;
  const auto second = tp::random_node_id();
  auto multi = tp::link_credentials(f.ca, {f.server_id, second});
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto p = co_await tt::connect_pair(v4(), multi, f.client_creds, tt::test_config(),
                                       tt::test_config(), second);
    CHECK(p.client->peer_node_ids().size() == 2);
    p.client->close();
    p.listener->close();

    // A Node-ID the certificate does not bind: the client refuses, the server sees the alert.
    auto seen = std::make_shared<tt::server_side>();
    auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds,
                                 tt::test_listener_config(), seen);
    auto c = co_await tr::connect(lst->local_endpoint(), f.client_creds, tt::test_config(),
                                  tp::random_node_id());
    REQUIRE_FALSE(c);
    CHECK(c.error() == errc(tr::transport_errc::wrong_node_id));
    const bool failed = co_await tt::wait_until([&] { return !seen->failures.empty(); });
    REQUIRE(failed);
    CHECK(seen->failures[0] == errc(tr::transport_errc::rejected_by_peer));
    CHECK(seen->links.empty());
    lst->close();
  });
}

TEST_CASE("link: a certificate from another CA is rejected, in both directions") {
  fixture f;
  tp::test_ca other("another overlay's root");
  std::shared_ptr<const tr::tls_credentials> server_creds = f.server_creds;
  std::shared_ptr<const tr::tls_credentials> client_creds = f.client_creds;
  std::error_code client_expected;
  std::error_code server_expected;
  SUBCASE("the client's certificate") {
    // The client trusts both roots; the server only its own.
    client_creds =
        tp::link_credentials(other, {f.client_id}, tp::key_type::ecdsa_p256, {f.ca.certificate()});
    client_expected = errc(tr::transport_errc::rejected_by_peer);
    server_expected = errc(tr::transport_errc::certificate_rejected);
  }
  SUBCASE("the server's certificate") {
    server_creds =
        tp::link_credentials(other, {f.server_id}, tp::key_type::ecdsa_p256, {f.ca.certificate()});
    client_expected = errc(tr::transport_errc::certificate_rejected);
    server_expected = errc(tr::transport_errc::rejected_by_peer);
  }
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<tt::server_side>();
    auto lst = tt::open_listener(f.io.get_executor(), v4(), server_creds,
                                 tt::test_listener_config(), seen);
    auto c = co_await tr::connect_explained(lst->local_endpoint(), client_creds, tt::test_config());
    REQUIRE_FALSE(c);
    CHECK(c.error().code == client_expected);
    // The words say what the code says, and Botan's detail (the alert, the validation status).
    CHECK_MESSAGE(c.error().message.starts_with(client_expected.message() + ": "),
                  c.error().message);
    const bool failed = co_await tt::wait_until([&] { return !seen->failures.empty(); });
    REQUIRE(failed);
    CHECK(seen->failures[0] == server_expected);
    CHECK(seen->links.empty());
    CHECK(lst->stats().handshakes_failed == 1);
    lst->close();
  });
}

TEST_CASE("link: a refused connection names the system's reason") {
  fixture f;
  // A port bound and closed again: nothing listens there.
  asio::ip::tcp::acceptor probe(f.io, asio::ip::tcp::endpoint(v4(), 0));
  const auto closed = probe.local_endpoint();
  probe.close();
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto c = co_await tr::connect_explained(closed, f.client_creds, tt::test_config());
    REQUIRE_FALSE(c);
    CHECK(c.error().code == errc(tr::transport_errc::connect_failed));
    CHECK(c.error().message == "TCP connect failed: Connection refused");
    auto plain = co_await tr::connect(closed, f.client_creds, tt::test_config());
    REQUIRE_FALSE(plain);
    CHECK(plain.error() == errc(tr::transport_errc::connect_failed));
  });
}

TEST_CASE("link: a certificate without a Node-ID for this overlay is rejected") {
  fixture f;
  for (const char* overlay : {"", "other.example"}) {
    CAPTURE(overlay);
    auto issued = std::string(overlay).empty() ? f.ca.issue(tp::link_spec({}))
                                               : f.ca.issue(tp::link_spec({f.server_id}, overlay));
    auto server_creds = tp::link_credentials(issued, {f.ca.certificate()});
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      auto seen = std::make_shared<tt::server_side>();
      auto lst = tt::open_listener(f.io.get_executor(), v4(), server_creds,
                                   tt::test_listener_config(), seen);
      auto c = co_await tr::connect(lst->local_endpoint(), f.client_creds, tt::test_config());
      REQUIRE_FALSE(c);
      CHECK(c.error() == errc(tr::transport_errc::no_node_id));
      lst->close();
    });
  }
}

TEST_CASE("link: RSA certificates work too") {
  fixture f;
  auto rsa = tp::link_credentials(f.ca, {f.server_id}, tp::key_type::rsa);
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto p = co_await tt::connect_pair(v4(), rsa, f.client_creds);
    CHECK(p.client->cipher_suite() == "ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    REQUIRE(p.client->try_send(tt::numbered_message(7, 100)));
    auto m = co_await p.server->receive();
    REQUIRE(m);
    CHECK(tt::message_index(m->data) == 7);
    p.client->close();
    p.listener->close();
  });
}

TEST_CASE("link: a client that sends garbage instead of TLS is dropped") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<tt::server_side>();
    auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds,
                                 tt::test_listener_config(), seen);
    auto s = co_await raw_connect(lst->local_endpoint());
    const std::string garbage = "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n";
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(garbage), nothrow);
    REQUIRE_FALSE(ec);
    (void)n;
    const bool closed = co_await tt::read_until_closed(s, 3s);
    CHECK(closed);
    const bool failed = co_await tt::wait_until([&] { return !seen->failures.empty(); });
    REQUIRE(failed);
    CHECK(seen->failures[0] == errc(tr::transport_errc::handshake_failed));
    CHECK(seen->links.empty());
    lst->close();
  });
}

TEST_CASE("link: handshake timeout on a TCP peer that never speaks (both roles)") {
  fixture f;
  SUBCASE("server side: a client connects and stays silent") {
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      auto seen = std::make_shared<tt::server_side>();
      tr::listener_config cfg;
      cfg.link = tt::test_config();
      cfg.link.handshake_timeout = 300ms;
      auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds, cfg, seen);
      const auto start = tt::steady::now();
      auto s = co_await raw_connect(lst->local_endpoint());
      const bool failed = co_await tt::wait_until([&] { return !seen->failures.empty(); }, 5s);
      REQUIRE(failed);
      const auto elapsed = tt::steady::now() - start;
      CHECK(seen->failures[0] == errc(tr::transport_errc::handshake_timeout));
      CHECK(elapsed >= 250ms);
      CHECK(elapsed < 3s);
      const bool closed = co_await tt::read_until_closed(s, 3s);
      CHECK(closed);
      lst->close();
    });
  }
  SUBCASE("client side: the server accepts and stays silent") {
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      raw_acceptor silent(f.io);
      asio::ip::tcp::socket held(f.io);
      silent.acceptor.async_accept(held, [](const asio::error_code&) {});
      auto cfg = tt::test_config();
      cfg.handshake_timeout = 300ms;
      const auto start = tt::steady::now();
      auto c = co_await tr::connect(silent.endpoint(), f.client_creds, cfg);
      const auto elapsed = tt::steady::now() - start;
      REQUIRE_FALSE(c);
      CHECK(c.error() == errc(tr::transport_errc::handshake_timeout));
      CHECK(elapsed >= 250ms);
      CHECK(elapsed < 3s);
    });
  }
}

TEST_CASE("link: a peer that sends a partial frame and goes silent hits the idle timeout") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<tt::server_side>();
    tr::listener_config cfg;
    cfg.link = tt::test_config();
    cfg.link.idle_timeout = 300ms;
    auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds, cfg, seen);
    auto raw = co_await raw_connect(lst->local_endpoint());
    tt::raw_tls_peer peer(std::move(raw), false, f.client_creds);
    const auto hs = co_await peer.handshake();
    REQUIRE_FALSE(hs);
    const bool accepted = co_await tt::wait_until([&] { return !seen->links.empty(); });
    REQUIRE(accepted);
    tt::close_log log;
    log.watch(seen->links[0]);
    // Type, sequence and one byte of the length: a frame that never completes.
    peer.queue_record(pr::bytes{0x80, 0, 0, 0, 1, 0});
    co_await peer.flush();
    const auto start = tt::steady::now();
    const bool closed = co_await tt::wait_until([&] { return !log.reasons.empty(); }, 5s);
    REQUIRE(closed);
    const auto elapsed = tt::steady::now() - start;
    CHECK(log.reasons[0] == errc(tr::transport_errc::idle_timeout));
    CHECK(elapsed >= 200ms);
    CHECK(elapsed < 3s);
    const bool eof = co_await tt::read_until_closed(peer.socket(), 3s);
    CHECK(eof);
    lst->close();
  });
}

TEST_CASE("link: frame limits: max size accepted, one byte over closes, bad type closes") {
  fixture f;
  struct variant_case {
    const char* name;
    pr::bytes record;
    tr::transport_errc expected;
  };
  // 5001 = 0x001389: one byte over the default max_message_size of 5000. The message does not
  // start with a forwarding header, so there is nothing to answer: the link closes at once.
  const std::vector<variant_case> cases{
      {"oversize", pr::bytes{0x80, 0, 0, 0, 1, 0x00, 0x13, 0x89, 'G', 'E', 'T', ' '},
       tr::transport_errc::frame_too_large},
      {"bad type", pr::bytes{0x42, 0, 0, 0, 1}, tr::transport_errc::bad_frame},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      auto seen = std::make_shared<tt::server_side>();
      auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds,
                                   tt::test_listener_config(), seen);
      auto raw = co_await raw_connect(lst->local_endpoint());
      tt::raw_tls_peer peer(std::move(raw), false, f.client_creds);
      const auto hs = co_await peer.handshake();
      REQUIRE_FALSE(hs);
      const bool accepted = co_await tt::wait_until([&] { return !seen->links.empty(); });
      REQUIRE(accepted);
      auto server = seen->links[0];
      tt::close_log log;
      log.watch(server);
      peer.queue_data_frame(0, tt::numbered_message(1, 5000));  // exactly the limit
      co_await peer.flush();
      auto m = co_await server->receive();
      REQUIRE(m);
      CHECK(m->data.size() == 5000);
      CHECK_FALSE(m->oversized());
      peer.queue_record(c.record);
      co_await peer.flush();
      const bool closed = co_await tt::wait_until([&] { return !log.reasons.empty(); });
      REQUIRE(closed);
      CHECK(log.reasons[0] == errc(c.expected));
      CHECK(server->close_reason() == errc(c.expected));
      lst->close();
    });
  }
}

TEST_CASE("link: send limits: message size and queue bounds") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto cfg = tt::test_config();
    cfg.max_queued_messages = 3;
    auto p =
        co_await tt::connect_pair(v4(), f.server_creds, f.client_creds, tt::test_config(), cfg);
    auto too_big = p.client->try_send(pr::bytes(5001));
    REQUIRE_FALSE(too_big);
    CHECK(too_big.error() == errc(tr::transport_errc::message_too_large));
    CHECK(p.client->state() == tr::link_state::established);
    // Nothing runs between these calls: the writer has not taken anything yet.
    REQUIRE(p.client->try_send(pr::bytes(5000)));
    REQUIRE(p.client->try_send(pr::bytes(10)));
    REQUIRE(p.client->try_send(pr::bytes(10)));
    auto full = p.client->try_send(pr::bytes(10));
    REQUIRE_FALSE(full);
    CHECK(full.error() == errc(tr::transport_errc::queue_full));
    CHECK(p.client->queued_messages() == 3);
    CHECK(p.client->queued_bytes() == 5020);
    for (int i = 0; i < 3; ++i) {
      auto m = co_await p.server->receive();
      REQUIRE(m);
    }
    CHECK(p.client->queued_messages() == 0);
    p.client->close();
    p.listener->close();
  });
}

TEST_CASE("link: several TLS records in one TCP read are all delivered") {
  fixture f;
  SUBCASE("a link writing many small frames back to back") {
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      auto p = co_await tt::connect_pair(v4(), f.server_creds, f.client_creds);
      for (std::uint32_t i = 0; i < 200; ++i)
        REQUIRE(p.client->try_send(tt::numbered_message(i, 20)));
      for (std::uint32_t i = 0; i < 200; ++i) {
        auto m = co_await p.server->receive();
        REQUIRE(m);
        CHECK(tt::message_index(m->data) == i);
      }
      // 200 records of about 50 bytes; far fewer reads than records means they were coalesced.
      INFO("server reads: " << p.server->stats().socket_reads
                            << ", client writes: " << p.client->stats().socket_writes);
      CHECK(p.server->stats().socket_reads < 50);
      CHECK(p.client->stats().socket_writes < 50);
      p.client->close();
      p.listener->close();
    });
  }
  SUBCASE("pre-built records written in one write") {
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      auto seen = std::make_shared<tt::server_side>();
      auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds,
                                   tt::test_listener_config(), seen);
      auto raw = co_await raw_connect(lst->local_endpoint());
      tt::raw_tls_peer peer(std::move(raw), false, f.client_creds);
      const auto hs = co_await peer.handshake();
      REQUIRE_FALSE(hs);
      for (std::uint32_t i = 0; i < 20; ++i) peer.queue_data_frame(i, tt::numbered_message(i, 40));
      // And two frames inside a single record, and one frame split over two records.
      pr::bytes two;
      for (std::uint32_t i = 20; i < 22; ++i) {
        auto fr = pr::encode_frame(pr::data_frame{i, tt::numbered_message(i, 40)});
        two.insert(two.end(), fr->begin(), fr->end());
      }
      peer.queue_record(two);
      auto split = *pr::encode_frame(pr::data_frame{22, tt::numbered_message(22, 40)});
      peer.queue_record(pr::bytes(split.begin(), split.begin() + 5));
      peer.queue_record(pr::bytes(split.begin() + 5, split.end()));
      co_await peer.flush();  // one write
      const bool accepted = co_await tt::wait_until([&] { return !seen->links.empty(); });
      REQUIRE(accepted);
      for (std::uint32_t i = 0; i < 23; ++i) {
        auto m = co_await seen->links[0]->receive();
        REQUIRE(m);
        CHECK(tt::message_index(m->data) == i);
      }
      // Our link acked all 23 frames.
      std::size_t acks = 0;
      for (int reads = 0; reads < 50 && acks < 23; ++reads) {
        auto n = co_await peer.read_some();
        REQUIRE(n);
        pr::frame_decoder dec{pr::limits{}};
        auto& plain = peer.engine().plaintext();
        REQUIRE(dec.put(plain));
        plain.clear();
        while (auto fr = dec.next()) {
          if (std::holds_alternative<pr::ack_frame>(*fr)) ++acks;
        }
      }
      CHECK(acks == 23);
      lst->close();
    });
  }
  SUBCASE("handshake end, data and close_notify in one read") {
    // Botan's own Asio stream mishandled exactly this; our adapter must take it in order.
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      raw_acceptor acc(f.io);
      bool server_done = false;
      asio::co_spawn(
          f.io,
          [&]() -> asio::awaitable<void> {
            asio::ip::tcp::socket s(f.io);
            auto [ec] = co_await acc.acceptor.async_accept(s, nothrow);
            REQUIRE_FALSE(ec);
            tt::raw_tls_peer peer(std::move(s), true, f.server_creds);
            const auto hs = co_await peer.handshake(false);  // keep CCS + Finished back
            REQUIRE_FALSE(hs);
            for (std::uint32_t i = 0; i < 5; ++i)
              peer.queue_data_frame(i, tt::numbered_message(i, 30));
            peer.queue_close_notify();
            co_await peer.flush();  // Finished, five records and close_notify: one write
            const bool eof = co_await tt::read_until_closed(peer.socket(), 3s);
            CHECK(eof);
            server_done = true;
          },
          [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
          });
      auto c = co_await tr::connect(acc.endpoint(), f.client_creds, tt::test_config());
      REQUIRE(c);
      auto client = *c;
      for (std::uint32_t i = 0; i < 5; ++i) {
        auto m = co_await client->receive();
        INFO("receive: " << (m ? std::string("ok") : m.error().message()) << " / "
                         << client->close_detail());
        REQUIRE(m);
        CHECK(tt::message_index(m->data) == i);
      }
      auto end = co_await client->receive();
      REQUIRE_FALSE(end);
      CHECK(end.error() == errc(tr::transport_errc::closed_by_peer));
      const bool done = co_await tt::wait_until([&] { return server_done; });
      CHECK(done);
      CHECK(client->close_reason() == errc(tr::transport_errc::closed_by_peer));
    });
  }
}

TEST_CASE("link: an answer queued while its request is handled leaves in one write with the ack") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto p = co_await tt::connect_pair(v4(), f.server_creds, f.client_creds);
    // The server's application answers each message as soon as it takes it.
    asio::co_spawn(
        f.io,
        [server = p.server]() -> asio::awaitable<void> {
          for (;;) {
            auto m = co_await server->receive();
            if (!m || !server->try_send(std::move(m->data))) co_return;
          }
        },
        asio::detached);
    // One exchange first, so that the handshake's writes are behind us.
    REQUIRE(p.client->try_send(tt::numbered_message(0, 40)));
    REQUIRE(co_await p.client->receive());
    const auto writes_before = p.server->stats().socket_writes;
    const auto acks_before = p.client->stats().acks_received;
    constexpr std::uint32_t exchanges = 20;
    for (std::uint32_t i = 1; i <= exchanges; ++i) {
      REQUIRE(p.client->try_send(tt::numbered_message(i, 40)));
      auto m = co_await p.client->receive();
      REQUIRE(m);
      CHECK(tt::message_index(m->data) == i);
    }
    // Every request acked, and each ack went in the answer's write: one write per exchange, where
    // an ack written on its own would make two.
    CHECK(p.client->stats().acks_received - acks_before == exchanges);
    CHECK(p.server->stats().socket_writes - writes_before == exchanges);
    p.client->close();
    p.listener->close();
  });
}

TEST_CASE("link: while the application does not read, what arrived is still acked") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto server_cfg = tt::test_config();
    server_cfg.max_received_messages = 4;
    auto p = co_await tt::connect_pair(v4(), f.server_creds, f.client_creds, server_cfg);
    // The server's application never reads: its inbox fills at 4, the reader waits for room, and
    // the acks queued so far must not wait with it (the sender would count them as lost).
    for (std::uint32_t i = 0; i < 4; ++i) REQUIRE(p.client->try_send(tt::numbered_message(i, 40)));
    REQUIRE(co_await tt::wait_until([&] { return p.client->stats().acks_received == 4; }));
    // The fifth finds the inbox full, alone in its read.
    REQUIRE(p.client->try_send(tt::numbered_message(4, 40)));
    const bool acked =
        co_await tt::wait_until([&] { return p.client->stats().acks_received == 5; });
    INFO("acks received: " << p.client->stats().acks_received);
    CHECK(acked);
    CHECK(p.server->stats().messages_received == 5);
    p.client->close();
    p.listener->close();
  });
}

TEST_CASE("link: backpressure: a slow reader bounds the sender's queue, then everything arrives") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto server_cfg = tt::test_config();
    server_cfg.max_received_messages = 4;
    auto client_cfg = tt::test_config();
    client_cfg.max_queued_messages = 16;
    client_cfg.max_queued_bytes = 32 * 1024;
    auto p =
        co_await tt::connect_pair(v4(), f.server_creds, f.client_creds, server_cfg, client_cfg);

    // The server's application does not read. Fill until the queue stays full for 300 ms.
    constexpr std::size_t size = 4000;
    std::uint32_t accepted = 0;
    auto full_since = tt::steady::now();
    bool was_full = false;
    while (accepted < 100000) {
      auto r = p.client->try_send(tt::numbered_message(accepted, size));
      if (r) {
        ++accepted;
        was_full = false;
        continue;
      }
      REQUIRE(r.error() == errc(tr::transport_errc::queue_full));
      CHECK(p.client->queued_messages() <= 16);
      CHECK(p.client->queued_bytes() <= 32 * 1024);
      if (!was_full) {
        was_full = true;
        full_since = tt::steady::now();
      } else if (tt::steady::now() - full_since > 300ms) {
        break;
      }
      co_await tt::sleep_for(2ms);
    }
    INFO("messages accepted before the sender stalled: " << accepted);
    // Bounded by the two queues plus what the kernel's socket buffers hold (a few MB on lo).
    CHECK(accepted < 4000);
    CHECK(accepted > 4);
    CHECK(p.client->state() == tr::link_state::established);

    // The awaitable send waits for room instead of failing.
    bool sent_more = false;
    asio::co_spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          for (std::uint32_t i = 0; i < 50; ++i) {
            auto r = co_await p.client->send(tt::numbered_message(accepted + i, size));
            REQUIRE(r);
          }
          sent_more = true;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    co_await tt::sleep_for(50ms);
    CHECK_FALSE(sent_more);

    // Now read everything: in order, nothing lost.
    for (std::uint32_t i = 0; i < accepted + 50; ++i) {
      auto m = co_await p.server->receive();
      REQUIRE(m);
      REQUIRE(tt::message_index(m->data) == i);
    }
    CHECK(sent_more);
    p.client->close();
    p.listener->close();
  });
}

TEST_CASE("link: close from either side is reported once on each side") {
  fixture f;
  bool client_closes = true;
  SUBCASE("client closes") {
    client_closes = true;
  }
  SUBCASE("server closes") {
    client_closes = false;
  }
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto p = co_await tt::connect_pair(v4(), f.server_creds, f.client_creds);
    tt::close_log client_log;
    tt::close_log server_log;
    client_log.watch(p.client);
    server_log.watch(p.server);
    auto closer = client_closes ? p.client : p.server;
    auto other = client_closes ? p.server : p.client;
    auto& closer_log = client_closes ? client_log : server_log;
    auto& other_log = client_closes ? server_log : client_log;

    REQUIRE(closer->try_send(tt::numbered_message(1, 10)));
    auto m = co_await other->receive();
    REQUIRE(m);
    closer->close();
    closer->close();
    auto after = closer->try_send(tt::numbered_message(2, 10));
    REQUIRE_FALSE(after);
    CHECK(after.error() == errc(tr::transport_errc::not_connected));

    auto end = co_await other->receive();
    REQUIRE_FALSE(end);
    CHECK(end.error() == errc(tr::transport_errc::closed_by_peer));
    const bool both = co_await tt::wait_until(
        [&] { return !client_log.reasons.empty() && !server_log.reasons.empty(); });
    REQUIRE(both);
    closer->close();
    co_await tt::sleep_for(200ms);
    CHECK(closer_log.reasons ==
          std::vector<std::error_code>{errc(tr::transport_errc::closed_locally)});
    CHECK(other_log.reasons ==
          std::vector<std::error_code>{errc(tr::transport_errc::closed_by_peer)});
    CHECK(closer->state() == tr::link_state::closed);
    CHECK(other->state() == tr::link_state::closed);
    // A handler set after the close still hears it, once.
    tt::close_log late;
    late.watch(closer);
    co_await tt::sleep_for(20ms);
    CHECK(late.reasons.size() == 1);
    p.listener->close();
  });
}

TEST_CASE("link: a flood above the rate limit is counted and closes the link") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto server_cfg = tt::test_config();
    server_cfg.rate.messages_per_second = 10;
    server_cfg.rate.burst = 5;
    server_cfg.rate.misbehaviour_limit = 3;
    auto p = co_await tt::connect_pair(v4(), f.server_creds, f.client_creds, server_cfg);
    tt::close_log server_log;
    server_log.watch(p.server);
    for (std::uint32_t i = 0; i < 30; ++i) REQUIRE(p.client->try_send(tt::numbered_message(i, 20)));
    const bool closed = co_await tt::wait_until([&] { return !server_log.reasons.empty(); });
    REQUIRE(closed);
    CHECK(server_log.reasons[0] == errc(tr::transport_errc::rate_limited));
    CHECK(p.server->misbehaviour_count() == 4);
    CHECK(p.server->stats().messages_dropped == 4);
    const bool client_closed =
        co_await tt::wait_until([&] { return p.client->state() == tr::link_state::closed; });
    CHECK(client_closed);
    CHECK(p.client->close_reason() == errc(tr::transport_errc::closed_by_peer));
    p.listener->close();
  });
  // The layer above counts glitches against the same limit.
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto server_cfg = tt::test_config();
    server_cfg.rate.misbehaviour_limit = 2;
    auto p = co_await tt::connect_pair(v4(), f.server_creds, f.client_creds, server_cfg);
    p.server->report_misbehaviour(2);
    CHECK(p.server->state() == tr::link_state::established);
    p.server->report_misbehaviour();
    CHECK(p.server->close_reason() == errc(tr::transport_errc::rate_limited));
    p.listener->close();
  });
}

TEST_CASE("link: data left unacknowledged is a link failure") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    raw_acceptor acc(f.io);
    bool peer_done = false;
    asio::co_spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          asio::ip::tcp::socket s(f.io);
          auto [ec] = co_await acc.acceptor.async_accept(s, nothrow);
          REQUIRE_FALSE(ec);
          tt::raw_tls_peer peer(std::move(s), true, f.server_creds);
          const auto hs = co_await peer.handshake();
          REQUIRE_FALSE(hs);
          // Reads everything, acks nothing.
          for (int i = 0; i < 1000; ++i) {
            auto n = co_await peer.read_some();
            if (!n) break;
            peer.engine().plaintext().clear();
            co_await peer.flush();  // only TLS's own replies (close_notify)
          }
          peer_done = true;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    auto cfg = tt::test_config();
    cfg.ack_timeout = 300ms;
    cfg.rto.initial_rto = 100ms;
    auto c = co_await tr::connect(acc.endpoint(), f.client_creds, cfg);
    REQUIRE(c);
    auto client = *c;
    tt::close_log log;
    log.watch(client);
    const auto start = tt::steady::now();
    REQUIRE(client->try_send(tt::numbered_message(1, 100)));
    const bool closed = co_await tt::wait_until([&] { return !log.reasons.empty(); });
    REQUIRE(closed);
    const auto elapsed = tt::steady::now() - start;
    CHECK(log.reasons[0] == errc(tr::transport_errc::link_failure));
    CHECK(elapsed >= 250ms);
    CHECK(elapsed < 3s);
    const bool done = co_await tt::wait_until([&] { return peer_done; });
    CHECK(done);
  });
}

TEST_CASE("link: a peer that stops reading trips the write timeout") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    raw_acceptor acc(f.io);
    std::unique_ptr<tt::raw_tls_peer> held;
    asio::co_spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          asio::ip::tcp::socket s(f.io);
          auto [ec] = co_await acc.acceptor.async_accept(s, nothrow);
          REQUIRE_FALSE(ec);
          held = std::make_unique<tt::raw_tls_peer>(std::move(s), true, f.server_creds);
          const auto hs = co_await held->handshake();
          REQUIRE_FALSE(hs);
          // ... and never reads again.
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    auto cfg = tt::test_config();
    cfg.write_timeout = 300ms;
    auto c = co_await tr::connect(acc.endpoint(), f.client_creds, cfg);
    REQUIRE(c);
    auto client = *c;
    tt::close_log log;
    log.watch(client);
    // Fill the socket buffers (a few MB on lo) until a write stalls past the timeout.
    std::uint32_t i = 0;
    const auto deadline = tt::steady::now() + 20s;
    while (log.reasons.empty() && tt::steady::now() < deadline) {
      while (client->try_send(tt::numbered_message(i, 4000))) ++i;
      CHECK(client->queued_bytes() <= cfg.max_queued_bytes);
      co_await tt::sleep_for(5ms);
    }
    REQUIRE_FALSE(log.reasons.empty());
    INFO("messages queued before the stall: " << i);
    CHECK(log.reasons[0] == errc(tr::transport_errc::write_timeout));
  });
}

TEST_CASE("link: messages queued during the handshake are sent once it completes") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<tt::server_side>();
    auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds,
                                 tt::test_listener_config(), seen);
    auto s = co_await raw_connect(lst->local_endpoint());
    auto client = tr::start_link(std::move(s), tr::tls_role::client, f.client_creds,
                                 tt::test_config(), f.server_id);
    CHECK(client->state() == tr::link_state::handshaking);
    REQUIRE(client->try_send(tt::numbered_message(42, 64)));
    const auto hs = co_await client->handshake();
    CHECK_FALSE(hs);
    const bool accepted = co_await tt::wait_until([&] { return !seen->links.empty(); });
    REQUIRE(accepted);
    auto m = co_await seen->links[0]->receive();
    REQUIRE(m);
    CHECK(tt::message_index(m->data) == 42);
    client->close();
    lst->close();
  });
}

TEST_CASE("link: TLS roles are independent of who connects") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<tt::server_side>();
    tr::listener_config cfg;
    cfg.link = tt::test_config();
    cfg.role = tr::tls_role::client;  // the accepting side is the TLS client here
    auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds, cfg, seen);
    auto c = co_await tr::connect(lst->local_endpoint(), f.client_creds, tt::test_config(),
                                  f.server_id, tr::tls_role::server);
    REQUIRE(c);
    REQUIRE((*c)->try_send(tt::numbered_message(5, 10)));
    const bool accepted = co_await tt::wait_until([&] { return !seen->links.empty(); });
    REQUIRE(accepted);
    auto m = co_await seen->links[0]->receive();
    REQUIRE(m);
    (*c)->close();
    lst->close();
  });
}

TEST_CASE("link: key log lines for Wireshark (config path and SSLKEYLOGFILE)") {
  fixture f;
  const auto dir = std::filesystem::temp_directory_path();
  const auto by_config = dir / ("p2psip_keys_cfg_" + std::to_string(::getpid()) + ".log");
  const auto by_env = dir / ("p2psip_keys_env_" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(by_config);
  std::filesystem::remove(by_env);
  const std::regex line_format("CLIENT_RANDOM [0-9a-f]{64} [0-9a-f]{96}");

  auto check_file = [&](const std::filesystem::path& path) {
    std::ifstream in(path);
    REQUIRE(in.good());
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line)) lines.push_back(line);
    // Both ends log the same session.
    REQUIRE(lines.size() == 2);
    CHECK(std::regex_match(lines[0], line_format));
    CHECK(lines[0] == lines[1]);
  };

  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto cfg = tt::test_config();
    cfg.key_log_path = by_config.string();
    auto p = co_await tt::connect_pair(v4(), f.server_creds, f.client_creds, cfg, cfg);
    p.client->close();
    p.listener->close();
  });
  check_file(by_config);

  ::setenv("SSLKEYLOGFILE", by_env.string().c_str(), 1);
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto p = co_await tt::connect_pair(v4(), f.server_creds, f.client_creds);
    p.client->close();
    p.listener->close();
  });
  ::unsetenv("SSLKEYLOGFILE");
  check_file(by_env);
  std::filesystem::remove(by_config);
  std::filesystem::remove(by_env);
}

namespace {

/// The listening socket bound to `port` in this process (found through getsockname).
int find_listening_fd(unsigned short port) {
  for (int fd = 0; fd < 4096; ++fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) continue;
    if (ss.ss_family != AF_INET) continue;
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (ntohs(in->sin_port) == port &&
        ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) == 0 && listening) {
      return fd;
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("listener: accept errors back off, and accepting resumes") {
  // shutdown(SHUT_RD) on a listening socket makes Linux fail every accept() with EINVAL until
  // listen() is called again: a real accept error without exhausting file descriptors (which
  // the sanitizers' own runtime needs).
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<tt::server_side>();
    tr::listener_config cfg;
    cfg.link = tt::test_config();
    cfg.min_backoff = 10ms;
    cfg.max_backoff = 40ms;
    auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds, cfg, seen);
    const int fd = find_listening_fd(lst->local_endpoint().port());
    REQUIRE(fd >= 0);
    REQUIRE(::shutdown(fd, SHUT_RD) == 0);
    co_await tt::sleep_for(300ms);
    const auto errors = lst->stats().accept_errors;
    CHECK(errors >= 3);   // it retried ...
    CHECK(errors <= 35);  // ... without spinning (300 ms at 10, 20, 40, 40, ... ms)
    CHECK(lst->is_open());

    REQUIRE(::listen(fd, 16) == 0);
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    const asio::ip::tcp::endpoint again(v4(), ntohs(addr.sin_port));
    auto c = co_await tr::connect(again, f.client_creds, tt::test_config());
    REQUIRE(c);
    CHECK(lst->stats().accepted == 1);
    (*c)->close();
    lst->close();
  });
}

TEST_CASE("listener: handshakes in progress are capped") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<tt::server_side>();
    tr::listener_config cfg;
    cfg.link = tt::test_config();
    cfg.link.handshake_timeout = 300ms;
    cfg.max_handshakes = 1;
    auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds, cfg, seen);
    auto a = co_await raw_connect(lst->local_endpoint());
    auto b = co_await raw_connect(lst->local_endpoint());
    std::size_t most = 0;
    const bool both = co_await tt::wait_until([&] {
      most = std::max(most, lst->pending_handshakes());
      return seen->failures.size() == 2;
    });
    REQUIRE(both);
    CHECK(most == 1);
    CHECK(lst->stats().accepted == 2);
    // A real client still gets through afterwards.
    auto c = co_await tr::connect(lst->local_endpoint(), f.client_creds, tt::test_config());
    CHECK(c);
    if (c) (*c)->close();
    lst->close();
  });
}

TEST_CASE("link: plaintext mode (benchmarks only) carries the same framing") {
  asio::io_context io;
  tt::run(io, [&]() -> asio::awaitable<void> {
    auto cfg = tt::test_config();
    cfg.insecure_plaintext = true;
    auto p = co_await tt::connect_pair(v4(), nullptr, nullptr, cfg, cfg);
    CHECK(p.client->peer_node_ids().empty());
    for (std::uint32_t i = 0; i < 10; ++i)
      REQUIRE(p.client->try_send(tt::numbered_message(i, 100)));
    for (std::uint32_t i = 0; i < 10; ++i) {
      auto m = co_await p.server->receive();
      REQUIRE(m);
      CHECK(tt::message_index(m->data) == i);
    }
    const bool acked =
        co_await tt::wait_until([&] { return p.client->stats().acks_received == 10; });
    CHECK(acked);
    p.client->close();
    auto end = co_await p.server->receive();
    REQUIRE_FALSE(end);
    p.listener->close();
  });
  tt::settle(io);
}

// ---------------------------------------------------------------------------------------------
// close() sends what was queued before it (an answer to the last message goes out), within
// close_linger.

TEST_CASE("link: close() sends the messages queued before it, then close_notify") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto p = co_await tt::connect_pair(v4(), f.server_creds, f.client_creds);
    // Queued and closed in one go: nothing has been written when close() is called.
    for (std::uint32_t i = 0; i < 100; ++i) {
      REQUIRE(p.client->try_send(tt::numbered_message(i, 1000)));
    }
    p.client->close();
    CHECK(p.client->state() == tr::link_state::closing);
    auto refused = p.client->try_send(tt::numbered_message(100, 10));
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == errc(tr::transport_errc::not_connected));
    for (std::uint32_t i = 0; i < 100; ++i) {
      auto m = co_await p.server->receive();
      REQUIRE(m);
      CHECK(tt::message_index(m->data) == i);
    }
    auto end = co_await p.server->receive();
    REQUIRE_FALSE(end);
    CHECK(end.error() == errc(tr::transport_errc::closed_by_peer));
    const bool closed =
        co_await tt::wait_until([&] { return p.client->state() == tr::link_state::closed; });
    CHECK(closed);
    CHECK(p.client->close_reason() == errc(tr::transport_errc::closed_locally));
    // Closed by us: the server took everything before our close_notify (and TLS cannot carry its
    // acks after it), so nothing comes back.
    CHECK(p.client->take_undelivered().empty());
    p.listener->close();
  });
}

TEST_CASE("link: what the peer acked is not kept") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto p = co_await tt::connect_pair(v4(), f.server_creds, f.client_creds);
    // Requests and answers both ways, as a client and its peer exchange them.
    for (std::uint32_t i = 0; i < 5; ++i) {
      REQUIRE(p.client->try_send(tt::numbered_message(i, 200)));
      REQUIRE(co_await p.server->receive());
      REQUIRE(p.server->try_send(tt::numbered_message(100 + i, 200)));
      REQUIRE(co_await p.client->receive());
    }
    REQUIRE(co_await tt::wait_until([&] {
      return p.client->stats().acks_received == 5 && p.server->stats().acks_received == 5;
    }));
    CHECK(p.client->take_undelivered().empty());
    CHECK(p.server->take_undelivered().empty());
    // One more from the server alone, its client sending nothing after it.
    REQUIRE(p.server->try_send(tt::numbered_message(200, 1200)));
    REQUIRE(co_await p.client->receive());
    REQUIRE(co_await tt::wait_until([&] { return p.server->stats().acks_received == 6; }));
    CHECK(p.server->take_undelivered().empty());
    p.client->close();
    p.listener->close();
  });
}

TEST_CASE("link: what the peer never took is handed back when the link closes") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto server_cfg = tt::test_config();
    server_cfg.max_received_messages = 1;
    auto p = co_await tt::connect_pair(v4(), f.server_creds, f.client_creds, server_cfg);
    // The server's application does not read: message 0 fills its inbox, message 1 is acked
    // and waits for room, and the reader reads no further, so 2..5 are never acked.
    for (std::uint32_t i = 0; i < 6; ++i) REQUIRE(p.client->try_send(tt::numbered_message(i, 50)));
    REQUIRE(co_await tt::wait_until([&] { return p.client->stats().acks_received == 2; }));
    co_await tt::sleep_for(100ms);
    CHECK(p.client->stats().acks_received == 2);
    for (std::uint32_t i = 6; i < 8; ++i) REQUIRE(p.client->try_send(tt::numbered_message(i, 50)));
    p.server->close();
    const bool closed =
        co_await tt::wait_until([&] { return p.client->state() == tr::link_state::closed; });
    REQUIRE(closed);
    // Message 1, acked, is still handed to the server's application after the close.
    std::vector<std::uint32_t> taken;
    while (auto m = p.server->try_receive()) taken.push_back(tt::message_index(m->data));
    CHECK(taken == std::vector<std::uint32_t>{0, 1});
    std::vector<std::uint32_t> back;
    for (const auto& m : p.client->take_undelivered()) back.push_back(tt::message_index(m));
    CHECK(back == std::vector<std::uint32_t>{2, 3, 4, 5, 6, 7});
    CHECK(p.client->take_undelivered().empty());  // taken
    p.listener->close();
  });
}

TEST_CASE("link: close() toward a peer that does not read ends within close_linger") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    raw_acceptor acc(f.io);
    std::unique_ptr<tt::raw_tls_peer> held;
    asio::co_spawn(
        f.io,
        [&]() -> asio::awaitable<void> {
          asio::ip::tcp::socket s(f.io);
          auto [ec] = co_await acc.acceptor.async_accept(s, nothrow);
          REQUIRE_FALSE(ec);
          held = std::make_unique<tt::raw_tls_peer>(std::move(s), true, f.server_creds);
          const auto hs = co_await held->handshake();
          REQUIRE_FALSE(hs);
          // ... and never reads again.
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    auto cfg = tt::test_config();
    cfg.close_linger = 300ms;
    cfg.write_timeout = 10s;
    cfg.max_queued_messages = 10000;
    cfg.max_queued_bytes = 64 * 1024 * 1024;
    auto c = co_await tr::connect(acc.endpoint(), f.client_creds, cfg);
    REQUIRE(c);
    auto client = *c;
    tt::close_log log;
    log.watch(client);
    // Far more than the socket buffers of lo hold.
    for (std::uint32_t i = 0; i < 8000; ++i) {
      REQUIRE(client->try_send(tt::numbered_message(i, 4000)));
    }
    const auto start = tt::steady::now();
    client->close();
    const bool closed = co_await tt::wait_until([&] { return !log.reasons.empty(); }, 5s);
    REQUIRE(closed);
    const auto elapsed = tt::steady::now() - start;
    CHECK(elapsed < 1500ms);
    CHECK(log.reasons[0] == errc(tr::transport_errc::closed_locally));
    CHECK(client->stats().messages_sent < 8000);  // the flush was cut short
  });
}

// ---------------------------------------------------------------------------------------------
// A message larger than max_message_size (RFC 6940 section 6.6): the link hands its owner the
// forwarding header, the owner answers (Error_Message_Too_Large) and closes; the answer goes out
// before close_notify, and nothing after the oversized message is delivered.

namespace {

/// A RELOAD message of `total` bytes: a forwarding header (via one node, to another) with
/// transaction id `txid`, then filler (what follows the header does not matter to the link).
struct big_message {
  pr::bytes bytes;
  std::size_t header_size = 0;
};
big_message make_big_message(std::uint32_t total, std::uint64_t txid) {
  pr::forwarding_header h;
  h.overlay = 0x4E38FC3F;
  h.transaction_id = txid;
  h.via_list.push_back(pr::to_destination(pr::node_id::power_of_two(3)));
  h.destination_list.push_back(pr::to_destination(pr::node_id::power_of_two(90)));
  big_message out;
  pr::writer w(out.bytes);
  pr::encode_forwarding_header(w, h, total);
  REQUIRE(w.ok());
  out.header_size = out.bytes.size();
  out.bytes.resize(total, 0x5A);
  return out;
}

/// The first bytes of a data frame declaring `length` bytes: its 8-byte header and `part`.
pr::bytes frame_start(std::uint32_t sequence, std::uint32_t length, pr::byte_view part) {
  auto h = pr::data_frame_header(sequence, length);
  REQUIRE(h);
  pr::bytes out(h->begin(), h->end());
  out.insert(out.end(), part.begin(), part.end());
  return out;
}

/// Checks an oversized item against the message it came from.
void check_oversized(const tr::inbound_message& m, const big_message& big, std::uint64_t txid) {
  REQUIRE(m.oversized());
  CHECK(*m.oversized_length == big.bytes.size());
  CHECK(m.data.size() == big.header_size);  // the header, nothing of the body
  auto h = pr::decode_oversized_header(m.data, *m.oversized_length, pr::limits{});
  REQUIRE_MESSAGE(h, (h ? std::string() : h.error().message()));
  CHECK(h->header.transaction_id == txid);
  CHECK(h->header.length == big.bytes.size());
  REQUIRE(h->header.via_list.size() == 1);
  CHECK(*h->header.via_list[0].node() == pr::node_id::power_of_two(3));
}

/// Reads what a raw peer gets until the link closes the connection: the data frames' messages,
/// and whether close_notify came.
struct raw_received {
  std::vector<pr::bytes> messages;
  bool close_notify = false;
  bool eof = false;
};
asio::awaitable<raw_received> read_all(tt::raw_tls_peer& peer, std::chrono::milliseconds limit) {
  raw_received out;
  pr::frame_decoder dec{pr::limits{}};
  const auto deadline = tt::steady::now() + limit;
  while (tt::steady::now() < deadline) {
    auto n = co_await peer.read_some();
    auto& plain = peer.engine().plaintext();
    REQUIRE(dec.put(plain));
    plain.clear();
    while (auto fr = dec.next()) {
      if (auto* d = std::get_if<pr::data_frame>(&*fr)) out.messages.push_back(d->message);
    }
    out.close_notify = peer.engine().peer_closed();
    if (!n) {
      out.eof = true;
      break;
    }
  }
  co_return out;
}

}  // namespace

TEST_CASE("link: an oversized message: its header is handed over, the answer precedes the close") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    // The sender allows itself more than the receiver's 5000 bytes.
    auto client_cfg = tt::test_config();
    client_cfg.limits.max_message_size = 64 * 1024;
    auto p = co_await tt::connect_pair(v4(), f.server_creds, f.client_creds, tt::test_config(),
                                       client_cfg);
    tt::close_log server_log;
    server_log.watch(p.server);
    REQUIRE(p.client->try_send(tt::numbered_message(1, 100)));
    const auto big = make_big_message(20000, 0x1122334455667788);
    REQUIRE(p.client->try_send(big.bytes));
    REQUIRE(p.client->try_send(tt::numbered_message(2, 100)));  // after it: never delivered

    auto first = co_await p.server->receive();
    REQUIRE(first);
    CHECK_FALSE(first->oversized());
    CHECK(tt::message_index(first->data) == 1);
    auto m = co_await p.server->receive();
    REQUIRE(m);
    check_oversized(*m, big, 0x1122334455667788);
    CHECK(p.server->state() == tr::link_state::established);

    // The owner answers and closes at once: the answer still goes out, before close_notify.
    const auto answer = tt::numbered_message(99, 300);
    REQUIRE(p.server->try_send(answer));
    p.server->close();
    auto reply = co_await p.client->receive();
    REQUIRE(reply);
    CHECK(reply->data == answer);
    auto end = co_await p.client->receive();
    REQUIRE_FALSE(end);
    CHECK(end.error() == errc(tr::transport_errc::closed_by_peer));

    // Nothing after the oversized message reached the server's owner.
    auto after = co_await p.server->receive();
    REQUIRE_FALSE(after);
    CHECK(after.error() == errc(tr::transport_errc::closed_locally));
    CHECK(p.server->stats().messages_received == 2);
    const bool closed = co_await tt::wait_until([&] { return !server_log.reasons.empty(); });
    REQUIRE(closed);
    CHECK(server_log.reasons[0] == errc(tr::transport_errc::closed_locally));
    p.listener->close();
  });
}

TEST_CASE("link: an oversized message's header is handed over whether its body comes or not") {
  fixture f;
  bool body_trickles = false;
  SUBCASE("the body never comes") {
    body_trickles = false;
  }
  SUBCASE("the body comes slowly, after the header") {
    body_trickles = true;
  }
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<tt::server_side>();
    auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds,
                                 tt::test_listener_config(), seen);  // idle timeout 20 s
    auto raw = co_await raw_connect(lst->local_endpoint());
    tt::raw_tls_peer peer(std::move(raw), false, f.client_creds);
    const auto hs = co_await peer.handshake();
    REQUIRE_FALSE(hs);
    const bool accepted = co_await tt::wait_until([&] { return !seen->links.empty(); });
    REQUIRE(accepted);
    auto server = seen->links[0];
    tt::close_log log;
    log.watch(server);

    const auto big = make_big_message(1000000, 42);
    const pr::byte_view message(big.bytes);
    peer.queue_data_frame(0, tt::numbered_message(1, 50));
    // The frame header and the forwarding header in three records, with pauses.
    const auto start = tt::steady::now();
    peer.queue_record(frame_start(1, 1000000, message.first(5)));
    co_await peer.flush();
    co_await tt::sleep_for(30ms);
    peer.queue_record(pr::bytes(message.begin() + 5, message.begin() + 40));
    co_await peer.flush();
    co_await tt::sleep_for(30ms);
    peer.queue_record(pr::bytes(message.begin() + 40,
                                message.begin() + static_cast<std::ptrdiff_t>(big.header_size)));
    co_await peer.flush();

    auto first = co_await server->receive();
    REQUIRE(first);
    CHECK(tt::message_index(first->data) == 1);
    auto m = co_await server->receive();
    REQUIRE(m);
    CHECK(tt::steady::now() - start < 2s);  // not held back until the body or a timeout
    check_oversized(*m, big, 42);

    if (body_trickles) {
      // The link reads and drops the rest; none of it is delivered.
      const auto bytes_before = server->stats().bytes_received;
      std::size_t at = big.header_size;
      for (int i = 0; i < 5; ++i) {
        peer.queue_record(pr::bytes(message.begin() + static_cast<std::ptrdiff_t>(at),
                                    message.begin() + static_cast<std::ptrdiff_t>(at + 3000)));
        at += 3000;
        co_await peer.flush();
        co_await tt::sleep_for(20ms);
      }
      const bool read = co_await tt::wait_until(
          [&] { return server->stats().bytes_received >= bytes_before + 5 * 3000; });
      CHECK(read);
      CHECK_FALSE(server->try_receive());
      CHECK(server->state() == tr::link_state::established);
    }

    const auto answer = tt::numbered_message(7, 120);
    REQUIRE(server->try_send(answer));
    server->close();
    const auto got = co_await read_all(peer, 5s);
    REQUIRE(got.messages.size() == 1);
    CHECK(got.messages[0] == answer);
    CHECK(got.close_notify);
    CHECK(got.eof);
    const bool closed = co_await tt::wait_until([&] { return !log.reasons.empty(); });
    REQUIRE(closed);
    CHECK(log.reasons[0] == errc(tr::transport_errc::closed_locally));
    lst->close();
  });
}

TEST_CASE("link: an oversized message without an answerable header closes: frame_too_large") {
  fixture f;
  const auto big = make_big_message(6000, 5);
  const pr::byte_view message(big.bytes);
  struct bad_case {
    const char* name;
    pr::bytes record;         ///< sent after the frame header declaring 6000 bytes
    bool close_notify;        ///< then the peer closes
    std::size_t max_message;  ///< the receiver's limit
  };
  pr::bytes bad_version(message.begin(),
                        message.begin() + static_cast<std::ptrdiff_t>(big.header_size));
  bad_version[10] = 0x01;
  const std::vector<bad_case> cases{
      {"garbage instead of a forwarding header", pr::bytes{'G', 'E', 'T', ' ', '/'}, false, 5000},
      {"a header that does not decode", bad_version, false, 5000},
      {"a header larger than max_message_size", pr::bytes(message.begin(), message.begin() + 38),
       false, big.header_size - 1},
      {"the stream ends inside the header", pr::bytes(message.begin(), message.begin() + 20), true,
       5000},
      {"silence inside the header (idle timeout)", pr::bytes(message.begin(), message.begin() + 20),
       false, 5000},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      auto seen = std::make_shared<tt::server_side>();
      auto cfg = tt::test_listener_config();
      cfg.link.limits.max_message_size = c.max_message;
      cfg.link.idle_timeout = 300ms;
      auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds, cfg, seen);
      auto raw = co_await raw_connect(lst->local_endpoint());
      tt::raw_tls_peer peer(std::move(raw), false, f.client_creds);
      const auto hs = co_await peer.handshake();
      REQUIRE_FALSE(hs);
      const bool accepted = co_await tt::wait_until([&] { return !seen->links.empty(); });
      REQUIRE(accepted);
      auto server = seen->links[0];
      tt::close_log log;
      log.watch(server);
      peer.queue_record(frame_start(0, 6000, c.record));
      if (c.close_notify) peer.queue_close_notify();
      co_await peer.flush();
      const bool closed = co_await tt::wait_until([&] { return !log.reasons.empty(); });
      REQUIRE(closed);
      INFO(server->close_detail());
      CHECK(log.reasons[0] == errc(tr::transport_errc::frame_too_large));
      CHECK(server->close_detail().find("6000 bytes") != std::string::npos);
      // No oversized item: there is nothing to answer.
      auto m = co_await server->receive();
      REQUIRE_FALSE(m);
      CHECK(m.error() == errc(tr::transport_errc::frame_too_large));
      const bool eof = co_await tt::read_until_closed(peer.socket(), 3s);
      CHECK(eof);
      lst->close();
    });
  }
}
