// Application streams (AppAttach, RFC 6940 section 6.5.2) over real TLS on loopback: bytes both
// ways in any split, identities, refusals, timeouts, queue bounds and closes.

#include <doctest/doctest.h>

#include <botan/pkcs8.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "p2psip/transport/stream_listener.hpp"
#include "p2psip/transport/tls_stream.hpp"
#include "test_util.hpp"

namespace pr = p2psip::protocol;
namespace tr = p2psip::transport;
namespace tt = p2psip::transport_test;
namespace tp = p2psip::test_pki;
using namespace std::chrono_literals;
using tt::errc;
using tt::fixture;
using tt::v4;
using tt::v6;

namespace {

using stream_ptr = std::shared_ptr<tr::tls_stream>;

/// Short timeouts so failing tests end quickly.
tr::stream_config test_stream_config() {
  tr::stream_config cfg;
  cfg.handshake_timeout = 5s;
  cfg.idle_timeout = 20s;
  cfg.write_timeout = 5s;
  cfg.close_linger = 500ms;
  return cfg;
}

/// Everything the accepting side of a test saw.
struct accepted {
  std::vector<stream_ptr> streams;
  std::vector<std::error_code> failures;
};

std::shared_ptr<tr::stream_listener> open_stream_listener(
    const asio::any_io_executor& ex, const asio::ip::address& address,
    std::shared_ptr<const tr::tls_credentials> creds, tr::stream_listener_config cfg,
    std::shared_ptr<accepted> seen) {
  auto l = tr::stream_listener::open(
      ex, asio::ip::tcp::endpoint(address, 0), std::move(creds), std::move(cfg),
      [seen](stream_ptr s) { seen->streams.push_back(std::move(s)); },
      [seen](const asio::ip::tcp::endpoint&, std::error_code reason, const std::string&) {
        seen->failures.push_back(reason);
      });
  REQUIRE_MESSAGE(l.has_value(), "stream_listener: " << (l ? "" : l.error().message()));
  return *l;
}

tr::stream_listener_config listener_config(tr::stream_config cfg = test_stream_config()) {
  tr::stream_listener_config lc;
  lc.stream = std::move(cfg);
  return lc;
}

struct stream_pair {
  stream_ptr client;
  stream_ptr server;
  std::shared_ptr<tr::stream_listener> listener;
  std::shared_ptr<accepted> seen;
};

/// A stream listener with the fixture's server credentials and a client connected to it.
asio::awaitable<stream_pair> connect_streams(fixture& f, const asio::ip::address& address,
                                             tr::stream_config server_cfg = test_stream_config(),
                                             tr::stream_config client_cfg = test_stream_config()) {
  auto seen = std::make_shared<accepted>();
  auto lst = open_stream_listener(f.io.get_executor(), address, f.server_creds,
                                  listener_config(std::move(server_cfg)), seen);
  auto client = co_await tr::connect_stream(lst->local_endpoint(), f.client_creds,
                                            std::move(client_cfg), f.server_id);
  REQUIRE_MESSAGE(client.has_value(),
                  "connect_stream: " << (client ? "" : client.error().message()));
  const bool got = co_await tt::wait_until([&] { return !seen->streams.empty(); });
  REQUIRE(got);
  co_return stream_pair{*client, seen->streams.front(), lst, seen};
}

/// `size` bytes of a pattern that differs per `seed` and does not repeat every 256 bytes.
pr::bytes pattern(std::uint32_t seed, std::size_t size) {
  pr::bytes b(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& v : b) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v = static_cast<std::uint8_t>(x);
  }
  return b;
}

/// Deterministic pseudo-random numbers for splitting.
struct splitter {
  std::uint32_t state;
  std::size_t next(std::size_t max) {
    state = state * 1664525u + 1013904223u;
    return 1 + (state >> 8) % max;
  }
};

/// Writes `data` in pieces of 1 to `max_piece` bytes (async_write: waits for room).
asio::awaitable<void> write_split(stream_ptr s, pr::bytes data, std::uint32_t seed,
                                  std::size_t max_piece) {
  splitter split{seed};
  std::size_t offset = 0;
  while (offset < data.size()) {
    const std::size_t n = std::min(split.next(max_piece), data.size() - offset);
    const auto first = data.begin() + static_cast<std::ptrdiff_t>(offset);
    auto r = co_await s->async_write(pr::bytes(first, first + static_cast<std::ptrdiff_t>(n)));
    REQUIRE_MESSAGE(r, "async_write: " << (r ? "" : r.error().message()));
    offset += n;
  }
}

