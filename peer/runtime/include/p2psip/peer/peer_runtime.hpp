#pragma once
// The peer runtime: carries out the overlay core's actions with Asio. It owns the TLS listener,
// the links (accepted, opened for open_link actions and bootstrap), one receive loop per link
// feeding core.on_message, one timer re-armed to core.next_deadline(), the data store (SQLite
// under a data directory, or memory) and a bounded clean shutdown (Leave, flush, close).
//
// Threading: everything runs on the one thread running the io_context given to create(); call
// every member from that thread (or through asio::post to it).

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include "p2psip/crypto/credentials.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/node/crypto_signer.hpp"
#include "p2psip/node/node_driver.hpp"
#include "p2psip/node/node_setup.hpp"
#include "p2psip/peer/data_store.hpp"
#include "p2psip/peer/data_store_service.hpp"
#include "p2psip/peer/overlay_core.hpp"
#include "p2psip/transport/credentials.hpp"

namespace p2psip::peer {

using node::log_level;
using node::log_level_name;

/// A core_config for the node `setup` describes (self, overlay hash, sequence, limits, kinds,
/// Chord timers); the caller sets role, listen_address and bootstrap.
core_config core_config_of(const node::node_setup& setup);

struct runtime_config {
  /// The core's settings; core.listen_address must be the address `listen` is reachable at (its
  /// port is replaced by the bound one when `listen` has port 0).
  core_config core;
  /// Where the listener binds (port 0: any free port).
  asio::ip::tcp::endpoint listen;
  /// SQLite store in this directory (created when absent); nullopt: memory only.
  std::optional<std::filesystem::path> data_dir;
  /// Start even when the database is not the store its manifest records (lost, emptied,
  /// replaced, another Node-ID's, truncated): sqlite_options::accept_store_change.
  bool accept_store_change = false;
  /// Settings of every link (accepted and opened).
  transport::link_config link;
  /// Messages per second (and burst) each client may send: a faster one is read more slowly
  /// (node::driver_config::client_messages_per_second); 0: no limit.
  std::uint32_t client_messages_per_second = 1000;
  std::uint32_t client_burst = 2000;
  /// Requests of one client in progress at most; more wait unread (driver_config).
  std::size_t client_max_in_progress = 16;
  /// The configuration document (node_setup::document) and the check that takes a newer one
  /// from a ConfigUpdate (node::driver_config).
  protocol::bytes configuration_document;
  node::config_update_service::acceptor accept_configuration;
  /// Kinds the data store serves (kind_rules_of(config)).
  std::vector<kind_rules> kinds;
  /// Shutdown: how long to wait for the Leave messages to be handed to TLS ...
  std::chrono::milliseconds leave_flush_timeout{2000};
  /// ... and then for the links to finish closing.
  std::chrono::milliseconds close_timeout{3000};
  /// How often expired values are removed from the store.
  std::chrono::milliseconds expire_interval{60000};
  /// How long after the peer's link count falls its freed heap is given back to the system
  /// (malloc_trim, glibc only); 0: never. Joins and link pruning free memory in scattered pieces
  /// that malloc keeps resident; one trim a while after links close gives back the whole free pages
  /// among them, at no cost to an idle peer, whose links do not close.
  std::chrono::milliseconds heap_trim_delay{15000};
  /// Receives every log line (the core's log actions at debug level); may be empty.
  std::function<void(log_level, std::string_view)> log;
  /// Applications usages serve over AppAttach (SIP: 5060), each with its own listener.
  std::vector<node::application_endpoint> applications;
  /// Called on the I/O thread when what the status line reports of the ring may have changed:
  /// joined, the routing table, the outbox or the dropped count (runtime_status). Lets the daemon
  /// log a status line on change without polling the status; may be empty.
  std::function<void()> ring_changed;
};

/// What the ring looks like from this peer, for status lines and tests.
struct runtime_status {
  protocol::node_id self;
  bool joined = false;
  std::vector<protocol::node_id> predecessors;   ///< nearest first
  std::vector<protocol::node_id> successors;     ///< nearest first
  std::vector<protocol::node_id> routing_table;  ///< every peer in it (neighbors and fingers)
  std::size_t links = 0;
  /// Nodes linked to us that are clients (RFC 6940 4.2.1): none of their links carried a Join,
  /// Update or Attach (node::connection_table::clients()).
  std::size_t clients = 0;
  std::size_t stored_values = 0;
  /// Replica and hand-over Stores waiting to go out (data movement's outbox).
  std::size_t outbox = 0;
  /// Messages of ours dropped, for any reason (node::driver_stats, requests refused for a full
  /// pending table, bulk Stores whose peer went away unanswered): 0 on a healthy peer.
  std::uint64_t dropped = 0;
};

/// Every layer's counters at one moment, for monitoring (the admin HTTP server's /metrics).
struct runtime_counters {
  core_stats core;                  ///< message transport, topology, data movement
  node::transport_traffic traffic;  ///< messages and errors by code, request latencies
  node::driver_stats driver;        ///< what the link layer backlogged or dropped
  storage_counts store;             ///< values and bytes held
};

/// One link of the peer, for the status page.
struct link_row {
  std::uint64_t link = 0;
  protocol::node_id remote;                        ///< from its certificate
  std::optional<asio::ip::tcp::endpoint> address;  ///< the remote end of the socket
  bool peer = false;    ///< it showed itself a peer (Join, Update, Attach); else a client's
  bool inbound = true;  ///< the remote opened it
};

/// The peer: an overlay_driver with a listener and the data store (SQLite under a data directory,
/// or memory), plus periodic expiry of stored values.
class peer_runtime {
 public:
  /// Opens the data store (errors: the store's storage_errc and message, naming the file).
  /// Nothing runs before start(). `tls`, `creds` and `trust` must outlive the runtime.
  static protocol::result<std::unique_ptr<peer_runtime>, protocol::error_record> create(
      asio::io_context& io, runtime_config cfg,
      std::shared_ptr<const transport::tls_credentials> tls, const crypto::credentials& creds,
      crypto::trust_store& trust);

