#pragma once
// A raw authenticated link to a peer process, outside the SDK: what a hostile, broken or foreign
// node can send, and what it gets back.

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include "p2psip/config/overlay_config.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "p2psip/node/node_setup.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/message.hpp"
#include "p2psip/transport/link.hpp"
#include "process_overlay.hpp"

namespace p2psip::test {

namespace pr = p2psip::protocol;
using namespace std::chrono_literals;

/// A raw authenticated link to a peer, outside the SDK: what a hostile or broken node can send.
struct raw_link {
  asio::io_context io;
  p2psip::node::node_setup setup;
  std::shared_ptr<p2psip::transport::link> link;

  /// `limits`: the link's own (default: the overlay's), e.g. to send what a peer must refuse.
  /// `inbox`: received messages the link holds for us before it stops reading (and acking).
  raw_link(test::process_overlay& o, const std::string& user, std::size_t peer,
           std::optional<pr::limits> limits = std::nullopt, std::size_t inbox = 64)
      : setup(load(o, user)) {
    const auto address = o.peers().at(peer).address;
    const auto colon = address.rfind(':');
    const asio::ip::tcp::endpoint remote(
        asio::ip::make_address(address.substr(0, colon)),
        static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
    p2psip::transport::link_config cfg;
    cfg.limits = limits.value_or(p2psip::config::limits_of(setup.config));
    cfg.max_received_messages = inbox;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto c = co_await p2psip::transport::connect(remote, setup.tls, cfg);
          if (c) link = *c;
        },
        asio::detached);
    // Until the link is up (its reader keeps the io_context busy: run_for would wait it out).
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (!link && std::chrono::steady_clock::now() < until) {
      io.run_for(20ms);
      io.restart();
    }
    REQUIRE_MESSAGE(link, "no link to " << address);
  }
  static p2psip::node::node_setup load(test::process_overlay& o, const std::string& user) {
    o.enroll(user);
    auto s = p2psip::node::load_node_setup(o.config_file(), o.cert_of(user), o.key_of(user));
    REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error().message));
    return std::move(*s);
  }
  /// Runs the io_context until the link closes or `limit` passes; true if it closed.
  bool closes_within(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      io.run_for(50ms);
      io.restart();
      if (link->state() == p2psip::transport::link_state::closed) return true;
    }
    return false;
  }
  /// A request from us: our overlay and the document's configuration sequence, signed.
  pr::message request(std::vector<pr::destination> dest, const pr::message_body& body,
                      std::uint64_t txid) const {
    pr::message m;
    m.header.overlay = pr::overlay_hash(setup.config.instance_name);
    m.header.configuration_sequence = setup.config.sequence;
    m.header.ttl = 100;
    m.header.transaction_id = txid;
    m.header.destination_list = std::move(dest);
    m.contents.code = pr::code_of(body);
    m.contents.body = *pr::encode_body(body);
    return m;
  }
  /// Signs `m` as this node and encodes it.
  pr::bytes signed_bytes(pr::message m) const {
    REQUIRE(p2psip::crypto::sign_message(m, setup.creds.signing));
    auto enc = pr::encode_message(m, p2psip::config::limits_of(setup.config));
    REQUIRE(enc);
    return *enc;
  }
  /// The next message the peer sends us within `limit`, decoded (nullopt: none, or closed).
  std::optional<pr::message> receive_within(std::chrono::milliseconds limit) {
    std::optional<pr::message> got;
    bool done = false;
    asio::co_spawn(
        io,
        [&, l = link]() -> asio::awaitable<void> {
          auto r = co_await l->receive();
          if (r && !r->oversized()) {
            const auto lim = p2psip::config::limits_of(setup.config);
            if (auto m = pr::decode_message(r->data, lim)) got = std::move(*m);
          }
          done = true;
        },
        asio::detached);
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done && std::chrono::steady_clock::now() < until) {
      io.run_for(20ms);
      io.restart();
    }
    return got;
  }
  /// The body of `m` decoded with the overlay's kinds.
  pr::message_body body_of(const pr::message& m) const {
    pr::body_context ctx;
    ctx.model_of = p2psip::config::kind_model_lookup_of(setup.config);
    auto b = pr::decode_body(m.contents.code, m.contents.body,
                             p2psip::config::limits_of(setup.config), ctx);
    REQUIRE(b);
    return std::move(*b);
  }

  /// A signed Ping to the wildcard Node-ID (the peer answers it itself).
  pr::bytes ping(std::uint64_t txid) const {
    return signed_bytes(
        request({pr::to_destination(pr::node_id::wildcard(setup.config.node_id_length))},
                pr::ping_req{}, txid));
  }
};

}  // namespace p2psip::test
