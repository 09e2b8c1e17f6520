#include "p2psip/transport/listener.hpp"

#include "accept_core.hpp"
#include "link_internal.hpp"

namespace p2psip::transport {

namespace pr = p2psip::protocol;

listener::listener(const asio::any_io_executor& executor,
                   std::shared_ptr<const tls_credentials> creds, listener_config cfg,
                   link_handler on_link, failure_handler on_failure)
    : executor_(executor),
      creds_(std::move(creds)),
      cfg_(std::move(cfg)),
      on_link_(std::move(on_link)),
      on_failure_(std::move(on_failure)) {}

listener::~listener() = default;

pr::result<std::shared_ptr<listener>> listener::open(const asio::any_io_executor& executor,
                                                     const asio::ip::tcp::endpoint& local,
                                                     std::shared_ptr<const tls_credentials> creds,
                                                     listener_config cfg, link_handler on_link,
                                                     failure_handler on_failure) {
  if (!creds && !cfg.link.insecure_plaintext) {
    return make_error_code(transport_errc::invalid_credentials);
  }
  // Accepted links get the accept side's shorter bound on their handshake.
  // (The accept side keeps the bound in force, for its pressure lines.)
  cfg.link.handshake_timeout = detail::accepted_handshake_timeout(cfg, cfg.link.handshake_timeout);
  cfg.handshake_timeout = cfg.link.handshake_timeout;
  auto l = std::make_shared<listener>(executor, std::move(creds), std::move(cfg),
                                      std::move(on_link), std::move(on_failure));
  auto core = detail::accept_core::bind(executor, local, l->cfg_);
  if (!core) return core.error();
  l->core_ = std::move(*core);
  auto start = detail::handshake_starter<link>(
      std::weak_ptr<listener>(l),
      [](listener& me, asio::ip::tcp::socket socket, detail::handshake_hook hook) {
        return detail::start_link_internal(std::move(socket), me.cfg_.role, me.creds_, me.cfg_.link,
                                           std::nullopt, std::move(hook));
      },
      [](listener& me, std::uint64_t id, const std::shared_ptr<link>& done,
         std::error_code result) {
        detail::hand_up(*me.core_, id, done, result, me.on_link_, me.on_failure_);
      });
  l->core_->start(std::move(start), l->cfg_.link.log, l);
  return l;
}

// A listener made by its constructor alone (not open()) has no core: closed, nothing bound.
namespace {
const asio::ip::tcp::endpoint no_endpoint;
const listener_stats no_stats;
}  // namespace

const asio::ip::tcp::endpoint& listener::local_endpoint() const noexcept {
  return core_ ? core_->local_endpoint() : no_endpoint;
}
void listener::close() {
  if (core_) core_->close();
}
bool listener::is_open() const noexcept {
  return core_ && core_->is_open();
}
const listener_stats& listener::stats() const noexcept {
  return core_ ? core_->stats() : no_stats;
}
std::size_t listener::pending_handshakes() const noexcept {
  return core_ ? core_->pending_handshakes() : 0;
}

}  // namespace p2psip::transport
