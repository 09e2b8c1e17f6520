// Admission under pressure (listener.hpp): idle TCP connections that never start a TLS handshake
// must not keep a real peer out. The policy and the rate-limited pressure lines with a fake
// clock, then real sockets on loopback: a flood of 2,000 idle connections, per-source and
// overall shedding, the accept-side handshake timeout, counters and pressure lines, for both
// the link listener and the stream listener. 127.0.0.0/8 is all loopback on Linux, so binding a
// client socket to 127.0.0.2 makes a second source.

#include <doctest/doctest.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "accept_core.hpp"
#include "p2psip/transport/stream_listener.hpp"
#include "p2psip/transport/tls_stream.hpp"
#include "test_util.hpp"

namespace tr = p2psip::transport;
namespace td = p2psip::transport::detail;
namespace tt = p2psip::transport_test;
using namespace std::chrono_literals;
using tt::errc;
using tt::fixture;
using tt::v4;

namespace {

asio::ip::address addr(const char* text) {
  return asio::ip::make_address(text);
}

/// Raises the soft limit on open files to the hard limit; returns the limit now in force.
rlim_t raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur;
}

/// Descriptors open in this process.
std::size_t open_fds() {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

/// A plain TCP connection from `source` (port chosen by the system) to `to` that never sends;
/// nothing when it does not open.
asio::awaitable<std::optional<asio::ip::tcp::socket>> idle_connect(asio::ip::tcp::endpoint to,
                                                                   asio::ip::address source) {
  auto ex = co_await asio::this_coro::executor;
  asio::ip::tcp::socket s(ex);
  asio::error_code ec;
  s.open(to.protocol(), ec);
  if (!ec) s.bind(asio::ip::tcp::endpoint(source, 0), ec);
  if (ec) co_return std::nullopt;
  auto [connect_ec] = co_await s.async_connect(to, tt::nothrow);
  if (connect_ec) co_return std::nullopt;
  co_return std::move(s);
}

/// Opens `count` idle connections from `source` into `out`; stops at the first failure or after
/// `limit`. Returns how many opened.
asio::awaitable<std::size_t> flood(asio::ip::tcp::endpoint to, asio::ip::address source,
                                   std::size_t count, std::vector<asio::ip::tcp::socket>& out,
                                   std::chrono::milliseconds limit = 20s) {
  const auto deadline = tt::steady::now() + limit;
  std::size_t opened = 0;
  while (opened < count && tt::steady::now() < deadline) {
    auto s = co_await idle_connect(to, source);
    if (!s) break;
    out.push_back(std::move(*s));
    ++opened;
  }
  co_return opened;
}

struct flood_state {
  std::size_t opened = 0;
  bool stop = false;
  bool done = false;
};

/// Opens idle connections from `source` until told to stop (at most 3,000, at most 10 s),
/// holding the latest 100 to 200 of them.
asio::awaitable<void> keep_flooding(asio::ip::tcp::endpoint to, asio::ip::address source,
                                    std::shared_ptr<flood_state> state) {
  std::vector<asio::ip::tcp::socket> held;
  const auto deadline = tt::steady::now() + 10s;
  while (!state->stop && state->opened < 3000 && tt::steady::now() < deadline) {
    auto s = co_await idle_connect(to, source);
    if (!s) break;
    held.push_back(std::move(*s));
    ++state->opened;
    if (held.size() >= 200) held.erase(held.begin(), held.begin() + 100);
    if (state->opened % 50 == 0) co_await tt::sleep_for(1ms);  // let the listener run
  }
  state->done = true;
}

/// Whether the peer closed `s` (EOF or reset) within `limit`.
asio::awaitable<bool> closed_by_peer(asio::ip::tcp::socket& s, std::chrono::milliseconds limit) {
  co_return co_await tt::read_until_closed(s, limit);
}

/// Pressure lines a listener wrote.
struct lines {
  std::vector<std::string> all;
  std::size_t containing(const std::string& text) const {
    return static_cast<std::size_t>(std::count_if(
        all.begin(), all.end(), [&](const auto& l) { return l.find(text) != std::string::npos; }));
  }
};

tr::listener_config flood_config(const std::shared_ptr<lines>& log) {
  tr::listener_config cfg = tt::test_listener_config();
  cfg.pressure_log = [log](std::string_view line) { log->all.emplace_back(line); };
  return cfg;
}

double ms_since(tt::steady::time_point start) {
  return std::chrono::duration<double, std::milli>(tt::steady::now() - start).count();
}

}  // namespace

