#pragma once
// The peer's admin HTTP server (`p2psip-peer --admin-listen IP:PORT`), on civetweb (the server
// prometheus-cpp's own exposer embeds; its Exposer serves only registered collectables, so we
// run a CivetServer ourselves):
//   GET /metrics      Prometheus text format (render_metrics)
//   GET /status.json  the peer's status as JSON (render_status_json)
//   GET /             the status page, the ring drawn as inline SVG (render_status_page)
// Anything else is 404; methods other than GET and HEAD get 405.
//
// Threading: civetweb answers on its own threads, which never touch the runtime: each request
// posts take_admin_snapshot to the peer's io_context and waits for it at most
// `snapshot_timeout` (then 503). note_log() may be called from any thread.

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <asio/io_context.hpp>

#include "p2psip/peer/admin_snapshot.hpp"
#include "p2psip/peer/peer_runtime.hpp"
#include "p2psip/peer/sip_front_end.hpp"
#include "p2psip/protocol/address.hpp"
#include "p2psip/protocol/errors.hpp"

class CivetServer;

namespace p2psip::peer {

struct admin_http_config {
  /// Where to listen (port 0: any free port; bound_address() tells which).
  protocol::ip_address_port listen;
  /// civetweb worker threads (each serves one connection at a time).
  std::size_t threads = 2;
  /// How long a request waits for the I/O thread's snapshot before answering 503.
  std::chrono::milliseconds snapshot_timeout{2000};
  /// WARN and ERROR lines kept for the status page, newest last.
  std::size_t recent_warnings = 20;
};

class admin_http_server {
 public:
  /// Starts listening at once. `runtime` (and `sip`, may be null) must outlive the server and
  /// are read only on `io`'s thread. Errors: node::runtime_errc::listen_failed naming the
  /// address and civetweb's reason.
  static protocol::result<std::unique_ptr<admin_http_server>, protocol::error_record> start(
      asio::io_context& io, const peer_runtime& runtime, const sip_front_end* sip,
      admin_http_config cfg);
  /// Stops listening and waits for requests in progress (each bounded by snapshot_timeout).
  ~admin_http_server();
  admin_http_server(const admin_http_server&) = delete;
  admin_http_server& operator=(const admin_http_server&) = delete;

  /// "IP:PORT" as bound.
  std::string bound_address() const;
  /// Keeps a WARN or ERROR log line for the status page (other levels are ignored). Any thread.
  void note_log(node::log_level level, std::string_view time, std::string_view text);

  /// Use start().
  admin_http_server(asio::io_context& io, const peer_runtime& runtime, const sip_front_end* sip,
                    admin_http_config cfg);

  class handler;

 private:
  /// The snapshot from the I/O thread with the recent warnings, or nullopt after the timeout.
  std::optional<admin_snapshot> snapshot();

  asio::io_context& io_;
  const peer_runtime& runtime_;
  const sip_front_end* sip_;
  admin_http_config cfg_;
  std::mutex warnings_mutex_;
  std::deque<admin_log_entry> warnings_;
  std::unique_ptr<handler> handler_;
  std::unique_ptr<CivetServer> server_;
  std::string bound_;
};

}  // namespace p2psip::peer
