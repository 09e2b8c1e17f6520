// sip_chat: two users chat over SIP MESSAGE (RFC 3428) through the SDK's user agent. Each client
// attaches to its own peer, makes itself reachable under its AOR (sip_register) and answers
// incoming MESSAGEs; then each sends one to the other. Exits 0 only if both messages arrived.
//
//   sip_chat --config overlay.xml --routing direct|outbound-proxy
//            --cert alice.crt --key alice.key --peer IP:PORT    (the first user)
//            --cert bob.crt --key bob.key --peer IP:PORT        (the second user)
//            ALICE-AOR BOB-AOR
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <p2psip/client/p2psip_client.h>
#include <p2psip/client/client.hpp>

namespace client = p2psip::client;
using namespace std::chrono_literals;

/// One side of the chat: its client, and the messages it received.
struct user {
  std::string aor;
  client::client_options options;
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> received;
  std::unique_ptr<client::client> c;  // last: destroyed first, before what its handler uses
};

int fail(const std::string& what, const client::error& e) {
  std::cerr << what << ": " << e.message << "\n";
  return 1;
}

int main(int argc, char** argv) {
  user users[2];
  std::string config;
  auto routing = client::sip_routing::direct;
  std::size_t cert = 0, key = 0, peer = 0;  // how many of each were given
  std::vector<std::string> aors;
  bool bad = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--version") {  // the SDK's version: the one this program runs with
      std::cout << "sip_chat (p2psip) " << p2psip_version() << "\n";
      return 0;
    }
    const bool has_value = i + 1 < argc;
    if (arg == "--config" && has_value) {
      config = argv[++i];
    } else if (arg == "--routing" && has_value) {
      const std::string mode = argv[++i];
      bad |= mode != "direct" && mode != "outbound-proxy";
      if (mode == "outbound-proxy") routing = client::sip_routing::outbound_proxy;
    } else if (arg == "--cert" && has_value && cert < 2) {
      users[cert++].options.certificate_file = argv[++i];
    } else if (arg == "--key" && has_value && key < 2) {
      users[key++].options.key_file = argv[++i];
    } else if (arg == "--peer" && has_value && peer < 2) {
      users[peer++].options.peers = {argv[++i]};
    } else {
      aors.push_back(arg);
    }
  }
  if (bad || config.empty() || cert != 2 || key != 2 || peer != 2 || aors.size() != 2) {
    std::cerr << "usage: sip_chat --config FILE --routing direct|outbound-proxy\n"
                 "         --cert FILE --key FILE --peer IP:PORT   (first user)\n"
                 "         --cert FILE --key FILE --peer IP:PORT   (second user)\n"
                 "         FIRST-AOR SECOND-AOR\n";
    return 2;
  }

  // Start both, with a handler that prints and keeps what arrives and answers 200.
  for (std::size_t i = 0; i < 2; ++i) {
    auto& u = users[i];
    u.aor = aors[i];
    u.options.config_file = config;
    u.options.sip_routing_mode = routing;
    auto made = client::client::create(u.options);
    if (!made) return fail("cannot start the client of " + u.aor, made.error());
    u.c = std::move(*made);
    u.c->on_sip_request([&u](const client::sip_request& r) {
      client::sip_response answer;  // 200 OK
      if (r.method != "MESSAGE") return answer;
      const auto text = client::to_string(r.body);
      std::cout << u.aor << " received from " << r.from << ": " << text << std::endl;
      std::lock_guard lock(u.m);
      u.received.push_back(text);
      u.cv.notify_all();
      return answer;
    });
    if (auto attached = u.c->wait_attached(10s); !attached) {
      return fail(u.aor + ": attach", attached.error());
    }
    if (auto r = u.c->sip_register(u.aor, 600); !r)
      return fail(u.aor + ": sip_register", r.error());
    std::cout << u.aor << " is reachable ("
              << (routing == client::sip_routing::direct ? "direct" : "outbound-proxy") << ")\n";
  }

  // Each sends one message to the other and prints the final response.
  for (std::size_t i = 0; i < 2; ++i) {
    auto& from = users[i];
    auto& to = users[1 - i];
    const std::string text = "hello " + to.aor + ", this is " + from.aor;
    std::cout << from.aor << " sends to " << to.aor << ": " << text << std::endl;
    auto r = from.c->send_message(to.aor, client::to_bytes(text));
    if (!r) return fail(from.aor + ": send_message", r.error());
    std::cout << from.aor << " got " << r->status << " " << r->reason << "\n";
  }

  // Both must have arrived (their handlers may still be running: wait a little).
  bool all = true;
  for (auto& u : users) {
    std::unique_lock lock(u.m);
    if (!u.cv.wait_for(lock, 10s, [&u] { return !u.received.empty(); })) {
      std::cout << u.aor << " received nothing\n";
      all = false;
    }
  }
  for (auto& u : users) {
    if (auto r = u.c->sip_unregister(); !r) return fail(u.aor + ": sip_unregister", r.error());
  }
  std::cout << (all ? "both messages arrived\n" : "a message was lost\n");
  return all ? 0 : 1;
}