// ---- the policy, without I/O ----------------------------------------------------------------

TEST_CASE("admission: a source at its limit sheds its own oldest, a full table the oldest of all") {
  td::admission_table table(4, 2);
  const auto a = addr("192.0.2.1");
  const auto b = addr("192.0.2.2");
  const auto c = addr("192.0.2.3");
  std::vector<std::uint64_t> aborted;
  auto add = [&](std::uint64_t id, const asio::ip::address& source) {
    auto shed = table.make_room(source);
    table.add({id, source, {}, [&aborted, id] { aborted.push_back(id); }});
    return shed;
  };
  CHECK_FALSE(add(1, a));
  CHECK_FALSE(add(2, b));
  CHECK_FALSE(add(3, a));
  // a is at its limit (2): its oldest (1) goes, not b's older 2.
  auto shed = add(4, a);
  REQUIRE(shed);
  CHECK(shed->victim.id == 1);
  CHECK(shed->reason == td::admission_table::shed_reason::per_source);
  CHECK(table.count(a) == 2);
  CHECK_FALSE(add(5, c));
  CHECK(table.size() == 4);
  // Full (2, 3, 4, 5): a newcomer from c (below its limit) sheds the oldest of all, 2 from b.
  shed = add(6, c);
  REQUIRE(shed);
  CHECK(shed->victim.id == 2);
  CHECK(shed->reason == td::admission_table::shed_reason::oldest);
  CHECK(table.size() == 4);
  // A handshake that ended leaves; one shed already is not there any more.
  CHECK(table.remove(3));
  CHECK_FALSE(table.remove(2));
  CHECK(table.size() == 3);
  CHECK(table.take_all().size() == 3);
  CHECK(table.size() == 0);
  // Limits of 0 count as 1: still every newcomer gets in.
  td::admission_table tiny(0, 0);
  CHECK_FALSE(tiny.make_room(a));
  tiny.add({1, a, {}, {}});
  shed = tiny.make_room(a);
  REQUIRE(shed);
  CHECK(shed->victim.id == 1);
}

TEST_CASE("admission: sources are IPv4 addresses and IPv6 /64 prefixes") {
  CHECK(td::admission_source(addr("203.0.113.7")) == addr("203.0.113.7"));
  CHECK(td::admission_source(addr("::ffff:203.0.113.7")) == addr("203.0.113.7"));
  CHECK(td::admission_source(addr("2001:db8:1:2:aaaa::1")) == addr("2001:db8:1:2::"));
  CHECK(td::admission_source(addr("2001:db8:1:2:bbbb::9")) ==
        td::admission_source(addr("2001:db8:1:2::1")));
  CHECK(td::admission_source(addr("2001:db8:1:3::1")) !=
        td::admission_source(addr("2001:db8:1:2::1")));
  CHECK(td::endpoint_text(asio::ip::tcp::endpoint(addr("::1"), 80)) == "[::1]:80");
  tr::accept_config cfg;
  CHECK(td::accepted_handshake_timeout(cfg, 10s) == 2s);
  CHECK(td::accepted_handshake_timeout(cfg, 300ms) == 300ms);
  cfg.handshake_timeout = 0ms;
  CHECK(td::accepted_handshake_timeout(cfg, 10s) == 1ms);
}

