// The admin HTTP server of p2psip-peer (--admin-listen) and `p2psip-admin ring`, through the real
// binaries and sockets: /metrics parsed as Prometheus text with counters that move while a
// client puts and gets, /status.json parsed, the status page rendered by headless chromium (its
// DOM checked for the ring's SVG, a screenshot kept in output/), the ring walked from a peer.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "p2psip/client/client.hpp"
#include "process_overlay.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using p2psip::test::http_request;
using p2psip::test::process_overlay;

/// A scrape in Prometheus text format: sample ("name{labels}") -> value, and family -> type.
struct scrape {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;

  double value(const std::string& sample) const {
    const auto it = samples.find(sample);
    return it == samples.end() ? 0.0 : it->second;
  }
};

scrape parse_metrics(const std::string& text) {
  scrape s;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      s.types[name] = type;
      continue;
    }
    if (line[0] == '#') continue;
    // name{labels} value [timestamp]; label values here never hold spaces.
    const auto space = line.find(' ', line.find('}') == std::string::npos ? 0 : line.find('}'));
    REQUIRE_MESSAGE(space != std::string::npos, "unparsable sample line: " << line);
    s.samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return s;
}

scrape scrape_metrics(int port) {
  const auto got = http_request(port, "GET", "/metrics");
  REQUIRE(got.status == 200);
  return parse_metrics(got.body);
}

/// The sum over peers of one sample.
double total(const std::vector<scrape>& scrapes, const std::string& sample) {
  double sum = 0;
  for (const auto& s : scrapes) sum += s.value(sample);
  return sum;
}

