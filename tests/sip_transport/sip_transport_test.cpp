// p2psip::peer::sip_transport over real sockets on 127.0.0.1 (port 0): UDP, TCP and TLS from
// plain user agents, SIP over an adopted AppAttach stream, keepalives, parse errors, the
// per-source rate limit, flows closing, send_to, stop. Every wait is bounded.

#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "p2psip/peer/sip_transport.hpp"
#include "p2psip/sip/error_response.hpp"
#include "p2psip/transport/stream_listener.hpp"
#include "stun.hpp"
#include "test_pki_tls.hpp"

namespace peer = p2psip::peer;
namespace sip = p2psip::sip;
namespace tr = p2psip::transport;
namespace tp = p2psip::test_pki;
using namespace std::chrono_literals;
using asio::ip::tcp;
using asio::ip::udp;
using steady = std::chrono::steady_clock;

namespace {

constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);

asio::ip::address v4(const char* a = "127.0.0.1") {
  return asio::ip::make_address(a);
}

/// Runs the coroutine `make()` returns on `io` until it completes or `limit` passes (a failure).
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

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  auto [ec] = co_await t.async_wait(nothrow);
  (void)ec;
}

/// Waits (polling every 5 ms, at most `limit`) until `done()` holds; returns whether it did.
asio::awaitable<bool> wait_until(std::function<bool()> done, std::chrono::milliseconds limit = 5s) {
  const auto deadline = steady::now() + limit;
  while (!done()) {
    if (steady::now() >= deadline) co_return false;
    co_await sleep_for(5ms);
  }
  co_return true;
}

std::string request(std::string_view method, int cseq, const std::string& id,
                    std::string_view transport = "UDP", const std::string& body = "") {
  return std::string(method) + " sip:peer@example.com SIP/2.0\r\n" + "Via: SIP/2.0/" +
         std::string(transport) + " 192.0.2.1:5060;branch=z9hG4bK" + id + ";rport\r\n" +
         "Max-Forwards: 70\r\n" + "From: <sip:ua@example.com>;tag=ua" + id + "\r\n" +
         "To: <sip:peer@example.com>\r\n" + "Call-ID: call-" + id + "\r\n" +
         "CSeq: " + std::to_string(cseq) + " " + std::string(method) + "\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

/// A UDP socket on 127.0.0.x with reads bounded in time.
struct udp_client {
  udp::socket socket;
  explicit udp_client(asio::io_context& io, const char* address = "127.0.0.1")
      : socket(io, udp::endpoint(v4(address), 0)) {}
  std::uint16_t port() const { return socket.local_endpoint().port(); }
  void send(std::string_view bytes, std::uint16_t to) {
    socket.send_to(asio::buffer(bytes.data(), bytes.size()), udp::endpoint(v4(), to));
  }
  /// The next datagram, or nothing within `limit`.
  asio::awaitable<std::optional<std::string>> receive(std::chrono::milliseconds limit = 3s) {
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(socket.get_executor());
    timer.expires_after(limit);
    std::vector<char> buf(65536);
    udp::endpoint from;
    auto r = co_await (socket.async_receive_from(asio::buffer(buf), from, nothrow) ||
                       timer.async_wait(nothrow));
    if (r.index() == 1) co_return std::nullopt;
    auto [ec, n] = std::get<0>(r);
    if (ec) co_return std::nullopt;
    co_return std::string(buf.data(), n);
  }
};

/// Reads from `s` into `into` until `done(into)`, EOF or an error (eof set), or `limit`.
asio::awaitable<void> read_until(tcp::socket& s, std::string& into,
                                 std::function<bool(const std::string&)> done, bool& eof,
                                 std::chrono::milliseconds limit = 3s) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(s.get_executor());
  timer.expires_after(limit);
  std::vector<char> buf(65536);
  eof = false;
  while (!done(into)) {
    auto r = co_await (s.async_read_some(asio::buffer(buf), nothrow) || timer.async_wait(nothrow));
    if (r.index() == 1) co_return;
    auto [ec, n] = std::get<0>(r);
    if (ec) {
      eof = true;
      co_return;
    }
    into.append(buf.data(), n);
  }
}

std::function<bool(const std::string&)> has(std::string what, std::size_t times = 1) {
  return [what = std::move(what), times](const std::string& s) {
    std::size_t n = 0;
    for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n >= times;
  };
}

bool never(const std::string&) {
  return false;
}

asio::awaitable<void> write_all(tcp::socket& s, std::string_view bytes) {
  auto [ec, n] = co_await asio::async_write(s, asio::buffer(bytes.data(), bytes.size()), nothrow);
  (void)n;
  REQUIRE_FALSE(ec);
}

asio::awaitable<tcp::socket> connect_from(const char* local, std::uint16_t port) {
  tcp::socket s(co_await asio::this_coro::executor);
  s.open(tcp::v4());
  s.bind(tcp::endpoint(v4(local), 0));
  auto [ec] = co_await s.async_connect(tcp::endpoint(v4(), port), nothrow);
  REQUIRE_FALSE(ec);
  co_return s;
}

/// A sip_transport on loopback recording what it hands up.
struct harness {
  asio::io_context io;
  std::vector<std::pair<sip::message, peer::sip_source>> received;
  std::vector<peer::sip_flow_id> closed;
  std::vector<std::string> log;
  std::unique_ptr<peer::sip_transport> transport;

  explicit harness(const std::vector<std::string>& listen, peer::sip_transport_config cfg = {}) {
    for (const auto& l : listen) {
      auto spec = peer::parse_sip_listen(l);
      REQUIRE(spec);
      cfg.listen.push_back(*spec);
    }
    cfg.log = [this](p2psip::node::log_level, std::string_view line) { log.emplace_back(line); };
    peer::sip_transport::handlers h;
    h.on_message = [this](sip::message m, const peer::sip_source& s) {
      received.emplace_back(std::move(m), s);
    };
    h.on_flow_closed = [this](peer::sip_flow_id f) { closed.push_back(f); };
    transport = std::make_unique<peer::sip_transport>(io, std::move(cfg), std::move(h));
    auto started = transport->start();
    REQUIRE_MESSAGE(started, (started ? "" : started.error().message));
  }
  harness(const harness&) = delete;
  harness& operator=(const harness&) = delete;
  ~harness() {
    run(
        io, [this]() -> asio::awaitable<void> { co_await transport->stop(); }, 10s);
  }