TEST_CASE("admission: pressure lines: one per source per interval, then a summary") {
  using td::pressure_event;
  td::pressure_reporter r("127.0.0.1:6084", 10s, 64, 16, 2s);
  const td::clock_type::time_point t0{};
  const auto a = addr("198.51.100.1");
  CHECK_FALSE(r.next_deadline());
  auto line = r.note(pressure_event::shed_per_source, a, 1500ms, t0);
  REQUIRE(line);
  CHECK(line->find("listener 127.0.0.1:6084") != std::string::npos);
  CHECK(line->find("198.51.100.1") != std::string::npos);
  CHECK(line->find("1500 ms old") != std::string::npos);
  // The same source again within the interval: no line, counted for the summary.
  for (int i = 1; i <= 99; ++i) {
    CHECK_FALSE(r.note(pressure_event::shed_per_source, a, 10ms, t0 + i * 10ms));
  }
  // Another source still gets its own line, up to max_sources_per_interval sources.
  std::size_t others = 0;
  for (int i = 0; i < 20; ++i) {
    const auto src = asio::ip::make_address_v4(0xC6336500u + 10 + static_cast<unsigned>(i));
    if (r.note(pressure_event::shed_oldest, src, 3s, t0 + 2s)) ++others;
  }
  CHECK(others == td::pressure_reporter::max_sources_per_interval - 1);
  REQUIRE(r.next_deadline());
  CHECK(*r.next_deadline() == t0 + 10s);
  CHECK_FALSE(r.on_timer(t0 + 9s));
  line = r.on_timer(t0 + 10s);
  REQUIRE(line);
  CHECK(line->find("120 unauthenticated connections closed in the last 10.0 s") !=
        std::string::npos);
  CHECK(line->find("20 shed as the oldest") != std::string::npos);
  CHECK(line->find("100 shed at the per-source limit of 16") != std::string::npos);
  CHECK(line->find("most from 198.51.100.1 (100)") != std::string::npos);
  CHECK_FALSE(r.next_deadline());
  // A new interval: the source may have a line again; a timeout says so.
  line = r.note(pressure_event::handshake_timeout, a, 2s, t0 + 11s);
  REQUIRE(line);
  CHECK(line->find("no TLS handshake within 2000 ms") != std::string::npos);
  // Every event of that interval had its line: no summary.
  CHECK_FALSE(r.on_timer(t0 + 21s));
  // flush() (on close) gives the summary of an unfinished interval.
  CHECK(r.note(pressure_event::shed_oldest, a, 1s, t0 + 40s));
  CHECK_FALSE(r.note(pressure_event::shed_oldest, a, 1s, t0 + 41s));
  line = r.flush(t0 + 42s);
  REQUIRE(line);
  CHECK(line->find("2 unauthenticated connections closed in the last 2.0 s") != std::string::npos);
}

// ---- real sockets -----------------------------------------------------------------------------

TEST_CASE("listener: 2,000 idle TCP connections do not keep a TLS peer out") {
  const rlim_t limit = raise_fd_limit();
  // Each idle connection costs two descriptors here (both ends are in this process).
  const std::size_t count = limit >= 4400 ? 2000 : static_cast<std::size_t>(limit / 2 - 200);
  REQUIRE(count >= 500);
  fixture f;
  tt::run(
      f.io,
      [&]() -> asio::awaitable<void> {
        auto seen = std::make_shared<tt::server_side>();
        auto log = std::make_shared<lines>();
        auto cfg = flood_config(log);
        cfg.link.handshake_timeout = 10s;  // the link default: the accept side's 2 s applies
        auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds, cfg, seen);
        const auto fds_before = open_fds();

        // The flood: all from 127.0.0.1, the legitimate client's own address (the worst case
        // for the per-source limit).
        std::vector<asio::ip::tcp::socket> idle;
        idle.reserve(count);
        const auto flood_start = tt::steady::now();
        const std::size_t opened = co_await flood(lst->local_endpoint(), v4(), count, idle);
        REQUIRE(opened == count);
        std::printf("admission: %zu idle connections opened in %.0f ms (fd limit %llu)\n", opened,
                    ms_since(flood_start), static_cast<unsigned long long>(limit));

        // A legitimate peer right behind them in the accept queue.
        const auto start = tt::steady::now();
        auto c = co_await tr::connect(lst->local_endpoint(), f.client_creds, tt::test_config(),
                                      f.server_id);
        const double took = ms_since(start);
        std::printf(
            "admission: a TLS link was established in %.1f ms behind %zu idle "
            "connections (bound: 1000 ms, checked < 3000 ms on a loaded machine)\n",
            took, count);
        REQUIRE_MESSAGE(c, "connect: " << (c ? "" : c.error().message()));
        CHECK(took < 3000.0);
        const bool handed_up = co_await tt::wait_until([&] { return !seen->links.empty(); }, 3s);
        CHECK(handed_up);

        // Everything was accepted; at most the per-source limit is still handshaking.
        const bool all_accepted =
            co_await tt::wait_until([&] { return lst->stats().accepted >= count + 1; }, 5s);
        CHECK(all_accepted);
        const auto& st = lst->stats();
        CHECK(lst->pending_handshakes() <= cfg.max_handshakes_per_source);
        CHECK(st.shed_per_source + st.shed_oldest >= count - cfg.max_handshakes_per_source);
        CHECK(st.established == 1);
        CHECK(st.accept_errors == 0);
        // Shed connections close at once (no close_linger wait for a FIN an idle peer never
        // sends): our side holds at most the handshakes in progress and the link.
        const bool released = co_await tt::wait_until(
            [&] { return open_fds() < fds_before + count + cfg.max_handshakes + 32; }, 1500ms);
        CHECK_MESSAGE(released, "descriptors open: " << open_fds() << ", before the flood "
                                                     << fds_before << ", idle clients " << count);
        // The shed clients see the end of their connection.
        const bool first_closed = co_await closed_by_peer(idle.front(), 2s);
        CHECK(first_closed);

        // A flood is visible, in few lines: one for 127.0.0.1 so far, a summary at the end.
        std::printf("admission: shed %llu per source, %llu oldest; %zu pressure lines\n",
                    static_cast<unsigned long long>(st.shed_per_source),
                    static_cast<unsigned long long>(st.shed_oldest), log->all.size());
        REQUIRE(log->all.size() == 1);
        CHECK(log->containing("127.0.0.1 has 16 handshakes in progress") == 1);
        (*c)->close();
        lst->close();
        REQUIRE(log->all.size() == 2);
        CHECK(log->all[1].find(" unauthenticated connections closed in the last ") !=
              std::string::npos);
        CHECK(log->all[1].find("most from 127.0.0.1") != std::string::npos);
        CHECK(lst->stats().pressure_lines == 2);
        for (auto& s : idle) s.close();
      },
      60s);
}

