#pragma once
// Drives one overlay_core with Asio: the TLS listener (peers only), links opened for the core's
// open_link actions, one receive loop per link, one timer re-armed to core.next_deadline(), and a
// bounded clean shutdown (Leave, flush, close). Requests the core delivers go to the
// application's callback. Both the peer (peer_runtime, which adds the data store) and the client
// SDK (a client-role core, no listener, no store) run on it.
//
// Threading: everything runs on the one thread running the io_context given to the constructor;
// call every member from that thread (or through asio::post to it).

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/system_timer.hpp>

#include "p2psip/peer/overlay_core.hpp"
#include "p2psip/transport/credentials.hpp"
#include "p2psip/transport/link.hpp"
#include "p2psip/transport/listener.hpp"

namespace p2psip::peer {

/// Severity of a log line.
enum class log_level : std::uint8_t { debug, info, warn, error };

/// "DEBUG", "INFO", "WARN", "ERROR".
std::string_view log_level_name(log_level l) noexcept;

/// A random_source seeded from std::random_device (splitmix64): transaction ids and jitter only.
class system_random final : public random_source {
 public:
  system_random();
  std::uint64_t next_u64() override;

 private:
  std::uint64_t state_ = 0;
};

struct driver_config {
  /// The core's settings. With a listener, core.listen_address must be where `listen` is
  /// reachable (its port is replaced by the bound one when `listen` has port 0).
  core_config core;
  /// Where the listener binds (port 0: any free port); nullopt: no listener (a client).
  std::optional<asio::ip::tcp::endpoint> listen;
  /// Settings of every link (accepted and opened).
  transport::link_config link;
  /// Shutdown: how long to wait for the Leave messages to be handed to TLS ...
  std::chrono::milliseconds leave_flush_timeout{2000};
  /// ... and then for the links to finish closing.
  std::chrono::milliseconds close_timeout{3000};
  /// Receives every log line (the core's log actions at debug level); may be empty.
  std::function<void(log_level, std::string_view)> log;
  /// Receives what the core delivers: answers to send_request() (or a synthetic
  /// Error_Request_Timeout) and requests it does not handle itself, which the application answers
  /// with respond(). Empty: answers are dropped and requests refused with Error_Forbidden.
  std::function<void(deliver_action&&)> deliver;
  /// Called after a link came up or went down (for clients watching their attachment).
  std::function<void()> links_changed;
};

class overlay_driver {
 public:
  /// `tls`, `signer`, `storage` (may be null) must outlive the driver.
  overlay_driver(asio::io_context& io, driver_config cfg,
                 std::shared_ptr<const transport::tls_credentials> tls, message_signer& signer,
                 storage_service* storage);
  ~overlay_driver();
  overlay_driver(const overlay_driver&) = delete;
  overlay_driver& operator=(const overlay_driver&) = delete;

  /// Binds the listener (when configured), then makes and starts the core. Errors: the bind
  /// error in words.
  protocol::result<void, std::string> start();

  /// Graceful, bounded shutdown: Leave to the neighbors (a peer hands its data to the successor),
  /// waits until those messages are handed to TLS (leave_flush_timeout), closes the listener and
  /// every link, and waits for them to close (close_timeout). Idempotent; never throws.
  asio::awaitable<void> stop();

  /// Sends an application request (overlay_core::send_request); its answer is delivered.
  protocol::result<std::uint64_t> send_request(std::vector<protocol::destination> destinations,
                                               const protocol::message_body& body);
  /// Answers a delivered request.
  void respond(const protocol::message& request, link_id arrival,
               const protocol::message_body& body);

  /// The address the listener is bound to (after start(); the configured one otherwise).
  std::optional<asio::ip::tcp::endpoint> local_endpoint() const;
  /// The core; only after a successful start().
  const overlay_core& core() const noexcept { return *core_; }
  bool started() const noexcept { return core_ != nullptr; }
  bool stopped() const noexcept { return stopped_; }
  std::size_t link_count() const noexcept { return links_.size(); }
  /// The remote endpoint of a link (for logs and clients' status).
  std::optional<asio::ip::tcp::endpoint> remote_endpoint(link_id link) const;
  void log(log_level level, std::string_view text) const;

  /// Runs `make()` (returning an awaitable<void>) as a coroutine on the io_context; an exception
  /// escaping it is logged as a bug rather than thrown out of io_context::run.
  template <class F>
  void spawn(std::string_view what, F&& make);

 private:
  struct link_entry {
    std::shared_ptr<transport::link> link;
    protocol::node_id remote;
  };

  void add_link(std::shared_ptr<transport::link> l, std::optional<protocol::node_id> expected,
                link_origin origin);
  void link_closed(link_id id, std::error_code reason);
  asio::awaitable<void> receive_loop(link_id id, std::shared_ptr<transport::link> l);
  asio::awaitable<void> open_link(protocol::ip_address_port address,
                                  std::optional<protocol::node_id> expected);
  asio::awaitable<void> timer_loop();
  void pump();
  void arm_timer();
  void execute(action& a);

  asio::io_context& io_;
  driver_config cfg_;
  std::shared_ptr<const transport::tls_credentials> tls_;
  message_signer& signer_;
  storage_service* storage_;
  system_random rng_;
  std::unique_ptr<overlay_core> core_;
  std::shared_ptr<transport::listener> listener_;
  std::map<link_id, link_entry> links_;
  std::uint64_t next_link_ = 1;
  asio::system_timer timer_;
  std::optional<time_point> armed_;
  bool stopping_ = false;
  bool stopped_ = false;
  bool in_pump_ = false;
  /// Set while the driver lives; coroutines and handlers check it before touching `this`.
  std::shared_ptr<bool> alive_;
};

template <class F>
void overlay_driver::spawn(std::string_view what, F&& make) {
  std::weak_ptr<bool> alive = alive_;
  asio::co_spawn(io_, std::forward<F>(make)(),
                 [this, alive, name = std::string(what)](const std::exception_ptr& e) {
                   if (!e || alive.expired()) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     log(log_level::error, name + ": unexpected exception: " + ex.what());
                   } catch (...) {
                     log(log_level::error, name + ": unexpected exception");
                   }
                 });
}

}  // namespace p2psip::peer
