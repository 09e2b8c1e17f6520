#include "p2psip/transport/stream_listener.hpp"

#include "accept_core.hpp"
#include "stream_internal.hpp"

namespace p2psip::transport {

namespace pr = p2psip::protocol;

stream_listener::stream_listener(token, std::shared_ptr<detail::accept_core> core,
                                 std::shared_ptr<const tls_credentials> creds,
                                 stream_listener_config cfg, stream_handler on_stream,
                                 failure_handler on_failure)
    : creds_(std::move(creds)),
      cfg_(std::move(cfg)),
      on_stream_(std::move(on_stream)),
      on_failure_(std::move(on_failure)),
      core_(std::move(core)) {}

stream_listener::~stream_listener() = default;

pr::result<std::shared_ptr<stream_listener>> stream_listener::open(
    const asio::any_io_executor& executor, const asio::ip::tcp::endpoint& local,
    std::shared_ptr<const tls_credentials> creds, stream_listener_config cfg,
    stream_handler on_stream, failure_handler on_failure) {
  if (!creds) return make_error_code(transport_errc::invalid_credentials);
  // Accepted streams get the accept side's shorter bound on their handshake.
  // (The accept side keeps the bound in force, for its pressure lines.)
  cfg.stream.handshake_timeout =
      detail::accepted_handshake_timeout(cfg, cfg.stream.handshake_timeout);
  cfg.handshake_timeout = cfg.stream.handshake_timeout;
  auto core = detail::accept_core::bind(executor, local, cfg);
  if (!core) return core.error();
  auto l =
      std::make_shared<stream_listener>(token{}, std::move(*core), std::move(creds), std::move(cfg),
                                        std::move(on_stream), std::move(on_failure));
  auto start = detail::handshake_starter<tls_stream>(
      std::weak_ptr<stream_listener>(l),
      [](stream_listener& me, asio::ip::tcp::socket socket, detail::stream_handshake_hook hook) {
        return detail::start_stream_internal(std::move(socket), me.cfg_.role, me.creds_,
                                             me.cfg_.stream, std::nullopt, std::move(hook));
      },
      [](stream_listener& me, std::uint64_t id, const std::shared_ptr<tls_stream>& done,
         std::error_code result) {
        detail::hand_up(*me.core_, id, done, result, me.on_stream_, me.on_failure_);
      });
  l->core_->start(std::move(start), l->cfg_.stream.log, l);
  return l;
}

const asio::ip::tcp::endpoint& stream_listener::local_endpoint() const noexcept {
  return core_->local_endpoint();
}
void stream_listener::close() {
  core_->close();
}
bool stream_listener::is_open() const noexcept {
  return core_->is_open();
}
const listener_stats& stream_listener::stats() const noexcept {
  return core_->stats();
}
std::size_t stream_listener::pending_handshakes() const noexcept {
  return core_->pending_handshakes();
}

}  // namespace p2psip::transport