  std::uint16_t port(peer::sip_transport_kind kind) const {
    for (const auto& e : transport->local_endpoints()) {
      if (e.kind == kind) return e.port;
    }
    FAIL("no listener");
    return 0;
  }
  bool closed_flow(peer::sip_flow_id f) const {
    return std::find(closed.begin(), closed.end(), f) != closed.end();
  }
};

sip::message parse(const std::string& bytes) {
  auto m = sip::parse_datagram(bytes);
  REQUIRE_MESSAGE(m, bytes);
  return *m;
}

sip::message ok_to(const sip::message& request) {
  return sip::error_response(request, 200, "OK");
}

}  // namespace

TEST_CASE("loopback: listen specs") {
  auto a = peer::parse_sip_listen("udp:127.0.0.1:5060");
  REQUIRE(a);
  CHECK(a->kind == peer::sip_transport_kind::udp);
  CHECK(a->address == v4());
  CHECK(a->port == 5060);
  auto b = peer::parse_sip_listen("TCP:[::1]:5060");
  REQUIRE(b);
  CHECK(b->kind == peer::sip_transport_kind::tcp);
  CHECK(b->address == asio::ip::make_address("::1"));
  CHECK(peer::to_string(*b) == "tcp:[::1]:5060");
  auto c = peer::parse_sip_listen("tls:0.0.0.0:0");
  REQUIRE(c);
  CHECK(c->port == 0);
  for (const char* bad : {"", "udp", "udp:127.0.0.1", "sctp:127.0.0.1:5060", "udp:::1:5060",
                          "udp:[::1]5060", "udp:[::1:5060", "udp:localhost:5060",
                          "udp:127.0.0.1:65536", "udp:127.0.0.1:50a", "udp:127.0.0.1:"}) {
    CAPTURE(bad);
    auto r = peer::parse_sip_listen(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().find(bad) != std::string::npos);
  }
}

TEST_CASE("loopback: start names the address and the reason when a bind fails") {
  asio::io_context io;
  udp::socket taken(io, udp::endpoint(v4(), 0));
  peer::sip_transport_config cfg;
  cfg.listen.push_back({peer::sip_transport_kind::udp, v4(), taken.local_endpoint().port()});
  peer::sip_transport t(io, cfg, {});
  auto r = t.start();
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("cannot listen on udp:127.0.0.1:" +
                               std::to_string(taken.local_endpoint().port())) == 0);
  CHECK(r.error().code == asio::error::address_in_use);

  peer::sip_transport_config tls;
  tls.listen.push_back({peer::sip_transport_kind::tls, v4(), 0});
  peer::sip_transport t2(io, tls, {});
  auto r2 = t2.start();
  REQUIRE_FALSE(r2);
  CHECK(r2.error().message.find("no TLS credentials") != std::string::npos);
}

TEST_CASE("loopback: udp REGISTER arrives with its source and the answer goes back") {
  harness h({"udp:127.0.0.1:0"});
  const auto port = h.port(peer::sip_transport_kind::udp);
  run(h.io, [&]() -> asio::awaitable<void> {
    udp_client ua(h.io);
    ua.send(request("REGISTER", 1, "reg1"), port);
    REQUIRE(co_await wait_until([&] { return h.received.size() == 1; }));
    const auto m = h.received.front().first;
    const auto src = h.received.front().second;
    CHECK(m.method == "REGISTER");
    CHECK(src.kind == peer::sip_transport_kind::udp);
    CHECK_FALSE(src.reliable);
    CHECK(src.remote_address == v4());
    CHECK(src.remote_port == ua.port());
    CHECK(src.local_port == port);
    CHECK_FALSE(src.node);
    CHECK(src.flow != 0);
    // RFC 3261 18.2.1 and RFC 3581: received and rport on the top Via.
    auto vias = sip::vias(m);
    REQUIRE(vias);
    CHECK(vias->front().received() == "127.0.0.1");
    CHECK(vias->front().rport() == std::optional<std::uint16_t>(ua.port()));
    auto again = h.transport->source_of(src.flow);
    REQUIRE(again);
    CHECK(again->remote_port == ua.port());

    REQUIRE(h.transport->send(src.flow, ok_to(m)));
    auto answer = co_await ua.receive();
    REQUIRE(answer);
    auto r = parse(*answer);
    CHECK(r.status == 200);
    CHECK(*sip::call_id(r) == "call-reg1");

    // A second message from the same address and port is on the same flow.
    ua.send(request("OPTIONS", 2, "opt1"), port);
    REQUIRE(co_await wait_until([&] { return h.received.size() == 2; }));
    CHECK(h.received.back().second.flow == src.flow);
    CHECK(h.transport->stats().udp_flows == 1);
    CHECK(h.transport->stats().messages_in == 2);
  });
}

TEST_CASE("loopback: udp garbage gets a 400 with the recovered headers") {
  harness h({"udp:127.0.0.1:0"});
  const auto port = h.port(peer::sip_transport_kind::udp);
  run(h.io, [&]() -> asio::awaitable<void> {
    udp_client ua(h.io);
    std::string bad = request("INVITE", 5, "bad1");
    bad.replace(bad.find("CSeq: 5 INVITE"), 14, "CSeq: five INVITE");
    ua.send(bad, port);
    auto answer = co_await ua.receive();
    REQUIRE(answer);
    // The CSeq is echoed as it came, so the answer is checked as text.
    CHECK(answer->rfind("SIP/2.0 400 ", 0) == 0);
    CHECK(answer->find("\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKbad1;rport\r\n") !=
          std::string::npos);
    CHECK(answer->find("\r\nCall-ID: call-bad1\r\n") != std::string::npos);
    CHECK(answer->find("\r\nFrom: <sip:ua@example.com>;tag=uabad1\r\n") != std::string::npos);
    CHECK(answer->find("\r\nTo: <sip:peer@example.com>;tag=") != std::string::npos);
    CHECK(answer->find("\r\nCSeq: five INVITE\r\n") != std::string::npos);
    CHECK(h.received.empty());

    // No Via: nothing can be sent. A broken response: dropped. Both counted.
    ua.send("INVITE sip:x SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n", port);
    ua.send("SIP/2.0 2000 OK\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n\r\n", port);
    CHECK_FALSE(co_await ua.receive(300ms));
    const auto s = h.transport->stats();
    CHECK(s.parse_errors_answered == 1);
    CHECK(s.dropped_unanswerable == 1);
    CHECK(s.dropped_bad_response == 1);
    CHECK(s.udp_flows == 0);
  });
}

