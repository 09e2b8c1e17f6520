// sip_register: the SIP usage's registrations (RFC 7904) through the SDK. Registers this client
// under its AOR (a route through its attached peer to it, so that others reach it over its
// link), resolves an AOR (following forwards), prints every binding, and unregisters.
//
//   sip_register --config overlay.xml --cert alice.crt --key alice.key [--peer IP:PORT]...
//                AOR [RESOLVE-AOR]
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include <p2psip/client/p2psip_client.h>
#include <p2psip/client/client.hpp>

namespace client = p2psip::client;

int fail(const char* what, const client::error& e) {
  std::cerr << what << ": " << e.message << "\n";
  return 1;
}

int main(int argc, char** argv) {
  client::client_options options;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--version") {  // the SDK's version: the one this program runs with
      std::cout << "sip_register (p2psip) " << p2psip_version() << "\n";
      return 0;
    }
    const bool has_value = i + 1 < argc;
    if (arg == "--config" && has_value) {
      options.config_file = argv[++i];
    } else if (arg == "--cert" && has_value) {
      options.certificate_file = argv[++i];
    } else if (arg == "--key" && has_value) {
      options.key_file = argv[++i];
    } else if (arg == "--peer" && has_value) {
      options.peers.emplace_back(argv[++i]);
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.empty() || positional.size() > 2) {
    std::cerr << "usage: sip_register --config FILE --cert FILE --key FILE [--peer IP:PORT]... "
                 "AOR [RESOLVE-AOR]\n";
    return 2;
  }
  const auto& aor = positional[0];
  const auto& lookup = positional.size() == 2 ? positional[1] : aor;

  auto made = client::client::create(options);
  if (!made) return fail("cannot start the client", made.error());
  auto& c = *made;
  auto peer = c->wait_attached(std::chrono::seconds(10));
  if (!peer) return fail("attach", peer.error());

  // This device: a route through our peer to us, for ten minutes.
  auto generation = c->register_aor(aor, {}, 600);
  if (!generation) return fail("register", generation.error());
  std::cout << "registered " << aor << " via peer " << peer->node_id << "\n";

  auto bindings = c->resolve(lookup);
  if (!bindings) return fail("resolve", bindings.error());
  std::cout << lookup << ": " << bindings->size() << " binding(s)\n";
  for (const auto& b : *bindings) {
    std::cout << "  " << b.aor << " by " << b.owner_user << ": ";
    if (!b.contact.uri.empty()) {
      std::cout << "uri " << b.contact.uri;
    } else {
      std::cout << "route";
      for (const auto& hop : b.contact.route) std::cout << " " << hop;
    }
    std::cout << (b.owner_node_id == c->node_id() ? " (me)" : "") << "\n";
  }

  if (auto removed = c->unregister_aor(aor); !removed) return fail("unregister", removed.error());
  auto after = c->resolve(aor);
  if (!after) return fail("resolve", after.error());
  std::cout << "unregistered; " << after->size() << " binding(s) left under " << aor << "\n";
  return 0;
}
