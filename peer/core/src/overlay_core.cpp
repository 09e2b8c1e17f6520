#include "p2psip/peer/overlay_core.hpp"

namespace p2psip::peer {

namespace pr = protocol;
using pr::reload_errc;

namespace {

/// `cfg` with a wall clock (the system's, unless one was given): every part reads wall time
/// through cfg.wall.
core_config with_wall_clock(core_config cfg) {
  cfg.wall = node::or_system_clock(std::move(cfg.wall));
  return cfg;
}

node::transport_config transport_config_of(const core_config& cfg) {
  node::transport_config t = cfg;  // the transport's part of a peer's settings
  t.forwards = true;
  return t;
}

// The ring share of (after, self] in parts per billion, from the top 64 bits of the distance.
std::uint32_t share_ppb(const pr::node_id& after, const pr::node_id& self) {
  if (after == self) return 1'000'000'000u;
  const auto d = pr::ring_distance(after, self);
  std::uint64_t top = 0;
  for (std::size_t i = 0; i < 8 && i < d.size(); ++i) top = (top << 8) | d.data()[i];
  const double share = static_cast<double>(top) / 18446744073709551616.0;
  return static_cast<std::uint32_t>(share * 1e9);
}

}  // namespace

/// Probe (RFC 6940 6.4.2): our share of the ring, resources stored, uptime.
class overlay_core::probe_service final : public node::request_handler {
 public:
  probe_service(overlay_core& core) : core_(core) {
    core_.transport_.handle(pr::codes::probe_req, *this);
  }
  void on_request(const node::inbound_request& r, time_point now) override {
    const auto& probe = std::get<pr::probe_req>(r.body);
    const auto& ring = core_.topology_;
    pr::probe_ans ans;
    for (const auto t : probe.requested_info) {
      pr::probe_information info;
      info.type = t;
      if (t == pr::probe_info_type::responsible_set) {
        info.value = share_ppb(ring.range_start(), core_.cfg_.self);
      } else if (t == pr::probe_info_type::num_resources) {
        info.value = core_.storage_ ? static_cast<std::uint32_t>(core_.storage_->count_range(
                                          ring.range_start(), core_.cfg_.self, core_.cfg_.wall()))
                                    : 0;
      } else if (t == pr::probe_info_type::uptime) {
        info.value = ring.uptime_s(now);
      } else {
        continue;
      }
      ans.probe_info.push_back(info);
    }
    core_.transport_.answer(r, ans, now);
  }

 private:
  overlay_core& core_;
};

overlay_core::overlay_core(core_config cfg, message_signer& signer, storage_service* storage,
                           random_source& rng)
    : cfg_(with_wall_clock(std::move(cfg))),
      links_(cfg_.self),
      storage_(storage),
      transport_(transport_config_of(cfg_), links_, topology_, signer, rng, actions_),
      topology_(cfg_, links_, transport_, actions_, rng, stats_),
      ping_(transport_, rng, cfg_.wall),
      app_attach_(transport_, actions_),
      config_updates_(transport_) {
  config_updates_.push_to_peers_of(links_);
  if (storage_) {
    movement_ = std::make_unique<data_movement>(cfg_, *storage_, topology_, links_, transport_,
                                                actions_, stats_);
    topology_.set_listener(movement_.get());
    storage_usage_ =
        std::make_unique<storage_usage>(cfg_, *storage_, topology_, links_, transport_, *movement_);
  }
  probe_ = std::make_unique<probe_service>(*this);
}

overlay_core::~overlay_core() = default;

core_stats overlay_core::stats() const {
  core_stats s = stats_;
  static_cast<node::transport_stats&>(s) = transport_.counters();
  return s;
}

void overlay_core::start(time_point now) {
  topology_.start(now);
}

void overlay_core::on_link_up(link_id link, const pr::node_id& remote, time_point now,
                              link_origin origin) {
  topology_.on_link_up(link, remote, now, origin);
}

void overlay_core::on_link_down(link_id link, time_point now, std::vector<pr::bytes> undelivered) {
  const auto c = links_.remove(link);
  if (!c) {
    // We closed it ourselves (and forgot it then): what its other end did not take before our
    // close still goes by the routes left.
    transport_.reroute_undelivered(std::move(undelivered), now);
    return;
  }
  // The topology first: requests of ours that were on the link go again by the routes left.
  topology_.on_link_down(*c, now);
  transport_.link_down(link, c->remote, now, std::move(undelivered));
}

void overlay_core::on_link_failed(const pr::ip_address_port& address, time_point now,
                                  std::string_view reason) {
  topology_.on_link_failed(address, now, reason);
}

std::size_t overlay_core::outbox_size() const noexcept {
  return movement_ ? movement_->queued() : 0;
}

bool overlay_core::accepting_client_requests() const {
  return !movement_ || !movement_->overloaded();
}

void overlay_core::on_message(link_id link, pr::byte_view data, time_point now) {
  transport_.on_message(link, data, now);
  if (movement_) movement_->send_queued(now);  // answers may have freed room
}

void overlay_core::on_oversized_message(link_id link, pr::byte_view header,
                                        std::uint32_t declared_length, time_point now) {
  transport_.refuse_oversized(link, header, declared_length, now);
}

void overlay_core::on_timer(time_point now) {
  transport_.on_timer(now);
  topology_.on_timer(now);
  if (movement_) movement_->on_timer(now);
}

std::optional<time_point> overlay_core::next_deadline() const {
  auto d = transport_.next_deadline();
  auto consider = [&](std::optional<time_point> t) {
    if (t && (!d || *t < *d)) d = t;
  };
  consider(topology_.next_deadline());
  if (movement_) consider(movement_->next_deadline());
  return d;
}

void overlay_core::leave(time_point now) {
  topology_.leave(now);
  transport_.set_closed();
}

pr::result<std::uint64_t> overlay_core::send_request(std::vector<pr::destination> destinations,
                                                     const pr::message_body& body,
                                                     node::completion done, time_point now) {
  if (!pr::is_request(pr::code_of(body))) return make_error_code(reload_errc::invalid_message);
  if (!topology_.joined()) return make_error_code(reload_errc::in_progress);
  const auto tx = transport_.originate(std::move(destinations), body, std::move(done), now);
  if (!tx) return make_error_code(reload_errc::underlay_destination_unreachable);
  return *tx;
}

}  // namespace p2psip::peer
