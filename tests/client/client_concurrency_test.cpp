// Many threads on two clients at once, and failover from a killed peer to the next of the list.
#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "client_fixture.hpp"

using namespace p2psip;
using namespace std::chrono_literals;
using client::to_bytes;
using client::to_string;
using test::awaited;
using test::why;

TEST_CASE("client concurrency: 8 threads x 25 put/get through 2 clients") {
  test::overlay_fixture f(3);
  auto alice = f.attach("alice", 0);
  auto bob = f.attach("bob", 1);
  client::client* clients[2] = {alice.get(), bob.get()};
  constexpr int threads = 8;
  constexpr int rounds = 25;
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  auto failed = [&](std::string what) {
    std::lock_guard lock(failures_mutex);
    failures.push_back(std::move(what));
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto& c = *clients[t % 2];
      for (int i = 0; i < rounds; ++i) {
        const auto name = "t" + std::to_string(t) + "-" + std::to_string(i);
        const auto value = "value " + std::to_string(t) + "/" + std::to_string(i);
        // Odd rounds use the callback forms, waited for with a bound.
        if (i % 2 == 0) {
          if (auto r = c.put(name, to_bytes(value)); !r) {
            failed(name + " put: " + why(r));
            continue;
          }
          auto got = c.get(name);
          if (!got) {
            failed(name + " get: " + why(got));
          } else if (got->size() != 1 || to_string(got->front().value) != value ||
                     got->front().owner_node_id != c.node_id()) {
            failed(name + " get: wrong answer");
          }
        } else {
          awaited<void> put;
          c.put_async(name, to_bytes(value), 3600, put.callback());
          if (!put.ready(30s)) {
            failed(name + " put_async: no callback");
            continue;
          }
          if (auto r = put.get(0ms); !r) {
            failed(name + " put_async: " + why(r));
            continue;
          }
          awaited<std::vector<client::owned_value>> got;
          c.get_async(name, got.callback());
          if (!got.ready(30s)) {
            failed(name + " get_async: no callback");
            continue;
          }
          auto r = got.get(0ms);
          if (!r) {
            failed(name + " get_async: " + why(r));
          } else if (r->size() != 1 || to_string(r->front().value) != value) {
            failed(name + " get_async: wrong answer");
          }
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  for (const auto& e : failures) MESSAGE(e);
  REQUIRE(failures.empty());

  // Every value written by one client reads back through the other client and another peer.
  for (int t = 0; t < threads; ++t) {
    auto& other = *clients[(t + 1) % 2];
    for (int i = 0; i < rounds; i += 6) {
      const auto name = "t" + std::to_string(t) + "-" + std::to_string(i);
      auto got = other.get(name);
      REQUIRE_MESSAGE(got.has_value(), name << ": " << why(got));
      REQUIRE(got->size() == 1);
      CHECK(to_string(got->front().value) ==
            "value " + std::to_string(t) + "/" + std::to_string(i));
      CHECK(got->front().owner_node_id == clients[t % 2]->node_id());
    }
  }
}

TEST_CASE("client failover: kill -9 the attached peer, the next of the list takes over") {
  test::overlay_fixture f(3);
  auto o = f.options("alice", {f.overlay.peers()[0].address, f.overlay.peers()[1].address});
  const auto operation_timeout = 12s;
  o.operation_timeout = operation_timeout;
  o.request_timeout = 3s;
  auto alice = test::overlay_fixture::attach(o);
  REQUIRE(alice->attached_peer()->address == f.overlay.peers()[0].address);
  auto put = alice->put("before", to_bytes("kill"));
  REQUIRE_MESSAGE(put.has_value(), why(put));

  // Operations in flight while the peer dies: a thread keeps blocking calls going across the
  // kill, and callback forms are started just before it.
  std::atomic<bool> stop_load{false};
  std::atomic<int> load_ok{0};
  std::mutex load_mutex;
  std::vector<std::string> load_errors;
  std::thread load([&] {
    for (int i = 0; !stop_load; ++i) {
      const auto name = "load-" + std::to_string(i);
      auto r = alice->put(name, to_bytes("z"));
      auto g = r ? alice->get(name) : client::result<std::vector<client::owned_value>>(r.error());
      if (g) {
        ++load_ok;
      } else {
        std::lock_guard lock(load_mutex);
        load_errors.push_back(why(g));
      }
    }
  });
  std::this_thread::sleep_for(300ms);
  std::vector<std::unique_ptr<awaited<void>>> in_flight;
  for (int i = 0; i < 10; ++i) {
    in_flight.push_back(std::make_unique<awaited<void>>());
    alice->put_async("flight-" + std::to_string(i), to_bytes("x"), 3600,
                     in_flight.back()->callback());
  }
  const int ok_before_kill = load_ok;
  f.overlay.kill_peer(0);
  const auto killed = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) {
    in_flight.push_back(std::make_unique<awaited<void>>());
    alice->put_async("after-" + std::to_string(i), to_bytes("y"), 3600,
                     in_flight.back()->callback());
  }

  // The next operation succeeds through B within the operation timeout.
  auto next = alice->put("next", to_bytes("through B"));
  const auto took = std::chrono::steady_clock::now() - killed;
  REQUIRE_MESSAGE(next.has_value(), why(next));
  CHECK(took < operation_timeout);
  MESSAGE("first operation after the kill took "
          << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  REQUIRE(alice->attached_peer());
  CHECK(alice->attached_peer()->address == f.overlay.peers()[1].address);

  // None of those in flight hangs: each ends in success or a clear error.
  int succeeded = 0;
  for (auto& a : in_flight) {
    REQUIRE(a->ready(operation_timeout + 5s));
    auto r = a->get(0ms);
    if (r) {
      ++succeeded;
    } else {
      CHECK_FALSE(r.error().message.empty());
      MESSAGE("in flight at the kill: " << why(r));
    }
  }
  MESSAGE(succeeded << " of " << in_flight.size() << " operations in flight succeeded");

  // The load thread's calls, blocking across the kill, end too and go on succeeding through B.
  std::this_thread::sleep_for(500ms);
  const int ok_after_kill = load_ok;
  std::this_thread::sleep_for(500ms);
  stop_load = true;
  load.join();
  CHECK(ok_before_kill > 0);
  CHECK(load_ok > ok_after_kill);
  for (const auto& e : load_errors) MESSAGE("load across the kill: " << e);

  auto got = alice->get("next");
  REQUIRE_MESSAGE(got.has_value(), why(got));
  REQUIRE(got->size() == 1);
  CHECK(to_string(got->front().value) == "through B");
  auto pong = alice->ping();
  REQUIRE_MESSAGE(pong.has_value(), why(pong));
  CHECK(pong->responder_node_id == f.overlay.peers()[1].node_id);
}
