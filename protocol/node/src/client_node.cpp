#include "p2psip/node/client_node.hpp"

#include <algorithm>

namespace p2psip::node {

namespace pr = protocol;

ping_service::ping_service(message_transport& transport, random_source& rng, wall_clock_source wall)
    : transport_(transport), rng_(rng), wall_(or_system_clock(std::move(wall))) {
  transport_.handle(pr::codes::ping_req, *this);
}

void ping_service::on_request(const inbound_request& r, time_point now) {
  transport_.answer(r, pr::ping_ans{rng_.next_u64(), epoch_ms(wall_())}, now);
}

client_node::client_node(client_config cfg, message_signer& signer, random_source& rng)
    : cfg_(std::move(cfg)),
      links_(cfg_.transport.self),
      transport_(
          [this] {
            auto t = cfg_.transport;
            t.forwards = false;
            return t;
          }(),
          links_, *this, signer, rng, actions_),
      ping_(transport_, rng, cfg_.wall),
      app_attach_(transport_, actions_),
      config_updates_(transport_) {}

void client_node::start(time_point) {
  if (cfg_.bootstrap.empty()) {
    actions_.log("no bootstrap peer configured");
    return;
  }
  attaching_ = true;
  actions_.push(open_link_action{cfg_.bootstrap[0], std::nullopt});
}

void client_node::attach_next(time_point) {
  ++bootstrap_index_;
  attaching_ = true;
  actions_.push(
      open_link_action{cfg_.bootstrap[bootstrap_index_ % cfg_.bootstrap.size()], std::nullopt});
}

void client_node::attach_failed(time_point now) {
  attaching_ = false;
  if (cfg_.bootstrap.empty() || left_) return;
  ++failures_;
  if (failures_ % cfg_.bootstrap.size() != 0) {
    attach_next(now);
    return;
  }
  // Every peer failed in a row: wait before the next round rather than reconnecting in a tight
  // loop (a refused connection on loopback fails in microseconds).
  backoff_ = std::clamp(backoff_ * 2, duration{200}, duration{10'000});
  next_attempt_ = now + backoff_;
  actions_.log("no bootstrap peer reachable: next attempt in " + std::to_string(backoff_.count()) +
               " ms");
}

void client_node::on_link_up(link_id link, const pr::node_id& remote, time_point now,
                             link_origin origin) {
  if (left_ || home_ || links_.contains(link) || remote == self()) {
    actions_.push(close_link_action{link, "refused: a client holds one link"});
    return;
  }
  connection c;
  c.link = link;
  c.remote = remote;
  c.origin = origin == link_origin::unknown ? link_origin::outbound : origin;
  c.origin_told = origin != link_origin::unknown;
  c.last_traffic = now;
  links_.add(c);
  home_ = link;
  attaching_ = false;
  failures_ = 0;
  backoff_ = duration{0};
  next_attempt_.reset();
  actions_.log("client: home peer link up");
}

void client_node::on_link_down(link_id link, time_point now,
                               std::vector<pr::bytes> /*undelivered*/) {
  // A client forwards and answers nothing: its own requests on the link are sent again by
  // the transport's link_down.
  const auto c = links_.remove(link);
  if (!c) return;
  const bool was_home = home_ && *home_ == link;
  if (was_home) home_.reset();
  transport_.link_down(link, c->remote, now);
  if (was_home) attach_failed(now);  // the home peer is gone: the next one
}

void client_node::on_link_failed(const pr::ip_address_port& address, time_point now,
                                 std::string_view reason) {
  actions_.log("link to " + address.to_string() + " failed" +
               (reason.empty() ? std::string() : ": " + std::string(reason)));
  if (attaching_ && !home_) attach_failed(now);
}

void client_node::on_message(link_id link, pr::byte_view data, time_point now) {
  transport_.on_message(link, data, now);
}

void client_node::on_oversized_message(link_id link, pr::byte_view header,
                                       std::uint32_t declared_length, time_point now) {
  transport_.refuse_oversized(link, header, declared_length, now);
}

void client_node::on_timer(time_point now) {
  transport_.on_timer(now);
  if (next_attempt_ && *next_attempt_ <= now) {
    next_attempt_.reset();
    if (!home_ && !left_) attach_next(now);
  }
}

std::optional<time_point> client_node::next_deadline() const {
  auto d = transport_.next_deadline();
  if (next_attempt_ && (!d || *next_attempt_ < *d)) d = next_attempt_;
  return d;
}

void client_node::leave(time_point) {
  left_ = true;
  next_attempt_.reset();
  transport_.set_closed();
}

pr::result<std::uint64_t> client_node::send_request(std::vector<pr::destination> destinations,
                                                    const pr::message_body& body, completion done,
                                                    time_point now) {
  if (!pr::is_request(pr::code_of(body))) return make_error_code(pr::reload_errc::invalid_message);
  if (!home_) return make_error_code(pr::reload_errc::underlay_destination_unreachable);
  const auto tx = transport_.originate(std::move(destinations), body, std::move(done), now,
                                       send_options{home_, false});
  if (!tx) return make_error_code(pr::reload_errc::underlay_destination_unreachable);
  return *tx;
}

}  // namespace p2psip::node
