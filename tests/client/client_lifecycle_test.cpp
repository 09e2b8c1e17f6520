// The client's life: stop, no reachable peer, stop while attaching, destruction from inside its
// own callbacks, many create/destroy cycles, and a dispatcher of the application's own.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "client_fixture.hpp"
#include "client_testing.hpp"

using namespace p2psip;
using namespace std::chrono_literals;
using client::to_bytes;
using test::awaited;
using test::why;
using steady = std::chrono::steady_clock;

namespace {

long long ms_since(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t).count();
}

/// A dispatcher that queues callbacks for the test thread to run.
class test_queue {
 public:
  client::dispatcher dispatcher() {
    return [this](std::function<void()> f) {
      {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(f));
      }
      cv_.notify_all();
    };
  }
  /// Runs callbacks on this thread until `done()` or the timeout; false on timeout.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto until = steady::now() + timeout;
    while (!done()) {
      std::function<void()> f;
      {
        std::unique_lock lock(mutex_);
        if (!cv_.wait_until(lock, until, [this] { return !queue_.empty(); })) return false;
        f = std::move(queue_.front());
        queue_.pop_front();
      }
      ++ran_;
      f();
    }
    return true;
  }
  int ran() const { return ran_; }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  int ran_ = 0;
};

}  // namespace

TEST_CASE("client lifecycle: stop fails everything with errc::stopped, without hanging") {
  test::overlay_fixture f(1);
  auto alice = f.attach("alice", 0);
  auto put = alice->put("x", to_bytes("1"));
  REQUIRE_MESSAGE(put.has_value(), why(put));

  // Operations in flight at the stop end one way or the other.
  std::vector<std::unique_ptr<awaited<void>>> in_flight;
  for (int i = 0; i < 20; ++i) {
    in_flight.push_back(std::make_unique<awaited<void>>());
    alice->put_async("y" + std::to_string(i), to_bytes("2"), 60, in_flight.back()->callback());
  }
  const auto t0 = steady::now();
  alice->stop();
  CHECK(ms_since(t0) < 3000);
  for (auto& a : in_flight) {
    auto r = a->get(5s);
    if (!r) CHECK(r.code() == client::errc::stopped);
  }

  CHECK(alice->put("x", to_bytes("2")).code() == client::errc::stopped);
  CHECK(alice->get("x").code() == client::errc::stopped);
  CHECK(alice->ping().code() == client::errc::stopped);
  CHECK(alice->wait_attached(1s).code() == client::errc::stopped);
  CHECK_FALSE(alice->attached_peer().has_value());
  // The callback forms answer too, through the dispatcher, not on the caller's stack.
  awaited<void> put_async;
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> on_caller{false};
  alice->put_async("x", to_bytes("3"), 60, [&, cb = put_async.callback()](client::result<void> r) {
    on_caller = std::this_thread::get_id() == caller;
    cb(std::move(r));
  });
  CHECK(put_async.get(5s).code() == client::errc::stopped);
  CHECK_FALSE(on_caller.load());
  awaited<client::kind_data> fetch_async;
  alice->fetch_async("x", test::generic_kind, client::selection::all(), fetch_async.callback());
  CHECK(fetch_async.get(5s).code() == client::errc::stopped);
  alice->stop();  // idempotent
  alice.reset();
}