  ~peer_runtime();
  peer_runtime(const peer_runtime&) = delete;
  peer_runtime& operator=(const peer_runtime&) = delete;

  /// Binds the listener, then makes and starts the core (a first peer joins at once, others
  /// bootstrap). Errors: node::runtime_errc with the bind error in words.
  protocol::result<void, protocol::error_record> start();

  /// Graceful, bounded shutdown (overlay_driver::stop): Leave with data hand-over, then every
  /// link closed. Idempotent; never throws.
  asio::awaitable<void> stop();

  /// The address the listener is bound to (after start()).
  asio::ip::tcp::endpoint local_endpoint() const;
  runtime_status status() const;
  /// The counters of every layer (zeros for the core's before start()).
  runtime_counters counters() const;
  /// Every link, ordered by link number (empty before start()).
  std::vector<link_row> link_rows() const;
  /// Seconds since start() (0 before it).
  std::uint64_t uptime_s() const;
  /// The core; only after a successful start().
  const overlay_core& core() const noexcept { return *core_; }
  bool stopped() const noexcept { return driver_->stopped(); }

  /// A request of this peer's own into the overlay (a usage's Store or Fetch, RFC 6940 7.4):
  /// `done` runs once with its outcome, on the io_context thread, possibly before this returns
  /// (when this peer is responsible). False, and `done` never runs, when nothing was sent (not
  /// started or stopping, no route yet, pending table full).
  bool originate(std::vector<protocol::destination> destinations,
                 const protocol::message_body& body, node::completion done,
                 node::send_options options = {},
                 std::vector<protocol::generic_certificate> certificates = {});
  /// Asks the node at the end of `route` ([peer] or [peer, client]) for a connection for
  /// `application` (AppAttach, RFC 6940 6.5.2); the connection reaches the application's
  /// `connected` handler with `token`. `done` as app_attach_service::connect. False when the
  /// request could not be sent.
  bool app_attach(std::vector<protocol::destination> route, std::uint16_t application,
                  std::uint64_t token, node::app_attach_service::attach_done done);
  /// Makes a newer configuration document the peer's own (the operator's, re-read on SIGHUP;
  /// already checked with node_setup::take_update): its messages carry `sequence` from now on,
  /// and every linked node is sent the document in a ConfigUpdate (config_update_service::adopt).
  /// Returns how many ConfigUpdates were sent; nullopt when the peer is not running.
  std::optional<std::size_t> adopt_configuration(protocol::bytes document, std::uint16_t sequence);
  /// The overlay's settings as the node uses them (kinds' data models, limits, Node-ID).
  const node::transport_config& overlay_settings() const noexcept { return cfg_.core; }
  /// Writes a line to the runtime's log.
  void log(log_level level, std::string_view text) const { driver_->log(level, text); }

  /// Use create().
  peer_runtime(asio::io_context& io, runtime_config cfg,
               std::shared_ptr<const transport::tls_credentials> tls,
               const crypto::credentials& creds, crypto::trust_store& trust,
               std::unique_ptr<data_store> store, std::string store_description);

 private:
  asio::awaitable<void> expire_loop();
  /// After every batch of the core's actions: calls cfg_.ring_changed when ring_mark moved.
  void watch_ring();
  /// After every batch of the core's actions: arms the heap trim when the link count fell.
  void watch_links();
  void trim_heap();

  /// What runtime_status reports of the ring, in counts that are cheap to read after every message.
  struct ring_mark {
    bool joined = false;
    std::uint64_t table_changes = 0;
    std::size_t outbox = 0;
    std::uint64_t dropped = 0;
    friend bool operator==(const ring_mark&, const ring_mark&) = default;
  };
  ring_mark ring_mark_now() const;

  runtime_config cfg_;
  std::unique_ptr<data_store> store_;
  std::string store_description_;
  data_store_service storage_;
  node::crypto_signer signer_;
  node::system_random rng_;
  overlay_core* core_ = nullptr;  ///< owned by the driver, once started
  std::unique_ptr<node::node_driver> driver_;
  asio::steady_timer expire_timer_;
  asio::steady_timer trim_timer_;
  bool trim_pending_ = false;
  std::size_t links_seen_ = 0;
  std::optional<std::chrono::steady_clock::time_point> started_at_;
  ring_mark last_ring_mark_;
};

}  // namespace p2psip::peer
