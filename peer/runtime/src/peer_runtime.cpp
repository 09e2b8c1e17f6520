#include "p2psip/peer/peer_runtime.hpp"

#include <cstdint>
#include <cstdio>
#include <exception>
#include <utility>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <fcntl.h>
#include <unistd.h>

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include "p2psip/peer/storage_backend.hpp"

namespace p2psip::peer {

namespace {

using wall = std::chrono::system_clock;
constexpr auto as_tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

node::driver_config driver_config_of(const runtime_config& cfg) {
  node::driver_config d;
  d.listen = cfg.listen;
  d.link = cfg.link;
  d.client_messages_per_second = cfg.client_messages_per_second;
  d.client_burst = cfg.client_burst;
  d.client_max_in_progress = cfg.client_max_in_progress;
  d.leave_flush_timeout = cfg.leave_flush_timeout;
  d.close_timeout = cfg.close_timeout;
  d.log = cfg.log;
  d.configuration_document = std::make_shared<const protocol::bytes>(cfg.configuration_document);
  d.accept_configuration = cfg.accept_configuration;
  d.applications = cfg.applications;
  return d;
}

#if defined(__GLIBC__)
/// This process's resident set in KiB (/proc/self/statm), 0 when it cannot be read. No heap
/// allocation (a FILE would take one), so that reading it around malloc_trim measures the trim.
std::uint64_t resident_kib() {
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128];
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return 0;
  text[n] = '\0';
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(text, "%llu %llu", &size, &resident) != 2) return 0;
  const long page = ::sysconf(_SC_PAGESIZE);
  return page > 0 ? resident * static_cast<std::uint64_t>(page) / 1024 : 0;
}
#endif

}  // namespace

core_config core_config_of(const node::node_setup& setup) {
  core_config c;
  static_cast<node::transport_config&>(c) = setup.transport();
  c.update_interval = std::chrono::duration_cast<duration>(setup.config.chord.update_interval);
  c.finger_interval = std::chrono::duration_cast<duration>(setup.config.chord.ping_interval);
  c.reactive = setup.config.chord.reactive;
  return c;
}

