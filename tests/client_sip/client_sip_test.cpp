// The SDK's SIP user agent through real peers: two clients attached to different peers register,
// resolve each other, exchange MESSAGEs and set up and tear down calls in both routing modes; in
// outbound-proxy mode a client whose peer is killed is reachable again through another peer.
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "p2psip/client/client.hpp"
#include "process_overlay.hpp"

namespace {

using namespace std::chrono_literals;
namespace cl = p2psip::client;

const std::string domain = "test.p2psip.example";

std::string aor(const std::string& name) {
  return "sip:" + name + "@" + domain;
}

/// An overlay of `n` real peers, each serving SIP (its AppAttach SIP listener comes with
/// --sip-listen).
struct sip_overlay {
  p2psip::test::process_overlay overlay{P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY};

  explicit sip_overlay(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      overlay.start_peer("p" + std::to_string(i), false, {"--sip-listen", "tls:127.0.0.1:0"});
    }
    if (!overlay.wait_ring(60s)) FAIL("the ring did not form");
  }

  /// A client for user `name` attached to the peers `peers` (indices, tried in order).
  std::unique_ptr<cl::client> client(const std::string& name, std::vector<std::size_t> peers,
                                     cl::sip_routing mode) {
    overlay.enroll(name);
    cl::client_options o;
    o.config_file = overlay.config_file().string();
    o.certificate_file = overlay.cert_of(name).string();
    o.key_file = overlay.key_of(name).string();
    for (auto i : peers) o.peers.push_back(overlay.peers()[i].address);
    o.sip_routing_mode = mode;
    o.operation_timeout = 20s;
    o.request_timeout = 5s;
    o.keepalive_interval = 2s;
    if (std::getenv("P2PSIP_TEST_CLIENT_LOG")) {
      o.log = [name](std::string_view line) { std::cerr << name << ": " << line << "\n"; };
    }
    auto c = cl::client::create(o);
    REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
    auto attached = (*c)->wait_attached(20s);
    REQUIRE_MESSAGE(attached.has_value(), (attached ? "" : attached.error().message));
    return std::move(*c);
  }
};

/// What a client's handler saw; answers INVITEs with `invite_status`.
struct inbox {
  std::mutex m;
  std::condition_variable cv;
  std::vector<cl::sip_request> got;
  int invite_status = 200;

  cl::sip_request_handler handler() {
    return [this](const cl::sip_request& r) {
      cl::sip_response answer;
      if (r.method == "INVITE") {
        answer.status = invite_status;
        if (invite_status < 300) answer.body = cl::to_bytes("v=0\r\no=answer\r\n");
      }
      {
        std::lock_guard lock(m);
        got.push_back(r);
      }
      cv.notify_all();
      return answer;
    };
  }

  /// The first request of `method` whose body is `body` (any body when empty) and of call
  /// `call_id` (any when empty), within `timeout`.
  std::optional<cl::sip_request> wait(const std::string& method, const std::string& body = {},
                                      const std::string& call_id = {},
                                      std::chrono::milliseconds timeout = 15s) {
    std::unique_lock lock(m);
    std::optional<cl::sip_request> found;
    cv.wait_for(lock, timeout, [&] {
      for (const auto& r : got) {
        if (r.method == method && (body.empty() || cl::to_string(r.body) == body) &&
            (call_id.empty() || r.call_id == call_id)) {
          found = r;
          return true;
        }
      }
      return false;
    });
    return found;
  }
};

std::string text_of(const cl::result<cl::sip_response>& r) {
  if (!r) return "error: " + r.error().message;
  return std::to_string(r->status) + " " + r->reason + (r->local ? " (local)" : "");
}

