// p2psip-admin ring --config overlay.xml --cert C --key K --peer IP:PORT [--json]
//                   [--max-steps N] [--timeout MS] [--overlay NAME]
//
// Attaches as a client (RFC 6940 4.2.1: one TLS link to the peer given, never joining) and walks
// the ring clockwise with RFC 6940's own messages (docs/admin-http.md, "Walking the ring"):
//   1. Probe (6.4.2) the attached peer for responsible-set, num-resources and uptime.
//   2. Probe the Resource-ID just after the current peer (its Node-ID + 1): the overlay routes
//      it to the peer responsible for that point, which is the current peer's successor; the
//      answer's verified signer names it, and the answer carries its figures.
//   3. Attach (6.5.1) to that Node-ID, send_update off, to read its address from the answer's
//      candidate; the link is never opened.
//   4. Repeat from 2 until the successor is the peer we started at, or --max-steps peers.

#include "ring.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <cxxopts.hpp>
#include <nlohmann/json.hpp>

#include "p2psip/node/app_attach.hpp"
#include "p2psip/node/client_node.hpp"
#include "p2psip/node/crypto_signer.hpp"
#include "p2psip/node/node_driver.hpp"
#include "p2psip/node/node_setup.hpp"
#include "p2psip/protocol/address.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/ids.hpp"

namespace p2psip::admin {

namespace {

namespace pr = protocol;
using json = nlohmann::json;

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;
constexpr int exit_network = 5;  // the tools' table: no peer reached, no answer in time
constexpr int exit_setup = 6;

constexpr auto as_tuple_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

int report(std::string_view message, int code) {
  std::string line(message);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::cerr << "p2psip-admin ring: " << line << '\n';
  return code;
}

/// One peer as the walk found it.
struct ring_peer {
  pr::node_id id;
  std::string address;  ///< "" when its Attach was not answered
  std::uint32_t uptime_s = 0;
  std::uint32_t resources = 0;
  std::uint32_t responsible_ppb = 0;  ///< its share of the ring, parts per billion
};

struct walk_result {
  std::vector<ring_peer> peers;
  bool complete = false;  ///< came back to the first peer
  std::string error;      ///< why it stopped early
  bool network = false;   ///< ... because a peer could not be reached or did not answer
};

class ring_walker {
 public:
  ring_walker(asio::io_context& io, node::node_setup& setup, pr::ip_address_port peer,
              std::chrono::milliseconds timeout, std::size_t max_steps)
      : io_(io),
        setup_(setup),
        timeout_(timeout),
        max_steps_(max_steps),
        own_id_(setup.creds.signing.default_node_id()),
        signer_(setup.creds.signing, own_id_, *setup.trust) {
    node::client_config cc;
    cc.transport = setup.transport();
    cc.transport.request_timeout = timeout;
    cc.bootstrap = {peer};
    node::driver_config dc;
    dc.link.limits = cc.transport.limits;
    dc.link.idle_timeout = std::nullopt;
    dc.leave_flush_timeout = std::chrono::milliseconds(0);
    dc.close_timeout = std::chrono::milliseconds(1000);
    dc.configuration_document = std::make_shared<const pr::bytes>(setup.document);
    dc.accept_configuration = [this](pr::byte_view offered) {
      return setup_.check_update(offered);
    };
    dc.make_node = [this, cc](std::uint16_t) {
      auto made = std::make_unique<node::client_node>(cc, signer_, rng_);
      node_ = made.get();
      return made;
    };
    driver_ = std::make_unique<node::node_driver>(io, std::move(dc), setup.tls);
  }

  asio::awaitable<walk_result> run() {
    walk_result out;
    if (auto started = driver_->start(); !started) {
      out.error = started.error().message;
      co_return out;
    }
    out = co_await walk();
    co_await driver_->stop();
    co_return out;
  }

 private:
  asio::awaitable<walk_result> walk() {
    walk_result out;
    // The link to the peer given (the client core retries it on its own).
    asio::steady_timer pause(io_);
    const auto attach_deadline = std::chrono::steady_clock::now() + timeout_;
    while (!node_->home_link() && std::chrono::steady_clock::now() < attach_deadline) {
      pause.expires_after(std::chrono::milliseconds(20));
      co_await pause.async_wait(as_tuple_awaitable);
    }
    const auto home = node_->home_link();
    if (!home) {
      out.error = "no link to the peer within " + std::to_string(timeout_.count()) + " ms";
      out.network = true;
      co_return out;
    }
    const auto* row = node_->links().find(*home);
    const auto at = driver_->remote_endpoint(*home);
    if (!row || !at) {
      out.error = "the link to the peer closed";
      out.network = true;
      co_return out;
    }
    ring_peer first;
    first.id = row->remote;
    first.address = endpoint_text(*at);
    auto probed = co_await request(to_node(first.id), probe());
    if (auto e = fill(first, probed); !e.empty()) {
      out.error = "Probe of " + first.id.hex() + ": " + e;
      out.network = !probed || probed->what == node::outcome::kind::timeout;
      co_return out;
    }
    out.peers.push_back(first);
    std::set<pr::node_id> seen;
    seen.insert(first.id);
    pr::node_id current = first.id;
    while (out.peers.size() < max_steps_) {
      auto o = co_await request(just_after(current), probe());
      if (!o || !o->ok() || !o->signer) {
        out.error = "Probe of the successor of " + current.hex() + ": " + why(o);
        out.network = !o || o->what == node::outcome::kind::timeout;
        co_return out;
      }
      ring_peer next;
      next.id = o->signer->node;
      if (next.id == first.id) {
        out.complete = true;
        co_return out;
      }
      if (!seen.insert(next.id).second) {
        out.error = "the ring is not consistent: " + next.id.hex() + " answered twice";
        co_return out;
      }
      if (auto e = fill(next, o); !e.empty()) {
        out.error = "Probe of " + next.id.hex() + ": " + e;
        co_return out;
      }
      next.address = co_await address_of(next.id);
      out.peers.push_back(next);
      current = next.id;
    }
    out.error = "stopped after " + std::to_string(max_steps_) +
                " peers without coming back to the start (--max-steps)";
    co_return out;
  }

