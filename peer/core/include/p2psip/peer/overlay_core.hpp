#pragma once
// A peer's overlay node, put together from RFC 6940's layers (section 1.2): the connection table
// and message transport of the node layer (p2psip::node, shared with clients), the CHORD-RELOAD
// topology plugin (chord_topology), data movement (data_movement) and the usages on top: the
// storage usage (storage_usage), Ping, Probe and AppAttach. A new usage registers its message
// codes with transport() and its AppAttach applications with app_attach(); nothing below changes.
//
// Bytes, link events and `now` go in; actions (send, close, open, log) and the next deadline come
// out. No I/O, no clock reads, no threads: the runtime and the deterministic simulator drive the
// same class.

#include <memory>
#include <optional>
#include <vector>

#include "p2psip/node/app_attach.hpp"
#include "p2psip/node/node_engine.hpp"
#include "p2psip/peer/chord_topology.hpp"
#include "p2psip/peer/core_config.hpp"
#include "p2psip/peer/data_movement.hpp"
#include "p2psip/peer/routing_table.hpp"
#include "p2psip/peer/services.hpp"
#include "p2psip/peer/storage_usage.hpp"

namespace p2psip::peer {

class overlay_core final : public node::node_engine {
 public:
  /// `storage` may be null (a peer that stores nothing answers Store/Fetch with errors).
  overlay_core(core_config cfg, message_signer& signer, storage_service* storage,
               random_source& rng);
  ~overlay_core() override;

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
  /// Graceful shutdown: data handed to the successor, Leave to the neighbors (section 10.9).
  void leave(time_point now) override;
  const node::connection_table& links() const override { return links_; }
  node::message_transport& transport() override { return transport_; }
  bool is_client() const override { return false; }
  bool accepting_client_requests() const override;
  /// Replica and hand-over Stores waiting in data movement's outbox.
  std::size_t outbox_size() const noexcept;

  /// Sends a request of this peer's own (a usage's); `done` runs once with its outcome. Errors:
  /// in_progress before the peer joined, underlay_destination_unreachable without a route or
  /// room, invalid_message for a body that is not a request.
  protocol::result<std::uint64_t> send_request(std::vector<protocol::destination> destinations,
                                               const protocol::message_body& body,
                                               node::completion done, time_point now);
  node::app_attach_service& app_attach() override { return app_attach_; }
  node::config_update_service& config_updates() override { return config_updates_; }

  const protocol::node_id& self() const noexcept { return cfg_.self; }
  bool joined() const noexcept { return topology_.joined(); }
  const routing_table& routes() const noexcept { return topology_.routes_table(); }
  const std::map<link_id, connection>& connections() const noexcept { return links_.rows(); }
  std::optional<link_id> link_to(const protocol::node_id& node) const {
    return links_.link_to(node);
  }
  /// Counters of every layer, gathered.
  core_stats stats() const;
  const core_config& config() const noexcept { return cfg_; }

 private:
  class probe_service;
  core_config cfg_;
  node::action_queue actions_;
  node::connection_table links_;
  core_stats stats_;
  storage_service* storage_;
  /// The transport routes through topology_ (constructed next; not used before then).
  node::message_transport transport_;
  chord_topology topology_;
  std::unique_ptr<data_movement> movement_;
  std::unique_ptr<storage_usage> storage_usage_;
  node::ping_service ping_;
  node::app_attach_service app_attach_;
  node::config_update_service config_updates_;
  std::unique_ptr<probe_service> probe_;
};

}  // namespace p2psip::peer