TEST_CASE("loopback: STUN binding request answered with XOR-MAPPED-ADDRESS, CRLF ignored") {
  harness h({"udp:127.0.0.1:0"});
  const auto port = h.port(peer::sip_transport_kind::udp);
  run(h.io, [&]() -> asio::awaitable<void> {
    udp_client ua(h.io);
    const peer::stun::transaction_id id = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    for (const bool fingerprint : {false, true}) {
      const auto req = peer::stun::encode_binding_request(id, fingerprint);
      ua.send(std::string_view(reinterpret_cast<const char*>(req.data()), req.size()), port);
      auto answer = co_await ua.receive();
      REQUIRE(answer);
      const std::span<const std::uint8_t> bytes(
          reinterpret_cast<const std::uint8_t*>(answer->data()), answer->size());
      auto mapped = peer::stun::decode_binding_success(bytes);
      REQUIRE(mapped);
      CHECK(mapped->id == id);
      CHECK(mapped->address == v4());
      CHECK(mapped->port == ua.port());
      CHECK(peer::stun::has_fingerprint(bytes) == fingerprint);
    }
    ua.send("\r\n", port);
    ua.send("\r\n\r\n", port);
    CHECK_FALSE(co_await ua.receive(300ms));
    CHECK(h.received.empty());
    CHECK(h.transport->stats().keepalives_answered == 2);
    CHECK(h.transport->stats().udp_flows == 0);
  });
}

TEST_CASE("loopback: tcp messages coalesced in one write and split across writes") {
  harness h({"tcp:127.0.0.1:0"});
  const auto port = h.port(peer::sip_transport_kind::tcp);
  run(h.io, [&]() -> asio::awaitable<void> {
    auto s = co_await connect_from("127.0.0.1", port);
    co_await write_all(
        s, request("OPTIONS", 1, "c1", "TCP") + request("MESSAGE", 2, "c2", "TCP", "hello"));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 2; }));
    const std::string third = request("MESSAGE", 3, "c3", "TCP", "split body");
    co_await write_all(s, third.substr(0, 10));
    co_await sleep_for(20ms);
    co_await write_all(s, third.substr(10, 60));
    co_await sleep_for(20ms);
    co_await write_all(s, third.substr(70));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 3; }));
    CHECK(h.received[0].first.method == "OPTIONS");
    CHECK(h.received[1].first.body == "hello");
    CHECK(h.received[2].first.body == "split body");
    const auto src = h.received[0].second;
    CHECK(src.kind == peer::sip_transport_kind::tcp);
    CHECK(src.reliable);
    CHECK(src.remote_port == s.local_endpoint().port());
    CHECK(h.received[2].second.flow == src.flow);
    CHECK(h.transport->stats().tcp_flows == 1);

    REQUIRE(h.transport->send(src.flow, ok_to(h.received[1].first)));
    std::string in;
    bool eof = false;
    co_await read_until(s, in, has("\r\n\r\n"), eof);
    CHECK(parse(in).status == 200);
  });
}

TEST_CASE("loopback: tcp CRLFCRLF ping gets a CRLF pong") {
  harness h({"tcp:127.0.0.1:0"});
  const auto port = h.port(peer::sip_transport_kind::tcp);
  run(h.io, [&]() -> asio::awaitable<void> {
    auto s = co_await connect_from("127.0.0.1", port);
    co_await write_all(s, "\r\n\r\n");
    std::string in;
    bool eof = false;
    co_await read_until(
        s, in, [](const std::string& x) { return x.size() >= 2; }, eof);
    CHECK(in == "\r\n");
    CHECK(h.transport->stats().keepalives_answered == 1);
    CHECK(h.received.empty());
  });
}

TEST_CASE("loopback: tcp parse error gets a 400 and then the connection closes") {
  harness h({"tcp:127.0.0.1:0"});
  const auto port = h.port(peer::sip_transport_kind::tcp);
  run(h.io, [&]() -> asio::awaitable<void> {
    auto s = co_await connect_from("127.0.0.1", port);
    std::string bad = request("OPTIONS", 2, "e2", "TCP");
    bad.replace(bad.find("Content-Length: 0"), 17, "Content-Length: -5");
    // A good message first, then the bad one in the same write: the answer must still name
    // the second message.
    co_await write_all(s, request("OPTIONS", 1, "e1", "TCP") + bad);
    std::string in;
    bool eof = false;
    co_await read_until(s, in, never, eof);
    CHECK(eof);
    REQUIRE(h.received.size() == 1);
    auto r = parse(in);
    CHECK(r.status == 400);
    CHECK(*sip::call_id(r) == "call-e2");
    REQUIRE(co_await wait_until([&] { return h.closed_flow(h.received[0].second.flow); }));
    CHECK(h.transport->stats().parse_errors_answered == 1);
    CHECK(h.transport->stats().tcp_flows == 0);
  });
}

TEST_CASE("loopback: flow closed callback when a tcp client disconnects") {
  harness h({"tcp:127.0.0.1:0"});
  const auto port = h.port(peer::sip_transport_kind::tcp);
  run(h.io, [&]() -> asio::awaitable<void> {
    peer::sip_flow_id flow = 0;
    {
      auto s = co_await connect_from("127.0.0.1", port);
      co_await write_all(s, request("REGISTER", 1, "d1", "TCP"));
      REQUIRE(co_await wait_until([&] { return h.received.size() == 1; }));
      flow = h.received[0].second.flow;
      CHECK(h.transport->source_of(flow));
    }  // closed here
    REQUIRE(co_await wait_until([&] { return h.closed_flow(flow); }));
    CHECK_FALSE(h.transport->source_of(flow));
    CHECK_FALSE(h.transport->send(flow, ok_to(h.received[0].first)));
    CHECK(h.closed.size() == 1);
  });
}

