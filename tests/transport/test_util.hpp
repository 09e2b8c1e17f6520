#pragma once
// Helpers for the link and stream tests: run a test coroutine on an io_context with a time limit,
// a fixture with a CA and two nodes' credentials, a listener and a connected pair of links on
// loopback, and a hand-driven TLS peer (our own Botan engine over a socket) for the cases a
// well-behaved link cannot produce. Certificates come from the shared test PKI
// (tests/support/test_pki_tls.hpp).

#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "p2psip/protocol/framing.hpp"
#include "p2psip/transport/link.hpp"
#include "p2psip/transport/listener.hpp"
#include "test_pki_tls.hpp"
#include "tls_engine.hpp"

namespace p2psip::transport_test {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
inline constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);

inline asio::ip::address v4() {
  return asio::ip::make_address("127.0.0.1");
}
inline asio::ip::address v6() {
  return asio::ip::make_address("::1");
}

inline std::error_code errc(transport::transport_errc e) {
  return transport::make_error_code(e);
}

/// Runs the coroutine `make()` returns on `io` until it completes or `limit` passes (a failure);
/// rethrows what it threw (REQUIRE failures included).
template <class F>
void run(asio::io_context& io, F make, std::chrono::milliseconds limit = 30s) {
  bool done = false;
  std::exception_ptr error;
  io.restart();
  asio::co_spawn(io, make(), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  const auto deadline = steady::now() + limit;
  while (!done && steady::now() < deadline) {
    io.run_one_for(50ms);
    if (io.stopped()) io.restart();
  }
  REQUIRE_MESSAGE(done, "the test coroutine did not finish within its time limit");
  if (error) std::rethrow_exception(error);
}

/// Runs `io` until it has no work left or `limit` passes: lets closing links finish.
inline void settle(asio::io_context& io, std::chrono::milliseconds limit = 3s) {
  io.restart();
  const auto deadline = steady::now() + limit;
  while (!io.stopped() && steady::now() < deadline) io.run_one_for(20ms);
}

inline asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer t(ex);
  t.expires_after(d);
  auto [ec] = co_await t.async_wait(nothrow);
  (void)ec;
}

/// Waits (polling every 5 ms, at most `limit`) until `done()` holds; returns whether it did.
inline asio::awaitable<bool> wait_until(std::function<bool()> done,
                                        std::chrono::milliseconds limit = 5s) {
  const auto deadline = steady::now() + limit;
  while (!done()) {
    if (steady::now() >= deadline) co_return false;
    co_await sleep_for(5ms);
  }
  co_return true;
}

/// Reads from `s` until EOF or an error (true) or until `limit` passes (false).
inline asio::awaitable<bool> read_until_closed(asio::ip::tcp::socket& s,
                                               std::chrono::milliseconds limit = 5s) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(s.get_executor());
  timer.expires_after(limit);
  std::vector<std::uint8_t> buf(16 * 1024);
  for (;;) {
    auto r = co_await (s.async_read_some(asio::buffer(buf), nothrow) || timer.async_wait(nothrow));
    if (r.index() == 1) co_return false;
    auto [ec, n] = std::get<0>(r);
    (void)n;
    if (ec) co_return true;
  }
}

/// An io_context, a test CA and credentials for a server and a client node (one Node-ID each).
/// Its destructor lets closing connections finish.
struct fixture {
  asio::io_context io;
  test_pki::test_ca ca;
  protocol::node_id server_id = test_pki::random_node_id();
  protocol::node_id client_id = test_pki::random_node_id();
  std::shared_ptr<const transport::tls_credentials> server_creds =
      test_pki::link_credentials(ca, {server_id});
  std::shared_ptr<const transport::tls_credentials> client_creds =
      test_pki::link_credentials(ca, {client_id});

  fixture() = default;
  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;
  ~fixture() { settle(io); }
};

/// A plain TCP acceptor on loopback for raw peers.
struct raw_acceptor {
  asio::ip::tcp::acceptor acceptor;
  explicit raw_acceptor(asio::io_context& io, const asio::ip::address& a = v4())
      : acceptor(io, asio::ip::tcp::endpoint(a, 0)) {}
  asio::ip::tcp::endpoint endpoint() const { return acceptor.local_endpoint(); }
};

/// A TCP connection to `ep` (REQUIRE: it opens).
inline asio::awaitable<asio::ip::tcp::socket> raw_connect(asio::ip::tcp::endpoint ep) {
  auto ex = co_await asio::this_coro::executor;
  asio::ip::tcp::socket s(ex);
  auto [ec] = co_await s.async_connect(ep, nothrow);
  REQUIRE_FALSE(ec);
  co_return s;
}

/// Short timeouts so failing tests end quickly.
inline transport::link_config test_config() {
  transport::link_config cfg;
  cfg.handshake_timeout = 5s;
  cfg.idle_timeout = 20s;
  cfg.write_timeout = 5s;
  cfg.close_linger = 500ms;
  return cfg;
}

/// Everything the server side of a test saw.
struct server_side {
  std::vector<std::shared_ptr<transport::link>> links;
  std::vector<std::error_code> failures;
  std::vector<std::string> failure_details;
};

/// A listener config whose links use test_config().
inline transport::listener_config test_listener_config() {
  transport::listener_config cfg;
  cfg.link = test_config();
  return cfg;
}

