// The admin HTTP module (p2psip-admin-http.so) through the peer's loader, without a peer: opened
// from the build tree, started with a snapshot source whose values the test chooses, and asked
// over loopback HTTP; a module of another interface version, a taken port and a file that is not
// there are refused with errors naming what went wrong.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <dlfcn.h>

#include <atomic>
#include <string>

#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "p2psip/peer/admin_http_module.hpp"
#include "p2psip/peer/admin_module_json.hpp"

namespace {

namespace admin = p2psip::peer::admin;
using p2psip::peer::admin_http_module;
using p2psip::peer::admin_module_errc;
using p2psip::test::http_request;

/// Hands out one fixed snapshot, or none (the peer "did not answer in time"), and counts calls.
class fixed_source final : public admin::snapshot_source {
 public:
  std::optional<admin::snapshot> take() noexcept override {
    ++taken;
    if (!answer) return std::nullopt;
    return value;
  }
  admin::snapshot value;
  std::atomic<bool> answer{true};
  std::atomic<int> taken{0};
};

admin::snapshot sample_snapshot() {
  admin::snapshot s;
  s.node_id = "80000000000000000000000000000001";
  s.address = "127.0.0.1:6084";
  s.uptime_s = 42;
  s.joined = true;
  s.predecessors = {"40000000000000000000000000000000"};
  s.successors = {"c0000000000000000000000000000000"};
  s.routing_table = {"40000000000000000000000000000000", "c0000000000000000000000000000000",
                     "e0000000000000000000000000000000"};
  s.link_count = 3;
  s.stored_values = 7;
  s.received_by_code = {{"store_req", 5}, {"other", 2}};
  s.latency_bounds_seconds = {0.001, 0.01};
  s.request_latency = {{"fetch_req", {1, 2, 3}, 0.5},
                       // One count short: not rendered (prometheus-cpp would throw).
                       {"store_req", {1, 2}, 0.1}};
  s.links = {{1, "40000000000000000000000000000000", "127.0.0.1:40000", true, false}};
  return s;
}

int port_of(const std::string& bound) {
  return std::stoi(bound.substr(bound.rfind(':') + 1));
}

/// The module's entry point itself, opened from the build tree (the module stays loaded); null
/// when it cannot be opened or found.
admin::module_start_function module_entry_point() {
  void* handle = ::dlopen(P2PSIP_ADMIN_MODULE, RTLD_NOW | RTLD_LOCAL);
  if (!handle) return nullptr;
  return reinterpret_cast<admin::module_start_function>(  // NOLINT
      ::dlsym(handle, admin::module_start_symbol));
}

}  // namespace