/// Runs `args` with stdout/stderr to files, killed after `limit`; returns its exit status
/// (-1 when killed).
int run_bounded(const std::vector<std::string>& args, const fs::path& out, const fs::path& err,
                std::chrono::seconds limit) {
  const pid_t pid = p2psip::test::spawn_process(args, out, err, false);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(20ms);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

/// Free ports for the peers' admin servers, all different.
std::vector<int> free_ports(std::size_t n) {
  std::set<int> ports;
  for (int attempt = 0; ports.size() < n && attempt < 100; ++attempt) {
    ports.insert(p2psip::test::free_tcp_udp_port());
  }
  REQUIRE(ports.size() == n);
  return {ports.begin(), ports.end()};
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

/// `p2psip-admin ring` as the enrolled node "walker" of `overlay`, then `extra` arguments.
std::vector<std::string> ring_command(p2psip::test::process_overlay& overlay,
                                      std::vector<std::string> extra) {
  overlay.enroll("walker");
  std::vector<std::string> args{P2PSIP_ADMIN_BINARY,
                                "ring",
                                "--config",
                                overlay.config_file().string(),
                                "--cert",
                                overlay.cert_of("walker").string(),
                                "--key",
                                overlay.key_of("walker").string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

}  // namespace

TEST_CASE("metrics move with traffic, status.json, the page in chromium, and the ring walk") {
  process_overlay overlay(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  const auto ports = free_ports(3);
  for (std::size_t i = 0; i < ports.size(); ++i) {
    std::vector<std::string> args{"--admin-listen", "127.0.0.1:" + std::to_string(ports[i])};
    if (i == 0) {
      // p0 serves SIP too: its SIP registrations and transactions are metrics.
      args.insert(args.end(), {"--sip-listen", "tls:127.0.0.1:0"});
    }
    overlay.start_peer("p" + std::to_string(i), false, args);
  }
  REQUIRE_MESSAGE(overlay.wait_ring(30s), overlay.log_of(0));
  for (std::size_t i = 0; i < ports.size(); ++i) {
    CHECK(overlay.log_of(i).find("admin HTTP server at 127.0.0.1:" + std::to_string(ports[i])) !=
          std::string::npos);
  }

  // ---- /metrics before and after a client's puts and gets ----
  std::vector<scrape> before;
  for (const int port : ports) before.push_back(scrape_metrics(port));
  const auto& first = before.front();
  for (const char* family : {"p2psip_messages_received_total", "p2psip_messages_sent_total",
                             "p2psip_messages_forwarded_total", "p2psip_messages_dropped_total",
                             "p2psip_request_timeouts_total", "p2psip_replica_stores_total",
                             "p2psip_handovers_total", "p2psip_values_quarantined_total",
                             "p2psip_signatures_made_total", "p2psip_signatures_verified_total"}) {
    CHECK_MESSAGE(first.types.count(family) == 1, family);
    if (first.types.count(family)) CHECK(first.types.at(family) == "counter");
  }
  for (const char* family : {"p2psip_links", "p2psip_clients", "p2psip_stored_values",
                             "p2psip_stored_bytes", "p2psip_joined", "p2psip_uptime_seconds"}) {
    CHECK_MESSAGE(first.types.count(family) == 1, family);
    if (first.types.count(family)) CHECK(first.types.at(family) == "gauge");
  }
  CHECK(first.value("p2psip_joined") == 1);
  CHECK(first.value("p2psip_links") >= 2);
  CHECK(first.value("p2psip_clients") == 0);
  CHECK(first.types.count("p2psip_sip_registrations") == 1);
  CHECK(first.value("p2psip_sip_registrations") == 0);
  CHECK(before[1].types.count("p2psip_sip_registrations") == 0);  // p1 serves no SIP

  overlay.enroll("alice");
  p2psip::client::client_options o;
  o.config_file = overlay.config_file().string();
  o.certificate_file = overlay.cert_of("alice").string();
  o.key_file = overlay.key_of("alice").string();
  o.peers = {overlay.peers().at(0).address};
  o.operation_timeout = 20s;
  o.request_timeout = 5s;
  o.sip_routing_mode = p2psip::client::sip_routing::outbound_proxy;
  auto made = p2psip::client::client::create(o);
  REQUIRE_MESSAGE(made.has_value(), (made ? "" : made.error().message));
  auto& client = *made;
  REQUIRE(client->wait_attached(10s).has_value());
  constexpr int values = 6;
  for (int i = 0; i < values; ++i) {
    const auto name = "metric-" + std::to_string(i);
    REQUIRE(client->put(name, p2psip::client::to_bytes("value " + std::to_string(i))));
    const auto got = client->get(name);
    REQUIRE(got);
    CHECK(got->size() == 1);
  }

  // A SIP registration through p0 (RFC 5626 flow, the client's outbound proxy).
  const auto registered = client->sip_register("sip:alice@test.p2psip.example", 600);
  REQUIRE_MESSAGE(registered.has_value(), (registered ? "" : registered.error().message));

  std::vector<scrape> after;
  for (const int port : ports) after.push_back(scrape_metrics(port));
  const auto& home = after.front();
  // Every request of the client came to p0 first.
  CHECK(home.value(R"(p2psip_messages_received_total{code="store_req"})") >=
        first.value(R"(p2psip_messages_received_total{code="store_req"})") + values);
  CHECK(home.value(R"(p2psip_messages_received_total{code="fetch_req"})") >=
        first.value(R"(p2psip_messages_received_total{code="fetch_req"})") + values);
  CHECK(home.value(R"(p2psip_messages_sent_total{code="store_ans"})") +
            home.value(R"(p2psip_messages_forwarded_total)") >
        first.value(R"(p2psip_messages_sent_total{code="store_ans"})"));
  CHECK(home.value("p2psip_clients") == 1);
  CHECK(home.value("p2psip_sip_registrations") == 1);
  CHECK(home.value("p2psip_sip_flows") == 1);
  // Each value is held by its responsible peer and replicated to the two others.
  CHECK(total(after, "p2psip_stored_values") >= total(before, "p2psip_stored_values") + values);
  CHECK(total(after, "p2psip_stored_bytes") > total(before, "p2psip_stored_bytes"));
  CHECK(total(after, "p2psip_replica_stores_total") >=
        total(before, "p2psip_replica_stores_total") + 2 * values);
  // Each Store: its responsible peer verifies the message and the value and signs its answer and
  // two replica Stores; each replica holder verifies the Store and signs its answer.
  CHECK(total(after, "p2psip_signatures_verified_total") >=
        total(before, "p2psip_signatures_verified_total") + 4 * values);
  CHECK(total(after, "p2psip_signatures_made_total") >=
        total(before, "p2psip_signatures_made_total") + 5 * values);
  // Latency histograms: the responsible peers' replica Stores, answered over real links.
  CHECK(home.types.count("p2psip_request_duration_seconds") == 1);
  CHECK(home.types.at("p2psip_request_duration_seconds") == "histogram");
  CHECK(total(after, R"(p2psip_request_duration_seconds_count{code="store_req"})") >
        total(before, R"(p2psip_request_duration_seconds_count{code="store_req"})"));
  CHECK(total(after, R"(p2psip_request_duration_seconds_sum{code="store_req"})") > 0);
  CHECK(home.value(R"(p2psip_request_duration_seconds_bucket{code="store_req",le="+Inf"})") ==
        home.value(R"(p2psip_request_duration_seconds_count{code="store_req"})"));

  // ---- /status.json ----
  const auto status = http_request(ports[0], "GET", "/status.json");
  REQUIRE(status.status == 200);
  const auto j = json::parse(status.body);
  CHECK(j.at("node_id") == overlay.peers()[0].node_id);
  CHECK(j.at("address") == overlay.peers()[0].address);
  CHECK(j.at("joined") == true);
  const auto& succ = j.at("ring").at("successors");
  REQUIRE(!succ.empty());
  CHECK((succ[0] == overlay.peers()[1].node_id || succ[0] == overlay.peers()[2].node_id));
  CHECK(j.at("client_count") == 1);
  CHECK(j.at("links").size() >= 3);  // two peers and the client
  CHECK(j.at("store").at("values").get<double>() == home.value("p2psip_stored_values"));
  CHECK(j.at("crypto").at("signatures_verified").get<double>() >=
        home.value("p2psip_signatures_verified_total"));
  CHECK(j.at("crypto").at("signatures_made").get<double>() >=
        home.value("p2psip_signatures_made_total"));
  CHECK(j.at("sip").at("registrations") == 1);
  CHECK(j.at("sip").at("flows") == 1);

  // ---- what is not served ----
  CHECK(http_request(ports[0], "GET", "/nothing-here").status == 404);
  CHECK(http_request(ports[0], "POST", "/metrics").status == 405);
  CHECK(http_request(ports[0], "HEAD", "/metrics").status == 200);

  // ---- the page in headless chromium ----
  const auto chromium = p2psip::test::find_tool("chromium", "chromium");
  const fs::path out = P2PSIP_TEST_OUTPUT_DIR;
  fs::create_directories(out);
  const fs::path profile = overlay.dir() / "chromium-profile";
  const std::string url = "http://127.0.0.1:" + std::to_string(ports[0]) + "/";
  const std::vector<std::string> common{chromium,
                                        "--headless",
                                        "--no-sandbox",
                                        "--disable-gpu",
                                        "--no-first-run",
                                        "--disable-dev-shm-usage",
                                        "--user-data-dir=" + profile.string(),
                                        "--window-size=1200,1000"};
  auto dump = common;
  dump.push_back("--dump-dom");
  dump.push_back(url);
  const auto dom_file = out / "status_page_dom.html";
  REQUIRE(run_bounded(dump, dom_file, out / "chromium_dump.err", 60s) == 0);
  const auto dom = p2psip::test::read_file(dom_file);
  CHECK(dom.find("<svg id=\"ring\"") != std::string::npos);
  CHECK(count_of(dom, "class=\"node self\"") == 1);
  CHECK(count_of(dom, "class=\"node ") >= 3);  // this peer and the two others
  CHECK(dom.find(overlay.peers()[0].node_id) != std::string::npos);
  CHECK(dom.find("id=\"links\"") != std::string::npos);
  const auto png = out / "status_page.png";
  fs::remove(png);
  auto shot = common;
  shot.push_back("--screenshot=" + png.string());
  shot.push_back(url);
  REQUIRE(run_bounded(shot, out / "chromium_shot.out", out / "chromium_shot.err", 60s) == 0);
  REQUIRE(fs::exists(png));
  CHECK(fs::file_size(png) > 10'000);
  CHECK(p2psip::test::read_file(png).rfind("\x89PNG", 0) == 0);

  // ---- p2psip-admin ring from another peer ----
  const auto ring = ring_command(overlay, {"--peer", overlay.peers()[1].address});
  const auto text_out = overlay.dir() / "ring.txt";
  REQUIRE(run_bounded(ring, text_out, overlay.dir() / "ring.err", 30s) == 0);
  const auto text = p2psip::test::read_file(text_out);
  for (const auto& p : overlay.peers()) {
    CHECK_MESSAGE(text.find(p.node_id) != std::string::npos, text);
    CHECK_MESSAGE(text.find(p.address) != std::string::npos, text);
  }
  auto as_json = ring;
  as_json.push_back("--json");
  const auto json_out = overlay.dir() / "ring.json";
  REQUIRE(run_bounded(as_json, json_out, overlay.dir() / "ring_json.err", 30s) == 0);
  const auto walk = json::parse(p2psip::test::read_file(json_out));
  CHECK(walk.at("complete") == true);
  REQUIRE(walk.at("peers").size() == 3);
  CHECK(walk["peers"][0]["node_id"] == overlay.peers()[1].node_id);
  std::set<std::string> found;
  double resources = 0;
  for (const auto& p : walk["peers"]) {
    found.insert(p.at("node_id").get<std::string>() + " " + p.at("address").get<std::string>());
    resources += p.at("resources").get<double>();
    CHECK(p.at("uptime_s").get<double>() < 600);
  }
  for (const auto& p : overlay.peers()) CHECK(found.count(p.node_id + " " + p.address) == 1);
  CHECK(resources >= values);  // each peer counts the resources of its own range
}

TEST_CASE(
    "bad input: --admin-listen unparsable or taken, p2psip-admin ring unreachable or misused") {
  process_overlay overlay(P2PSIP_PEER_BINARY, P2PSIP_ADMIN_BINARY);
  overlay.enroll("p0");
  const std::vector<std::string> base{P2PSIP_PEER_BINARY,
                                      "--config",
                                      overlay.config_file().string(),
                                      "--cert",
                                      overlay.cert_of("p0").string(),
                                      "--key",
                                      overlay.key_of("p0").string(),
                                      "--listen",
                                      "127.0.0.1:0",
                                      "--memory",
                                      "--first"};
  auto bad = base;
  bad.push_back("--admin-listen");
  bad.push_back("localhost:http");
  const auto err = overlay.dir() / "bad.err";
  CHECK(run_bounded(bad, overlay.dir() / "bad.out", err, 20s) == 2);
  CHECK(p2psip::test::read_file(err).find("--admin-listen 'localhost:http'") != std::string::npos);

  // A port some other program listens on.
  p2psip::test::listening_port other;
  REQUIRE(other.port() > 0);
  const auto taken = std::to_string(other.port());
  auto busy = base;
  busy.push_back("--admin-listen");
  busy.push_back("127.0.0.1:" + taken);
  const auto busy_err = overlay.dir() / "busy.err";
  const int code = run_bounded(busy, overlay.dir() / "busy.out", busy_err, 20s);
  other.close();
  CHECK(code == 1);
  const auto message = p2psip::test::read_file(busy_err);
  CHECK_MESSAGE(message.find("--admin-listen 127.0.0.1:" + taken) != std::string::npos, message);

  // p2psip-admin ring: a peer nobody listens at (the port just closed), and usage errors.
  const auto ring = ring_command(overlay, {"--timeout", "500"});
  auto nobody = ring;
  nobody.insert(nobody.end(), {"--peer", "127.0.0.1:" + taken});
  const auto nobody_err = overlay.dir() / "ring_nobody.err";
  CHECK(run_bounded(nobody, overlay.dir() / "ring_nobody.out", nobody_err, 20s) == 5);
  CHECK(p2psip::test::read_file(nobody_err).find("no link to the peer within 500 ms") !=
        std::string::npos);
  auto no_peer = ring;
  CHECK(run_bounded(no_peer, overlay.dir() / "ring_usage.out", overlay.dir() / "ring_usage.err",
                    20s) == 2);
  auto bad_peer = ring;
  bad_peer.insert(bad_peer.end(), {"--peer", "127.0.0.1"});
  CHECK(run_bounded(bad_peer, overlay.dir() / "ring_bad.out", overlay.dir() / "ring_bad.err",
                    20s) == 2);
  auto no_steps = ring;
  no_steps.insert(no_steps.end(), {"--peer", "127.0.0.1:" + taken, "--max-steps", "0"});
  CHECK(run_bounded(no_steps, overlay.dir() / "ring_steps.out", overlay.dir() / "ring_steps.err",
                    20s) == 2);
}