TEST_CASE("listener: a flood from another address goes on while a TLS peer gets in") {
  raise_fd_limit();
  fixture f;
  tt::run(
      f.io,
      [&]() -> asio::awaitable<void> {
        auto seen = std::make_shared<tt::server_side>();
        auto log = std::make_shared<lines>();
        auto lst =
            tt::open_listener(f.io.get_executor(), v4(), f.server_creds, flood_config(log), seen);
        // 127.0.0.2 floods throughout (its sockets closed as it goes, to bound descriptors);
        // the per-source limit keeps it to 16 of the 64 slots.
        auto state = std::make_shared<flood_state>();
        const auto ex = co_await asio::this_coro::executor;
        asio::co_spawn(ex, keep_flooding(lst->local_endpoint(), addr("127.0.0.2"), state),
                       [state](std::exception_ptr) { state->done = true; });
        auto& flooded = state->opened;
        const bool started = co_await tt::wait_until([&] { return flooded >= 300; }, 5s);
        REQUIRE(started);
        const auto start = tt::steady::now();
        auto c = co_await tr::connect(lst->local_endpoint(), f.client_creds, tt::test_config(),
                                      f.server_id);
        const double took = ms_since(start);
        const std::size_t during = flooded;
        state->stop = true;
        std::printf(
            "admission: a TLS link was established in %.1f ms during a flood from "
            "127.0.0.2 (%zu connections by then)\n",
            took, during);
        REQUIRE_MESSAGE(c, "connect: " << (c ? "" : c.error().message()));
        CHECK(took < 3000.0);
        const bool stopped = co_await tt::wait_until([&] { return state->done; }, 5s);
        CHECK_MESSAGE(stopped, "opened " << state->opened << ", accepted " << lst->stats().accepted
                                         << ", pending " << lst->pending_handshakes());
        co_await tt::sleep_for(50ms);
        CHECK(lst->stats().shed_per_source >= 300 - 16);
        CHECK(log->containing("127.0.0.2 has 16 handshakes in progress") == 1);
        (*c)->close();
        lst->close();
      },
      60s);
}