/// Reads until `n` bytes arrived (REQUIRE: the stream does not end before).
asio::awaitable<pr::bytes> read_exactly(stream_ptr s, std::size_t n) {
  pr::bytes out;
  while (out.size() < n) {
    auto r = co_await s->read_some();
    REQUIRE_MESSAGE(r, "read_some after " << out.size() << " of " << n
                                          << " bytes: " << (r ? "" : r.error().message()));
    REQUIRE_FALSE(r->empty());
    out.insert(out.end(), r->begin(), r->end());
  }
  co_return out;
}

/// Everything a stream delivers, and how it ended.
struct to_end {
  pr::bytes data;
  std::error_code end;
};
asio::awaitable<to_end> read_to_end(stream_ptr s) {
  to_end out;
  for (;;) {
    auto r = co_await s->read_some();
    if (!r) {
      out.end = r.error();
      break;
    }
    REQUIRE_FALSE(r->empty());
    out.data.insert(out.data.end(), r->begin(), r->end());
  }
  co_return out;
}

/// Echoes everything `s` receives until it ends.
asio::awaitable<void> echo(stream_ptr s) {
  for (;;) {
    auto r = co_await s->read_some();
    if (!r) break;
    auto w = co_await s->async_write(std::move(*r));
    if (!w) break;
  }
}

/// Runs the coroutine `make()` returns on `io` (co_spawn keeps `make`, and so a coroutine lambda's
/// captures, alive until it ends); sets `done` when it finishes; rethrows from the test runner.
template <class F>
void spawn(asio::io_context& io, bool& done, F make) {
  asio::co_spawn(io, std::move(make), [&done](std::exception_ptr e) {
    done = true;
    if (e) std::rethrow_exception(e);
  });
}

struct close_log {
  std::vector<std::error_code> reasons;
  void watch(const stream_ptr& s) {
    s->on_close([this](std::error_code r) { reasons.push_back(r); });
  }
};

}  // namespace

TEST_CASE("stream: Node-IDs from certificates, echo of 1 B to 1 MiB split anyhow (IPv4, ::1)") {
  fixture f;
  for (const auto& address : {v4(), v6()}) {
    CAPTURE(address.to_string());
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      auto p = co_await connect_streams(f, address);
      CHECK(p.client->state() == tr::stream_state::established);
      CHECK(p.server->state() == tr::stream_state::established);
      CHECK(p.client->peer_node_ids() == std::vector<pr::node_id>{f.server_id});
      CHECK(p.server->peer_node_ids() == std::vector<pr::node_id>{f.client_id});
      CHECK(p.client->peer_user() == "node@example.org");
      CHECK_FALSE(p.server->peer_certificate().empty());
      CHECK(p.client->cipher_suite() == "ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
      CHECK(p.client->remote_endpoint().address() == address);
      CHECK(p.server->remote_endpoint() == p.client->local_endpoint());
      CHECK(p.server->local_endpoint() == p.listener->local_endpoint());
      bool echo_done = false;
      spawn(f.io, echo_done, [s = p.server] { return echo(s); });

      const std::vector<std::size_t> sizes{1,     2,     7,     100,   1000,   4095,   16383,
                                           16384, 16385, 40000, 65536, 100001, 262144, 1 << 20};
      std::uint32_t seed = 1;
      std::uint64_t total = 0;
      for (const std::size_t size : sizes) {
        CAPTURE(size);
        // Pieces from 1 byte up to a little over a record, or up to the whole payload.
        for (const std::size_t max_piece : {std::size_t{17000}, size}) {
          const auto data = pattern(++seed, size);
          bool written = false;
          spawn(f.io, written, [s = p.client, data, seed, max_piece] {
            return write_split(s, data, seed, max_piece);
          });
          const auto back = co_await read_exactly(p.client, size);
          CHECK(back == data);
          const bool wrote = co_await tt::wait_until([&] { return written; });
          CHECK(wrote);
          total += size;
        }
      }
      CHECK(p.client->stats().app_bytes_sent == total);
      CHECK(p.client->stats().app_bytes_received == total);
      CHECK(p.server->stats().app_bytes_received == total);
      CHECK(p.client->stats().bytes_sent > total);
      CHECK(p.client->queued_bytes() == 0);
      CHECK(p.client->buffered_bytes() == 0);

      p.client->close();
      const bool ended = co_await tt::wait_until([&] { return echo_done; });
      CHECK(ended);
      CHECK(p.server->close_reason() == errc(tr::transport_errc::closed_by_peer));
      p.listener->close();
    });
  }
}