protocol::result<std::unique_ptr<peer_runtime>, protocol::error_record> peer_runtime::create(
    asio::io_context& io, runtime_config cfg, std::shared_ptr<const transport::tls_credentials> tls,
    const crypto::credentials& creds, crypto::trust_store& trust) {
  std::unique_ptr<storage_backend> backend;
  if (cfg.data_dir) {
    std::error_code ec;
    std::filesystem::create_directories(*cfg.data_dir, ec);
    if (ec) {
      return protocol::error_record{make_error_code(storage_errc::cannot_open),
                                    cfg.data_dir->string() + ": cannot create: " + ec.message()};
    }
    sqlite_options options;
    options.owner = cfg.core.self;
    options.accept_store_change = cfg.accept_store_change;
    options.log = [log = cfg.log](bool warning, std::string_view text) {
      if (log) log(warning ? log_level::warn : log_level::info, text);
    };
    auto opened = open_sqlite_backend(*cfg.data_dir, options);
    if (!opened) return opened.error();
    backend = std::move(*opened);
  } else {
    backend = make_memory_backend();
  }
  std::string description = backend->describe();
  std::unique_ptr<data_store> store;
  try {
    store = std::make_unique<data_store>(std::move(backend), cfg.kinds, trust);
    if (cfg.log)
      store->set_warning_log(
          [log = cfg.log](std::string_view text) { log(log_level::warn, text); });
  } catch (const std::exception& e) {
    return protocol::error_record{make_error_code(storage_errc::load_failed),
                                  std::string("data store: ") + e.what()};
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
      expire_timer_(io),
      trim_timer_(io) {
  auto dc = driver_config_of(cfg_);
  dc.make_node = [this](std::uint16_t bound_port) {
    auto core = cfg_.core;
    // Port 0 asked the system for a free port: announce the one bound.
    std::visit([bound_port](auto& a) { a.port = bound_port; }, core.listen_address.value);
    auto made = std::make_unique<overlay_core>(std::move(core), signer_, &storage_, rng_);
    core_ = made.get();
    return made;
  };
  dc.after_actions = [this] {
    if (cfg_.ring_changed) watch_ring();
    watch_links();
  };
  driver_ = std::make_unique<node::node_driver>(io, std::move(dc), std::move(tls));
}

peer_runtime::~peer_runtime() = default;

protocol::result<void, protocol::error_record> peer_runtime::start() {
  if (driver_->started()) return {};
  if (auto started = driver_->start(); !started) return started;
  const auto bound = *driver_->local_endpoint();
  driver_->log(log_level::info, "listening on " + bound.address().to_string() + ":" +
                                    std::to_string(bound.port()) + " as " + cfg_.core.self.hex() +
                                    " (store: " + store_description_ + ")");
  driver_->spawn("expire", [this] { return expire_loop(); });
  started_at_ = std::chrono::steady_clock::now();
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
  s.joined = core_->joined();
  s.predecessors = core_->routes().predecessors();
  s.successors = core_->routes().successors();
  s.routing_table = core_->routes().peers();
  s.clients = core_->links().clients();
  s.outbox = core_->outbox_size();
  s.dropped = ring_mark_now().dropped;
  return s;
}

peer_runtime::ring_mark peer_runtime::ring_mark_now() const {
  ring_mark m;
  const auto& d = driver_->stats();
  m.dropped = d.dropped_backlog_full + d.dropped_too_large + d.dropped_link_closed;
  if (!driver_->started()) return m;
  m.joined = core_->joined();
  m.table_changes = core_->routes().changes();
  m.outbox = core_->outbox_size();
  m.dropped += core_->stats().refused_pending_full + core_->stats().bulk_stores_given_up;
  return m;
}

void peer_runtime::watch_ring() {
  const auto now = ring_mark_now();
  if (now == last_ring_mark_) return;
  last_ring_mark_ = now;
  cfg_.ring_changed();
}

void peer_runtime::watch_links() {
  const std::size_t links = driver_->link_count();
  const bool fell = links < links_seen_;
  links_seen_ = links;
  if (!fell || trim_pending_ || cfg_.heap_trim_delay.count() <= 0 || driver_->stopped()) return;
  // One trim per delay at most, however many links close meanwhile; links that close later arm
  // the next.
  trim_pending_ = true;
  trim_timer_.expires_after(cfg_.heap_trim_delay);
  trim_timer_.async_wait([this](std::error_code ec) {
    if (ec) return;  // cancelled: stopping, or the runtime is gone (touch nothing of it)
    trim_pending_ = false;
    if (!driver_->stopped()) trim_heap();
  });
}

void peer_runtime::trim_heap() {
#if defined(__GLIBC__)
  const std::uint64_t before = resident_kib();
  ::malloc_trim(0);
  const std::uint64_t after = resident_kib();
  driver_->log(log_level::debug, "heap trimmed: resident " + std::to_string(before) + " -> " +
                                     std::to_string(after) + " KiB");
#endif
}

runtime_counters peer_runtime::counters() const {
  runtime_counters c;
  c.driver = driver_->stats();
  c.store = store_->counts();
  if (!driver_->started()) return c;
  c.core = core_->stats();
  c.traffic = core_->transport().traffic();
  return c;
}

std::vector<link_row> peer_runtime::link_rows() const {
  std::vector<link_row> rows;
  if (!driver_->started()) return rows;
  for (const auto& [id, c] : core_->connections()) {
    link_row r;
    r.link = id.value;
    r.remote = c.remote;
    r.address = driver_->remote_endpoint(id);
    r.peer = !c.from_client();
    r.inbound = c.origin != node::link_origin::outbound;
    rows.push_back(std::move(r));
  }
  return rows;
}

std::uint64_t peer_runtime::uptime_s() const {
  if (!started_at_) return 0;
  const auto up = std::chrono::steady_clock::now() - *started_at_;
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(up).count());
}

bool peer_runtime::originate(std::vector<protocol::destination> destinations,
                             const protocol::message_body& body, node::completion done,
                             node::send_options options,
                             std::vector<protocol::generic_certificate> certificates) {
  bool sent = false;
  driver_->with_node([&](node::node_engine& n, node::time_point now) {
    sent = n.transport()
               .originate(std::move(destinations), body, std::move(done), now, options,
                          std::move(certificates))
               .has_value();
  });
  return sent;
}

bool peer_runtime::app_attach(std::vector<protocol::destination> route, std::uint16_t application,
                              std::uint64_t token, node::app_attach_service::attach_done done) {
  bool sent = false;
  driver_->with_node([&](node::node_engine& n, node::time_point now) {
    sent = n.app_attach().connect(std::move(route), application, token, std::move(done), now);
  });
  return sent;
}

std::optional<std::size_t> peer_runtime::adopt_configuration(protocol::bytes document,
                                                             std::uint16_t sequence) {
  std::optional<std::size_t> sent;
  driver_->with_node([&](node::node_engine& n, node::time_point now) {
    sent = n.config_updates().adopt(std::move(document), sequence, now);
  });
  return sent;
}

asio::awaitable<void> peer_runtime::expire_loop() {
  // The driver's spawn only runs this while the driver (and so this runtime) lives; stop() and
  // the destructor cancel the timer.
  while (!driver_->stopped()) {
    expire_timer_.expires_after(cfg_.expire_interval);
    auto [ec] = co_await expire_timer_.async_wait(as_tuple_awaitable);
    if (ec || driver_->stopped()) break;
    const auto removed = store_->expire(wall::now());
    if (removed > 0) {
      driver_->log(log_level::debug, "expired " + std::to_string(removed) + " values");
    }
  }
}

asio::awaitable<void> peer_runtime::stop() {
  const bool was_running = driver_->started() && !driver_->stopped();
  if (was_running) driver_->log(log_level::info, "leaving the overlay");
  expire_timer_.cancel();
  trim_timer_.cancel();
  co_await driver_->stop();
  if (was_running) {
    driver_->log(log_level::info,
                 "stopped (" + std::to_string(store_->counts().values) + " values stored)");
  }
}

}  // namespace p2psip::peer