TEST_CASE("listener: per-source and overall limits shed the oldest, visibly") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<tt::server_side>();
    auto log = std::make_shared<lines>();
    auto cfg = flood_config(log);
    cfg.max_handshakes = 4;
    cfg.max_handshakes_per_source = 2;
    cfg.handshake_timeout = 10s;  // nothing times out here
    cfg.link.handshake_timeout = 10s;
    auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds, cfg, seen);
    const auto to = lst->local_endpoint();
    std::vector<asio::ip::tcp::socket> a;  // from 127.0.0.2
    std::vector<asio::ip::tcp::socket> b;  // from 127.0.0.3
    const auto opened_1 = co_await flood(to, addr("127.0.0.2"), 2, a);
    REQUIRE(opened_1 == 2);
    const auto reached_2 = co_await tt::wait_until([&] { return lst->pending_handshakes() == 2; });
    REQUIRE(reached_2);
    // A third from 127.0.0.2 sheds its first; 127.0.0.3 is not touched.
    const auto opened_3 = co_await flood(to, addr("127.0.0.3"), 1, b);
    REQUIRE(opened_3 == 1);
    const auto opened_4 = co_await flood(to, addr("127.0.0.2"), 1, a);
    REQUIRE(opened_4 == 1);
    const auto reached_5 = co_await tt::wait_until([&] { return lst->stats().accepted == 4; });
    REQUIRE(reached_5);
    CHECK(lst->stats().shed_per_source == 1);
    CHECK(lst->pending_handshakes() == 3);
    const auto closed_6 = co_await closed_by_peer(a[0], 1s);
    CHECK(closed_6);
    const auto closed_7 = co_await closed_by_peer(b[0], 100ms);
    CHECK_FALSE(closed_7);
    const auto closed_8 = co_await closed_by_peer(a[1], 100ms);
    CHECK_FALSE(closed_8);
    // The table (4) fills with a second from 127.0.0.3; a fifth, from 127.0.0.4, sheds the
    // oldest of all: a[1].
    const auto opened_9 = co_await flood(to, addr("127.0.0.3"), 1, b);
    REQUIRE(opened_9 == 1);
    std::vector<asio::ip::tcp::socket> c;
    const auto opened_10 = co_await flood(to, addr("127.0.0.4"), 1, c);
    REQUIRE(opened_10 == 1);
    const auto reached_11 = co_await tt::wait_until([&] { return lst->stats().accepted == 6; });
    REQUIRE(reached_11);
    CHECK(lst->stats().shed_oldest == 1);
    CHECK(lst->pending_handshakes() == 4);
    const auto closed_12 = co_await closed_by_peer(a[1], 1s);
    CHECK(closed_12);
    const auto closed_13 = co_await closed_by_peer(b[0], 100ms);
    CHECK_FALSE(closed_13);
    // Shed handshakes are failed handshakes to the failure handler, closed by us.
    const auto reached_14 = co_await tt::wait_until([&] { return seen->failures.size() == 2; });
    REQUIRE(reached_14);
    CHECK(seen->failures[0] == errc(tr::transport_errc::closed_locally));
    CHECK(lst->stats().handshakes_failed == 2);
    // One line for 127.0.0.2 (both victims came from it), naming it; the rest in the summary.
    REQUIRE(log->all.size() == 1);
    CHECK(log->all[0].find("127.0.0.2 has 2 handshakes in progress") != std::string::npos);
    // A real client still gets in: the table is full of idle handshakes, so it sheds the
    // oldest of them (b[0], from 127.0.0.3: a line of its own).
    auto link = co_await tr::connect(to, f.client_creds, tt::test_config(), f.server_id);
    CHECK(link);
    CHECK(lst->stats().shed_oldest == 2);
    if (link) (*link)->close();
    lst->close();
    REQUIRE(log->all.size() == 3);
    CHECK(log->all[1].find("all 4 handshake slots taken: closed the oldest handshake in progress, "
                           "from 127.0.0.3") != std::string::npos);
    CHECK(log->all[2].find("3 unauthenticated connections closed in the last") !=
          std::string::npos);
    CHECK(log->all[2].find("2 shed as the oldest of 4 handshakes in progress, 1 shed at the "
                           "per-source limit of 2, 0 handshake timeouts") != std::string::npos);
  });
}