TEST_CASE("stream: both directions at once, through small queues and buffers") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto cfg = test_stream_config();
    cfg.max_queued_bytes = 20000;
    cfg.max_buffered_bytes = 10000;
    auto p = co_await connect_streams(f, v4(), cfg, cfg);
    constexpr std::size_t size = 3 * 1024 * 1024 + 123;
    const auto up = pattern(7, size);
    const auto down = pattern(8, size);
    bool up_written = false;
    bool down_written = false;
    bool up_read = false;
    bool down_read = false;
    pr::bytes got_up;
    pr::bytes got_down;
    spawn(f.io, up_written, [&] { return write_split(p.client, up, 1, 30000); });
    spawn(f.io, down_written, [&] { return write_split(p.server, down, 2, 5000); });
    spawn(f.io, up_read,
          [&]() -> asio::awaitable<void> { got_up = co_await read_exactly(p.server, size); });
    spawn(f.io, down_read,
          [&]() -> asio::awaitable<void> { got_down = co_await read_exactly(p.client, size); });
    std::size_t most_queued = 0;
    std::size_t most_buffered = 0;
    const bool all = co_await tt::wait_until(
        [&] {
          most_queued = std::max({most_queued, p.client->queued_bytes(), p.server->queued_bytes()});
          most_buffered =
              std::max({most_buffered, p.client->buffered_bytes(), p.server->buffered_bytes()});
          return up_written && down_written && up_read && down_read;
        },
        20s);
    REQUIRE(all);
    CHECK(got_up == up);
    CHECK(got_down == down);
    CHECK(most_queued <= 20000);
    // The limit plus what one socket read adds: the rest of a TLS record and one more record.
    CHECK(most_buffered < 10000 + 33 * 1024);
    p.client->close();
    p.listener->close();
  });
}

TEST_CASE("stream: close() sends the queued bytes, then the peer sees closed_by_peer") {
  fixture f;
  bool client_closes = true;
  SUBCASE("the connecting side closes") {
    client_closes = true;
  }
  SUBCASE("the accepting side closes") {
    client_closes = false;
  }
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto p = co_await connect_streams(f, v4());
    auto closer = client_closes ? p.client : p.server;
    auto other = client_closes ? p.server : p.client;
    close_log closer_log;
    close_log other_log;
    closer_log.watch(closer);
    other_log.watch(other);
    // Queued and closed in one go: nothing is written when close() is called.
    pr::bytes sent;
    for (std::uint32_t i = 0; i < 40; ++i) {
      auto chunk = pattern(i, 1000 + 500 * i);
      REQUIRE(closer->write(chunk));
      sent.insert(sent.end(), chunk.begin(), chunk.end());
    }
    CHECK(closer->queued_bytes() == sent.size());
    closer->close();
    CHECK(closer->state() == tr::stream_state::closing);
    auto refused = closer->write(pr::bytes{1, 2, 3});
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == errc(tr::transport_errc::not_connected));
    closer->close();  // idempotent

    auto all = co_await read_to_end(other);
    CHECK(all.data.size() == sent.size());
    CHECK(all.data == sent);
    CHECK(all.end == errc(tr::transport_errc::closed_by_peer));
    // Writing to a stream the peer closed is refused.
    auto late = other->write(pr::bytes{1});
    REQUIRE_FALSE(late);
    CHECK(late.error() == errc(tr::transport_errc::not_connected));

    const bool both = co_await tt::wait_until(
        [&] { return !closer_log.reasons.empty() && !other_log.reasons.empty(); });
    REQUIRE(both);
    co_await tt::sleep_for(100ms);
    CHECK(closer_log.reasons ==
          std::vector<std::error_code>{errc(tr::transport_errc::closed_locally)});
    CHECK(other_log.reasons ==
          std::vector<std::error_code>{errc(tr::transport_errc::closed_by_peer)});
    CHECK(closer->state() == tr::stream_state::closed);
    CHECK(other->state() == tr::stream_state::closed);
    auto after = co_await closer->read_some();
    REQUIRE_FALSE(after);
    CHECK(after.error() == errc(tr::transport_errc::closed_locally));
    // A handler set after the close still hears it, once.
    close_log late_log;
    late_log.watch(closer);
    co_await tt::sleep_for(20ms);
    CHECK(late_log.reasons.size() == 1);
    p.listener->close();
  });
}