TEST_CASE("loopback: close_flow closes a tcp connection after its queue, no callback") {
  harness h({"tcp:127.0.0.1:0"});
  const auto port = h.port(peer::sip_transport_kind::tcp);
  run(h.io, [&]() -> asio::awaitable<void> {
    auto s = co_await connect_from("127.0.0.1", port);
    co_await write_all(s, request("REGISTER", 1, "x1", "TCP"));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 1; }));
    const auto flow = h.received[0].second.flow;
    // The answer queued before close_flow still goes out.
    REQUIRE(h.transport->send(flow, ok_to(h.received[0].first)));
    h.transport->close_flow(flow);
    CHECK_FALSE(h.transport->source_of(flow));
    CHECK_FALSE(h.transport->send(flow, ok_to(h.received[0].first)));
    std::string in;
    bool eof = false;
    co_await read_until(s, in, never, eof);
    CHECK(eof);
    CHECK(parse(in).status == 200);
    co_await sleep_for(50ms);
    CHECK(h.closed.empty());
    CHECK_FALSE(h.transport->source_of(flow));
  });
}

TEST_CASE("loopback: tls from a user agent without a client certificate") {
  tp::test_ca ca;
  peer::sip_transport_config cfg;
  cfg.tls = tp::link_credentials(ca, {tp::random_node_id()});
  harness h({"tls:127.0.0.1:0"}, cfg);
  const auto port = h.port(peer::sip_transport_kind::tls);
  run(h.io, [&]() -> asio::awaitable<void> {
    // Our own TLS client: the server asks no certificate, so it sends none.
    tr::stream_config sc;
    sc.handshake_timeout = 5s;
    sc.close_linger = 200ms;
    // (Built before the co_await: GCC 12 mishandles a braced list inside one.)
    auto ua_creds = tp::link_credentials(ca, {tp::random_node_id()});
    auto c = co_await tr::connect_stream(tcp::endpoint(v4(), port), ua_creds, sc);
    std::string why;
    if (!c) why = c.error().message();
    REQUIRE_MESSAGE(c, why);
    const std::string req = request("REGISTER", 1, "t1", "TLS");
    REQUIRE((*c)->write(p2psip::protocol::bytes(req.begin(), req.end())));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 1; }));
    const auto src = h.received[0].second;
    CHECK(src.kind == peer::sip_transport_kind::tls);
    CHECK(src.reliable);
    CHECK_FALSE(src.node);
    REQUIRE(h.transport->send(src.flow, ok_to(h.received[0].first)));
    std::string in;
    while (in.find("\r\n\r\n") == std::string::npos) {
      auto r = co_await (*c)->read_some();
      REQUIRE(r);
      in.append(r->begin(), r->end());
    }
    CHECK(parse(in).status == 200);
    (*c)->close();
    REQUIRE(co_await wait_until([&] { return h.closed_flow(src.flow); }));
  });
}

namespace {

/// A child process, killed and reaped at the end if still running.
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
  asio::awaitable<std::optional<int>> wait(std::chrono::milliseconds limit) {
    const auto deadline = steady::now() + limit;
    while (steady::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        co_return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      co_await sleep_for(10ms);
    }
    co_return std::nullopt;
  }
};

struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    path = std::filesystem::temp_directory_path() /
           ("p2psip-sip-transport-test-" + std::to_string(::getpid()) + "-" +
            std::to_string(steady::now().time_since_epoch().count()));
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

}  // namespace

TEST_CASE("loopback: openssl s_client without a certificate completes the handshake") {
  tp::test_ca ca;
  peer::sip_transport_config cfg;
  cfg.tls = tp::link_credentials(ca, {tp::random_node_id()});
  harness h({"tls:127.0.0.1:0"}, cfg);
  const auto port = h.port(peer::sip_transport_kind::tls);
  temp_dir dir;
  const auto in = dir.write("request", request("OPTIONS", 1, "ossl", "TLS"));
  child_process client;
  client.start(
      {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-tls1_2", "-quiet"},
      in, (dir.path / "client.log").string());
  run(h.io, [&]() -> asio::awaitable<void> {
    REQUIRE_MESSAGE(co_await wait_until([&] { return h.received.size() == 1; }, 10s),
                    dir.read("client.log"));
    const auto src = h.received[0].second;
    CHECK(src.kind == peer::sip_transport_kind::tls);
    CHECK(h.received[0].first.method == "OPTIONS");
    REQUIRE(h.transport->send(src.flow, ok_to(h.received[0].first)));
    CHECK(co_await wait_until(
        [&] { return dir.read("client.log").find("SIP/2.0 200 OK") != std::string::npos; }, 10s));
    h.transport->close_flow(src.flow);
    CHECK(co_await client.wait(10s));
  });
}

TEST_CASE("loopback: per-source rate limit answers 503 and still serves others") {
  peer::sip_transport_config cfg;
  cfg.source.messages_per_second = 1;
  cfg.source.burst = 2;
  cfg.source.retry_after_seconds = 7;
  harness h({"tcp:127.0.0.1:0", "udp:127.0.0.1:0"}, cfg);
  const auto tcp_port = h.port(peer::sip_transport_kind::tcp);
  const auto udp_port = h.port(peer::sip_transport_kind::udp);
  run(h.io, [&]() -> asio::awaitable<void> {
    // Over TCP each request over the rate gets a 503 with Retry-After.
    auto flood = co_await connect_from("127.0.0.1", tcp_port);
    std::string burst;
    for (int i = 1; i <= 5; ++i) burst += request("OPTIONS", i, "f" + std::to_string(i), "TCP");
    co_await write_all(flood, burst);
    std::string in;
    bool eof = false;
    co_await read_until(flood, in, has("SIP/2.0 503", 3), eof);
    CHECK(has("SIP/2.0 503", 3)(in));
    CHECK(has("Retry-After: 7", 3)(in));
    CHECK(h.received.size() == 2);

    // Another source is served.
    auto other = co_await connect_from("127.0.0.2", tcp_port);
    co_await write_all(other, request("OPTIONS", 1, "o1", "TCP"));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 3; }));
    CHECK(h.received.back().second.remote_address == v4("127.0.0.2"));

    // Over UDP a flood gets one 503 and the rest is dropped.
    udp_client ua(h.io, "127.0.0.3");
    for (int i = 1; i <= 6; ++i) ua.send(request("OPTIONS", i, "u" + std::to_string(i)), udp_port);
    REQUIRE(co_await wait_until([&] { return h.received.size() == 5; }));
    auto first = co_await ua.receive();
    REQUIRE(first);
    CHECK(parse(*first).status == 503);
    CHECK_FALSE(co_await ua.receive(300ms));
    const auto s = h.transport->stats();
    CHECK(s.rate_limited_answered == 4);
    CHECK(s.dropped_rate_limited == 3);
  });
}

