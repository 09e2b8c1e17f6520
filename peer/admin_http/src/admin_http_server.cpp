#include "p2psip/peer/admin_http_server.hpp"

#include <exception>
#include <future>
#include <utility>

#include <CivetServer.h>
#include <asio/post.hpp>

namespace p2psip::peer {

namespace {

std::string listen_text(const protocol::ip_address_port& a) {
  // civetweb's listening_ports syntax: IP:PORT, [IPv6]:PORT.
  return a.to_string();
}

bool send_body(mg_connection* conn, const char* content_type, const std::string& body, bool head) {
  mg_send_http_ok(conn, content_type, static_cast<long long>(body.size()));
  if (!head) mg_write(conn, body.data(), body.size());
  return true;
}

}  // namespace

class admin_http_server::handler final : public CivetHandler {
 public:
  explicit handler(admin_http_server& server) : server_(server) {}
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

  bool serve(mg_connection* conn, bool head) {
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
      auto s = server_.snapshot();
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

  admin_http_server& server_;
};

admin_http_server::admin_http_server(asio::io_context& io, const peer_runtime& runtime,
                                     const sip_front_end* sip, admin_http_config cfg)
    : io_(io), runtime_(runtime), sip_(sip), cfg_(std::move(cfg)) {}

protocol::result<std::unique_ptr<admin_http_server>, protocol::error_record>
admin_http_server::start(asio::io_context& io, const peer_runtime& runtime,
                         const sip_front_end* sip, admin_http_config cfg) {
  auto server = std::make_unique<admin_http_server>(io, runtime, sip, std::move(cfg));
  const auto& c = server->cfg_;
  const std::vector<std::string> options{
      "listening_ports",    listen_text(c.listen),
      "num_threads",        std::to_string(c.threads),
      "request_timeout_ms", "10000",
      "enable_keep_alive",  "no",
  };
  const auto failed = [&](const std::string& why) {
    return protocol::error_record{make_error_code(node::runtime_errc::listen_failed),
                                  "--admin-listen " + listen_text(c.listen) + ": " + why};
  };
  try {
    server->server_ = std::make_unique<CivetServer>(options);
  } catch (const std::exception& e) {
    return failed(std::string("cannot listen (") + e.what() + ")");
  }
  if (!server->server_->getContext()) return failed("cannot listen");
  server->handler_ = std::make_unique<handler>(*server);
  server->server_->addHandler("/", *server->handler_);
  const auto ports = server->server_->getListeningPorts();
  if (ports.empty()) return failed("no port bound");
  auto bound = c.listen;
  std::visit([port = ports.front()](auto& a) { a.port = static_cast<std::uint16_t>(port); },
             bound.value);
  server->bound_ = bound.to_string();
  return server;
}

admin_http_server::~admin_http_server() {
  if (server_) server_->close();  // joins civetweb's threads: no handler runs after this
}

std::string admin_http_server::bound_address() const {
  return bound_;
}

void admin_http_server::note_log(node::log_level level, std::string_view time,
                                 std::string_view text) {
  if (level < node::log_level::warn) return;
  std::lock_guard lock(warnings_mutex_);
  warnings_.push_back(admin_log_entry{std::string(time), std::string(node::log_level_name(level)),
                                      std::string(text)});
  while (warnings_.size() > cfg_.recent_warnings) warnings_.pop_front();
}

std::optional<admin_snapshot> admin_http_server::snapshot() {
  auto promise = std::make_shared<std::promise<admin_snapshot>>();
  auto future = promise->get_future();
  // Captures no `this`: a snapshot the server stopped waiting for may still run later.
  asio::post(io_, [promise, runtime = &runtime_, sip = sip_] {
    try {
      promise->set_value(take_admin_snapshot(*runtime, sip));
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  if (future.wait_for(cfg_.snapshot_timeout) != std::future_status::ready) return std::nullopt;
  auto s = future.get();
  std::lock_guard lock(warnings_mutex_);
  s.warnings.assign(warnings_.begin(), warnings_.end());
  return s;
}

}  // namespace p2psip::peer