TEST_CASE("stream: handshake end, data and close_notify in one TCP segment") {
  // Botan's Asio wrapper once mishandled this (STYLE.md): each state change in turn.
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    tt::raw_acceptor acc(f.io);
    const auto data1 = pattern(1, 3000);
    const auto data2 = pattern(2, 20000);
    bool served = false;
    spawn(f.io, served, [&]() -> asio::awaitable<void> {
      asio::ip::tcp::socket s(f.io);
      auto [ec] = co_await acc.acceptor.async_accept(s, tt::nothrow);
      REQUIRE_FALSE(ec);
      tt::raw_tls_peer peer(std::move(s), true, f.server_creds);
      const auto hs = co_await peer.handshake(false);  // keep ChangeCipherSpec + Finished
      REQUIRE_FALSE(hs);
      peer.queue_record(data1);
      peer.queue_record(data2);
      peer.queue_close_notify();
      co_await peer.flush();
      const bool eof = co_await tt::read_until_closed(peer.socket(), 3s);
      CHECK(eof);
    });
    auto c = co_await tr::connect_stream(acc.endpoint(), f.client_creds, test_stream_config(),
                                         f.server_id);
    REQUIRE(c);
    auto all = co_await read_to_end(*c);
    pr::bytes expected = data1;
    expected.insert(expected.end(), data2.begin(), data2.end());
    CHECK(all.data == expected);
    CHECK(all.end == errc(tr::transport_errc::closed_by_peer));
    const bool done = co_await tt::wait_until([&] { return served; });
    CHECK(done);
  });
}

TEST_CASE("stream: a certificate from another CA is refused, in both directions") {
  fixture f;
  tp::test_ca other("another overlay's root");
  std::shared_ptr<const tr::tls_credentials> server_creds = f.server_creds;
  std::shared_ptr<const tr::tls_credentials> client_creds = f.client_creds;
  std::error_code client_expected;
  std::error_code server_expected;
  SUBCASE("the connecting side's certificate") {
    client_creds =
        tp::link_credentials(other, {f.client_id}, tp::key_type::ecdsa_p256, {f.ca.certificate()});
    client_expected = errc(tr::transport_errc::rejected_by_peer);
    server_expected = errc(tr::transport_errc::certificate_rejected);
  }
  SUBCASE("the accepting side's certificate") {
    server_creds =
        tp::link_credentials(other, {f.server_id}, tp::key_type::ecdsa_p256, {f.ca.certificate()});
    client_expected = errc(tr::transport_errc::certificate_rejected);
    server_expected = errc(tr::transport_errc::rejected_by_peer);
  }
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<accepted>();
    auto lst =
        open_stream_listener(f.io.get_executor(), v4(), server_creds, listener_config(), seen);
    auto c = co_await tr::connect_stream(lst->local_endpoint(), client_creds, test_stream_config());
    REQUIRE_FALSE(c);
    CHECK(c.error() == client_expected);
    const bool failed = co_await tt::wait_until([&] { return !seen->failures.empty(); });
    REQUIRE(failed);
    CHECK(seen->failures[0] == server_expected);
    CHECK(seen->streams.empty());
    CHECK(lst->stats().handshakes_failed == 1);
    CHECK(lst->stats().established == 0);
    lst->close();
  });
}

TEST_CASE("stream: the expected Node-ID must be in the peer's certificate") {
  fixture f;
  const auto second = tp::random_node_id();
  auto multi = tp::link_credentials(f.ca, {f.server_id, second});
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<accepted>();
    auto lst = open_stream_listener(f.io.get_executor(), v4(), multi, listener_config(), seen);
    // One of the certificate's Node-IDs: accepted.
    auto ok = co_await tr::connect_stream(lst->local_endpoint(), f.client_creds,
                                          test_stream_config(), second);
    REQUIRE(ok);
    CHECK((*ok)->peer_node_ids().size() == 2);
    (*ok)->close();
    // Another: the connecting side refuses; the accepting side sees the alert.
    auto wrong = co_await tr::connect_stream(lst->local_endpoint(), f.client_creds,
                                             test_stream_config(), tp::random_node_id());
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error() == errc(tr::transport_errc::wrong_node_id));
    const bool failed = co_await tt::wait_until([&] { return !seen->failures.empty(); });
    REQUIRE(failed);
    CHECK(seen->failures[0] == errc(tr::transport_errc::rejected_by_peer));
    CHECK(seen->streams.size() == 1);
    CHECK(lst->stats().accepted == 2);
    lst->close();
  });
}