TEST_CASE("loopback: send_to over tcp to a listening plain socket") {
  harness h({"tcp:127.0.0.1:0"});
  run(h.io, [&]() -> asio::awaitable<void> {
    tcp::acceptor acceptor(h.io, tcp::endpoint(v4(), 0));
    const auto target = acceptor.local_endpoint().port();
    const auto req = parse(request("OPTIONS", 1, "s1", "TCP"));
    const auto flow = h.transport->send_to(peer::sip_transport_kind::tcp, v4(), target, req);
    REQUIRE(flow != 0);
    auto [ec, s] = co_await acceptor.async_accept(nothrow);
    REQUIRE_FALSE(ec);
    std::string in;
    bool eof = false;
    co_await read_until(s, in, has("\r\n\r\n"), eof);
    CHECK(parse(in).method == "OPTIONS");
    // The open connection is reused.
    CHECK(h.transport->send_to(peer::sip_transport_kind::tcp, v4(), target, req) == flow);
    in.clear();
    co_await read_until(s, in, has("\r\n\r\n"), eof);
    CHECK(parse(in).method == "OPTIONS");
    auto src = h.transport->source_of(flow);
    REQUIRE(src);
    CHECK(src->remote_port == target);
    CHECK(src->local_port == s.remote_endpoint().port());
    // The far end answers on the same connection.
    co_await write_all(s, sip::serialize(ok_to(req)));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 1; }));
    CHECK(h.received[0].second.flow == flow);
    CHECK(h.received[0].first.status == 200);
    s.close();
    REQUIRE(co_await wait_until([&] { return h.closed_flow(flow); }));

    // Nobody listening: the flow ends with on_flow_closed.
    tcp::acceptor gone(h.io, tcp::endpoint(v4(), 0));
    const auto dead_port = gone.local_endpoint().port();
    gone.close();
    const auto dead = h.transport->send_to(peer::sip_transport_kind::tcp, v4(), dead_port, req);
    REQUIRE(dead != 0);
    REQUIRE(co_await wait_until([&] { return h.closed_flow(dead); }));
    CHECK(h.transport->stats().connect_failures == 1);
  });
}

TEST_CASE("loopback: send_to over udp uses the listener's socket") {
  harness h({"udp:127.0.0.1:0"});
  run(h.io, [&]() -> asio::awaitable<void> {
    udp_client ua(h.io);
    const auto req = parse(request("OPTIONS", 1, "su1"));
    const auto flow = h.transport->send_to(peer::sip_transport_kind::udp, v4(), ua.port(), req);
    REQUIRE(flow != 0);
    auto got = co_await ua.receive();
    REQUIRE(got);
    CHECK(parse(*got).method == "OPTIONS");
    // The answer from there arrives on the same flow.
    ua.send(sip::serialize(ok_to(req)), h.port(peer::sip_transport_kind::udp));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 1; }));
    CHECK(h.received[0].second.flow == flow);
    // No IPv6 listener: nothing to send from.
    CHECK(h.transport->send_to(peer::sip_transport_kind::udp, asio::ip::make_address("::1"), 5060,
                               req) == 0);
  });
}

TEST_CASE("loopback: SIP over an adopted AppAttach stream carries the remote node") {
  tp::test_ca ca;
  const auto server_id = tp::random_node_id();
  const auto client_id = tp::random_node_id();
  auto server_creds = tp::link_credentials(ca, {server_id});
  auto client_creds = tp::link_credentials(ca, {client_id});
  harness h({});
  run(h.io, [&]() -> asio::awaitable<void> {
    std::vector<std::shared_ptr<tr::tls_stream>> accepted;
    tr::stream_listener_config lc;
    lc.stream.close_linger = 200ms;
    auto l = tr::stream_listener::open(
        h.io.get_executor(), tcp::endpoint(v4(), 0), server_creds, lc,
        [&](std::shared_ptr<tr::tls_stream> s) { accepted.push_back(std::move(s)); });
    REQUIRE(l);
    auto c =
        co_await tr::connect_stream((*l)->local_endpoint(), client_creds, lc.stream, server_id);
    REQUIRE(c);
    REQUIRE(co_await wait_until([&] { return !accepted.empty(); }));
    REQUIRE(accepted[0]->peer_node_ids() == std::vector<p2psip::protocol::node_id>{client_id});
    const auto flow = h.transport->adopt(accepted[0], client_id);
    REQUIRE(flow != 0);
    const std::string req = request("MESSAGE", 1, "a1", "TLS", "hi") + "\r\n\r\n";
    REQUIRE((*c)->write(p2psip::protocol::bytes(req.begin(), req.end())));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 1; }));
    const auto src = h.received[0].second;
    CHECK(src.flow == flow);
    CHECK(src.kind == peer::sip_transport_kind::tls);
    REQUIRE(src.node);
    CHECK(*src.node == client_id);
    CHECK(h.transport->stats().adopted_flows == 1);
    const auto answer = ok_to(h.received[0].first);
    REQUIRE(h.transport->send(flow, answer));
    // The ping after the message is answered (the pong is queued first), then the 200.
    const std::string expected = "\r\n" + sip::serialize(answer);
    std::string in;
    while (in.size() < expected.size()) {
      auto r = co_await (*c)->read_some();
      REQUIRE(r);
      in.append(r->begin(), r->end());
    }
    CHECK(in == expected);
    (*l)->close();
    (*c)->close();
    REQUIRE(co_await wait_until([&] { return h.closed_flow(flow); }));
  });
}