/// Alice at peer 0 and Bob at peer 2: register, resolve, MESSAGE both ways, a call each way.
void exchange(cl::sip_routing mode) {
  sip_overlay net(3);
  inbox alice_in, bob_in;  // before the clients: their handlers use them until the clients go
  auto alice = net.client("alice", {0}, mode);
  auto bob = net.client("bob", {2}, mode);
  alice->on_sip_request(alice_in.handler());
  bob->on_sip_request(bob_in.handler());
  REQUIRE_MESSAGE(alice->sip_register(aor("alice"), 600).has_value(), "alice registers");
  auto bob_reg = bob->sip_register(aor("bob"), 600);
  REQUIRE_MESSAGE(bob_reg.has_value(), (bob_reg ? "" : bob_reg.error().message));

  // Each one's registration is in the overlay, with its owner.
  auto found = alice->resolve(aor("bob"));
  REQUIRE(found.has_value());
  REQUIRE(found->size() == 1);
  CHECK(found->front().owner_node_id == bob->node_id());
  CHECK(found->front().owner_user == "bob@" + domain);
  const auto& route = found->front().contact.route;
  REQUIRE(!route.empty());
  if (mode == cl::sip_routing::direct) {
    CHECK(route.back() == bob->node_id());  // through Bob's peer to Bob
  } else {
    CHECK(route.back() == net.overlay.peers()[2].node_id);  // to Bob's peer, his proxy
  }

  // MESSAGE both ways.
  auto sent = alice->send_message(aor("bob"), cl::to_bytes("hello bob"));
  INFO("alice -> bob: " << text_of(sent));
  REQUIRE(sent.has_value());
  CHECK(sent->status == 200);
  CHECK(!sent->local);
  auto at_bob = bob_in.wait("MESSAGE", "hello bob");
  REQUIRE(at_bob.has_value());
  CHECK(at_bob->from == aor("alice"));
  CHECK(at_bob->content_type == "text/plain");
  auto back = bob->send_message(aor("alice"), cl::to_bytes("hello alice"));
  INFO("bob -> alice: " << text_of(back));
  REQUIRE(back.has_value());
  CHECK(back->status == 200);
  CHECK(alice_in.wait("MESSAGE", "hello alice").has_value());

  // A call from Alice, answered, and hung up by Alice.
  std::mutex pm;
  std::vector<int> progress;
  cl::call_options o;
  o.offer = cl::to_bytes("v=0\r\no=offer\r\n");
  o.progress = [&](const cl::sip_response& r) {
    std::lock_guard lock(pm);
    progress.push_back(r.status);
  };
  auto answered = alice->call(aor("bob"), o);
  INFO("call: " << text_of(answered));
  REQUIRE(answered.has_value());
  REQUIRE(answered->status == 200);
  CHECK(cl::to_string(answered->body) == "v=0\r\no=answer\r\n");
  CHECK(answered->content_type == "application/sdp");
  auto invite = bob_in.wait("INVITE");
  REQUIRE(invite.has_value());
  CHECK(cl::to_string(invite->body) == "v=0\r\no=offer\r\n");
  CHECK(alice->calls() == std::vector<std::string>{answered->call_id});
  // Progress runs through the dispatcher: it may come after call() returned.
  const auto until_progress = std::chrono::steady_clock::now() + 5s;
  bool rang = false;
  while (!rang && std::chrono::steady_clock::now() < until_progress) {
    {
      std::lock_guard lock(pm);
      rang = std::find(progress.begin(), progress.end(), 180) != progress.end();
    }
    if (!rang) std::this_thread::sleep_for(20ms);
  }
  CHECK(rang);
  // Bob sees the call as established too (his 200 went out).
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (bob->calls().empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  CHECK(bob->calls() == std::vector<std::string>{answered->call_id});
  REQUIRE(alice->hang_up(answered->call_id).has_value());
  auto bye = bob_in.wait("BYE");
  REQUIRE(bye.has_value());
  CHECK(bye->call_id == answered->call_id);
  CHECK(alice->calls().empty());
  const auto until_bye = std::chrono::steady_clock::now() + 10s;
  while (!bob->calls().empty() && std::chrono::steady_clock::now() < until_bye) {
    std::this_thread::sleep_for(20ms);
  }
  CHECK(bob->calls().empty());

  // A call from Bob, answered by Alice, hung up by Alice (the callee).
  auto second = bob->call(aor("alice"));
  INFO("call back: " << text_of(second));
  REQUIRE(second.has_value());
  REQUIRE(second->status == 200);
  REQUIRE(alice_in.wait("INVITE", {}, second->call_id).has_value());
  const auto until_up = std::chrono::steady_clock::now() + 10s;
  while (alice->calls().empty() && std::chrono::steady_clock::now() < until_up) {
    std::this_thread::sleep_for(20ms);
  }
  REQUIRE(alice->calls() == std::vector<std::string>{second->call_id});
  REQUIRE(alice->hang_up(second->call_id).has_value());
  CHECK(bob_in.wait("BYE", {}, second->call_id).has_value());

  // A rejected call, and a call cancelled while it rings (Alice never answers).
  alice_in.invite_status = 486;
  auto busy = bob->call(aor("alice"));
  REQUIRE(busy.has_value());
  CHECK(busy->status == 486);
  CHECK(bob->calls().empty());

  // Nobody registered: 404 from whoever looked.
  auto nobody = alice->send_message(aor("carol"), cl::to_bytes("anyone?"));
  INFO("carol: " << text_of(nobody));
  REQUIRE(nobody.has_value());
  CHECK((nobody->status == 404 || nobody->status == 480));

  // Unregistered: Bob is no longer found.
  REQUIRE(bob->sip_unregister().has_value());
  auto gone = alice->send_message(aor("bob"), cl::to_bytes("still there?"));
  INFO("after unregister: " << text_of(gone));
  REQUIRE(gone.has_value());
  CHECK(gone->status >= 400);
}

}  // namespace

