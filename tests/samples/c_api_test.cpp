// The C API (p2psip_client.h) against a real 3-peer overlay: every function, its error codes,
// the callback forms, an application dispatcher, and destroying a client from its own callback.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <p2psip/client/p2psip_client.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "process_overlay.hpp"

namespace {

constexpr uint32_t sip_registration = 1;
/// A SipRegistration of type uri (RFC 7904): type, length, then the URI with its length. The
/// storing peer refuses SIP-REGISTRATION values that are not SipRegistrations.
const std::vector<uint8_t> uri_registration{1,   0,   11,  0,   9,   's', 'i',
                                            'p', ':', 'a', '@', 'b', '.', 'c'};
const std::string domain = "@test.p2psip.example";

/// One overlay for the whole run (peers take a few seconds to form a ring), serving SIP for the
/// SDK's user agent.
p2psip::test::process_overlay& overlay() {
  // Destroyed at exit, which stops the peers.
  static p2psip::test::process_overlay o(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  static const bool started = [] {
    for (int i = 0; i < 3; ++i) {
      o.start_peer("p" + std::to_string(i), false, {"--sip-listen", "tls:127.0.0.1:0"});
    }
    if (!o.wait_ring(std::chrono::seconds(60))) throw std::runtime_error("the ring did not form");
    return true;
  }();
  (void)started;
  return o;
}

/// Options for `user` attached to peer `peer`; the strings live in the returned holder.
struct options_holder {
  std::string config, cert, key, peer;
  const char* peers[1] = {nullptr};
  p2psip_client_options o{};
};
std::unique_ptr<options_holder> options_for(const std::string& user, std::size_t peer) {
  auto& ov = overlay();
  ov.enroll(user);
  auto h = std::make_unique<options_holder>();
  h->config = ov.config_file().string();
  h->cert = ov.cert_of(user).string();
  h->key = ov.key_of(user).string();
  h->peer = ov.peers().at(peer).address;
  p2psip_client_options_init(&h->o);
  h->o.config_file = h->config.c_str();
  h->o.certificate_file = h->cert.c_str();
  h->o.key_file = h->key.c_str();
  h->peers[0] = h->peer.c_str();
  h->o.peers = h->peers;
  h->o.peer_count = 1;
  h->o.operation_timeout_ms = 20000;
  h->o.request_timeout_ms = 5000;
  return h;
}

struct client_deleter {
  void operator()(p2psip_client* c) const { p2psip_client_destroy(c); }
};
using client_ptr = std::unique_ptr<p2psip_client, client_deleter>;

/// A dispatcher with a thread of its own, for a client whose callbacks block: the default
/// callback thread is every client's, so there they would hold up the others' callbacks.
struct own_callback_thread {
  std::mutex m;
  std::condition_variable cv;
  std::deque<p2psip_task*> tasks;
  bool stopping = false;
  std::thread thread{[this] { run(); }};

  static void dispatch(void* user, p2psip_task* t) {
    auto* self = static_cast<own_callback_thread*>(user);
    {
      std::lock_guard lock(self->m);
      self->tasks.push_back(t);
    }
    self->cv.notify_all();
  }
  void run() {
    for (;;) {
      std::unique_lock lock(m);
      cv.wait(lock, [this] { return stopping || !tasks.empty(); });
      if (tasks.empty()) return;
      auto* t = tasks.front();
      tasks.pop_front();
      lock.unlock();
      p2psip_task_run(t);
    }
  }
  /// Runs what is queued, then ends: destroy the clients that use it first.
  ~own_callback_thread() {
    {
      std::lock_guard lock(m);
      stopping = true;
    }
    cv.notify_all();
    thread.join();
  }
};

client_ptr attach(const std::string& user, std::size_t peer,
                  own_callback_thread* callbacks = nullptr) {
  auto h = options_for(user, peer);
  if (callbacks) {
    h->o.dispatch = &own_callback_thread::dispatch;
    h->o.dispatch_user = callbacks;
  }
  p2psip_client* c = nullptr;
  p2psip_error err{};
  REQUIRE_MESSAGE(p2psip_client_create(&h->o, &c, &err) == P2PSIP_OK, err.message);
  REQUIRE(c != nullptr);
  p2psip_peer_info info{};
  REQUIRE_MESSAGE(p2psip_client_wait_attached(c, 10000, &info, &err) == P2PSIP_OK, err.message);
  CHECK(std::string(info.address) == overlay().peers().at(peer).address);
  CHECK(std::strlen(info.node_id) > 0);
  return client_ptr(c);
}

std::vector<uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

std::vector<uint8_t> hex_bytes(const std::string& s) {
  std::vector<uint8_t> out;
  for (std::size_t i = 0; i + 1 < s.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
  }
  return out;
}

/// Waits for a callback: `done()` once, from any thread.
struct waiter {
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;
  p2psip_errc code = P2PSIP_ERR_INTERNAL;
  std::string message;
  std::thread::id thread;
  void done(const p2psip_error* err) {
    std::lock_guard lock(m);
    code = err->code;
    message = err->message;
    thread = std::this_thread::get_id();
    finished = true;
    cv.notify_all();
  }
  bool wait(std::chrono::seconds s = std::chrono::seconds(30)) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, s, [this] { return finished; });
  }
};

}  // namespace