TEST_CASE("loopback: stop closes listeners and connections within its bound") {
  harness h({"tcp:127.0.0.1:0", "udp:127.0.0.1:0"});
  const auto port = h.port(peer::sip_transport_kind::tcp);
  run(h.io, [&]() -> asio::awaitable<void> {
    auto s = co_await connect_from("127.0.0.1", port);
    co_await write_all(s, request("REGISTER", 1, "st1", "TCP"));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 1; }));
    const auto before = steady::now();
    co_await h.transport->stop();
    CHECK(steady::now() - before < 4s);
    std::string in;
    bool eof = false;
    co_await read_until(s, in, never, eof);
    CHECK(eof);
    CHECK(h.closed.empty());  // no callbacks once stopping
    CHECK_FALSE(h.transport->send(h.received[0].second.flow, ok_to(h.received[0].first)));
    tcp::socket late(h.io);
    auto [ec] = co_await late.async_connect(tcp::endpoint(v4(), port), nothrow);
    CHECK(ec);
  });
}

TEST_CASE("loopback: idle tcp connections are closed and idle udp flows forgotten") {
  peer::sip_transport_config cfg;
  cfg.idle_timeout = 300ms;
  harness h({"tcp:127.0.0.1:0", "udp:127.0.0.1:0"}, cfg);
  const auto tcp_port = h.port(peer::sip_transport_kind::tcp);
  const auto udp_port = h.port(peer::sip_transport_kind::udp);
  run(h.io, [&]() -> asio::awaitable<void> {
    auto s = co_await connect_from("127.0.0.1", tcp_port);
    co_await write_all(s, request("REGISTER", 1, "i1", "TCP"));
    udp_client ua(h.io);
    ua.send(request("REGISTER", 1, "i2"), udp_port);
    REQUIRE(co_await wait_until([&] { return h.received.size() == 2; }));
    const auto tcp_flow = h.received[0].second.flow;
    const auto udp_flow = h.received[1].second.flow;
    REQUIRE(co_await wait_until([&] { return h.closed_flow(tcp_flow) && h.closed_flow(udp_flow); },
                                5s));
    std::string in;
    bool eof = false;
    co_await read_until(s, in, never, eof);
    CHECK(eof);
    CHECK_FALSE(h.transport->source_of(udp_flow));
  });
}

TEST_CASE("loopback: no housekeeping rounds while there is no udp flow or source to forget") {
  peer::sip_transport_config cfg;
  cfg.idle_timeout = 200ms;  // a round every 50 ms while there is something to forget
  harness h({"udp:127.0.0.1:0"}, cfg);
  const auto udp_port = h.port(peer::sip_transport_kind::udp);
  run(h.io, [&]() -> asio::awaitable<void> {
    co_await sleep_for(400ms);
    CHECK(h.transport->stats().housekeeping_rounds == 0);
    udp_client ua(h.io);
    ua.send(request("REGISTER", 1, "i1"), udp_port);
    REQUIRE(co_await wait_until([&] { return h.received.size() == 1; }));
    const auto flow = h.received[0].second.flow;
    // Woken by the new flow: it is forgotten after idle_timeout.
    REQUIRE(co_await wait_until([&] { return h.closed_flow(flow); }, 5s));
    CHECK(h.transport->stats().housekeeping_rounds > 0);
    CHECK(h.transport->stats().udp_flows == 0);
  });
}

TEST_CASE("loopback: a source over its connection limit sheds its longest idle connection") {
  peer::sip_transport_config cfg;
  cfg.source.max_connections_per_source = 2;
  harness h({"tcp:127.0.0.1:0"}, cfg);
  const auto port = h.port(peer::sip_transport_kind::tcp);
  run(h.io, [&]() -> asio::awaitable<void> {
    auto first = co_await connect_from("127.0.0.1", port);
    co_await write_all(first, request("OPTIONS", 1, "l1", "TCP"));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 1; }));
    co_await sleep_for(20ms);
    auto second = co_await connect_from("127.0.0.1", port);
    co_await write_all(second, request("OPTIONS", 1, "l2", "TCP"));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 2; }));
    // Another address is not affected.
    auto elsewhere = co_await connect_from("127.0.0.2", port);
    co_await write_all(elsewhere, request("OPTIONS", 1, "l3", "TCP"));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 3; }));
    CHECK(h.closed.empty());
    auto third = co_await connect_from("127.0.0.1", port);
    REQUIRE(co_await wait_until([&] { return h.closed_flow(h.received[0].second.flow); }));
    CHECK(h.closed.size() == 1);
    std::string in;
    bool eof = false;
    co_await read_until(first, in, never, eof);
    CHECK(eof);
    CHECK(h.transport->stats().connections_shed == 1);
    CHECK(h.transport->stats().tcp_flows == 3);
  });
}

namespace {

/// A TLS server for the named-server tests: a stream_listener presenting `cert` (an overlay
/// credential only in form: nothing checks Node-IDs on the server side of these tests), asking
/// for a client certificate when `mutual` (then the client's must verify against `ca` and carry a
/// Node-ID, as the listener's checks go).
struct named_tls_server {
  std::vector<std::shared_ptr<tr::tls_stream>> accepted;
  std::shared_ptr<tr::stream_listener> listener;