TEST_CASE("client SIP: register, resolve, MESSAGE and calls between peers, direct routing") {
  exchange(cl::sip_routing::direct);
}

TEST_CASE("client SIP: register, resolve, MESSAGE and calls between peers, outbound proxy") {
  exchange(cl::sip_routing::outbound_proxy);
}

TEST_CASE("client SIP: bad input is refused with a clear error") {
  sip_overlay net(1);
  auto alice = net.client("alice", {0}, cl::sip_routing::direct);
  auto bad = alice->sip_register("not an aor", 60);
  REQUIRE(!bad.has_value());
  CHECK(bad.error().code == cl::errc::invalid_argument);
  auto zero = alice->sip_register(aor("alice"), 0);
  REQUIRE(!zero.has_value());
  CHECK(zero.error().code == cl::errc::invalid_argument);
  // Registering another user's AOR: the overlay refuses (USER-NODE-MATCH).
  auto other = alice->sip_register(aor("bob"), 60);
  REQUIRE(!other.has_value());
  CHECK(other.error().code == cl::errc::forbidden);
  auto no_call = alice->hang_up("no-such-call");
  REQUIRE(!no_call.has_value());
  CHECK(no_call.error().code == cl::errc::not_found);
  auto empty = alice->send_message("", cl::to_bytes("x"));
  REQUIRE(!empty.has_value());
  CHECK(empty.error().code == cl::errc::invalid_argument);

  // A client whose only peer refuses: sip_register fails at once (not at the operation timeout)
  // with no_peer, naming the address and the reason.
  cl::client_options o;
  o.config_file = net.overlay.config_file().string();
  o.certificate_file = net.overlay.cert_of("alice").string();
  o.key_file = net.overlay.key_of("alice").string();
  o.peers = {"127.0.0.1:1"};
  o.operation_timeout = 2s;
  auto lonely = cl::client::create(o);
  REQUIRE(lonely.has_value());
  const auto start = std::chrono::steady_clock::now();
  auto unattached = (*lonely)->sip_register(aor("alice"), 60);
  REQUIRE(!unattached.has_value());
  CHECK(unattached.error().code == cl::errc::no_peer);
  CHECK_MESSAGE(unattached.error().message.find("127.0.0.1:1: TCP connect failed: Connection "
                                                "refused") != std::string::npos,
                unattached.error().message);
  CHECK(std::chrono::steady_clock::now() - start < 1500ms);
  auto unsent = (*lonely)->send_message(aor("bob"), cl::to_bytes("x"));
  REQUIRE(!unsent.has_value());
  CHECK(unsent.error().code == cl::errc::no_peer);
}