TEST_CASE("stream: no credentials: no listener, no connection. Nothing listening: connect_failed") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto l = tr::stream_listener::open(f.io.get_executor(), asio::ip::tcp::endpoint(v4(), 0),
                                       nullptr, listener_config(), {}, {});
    REQUIRE_FALSE(l);
    CHECK(l.error() == errc(tr::transport_errc::invalid_credentials));
    auto c = co_await tr::connect_stream(asio::ip::tcp::endpoint(v4(), 1), nullptr,
                                         test_stream_config());
    REQUIRE_FALSE(c);
    CHECK(c.error() == errc(tr::transport_errc::invalid_credentials));
    // A port nobody listens on (bound, not listening).
    asio::ip::tcp::socket unused(f.io, asio::ip::tcp::endpoint(v4(), 0));
    auto refused =
        co_await tr::connect_stream(unused.local_endpoint(), f.client_creds, test_stream_config());
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == errc(tr::transport_errc::connect_failed));
  });
}

TEST_CASE("stream: handshake timeout against a TCP peer that never speaks (both roles)") {
  fixture f;
  SUBCASE("accepting side: a client connects and stays silent") {
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      auto seen = std::make_shared<accepted>();
      auto cfg = test_stream_config();
      cfg.handshake_timeout = 300ms;
      auto lst = open_stream_listener(f.io.get_executor(), v4(), f.server_creds,
                                      listener_config(cfg), seen);
      const auto start = tt::steady::now();
      auto s = co_await tt::raw_connect(lst->local_endpoint());
      const bool failed = co_await tt::wait_until([&] { return !seen->failures.empty(); }, 5s);
      REQUIRE(failed);
      const auto elapsed = tt::steady::now() - start;
      CHECK(seen->failures[0] == errc(tr::transport_errc::handshake_timeout));
      CHECK(elapsed >= 250ms);
      CHECK(elapsed < 3s);
      const bool closed = co_await tt::read_until_closed(s, 3s);
      CHECK(closed);
      CHECK(lst->pending_handshakes() == 0);
      lst->close();
    });
  }
  SUBCASE("connecting side: the server accepts and stays silent") {
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      tt::raw_acceptor silent(f.io);
      asio::ip::tcp::socket held(f.io);
      silent.acceptor.async_accept(held, [](const asio::error_code&) {});
      auto cfg = test_stream_config();
      cfg.handshake_timeout = 300ms;
      const auto start = tt::steady::now();
      auto c = co_await tr::connect_stream(silent.endpoint(), f.client_creds, cfg);
      const auto elapsed = tt::steady::now() - start;
      REQUIRE_FALSE(c);
      CHECK(c.error() == errc(tr::transport_errc::handshake_timeout));
      CHECK(elapsed >= 250ms);
      CHECK(elapsed < 3s);
    });
  }
}

TEST_CASE("stream: idle timeout closes a silent stream, traffic keeps it open") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto server_cfg = test_stream_config();
    server_cfg.idle_timeout = 300ms;
    auto p = co_await connect_streams(f, v4(), server_cfg);
    close_log server_log;
    server_log.watch(p.server);
    // A byte every 100 ms for 900 ms: three idle timeouts' worth, never 300 ms of silence.
    for (int i = 0; i < 9; ++i) {
      REQUIRE(p.client->write(pr::bytes{static_cast<std::uint8_t>(i)}));
      co_await tt::sleep_for(100ms);
      auto r = co_await p.server->read_some();
      REQUIRE(r);
    }
    CHECK(p.server->state() == tr::stream_state::established);
    const auto start = tt::steady::now();
    const bool closed = co_await tt::wait_until([&] { return !server_log.reasons.empty(); }, 5s);
    REQUIRE(closed);
    const auto elapsed = tt::steady::now() - start;
    CHECK(server_log.reasons[0] == errc(tr::transport_errc::idle_timeout));
    CHECK(elapsed >= 150ms);
    CHECK(elapsed < 3s);
    // The idle side drops the connection without close_notify: not a clean close for the peer.
    auto end = co_await read_to_end(p.client);
    CHECK(end.end == errc(tr::transport_errc::connection_lost));
    p.listener->close();
  });
}

