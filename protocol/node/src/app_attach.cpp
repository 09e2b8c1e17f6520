#include "p2psip/node/app_attach.hpp"

namespace p2psip::node {

namespace pr = protocol;

app_attach_service::app_attach_service(message_transport& transport, action_queue& actions)
    : transport_(transport), actions_(actions) {
  transport_.handle(pr::codes::app_attach_req, *this);
}

void app_attach_service::serve(std::uint16_t application, pr::ip_address_port address) {
  served_[application] = address;
}

void app_attach_service::on_request(const inbound_request& r, time_point now) {
  const auto& req = std::get<pr::app_attach_req>(r.body);
  const auto it = served_.find(req.application);
  if (it == served_.end()) {
    // RFC 6940 6.5.2.2: "If the Application ID is not supported, the peer MUST reply with an
    // Error_Not_Found error."
    transport_.send_error(r, pr::reload_errc::not_found,
                          "application " + std::to_string(req.application) + " not served here",
                          now);
    return;
  }
  pr::app_attach_ans ans;
  fill_no_ice(ans, "active", it->second);
  ans.application = req.application;
  transport_.answer(r, ans, now);
}

bool app_attach_service::connect(std::vector<pr::destination> route, std::uint16_t application,
                                 std::uint64_t token, attach_done done, time_point now) {
  if (route.empty() || route.back().node() == nullptr) return false;
  const auto target = *route.back().node();
  pr::app_attach_req req;
  // The requester opens the connection (it is the TLS client), so its own candidate is only
  // there to fill the field: the answerer never connects to it.
  fill_no_ice(req, "passive", pr::ip_address_port{});
  req.application = application;
  auto on_outcome = [this, target, application, token, done = std::move(done)](outcome&& o,
                                                                               time_point t) {
    if (!o.ok()) {
      if (done) done("AppAttach to " + target.hex() + ": " + describe(o), t);
      return;
    }
    const auto* ans = std::get_if<pr::app_attach_ans>(&o.body);
    if (!ans || !o.signer || o.signer->node != target) {
      if (done) done("AppAttach to " + target.hex() + ": not answered by the target", t);
      return;
    }
    for (const auto& c : ans->candidates) {
      if (c.overlay_link != pr::overlay_link_type::tls_tcp_fh_no_ice) continue;
      actions_.push(open_app_connection_action{c.addr_port, target, application, token});
      if (done) done(std::nullopt, t);
      return;
    }
    if (done) done("AppAttach to " + target.hex() + ": no usable candidate in the answer", t);
  };
  return transport_.originate(std::move(route), req, std::move(on_outcome), now).has_value();
}

}  // namespace p2psip::node
