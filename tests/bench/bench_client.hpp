#pragma once
// SDK clients for the benchmarks that run real peers (p2psip-bench, p2psip-scale): enrolled in
// the process_overlay's CA and attached to one peer.

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "p2psip/client/client.hpp"
#include "process_overlay.hpp"

namespace p2psip::bench {

/// Options of a client for `user` (enrolled now) attached to `peer` ("IP:PORT"), logging to `log`.
inline client::client_options client_options_for(test::process_overlay& o, const std::string& user,
                                                 const std::string& peer,
                                                 std::function<void(std::string_view)> log = {}) {
  o.enroll(user);
  client::client_options opt;
  opt.config_file = o.config_file().string();
  opt.certificate_file = o.cert_of(user).string();
  opt.key_file = o.key_of(user).string();
  opt.peers = {peer};
  opt.log = std::move(log);
  return opt;
}

/// A client made from `options`, attached within 10 s; throws std::runtime_error otherwise.
inline std::unique_ptr<client::client> attached_client(const client::client_options& options) {
  auto c = client::client::create(options);
  if (!c) throw std::runtime_error(c.error().message);
  if (auto a = (*c)->wait_attached(std::chrono::seconds(10)); !a) {
    throw std::runtime_error(a.error().message);
  }
  return std::move(*c);
}

}  // namespace p2psip::bench