TEST_CASE("stream: the write queue is bounded, async_write waits and splits") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto client_cfg = test_stream_config();
    client_cfg.max_queued_bytes = 1000;
    auto p = co_await connect_streams(f, v4(), test_stream_config(), client_cfg);

    // Nothing is written between these calls (no co_await): the bound is exact.
    auto over = p.client->write(pattern(1, 1001));
    REQUIRE_FALSE(over);
    CHECK(over.error() == errc(tr::transport_errc::queue_full));
    CHECK(p.client->queued_bytes() == 0);
    REQUIRE(p.client->write(pattern(2, 600)));
    auto one_over = p.client->write(pattern(3, 401));
    REQUIRE_FALSE(one_over);
    CHECK(one_over.error() == errc(tr::transport_errc::queue_full));
    CHECK(p.client->queued_bytes() == 600);
    REQUIRE(p.client->write(pattern(4, 400)));
    CHECK(p.client->queued_bytes() == 1000);
    REQUIRE(p.client->write({}));  // empty: accepted, nothing queued
    auto first = co_await read_exactly(p.server, 1000);
    pr::bytes expected = pattern(2, 600);
    const auto tail = pattern(4, 400);
    expected.insert(expected.end(), tail.begin(), tail.end());
    CHECK(first == expected);

    // The server's application stops reading: the client's queue fills and stays at its bound.
    std::size_t accepted_bytes = 0;
    auto full_since = tt::steady::now();
    bool was_full = false;
    while (accepted_bytes < 64 * 1024 * 1024) {
      auto r = p.client->write(pattern(5, 500));
      CHECK(p.client->queued_bytes() <= 1000);
      if (r) {
        accepted_bytes += 500;
        was_full = false;
        continue;
      }
      REQUIRE(r.error() == errc(tr::transport_errc::queue_full));
      if (!was_full) {
        was_full = true;
        full_since = tt::steady::now();
      } else if (tt::steady::now() - full_since > 300ms) {
        break;
      }
      co_await tt::sleep_for(0ms);  // lets the writer run: a 1000-byte queue drains fast
    }
    INFO("bytes accepted before the sender stalled: " << accepted_bytes);
    // Bounded by the queues, the receive buffer and what the kernel holds on lo (a few MB).
    CHECK(accepted_bytes < 32 * 1024 * 1024);
    CHECK(p.client->state() == tr::stream_state::established);

    // async_write of far more than the bound: it waits, queues piece by piece, never over.
    const auto big = pattern(6, 200000);
    bool big_done = false;
    spawn(f.io, big_done, [&]() -> asio::awaitable<void> {
      auto r = co_await p.client->async_write(big);
      REQUIRE(r);
    });
    co_await tt::sleep_for(50ms);
    CHECK_FALSE(big_done);
    // write() does not cut in while async_write has bytes left to queue.
    auto cut_in = p.client->write(pr::bytes{1});
    REQUIRE_FALSE(cut_in);
    CHECK(cut_in.error() == errc(tr::transport_errc::queue_full));

    // Now read everything: in order, nothing lost, the queue never over its bound.
    const std::size_t total = accepted_bytes + big.size();
    std::size_t most_queued = 0;
    pr::bytes got;
    while (got.size() < total) {
      most_queued = std::max(most_queued, p.client->queued_bytes());
      auto r = co_await p.server->read_some();
      REQUIRE_MESSAGE(r, "after " << got.size() << " of " << total
                                  << " bytes: " << (r ? "" : r.error().message()));
      got.insert(got.end(), r->begin(), r->end());
    }
    REQUIRE(got.size() == total);
    const auto piece = pattern(5, 500);
    bool pieces_ok = true;
    for (std::size_t i = 0; i < accepted_bytes; i += 500) {
      pieces_ok = pieces_ok && std::equal(piece.begin(), piece.end(),
                                          got.begin() + static_cast<std::ptrdiff_t>(i));
    }
    CHECK(pieces_ok);
    const pr::bytes got_big(got.begin() + static_cast<std::ptrdiff_t>(accepted_bytes), got.end());
    CHECK(got_big == big);
    CHECK(most_queued <= 1000);
    const bool done = co_await tt::wait_until([&] { return big_done; });
    CHECK(done);
    p.client->close();
    p.listener->close();
  });
}

