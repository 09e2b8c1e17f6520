#pragma once
// A small overlay of real p2psip-peer processes and helpers to make SDK clients attached to one
// of them, to wait for callback results with a bound, and to compute the ids the overlay uses.

#include <doctest/doctest.h>

#include <botan/hash.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "p2psip/client/client.hpp"
#include "process_overlay.hpp"

namespace p2psip::test {

// Kinds p2psip-admin writes into overlay.xml (config::standard_kinds()).
inline constexpr std::uint32_t sip_registration_kind = 1;      // DICTIONARY, USER-NODE-MATCH
inline constexpr std::uint32_t certificate_by_node_kind = 3;   // ARRAY, NODE-MATCH
inline constexpr std::uint32_t certificate_by_user_kind = 16;  // ARRAY, USER-MATCH, max-count 4
inline constexpr std::uint32_t generic_kind = client::client::generic_kind;  // DICTIONARY
inline constexpr std::uint32_t generic_max_size = 1024;
// The standard kinds have no single-value kind: the fixture adds TURN-SERVICE (RFC 6940 9:
// SINGLE, NODE-MULTIPLE: written at H(Node-ID || uint32 i), 1 <= i <= max-node-multiple) to
// overlay.xml before the peers start, and a kind of the configuration's own, which only the
// document defines (kind id 4000, SINGLE, USER-MATCH: written at the user name).
inline constexpr std::uint32_t single_kind = 2;
inline constexpr std::uint32_t private_kind = 4000;
inline constexpr std::uint32_t single_max_size = 64;
inline constexpr std::uint32_t single_max_node_multiple = 3;

inline process_overlay make_overlay() {
  return process_overlay(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
}

inline std::string overlay_name() {
  return "test.p2psip.example";
}
inline std::string user_of(const std::string& name) {
  return name + "@" + overlay_name();
}

/// Adds the single-value test kinds to the configuration document p2psip-admin init wrote.
inline void add_single_kind(const std::filesystem::path& config) {
  std::ifstream in(config);
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string end = "</required-kinds>";
  const auto at = doc.find(end);
  if (at == std::string::npos) throw std::runtime_error("no required-kinds in " + config.string());
  doc.insert(at,
             "  <kind-block>\n        <kind name=\"TURN-SERVICE\">\n"
             "          <data-model>SINGLE</data-model>\n"
             "          <access-control>NODE-MULTIPLE</access-control>\n"
             "          <max-count>1</max-count>\n"
             "          <max-size>" +
                 std::to_string(single_max_size) +
                 "</max-size>\n"
                 "          <max-node-multiple>" +
                 std::to_string(single_max_node_multiple) +
                 "</max-node-multiple>\n        </kind>\n      </kind-block>\n"
                 "      <kind-block>\n        <kind id=\"" +
                 std::to_string(private_kind) +
                 "\">\n"
                 "          <data-model>SINGLE</data-model>\n"
                 "          <access-control>USER-MATCH</access-control>\n"
                 "          <max-count>1</max-count>\n"
                 "          <max-size>256</max-size>\n"
                 "        </kind>\n      </kind-block>\n    ");
  std::ofstream(config, std::ios::trunc) << doc;
}

/// A loopback port nobody listens on (bound, then closed: connecting is refused at once).
inline std::string closed_port_address() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);     // NOLINT
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);  // NOLINT
  ::close(s);
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

/// A loopback port that accepts TCP (the kernel's backlog) and never speaks: a dial to it stays
/// in its TLS handshake until the handshake timeout. Closed with the object.
struct silent_listener {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  std::string address;
  silent_listener() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);  // NOLINT
    REQUIRE(::listen(fd, 16) == 0);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);  // NOLINT
    address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  ~silent_listener() { ::close(fd); }
  silent_listener(const silent_listener&) = delete;
  silent_listener& operator=(const silent_listener&) = delete;
};

inline std::string hex(const std::vector<std::uint8_t>& b) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (const auto x : b) {
    s += digits[x >> 4];
    s += digits[x & 0xF];
  }
  return s;
}

inline client::bytes from_hex(const std::string& s) {
  client::bytes out;
  for (std::size_t i = 0; i + 1 < s.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
  }
  return out;
}