  /// The destination of the point just after `id` on the ring (its Node-ID + 1, as a
  /// Resource-ID): delivered to `id`'s successor.
  static std::vector<pr::destination> just_after(const pr::node_id& id) {
    const auto point = id.next();
    pr::resource_id r;
    r.value.assign(point.view().begin(), point.view().end());
    std::vector<pr::destination> to;
    to.push_back(pr::to_destination(r));
    return to;
  }

  static std::vector<pr::destination> to_node(const pr::node_id& id) {
    std::vector<pr::destination> to;
    to.push_back(pr::to_destination(id));
    return to;
  }

  static pr::probe_req probe() {
    pr::probe_req p;
    p.requested_info = {pr::probe_info_type::responsible_set, pr::probe_info_type::num_resources,
                        pr::probe_info_type::uptime};
    return p;
  }

  static std::string why(const std::optional<node::outcome>& o) {
    if (!o) return "not sent (no link to the peer)";
    return node::describe(*o);
  }

  /// Copies a ProbeAns's figures into `p`; the reason when the outcome is not one.
  static std::string fill(ring_peer& p, const std::optional<node::outcome>& o) {
    if (!o || !o->ok()) return why(o);
    const auto* ans = std::get_if<pr::probe_ans>(&o->body);
    if (!ans) return "the answer is not a ProbeAns";
    for (const auto& info : ans->probe_info) {
      if (info.type == pr::probe_info_type::responsible_set) p.responsible_ppb = info.value;
      if (info.type == pr::probe_info_type::num_resources) p.resources = info.value;
      if (info.type == pr::probe_info_type::uptime) p.uptime_s = info.value;
    }
    return {};
  }

  /// The address in the AttachAns of `id`'s first candidate; "" when there is none.
  asio::awaitable<std::string> address_of(const pr::node_id& id) {
    pr::attach_req req;
    // Our candidate is never used: the answerer does not connect (it answers "active"), and we
    // open no link either.
    const auto nowhere = pr::ip_address_port::parse("0.0.0.0:0");
    if (!nowhere) co_return std::string();
    node::fill_no_ice(req, "passive", *nowhere);
    req.send_update = false;
    auto o = co_await request(to_node(id), req);
    if (!o || !o->ok()) co_return std::string();
    const auto* ans = std::get_if<pr::attach_ans>(&o->body);
    if (!ans || ans->candidates.empty()) co_return std::string();
    co_return ans->candidates.front().addr_port.to_string();
  }

  /// Sends a request through the attached peer and waits for its outcome (the transport ends
  /// it after request_timeout at the latest; the timer is a second bound).
  asio::awaitable<std::optional<node::outcome>> request(std::vector<pr::destination> to,
                                                        pr::message_body body) {
    auto result = std::make_shared<std::optional<node::outcome>>();
    auto timer = std::make_shared<asio::steady_timer>(io_);
    timer->expires_after(timeout_ + std::chrono::seconds(1));
    bool sent = false;
    driver_->with_node([&](node::node_engine&, node::time_point now) {
      sent = node_
                 ->send_request(
                     std::move(to), body,
                     [result, timer](node::outcome&& o, node::time_point) {
                       *result = std::move(o);
                       timer->cancel();
                     },
                     now)
                 .has_value();
    });
    if (!sent) co_return std::nullopt;
    if (!*result) co_await timer->async_wait(as_tuple_awaitable);
    co_return std::move(*result);
  }

  static std::string endpoint_text(const asio::ip::tcp::endpoint& e) {
    const auto a = e.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
  }