/// A listener on `address` (port 0) recording accepted links and failed handshakes.
inline std::shared_ptr<transport::listener> open_listener(
    const asio::any_io_executor& ex, const asio::ip::address& address,
    std::shared_ptr<const transport::tls_credentials> creds, transport::listener_config cfg,
    std::shared_ptr<server_side> seen) {
  auto l = transport::listener::open(
      ex, asio::ip::tcp::endpoint(address, 0), std::move(creds), std::move(cfg),
      [seen](std::shared_ptr<transport::link> link) { seen->links.push_back(std::move(link)); },
      [seen](const asio::ip::tcp::endpoint&, std::error_code reason, const std::string& detail) {
        seen->failures.push_back(reason);
        seen->failure_details.push_back(detail);
      });
  REQUIRE_MESSAGE(l.has_value(), "listener: " << (l ? std::string() : l.error().message()));
  return *l;
}

struct link_pair {
  std::shared_ptr<transport::link> client;
  std::shared_ptr<transport::link> server;
  std::shared_ptr<transport::listener> listener;
  std::shared_ptr<server_side> seen;
};

/// A listener with `server_creds` and a client connected to it with `client_creds`; both links
/// established.
inline asio::awaitable<link_pair> connect_pair(
    const asio::ip::address& address,
    std::shared_ptr<const transport::tls_credentials> server_creds,
    std::shared_ptr<const transport::tls_credentials> client_creds,
    transport::link_config server_cfg = test_config(),
    transport::link_config client_cfg = test_config(),
    std::optional<protocol::node_id> required = std::nullopt) {
  auto ex = co_await asio::this_coro::executor;
  auto seen = std::make_shared<server_side>();
  transport::listener_config lcfg;
  lcfg.link = std::move(server_cfg);
  auto lst = open_listener(ex, address, std::move(server_creds), std::move(lcfg), seen);
  auto client = co_await transport::connect(lst->local_endpoint(), std::move(client_creds),
                                            std::move(client_cfg), required);
  REQUIRE_MESSAGE(client.has_value(), "connect: " << (client ? "" : client.error().message()));
  const bool accepted = co_await wait_until([&] { return !seen->links.empty(); });
  REQUIRE(accepted);
  co_return link_pair{*client, seen->links.front(), lst, seen};
}

/// A message of `size` bytes whose first 4 bytes are `index` (big-endian) and the rest a pattern.
inline protocol::bytes numbered_message(std::uint32_t index, std::size_t size) {
  protocol::bytes m(std::max<std::size_t>(size, 4));
  m[0] = static_cast<std::uint8_t>(index >> 24);
  m[1] = static_cast<std::uint8_t>(index >> 16);
  m[2] = static_cast<std::uint8_t>(index >> 8);
  m[3] = static_cast<std::uint8_t>(index);
  for (std::size_t i = 4; i < m.size(); ++i) m[i] = static_cast<std::uint8_t>(i * 7 + index);
  return m;
}
inline std::uint32_t message_index(const protocol::bytes& m) {
  return (std::uint32_t{m[0]} << 24) | (std::uint32_t{m[1]} << 16) | (std::uint32_t{m[2]} << 8) |
         std::uint32_t{m[3]};
}

/// Records every close reason a link reports.
struct close_log {
  std::vector<std::error_code> reasons;
  void watch(const std::shared_ptr<transport::link>& l) {
    l->on_close([this](std::error_code r) { reasons.push_back(r); });
  }
};

/// A TLS peer driven by hand: our Botan engine over a raw socket, so a test can send exactly the
/// records it wants (partial frames, oversize frames, several records in one write) or leave
/// out what a link would do (acks).
class raw_tls_peer {
 public:
  raw_tls_peer(asio::ip::tcp::socket socket, bool server,
               std::shared_ptr<const transport::tls_credentials> creds)
      : socket_(std::move(socket)), engine_(server, std::move(creds), {}, "") {}

  /// Runs the handshake. With flush_final false, the last flight (a server's ChangeCipherSpec
  /// and Finished) stays in the outbox for the caller to send together with more records.
  asio::awaitable<std::error_code> handshake(bool flush_final = true) {
    if (auto e = engine_.start()) co_return e;
    for (int rounds = 0; rounds < 20; ++rounds) {
      if (engine_.active()) {
        if (flush_final) co_await flush();
        co_return std::error_code{};
      }
      co_await flush();
      auto n = co_await read_some();
      if (!n) co_return transport::make_error_code(transport::transport_errc::connection_lost);
      if (last_error_) co_return last_error_;
    }
    co_return transport::make_error_code(transport::transport_errc::handshake_failed);
  }

  /// Writes the whole outbox in one write.
  asio::awaitable<void> flush() {
    if (engine_.outbox().empty()) co_return;
    std::vector<std::uint8_t> out;
    out.swap(engine_.outbox());
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), nothrow);
    (void)n;
    REQUIRE_FALSE(ec);
  }

  /// Reads once and feeds TLS; nothing on EOF or error.
  asio::awaitable<std::optional<std::size_t>> read_some() {
    std::vector<std::uint8_t> buf(32 * 1024);
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf), nothrow);
    if (ec) co_return std::nullopt;
    last_error_ = engine_.feed(buf.data(), n);
    co_return n;
  }

  /// One record carrying `bytes` (a frame, part of one, anything).
  void queue_record(const protocol::bytes& bytes) {
    REQUIRE_FALSE(engine_.send(bytes.data(), bytes.size()));
  }
  /// One record per data frame.
  void queue_data_frame(std::uint32_t sequence, const protocol::bytes& message) {
    auto frame = protocol::encode_frame(protocol::data_frame{sequence, message});
    REQUIRE(frame.has_value());
    queue_record(*frame);
  }
  void queue_close_notify() { engine_.close(); }

  transport::detail::tls_engine& engine() { return engine_; }
  asio::ip::tcp::socket& socket() { return socket_; }

 private:
  asio::ip::tcp::socket socket_;
  transport::detail::tls_engine engine_;
  std::error_code last_error_;
};

}  // namespace p2psip::transport_test