/// The resource name NODE-MULTIPLE lets a node write at: its Node-ID and a 4-byte big-endian i.
inline std::string node_multiple_name(const std::string& node_hex, std::uint32_t i) {
  const auto id = from_hex(node_hex);
  std::string name(id.begin(), id.end());
  for (const int shift : {24, 16, 8, 0}) name += static_cast<char>((i >> shift) & 0xFF);
  return name;
}

/// The Resource-ID of a name in a CHORD-RELOAD overlay with 16-byte Node-IDs: SHA-1, truncated.
inline std::string resource_hex(const std::string& name) {
  auto h = Botan::HashFunction::create_or_throw("SHA-1");
  h->update(name);
  auto d = h->final_stdvec();
  d.resize(16);
  return hex(d);
}

/// The hash StatAns carries (RFC 6940 7.4.3.2): SHA-256 over the uint32 length and the value.
inline client::bytes stat_hash(const client::bytes& value) {
  auto h = Botan::HashFunction::create_or_throw("SHA-256");
  const auto n = static_cast<std::uint32_t>(value.size());
  const std::uint8_t prefix[4] = {static_cast<std::uint8_t>(n >> 24),
                                  static_cast<std::uint8_t>(n >> 16),
                                  static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  h->update(prefix, sizeof prefix);
  h->update(value.data(), value.size());
  return h->final_stdvec();
}

/// The message of a failed result, for REQUIRE_MESSAGE.
template <class R>
std::string why(const R& r) {
  return r ? std::string() : r.error().code.message() + ": " + r.error().message;
}

/// A callback whose result the test waits for with a bound (never forever).
template <class T>
class awaited {
 public:
  client::client::callback<T> callback() {
    return [p = promise_](client::result<T> r) { p->set_value(std::move(r)); };
  }
  /// The result; fails the test if the callback did not run within `timeout`.
  client::result<T> get(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    REQUIRE_MESSAGE(future_.wait_for(timeout) == std::future_status::ready,
                    "no callback within " << timeout.count() << " ms");
    return future_.get();
  }
  bool ready(std::chrono::milliseconds timeout) {
    return future_.wait_for(timeout) == std::future_status::ready;
  }

 private:
  std::shared_ptr<std::promise<client::result<T>>> promise_ =
      std::make_shared<std::promise<client::result<T>>>();
  std::future<client::result<T>> future_ = promise_->get_future();
};

struct overlay_fixture {
  process_overlay overlay{P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY};

  /// `peers` peers in a ring (0: only the CA and the configuration).
  explicit overlay_fixture(std::size_t peers = 3) {
    add_single_kind(overlay.config_file());
    // An edited document must be signed again (nodes refuse one whose signature fails).
    overlay.run_admin({"sign", "--config", overlay.config_file().string(), "--ca-dir",
                       (overlay.dir() / "ca").string()});
    if (peers > 0) overlay.start_ring(peers);
  }

  client::client_options options(const std::string& user, std::vector<std::string> peers) {
    overlay.enroll(user);
    client::client_options o;
    o.config_file = overlay.config_file().string();
    o.certificate_file = overlay.cert_of(user).string();
    o.key_file = overlay.key_of(user).string();
    o.peers = std::move(peers);
    o.operation_timeout = std::chrono::seconds(20);
    o.request_timeout = std::chrono::seconds(5);
    return o;
  }

  /// Options for `user` attached to peer `peer`.
  client::client_options options(const std::string& user, std::size_t peer) {
    return options(user, std::vector<std::string>{overlay.peers().at(peer).address});
  }

  /// A client made with `o` (waits for the attachment).
  static std::unique_ptr<client::client> attach(client::client_options o) {
    auto c = client::client::create(std::move(o));
    REQUIRE_MESSAGE(c.has_value(), why(c));
    auto attached = (*c)->wait_attached(std::chrono::seconds(10));
    REQUIRE_MESSAGE(attached.has_value(), why(attached));
    return std::move(*c);
  }

  /// A client of `user` attached to peer `peer` (waits for the attachment).
  std::unique_ptr<client::client> attach(const std::string& user, std::size_t peer) {
    return attach(options(user, peer));
  }
};

}  // namespace p2psip::test