TEST_CASE("client lifecycle: no reachable peer") {
  test::overlay_fixture f(0);
  const auto nowhere = test::closed_port_address();
  auto o = f.options("alice", {nowhere});
  o.operation_timeout = 1500ms;
  o.request_timeout = 1000ms;
  std::atomic<int> opening{0};
  o.log = [&](std::string_view line) {
    if (line.find("opening link") != std::string_view::npos) ++opening;
  };
  auto c = client::client::create(o);
  REQUIRE_MESSAGE(c.has_value(), why(c));
  auto& alice = **c;

  // Every peer refuses: no_peer at once (not after the timeouts), naming the address and the
  // system's reason.
  const auto refused = nowhere + ": TCP connect failed: Connection refused";
  auto t0 = steady::now();
  auto attached = alice.wait_attached(5s);
  const auto attach_ms = ms_since(t0);
  REQUIRE(attached.code() == client::errc::no_peer);
  CHECK_MESSAGE(attached.error().message.find(refused) != std::string::npos,
                attached.error().message);
  CHECK(attach_ms < 1000);
  t0 = steady::now();
  auto put = alice.put("x", to_bytes("1"));
  const auto put_ms = ms_since(t0);
  REQUIRE(put.code() == client::errc::no_peer);
  CHECK_MESSAGE(put.error().message.find(refused) != std::string::npos, put.error().message);
  CHECK(put_ms < 1000);
  MESSAGE("every peer refused: wait_attached answered in " << attach_ms << " ms, put in " << put_ms
                                                           << " ms");
  awaited<std::vector<client::owned_value>> got;
  alice.get_async("x", got.callback());
  CHECK(got.get(1s).code() == client::errc::no_peer);

  // How often the client-role core reopens a link to an unreachable peer list.
  const int before = opening.load();
  std::this_thread::sleep_for(2s);
  const int in_two_seconds = opening.load() - before;
  MESSAGE("'opening link' lines in 2 s with every peer unreachable: " << in_two_seconds);
  t0 = steady::now();
  c->reset();
  CHECK(ms_since(t0) < 3000);
}

TEST_CASE("client lifecycle: a peer still dialing is waited for, and named when time runs out") {
  test::overlay_fixture f(0);
  const auto refusing = test::closed_port_address();
  test::silent_listener silent;
  auto o = f.options("alice", {refusing, silent.address});
  o.operation_timeout = 1200ms;
  auto c = client::client::create(o);
  REQUIRE_MESSAGE(c.has_value(), why(c));
  auto& alice = **c;
  auto t0 = steady::now();
  auto attached = alice.wait_attached(800ms);
  CHECK(ms_since(t0) >= 750);
  REQUIRE(attached.code() == client::errc::no_peer);
  const auto& m = attached.error().message;
  CHECK_MESSAGE(m.find(silent.address + ": still dialing") != std::string::npos, m);
  CHECK_MESSAGE(m.find(refusing + ": TCP connect failed: Connection refused") != std::string::npos,
                m);
  t0 = steady::now();
  auto put = alice.put("x", to_bytes("1"));
  CHECK(ms_since(t0) >= 1100);
  REQUIRE(put.code() == client::errc::no_peer);
  CHECK_MESSAGE(put.error().message.find(silent.address + ": still dialing") != std::string::npos,
                put.error().message);
}

TEST_CASE("client lifecycle: stop while attaching") {
  test::overlay_fixture f(1);
  for (int i = 0; i < 3; ++i) {
    auto c = client::client::create(f.options("alice", 0));
    REQUIRE_MESSAGE(c.has_value(), why(c));
    awaited<void> put;
    (*c)->put_async("x", to_bytes("1"), 60, put.callback());
    const auto t0 = steady::now();
    (*c)->stop();
    CHECK(ms_since(t0) < 3000);
    auto r = put.get(5s);
    if (!r) CHECK(r.code() == client::errc::stopped);
  }
  // With only a peer that never answers the handshake, still attaching.
  test::silent_listener silent;
  auto o = f.options("alice", {silent.address});
  auto c = client::client::create(o);
  REQUIRE_MESSAGE(c.has_value(), why(c));
  awaited<void> put;
  (*c)->put_async("x", to_bytes("1"), 60, put.callback());
  std::this_thread::sleep_for(200ms);
  const auto t0 = steady::now();
  c->reset();
  CHECK(ms_since(t0) < 3000);
  CHECK(put.get(5s).code() == client::errc::stopped);
}

