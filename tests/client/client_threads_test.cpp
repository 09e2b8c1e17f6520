// The threads of an SDK process: every client shares one I/O thread (and one default callback
// thread), made with the first client and ended after the last; one client's stop or
// destruction, wherever it happens, leaves the others' operations alone; a blocking call on the
// shared I/O thread is refused for every client, not only the one whose callback runs there.
#include <doctest/doctest.h>

#include <pthread.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "client_fixture.hpp"

using namespace p2psip;
using namespace std::chrono_literals;
using client::to_bytes;
using test::awaited;
using test::why;
using steady = std::chrono::steady_clock;

namespace {

/// Threads of this process whose name is `name` (/proc/self/task/*/comm).
int threads_named(const std::string& name) {
  int n = 0;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream in(task.path() / "comm");
    std::string comm;
    if (std::getline(in, comm) && comm == name) ++n;
  }
  return n;
}

/// Threads of this process (/proc/self/status).
int threads_of_process() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

std::string this_thread_name() {
  char name[16] = {};
  ::pthread_getname_np(::pthread_self(), name, sizeof name);
  return name;
}

/// Waits (bounded) until `n` threads are named `name`.
bool wait_threads_named(const std::string& name, int n, std::chrono::milliseconds timeout) {
  const auto until = steady::now() + timeout;
  while (threads_named(name) != n) {
    if (steady::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

/// `n` put_async of `c` under distinct names, started now.
std::vector<std::unique_ptr<awaited<void>>> start_puts(client::client& c, const std::string& prefix,
                                                       int n) {
  std::vector<std::unique_ptr<awaited<void>>> puts;
  for (int i = 0; i < n; ++i) {
    puts.push_back(std::make_unique<awaited<void>>());
    c.put_async(prefix + std::to_string(i), to_bytes("v" + std::to_string(i)), 60,
                puts.back()->callback());
  }
  return puts;
}

/// Every put succeeded, and each value reads back.
void check_puts(client::client& c, const std::string& prefix,
                std::vector<std::unique_ptr<awaited<void>>>& puts) {
  for (std::size_t i = 0; i < puts.size(); ++i) {
    auto r = puts[i]->get(20s);
    CHECK_MESSAGE(r.has_value(), why(r));
  }
  for (std::size_t i = 0; i < puts.size(); ++i) {
    auto got = c.get(prefix + std::to_string(i));
    REQUIRE_MESSAGE(got.has_value(), why(got));
    REQUIRE(got->size() == 1);
    CHECK(client::to_string(got->at(0).value) == "v" + std::to_string(i));
  }
}

}  // namespace

TEST_CASE("client threads: a process's clients share one I/O thread, which ends after the last") {
  test::overlay_fixture f(1);
  REQUIRE(threads_named("p2psip-io") == 0);
  REQUIRE(threads_named("p2psip-callback") == 0);
  // What starts with a process's first extra thread (ThreadSanitizer's background thread) is
  // there before counting.
  std::thread([] {}).join();
  const int before = threads_of_process();

  constexpr std::size_t n = 6;
  std::vector<std::unique_ptr<client::client>> clients;
  for (std::size_t i = 0; i < n; ++i) clients.push_back(f.attach("u" + std::to_string(i), 0));
  CHECK(threads_named("p2psip-io") == 1);
  // Nobody was called back yet: no callback thread.
  CHECK(threads_named("p2psip-callback") == 0);
  CHECK(threads_of_process() == before + 1);

  // Every client works through it; their callbacks share one callback thread.
  std::vector<std::vector<std::unique_ptr<awaited<void>>>> puts;
  for (std::size_t i = 0; i < n; ++i)
    puts.push_back(start_puts(*clients[i], "c" + std::to_string(i), 3));
  for (std::size_t i = 0; i < n; ++i) check_puts(*clients[i], "c" + std::to_string(i), puts[i]);
  CHECK(threads_named("p2psip-io") == 1);
  CHECK(threads_named("p2psip-callback") == 1);
  CHECK(threads_of_process() == before + 2);

  // The threads stay while any client does, and end (joined) with the last one.
  while (clients.size() > 1) {
    clients.pop_back();
    CHECK(threads_named("p2psip-io") == 1);
    CHECK(threads_named("p2psip-callback") == 1);
  }
  auto ping = clients[0]->ping();
  CHECK_MESSAGE(ping.has_value(), why(ping));
  clients.clear();
  CHECK(threads_named("p2psip-io") == 0);
  CHECK(threads_named("p2psip-callback") == 0);
  CHECK(threads_of_process() == before);

  // The next client starts them again.
  auto again = f.attach("u0", 0);
  CHECK(threads_named("p2psip-io") == 1);
  auto put = again->put("again", to_bytes("1"));
  CHECK_MESSAGE(put.has_value(), why(put));
  again.reset();
  CHECK(threads_named("p2psip-io") == 0);
}

TEST_CASE("client threads: one client's stop or destruction leaves another's operations alone") {
  test::overlay_fixture f(1);
  auto bob = f.attach("bob", 0);

  SUBCASE("stop and destruction from the application's thread") {
    auto alice = f.attach("alice", 0);
    auto alice_puts = start_puts(*alice, "a", 10);
    auto puts = start_puts(*bob, "stop", 20);
    alice->stop();
    for (auto& p : alice_puts) {
      auto r = p->get(5s);
      if (!r) CHECK(r.code() == client::errc::stopped);
    }
    alice.reset();
    check_puts(*bob, "stop", puts);
  }
  SUBCASE("destruction from its own callback on the callback thread") {
    auto alice = std::make_shared<std::unique_ptr<client::client>>(f.attach("alice", 0));
    awaited<void> destroyed;
    std::vector<std::unique_ptr<awaited<void>>> puts;
    (*alice)->put_async("x", to_bytes("1"), 60,
                        [alice, cb = destroyed.callback()](client::result<void> r) mutable {
                          alice->reset();
                          cb(std::move(r));
                        });
    puts = start_puts(*bob, "own", 20);
    auto r = destroyed.get(20s);
    CHECK_MESSAGE(r.has_value(), why(r));
    check_puts(*bob, "own", puts);
  }
  SUBCASE("destruction on the I/O thread, from a dispatcher that runs callbacks inline") {
    auto o = f.options("alice", 0);
    o.dispatcher = [](std::function<void()> fn) { fn(); };
    auto alice =
        std::make_shared<std::unique_ptr<client::client>>(test::overlay_fixture::attach(o));
    awaited<void> destroyed;
    std::string destroyed_on;
    auto puts = start_puts(*bob, "inline", 20);
    (*alice)->put_async("x", to_bytes("1"), 60,
                        [alice, &destroyed_on, cb = destroyed.callback()](client::result<void> r) {
                          destroyed_on = this_thread_name();
                          alice->reset();
                          cb(std::move(r));
                        });
    auto more = start_puts(*bob, "inline-after", 20);
    auto r = destroyed.get(20s);
    CHECK_MESSAGE(r.has_value(), why(r));
    CHECK(destroyed_on == "p2psip-io");
    check_puts(*bob, "inline", puts);
    check_puts(*bob, "inline-after", more);
  }
  // Bob's client and its link are as they were.
  auto ping = bob->ping();
  CHECK_MESSAGE(ping.has_value(), why(ping));
  CHECK(threads_named("p2psip-io") == 1);
}

TEST_CASE("client threads: a blocking call of any client on the shared I/O thread is refused") {
  test::overlay_fixture f(1);
  auto bob = f.attach("bob", 0);
  REQUIRE(bob->put("b", to_bytes("bob's")).has_value());
  auto o = f.options("alice", 0);
  o.dispatcher = [](std::function<void()> fn) { fn(); };  // alice's callbacks on the I/O thread
  auto alice = test::overlay_fixture::attach(o);

  awaited<std::vector<client::owned_value>> from_alice;
  const auto t0 = steady::now();
  alice->put_async("a", to_bytes("alice's"), 60,
                   [&bob, cb = from_alice.callback()](client::result<void>) {
                     cb(bob->get("b"));  // bob's blocking call, on the thread bob's I/O runs on
                   });
  auto refused = from_alice.get(10s);
  CHECK(refused.code() == client::errc::would_deadlock);
  CHECK(steady::now() - t0 < 5s);

  // From bob's callback (the shared callback thread, not the I/O thread) alice's blocking call
  // works.
  awaited<std::vector<client::owned_value>> from_bob;
  bob->ping_async({}, [&alice, cb = from_bob.callback()](client::result<client::ping_info>) {
    cb(alice->get("a"));
  });
  auto got = from_bob.get(20s);
  REQUIRE_MESSAGE(got.has_value(), why(got));
  REQUIRE(got->size() == 1);
  CHECK(client::to_string(got->at(0).value) == "alice's");
}

TEST_CASE("client threads: clients created and destroyed from several threads at once") {
  test::overlay_fixture f(1);
  constexpr std::size_t threads = 4;
  constexpr int rounds = 4;
  std::vector<client::client_options> options;
  for (std::size_t t = 0; t < threads; ++t)
    options.push_back(f.options("t" + std::to_string(t), 0));
  std::atomic<int> succeeded{0};
  std::vector<std::string> failures(threads);
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i) {
        auto c = client::client::create(options[t]);
        if (!c) {
          failures[t] = why(c);
          return;
        }
        const auto name = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (i % 2 == 1) {
          // Destroyed at once, maybe before it attached, with an operation in flight.
          (*c)->put_async(name, to_bytes("x"), 60, [](client::result<void>) {});
          continue;
        }
        auto put = (*c)->put(name, to_bytes(name));
        auto got =
            put ? (*c)->get(name) : client::result<std::vector<client::owned_value>>(put.error());
        if (!got || got->size() != 1 || client::to_string(got->at(0).value) != name) {
          failures[t] = name + ": " + (got ? std::string("wrong value") : why(got));
          return;
        }
        ++succeeded;
      }
    });
  }
  for (auto& w : workers) w.join();
  for (const auto& failure : failures) CHECK_MESSAGE(failure.empty(), failure);
  CHECK(succeeded == static_cast<int>(threads) * rounds / 2);
  // Each destroying thread joined the threads when it let go of the last client.
  CHECK(wait_threads_named("p2psip-io", 0, 5s));
  CHECK(wait_threads_named("p2psip-callback", 0, 5s));
}
