// put_get: stores a value under a name with the C++ SDK, then reads back every writer's value.
//
//   put_get --config overlay.xml --cert alice.crt --key alice.key [--peer IP:PORT]... NAME VALUE
//
// Prints one line per value found and exits 0; on an error prints it and exits 1.
#include <chrono>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <p2psip/client/p2psip_client.h>
#include <p2psip/client/client.hpp>

namespace client = p2psip::client;

int main(int argc, char** argv) {
  client::client_options options;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--version") {  // the SDK's version: the one this program runs with
      std::cout << "put_get (p2psip) " << p2psip_version() << "\n";
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
  if (positional.size() != 2) {
    std::cerr << "usage: put_get --config FILE --cert FILE --key FILE [--peer IP:PORT]... NAME "
                 "VALUE\n";
    return 2;
  }
  const std::string& name = positional[0];
  const std::string& value = positional[1];

  // create() returns at once; the client attaches in the background.
  auto made = client::client::create(options);
  if (!made) {
    std::cerr << "cannot start the client: " << made.error().message << "\n";
    return 1;
  }
  auto& c = *made;
  auto peer = c->wait_attached(std::chrono::seconds(10));
  if (!peer) {
    std::cerr << peer.error().message << "\n";
    return 1;
  }
  std::cout << "attached to " << peer->node_id << " at " << peer->address << "\n";

  // Our entry under `name`, for one hour.
  if (auto put = c->put(name, client::to_bytes(value), 3600); !put) {
    std::cerr << "put: " << put.error().message << "\n";
    return 1;
  }
  std::cout << "put " << name << " = " << value << "\n";

  // Every writer's entry under `name` (ours included), signatures checked.
  auto got = c->get(name);
  if (!got) {
    std::cerr << "get: " << got.error().message << "\n";
    return 1;
  }
  for (const auto& v : *got) {
    std::cout << "got " << name << " = " << client::to_string(v.value) << " from " << v.owner_user
              << (v.owner_node_id == c->node_id() ? " (me)" : "") << "\n";
  }
  return 0;
}