TEST_CASE("client lifecycle: destroy the client from inside its own callback") {
  test::overlay_fixture f(1);

  SUBCASE("default callback thread") {
    auto holder = std::make_shared<std::unique_ptr<client::client>>(f.attach("alice", 0));
    auto& c = **holder;
    // Several callbacks queued behind the one that destroys the client.
    std::vector<std::unique_ptr<awaited<void>>> others;
    awaited<void> destroyed;
    // The destroying callback waits until the others are started (`c` is used until then).
    std::promise<void> go;
    std::shared_future<void> started = go.get_future().share();
    c.put_async("x", to_bytes("1"), 60,
                [holder, started, cb = destroyed.callback()](client::result<void> r) {
                  (void)started.wait_for(10s);
                  holder->reset();  // destroys the client on its own callback thread
                  cb(std::move(r));
                });
    for (int i = 0; i < 5; ++i) {
      others.push_back(std::make_unique<awaited<void>>());
      c.put_async("y", to_bytes("2"), 60, others.back()->callback());
    }
    go.set_value();
    auto r = destroyed.get(20s);
    REQUIRE_MESSAGE(r.has_value(), why(r));
    for (auto& o : others) {
      auto ro = o->get(20s);
      if (!ro) CHECK(ro.code() == client::errc::stopped);
    }
  }
  SUBCASE("a blocking call, then destruction, from the callback thread") {
    auto holder = std::make_shared<std::unique_ptr<client::client>>(f.attach("alice", 0));
    awaited<void> done;
    (*holder)->put_async("x", to_bytes("1"), 60,
                         [holder, cb = done.callback()](client::result<void> r) mutable {
                           // A blocking call on the callback thread works (not the I/O thread).
                           auto got = (*holder)->get("x");
                           holder->reset();
                           cb(got ? std::move(r) : client::result<void>(got.error()));
                         });
    auto r = done.get(20s);
    CHECK_MESSAGE(r.has_value(), why(r));
  }
  SUBCASE("an inline dispatcher: the callback runs on the I/O thread") {
    auto o = f.options("alice", 0);
    o.dispatcher = [](std::function<void()> fn) { fn(); };
    auto holder =
        std::make_shared<std::unique_ptr<client::client>>(test::overlay_fixture::attach(o));
    awaited<void> done;
    (*holder)->put_async("x", to_bytes("1"), 60,
                         [holder, cb = done.callback()](client::result<void> r) mutable {
                           // Blocking here would wait for this very thread.
                           auto got = (*holder)->get("x");
                           const bool refused = got.code() == client::errc::would_deadlock;
                           holder->reset();
                           cb(refused ? std::move(r)
                                      : client::result<void>(client::errc::overlay_error,
                                                             "a blocking call was not refused"));
                         });
    auto r = done.get(20s);
    CHECK_MESSAGE(r.has_value(), why(r));
  }
  SUBCASE("a queue dispatcher run by the test thread") {
    test_queue q;
    auto o = f.options("alice", 0);
    o.dispatcher = q.dispatcher();
    auto holder =
        std::make_shared<std::unique_ptr<client::client>>(test::overlay_fixture::attach(o));
    bool finished = false;
    (*holder)->put_async("x", to_bytes("1"), 60, [holder, &finished](client::result<void> r) {
      CHECK_MESSAGE(r.has_value(), why(r));
      holder->reset();
      finished = true;
    });
    CHECK(q.run_until([&] { return finished; }, 20s));
  }
}

TEST_CASE("client lifecycle: 20 create/destroy cycles") {
  test::overlay_fixture f(1);
  const auto t0 = steady::now();
  for (int i = 0; i < 20; ++i) {
    auto c = client::client::create(f.options("alice", 0));
    REQUIRE_MESSAGE(c.has_value(), why(c));
    if (i % 2 == 0) {
      // Used, then destroyed.
      auto put = (*c)->put("cycle", to_bytes(std::to_string(i)));
      REQUIRE_MESSAGE(put.has_value(), why(put));
      awaited<std::vector<client::owned_value>> got;
      (*c)->get_async("cycle", got.callback());
      auto g = got.get(20s);
      REQUIRE_MESSAGE(g.has_value(), why(g));
    } else {
      // Destroyed at once, maybe before it attached, with an operation in flight.
      awaited<void> put;
      (*c)->put_async("cycle", to_bytes(std::to_string(i)), 60, put.callback());
      c->reset();
      auto r = put.get(5s);
      if (!r) CHECK(r.code() == client::errc::stopped);
    }
  }
  MESSAGE("20 cycles took " << ms_since(t0) << " ms");
}