  asio::io_context& io_;
  node::node_setup& setup_;
  std::chrono::milliseconds timeout_;
  std::size_t max_steps_;
  pr::node_id own_id_;
  node::crypto_signer signer_;
  node::system_random rng_;
  node::client_node* node_ = nullptr;  ///< owned by the driver once started
  std::unique_ptr<node::node_driver> driver_;
};

std::string share_text(std::uint32_t ppb) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", static_cast<double>(ppb) / 1e7);
  return buf;
}

void print_text(const walk_result& w) {
  std::printf("%-34s %-24s %10s %10s %7s\n", "NODE-ID", "ADDRESS", "UPTIME_S", "RESOURCES",
              "SHARE");
  for (const auto& p : w.peers) {
    std::printf("%-34s %-24s %10u %10u %7s\n", p.id.hex().c_str(),
                p.address.empty() ? "?" : p.address.c_str(), p.uptime_s, p.resources,
                share_text(p.responsible_ppb).c_str());
  }
  if (w.complete) {
    std::printf("%zu peer(s); the walk came back to %s\n", w.peers.size(),
                w.peers.front().id.hex().c_str());
  }
}

void print_json(const walk_result& w) {
  json peers = json::array();
  for (const auto& p : w.peers) {
    peers.push_back({{"node_id", p.id.hex()},
                     {"address", p.address},
                     {"uptime_s", p.uptime_s},
                     {"resources", p.resources},
                     {"responsible_ppb", p.responsible_ppb}});
  }
  json j{{"peers", std::move(peers)}, {"complete", w.complete}};
  if (!w.error.empty()) j["error"] = w.error;
  std::cout << j.dump(2) << '\n';
}

}  // namespace

int cmd_ring(int argc, char** argv) {
  cxxopts::Options options("p2psip-admin ring",
                           "Walk the overlay's ring from one peer and list every peer.");
  // clang-format off
  options.add_options()
      ("config", "overlay configuration document (overlay.xml)", cxxopts::value<std::string>())
      ("cert", "a client certificate of the overlay (one Node-ID; p2psip-admin enroll)", cxxopts::value<std::string>())
      ("key", "its private key", cxxopts::value<std::string>())
      ("peer", "the peer to attach to, IP:PORT or [IPv6]:PORT", cxxopts::value<std::string>())
      ("overlay", "refuse a configuration of another overlay", cxxopts::value<std::string>())
      ("json", "print one JSON document")
      ("max-steps", "peers to visit at most", cxxopts::value<long>()->default_value("256"))
      ("timeout", "how long to wait for the link and for each answer (ms)", cxxopts::value<long>()->default_value("5000"))
      ("h,help", "show this help");
  // clang-format on
  cxxopts::ParseResult r;
  try {
    r = options.parse(argc, argv);
  } catch (const std::exception& e) {
    return report(e.what(), exit_usage);
  }
  if (r.count("help")) {
    std::cout << options.help();
    return exit_ok;
  }
  if (!r.unmatched().empty()) {
    return report("unexpected argument '" + r.unmatched().front() + "'", exit_usage);
  }
  for (const char* required : {"config", "cert", "key", "peer"}) {
    if (!r.count(required))
      return report(std::string("--") + required + " is required", exit_usage);
  }
  long max_steps = 0, timeout_ms = 0;
  try {
    max_steps = r["max-steps"].as<long>();
    timeout_ms = r["timeout"].as<long>();
  } catch (const std::exception& e) {
    return report(e.what(), exit_usage);
  }
  if (max_steps < 1 || max_steps > 100'000)
    return report("--max-steps must be 1..100000", exit_usage);
  if (timeout_ms < 100 || timeout_ms > 600'000) {
    return report("--timeout must be 100..600000 ms", exit_usage);
  }
  const auto peer_text = r["peer"].as<std::string>();
  const auto peer = pr::ip_address_port::parse(peer_text);
  if (!peer || peer->port() == 0) {
    return report("--peer '" + peer_text + "': expected IP:PORT or [IPv6]:PORT", exit_usage);
  }
  auto setup = node::load_node_setup(r["config"].as<std::string>(), r["cert"].as<std::string>(),
                                     r["key"].as<std::string>(),
                                     r.count("overlay") ? r["overlay"].as<std::string>() : "");
  if (!setup) return report(setup.error().message, exit_setup);
  if (setup->creds.signing.cert().node_ids().size() != 1) {
    return report(r["cert"].as<std::string>() +
                      ": a client certificate must carry exactly one Node-ID (enroll with "
                      "--nodes 1)",
                  exit_setup);
  }
  asio::io_context io(1);
  ring_walker walker(io, *setup, *peer, std::chrono::milliseconds(timeout_ms),
                     static_cast<std::size_t>(max_steps));
  walk_result result;
  asio::co_spawn(io, walker.run(), [&](const std::exception_ptr& e, walk_result w) {
    result = std::move(w);
    if (e) result.error = "unexpected exception";
    io.stop();
  });
  io.run();
  if (r.count("json")) {
    print_json(result);
  } else {
    print_text(result);
  }
  if (!result.complete) {
    return report(result.error.empty() ? "the walk did not finish" : result.error,
                  result.network ? exit_network : exit_failure);
  }
  return exit_ok;
}

}  // namespace p2psip::admin
