// The admin HTTP module's server (p2psip-admin-http.so, opened by p2psip-peer for
// --admin-listen), on civetweb (the server prometheus-cpp's own exposer embeds; its Exposer
// serves only registered collectables, so we run a CivetServer ourselves):
//   GET /metrics      Prometheus text format (render_metrics)
//   GET /status.json  the peer's status as JSON (render_status_json)
//   GET /             the status page, the ring drawn as inline SVG (render_status_page)
// Anything else is 404; methods other than GET and HEAD get 405.
//
// Threading: civetweb answers on its own threads, which never touch the peer: each request asks
// the peer's snapshot_source, which copies the state on the peer's I/O thread and waits a
// bounded time for it (nullopt: 503). note_log() may be called from any thread.

#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <CivetServer.h>

#include "admin_pages.hpp"
#include "p2psip/peer/admin_module.hpp"

namespace p2psip::peer::admin {

namespace {

bool send_body(mg_connection* conn, const char* content_type, const std::string& body, bool head) {
  mg_send_http_ok(conn, content_type, static_cast<long long>(body.size()));
  if (!head) mg_write(conn, body.data(), body.size());
  return true;
}

class civetweb_server;

class page_handler final : public CivetHandler {
 public:
  explicit page_handler(civetweb_server& server) : server_(server) {}
  // The status-code overloads stay CivetHandler's (they call these).
  using CivetHandler::handleDelete;
  using CivetHandler::handleGet;
  using CivetHandler::handleHead;
  using CivetHandler::handleOptions;
  using CivetHandler::handlePatch;
  using CivetHandler::handlePost;
  using CivetHandler::handlePut;

  bool handleGet(CivetServer*, mg_connection* conn) override { return serve(conn, false); }
  bool handleHead(CivetServer*, mg_connection* conn) override { return serve(conn, true); }
  bool handlePost(CivetServer*, mg_connection* conn) override { return refuse(conn); }
  bool handlePut(CivetServer*, mg_connection* conn) override { return refuse(conn); }
  bool handleDelete(CivetServer*, mg_connection* conn) override { return refuse(conn); }
  bool handleOptions(CivetServer*, mg_connection* conn) override { return refuse(conn); }
  bool handlePatch(CivetServer*, mg_connection* conn) override { return refuse(conn); }

 private:
  static bool refuse(mg_connection* conn) {
    mg_send_http_error(conn, 405, "%s", "only GET and HEAD are served here\n");
    return true;
  }

  bool serve(mg_connection* conn, bool head);

  civetweb_server& server_;
};

class civetweb_server final : public server {
 public:
  civetweb_server(const server_config& config, snapshot_source& source)
      : config_(config), source_(source), handler_(*this) {}

  /// Listens; an error names the address and civetweb's reason.
  std::string start() {
    const std::vector<std::string> options{
        "listening_ports",    config_.listen, "num_threads",       std::to_string(config_.threads),
        "request_timeout_ms", "10000",        "enable_keep_alive", "no",
    };
    const auto failed = [&](const std::string& why) {
      return "--admin-listen " + config_.listen + ": " + why;
    };
    try {
      civet_ = std::make_unique<CivetServer>(options);
    } catch (const std::exception& e) {
      return failed(std::string("cannot listen (") + e.what() + ")");
    }
    if (!civet_->getContext()) return failed("cannot listen");
    civet_->addHandler("/", handler_);
    const auto ports = civet_->getListeningPorts();
    if (ports.empty()) return failed("no port bound");
    // civetweb's listening_ports syntax is ours: IP:PORT or [IPv6]:PORT; the port it bound
    // replaces the one asked for (0: any free port).
    const auto colon = config_.listen.rfind(':');
    bound_ = config_.listen.substr(0, colon) + ":" + std::to_string(ports.front());
    return {};
  }

  ~civetweb_server() override {
    if (civet_) civet_->close();  // joins civetweb's threads: no handler runs after this
  }

  std::string bound_address() const override { return bound_; }

  void note_log(std::string_view level, std::string_view time, std::string_view text) override {
    std::lock_guard lock(warnings_mutex_);
    warnings_.push_back(log_entry{std::string(time), std::string(level), std::string(text)});
    while (warnings_.size() > config_.recent_warnings) warnings_.pop_front();
  }

  /// The peer's snapshot with the recent warnings, or nullopt when it did not come in time.
  std::optional<snapshot> take() {
    auto s = source_.take();
    if (!s) return s;
    std::lock_guard lock(warnings_mutex_);
    s->warnings.assign(warnings_.begin(), warnings_.end());
    return s;
  }

 private:
  server_config config_;
  snapshot_source& source_;
  std::mutex warnings_mutex_;
  std::deque<log_entry> warnings_;
  page_handler handler_;
  std::unique_ptr<CivetServer> civet_;
  std::string bound_;
};

bool page_handler::serve(mg_connection* conn, bool head) {
  const auto* info = mg_get_request_info(conn);
  const std::string path = info && info->local_uri ? info->local_uri : "";
  enum class page { metrics, json, status } what;
  if (path == "/metrics") {
    what = page::metrics;
  } else if (path == "/status.json") {
    what = page::json;
  } else if (path == "/" || path == "/index.html") {
    what = page::status;
  } else {
    mg_send_http_error(conn, 404, "%s", "not found: try /, /status.json or /metrics\n");
    return true;
  }
  try {
    auto s = server_.take();
    if (!s) {
      mg_send_http_error(conn, 503, "%s", "the peer did not answer in time\n");
      return true;
    }
    switch (what) {
      case page::metrics:
        return send_body(conn, "text/plain; version=0.0.4; charset=utf-8", render_metrics(*s),
                         head);
      case page::json: return send_body(conn, "application/json", render_status_json(*s), head);
      case page::status:
        return send_body(conn, "text/html; charset=utf-8", render_status_page(*s), head);
    }
  } catch (const std::exception& e) {
    mg_send_http_error(conn, 500, "%s\n", e.what());
  }
  return true;
}

}  // namespace

}  // namespace p2psip::peer::admin

/// The module's one exported symbol (admin::module_start_symbol, of type
/// admin::module_start_function).
extern "C" __attribute__((visibility("default"))) p2psip::peer::admin::server*
p2psip_admin_http_module_start(std::uint32_t interface_version,
                               const p2psip::peer::admin::server_config& config,
                               p2psip::peer::admin::snapshot_source& source,
                               std::string& error) noexcept {
  namespace admin = p2psip::peer::admin;
  try {
    if (interface_version != admin::module_interface_version) {
      error = "the admin HTTP module has interface version " +
              std::to_string(admin::module_interface_version) + ", the peer wants " +
              std::to_string(interface_version) + " (a module of another p2psip build)";
      return nullptr;
    }
    auto server = std::make_unique<admin::civetweb_server>(config, source);
    error = server->start();
    if (!error.empty()) return nullptr;
    return server.release();
  } catch (const std::exception& e) {
    error = std::string("the admin HTTP module failed: ") + e.what();
    return nullptr;
  }
}

// The peer calls the entry point through this type: a change on either side fails here.
static_assert(std::is_same_v<decltype(&p2psip_admin_http_module_start),
                             p2psip::peer::admin::module_start_function>);
