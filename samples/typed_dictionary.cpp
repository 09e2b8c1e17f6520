// typed_dictionary: typed data of a DICTIONARY kind, SIP-REGISTRATION (kind 1, RFC 7904), which
// every overlay made by p2psip-admin carries. Its Resource-ID is the hash of the user name
// (the AOR "alice@overlay.example", as in the certificate) and each of the user's devices owns
// the entry whose key is its Node-ID (the USER-NODE-MATCH policy). The sample registers this
// device, fetches all the AOR's entries, fetches its own by key, stats it, then removes it.
//
//   typed_dictionary --config overlay.xml --cert alice.crt --key alice.key --user AOR
//                    [--peer IP:PORT]... CONTACT-URI
#include <chrono>
#include <cstdint>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <p2psip/client/p2psip_client.h>
#include <p2psip/client/client.hpp>

namespace client = p2psip::client;
constexpr std::uint32_t sip_registration = 1;

std::string hex(const client::bytes& b) {
  std::ostringstream out;
  for (const auto byte : b) out << std::hex << std::setw(2) << std::setfill('0') << unsigned{byte};
  return out.str();
}

client::bytes from_hex(const std::string& s) {
  client::bytes out;
  for (std::size_t i = 0; i + 1 < s.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// SipRegistration (RFC 7904 section 3) of type sip_registration_uri (1):
//   uint8 type; uint16 length; opaque uri<0..2^16-1>
client::bytes registration_uri(const std::string& uri) {
  const auto n = static_cast<std::uint16_t>(uri.size());
  const auto length = static_cast<std::uint16_t>(n + 2);
  client::bytes out{1, static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length),
                    static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  out.insert(out.end(), uri.begin(), uri.end());
  return out;
}

std::string uri_of(const client::bytes& v) {
  if (v.size() < 5 || v[0] != 1) return "(not a URI registration)";
  return std::string(v.begin() + 5, v.end());
}

int fail(const char* what, const client::error& e) {
  std::cerr << what << ": " << e.message << "\n";
  return 1;
}

int main(int argc, char** argv) {
  client::client_options options;
  std::string aor;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--version") {  // the SDK's version: the one this program runs with
      std::cout << "typed_dictionary (p2psip) " << p2psip_version() << "\n";
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
    } else if (arg == "--user" && has_value) {
      aor = argv[++i];
    } else {
      positional.push_back(arg);
    }
  }
  if (positional.size() != 1 || aor.empty()) {
    std::cerr << "usage: typed_dictionary --config FILE --cert FILE --key FILE --user AOR "
                 "[--peer IP:PORT]... CONTACT-URI\n";
    return 2;
  }

  auto made = client::client::create(options);
  if (!made) return fail("cannot start the client", made.error());
  auto& c = *made;
  if (auto peer = c->wait_attached(std::chrono::seconds(10)); !peer) {
    return fail("attach", peer.error());
  }
  if (c->model_of(sip_registration) != client::data_model::dictionary) {
    std::cerr << "this overlay has no SIP-REGISTRATION dictionary kind\n";
    return 1;
  }

  // Our device's entry: key = our Node-ID, value = a SipRegistration.
  client::item mine;
  mine.key = from_hex(c->node_id());
  mine.value = registration_uri(positional[0]);
  auto generation = c->store(aor, sip_registration, {mine}, {.lifetime = 600, .generation = 0});
  if (!generation) return fail("store", generation.error());
  std::cout << "stored " << aor << " generation " << *generation << "\n";

  // All entries of the dictionary (no keys selected: every key).
  auto all = c->fetch(aor, sip_registration, client::selection::all());
  if (!all) return fail("fetch", all.error());
  std::cout << "fetched " << all->items.size() << " entries, generation " << all->generation
            << "\n";
  for (const auto& it : all->items) {
    std::cout << "entry " << hex(it.key) << " -> " << uri_of(it.value) << " signed by "
              << it.signer_user << "\n";
  }

  // Just our key.
  auto one = c->fetch(aor, sip_registration, client::selection::keys({mine.key}));
  if (!one) return fail("fetch by key", one.error());
  std::cout << "by key: " << one->items.size() << " entry\n";

  // Metadata only: the value's length and hash.
  auto meta = c->stat(aor, sip_registration);
  if (!meta) return fail("stat", meta.error());
  for (const auto& it : meta->items) {
    std::cout << "stat " << hex(it.key) << " length " << it.value_length << " hash "
              << hex(it.hash).substr(0, 16) << "...\n";
  }

  // Unregister: a signed tombstone replaces our entry.
  auto removed = c->remove_items(aor, sip_registration, {mine});
  if (!removed) return fail("remove", removed.error());
  auto after = c->fetch(aor, sip_registration, client::selection::keys({mine.key}));
  if (!after) return fail("fetch after remove", after.error());
  std::size_t live = 0;
  for (const auto& it : after->items) live += it.exists ? 1 : 0;
  std::cout << "removed; live entries for this device: " << live << "\n";
  return live == 0 ? 0 : 1;
}