TEST_CASE("client lifecycle: a custom dispatcher receives every callback") {
  test::overlay_fixture f(1);
  test_queue q;
  auto o = f.options("alice", 0);
  o.dispatcher = q.dispatcher();
  auto alice = test::overlay_fixture::attach(o);
  const auto test_thread = std::this_thread::get_id();
  int answered = 0;
  int wrong_thread = 0;
  int failed = 0;
  auto count = [&](bool ok) {
    ++answered;
    if (!ok) ++failed;
    if (std::this_thread::get_id() != test_thread) ++wrong_thread;
  };
  constexpr int n = 10;
  for (int i = 0; i < n; ++i) {
    alice->put_async("q" + std::to_string(i), to_bytes("v"), 60,
                     [&](client::result<void> r) { count(r.has_value()); });
    alice->get_async(
        "q" + std::to_string(i),
        [&](client::result<std::vector<client::owned_value>> r) { count(r.has_value()); });
    alice->ping_async({}, [&](client::result<client::ping_info> r) { count(r.has_value()); });
  }
  // Errors come through the dispatcher too.
  alice->fetch_async(
      "q", 12345, client::selection::all(),
      [&](client::result<client::kind_data> r) { count(r.code() == client::errc::unknown_kind); });
  // A blocking call made while callbacks wait in the queue does not need the queue.
  auto put = alice->put("blocking", to_bytes("v"));
  CHECK_MESSAGE(put.has_value(), why(put));
  CHECK(q.run_until([&] { return answered == 3 * n + 1; }, 20s));
  CHECK(answered == 3 * n + 1);
  CHECK(failed == 0);
  CHECK(wrong_thread == 0);
  CHECK(q.ran() == 3 * n + 1);
  // After stop, an async call's errc::stopped comes through the dispatcher as well.
  alice->stop();
  bool stopped = false;
  alice->ping_async({}, [&](client::result<client::ping_info> r) {
    stopped = r.code() == client::errc::stopped;
  });
  CHECK(q.run_until([&] { return stopped; }, 5s));
}