TEST_CASE("c api: create reports errors as codes and messages") {
  p2psip_client* c = reinterpret_cast<p2psip_client*>(0x1);
  p2psip_error err{};
  CHECK(p2psip_client_create(nullptr, &c, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(c == nullptr);
  CHECK(err.code == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(std::strlen(err.message) > 0);

  auto h = options_for("alice", 0);
  CHECK(p2psip_client_create(&h->o, nullptr, &err) == P2PSIP_ERR_INVALID_ARGUMENT);

  auto bad_peer = options_for("alice", 0);
  const char* nonsense[] = {"not-an-address"};
  bad_peer->o.peers = nonsense;
  CHECK(p2psip_client_create(&bad_peer->o, &c, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(std::string(err.message).find("not-an-address") != std::string::npos);

  auto missing = options_for("alice", 0);
  missing->o.config_file = "/nonexistent/overlay.xml";
  CHECK(p2psip_client_create(&missing->o, &c, &err) == P2PSIP_ERR_BAD_CONFIGURATION);
  CHECK(c == nullptr);

  auto zero = options_for("alice", 0);
  zero->o.operation_timeout_ms = 0;
  CHECK(p2psip_client_create(&zero->o, &c, &err) == P2PSIP_ERR_INVALID_ARGUMENT);

  // Without an error struct the code still comes back.
  CHECK(p2psip_client_create(&missing->o, &c, nullptr) == P2PSIP_ERR_BAD_CONFIGURATION);
  CHECK(std::string(p2psip_errc_message(P2PSIP_ERR_TIMEOUT)).size() > 0);
  CHECK(std::string(p2psip_errc_message(static_cast<p2psip_errc>(77))) == "unknown error code");
  p2psip_client_destroy(nullptr);
}

TEST_CASE("c api: no peer to attach to") {
  auto h = options_for("alice", 0);
  const char* dead[] = {"127.0.0.1:1"};
  h->o.peers = dead;
  h->o.operation_timeout_ms = 1000;
  p2psip_client* c = nullptr;
  p2psip_error err{};
  REQUIRE(p2psip_client_create(&h->o, &c, &err) == P2PSIP_OK);
  CHECK(p2psip_client_wait_attached(c, 300, nullptr, &err) == P2PSIP_ERR_NO_PEER);
  // The same words as the C++ API and the CLI: the address and the system's reason.
  const std::string refused =
      "no peer reachable: 127.0.0.1:1: TCP connect failed: Connection refused";
  CHECK(std::string(err.message) == refused);
  CHECK(p2psip_client_attached_peer(c, nullptr) == 0);
  const auto put = p2psip_client_put(c, "x", nullptr, 0, 60, &err);
  CHECK(put == P2PSIP_ERR_NO_PEER);
  CHECK(std::string(err.message) == refused);
  p2psip_client_destroy(c);
}

TEST_CASE("c api: put, get and remove across peers") {
  auto alice = attach("alice", 0);
  auto bob = attach("bob", 1);
  char alice_id[P2PSIP_ID_HEX_SIZE];
  p2psip_client_node_id(alice.get(), alice_id);
  p2psip_error err{};
  const auto v = bytes_of("hello from alice");
  REQUIRE_MESSAGE(
      p2psip_client_put(alice.get(), "c-greeting", v.data(), v.size(), 600, &err) == P2PSIP_OK,
      err.message);
  CHECK(err.code == P2PSIP_OK);
  CHECK(err.message[0] == '\0');

  p2psip_owned_value* values = nullptr;
  size_t count = 0;
  REQUIRE_MESSAGE(p2psip_client_get(bob.get(), "c-greeting", &values, &count, &err) == P2PSIP_OK,
                  err.message);
  REQUIRE(count == 1);
  CHECK(std::string(reinterpret_cast<const char*>(values[0].value), values[0].value_size) ==
        "hello from alice");
  CHECK(std::string(values[0].owner_node_id) == alice_id);
  CHECK(std::string(values[0].owner_user) == "alice" + domain);
  CHECK(values[0].lifetime <= 600);  // the peer sends what remains
  CHECK(values[0].lifetime >= 590);
  CHECK(values[0].storage_time > 0);
  p2psip_values_free(values);

  // An empty value, then nothing stored under another name (not an error).
  REQUIRE(p2psip_client_put(bob.get(), "c-empty", nullptr, 0, 600, &err) == P2PSIP_OK);
  REQUIRE(p2psip_client_get(alice.get(), "c-empty", &values, &count, &err) == P2PSIP_OK);
  REQUIRE(count == 1);
  CHECK(values[0].value_size == 0);
  p2psip_values_free(values);
  REQUIRE(p2psip_client_get(alice.get(), "c-nothing-here", &values, &count, &err) == P2PSIP_OK);
  CHECK(count == 0);
  CHECK(values == nullptr);

  REQUIRE_MESSAGE(p2psip_client_remove(alice.get(), "c-greeting", &err) == P2PSIP_OK, err.message);
  REQUIRE(p2psip_client_get(bob.get(), "c-greeting", &values, &count, &err) == P2PSIP_OK);
  CHECK(count == 0);
  p2psip_values_free(values);

  // Bad arguments: no request is sent.
  CHECK(p2psip_client_put(alice.get(), nullptr, v.data(), v.size(), 60, &err) ==
        P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_put(alice.get(), "x", nullptr, 3, 60, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_get(nullptr, "x", &values, &count, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_get(alice.get(), "x", nullptr, &count, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  const std::vector<uint8_t> big(5000, 'x');
  CHECK(p2psip_client_put(alice.get(), "x", big.data(), big.size(), 60, &err) ==
        P2PSIP_ERR_TOO_LARGE);
}

TEST_CASE("c api: typed dictionary store, fetch, stat, find, remove_items, ping") {
  auto alice = attach("alice", 2);
  char id[P2PSIP_ID_HEX_SIZE];
  p2psip_client_node_id(alice.get(), id);
  const auto key = hex_bytes(id);
  const auto& value = uri_registration;
  p2psip_data_model model = P2PSIP_SINGLE_VALUE;
  REQUIRE(p2psip_client_model_of(alice.get(), sip_registration, &model) == 1);
  CHECK(model == P2PSIP_DICTIONARY);
  CHECK(p2psip_client_model_of(alice.get(), 4242, &model) == 0);

  const std::string aor = "alice" + domain;
  p2psip_item item{};
  item.key = key.data();
  item.key_size = key.size();
  item.value = value.data();
  item.value_size = value.size();
  p2psip_store_options so{300, 0};
  uint64_t generation = 0;
  p2psip_error err{};
  REQUIRE_MESSAGE(p2psip_client_store(alice.get(), aor.c_str(), sip_registration, &item, 1, &so,
                                      &generation, &err) == P2PSIP_OK,
                  err.message);
  CHECK(generation > 0);

  p2psip_kind_data* data = nullptr;
  REQUIRE_MESSAGE(p2psip_client_fetch(alice.get(), aor.c_str(), sip_registration, nullptr, &data,
                                      &err) == P2PSIP_OK,
                  err.message);
  REQUIRE(data != nullptr);
  CHECK(data->kind == sip_registration);
  CHECK(data->model == P2PSIP_DICTIONARY);
  CHECK(data->generation == generation);
  REQUIRE(data->count == 1);
  CHECK(data->items[0].exists == 1);
  CHECK(std::vector<uint8_t>(data->items[0].key, data->items[0].key + data->items[0].key_size) ==
        key);
  CHECK(std::vector<uint8_t>(data->items[0].value,
                             data->items[0].value + data->items[0].value_size) == value);
  CHECK(data->items[0].lifetime <= 300);  // what remains
  CHECK(data->items[0].lifetime >= 290);
  CHECK(std::string(data->items[0].signer_node_id) == id);
  CHECK(std::string(data->items[0].signer_user) == aor);
  p2psip_kind_data_free(data);

  // By key: ours, and one nobody stored.
  const std::vector<uint8_t> other(key.size(), 0x42);
  p2psip_key keys[] = {{key.data(), key.size()}, {other.data(), other.size()}};
  p2psip_selection which{nullptr, 0, keys, 1};
  REQUIRE(p2psip_client_fetch(alice.get(), aor.c_str(), sip_registration, &which, &data, &err) ==
          P2PSIP_OK);
  CHECK(data->count == 1);
  p2psip_kind_data_free(data);

  REQUIRE(p2psip_client_stat(alice.get(), aor.c_str(), sip_registration, nullptr, &data, &err) ==
          P2PSIP_OK);
  REQUIRE(data->count == 1);
  CHECK(data->items[0].value_length == value.size());
  CHECK(data->items[0].hash_size == 32);
  CHECK(data->items[0].value == nullptr);
  p2psip_kind_data_free(data);

  p2psip_find_result found{};
  REQUIRE_MESSAGE(
      p2psip_client_find(alice.get(), aor.c_str(), sip_registration, &found, &err) == P2PSIP_OK,
      err.message);
  CHECK(found.found == 1);
  CHECK(std::strlen(found.resource_id) > 0);

  p2psip_ping_info ping{};
  REQUIRE_MESSAGE(p2psip_client_ping(alice.get(), nullptr, &ping, &err) == P2PSIP_OK, err.message);
  CHECK(std::string(ping.responder_node_id) == overlay().peers().at(2).node_id);
  REQUIRE(p2psip_client_ping(alice.get(), aor.c_str(), &ping, &err) == P2PSIP_OK);
  CHECK(std::strlen(ping.responder_node_id) > 0);

  // Stale generation: refused.
  so.generation = generation + 100;
  CHECK(p2psip_client_store(alice.get(), aor.c_str(), sip_registration, &item, 1, &so, nullptr,
                            &err) == P2PSIP_ERR_GENERATION_CONFLICT);
  // Another user's AOR: refused by USER-NODE-MATCH.
  CHECK(p2psip_client_store(alice.get(), ("bob" + domain).c_str(), sip_registration, &item, 1,
                            nullptr, nullptr, &err) == P2PSIP_ERR_FORBIDDEN);
  CHECK(p2psip_client_store(alice.get(), aor.c_str(), 4242, &item, 1, nullptr, nullptr, &err) ==
        P2PSIP_ERR_UNKNOWN_KIND);
  CHECK(p2psip_client_fetch(alice.get(), aor.c_str(), 4242, nullptr, &data, &err) ==
        P2PSIP_ERR_UNKNOWN_KIND);
  CHECK(data == nullptr);
  CHECK(p2psip_client_store(alice.get(), aor.c_str(), sip_registration, nullptr, 1, nullptr,
                            nullptr, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_store(alice.get(), aor.c_str(), sip_registration, &item, 0, nullptr, nullptr,
                            &err) == P2PSIP_ERR_INVALID_ARGUMENT);

  uint64_t after = 0;
  REQUIRE(p2psip_client_remove_items(alice.get(), aor.c_str(), sip_registration, &item, 1, nullptr,
                                     &after, &err) == P2PSIP_OK);
  CHECK(after > generation);
  REQUIRE(p2psip_client_fetch(alice.get(), aor.c_str(), sip_registration, nullptr, &data, &err) ==
          P2PSIP_OK);
  for (size_t i = 0; i < data->count; ++i) CHECK(data->items[i].exists == 0);
  p2psip_kind_data_free(data);
}

namespace {

struct async_state : waiter {
  std::vector<std::string> values;
  uint64_t generation = 0;
  size_t items = 0;
  int found = -1;
  std::string responder;
};

void on_done(void* user, const p2psip_error* err) {
  static_cast<async_state*>(user)->done(err);
}
void on_values(void* user, const p2psip_error* err, const p2psip_owned_value* v, size_t n) {
  auto* s = static_cast<async_state*>(user);
  for (size_t i = 0; i < n; ++i) {
    s->values.emplace_back(reinterpret_cast<const char*>(v[i].value), v[i].value_size);
  }
  s->done(err);
}
void on_generation(void* user, const p2psip_error* err, uint64_t g) {
  static_cast<async_state*>(user)->generation = g;
  static_cast<async_state*>(user)->done(err);
}
void on_kind_data(void* user, const p2psip_error* err, const p2psip_kind_data* d) {
  static_cast<async_state*>(user)->items = d ? d->count : 0;
  static_cast<async_state*>(user)->done(err);
}
void on_find(void* user, const p2psip_error* err, const p2psip_find_result* r) {
  static_cast<async_state*>(user)->found = r ? r->found : -1;
  static_cast<async_state*>(user)->done(err);
}
void on_ping(void* user, const p2psip_error* err, const p2psip_ping_info* p) {
  if (p) static_cast<async_state*>(user)->responder = p->responder_node_id;
  static_cast<async_state*>(user)->done(err);
}

}  // namespace

TEST_CASE("c api: every callback form runs once, on the client's callback thread") {
  auto alice = attach("alice", 1);
  char id[P2PSIP_ID_HEX_SIZE];
  p2psip_client_node_id(alice.get(), id);
  const auto key = hex_bytes(id);
  const auto v = bytes_of("async value");
  const std::string aor = "alice" + domain;
  p2psip_item item{};
  item.key = key.data();
  item.key_size = key.size();
  item.value = v.data();
  item.value_size = v.size();

  auto run = [](auto start) {
    auto s = std::make_unique<async_state>();
    REQUIRE(start(s.get()) == P2PSIP_OK);
    REQUIRE(s->wait());
    CHECK_MESSAGE(s->code == P2PSIP_OK, s->message);
    CHECK(s->thread != std::this_thread::get_id());
    return s;
  };
  auto* c = alice.get();
  run([&](async_state* s) {
    return p2psip_client_put_async(c, "c-async", v.data(), v.size(), 60, on_done, s);
  });
  auto got =
      run([&](async_state* s) { return p2psip_client_get_async(c, "c-async", on_values, s); });
  CHECK(got->values == std::vector<std::string>{"async value"});
  run([&](async_state* s) { return p2psip_client_remove_async(c, "c-async", on_done, s); });
  item.value = uri_registration.data();
  item.value_size = uri_registration.size();
  auto stored = run([&](async_state* s) {
    return p2psip_client_store_async(c, aor.c_str(), sip_registration, &item, 1, nullptr,
                                     on_generation, s);
  });
  CHECK(stored->generation > 0);
  auto fetched = run([&](async_state* s) {
    return p2psip_client_fetch_async(c, aor.c_str(), sip_registration, nullptr, on_kind_data, s);
  });
  CHECK(fetched->items == 1);
  auto stat = run([&](async_state* s) {
    return p2psip_client_stat_async(c, aor.c_str(), sip_registration, nullptr, on_kind_data, s);
  });
  CHECK(stat->items == 1);
  auto found = run([&](async_state* s) {
    return p2psip_client_find_async(c, aor.c_str(), sip_registration, on_find, s);
  });
  CHECK(found->found == 1);
  auto ping = run([&](async_state* s) { return p2psip_client_ping_async(c, nullptr, on_ping, s); });
  CHECK(ping->responder == overlay().peers().at(1).node_id);
  auto removed = run([&](async_state* s) {
    return p2psip_client_remove_items_async(c, aor.c_str(), sip_registration, &item, 1, nullptr,
                                            on_generation, s);
  });
  CHECK(removed->generation > stored->generation);

  // Refused at once: the callback never runs.
  CHECK(p2psip_client_put_async(c, "x", v.data(), v.size(), 60, nullptr, nullptr) ==
        P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_get_async(c, nullptr, on_values, nullptr) == P2PSIP_ERR_INVALID_ARGUMENT);
  // An error through the callback.
  auto unknown = std::make_unique<async_state>();
  REQUIRE(p2psip_client_fetch_async(c, aor.c_str(), 4242, nullptr, on_kind_data, unknown.get()) ==
          P2PSIP_OK);
  REQUIRE(unknown->wait());
  CHECK(unknown->code == P2PSIP_ERR_UNKNOWN_KIND);
}

namespace {

/// An application dispatcher: tasks queued, run by the test's thread.
struct task_queue {
  std::mutex m;
  std::condition_variable cv;
  std::deque<p2psip_task*> tasks;
  static void dispatch(void* user, p2psip_task* t) {
    auto* q = static_cast<task_queue*>(user);
    {
      std::lock_guard lock(q->m);
      q->tasks.push_back(t);
    }
    q->cv.notify_all();
  }
  /// Runs tasks until `until()` holds (or 30 s pass).
  template <class F>
  bool run_until(F until) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!until()) {
      std::unique_lock lock(m);
      if (!cv.wait_until(lock, deadline, [this] { return !tasks.empty(); })) return false;
      auto* t = tasks.front();
      tasks.pop_front();
      lock.unlock();
      p2psip_task_run(t);
    }
    return true;
  }
};

}  // namespace

TEST_CASE("c api: callbacks through the application's dispatcher") {
  task_queue queue;
  auto h = options_for("carol", 0);
  h->o.dispatch = &task_queue::dispatch;
  h->o.dispatch_user = &queue;
  p2psip_client* c = nullptr;
  p2psip_error err{};
  REQUIRE(p2psip_client_create(&h->o, &c, &err) == P2PSIP_OK);
  client_ptr owned(c);
  REQUIRE(p2psip_client_wait_attached(c, 10000, nullptr, &err) == P2PSIP_OK);
  async_state s;
  const auto v = bytes_of("dispatched");
  REQUIRE(p2psip_client_put_async(c, "c-dispatch", v.data(), v.size(), 60, on_done, &s) ==
          P2PSIP_OK);
  REQUIRE(queue.run_until([&] { return s.finished; }));
  CHECK(s.code == P2PSIP_OK);
  CHECK(s.thread == std::this_thread::get_id());
  // A blocking call works while the application's thread is not inside a callback.
  p2psip_owned_value* values = nullptr;
  size_t count = 0;
  REQUIRE(p2psip_client_get(c, "c-dispatch", &values, &count, &err) == P2PSIP_OK);
  CHECK(count == 1);
  p2psip_values_free(values);
}

namespace {

struct destroy_state : waiter {
  p2psip_client* client = nullptr;
};
void destroy_in_callback(void* user, const p2psip_error* err, const p2psip_owned_value*, size_t) {
  auto* s = static_cast<destroy_state*>(user);
  p2psip_client_destroy(s->client);
  s->done(err);
}

}  // namespace

TEST_CASE("c api: destroying the client from its own callback") {
  auto h = options_for("dave", 2);
  p2psip_client* c = nullptr;
  p2psip_error err{};
  REQUIRE(p2psip_client_create(&h->o, &c, &err) == P2PSIP_OK);
  REQUIRE(p2psip_client_wait_attached(c, 10000, nullptr, &err) == P2PSIP_OK);
  destroy_state s;
  s.client = c;
  REQUIRE(p2psip_client_get_async(c, "c-anything", destroy_in_callback, &s) == P2PSIP_OK);
  REQUIRE(s.wait());
  CHECK(s.code == P2PSIP_OK);
  // Give the detached callback thread time to finish (ASan reports any use after free).
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
}

TEST_CASE("c api: a stopped client fails operations with STOPPED") {
  auto alice = attach("alice", 0);
  p2psip_client_stop(alice.get());
  p2psip_client_stop(alice.get());
  p2psip_error err{};
  CHECK(p2psip_client_put(alice.get(), "x", nullptr, 0, 60, &err) == P2PSIP_ERR_STOPPED);
  CHECK(p2psip_client_wait_attached(alice.get(), 100, nullptr, &err) == P2PSIP_ERR_STOPPED);
  async_state s;
  REQUIRE(p2psip_client_put_async(alice.get(), "x", nullptr, 0, 60, on_done, &s) == P2PSIP_OK);
  REQUIRE(s.wait());
  CHECK(s.code == P2PSIP_ERR_STOPPED);
}

TEST_CASE("c api: register an AOR, resolve it and a forward to it, unregister") {
  auto alice = attach("alice", 0);
  auto bob = attach("bob", 1);
  char alice_id[P2PSIP_ID_HEX_SIZE];
  p2psip_client_node_id(alice.get(), alice_id);
  const std::string alice_aor = "sip:alice" + domain;
  p2psip_error err{};
  uint64_t generation = 0;
  REQUIRE_MESSAGE(p2psip_client_register_aor(alice.get(), alice_aor.c_str(), nullptr, 600,
                                             &generation, &err) == P2PSIP_OK,
                  err.message);
  CHECK(generation > 0);
  REQUIRE_MESSAGE(p2psip_client_register_aor(bob.get(), ("bob" + domain).c_str(), alice_aor.c_str(),
                                             600, nullptr, &err) == P2PSIP_OK,
                  err.message);
  p2psip_sip_binding* found = nullptr;
  size_t count = 0;
  REQUIRE_MESSAGE(p2psip_client_resolve(alice.get(), ("sip:bob" + domain).c_str(), &found, &count,
                                        &err) == P2PSIP_OK,
                  err.message);
  REQUIRE(count == 1);
  REQUIRE(found != nullptr);
  CHECK(std::string(found[0].aor) == "alice" + domain);
  CHECK(std::string(found[0].owner_node_id) == alice_id);
  CHECK(std::string(found[0].uri).empty());
  REQUIRE(found[0].route_count == 2);
  CHECK(std::string(found[0].route[1]) == alice_id);
  CHECK(found[0].lifetime > 500);
  p2psip_sip_bindings_free(found);
  // Not under bob's AOR.
  CHECK(p2psip_client_register_aor(alice.get(), ("bob" + domain).c_str(), nullptr, 60, nullptr,
                                   &err) == P2PSIP_ERR_FORBIDDEN);
  REQUIRE(p2psip_client_unregister_aor(alice.get(), alice_aor.c_str(), nullptr, &err) == P2PSIP_OK);
  REQUIRE(p2psip_client_resolve(bob.get(), alice_aor.c_str(), &found, &count, &err) == P2PSIP_OK);
  CHECK(count == 0);
  CHECK(found == nullptr);
  CHECK(p2psip_client_resolve(nullptr, alice_aor.c_str(), &found, &count, &err) ==
        P2PSIP_ERR_INVALID_ARGUMENT);
}

TEST_CASE("c api: the library's version") {
  const std::string v = p2psip_version();
  REQUIRE(!v.empty());
  // "MAJOR.MINOR.PATCH", and the same as one number.
  unsigned major = 0, minor = 0, patch = 0;
  REQUIRE(std::sscanf(v.c_str(), "%u.%u.%u", &major, &minor, &patch) == 3);
  CHECK(p2psip_version_number() == major * 10000 + minor * 100 + patch);
  CHECK(std::string(p2psip_version()) == v);  // static: the same text every time
}

namespace {
/// Stores any int in the enum field, as a C caller can (C++ forbids values outside the enum).
void set_routing(p2psip_client_options& o, int value) {
  static_assert(sizeof o.sip_routing == sizeof value);
  std::memcpy(&o.sip_routing, &value, sizeof value);
}
}  // namespace

TEST_CASE("c api: options struct_size: older callers work, smaller sizes are refused") {
  p2psip_client_options init;
  std::memset(&init, 0xAB, sizeof init);
  p2psip_client_options_init(&init);
  CHECK(init.struct_size == sizeof(p2psip_client_options));
  CHECK(init.sip_routing == P2PSIP_SIP_ROUTING_DIRECT);
  CHECK(init.sip_listen == nullptr);
  static_assert(P2PSIP_CLIENT_OPTIONS_SIZE_V1 < sizeof(p2psip_client_options));
  static_assert(P2PSIP_CLIENT_OPTIONS_SIZE_V1 <= offsetof(p2psip_client_options, sip_routing));

  p2psip_client* c = reinterpret_cast<p2psip_client*>(0x1);
  p2psip_error err{};
  for (const std::size_t size :
       {std::size_t{0}, std::size_t{8}, P2PSIP_CLIENT_OPTIONS_SIZE_V1 - 1}) {
    auto h = options_for("alice", 0);
    h->o.struct_size = size;
    CHECK(p2psip_client_create(&h->o, &c, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
    CHECK(c == nullptr);
    CHECK(std::string(err.message).find("struct_size") != std::string::npos);
  }

  // A caller built before the SIP fields: a block of exactly the first version's size (reading
  // past it would be a heap overflow under ASan); the SIP fields get their defaults.
  {
    auto h = options_for("alice", 0);
    h->o.struct_size = P2PSIP_CLIENT_OPTIONS_SIZE_V1;
    std::unique_ptr<unsigned char[]> old(new unsigned char[P2PSIP_CLIENT_OPTIONS_SIZE_V1]);
    std::memcpy(old.get(), &h->o, P2PSIP_CLIENT_OPTIONS_SIZE_V1);
    REQUIRE_MESSAGE(p2psip_client_create(reinterpret_cast<const p2psip_client_options*>(old.get()),
                                         &c, &err) == P2PSIP_OK,
                    err.message);
    client_ptr owned(c);
    CHECK(p2psip_client_wait_attached(c, 10000, nullptr, &err) == P2PSIP_OK);
  }
  // Fields beyond struct_size are not read: a bad sip_routing there does not matter...
  {
    auto h = options_for("alice", 0);
    h->o.struct_size = P2PSIP_CLIENT_OPTIONS_SIZE_V1;
    set_routing(h->o, 77);
    REQUIRE_MESSAGE(p2psip_client_create(&h->o, &c, &err) == P2PSIP_OK, err.message);
    p2psip_client_destroy(c);
  }
  // ...but inside it, it is refused.
  {
    auto h = options_for("alice", 0);
    set_routing(h->o, 77);
    CHECK(p2psip_client_create(&h->o, &c, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
    CHECK(std::string(err.message).find("sip_routing") != std::string::npos);
  }
  // A newer caller's larger struct: the fields this library knows are read, the rest ignored.
  {
    auto h = options_for("alice", 0);
    h->o.sip_routing = P2PSIP_SIP_ROUTING_OUTBOUND_PROXY;
    const std::size_t bigger = sizeof(p2psip_client_options) + 32;
    std::unique_ptr<unsigned char[]> newer(new unsigned char[bigger]());
    h->o.struct_size = bigger;
    std::memcpy(newer.get(), &h->o, sizeof h->o);
    REQUIRE_MESSAGE(
        p2psip_client_create(reinterpret_cast<const p2psip_client_options*>(newer.get()), &c,
                             &err) == P2PSIP_OK,
        err.message);
    p2psip_client_destroy(c);
  }
}

TEST_CASE("c api: the SIP functions refuse NULL and malformed arguments") {
  p2psip_error err{};
  const char* aor = "sip:alice@test.p2psip.example";
  p2psip_sip_response* response = reinterpret_cast<p2psip_sip_response*>(0x1);
  // Without a client.
  CHECK(p2psip_client_sip_register(nullptr, aor, 60, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(err.code == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(std::strlen(err.message) > 0);
  CHECK(p2psip_client_sip_unregister(nullptr, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_send_message(nullptr, aor, nullptr, 0, nullptr, &response, &err) ==
        P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(response == nullptr);
  response = reinterpret_cast<p2psip_sip_response*>(0x1);
  CHECK(p2psip_client_call(nullptr, aor, nullptr, &response, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(response == nullptr);
  CHECK(p2psip_client_hang_up(nullptr, "x", &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_on_sip_request(nullptr, nullptr, nullptr) == P2PSIP_ERR_INVALID_ARGUMENT);
  p2psip_sip_response_free(nullptr);
  p2psip_call_options_init(nullptr);

  // With one: NULL names, outputs, bodies and call options of the wrong size.
  auto alice = attach("alice", 0);
  auto* c = alice.get();
  CHECK(p2psip_client_sip_register(c, nullptr, 60, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_send_message(c, nullptr, nullptr, 0, nullptr, &response, &err) ==
        P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_send_message(c, aor, nullptr, 0, nullptr, nullptr, &err) ==
        P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_send_message(c, aor, nullptr, 3, nullptr, &response, &err) ==
        P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(std::string(err.message).find("body") != std::string::npos);
  CHECK(p2psip_client_call(c, nullptr, nullptr, &response, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_call(c, aor, nullptr, nullptr, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  p2psip_call_options o;
  std::memset(&o, 0xAB, sizeof o);
  p2psip_call_options_init(&o);
  CHECK(o.struct_size == sizeof o);
  CHECK(o.offer == nullptr);
  CHECK(o.call_id == nullptr);
  CHECK((o.progress == nullptr));
  o.struct_size = 0;
  CHECK(p2psip_client_call(c, aor, &o, &response, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(std::string(err.message).find("struct_size") != std::string::npos);
  p2psip_call_options_init(&o);
  o.offer_size = 10;
  CHECK(p2psip_client_call(c, aor, &o, &response, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(std::string(err.message).find("offer") != std::string::npos);
  CHECK(p2psip_client_hang_up(c, nullptr, &err) == P2PSIP_ERR_INVALID_ARGUMENT);
  // The callback forms: never a callback when they refuse.
  const auto never = [](void*, const p2psip_error*, const p2psip_sip_response*) { FAIL("ran"); };
  const auto never_done = [](void*, const p2psip_error*) { FAIL("ran"); };
  CHECK(p2psip_client_send_message_async(nullptr, aor, nullptr, 0, nullptr, never, nullptr) ==
        P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_send_message_async(c, aor, nullptr, 0, nullptr, nullptr, nullptr) ==
        P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_send_message_async(c, aor, nullptr, 1, nullptr, never, nullptr) ==
        P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_call_async(c, nullptr, nullptr, never, nullptr) ==
        P2PSIP_ERR_INVALID_ARGUMENT);
  o.struct_size = 1;
  CHECK(p2psip_client_call_async(c, aor, &o, never, nullptr) == P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_sip_register_async(c, nullptr, 60, never_done, nullptr) ==
        P2PSIP_ERR_INVALID_ARGUMENT);
  CHECK(p2psip_client_sip_unregister_async(c, nullptr, nullptr) == P2PSIP_ERR_INVALID_ARGUMENT);
  // Clearing the handler is allowed.
  CHECK(p2psip_client_on_sip_request(c, nullptr, nullptr) == P2PSIP_OK);
}

namespace {

/// What bob's request callback saw, and how it answers.
struct inbox {
  std::mutex m;
  std::condition_variable cv;
  struct seen {
    std::string method, from, to, call_id, content_type, body;
  };
  std::vector<seen> requests;
  int invite_status = 200;
  bool hold_invites = false;  // keep INVITEs ringing until `release`
  bool release = false;
  static void on_request(void* user, const p2psip_sip_request* r, p2psip_sip_answer* answer) {
    auto* self = static_cast<inbox*>(user);
    CHECK(answer->struct_size == sizeof *answer);
    CHECK(answer->status == 200);
    std::unique_lock lock(self->m);
    std::string body;
    if (r->body) body.assign(reinterpret_cast<const char*>(r->body), r->body_size);
    self->requests.push_back({r->method, r->from, r->to, r->call_id, r->content_type, body});
    const std::string method = r->method;
    if (method == "MESSAGE") {
      // Strings that die with this frame: the SDK copies them when we return.
      static const char reply[] = "pong";
      answer->content_type = "text/plain";
      answer->body = reinterpret_cast<const uint8_t*>(reply);
      answer->body_size = 4;
    } else if (method == "INVITE") {
      answer->status = self->invite_status;
      if (self->hold_invites) {
        self->cv.notify_all();
        self->cv.wait_for(lock, std::chrono::seconds(15), [self] { return self->release; });
      }
    }
    self->cv.notify_all();
  }
  bool wait_for(const std::string& method) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, std::chrono::seconds(20), [&] {
      for (const auto& r : requests) {
        if (r.method == method) return true;
      }
      return false;
    });
  }
};

struct progress_log {
  std::mutex m;
  std::condition_variable cv;
  std::vector<int> statuses;
  std::string call_id;
  static void on_progress(void* user, const p2psip_sip_response* r) {
    auto* self = static_cast<progress_log*>(user);
    std::lock_guard lock(self->m);
    self->statuses.push_back(r->status);
    self->call_id = r->call_id;
    self->cv.notify_all();
  }
  /// Whether `status` was reported within 5 s: progress runs through the dispatcher, and may
  /// come after the blocking call returned.
  bool saw(int status) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, std::chrono::seconds(5), [&] {
      return std::find(statuses.begin(), statuses.end(), status) != statuses.end();
    });
  }
};

}  // namespace

TEST_CASE("c api: MESSAGE and a call between two clients (direct routing)") {
  auto alice = attach("alice", 0);
  // Bob's handler below holds an INVITE while alice's progress callback must run.
  own_callback_thread bob_callbacks;
  auto bob = attach("bob", 2, &bob_callbacks);
  const std::string alice_aor = "sip:alice" + domain;
  const std::string bob_aor = "sip:bob" + domain;
  p2psip_error err{};
  inbox box;
  REQUIRE(p2psip_client_on_sip_request(bob.get(), &inbox::on_request, &box) == P2PSIP_OK);
  REQUIRE_MESSAGE(p2psip_client_sip_register(bob.get(), bob_aor.c_str(), 600, &err) == P2PSIP_OK,
                  err.message);

  // MESSAGE: bob's callback sees it and answers 200 with a body.
  p2psip_sip_response* response = nullptr;
  const auto text = bytes_of("hello bob");
  REQUIRE_MESSAGE(p2psip_client_send_message(alice.get(), bob_aor.c_str(), text.data(), text.size(),
                                             nullptr, &response, &err) == P2PSIP_OK,
                  err.message);
  REQUIRE(response != nullptr);
  CHECK(response->status == 200);
  CHECK(response->local == 0);
  CHECK(std::string(reinterpret_cast<const char*>(response->body), response->body_size) == "pong");
  CHECK(std::string(response->content_type) == "text/plain");
  p2psip_sip_response_free(response);
  REQUIRE(box.wait_for("MESSAGE"));
  {
    std::lock_guard lock(box.m);
    const auto& r = box.requests.front();
    CHECK(r.body == "hello bob");
    CHECK(r.content_type == "text/plain");
    CHECK(r.from.find("alice" + domain) != std::string::npos);
    CHECK(r.to.find("bob" + domain) != std::string::npos);
  }

  // The callback form: the response comes to the callback, valid while it runs.
  struct message_state : waiter {
    int status = 0;
  } async;
  REQUIRE(p2psip_client_send_message_async(
              alice.get(), bob_aor.c_str(), text.data(), text.size(), "text/plain",
              [](void* user, const p2psip_error* e, const p2psip_sip_response* r) {
                auto* st = static_cast<message_state*>(user);
                st->status = r ? r->status : -1;
                st->done(e);
              },
              &async) == P2PSIP_OK);
  REQUIRE(async.wait());
  CHECK(async.code == P2PSIP_OK);
  CHECK(async.status == 200);

  // A call: 180 through the progress callback, 200, then alice hangs up and bob sees the BYE.
  progress_log progress;
  p2psip_call_options o;
  p2psip_call_options_init(&o);
  const std::string call_id = "c-api-call-1@test";
  o.call_id = call_id.c_str();
  o.progress = &progress_log::on_progress;
  o.progress_user = &progress;
  REQUIRE_MESSAGE(
      p2psip_client_call(alice.get(), bob_aor.c_str(), &o, &response, &err) == P2PSIP_OK,
      err.message);
  CHECK(response->status == 200);
  CHECK(std::string(response->call_id) == call_id);
  p2psip_sip_response_free(response);
  CHECK(progress.saw(180));
  {
    std::lock_guard lock(progress.m);
    CHECK(progress.call_id == call_id);
  }
  REQUIRE_MESSAGE(p2psip_client_hang_up(alice.get(), call_id.c_str(), &err) == P2PSIP_OK,
                  err.message);
  CHECK(box.wait_for("BYE"));
  CHECK(p2psip_client_hang_up(alice.get(), call_id.c_str(), &err) == P2PSIP_ERR_NOT_FOUND);

  // A rejected call: the final response is bob's 486, returned as P2PSIP_OK.
  {
    std::lock_guard lock(box.m);
    box.invite_status = 486;
  }
  REQUIRE(p2psip_client_call(alice.get(), bob_aor.c_str(), nullptr, &response, &err) == P2PSIP_OK);
  CHECK(response->status == 486);
  p2psip_sip_response_free(response);

  // A call hung up while it rings (bob's callback holds the INVITE): CANCEL, then 487.
  {
    std::lock_guard lock(box.m);
    box.invite_status = 200;
    box.hold_invites = true;
  }
  progress_log ringing;
  p2psip_call_options_init(&o);
  const std::string ringing_id = "c-api-call-2@test";
  o.call_id = ringing_id.c_str();
  o.progress = &progress_log::on_progress;
  o.progress_user = &ringing;
  struct call_state : waiter {
    int status = 0;
  } pending;
  REQUIRE(p2psip_client_call_async(
              alice.get(), bob_aor.c_str(), &o,
              [](void* user, const p2psip_error* e, const p2psip_sip_response* r) {
                auto* st = static_cast<call_state*>(user);
                st->status = r ? r->status : -1;
                st->done(e);
              },
              &pending) == P2PSIP_OK);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    {
      std::lock_guard lock(ringing.m);
      if (!ringing.statuses.empty()) break;
    }
    REQUIRE(std::chrono::steady_clock::now() < until);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  REQUIRE_MESSAGE(p2psip_client_hang_up(alice.get(), ringing_id.c_str(), &err) == P2PSIP_OK,
                  err.message);
  REQUIRE(pending.wait());
  CHECK(pending.code == P2PSIP_OK);
  CHECK(pending.status == 487);
  {
    std::lock_guard lock(box.m);
    box.release = true;
  }
  box.cv.notify_all();
  CHECK(box.wait_for("CANCEL"));

  // Nobody registered under an AOR: the SDK's own 404.
  REQUIRE(p2psip_client_send_message(alice.get(), ("sip:nobody" + domain).c_str(), text.data(),
                                     text.size(), "text/plain", &response, &err) == P2PSIP_OK);
  CHECK(response->status == 404);
  CHECK(response->local == 1);
  p2psip_sip_response_free(response);

  REQUIRE_MESSAGE(p2psip_client_sip_unregister(bob.get(), &err) == P2PSIP_OK, err.message);
  CHECK(p2psip_client_on_sip_request(bob.get(), nullptr, nullptr) == P2PSIP_OK);
}