TEST_CASE("stream: close() toward a peer that does not read ends within close_linger") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto client_cfg = test_stream_config();
    client_cfg.close_linger = 300ms;
    client_cfg.max_queued_bytes = 64 * 1024 * 1024;
    auto server_cfg = test_stream_config();
    server_cfg.max_buffered_bytes = 16 * 1024;
    auto p = co_await connect_streams(f, v4(), server_cfg, client_cfg);
    close_log log;
    log.watch(p.client);
    // Far more than the socket buffers of lo hold; the server's application never reads.
    REQUIRE(p.client->write(pattern(1, 32 * 1024 * 1024)));
    co_await tt::sleep_for(50ms);
    const auto start = tt::steady::now();
    p.client->close();
    const bool closed = co_await tt::wait_until([&] { return !log.reasons.empty(); }, 5s);
    REQUIRE(closed);
    const auto elapsed = tt::steady::now() - start;
    CHECK(elapsed >= 250ms);
    CHECK(elapsed < 2s);
    CHECK(log.reasons[0] == errc(tr::transport_errc::closed_locally));
    p.server->close();
    p.listener->close();
  });
}

TEST_CASE("stream_listener: garbage instead of TLS is reported, closing stops accepting") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<accepted>();
    auto lst =
        open_stream_listener(f.io.get_executor(), v4(), f.server_creds, listener_config(), seen);
    CHECK(lst->is_open());
    auto s = co_await tt::raw_connect(lst->local_endpoint());
    const std::string garbage = "INVITE sip:bob@example.org SIP/2.0\r\n\r\n";
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(garbage), tt::nothrow);
    REQUIRE_FALSE(ec);
    (void)n;
    const bool dropped = co_await tt::read_until_closed(s, 3s);
    CHECK(dropped);
    const bool failed = co_await tt::wait_until([&] { return !seen->failures.empty(); });
    REQUIRE(failed);
    CHECK(seen->failures[0] == errc(tr::transport_errc::handshake_failed));
    CHECK(lst->stats().accepted == 1);

    // A handshake in progress when the listener closes is aborted and not handed up.
    auto silent = co_await tt::raw_connect(lst->local_endpoint());
    const bool pending = co_await tt::wait_until([&] { return lst->pending_handshakes() == 1; });
    REQUIRE(pending);
    const auto endpoint = lst->local_endpoint();
    lst->close();
    lst->close();
    CHECK_FALSE(lst->is_open());
    const bool aborted = co_await tt::read_until_closed(silent, 3s);
    CHECK(aborted);
    auto c = co_await tr::connect_stream(endpoint, f.client_creds, test_stream_config());
    CHECK_FALSE(c);
    co_await tt::sleep_for(50ms);
    CHECK(seen->streams.empty());
    CHECK(seen->failures.size() == 1);
  });
}

// ---------------------------------------------------------------------------------------------
// Plain TLS, as any TLS stack speaks it: OpenSSL's s_server and s_client with the overlay's
// certificates (each side checks the other's chain; ours also the Node-ID).

namespace {

/// A child process started by a test; killed and reaped if still running at the end.
struct child_process {
  pid_t pid = -1;
  child_process() = default;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

  /// Starts `args` (looked up in PATH) with stdin from `in` and stdout and stderr to `out`.
  void start(const std::vector<std::string>& args, const std::string& in, const std::string& out) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(rc == 0, "cannot start " << args[0] << " (apt-get install openssl)");
  }

  /// Waits for the exit (polling, at most `limit`); its exit status, nothing on timeout.
  asio::awaitable<std::optional<int>> wait(std::chrono::milliseconds limit) {
    const auto deadline = tt::steady::now() + limit;
    while (tt::steady::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        co_return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      co_await tt::sleep_for(10ms);
    }
    co_return std::nullopt;
  }
};