  named_tls_server(asio::io_context& io, const tp::test_ca& ca, const tp::issued_certificate& cert,
                   bool mutual = false) {
    tr::stream_listener_config lc;
    lc.stream.close_linger = 200ms;
    lc.stream.client_certificate_required = mutual;
    auto l = tr::stream_listener::open(
        io.get_executor(), tcp::endpoint(v4(), 0), tp::link_credentials(cert, {ca.certificate()}),
        lc, [this](std::shared_ptr<tr::tls_stream> s) { accepted.push_back(std::move(s)); });
    REQUIRE(l);
    listener = std::move(*l);
  }
  ~named_tls_server() {
    listener->close();
    for (auto& s : accepted) s->close();
  }
  std::uint16_t port() const { return listener->local_endpoint().port(); }
};

/// Named-server credentials trusting `ca` (PEM through the public factory, as the daemon loads
/// --sip-trunk-ca), with `client` as client certificate when given.
std::shared_ptr<const tr::tls_credentials> trunk_credentials(
    const tp::test_ca* ca, const tp::issued_certificate* client = nullptr) {
  std::vector<Botan::X509_Certificate> trusted;
  if (ca) trusted.push_back(ca->certificate());
  std::vector<Botan::X509_Certificate> chain;
  std::shared_ptr<Botan::Private_Key> key;
  if (client) {
    chain.push_back(client->certificate);
    key = client->key;
  }
  auto c = tr::tls_credentials::for_named_servers(trusted, chain, key);
  REQUIRE_MESSAGE(c, (c ? "" : c.error().message));
  return *c;
}

/// The text of everything read from `s` until `want` bytes arrived or the stream ended.
asio::awaitable<std::string> read_at_least(tr::tls_stream& s, std::size_t want) {
  std::string in;
  while (in.size() < want) {
    auto r = co_await s.read_some();
    if (!r) break;
    in.append(r->begin(), r->end());
  }
  co_return in;
}

}  // namespace

TEST_CASE("loopback: a named TLS server is verified by name, its flow reused, then reopened") {
  tp::test_ca ca;
  const auto cert = ca.issue(tp::server_spec({"localhost"}));
  harness h({});
  named_tls_server server(h.io, ca, cert);
  peer::sip_named_server trunk{"localhost", server.port(), trunk_credentials(&ca), "SIP trunk t"};
  run(h.io, [&]() -> asio::awaitable<void> {
    const auto req = parse(request("MESSAGE", 1, "n1", "TLS"));
    const auto flow = h.transport->flow_to_server(trunk);
    REQUIRE(flow != 0);
    REQUIRE(h.transport->send(flow, req));  // queued until the handshake is over
    REQUIRE(co_await wait_until([&] { return server.accepted.size() == 1; }));
    const auto bytes = sip::serialize(req);
    CHECK(co_await read_at_least(*server.accepted[0], bytes.size()) == bytes);
    // The answer comes back on the flow; the next request reuses it.
    const auto answer = sip::serialize(ok_to(req));
    REQUIRE(server.accepted[0]->write(p2psip::protocol::bytes(answer.begin(), answer.end())));
    REQUIRE(co_await wait_until([&] { return h.received.size() == 1; }));
    CHECK(h.received[0].second.flow == flow);
    CHECK(h.received[0].first.status == 200);
    CHECK(h.transport->flow_to_server(trunk) == flow);
    // Case does not matter in a host name.
    auto upper = trunk;
    upper.host = "LOCALHOST";
    CHECK(h.transport->flow_to_server(upper) == flow);
    const auto src = h.transport->source_of(flow);
    REQUIRE(src);
    CHECK(src->remote_address == v4());
    CHECK(src->remote_port == server.port());
    // The trunk closes the connection: the flow ends, and the next request connects again.
    server.accepted[0]->close();
    REQUIRE(co_await wait_until([&] { return h.closed_flow(flow); }));
    const auto again = h.transport->flow_to_server(trunk);
    CHECK(again != flow);
    REQUIRE(h.transport->send(again, req));
    REQUIRE(co_await wait_until([&] { return server.accepted.size() == 2; }));
    CHECK(co_await read_at_least(*server.accepted[1], bytes.size()) == bytes);
    CHECK(h.log.empty());
  });
}

TEST_CASE("loopback: a named TLS server may be named by a sip: URI (RFC 5922) or a wildcard") {
  tp::test_ca ca;
  harness h({});
  auto by_uri = tp::server_spec({});
  by_uri.extra_uris = {"sip:LocalHost"};
  named_tls_server uri_named(h.io, ca, ca.issue(by_uri));
  named_tls_server wildcard(h.io, ca, ca.issue(tp::server_spec({"*.localhost"})));
  const auto creds = trunk_credentials(&ca);
  run(h.io, [&]() -> asio::awaitable<void> {
    const auto ok =
        h.transport->flow_to_server({"localhost", uri_named.port(), creds, "SIP trunk u"});
    REQUIRE(co_await wait_until([&] { return uri_named.accepted.size() == 1; }));
    // *.localhost names one label more, not localhost itself.
    const auto bad =
        h.transport->flow_to_server({"localhost", wildcard.port(), creds, "SIP trunk w"});
    REQUIRE(co_await wait_until([&] { return h.closed_flow(bad); }));
    CHECK_FALSE(h.closed_flow(ok));
    REQUIRE(h.log.size() == 1);
    CHECK_MESSAGE(
        h.log[0].find("certificate names DNS:*.localhost, not localhost") != std::string::npos,
        h.log[0]);
  });
}

TEST_CASE("loopback: a named TLS server at an address needs that address in its certificate") {
  tp::test_ca ca;
  harness h({});
  named_tls_server good(h.io, ca, ca.issue(tp::server_spec({"localhost"}, {"127.0.0.1"})));
  named_tls_server named_only(h.io, ca, ca.issue(tp::server_spec({"127.0.0.1"})));
  const auto creds = trunk_credentials(&ca);
  run(h.io, [&]() -> asio::awaitable<void> {
    const auto ok = h.transport->flow_to_server({"127.0.0.1", good.port(), creds, "SIP trunk a"});
    REQUIRE(co_await wait_until([&] { return good.accepted.size() == 1; }));
    co_await sleep_for(50ms);
    CHECK_FALSE(h.closed_flow(ok));
    // A DNS name that looks like the address is not an iPAddress name (RFC 6125 6.2.1).
    const auto bad =
        h.transport->flow_to_server({"127.0.0.1", named_only.port(), creds, "SIP trunk b"});
    REQUIRE(co_await wait_until([&] { return h.closed_flow(bad); }));
    REQUIRE(h.log.size() == 1);
    CHECK(h.log[0].find("SIP trunk b: TLS with tls:127.0.0.1:") == 0);
    CHECK_MESSAGE(
        h.log[0].find("certificate names DNS:127.0.0.1, not 127.0.0.1") != std::string::npos,
        h.log[0]);
  });
}

