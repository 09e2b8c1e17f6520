#pragma once
// The client role (RFC 6940 4.2.1, second option): a node with one Node-ID that never joins. It
// holds one link to a peer of its bootstrap list (its home peer) and sends every request through
// it; it routes nothing for others, stores nothing, and is in no routing table. When the home
// link is lost or cannot be opened it moves to the next peer of the list, backing off after each
// whole round. Message transport plus connection table, no topology.

#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "p2psip/node/app_attach.hpp"
#include "p2psip/node/node_engine.hpp"

namespace p2psip::node {

struct client_config {
  transport_config transport;
  std::vector<protocol::ip_address_port> bootstrap;  ///< peers to attach to, in order
  wall_clock_source wall;                            ///< default: the system clock
};

class client_node final : public node_engine, private router {
 public:
  client_node(client_config cfg, message_signer& signer, random_source& rng);

  void start(time_point now) override;
  void on_link_up(link_id link, const protocol::node_id& remote, time_point now,
                  link_origin origin = link_origin::unknown) override;
  void on_link_down(link_id link, time_point now,
                    std::vector<protocol::bytes> undelivered = {}) override;
  void on_link_failed(const protocol::ip_address_port& address, time_point now,
                      std::string_view reason = {}) override;
  void on_message(link_id link, protocol::byte_view data, time_point now) override;
  void on_oversized_message(link_id link, protocol::byte_view header, std::uint32_t declared_length,
                            time_point now) override;
  void on_timer(time_point now) override;
  std::optional<time_point> next_deadline() const override;
  std::vector<action> take_actions() override { return actions_.take(); }
  void leave(time_point now) override;
  const connection_table& links() const override { return links_; }
  message_transport& transport() override { return transport_; }
  bool is_client() const override { return true; }

  /// Sends a request through the home peer; `done` runs once with its outcome. Errors:
  /// underlay_destination_unreachable without a home link (or a full pending table),
  /// invalid_message for a body that is not a request.
  protocol::result<std::uint64_t> send_request(std::vector<protocol::destination> destinations,
                                               const protocol::message_body& body, completion done,
                                               time_point now);
  app_attach_service& app_attach() override { return app_attach_; }
  config_update_service& config_updates() override { return config_updates_; }
  /// The link to the home peer, when up.
  std::optional<link_id> home_link() const noexcept { return home_; }
  const protocol::node_id& self() const noexcept { return transport_.config().self; }

 private:
  // router: a client routes nothing; its own requests go to the home peer.
  bool routes() const override { return false; }
  bool is_responsible(const protocol::node_id&) const override { return false; }
  std::optional<protocol::node_id> next_hop(const protocol::node_id&,
                                            const std::vector<protocol::node_id>&) const override {
    return std::nullopt;
  }
  std::optional<link_id> default_link() const override { return home_; }

  void attach_next(time_point now);
  void attach_failed(time_point now);

  client_config cfg_;
  action_queue actions_;
  connection_table links_;
  message_transport transport_;
  ping_service ping_;
  app_attach_service app_attach_;
  config_update_service config_updates_;
  std::optional<link_id> home_;
  bool attaching_ = false;
  bool left_ = false;
  std::size_t bootstrap_index_ = 0;
  /// Attempts failed in a row; after each whole round of the list the next attempt waits
  /// `backoff_` (200 ms doubling to 10 s) until `next_attempt_`.
  std::size_t failures_ = 0;
  duration backoff_{0};
  std::optional<time_point> next_attempt_;
};

}  // namespace p2psip::node