TEST_CASE("the module serves the snapshot it is given: metrics, JSON, the page, warnings") {
  auto module = admin_http_module::open(P2PSIP_ADMIN_MODULE);
  REQUIRE_MESSAGE(module, (module ? "" : module.error().message));
  fixed_source source;
  source.value = sample_snapshot();
  auto server = module->start({.listen = "127.0.0.1:0"}, source);
  REQUIRE_MESSAGE(server, (server ? "" : server.error().message));
  const auto bound = (*server)->bound_address();
  REQUIRE(bound.rfind("127.0.0.1:", 0) == 0);
  const int port = port_of(bound);
  CHECK(port > 0);

  const auto metrics = http_request(port, "GET", "/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(metrics.body.find("p2psip_stored_values 7") != std::string::npos);
  CHECK(metrics.body.find("p2psip_messages_received_total{code=\"store_req\"} 5") !=
        std::string::npos);
  CHECK(metrics.body.find("p2psip_request_duration_seconds_count{code=\"fetch_req\"} 6") !=
        std::string::npos);
  CHECK(metrics.body.find("code=\"store_req\",le=") == std::string::npos);

  (*server)->note_log("WARN", "2026-12-07T00:00:00.000Z", "a <warning> for the page");
  const auto status = http_request(port, "GET", "/status.json");
  REQUIRE(status.status == 200);
  const auto j = nlohmann::json::parse(status.body);
  CHECK(j.at("node_id") == "80000000000000000000000000000001");
  CHECK(j.at("ring").at("fingers") == nlohmann::json::array({"e0000000000000000000000000000000"}));
  CHECK(j.at("links").at(0).at("address") == "127.0.0.1:40000");
  CHECK(j.at("warnings").at(0).at("text") == "a <warning> for the page");

  const auto page = http_request(port, "GET", "/");
  REQUIRE(page.status == 200);
  CHECK(page.body.find("<svg id=\"ring\"") != std::string::npos);
  CHECK(page.body.find("a &lt;warning&gt; for the page") != std::string::npos);
  // The node at 0x80.. sits half a turn from zero: the bottom of the circle (260, 460).
  CHECK(page.body.find("cx=\"260.0\" cy=\"460.0\"") != std::string::npos);

  CHECK(http_request(port, "GET", "/nothing").status == 404);
  CHECK(http_request(port, "POST", "/metrics").status == 405);
  source.answer = false;
  CHECK(http_request(port, "GET", "/metrics").status == 503);

  const int before = source.taken;
  server->reset();  // stops: no call into the source after this
  CHECK(http_request(port, "GET", "/metrics").status == 0);
  CHECK(source.taken == before);
}

TEST_CASE("the snapshot crosses the C boundary whole: JSON text and back") {
  auto s = sample_snapshot();
  s.sip = admin::sip_counts{1, 2, 3, 4, 5, 6, 7, 8};
  s.warnings = {{"2026-12-07T00:00:00.000Z", "WARN", "a warning"}};
  s.latency_bounds_seconds = {0.001, 0.1 + 0.2};  // a double that needs all its digits
  const nlohmann::json sent = s;
  const auto received = nlohmann::json::parse(sent.dump()).get<admin::snapshot>();
  CHECK(nlohmann::json(received) == sent);
  REQUIRE(received.sip);
  CHECK(received.sip->overlay_failures == 8);
  CHECK(received.latency_bounds_seconds.at(1) == 0.1 + 0.2);
  CHECK(received.links.at(0).inbound == false);
  CHECK_FALSE(
      nlohmann::json::parse(nlohmann::json(admin::snapshot{}).dump()).get<admin::snapshot>().sip);
}

TEST_CASE("bad text at the C boundary: a configuration or snapshot that is not JSON") {
  const auto entry = module_entry_point();
  REQUIRE(static_cast<bool>(entry));
  char* error_text = nullptr;
  const p2psip_admin_module* functions = entry(admin::module_interface_version, &error_text);
  REQUIRE(functions);

  // What the source hands out, as text: not JSON, then JSON with a field of the wrong type.
  struct text_source {
    std::string text;
    static char* take(void* context) {
      return admin::malloc_copy(static_cast<text_source*>(context)->text);
    }
  } source{"{not json"};

  // A configuration that is not JSON: refused with a reason, no server.
  CHECK(functions->start("{\"listen\": ", {&source, text_source::take}, &error_text) == nullptr);
  const auto config_error = admin::take_malloced(error_text);
  CHECK_MESSAGE(config_error.find("the admin HTTP module failed") != std::string::npos,
                config_error);

  p2psip_admin_server* server =
      functions->start(R"({"listen": "127.0.0.1:0"})", {&source, text_source::take}, &error_text);
  REQUIRE(server);
  const auto bound = admin::take_malloced(functions->bound_address(server));
  const int port = port_of(bound);
  CHECK(http_request(port, "GET", "/metrics").status == 503);
  source.text = R"({"uptime_s": "not a number"})";
  CHECK(http_request(port, "GET", "/status.json").status == 503);
  source.text = nlohmann::json(sample_snapshot()).dump();
  CHECK(http_request(port, "GET", "/metrics").status == 200);
  functions->stop(server);
}

TEST_CASE("refused: another interface version, a taken port, a missing file, not the module") {
  auto module = admin_http_module::open(P2PSIP_ADMIN_MODULE);
  REQUIRE(module);
  fixed_source source;

  // The entry point itself, asked by a peer of another interface version.
  const auto start = module_entry_point();
  REQUIRE(static_cast<bool>(start));
  char* error_text = nullptr;
  CHECK(start(admin::module_interface_version + 1, &error_text) == nullptr);
  const auto error = admin::take_malloced(error_text);
  CHECK_MESSAGE(error.find("interface version") != std::string::npos, error);

  // A port another socket listens on.
  p2psip::test::listening_port other;
  REQUIRE(other.port() > 0);
  const auto taken = "127.0.0.1:" + std::to_string(other.port());
  auto busy = module->start({.listen = taken}, source);
  REQUIRE_FALSE(busy);
  CHECK(busy.error().code == admin_module_errc::start_failed);
  CHECK_MESSAGE(busy.error().message.find("--admin-listen " + taken) != std::string::npos,
                busy.error().message);

  auto missing = admin_http_module::open("/nonexistent/p2psip-admin-http.so");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == admin_module_errc::load_failed);
  CHECK(missing.error().message.find("/nonexistent/p2psip-admin-http.so: cannot open shared") !=
        std::string::npos);

  auto not_module = admin_http_module::open("libm.so.6");
  REQUIRE_FALSE(not_module);
  CHECK(not_module.error().code == admin_module_errc::no_entry_point);
  CHECK(not_module.error().message.find("undefined symbol: p2psip_admin_http_module_start") !=
        std::string::npos);
}
