#include "p2psip/node/config_update.hpp"

namespace p2psip::node {

namespace pr = protocol;

config_update_service::config_update_service(message_transport& transport) : transport_(transport) {
  transport_.handle(pr::codes::config_update_req, *this);
}

void config_update_service::on_request(const inbound_request& r, time_point now) {
  const auto& u = std::get<pr::config_update_req>(r.body);
  if (u.type != pr::config_update_type::config) {
    transport_.send_error(r, pr::reload_errc::forbidden,
                          "kind updates are taken only inside a signed configuration document",
                          now);
    return;
  }
  if (!accept_) {
    transport_.send_error(r, pr::reload_errc::forbidden, "configuration updates are not taken",
                          now);
    return;
  }
  auto taken = accept_(u.config_data);
  if (!taken) {
    transport_.send_error(r, pr::reload_errc::forbidden,
                          "configuration refused: " + taken.error().message, now);
    return;
  }
  transport_.set_configuration_sequence(*taken);
  transport_.answer(r, pr::config_update_ans{}, now);
  // The node that sent it has it already.
  (void)adopt(u.config_data, *taken, now, r.link);
}

std::size_t config_update_service::adopt(pr::bytes document, std::uint16_t sequence, time_point now,
                                         std::optional<link_id> except) {
  transport_.set_configuration_sequence(sequence);
  transport_.set_configuration_document(std::make_shared<const pr::bytes>(document));
  if (!links_) return 0;
  std::size_t sent = 0;
  for (const auto& [node, link] : links_->preferred_links()) {
    const auto* c = links_->find(link);
    // Clients too: their next request would otherwise fail as Error_Config_Too_Old.
    if (!c || c->leaving || (except && *except == link)) continue;
    pr::config_update_req u;
    u.type = pr::config_update_type::config;
    u.config_data = document;
    // A neighbour that has the document already refuses it (not newer): nothing to do.
    auto done = [](outcome&&, time_point) {};
    if (transport_.originate({pr::to_destination(node)}, u, std::move(done), now,
                             send_options{link, true})) {
      ++sent;
    }
  }
  return sent;
}

}  // namespace p2psip::node