/// A temporary directory, removed with its files at the end.
struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    path = std::filesystem::temp_directory_path() /
           ("p2psip-stream-test-" + std::to_string(::getpid()) + "-" +
            std::to_string(tt::steady::now().time_since_epoch().count()));
    std::filesystem::create_directories(path);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const auto file = path / name;
    std::ofstream(file, std::ios::binary) << text;
    return file.string();
  }
  std::string read(const std::string& name) const {
    std::ifstream in(path / name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
};

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it first,
/// which is unlikely enough on a test machine).
unsigned short free_port(asio::io_context& io) {
  asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(v4(), 0));
  return a.local_endpoint().port();
}

}  // namespace

TEST_CASE("stream: interoperates with OpenSSL's s_server and s_client (TLS 1.2, mutual auth)") {
  fixture f;
  temp_dir dir;
  const auto openssl_id = tp::random_node_id();
  const auto issued = f.ca.issue(tp::link_spec({openssl_id}));
  const auto cert = dir.write("node.pem", issued.certificate.PEM_encode());
  const auto key = dir.write("node.key", Botan::PKCS8::PEM_encode(*issued.key));
  const auto ca = dir.write("ca.pem", f.ca.certificate().PEM_encode());
  const auto nothing = dir.write("empty", "");

  SUBCASE("connect_stream to s_server") {
    const auto port = free_port(f.io);
    child_process server;
    server.start({"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-tls1_2",
                  "-cert", cert, "-key", key, "-CAfile", ca, "-Verify", "2", "-verify_return_error",
                  "-rev", "-naccept", "1"},
                 nothing, (dir.path / "server.log").string());
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      // s_server needs a moment to listen: retry the connection for a while.
      pr::result<stream_ptr> c = tr::make_error_code(tr::transport_errc::connect_failed);
      for (int attempt = 0; attempt < 100; ++attempt) {
        c = co_await tr::connect_stream(asio::ip::tcp::endpoint(v4(), port), f.client_creds,
                                        test_stream_config(), openssl_id);
        if (c || c.error() != errc(tr::transport_errc::connect_failed)) break;
        co_await tt::sleep_for(50ms);
      }
      REQUIRE_MESSAGE(c, "connect_stream: " << (c ? "" : c.error().message()) << "\n"
                                            << dir.read("server.log"));
      CHECK((*c)->peer_node_ids() == std::vector<pr::node_id>{openssl_id});
      // -rev sends each line back reversed.
      REQUIRE((*c)->write(pr::to_bytes("hello from p2psip\n")));
      std::string back;
      while (back.find('\n') == std::string::npos) {
        auto r = co_await (*c)->read_some();
        REQUIRE_MESSAGE(r, "read_some: " << (r ? "" : r.error().message()) << "\n"
                                         << dir.read("server.log"));
        back.append(r->begin(), r->end());
      }
      CHECK(back == "pisp2p morf olleh\n");
      (*c)->close();
      const auto status = co_await server.wait(5s);
      CHECK(status == std::optional<int>(0));
    });
  }

  SUBCASE("s_client to stream_listener") {
    tt::run(f.io, [&]() -> asio::awaitable<void> {
      auto seen = std::make_shared<accepted>();
      auto lst =
          open_stream_listener(f.io.get_executor(), v4(), f.server_creds, listener_config(), seen);
      const auto input = dir.write("input", "ping from openssl\n");
      child_process client;
      client.start({"openssl", "s_client", "-connect",
                    "127.0.0.1:" + std::to_string(lst->local_endpoint().port()), "-tls1_2", "-cert",
                    cert, "-key", key, "-CAfile", ca, "-verify_return_error", "-quiet"},
                   input, (dir.path / "client.log").string());
      const bool got = co_await tt::wait_until([&] { return !seen->streams.empty(); }, 10s);
      REQUIRE_MESSAGE(got, "no stream from s_client: " << dir.read("client.log"));
      auto s = seen->streams.front();
      CHECK(s->peer_node_ids() == std::vector<pr::node_id>{openssl_id});
      std::string line;
      while (line.find('\n') == std::string::npos) {
        auto r = co_await s->read_some();
        REQUIRE(r);
        line.append(r->begin(), r->end());
      }
      CHECK(line == "ping from openssl\n");
      REQUIRE(s->write(pr::to_bytes("pong from p2psip\n")));
      s->close();  // s_client (-quiet ignores the end of its input) exits on our close_notify
      const auto status = co_await client.wait(5s);
      CHECK(status == std::optional<int>(0));
      CHECK(dir.read("client.log").find("pong from p2psip\n") != std::string::npos);
      lst->close();
    });
  }
}