TEST_CASE(
    "loopback: a named TLS server that fails verification or is down ends the flow with one "
    "WARN naming the reason") {
  tp::test_ca ca;
  tp::test_ca other("another root");
  auto expired_spec = tp::server_spec({"localhost"});
  expired_spec.not_before = tp::test_now() - std::chrono::hours(48);
  expired_spec.not_after = tp::test_now() - std::chrono::hours(24);
  struct failing {
    const char* what;
    tp::issued_certificate cert;
    bool system_store;
    const char* reason;  // in the WARN line
  };
  std::vector<failing> cases{
      {"another CA", other.issue(tp::server_spec({"localhost"})), false,
       "certificate chain rejected: Certificate issuer not found"},
      {"the wrong name", ca.issue(tp::server_spec({"trunk.other.test"})), false,
       "certificate names DNS:trunk.other.test, not localhost"},
      {"expired", ca.issue(expired_spec), false,
       "certificate chain rejected: Certificate has expired"},
      {"a CA the system store does not know", ca.issue(tp::server_spec({"localhost"})), true,
       "certificate chain rejected: Certificate issuer not found"},
  };
  for (auto& c : cases) {
    CAPTURE(c.what);
    harness h({});
    named_tls_server server(h.io, ca, c.cert);
    const auto creds = trunk_credentials(c.system_store ? nullptr : &ca);
    run(h.io, [&]() -> asio::awaitable<void> {
      const auto flow =
          h.transport->flow_to_server({"localhost", server.port(), creds, "SIP trunk x"});
      REQUIRE(flow != 0);
      REQUIRE(h.transport->send(flow, parse(request("INVITE", 1, "f1", "TLS"))));
      REQUIRE(co_await wait_until([&] { return h.closed_flow(flow); }));
      CHECK_FALSE(h.transport->source_of(flow));
      REQUIRE(h.log.size() == 1);
      CHECK_MESSAGE(h.log[0].find("SIP trunk x: TLS with tls:127.0.0.1:" +
                                  std::to_string(server.port()) + " failed: " + c.reason) == 0,
                    h.log[0]);
      // Again at once: the same reason is not logged again within 10 s.
      const auto retry =
          h.transport->flow_to_server({"localhost", server.port(), creds, "SIP trunk x"});
      CHECK(retry != flow);
      REQUIRE(co_await wait_until([&] { return h.closed_flow(retry); }));
      CHECK(h.log.size() == 1);
      CHECK(h.transport->stats().connect_failures == 2);
    });
  }
  // Nothing listening: the connect fails, with the system's words.
  harness h({});
  std::uint16_t port = 0;
  {
    tcp::acceptor closed(h.io, tcp::endpoint(v4(), 0));
    port = closed.local_endpoint().port();
  }
  run(h.io, [&]() -> asio::awaitable<void> {
    const auto flow =
        h.transport->flow_to_server({"127.0.0.1", port, trunk_credentials(&ca), "SIP trunk d"});
    REQUIRE(co_await wait_until([&] { return h.closed_flow(flow); }));
    REQUIRE(h.log.size() == 1);
    CHECK_MESSAGE(h.log[0] == "SIP trunk d: cannot connect to tls:127.0.0.1:" +
                                  std::to_string(port) + ": Connection refused",
                  h.log[0]);
  });
}

TEST_CASE("loopback: a named TLS server that asks for a client certificate gets ours") {
  tp::test_ca ca;
  harness h({});
  named_tls_server server(h.io, ca, ca.issue(tp::server_spec({"localhost"})), true);
  // The test listener checks clients as links do: a Node-ID in the certificate.
  const auto client = ca.issue(tp::link_spec({tp::random_node_id()}));
  run(h.io, [&]() -> asio::awaitable<void> {
    const auto flow = h.transport->flow_to_server(
        {"localhost", server.port(), trunk_credentials(&ca, &client), "SIP trunk m"});
    REQUIRE(co_await wait_until([&] { return server.accepted.size() == 1; }));
    CHECK(server.accepted[0]->peer_certificate() == client.certificate.BER_encode());
    CHECK_FALSE(h.closed_flow(flow));
    // Without one, the server refuses the handshake.
    const auto refused = h.transport->flow_to_server(
        {"localhost", server.port(), trunk_credentials(&ca), "SIP trunk n"});
    REQUIRE(co_await wait_until([&] { return h.closed_flow(refused); }));
    REQUIRE(h.log.size() == 1);
    CHECK_MESSAGE(h.log[0].find("SIP trunk n: TLS with tls:127.0.0.1:") == 0, h.log[0]);
  });
}

TEST_CASE("named-server credentials: what they refuse, and overlay credentials are not them") {
  tp::test_ca ca;
  const auto client = ca.issue(tp::server_spec({"gw.test"}));
  const auto stranger = ca.issue(tp::server_spec({"gw.test"}));
  CHECK_FALSE(tr::tls_credentials::for_named_servers({}, {client.certificate}, nullptr));
  CHECK_FALSE(tr::tls_credentials::for_named_servers({}, {}, client.key));
  const auto mismatch = tr::tls_credentials::for_named_servers({ca.certificate()},
                                                               {client.certificate}, stranger.key);
  REQUIRE_FALSE(mismatch);
  CHECK(mismatch.error().message.find("does not match") != std::string::npos);
  CHECK_FALSE(tr::tls_credentials::for_named_servers_pem("not a certificate"));
  const auto system = tr::tls_credentials::for_named_servers_pem("");
  REQUIRE(system);
  CHECK((*system)->verifies_server_names());
  CHECK_FALSE(tp::link_credentials(ca, {tp::random_node_id()})->verifies_server_names());
  // A transport refuses overlay credentials for a named server.
  harness h({});
  CHECK(h.transport->flow_to_server(
            {"localhost", 5061, tp::link_credentials(ca, {tp::random_node_id()}), "x"}) == 0);
}