namespace {

/// Alice's peer is killed (-9); she fails over and registers again through another peer: Bob
/// reaches her again, and the registration's route names the new peer.
void failover(cl::sip_routing mode) {
  sip_overlay net(4);
  // Alice attaches to peer 0, and to peer 1 when peer 0 is gone; Bob is at peer 3.
  inbox alice_in;
  auto alice = net.client("alice", {0, 1}, mode);
  auto bob = net.client("bob", {3}, mode);
  alice->on_sip_request(alice_in.handler());
  REQUIRE(alice->sip_register(aor("alice"), 600).has_value());
  REQUIRE(bob->sip_register(aor("bob"), 600).has_value());
  auto before = bob->send_message(aor("alice"), cl::to_bytes("before"));
  INFO("before: " << text_of(before));
  REQUIRE(before.has_value());
  REQUIRE(before->status == 200);

  // Carol has no connection to Alice yet: her requests find Alice through the registration.
  auto carol = net.client("carol", {2}, mode);
  net.overlay.kill_peer(0);
  const auto killed = std::chrono::steady_clock::now();
  // Reachable again once Alice has failed over to peer 1 and registered through it (REGISTER
  // on a new flow, her SipRegistration's route replaced).
  std::optional<double> reachable_after;
  int attempts = 0;
  std::string last;
  while (std::chrono::steady_clock::now() - killed < 60s) {
    ++attempts;
    auto r = carol->send_message(aor("alice"), cl::to_bytes("after " + std::to_string(attempts)));
    last = text_of(r);
    if (r && r->status == 200) {
      reachable_after =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
      break;
    }
    std::this_thread::sleep_for(200ms);
  }
  INFO("last answer: " << last << " after " << attempts << " attempts");
  REQUIRE(reachable_after.has_value());
  MESSAGE(std::string(mode == cl::sip_routing::direct ? "direct" : "outbound")
          << " failover: reachable again " << *reachable_after << " s after kill -9 (" << attempts
          << " MESSAGE attempts)");
  CHECK(*reachable_after < 30.0);
  const auto peer = alice->attached_peer();
  REQUIRE(peer.has_value());
  CHECK(peer->node_id == net.overlay.peers()[1].node_id);
  // Bob, whose connection or flow predates the failover, reaches her too.
  auto from_bob = bob->send_message(aor("alice"), cl::to_bytes("from bob"));
  REQUIRE(from_bob.has_value());
  CHECK(from_bob->status == 200);
  auto found = bob->resolve(aor("alice"));
  REQUIRE(found.has_value());
  REQUIRE(found->size() == 1);  // the same key: the route through peer 0 was replaced
  if (mode == cl::sip_routing::direct) {
    CHECK(found->front().contact.route ==
          std::vector<std::string>{peer->node_id, alice->node_id()});
  } else {
    CHECK(found->front().contact.route == std::vector<std::string>{peer->node_id});
  }
}

}  // namespace

TEST_CASE("client SIP: outbound proxy failover - kill -9 of the attached peer, reachable again") {
  failover(cl::sip_routing::outbound_proxy);
}

TEST_CASE("client SIP: direct routing failover - kill -9 of the attached peer, reachable again") {
  failover(cl::sip_routing::direct);
}
