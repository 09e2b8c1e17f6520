#pragma once
// A 3-peer overlay of real p2psip-peer processes and helpers to make SDK clients attached to one
// of them.

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "p2psip/client/client.hpp"
#include "process_overlay.hpp"

namespace p2psip::test {

inline process_overlay make_overlay() {
  return process_overlay(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
}

struct overlay_fixture {
  process_overlay overlay{P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY};

  explicit overlay_fixture(std::size_t peers = 3) { overlay.start_ring(peers); }

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

  /// A client of `user` attached to peer `peer` (waits for the attachment).
  std::unique_ptr<client::client> attach(const std::string& user, std::size_t peer) {
    auto c = client::client::create(options(user, {overlay.peers().at(peer).address}));
    REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
    auto attached = (*c)->wait_attached(std::chrono::seconds(10));
    REQUIRE_MESSAGE(attached.has_value(), (attached ? "" : attached.error().message));
    return std::move(*c);
  }
};

}  // namespace p2psip::test
