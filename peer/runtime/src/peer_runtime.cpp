#include "p2psip/peer/peer_runtime.hpp"

#include <exception>
#include <utility>

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include "p2psip/peer/storage_backend.hpp"

namespace p2psip::peer {

namespace {

using clock = std::chrono::system_clock;
constexpr auto as_tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

driver_config driver_config_of(const runtime_config& cfg) {
  driver_config d;
  d.core = cfg.core;
  d.listen = cfg.listen;
  d.link = cfg.link;
  d.leave_flush_timeout = cfg.leave_flush_timeout;
  d.close_timeout = cfg.close_timeout;
  d.log = cfg.log;
  return d;
}

}  // namespace

protocol::result<std::unique_ptr<peer_runtime>, std::string> peer_runtime::create(
    asio::io_context& io, runtime_config cfg, std::shared_ptr<const transport::tls_credentials> tls,
    const crypto::credentials& creds, crypto::trust_store& trust) {
  std::unique_ptr<storage_backend> backend;
  if (cfg.data_dir) {
    std::error_code ec;
    std::filesystem::create_directories(*cfg.data_dir, ec);
    if (ec) {
      return protocol::unexpected(cfg.data_dir->string() + ": cannot create: " + ec.message());
    }
    auto opened = open_sqlite_backend(*cfg.data_dir);
    if (!opened) return protocol::unexpected(opened.error().message);
    backend = std::move(*opened);
  } else {
    backend = make_memory_backend();
  }
  std::string description = backend->describe();
  std::unique_ptr<data_store> store;
  try {
    store = std::make_unique<data_store>(std::move(backend), cfg.kinds, trust);
  } catch (const std::exception& e) {
    return protocol::unexpected(std::string("data store: ") + e.what());
  }
  return std::make_unique<peer_runtime>(io, std::move(cfg), std::move(tls), creds, trust,
                                        std::move(store), std::move(description));
}

peer_runtime::peer_runtime(asio::io_context& io, runtime_config cfg,
                           std::shared_ptr<const transport::tls_credentials> tls,
                           const crypto::credentials& creds, crypto::trust_store& trust,
                           std::unique_ptr<data_store> store, std::string store_description)
    : cfg_(std::move(cfg)),
      store_(std::move(store)),
      store_description_(std::move(store_description)),
      storage_(*store_),
      signer_(creds.signing, cfg_.core.self, trust),
      driver_(std::make_unique<overlay_driver>(io, driver_config_of(cfg_), std::move(tls), signer_,
                                               &storage_)),
      expire_timer_(io) {}

peer_runtime::~peer_runtime() = default;

protocol::result<void, std::string> peer_runtime::start() {
  if (driver_->started()) return {};
  if (auto started = driver_->start(); !started) return started;
  const auto bound = *driver_->local_endpoint();
  driver_->log(log_level::info, "listening on " + bound.address().to_string() + ":" +
                                    std::to_string(bound.port()) + " as " + cfg_.core.self.hex() +
                                    " (store: " + store_description_ + ")");
  driver_->spawn("expire", [this] { return expire_loop(); });
  return {};
}

asio::ip::tcp::endpoint peer_runtime::local_endpoint() const {
  return driver_->local_endpoint().value_or(cfg_.listen);
}

runtime_status peer_runtime::status() const {
  runtime_status s;
  s.self = cfg_.core.self;
  s.links = driver_->link_count();
  s.stored_values = store_->counts().values;
  if (!driver_->started()) return s;
  s.joined = driver_->core().joined();
  s.predecessors = driver_->core().routes().predecessors();
  s.successors = driver_->core().routes().successors();
  s.routing_table = driver_->core().routes().peers();
  for (const auto& [id, c] : driver_->core().connections()) {
    if (!c.is_peer) ++s.clients;
  }
  return s;
}

asio::awaitable<void> peer_runtime::expire_loop() {
  // The driver's spawn only runs this while the driver (and so this runtime) lives; stop() and
  // the destructor cancel the timer.
  while (!driver_->stopped()) {
    expire_timer_.expires_after(cfg_.expire_interval);
    auto [ec] = co_await expire_timer_.async_wait(as_tuple_awaitable);
    if (ec || driver_->stopped()) break;
    const auto removed = store_->expire(clock::now());
    if (removed > 0) {
      driver_->log(log_level::debug, "expired " + std::to_string(removed) + " values");
    }
  }
}

asio::awaitable<void> peer_runtime::stop() {
  const bool was_running = driver_->started() && !driver_->stopped();
  if (was_running) driver_->log(log_level::info, "leaving the overlay");
  expire_timer_.cancel();
  co_await driver_->stop();
  if (was_running) {
    driver_->log(log_level::info,
                 "stopped (" + std::to_string(store_->counts().values) + " values stored)");
  }
}

}  // namespace p2psip::peer
