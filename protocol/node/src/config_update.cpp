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
  transport_.set_configuration_document(u.config_data);
  transport_.answer(r, pr::config_update_ans{}, now);
}

}  // namespace p2psip::node