TEST_CASE("listener: the accept side's short handshake bound closes an idle connection") {
  fixture f;
  tt::run(f.io, [&]() -> asio::awaitable<void> {
    auto seen = std::make_shared<tt::server_side>();
    auto log = std::make_shared<lines>();
    auto cfg = flood_config(log);
    cfg.handshake_timeout = 300ms;  // the link's own stays at 5 s (test_config)
    cfg.pressure_log_interval = 400ms;
    auto lst = tt::open_listener(f.io.get_executor(), v4(), f.server_creds, cfg, seen);
    std::vector<asio::ip::tcp::socket> idle;
    const auto start = tt::steady::now();
    const auto opened_15 = co_await flood(lst->local_endpoint(), addr("127.0.0.2"), 3, idle);
    REQUIRE(opened_15 == 3);
    const bool closed = co_await closed_by_peer(idle[0], 3s);
    const auto elapsed = tt::steady::now() - start;
    CHECK(closed);
    CHECK(elapsed >= 250ms);
    CHECK(elapsed < 2500ms);
    const auto reached_16 = co_await tt::wait_until([&] { return seen->failures.size() == 3; }, 3s);
    REQUIRE(reached_16);
    CHECK(seen->failures[0] == errc(tr::transport_errc::handshake_timeout));
    CHECK(lst->stats().handshake_timeouts == 3);
    CHECK(lst->pending_handshakes() == 0);
    // One line for the source at once, then the summary of all three when the interval ends.
    CHECK(log->containing("closed a connection from 127.0.0.2: no TLS handshake within 300 ms") ==
          1);
    const auto reached_17 = co_await tt::wait_until([&] { return log->all.size() == 2; }, 2s);
    REQUIRE(reached_17);
    CHECK(log->all[1].find("3 unauthenticated connections closed in the last") !=
          std::string::npos);
    CHECK(log->all[1].find("3 handshake timeouts") != std::string::npos);
    // A real handshake is far inside the bound.
    auto link =
        co_await tr::connect(lst->local_endpoint(), f.client_creds, tt::test_config(), f.server_id);
    CHECK(link);
    if (link) (*link)->close();
    lst->close();
  });
}

TEST_CASE("stream_listener: the same admission: floods, shedding and the handshake bound") {
  const rlim_t limit = raise_fd_limit();
  const std::size_t count = limit >= 4400 ? 2000 : static_cast<std::size_t>(limit / 2 - 200);
  REQUIRE(count >= 500);
  fixture f;
  tt::run(
      f.io,
      [&]() -> asio::awaitable<void> {
        auto log = std::make_shared<lines>();
        std::vector<std::shared_ptr<tr::tls_stream>> streams;
        std::vector<std::error_code> failures;
        tr::stream_listener_config cfg;
        cfg.stream.close_linger = 500ms;
        cfg.handshake_timeout = 500ms;
        cfg.pressure_log = [log](std::string_view line) { log->all.emplace_back(line); };
        auto opened = tr::stream_listener::open(
            f.io.get_executor(), asio::ip::tcp::endpoint(v4(), 0), f.server_creds, cfg,
            [&](std::shared_ptr<tr::tls_stream> s) { streams.push_back(std::move(s)); },
            [&](const asio::ip::tcp::endpoint&, std::error_code e, const std::string&) {
              failures.push_back(e);
            });
        REQUIRE(opened);
        auto lst = *opened;
        std::vector<asio::ip::tcp::socket> idle;
        idle.reserve(count);
        const auto opened_18 = co_await flood(lst->local_endpoint(), v4(), count, idle);
        REQUIRE(opened_18 == count);
        tr::stream_config client_cfg;
        client_cfg.handshake_timeout = 5s;
        const auto start = tt::steady::now();
        auto c = co_await tr::connect_stream(lst->local_endpoint(), f.client_creds, client_cfg,
                                             f.server_id);
        const double took = ms_since(start);
        std::printf(
            "admission: a TLS stream was established in %.1f ms behind %zu idle "
            "connections\n",
            took, count);
        REQUIRE_MESSAGE(c, "connect_stream: " << (c ? "" : c.error().message()));
        CHECK(took < 3000.0);
        const auto reached_19 = co_await tt::wait_until([&] { return !streams.empty(); }, 3s);
        REQUIRE(reached_19);
        const auto all_accepted =
            co_await tt::wait_until([&] { return lst->stats().accepted >= count + 1; }, 5s);
        REQUIRE(all_accepted);
        CHECK(lst->stats().shed_per_source + lst->stats().shed_oldest >=
              count - cfg.max_handshakes_per_source);
        CHECK(lst->pending_handshakes() <= cfg.max_handshakes_per_source);
        // The survivors run out of the 500 ms bound.
        const auto drained =
            co_await tt::wait_until([&] { return lst->pending_handshakes() == 0; }, 3s);
        REQUIRE(drained);
        CHECK(lst->stats().handshake_timeouts >= 1);
        CHECK(lst->stats().handshake_timeouts <= cfg.max_handshakes_per_source);
        CHECK(log->containing("127.0.0.1 has 16 handshakes in progress") == 1);
        CHECK(log->all.size() == 1);  // the timeouts' source had its line this interval
        (*c)->close();
        for (auto& s : streams) s->close();
        lst->close();
        CHECK(log->all.size() == 2);  // the summary, on close
        for (auto& s : idle) s.close();
      },
      60s);
}
