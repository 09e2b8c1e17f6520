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
#include "p2psip/peer/admin_module_json.hpp"

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

/// The peer's source behind the C boundary: each snapshot comes as JSON text.
class c_snapshot_source final : public snapshot_source {
 public:
  explicit c_snapshot_source(p2psip_admin_source source) : source_(source) {}
  std::optional<snapshot> take() noexcept override {
    try {
      char* text = source_.take(source_.context);
      if (!text) return std::nullopt;
      return nlohmann::json::parse(take_malloced(text)).get<snapshot>();
    } catch (const std::exception&) {
      return std::nullopt;  // 503, as for a peer that did not answer
    }
  }

 private:
  p2psip_admin_source source_;
};

/// What a p2psip_admin_server is: the source it serves and the server.
struct c_server {
  std::unique_ptr<c_snapshot_source> source;
  std::unique_ptr<civetweb_server> server;
};

}  // namespace

}  // namespace p2psip::peer::admin

struct p2psip_admin_server : p2psip::peer::admin::c_server {};

namespace {

namespace admin = p2psip::peer::admin;

p2psip_admin_server* module_start(const char* config_json, p2psip_admin_source source,
                                  char** error) {
  try {
    auto config = nlohmann::json::parse(config_json).get<admin::server_config>();
    auto out = std::make_unique<p2psip_admin_server>();
    out->source = std::make_unique<admin::c_snapshot_source>(source);
    out->server = std::make_unique<admin::civetweb_server>(config, *out->source);
    const auto why = out->server->start();
    if (!why.empty()) {
      *error = admin::malloc_copy(why);
      return nullptr;
    }
    return out.release();
  } catch (const std::exception& e) {
    *error = admin::malloc_copy(std::string("the admin HTTP module failed: ") + e.what());
    return nullptr;
  }
}

char* module_bound_address(const p2psip_admin_server* server) {
  try {
    return admin::malloc_copy(server->server->bound_address());
  } catch (...) {
    return nullptr;
  }
}

void module_note_log(p2psip_admin_server* server, const char* level, std::size_t level_size,
                     const char* time, std::size_t time_size, const char* text,
                     std::size_t text_size) {
  try {
    server->server->note_log({level, level_size}, {time, time_size}, {text, text_size});
  } catch (...) {
    // A line the status page does not get (out of memory): the log has it.
  }
}

void module_stop(p2psip_admin_server* server) {
  delete server;  // ~civetweb_server joins civetweb's threads
}

const p2psip_admin_module module_functions{module_start, module_bound_address, module_note_log,
                                           module_stop};

}  // namespace

/// The module's one exported symbol (admin::module_start_symbol, of type
/// admin::module_start_function).
extern "C" __attribute__((visibility("default"))) const p2psip_admin_module*
p2psip_admin_http_module_start(std::uint32_t interface_version, char** error) {
  if (interface_version != admin::module_interface_version) {
    *error = admin::malloc_copy("the admin HTTP module has interface version " +
                                std::to_string(admin::module_interface_version) +
                                ", the peer wants " + std::to_string(interface_version) +
                                " (a module of another p2psip build)");
    return nullptr;
  }
  return &module_functions;
}

// The peer calls the entry point through this type: a change on either side fails here.
static_assert(std::is_same_v<decltype(&p2psip_admin_http_module_start),
                             p2psip::peer::admin::module_start_function>);