namespace {

/// The shared overlay setups whose document was first loaded from `file`.
std::vector<client::testing::shared_overlay_info> shared_from(const std::filesystem::path& file) {
  std::vector<client::testing::shared_overlay_info> out;
  for (auto& s : client::testing::shared_overlays()) {
    if (s.config_file == file.string()) out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

// (No ';' in test names: doctest_discover_tests would split the name there.)
TEST_CASE("client lifecycle: clients of one document share its setup, another document its own") {
  test::overlay_fixture f(0);
  const auto nowhere = test::closed_port_address();
  const auto config = f.overlay.config_file();
  const auto alice_options = f.options("alice", {nowhere});
  auto alice = client::client::create(alice_options);
  REQUIRE_MESSAGE(alice.has_value(), why(alice));
  auto bob = client::client::create(f.options("bob", {nowhere}));
  REQUIRE_MESSAGE(bob.has_value(), why(bob));
  auto shared = shared_from(config);
  REQUIRE(shared.size() == 1);
  // Each client holds the same number of references (itself, its node's document).
  const long per_client = shared[0].references / 2;
  REQUIRE(per_client >= 1);
  CHECK(shared[0].references == 2 * per_client);

  // Clients created from several threads at once (the registry is shared by all of them).
  {
    std::vector<client::client_options> threaded;
    for (int i = 0; i < 4; ++i) threaded.push_back(f.options("t" + std::to_string(i), {nowhere}));
    std::vector<std::unique_ptr<client::client>> made(threaded.size());
    std::vector<std::string> errors(threaded.size());
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < threaded.size(); ++i) {
      threads.emplace_back([&, i] {
        auto c = client::client::create(threaded[i]);
        if (c) {
          made[i] = std::move(*c);
        } else {
          errors[i] = c.error().message;
        }
      });
    }
    for (auto& t : threads) t.join();
    for (std::size_t i = 0; i < made.size(); ++i) CHECK_MESSAGE(made[i] != nullptr, errors[i]);
    shared = shared_from(config);
    REQUIRE(shared.size() == 1);
    CHECK(shared[0].references == 6 * per_client);
  }
  CHECK(shared_from(config).at(0).references == 2 * per_client);

  // The same bytes under another name: the same setup.
  const auto copy = f.overlay.dir() / "copy-of-overlay.xml";
  std::filesystem::copy_file(config, copy);
  auto carol_options = f.options("carol", {nowhere});
  carol_options.config_file = copy.string();
  auto carol = client::client::create(carol_options);
  REQUIRE_MESSAGE(carol.has_value(), why(carol));
  shared = shared_from(config);
  REQUIRE(shared.size() == 1);
  CHECK(shared[0].references == 3 * per_client);
  CHECK(shared_from(copy).empty());

  // Another overlay's document (its own CA and roots): a setup of its own.
  test::process_overlay other(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY, "other.p2psip.example");
  other.enroll("dave");
  client::client_options dave_options = alice_options;
  dave_options.config_file = other.config_file().string();
  dave_options.certificate_file = other.cert_of("dave").string();
  dave_options.key_file = other.key_of("dave").string();
  auto dave = client::client::create(dave_options);
  REQUIRE_MESSAGE(dave.has_value(), why(dave));
  const auto others = shared_from(other.config_file());
  REQUIRE(others.size() == 1);
  CHECK(others[0].references == per_client);
  CHECK(others[0].identity != shared_from(config).at(0).identity);
  // Credentials of one overlay are refused under the other's document, shared or not.
  auto mixed = alice_options;
  mixed.config_file = other.config_file().string();
  CHECK(client::client::create(mixed).code() == client::errc::bad_credentials);

  // A setup lives while a client holds it.
  alice->reset();
  bob->reset();
  CHECK(shared_from(config).at(0).references == per_client);
  carol->reset();
  CHECK(shared_from(config).empty());
  dave->reset();
  CHECK(shared_from(other.config_file()).empty());
}

namespace {

/// Fills 16 KiB of stack per level, `levels` deep; returns a sum that depends on every byte.
[[gnu::noinline]] unsigned deep_stack_sum(unsigned levels) {
  volatile unsigned char block[16 * 1024];
  for (std::size_t i = 0; i < sizeof block; ++i) block[i] = static_cast<unsigned char>(i + levels);
  unsigned sum = levels > 1 ? deep_stack_sum(levels - 1) : 0;
  for (std::size_t i = 0; i < sizeof block; i += 512) sum += block[i];
  return sum;
}

/// Rss (KiB) of the mapping of /proc/self/smaps that holds `address`; -1 when none does.
long mapping_rss_kib(const void* address) {
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    unsigned long lo = 0;
    unsigned long hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) {
      inside = lo <= a && a < hi;
    } else if (inside && line.rfind("Rss:", 0) == 0) {
      return std::stol(line.substr(4));
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("client lifecycle: an I/O thread gives back the stack pages deep calls touched") {
  long before = 0;
  long touched = 0;
  long released = 0;
  std::size_t given_back = 0;
  unsigned first = 0;
  unsigned again = 0;
  std::thread t([&] {
    volatile char here = 0;
    // What the mapping holds before: glibc puts static TLS at a thread stack's top, and under
    // ThreadSanitizer that is its per-thread state, about 780 KiB resident.
    before = mapping_rss_kib(const_cast<const char*>(&here));
    first = deep_stack_sum(32);  // 512 KiB deep, as Botan's handshake is ~16 KiB
    touched = mapping_rss_kib(const_cast<const char*>(&here));
    given_back = client::testing::release_unused_stack();
    released = mapping_rss_kib(const_cast<const char*>(&here));
    again = deep_stack_sum(32);  // the pages come back, zero-filled, and work as before
  });
  t.join();
  INFO("stack RSS " << before << " KiB before, " << touched << " KiB after deep calls, " << released
                    << " KiB after release");
  CHECK(touched >= before + 480);
  CHECK(given_back >= 480 * 1024);
  CHECK(released > 0);
  CHECK(released <= before + 64);
  CHECK(again == first);
}
