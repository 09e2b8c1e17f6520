// The SDK's SIP user agent: see sip_agent.hpp. The public client members at the end hand each
// call to the agent on the I/O thread.
#include "sip_agent.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/udp.hpp>
#include <asio/steady_timer.hpp>

#include "client_impl.hpp"
#include "p2psip/sip/message.hpp"
#include "p2psip/sip/stream_parser.hpp"
#include "p2psip/sip/transaction.hpp"

namespace p2psip::client {

namespace {

namespace sp = p2psip::sip;

/// The application number of SIP in AppAttach (RFC 7904 section 5).
constexpr std::uint16_t sip_application = 5060;
/// How long an AppAttach and the connection after it may take.
constexpr auto connect_timeout = std::chrono::seconds(10);
/// How long a CRLF keepalive waits for its pong (RFC 5626 4.4.1 suggests 10 s).
constexpr auto pong_timeout = std::chrono::seconds(10);
/// Calls (ringing or established) a client holds at once; more INVITEs get 486.
constexpr std::size_t max_calls = 256;
/// Final statuses after which the next binding of the target is tried (direct mode).
bool worth_another_binding(int status) {
  return status == 408 || status == 430 || status == 480 || status == 500 || status == 503;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// "alice@example.org" or "sip:alice@example.org" as a URI text with its scheme.
std::string with_scheme(std::string_view target) {
  const auto colon = target.find(':');
  const auto at = target.find('@');
  if (colon != std::string_view::npos && (at == std::string_view::npos || colon < at)) {
    return std::string(target);
  }
  return "sip:" + std::string(target);
}

sip_response local_response(int status, std::string reason, std::string call_id = {}) {
  sip_response r;
  r.status = status;
  r.reason = reason.empty() ? std::string(sp::default_reason(status)) : std::move(reason);
  r.call_id = std::move(call_id);
  r.local = true;
  return r;
}

sip_response response_of(const sp::message& m) {
  sip_response r;
  r.status = m.status;
  r.reason = m.reason;
  if (auto id = sp::call_id(m)) r.call_id = *id;
  if (const auto* ct = m.find("Content-Type")) r.content_type = ct->value;
  r.body = bytes(m.body.begin(), m.body.end());
  return r;
}

std::string uri_text(const sp::result<sp::name_addr, sp::parse_error>& na) {
  return na ? sp::to_string(na->address) : std::string();
}

/// The remote target a 2xx sets: its first Contact (RFC 3261 12.1.2), if any.
std::optional<std::string> remote_target_of(const sp::message& response) {
  const auto c = sp::contacts(response);
  if (!c || c->contacts.empty()) return std::nullopt;
  return sp::to_string(c->contacts.front().address);
}

/// The UAC's route set from a 2xx: its Record-Route in reverse order (12.1.2).
std::vector<std::string> uac_route_set(const sp::message& response) {
  std::vector<std::string> out;
  if (const auto rr = sp::route_set(response, "Record-Route"); rr) {
    for (auto r = rr->rbegin(); r != rr->rend(); ++r) out.push_back(sp::to_string(*r));
  }
  return out;
}

}  // namespace

struct sip_agent::state : std::enable_shared_from_this<sip_agent::state> {
  // ---- types ----

  struct connection {
    std::shared_ptr<transport::tls_stream> stream;
    pr::node_id remote;
    sp::stream_parser parser;
    bool accepted = false;
  };

  using connected_fn = std::function<void(std::uint64_t conn, std::string error)>;
  struct connecting {
    pr::node_id target;
    std::vector<connected_fn> waiters;
    steady::time_point deadline;
  };

  /// An outgoing request until its final response (tried binding after binding in direct mode).
  struct request_op {
    sp::message request;  ///< without Via
    bool via_peer = false;
    std::vector<sip_binding> bindings;
    std::size_t next_binding = 0;
    std::optional<sip_response> last_failure;
    std::function<void(result<sip_response>, const sp::message*)> done;
    std::function<void(const sip_response&)> progress;
    std::uint64_t conn = 0;
    sp::transaction_id tx = 0;
    std::vector<pr::destination> route;  ///< of the connection used
    bool finished = false;
  };

  struct dialog {
    bool uac = true;
    std::string call_id, local_tag, remote_tag;
    std::string local_uri, remote_uri;
    std::string remote_target;
    std::vector<std::string> route_set;
    std::uint32_t local_cseq = 1;
    std::uint64_t conn = 0;
    bool confirmed = false;
    sp::transaction_id invite_tx = 0;  ///< UAC: the INVITE's client tx; UAS: its server tx
    sp::message invite;                ///< UAS: the INVITE, until answered
    std::string answer_type;           ///< our last SDP (re-INVITEs get it again)
    std::string answer_body;
  };

  struct registration {
    std::string aor;  ///< "sip:alice@overlay"
    std::uint32_t lifetime = 3600;
    std::optional<pr::node_id> peer;  ///< registered through
    std::uint64_t flow = 0;           ///< outbound: the flow REGISTERed over
    std::string call_id;
    std::uint32_t cseq = 0;
    bool in_progress = false;
    bool registered = false;
    std::vector<client::callback<void>> waiters;
    /// sip_register callers wait at most the operation timeout (for a peer to attach, say).
    std::optional<steady::time_point> waiters_deadline;
    std::optional<steady::time_point> refresh_at;
    std::uint32_t flow_timer = 0;
    std::optional<steady::time_point> ping_at;
    std::optional<steady::time_point> pong_deadline;
    unsigned failures = 0;
  };

  explicit state(client::impl& o) : owner(o), timer(o.io), self_hex(o.own_id.hex()) {
    user = o.setup.creds.signing.cert().user();
    domain = o.setup.config().instance_name;
    if (user.find('@') == std::string::npos) user += "@" + domain;
    // RFC 5626 4.1: one instance id per device, stable across restarts: from our Node-ID.
    const auto h = self_hex + std::string(32, '0');
    instance = "<urn:uuid:" + h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" +
               h.substr(16, 4) + "-" + h.substr(20, 12) + ">";
  }

  client::impl& owner;
  sp::transaction_layer tl{};
  asio::steady_timer timer;
  std::optional<steady::time_point> armed_for;
  // Branches, tags and Call-IDs: unique, not secret. SplitMix64 keeps 8 bytes of state where
  // std::mt19937_64 kept 2.5 KiB in every client.
  pe::system_random rng;
  std::string self_hex;
  std::string user;    ///< our certificate's user name: alice@overlay
  std::string domain;  ///< the overlay name
  std::string instance;
  bool stopped = false;

  std::map<std::uint64_t, connection> conns;
  std::uint64_t next_conn = 1;
  std::map<std::uint64_t, connecting> pending_connects;  // by AppAttach token
  std::uint64_t next_token = 1;
  std::map<sp::transaction_id, std::shared_ptr<request_op>> ops;
  std::map<std::string, dialog> dialogs;  // by Call-ID
  std::optional<registration> reg;
  std::optional<steady::time_point> reregister_at;

  mutable std::mutex shared_mutex;  // handler and established (read from any thread)
  sip_request_handler handler;
  std::set<std::string> established;

  // ---- helpers ----

  bool outbound() const { return owner.options.sip_routing_mode == sip_routing::outbound_proxy; }
  std::string own_host() const { return "p2p-" + self_hex + ".invalid"; }
  std::string from_uri() const { return reg ? reg->aor : "sip:" + user; }
  std::string random_token() { return sp::make_branch(rng.next_u64()).substr(7, 16); }
  std::string outbound_route(const pr::node_id& peer) const {
    return "<sip:p2p-" + peer.hex() + ".invalid;lr;ob>";
  }
  /// Peers route a request for p2p-<Node-ID> to that node, over the connection open to it: the
  /// far end's in-dialog requests find us by this Contact even where no flow token does.
  std::string contact() const {
    return "<sip:p2p-" + self_hex + "@" + own_host() + ";transport=tls" +
           (outbound() ? ";ob>" : ">");
  }
  void log(const std::string& text) {
    if (owner.options.log) owner.options.log("sip: " + text);
  }
  std::weak_ptr<state> weak() { return weak_from_this(); }

  bool is_our_domain(const std::string& target) const {
    auto u = sp::parse_uri(target);
    return u && u->is_sip() && lower(u->host) == lower(domain) && !u->user.empty();
  }

  // ---- time ----

  void arm() {
    if (stopped) return;
    std::optional<steady::time_point> next = tl.next_deadline();
    auto take = [&](const std::optional<steady::time_point>& t) {
      if (t && (!next || *t < *next)) next = t;
    };
    for (const auto& [token, c] : pending_connects) take(c.deadline);
    if (reg) {
      if (!reg->waiters.empty()) take(reg->waiters_deadline);
      take(reg->refresh_at);
      take(reg->ping_at);
      take(reg->pong_deadline);
    }
    take(reregister_at);
    if (!next || (armed_for && *armed_for == *next)) return;
    armed_for = next;
    timer.expires_at(*next);
    timer.async_wait([w = weak()](std::error_code ec) {
      if (ec) return;
      if (auto s = w.lock()) {
        s->armed_for.reset();
        s->on_timer();
      }
    });
  }

  void on_timer() {
    if (stopped) return;
    const auto now = steady::now();
    tl.on_timer(now);
    pump();
    std::vector<std::uint64_t> late;
    for (const auto& [token, c] : pending_connects) {
      if (c.deadline <= now) late.push_back(token);
    }
    for (const auto token : late) fail_connect(token, "no SIP connection within 10 s");
    if (reg) {
      if (reg->pong_deadline && *reg->pong_deadline <= now) {
        log("no keepalive pong from the peer: the flow is dead");
        reg->pong_deadline.reset();
        if (auto it = conns.find(reg->flow); it != conns.end()) it->second.stream->close();
      }
      if (reg->ping_at && *reg->ping_at <= now) {
        reg->ping_at.reset();
        if (write(reg->flow, "\r\n\r\n")) reg->pong_deadline = now + pong_timeout;
      }
      if (reg->refresh_at && *reg->refresh_at <= now) {
        reg->refresh_at.reset();
        do_register();
      }
      if (reg && !reg->in_progress && !reg->waiters.empty() && reg->waiters_deadline &&
          *reg->waiters_deadline <= now) {
        registered(owner.peer_node() ? fail(errc::timeout, "not registered in time")
                                     : fail(errc::no_peer, "no peer attached in time"));
      }
    }
    if (reregister_at && *reregister_at <= now) {
      reregister_at.reset();
      do_register();
    }
    arm();
  }

  // ---- connections ----

  bool write(std::uint64_t conn, std::string_view text) {
    auto it = conns.find(conn);
    if (it == conns.end()) return false;
    return it->second.stream->write(pr::bytes(text.begin(), text.end())).has_value();
  }

  /// A connection for SIP to the node `route` ends at: an open one to that node, or a new one
  /// over AppAttach.
  void connect(std::vector<pr::destination> route, connected_fn done) {
    const auto* target = route.empty() ? nullptr : route.back().node();
    if (!target) return done(0, "the route does not end in a Node-ID");
    for (const auto& [id, c] : conns) {
      if (c.remote == *target) return done(id, {});
    }
    for (auto& [token, c] : pending_connects) {
      if (c.target == *target) {
        c.waiters.push_back(std::move(done));
        return;
      }
    }
    const auto token = next_token++;
    pending_connects[token] =
        connecting{*target, {std::move(done)}, steady::now() + connect_timeout};
    bool sent = false;
    owner.driver->with_node([&](node::node_engine& n, node::time_point now) {
      sent = n.app_attach().connect(
          route, sip_application, token,
          [w = weak(), token](std::optional<std::string> error, node::time_point) {
            if (!error) return;  // the connection follows (on_connection)
            if (auto s = w.lock()) s->fail_connect(token, "AppAttach: " + *error);
          },
          now);
    });
    if (!sent) return fail_connect(token, "no route into the overlay");
    arm();
  }

  void fail_connect(std::uint64_t token, std::string error) {
    auto it = pending_connects.find(token);
    if (it == pending_connects.end()) return;
    auto waiters = std::move(it->second.waiters);
    pending_connects.erase(it);
    log("connection failed: " + error);
    for (auto& w : waiters) w(0, error);
  }

  void on_connection(node::app_connection c) {
    if (stopped) {
      c.stream->close();
      return;
    }
    const auto id = next_conn++;
    const bool accepted = c.token == 0;
    conns.emplace(id, connection{c.stream, c.remote,
                                 sp::stream_parser({}, accepted ? sp::stream_parser::side::server
                                                                : sp::stream_parser::side::client),
                                 accepted});
    log(std::string(accepted ? "accepted" : "opened") + " a SIP connection with " +
        c.remote.hex().substr(0, 8));
    asio::co_spawn(owner.io, read_loop(weak(), id, c.stream), asio::detached);
    if (auto it = pending_connects.find(c.token); !accepted && it != pending_connects.end()) {
      auto waiters = std::move(it->second.waiters);
      pending_connects.erase(it);
      for (auto& w : waiters) w(id, {});
    }
  }

  static asio::awaitable<void> read_loop(std::weak_ptr<state> w, std::uint64_t id,
                                         std::shared_ptr<transport::tls_stream> stream) {
    for (;;) {
      auto got = co_await stream->read_some();
      auto s = w.lock();
      if (!s) co_return;
      if (!got) {
        s->connection_closed(id, got.error().message());
        co_return;
      }
      if (!s->on_bytes(id, *got)) co_return;
    }
  }

  /// False when the connection is gone (closed after a parse error).
  bool on_bytes(std::uint64_t id, const pr::bytes& data) {
    auto it = conns.find(id);
    if (it == conns.end() || stopped) return false;
    auto events = it->second.parser.feed(
        std::span<const std::byte>(reinterpret_cast<const std::byte*>(data.data()), data.size()));
    for (auto& ev : events) {
      if (auto* m = std::get_if<sp::message>(&ev)) {
        on_message(id, std::move(*m));
      } else if (auto* k = std::get_if<sp::keepalive>(&ev)) {
        if (k->ping) {
          write(id, "\r\n");
        } else if (reg && reg->flow == id && reg->pong_deadline) {
          reg->pong_deadline.reset();
          if (reg->flow_timer) reg->ping_at = steady::now() + keepalive_interval();
        }
      } else if (auto* e = std::get_if<sp::parse_error>(&ev)) {
        log("malformed SIP from " + it->second.remote.hex().substr(0, 8) + ": " + e->reason);
        it->second.stream->close();
        connection_closed(id, "malformed SIP");
        return false;
      }
      if (conns.find(id) == conns.end()) return false;
    }
    arm();
    return true;
  }

  std::chrono::milliseconds keepalive_interval() const {
    // RFC 5626 4.4.1: between 80% and 100% of the Flow-Timer.
    return std::chrono::milliseconds(std::max<std::uint32_t>(reg->flow_timer, 1) * 800);
  }

  void connection_closed(std::uint64_t id, const std::string& why) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    log("SIP connection with " + it->second.remote.hex().substr(0, 8) + " closed: " + why);
    conns.erase(it);
    for (auto& [call_id, d] : dialogs) {
      if (d.conn == id) d.conn = 0;
    }
    std::vector<sp::transaction_id> broken;
    for (const auto& [tx, op] : ops) {
      if (op->conn == id) broken.push_back(tx);
    }
    const auto now = steady::now();
    for (const auto tx : broken) tl.on_transport_error(tx, now);
    pump();
    if (reg && reg->flow == id && !stopped) {
      // RFC 5626 4.5: the flow failed; register again (through whichever peer we have then).
      reg->flow = 0;
      reg->ping_at.reset();
      reg->pong_deadline.reset();
      reg->registered = false;
      schedule_reregister();
    }
    arm();
  }

  void schedule_reregister() {
    // RFC 5626 4.5 backoff, bounded: 1, 2, 4 ... 30 s.
    const auto delay =
        std::chrono::seconds(std::min<unsigned>(30, 1u << std::min<unsigned>(reg->failures, 5)));
    reregister_at = steady::now() + (reg->failures == 0 ? std::chrono::seconds(0) : delay);
    arm();
  }

  // ---- the transaction layer ----

  void pump() {
    for (int round = 0; round < 1000; ++round) {
      auto actions = tl.take_actions();
      if (actions.empty()) return;
      for (auto& a : actions) {
        std::visit([this](auto& act) { handle(act); }, a);
      }
    }
  }

  void handle(sp::transaction_layer::send& s) {
    if (!write(s.target.flow, sp::serialize(s.msg)) && s.tx != 0) {
      tl.on_transport_error(s.tx, steady::now());
    }
  }
  void handle(sp::transaction_layer::request_received& r) {
    on_request(r.server_tx, std::move(r.request), r.source.flow, r.cancels);
  }
  void handle(sp::transaction_layer::ack_received& a) {
    if (auto id = sp::call_id(a.ack)) {
      if (auto it = dialogs.find(*id); it != dialogs.end()) it->second.confirmed = true;
    }
  }
  void handle(sp::transaction_layer::stray_response& r) {
    // A 2xx to an INVITE of ours after its transaction ended: the ACK was lost or the 2xx
    // comes from another fork; ACK it again (13.2.2.4).
    if (r.response.status >= 200 && r.response.status < 300) {
      if (auto cs = sp::cseq_of(r.response); cs && cs->method == "INVITE") {
        ack_2xx(r.response, r.source.flow);
      }
    }
  }
  void handle(sp::transaction_layer::response_received& r) {
    auto it = ops.find(r.client_tx);
    if (it == ops.end()) return;
    auto op = it->second;
    if (r.response.status < 200) {
      if (op->progress && r.response.status > 100) {
        owner.dispatch([f = op->progress, resp = response_of(r.response)] { f(resp); });
      }
      return;
    }
    if (op->finished) {
      // A further 2xx of a forked INVITE (RFC 6026 Accepted): take the call no further.
      if (r.response.status < 300 && op->request.method == "INVITE") {
        ack_2xx(r.response, op->conn);
        send_bye_for(r.response, op->conn);
      }
      return;
    }
    final_response(op, r.response);
  }
  void handle(sp::transaction_layer::timed_out& t) { fail_attempt(t.tx, 408, "Request Timeout"); }
  void handle(sp::transaction_layer::transport_error& t) {
    fail_attempt(t.tx, 503, "Connection Lost");
  }
  void handle(sp::transaction_layer::terminated& t) {
    auto it = ops.find(t.tx);
    if (it == ops.end()) return;
    if (it->second->finished || it->second->tx != t.tx) ops.erase(it);
  }

  void fail_attempt(sp::transaction_id tx, int status, std::string reason) {
    auto it = ops.find(tx);
    if (it == ops.end()) return;
    auto op = it->second;
    ops.erase(it);
    if (op->finished || op->tx != tx) return;
    auto failure = local_response(status, std::move(reason));
    failure.call_id = sp::call_id(op->request).value_or("");
    attempt_failed(op, std::move(failure));
  }

  // ---- outgoing requests ----

  sp::message new_request(std::string method, const std::string& target, const std::string& call_id,
                          std::uint32_t cseq) {
    sp::message m;
    m.method = std::move(method);
    m.request_uri = target;
    m.add("Max-Forwards", "70");
    m.add("From", "<" + from_uri() + ">;tag=" + random_token());
    m.add("To", "<" + target + ">");
    m.add("Call-ID", call_id);
    m.add("CSeq", std::to_string(cseq) + " " + m.method);
    return m;
  }

  void set_body(sp::message& m, const std::string& type, std::string body) {
    if (!body.empty() || !type.empty()) {
      if (!type.empty()) m.set("Content-Type", type);
    }
    m.body = std::move(body);
    m.set("Content-Length", std::to_string(m.body.size()));
  }

  /// Starts `op`: through the peer (outbound mode, targets outside the overlay), or binding by
  /// binding of the resolved target (direct mode).
  void start(std::shared_ptr<request_op> op) {
    const auto target = op->request.request_uri;
    if (outbound() || !is_our_domain(target)) {
      op->via_peer = true;
      const auto peer = owner.peer_node();
      if (!peer) return finish(op, fail(errc::no_peer, "not attached to a peer"));
      op->route = {pr::to_destination(*peer)};
      op->request.add("Route", outbound_route(*peer));
      connect(op->route, [w = weak(), op](std::uint64_t conn, std::string error) {
        auto s = w.lock();
        if (!s) return;
        if (conn == 0) {
          return s->finish(op,
                           fail(errc::overlay_error, "no SIP connection to the peer: " + error));
        }
        s->send_attempt(op, conn);
      });
      return;
    }
    const auto aor = sp::parse_uri(target);
    resolve_on_io(owner, aor->user + "@" + aor->host,
                  [w = weak(), op](result<std::vector<sip_binding>> found) {
                    auto s = w.lock();
                    if (!s) return;
                    if (!found) return s->finish(op, found.error());
                    for (auto& b : *found) {
                      // Our own registration is not a way to reach someone else.
                      if (b.contact.route.empty() || b.contact.route.back() == s->self_hex)
                        continue;
                      op->bindings.push_back(std::move(b));
                    }
                    if (op->bindings.empty()) {
                      return s->finish(op, local_response(404, "Not Found (nobody registered)"));
                    }
                    s->try_next_binding(op);
                  });
  }

  void try_next_binding(std::shared_ptr<request_op> op) {
    if (op->finished) return;
    if (op->next_binding >= op->bindings.size()) {
      return finish(op, op->last_failure.value_or(local_response(480, {})));
    }
    const auto& b = op->bindings[op->next_binding++];
    std::vector<pr::destination> route;
    for (const auto& hop : b.contact.route) {
      const auto id = pr::node_id::from_hex(hop);
      if (!id) return try_next_binding(op);
      route.push_back(pr::to_destination(*id));
    }
    op->route = route;
    connect(std::move(route), [w = weak(), op](std::uint64_t conn, std::string error) {
      auto s = w.lock();
      if (!s) return;
      if (conn == 0) {
        s->attempt_failed(op, local_response(503, "Cannot Reach The Binding: " + error));
        return;
      }
      s->send_attempt(op, conn);
    });
  }

  void attempt_failed(std::shared_ptr<request_op> op, sip_response failure) {
    if (op->finished) return;
    if (failure.call_id.empty()) failure.call_id = sp::call_id(op->request).value_or("");
    if (!op->via_peer && op->next_binding < op->bindings.size() &&
        worth_another_binding(failure.status)) {
      op->last_failure = std::move(failure);
      return try_next_binding(op);
    }
    finish(op, std::move(failure));
  }

  void send_attempt(std::shared_ptr<request_op> op, std::uint64_t conn) {
    if (op->finished || stopped) return;
    auto m = op->request;
    sp::via v;
    v.protocol_name = "SIP";
    v.protocol_version = "2.0";
    v.transport = "TLS";
    v.host = own_host();
    v.params.push_back({"branch", sp::make_branch(rng.next_u64()), true, false});
    sp::push_via(m, v);
    if (owner.options.log) {
      std::string routes;
      for (const auto r : m.values("Route")) routes += " " + std::string(r);
      log("sending " + m.method + " " + m.request_uri + (routes.empty() ? "" : " via" + routes));
    }
    const auto tx = tl.start_client(std::move(m), {conn, true}, steady::now());
    if (tx == 0) return finish(op, fail(errc::invalid_argument, "the request cannot be sent"));
    op->conn = conn;
    op->tx = tx;
    ops[tx] = op;
    if (op->request.method == "INVITE") {
      if (auto id = sp::call_id(op->request); id && dialogs.count(*id)) {
        dialogs[*id].invite_tx = tx;
        dialogs[*id].conn = conn;
      }
    }
    pump();
    arm();
  }

  void final_response(std::shared_ptr<request_op> op, const sp::message& response) {
    if (owner.options.log) {
      std::string rr;
      for (const auto r : response.values("Record-Route")) rr += " " + std::string(r);
      log(std::to_string(response.status) + " for " + op->request.method +
          (rr.empty() ? "" : ", Record-Route" + rr));
    }
    if (response.status >= 300) {
      attempt_failed(op, response_of(response));
      return;
    }
    op->finished = true;
    auto done = std::move(op->done);
    if (done) done(response_of(response), &response);
  }

  void finish(std::shared_ptr<request_op> op, result<sip_response> r) {
    if (op->finished) return;
    op->finished = true;
    auto done = std::move(op->done);
    if (done) done(std::move(r), nullptr);
  }

  // ---- dialogs (calls) ----

  void ack_2xx(const sp::message& response, std::uint64_t conn) {
    const auto id = sp::call_id(response);
    if (!id) return;
    const auto cs = sp::cseq_of(response);
    sp::message ack;
    ack.method = "ACK";
    ack.request_uri = remote_target_of(response).value_or(uri_text(sp::to(response)));
    sp::via v{"SIP", "2.0", "TLS", own_host(), std::nullopt, {}};
    v.params.push_back({"branch", sp::make_branch(rng.next_u64()), true, false});
    sp::push_via(ack, v);
    ack.add("Max-Forwards", "70");
    for (auto& r : uac_route_set(response)) ack.add("Route", std::move(r));
    if (const auto* f = response.find("From")) ack.add("From", f->value);
    if (const auto* t = response.find("To")) ack.add("To", t->value);
    ack.add("Call-ID", *id);
    ack.add("CSeq", std::to_string(cs ? cs->number : 1) + " ACK");
    ack.add("Content-Length", "0");
    write(conn, sp::serialize(ack));
  }

  /// Ends a dialog a stray 2xx set up (a second fork answered): ACK then BYE (RFC 3261 13.2.2.4).
  void send_bye_for(const sp::message& response, std::uint64_t conn) {
    const auto id = sp::call_id(response);
    const auto to = sp::to(response);
    const auto from = sp::from(response);
    if (!id || !to || !from) return;
    dialog d;
    d.call_id = *id;
    d.local_tag = from->tag().value_or("");
    d.remote_tag = to->tag().value_or("");
    d.local_uri = sp::to_string(from->address);
    d.remote_uri = sp::to_string(to->address);
    d.remote_target = remote_target_of(response).value_or("");
    d.route_set = uac_route_set(response);
    d.local_cseq = 2;
    d.conn = conn;
    send_in_dialog(d, "BYE", {});
  }

  void send_in_dialog(dialog& d, const std::string& method, client::callback<void> done) {
    sp::message m;
    m.method = method;
    m.request_uri = d.remote_target.empty() ? d.remote_uri : d.remote_target;
    m.add("Max-Forwards", "70");
    for (const auto& r : d.route_set) m.add("Route", r);
    m.add("From", "<" + d.local_uri + ">;tag=" + d.local_tag);
    m.add("To", "<" + d.remote_uri + ">" + (d.remote_tag.empty() ? "" : ";tag=" + d.remote_tag));
    m.add("Call-ID", d.call_id);
    m.add("CSeq", std::to_string(++d.local_cseq) + " " + method);
    m.add("Content-Length", "0");
    auto op = std::make_shared<request_op>();
    op->request = std::move(m);
    op->done = [done](result<sip_response> r, const sp::message*) {
      if (!done) return;
      if (!r) return done(r.error());
      done(ok{});
    };
    if (d.conn == 0) {
      return finish(op, fail(errc::overlay_error, "the call's connection is gone"));
    }
    send_attempt(op, d.conn);
  }

  void set_established(const std::string& call_id, bool on) {
    std::lock_guard lock(shared_mutex);
    if (on) {
      established.insert(call_id);
    } else {
      established.erase(call_id);
    }
  }

  // ---- incoming requests ----

  void respond(sp::transaction_id st, const sp::message& req, int status, std::string reason = {},
               std::optional<std::string> to_tag = std::nullopt,
               std::vector<std::pair<std::string, std::string>> extra = {}) {
    auto r = sp::make_response(req, status, reason, to_tag);
    for (auto& [n, v] : extra) r.add(n, std::move(v));
    if (!r.find("Content-Length")) r.add("Content-Length", "0");
    tl.respond(st, std::move(r), steady::now());
    pump();
  }

  /// `extra` after the request's Record-Route values, which a UAS copies into the responses that
  /// set up a dialog (RFC 3261 12.1.1): the proxies' flow tokens take later requests back.
  static std::vector<std::pair<std::string, std::string>> with_record_route(
      const sp::message& req, std::vector<std::pair<std::string, std::string>> extra) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto v : req.values("Record-Route"))
      out.emplace_back("Record-Route", std::string(v));
    for (auto& e : extra) out.push_back(std::move(e));
    return out;
  }

  sip_request info_of(const sp::message& m) const {
    sip_request i;
    i.method = m.method;
    i.request_uri = m.request_uri;
    i.from = uri_text(sp::from(m));
    i.to = uri_text(sp::to(m));
    i.call_id = sp::call_id(m).value_or("");
    if (const auto* ct = m.find("Content-Type")) i.content_type = ct->value;
    i.body = bytes(m.body.begin(), m.body.end());
    return i;
  }

  sip_request_handler current_handler() const {
    std::lock_guard lock(shared_mutex);
    return handler;
  }

  /// Shows the request to the handler (through the dispatcher); `answered` gets its answer back on
  /// the I/O thread. Without a handler: 480.
  void ask_handler(const sp::message& req, std::function<void(sip_response)> answered) {
    auto h = current_handler();
    if (!h) return answered(local_response(480, "Temporarily Unavailable"));
    owner.dispatch([h, info = info_of(req), w = weak(), answered = std::move(answered)]() mutable {
      sip_response answer;
      try {
        answer = h(info);
      } catch (...) {
        answer = local_response(500, "Server Internal Error");
      }
      auto s = w.lock();
      if (!s) return;
      asio::post(s->owner.io, [w, answered = std::move(answered), answer = std::move(answer)] {
        if (auto s2 = w.lock(); s2 && !s2->stopped) answered(answer);
      });
    });
  }

  void tell_handler(const sp::message& req) {
    if (auto h = current_handler()) {
      owner.dispatch([h, info = info_of(req)] {
        try {
          (void)h(info);
        } catch (...) {
        }
      });
    }
  }

  void on_message(std::uint64_t conn, sp::message m) {
    tl.on_message(m, {conn, true}, steady::now());
    pump();
  }

  void on_request(sp::transaction_id st, sp::message req, std::uint64_t conn,
                  std::optional<sp::transaction_id> cancels) {
    const auto call = sp::call_id(req).value_or("");
    const auto method = req.method;
    if (method == "CANCEL") {
      respond(st, req, 200);
      if (auto it = dialogs.find(call); it != dialogs.end() && !it->second.uac &&
                                        !it->second.confirmed && cancels &&
                                        it->second.invite_tx == *cancels) {
        auto invite = it->second.invite;
        respond(it->second.invite_tx, invite, 487, {}, it->second.local_tag);
        dialogs.erase(it);
        tell_handler(req);
      }
      return;
    }
    if (method == "BYE") {
      auto it = dialogs.find(call);
      if (it == dialogs.end()) return respond(st, req, 481);
      dialogs.erase(it);
      set_established(call, false);
      respond(st, req, 200);
      tell_handler(req);
      return;
    }
    if (method == "OPTIONS") {
      respond(st, req, 200, {}, std::nullopt,
              {{"Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE"}, {"Accept", "*/*"}});
      return;
    }
    const auto to = sp::to(req);
    if (method == "INVITE" && to && to->tag()) {
      // A re-INVITE (session refresh, hold): the session stays as it is.
      auto it = dialogs.find(call);
      if (it == dialogs.end()) return respond(st, req, 481);
      auto r = sp::make_response(req, 200, {}, std::nullopt);
      r.add("Contact", contact());
      if (!it->second.answer_body.empty()) r.add("Content-Type", it->second.answer_type);
      r.body = it->second.answer_body;
      r.add("Content-Length", std::to_string(r.body.size()));
      tl.respond(st, std::move(r), steady::now());
      pump();
      return;
    }
    if (method == "INVITE") {
      if (dialogs.size() >= max_calls) {
        // A flood of INVITEs must not grow the client without bound.
        return respond(st, req, 486, "Too Many Calls");
      }
      dialog d;
      d.uac = false;
      d.call_id = call;
      d.local_tag = random_token();
      const auto from = sp::from(req);
      d.remote_tag = from ? from->tag().value_or("") : "";
      d.remote_uri = uri_text(from);
      d.local_uri = uri_text(to);
      if (const auto c = sp::contacts(req); c && !c->contacts.empty()) {
        d.remote_target = sp::to_string(c->contacts.front().address);
      }
      if (const auto rr = sp::route_set(req, "Record-Route"); rr) {
        for (const auto& r : *rr) d.route_set.push_back(sp::to_string(r));
      }
      d.conn = conn;
      d.invite_tx = st;
      d.invite = req;
      const auto tag = d.local_tag;
      dialogs[call] = std::move(d);
      auto ringing = with_record_route(req, {{"Contact", contact()}});
      respond(st, req, 180, {}, tag, std::move(ringing));
      ask_handler(req, [w = weak(), st, call](sip_response answer) {
        if (auto s = w.lock()) s->answer_invite(st, call, std::move(answer));
      });
      return;
    }
    ask_handler(req, [w = weak(), st, req](sip_response answer) {
      auto s = w.lock();
      if (!s) return;
      auto r = sp::make_response(req, answer.status, answer.reason, s->random_token());
      if (!answer.body.empty()) {
        r.add("Content-Type", answer.content_type.empty() ? "text/plain" : answer.content_type);
      }
      r.body.assign(answer.body.begin(), answer.body.end());
      r.add("Content-Length", std::to_string(r.body.size()));
      s->tl.respond(st, std::move(r), steady::now());
      s->pump();
      s->arm();
    });
  }

  void answer_invite(sp::transaction_id st, const std::string& call, sip_response answer) {
    auto it = dialogs.find(call);
    if (it == dialogs.end() || it->second.uac || it->second.invite_tx != st ||
        it->second.confirmed) {
      return;  // cancelled, or hung up meanwhile
    }
    auto& d = it->second;
    const int status = answer.status < 200 || answer.status > 699 ? 500 : answer.status;
    auto r = sp::make_response(d.invite, status, answer.reason, d.local_tag);
    if (status < 300) {
      for (auto& [name, value] : with_record_route(d.invite, {})) r.add(name, std::move(value));
      r.add("Contact", contact());
      if (!answer.body.empty()) {
        r.add("Content-Type",
              answer.content_type.empty() ? "application/sdp" : answer.content_type);
      }
      r.body.assign(answer.body.begin(), answer.body.end());
      d.answer_type = answer.content_type;
      d.answer_body = r.body;
    }
    r.add("Content-Length", std::to_string(r.body.size()));
    tl.respond(st, std::move(r), steady::now());
    if (status < 300) {
      d.confirmed = true;  // the call is up once we answered; the ACK only confirms it
      d.invite = {};
      set_established(call, true);
    } else {
      dialogs.erase(it);
    }
    pump();
    arm();
  }

  // ---- registration ----

  void do_register() {
    if (!reg || reg->in_progress || stopped) return;
    const auto peer = owner.peer_node();
    if (!peer) return;  // on_links_changed starts it once attached
    reg->in_progress = true;
    if (!outbound()) {
      if (auto listening = listen(); !listening) return registered(listening.error());
      store_registration({}, *peer, reg->lifetime);
      return;
    }
    connect({pr::to_destination(*peer)}, [w = weak(), peer = *peer](std::uint64_t conn,
                                                                    std::string error) {
      auto s = w.lock();
      if (!s || !s->reg) return;
      if (conn == 0) {
        return s->registered(fail(errc::overlay_error, "no SIP flow to the peer: " + error));
      }
      s->send_register(conn, peer, s->reg->lifetime,
                       [w, conn, peer](result<sip_response> r, const sp::message* m) {
                         auto s2 = w.lock();
                         if (!s2 || !s2->reg) return;
                         if (!r) return s2->registered(r.error());
                         if (r->status >= 300) {
                           return s2->registered(fail(
                               r->status == 403 ? errc::forbidden : errc::overlay_error,
                               "REGISTER refused: " + std::to_string(r->status) + " " + r->reason));
                         }
                         s2->reg->flow = conn;
                         s2->reg->flow_timer = 0;
                         if (m) {
                           if (auto ft = sp::delta_seconds(*m, "Flow-Timer"); ft && *ft)
                             s2->reg->flow_timer = **ft;
                         }
                         if (s2->reg->flow_timer) {
                           s2->reg->ping_at = steady::now() + s2->keepalive_interval();
                         }
                         sip_contact via_peer;
                         via_peer.route = {peer.hex()};
                         s2->store_registration(std::move(via_peer), peer, s2->reg->lifetime);
                       });
    });
  }

  void send_register(std::uint64_t conn, const pr::node_id& peer, std::uint32_t expires,
                     std::function<void(result<sip_response>, const sp::message*)> done) {
    if (reg->call_id.empty()) reg->call_id = random_token() + "@" + own_host();
    auto m = new_request("REGISTER", "sip:" + domain, reg->call_id, ++reg->cseq);
    m.set("To", "<" + reg->aor + ">");
    m.add("Route", outbound_route(peer));
    m.add("Contact", contact() + ";+sip.instance=\"" + instance + "\";reg-id=1");
    m.add("Expires", std::to_string(expires));
    m.add("Supported", "outbound, path");
    m.add("Content-Length", "0");
    auto op = std::make_shared<request_op>();
    op->request = std::move(m);
    op->via_peer = true;
    op->done = std::move(done);
    send_attempt(op, conn);
  }

  /// The overlay's side: our SipRegistration (route through the peer to us, or to the peer).
  void store_registration(sip_contact contact, const pr::node_id& peer, std::uint32_t lifetime) {
    register_aor_on_io(owner, reg->aor, std::move(contact), lifetime,
                       [w = weak(), peer](result<std::uint64_t> stored) {
                         auto s = w.lock();
                         if (!s || !s->reg) return;
                         if (!stored) return s->registered(stored.error());
                         s->reg->peer = peer;
                         s->registered(ok{});
                       });
  }

  void registered(result<void> r) {
    if (!reg) return;
    reg->in_progress = false;
    const auto now = steady::now();
    if (r) {
      reg->registered = true;
      reg->failures = 0;
      // Refreshed at half its lifetime (RFC 3261 10.2.4 leaves the margin to the UA).
      reg->refresh_at = now + std::chrono::seconds(std::max<std::uint32_t>(reg->lifetime / 2, 1));
      log("registered " + reg->aor + " through " + reg->peer->hex().substr(0, 8));
    } else {
      ++reg->failures;
      log("registration of " + reg->aor + " failed: " + r.error().message);
      if (reg->registered || reg->waiters.empty()) schedule_reregister();
    }
    auto waiters = std::move(reg->waiters);
    reg->waiters.clear();
    if (!r && !reg->registered && !waiters.empty()) reg.reset();  // the first try failed
    for (auto& w : waiters) w(r);
    // The peer changed while we registered: again, through the new one.
    if (reg && r && owner.peer_node() && reg->peer != owner.peer_node()) do_register();
    arm();
  }

  result<void> listen() {
    std::string spec = owner.options.sip_listen;
    asio::ip::tcp::endpoint at;
    if (!spec.empty()) {
      auto a = pr::ip_address_port::parse(spec);
      if (!a) return fail(errc::invalid_argument, "sip_listen '" + spec + "': expected IP:PORT");
      std::error_code ec;
      const auto text = a->to_string();
      const auto colon = text.rfind(':');
      auto host = text.substr(0, colon);
      if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
      at = asio::ip::tcp::endpoint(asio::ip::make_address(host, ec), a->port());
      if (ec) return fail(errc::invalid_argument, "sip_listen '" + spec + "': " + ec.message());
    } else {
      // The address this host uses toward the peer: reachable by it and, usually, by others.
      const auto peer = owner.attached_peer_address();
      if (!peer) return fail(errc::no_peer, "not attached to a peer");
      asio::ip::udp::socket probe(owner.io);
      std::error_code ec;
      probe.connect(asio::ip::udp::endpoint(peer->address(), peer->port()), ec);
      if (ec) return fail(errc::invalid_argument, "no local address toward the peer");
      at = asio::ip::tcp::endpoint(probe.local_endpoint(ec).address(), 0);
    }
    auto bound = owner.driver->listen_application(sip_application, at);
    if (!bound) return fail(errc::invalid_argument, bound.error().message);
    return ok{};
  }

  void unregister(client::callback<void> done) {
    if (!reg) return done(fail(errc::not_found, "not registered"));
    const auto aor = reg->aor;
    const auto flow = reg->flow;
    const auto peer = reg->peer;
    const bool was_outbound = outbound() && flow != 0 && peer;
    auto waiters = std::move(reg->waiters);
    reg.reset();
    reregister_at.reset();
    for (auto& w : waiters) w(fail(errc::stopped, "unregistered meanwhile"));
    auto tombstone = [w = weak(), aor, done](auto&&...) {
      auto s = w.lock();
      if (!s) return done(fail(errc::stopped, "the client was stopped"));
      unregister_aor_on_io(s->owner, aor, [done](result<std::uint64_t> r) {
        if (!r) return done(r.error());
        done(ok{});
      });
    };
    if (!was_outbound || !conns.count(flow)) return tombstone();
    // RFC 3261 10.2.2 (Expires 0) on the flow first, whatever it answers.
    registration r;
    r.aor = aor;
    reg = r;
    send_register(flow, *peer, 0,
                  [w = weak(), tombstone](result<sip_response>, const sp::message*) {
                    if (auto s = w.lock()) s->reg.reset();
                    tombstone();
                  });
    reg->in_progress = true;  // not to be refreshed while the un-REGISTER runs
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    timer.cancel();
    const auto stopped_error = fail(errc::stopped, "the client was stopped");
    for (auto& [token, c] : pending_connects) {
      for (auto& w : c.waiters) w(0, "stopped");
    }
    pending_connects.clear();
    auto all = std::move(ops);
    ops.clear();
    for (auto& [tx, op] : all) finish(op, stopped_error);
    if (reg) {
      auto waiters = std::move(reg->waiters);
      reg.reset();
      for (auto& w : waiters) w(stopped_error);
    }
    for (auto& [id, c] : conns) c.stream->close();
    conns.clear();
    dialogs.clear();
    std::lock_guard lock(shared_mutex);
    established.clear();
  }
};

sip_agent::sip_agent(client::impl& owner) : s_(std::make_shared<state>(owner)) {}
sip_agent::~sip_agent() = default;

void sip_agent::on_connection(node::app_connection c) {
  s_->on_connection(std::move(c));
}

void sip_agent::on_unreachable(const std::string& why) {
  auto& s = *s_;
  if (!s.reg || s.stopped || s.reg->in_progress || s.reg->waiters.empty()) return;
  s.registered(fail(errc::no_peer, why));
}

void sip_agent::on_links_changed() {
  auto& s = *s_;
  if (!s.reg || s.stopped) return;
  const auto peer = s.owner.peer_node();
  if (!peer) return;
  if (!s.reg->in_progress && (!s.reg->registered || s.reg->peer != peer)) {
    s.log("attached to " + peer->hex().substr(0, 8) + ": registering " + s.reg->aor + " again");
    s.reg->failures = 0;
    s.do_register();
  }
}

void sip_agent::stop() {
  s_->stop();
}

void sip_agent::sip_register(std::string aor, std::uint32_t lifetime, client::callback<void> done) {
  auto& s = *s_;
  if (s.stopped) return done(fail(errc::stopped, "the client was stopped"));
  const auto uri = sp::parse_uri(with_scheme(aor));
  if (aor.empty() || !uri || !uri->is_sip() || uri->user.empty()) {
    return done(fail(errc::invalid_argument, "'" + aor + "' is not a SIP AOR (user@domain)"));
  }
  if (lifetime == 0) return done(fail(errc::invalid_argument, "a lifetime of 0 s"));
  const auto canonical = "sip:" + uri->user + "@" + uri->host;
  if (s.reg && s.reg->aor != canonical) {
    return done(fail(errc::invalid_argument,
                     "already registered as " + s.reg->aor + "; sip_unregister first"));
  }
  if (!s.reg) {
    state::registration r;
    r.aor = canonical;
    s.reg = r;
  }
  s.reg->lifetime = lifetime;
  if (s.reg->waiters.empty()) {
    s.reg->waiters_deadline = steady::now() + s.owner.options.operation_timeout;
  }
  s.reg->waiters.push_back(std::move(done));
  s.arm();
  if (!s.reg->in_progress) s.do_register();
  if (!s.reg->in_progress) {
    if (auto why = s.owner.unreachable()) {
      s.registered(fail(errc::no_peer, *why));
      return;
    }
  }
  // Not attached yet: on_links_changed starts it (the waiter's operation_timeout is the
  // caller's; see client::sip_register).
}

void sip_agent::sip_unregister(client::callback<void> done) {
  s_->unregister(std::move(done));
}

void sip_agent::send_message(std::string to, bytes body, std::string content_type,
                             client::callback<sip_response> done) {
  auto& s = *s_;
  const auto target = with_scheme(to);
  if (to.empty() || !sp::parse_uri(target)) {
    return done(fail(errc::invalid_argument, "'" + to + "' is not a SIP URI or AOR"));
  }
  const auto call_id = s.random_token() + "@" + s.own_host();
  auto op = std::make_shared<state::request_op>();
  op->request = s.new_request("MESSAGE", target, call_id, 1);
  s.set_body(op->request, content_type.empty() ? "text/plain" : content_type,
             std::string(body.begin(), body.end()));
  op->done = [done](result<sip_response> r, const sp::message*) { done(std::move(r)); };
  s.start(std::move(op));
}

void sip_agent::call(std::string to, call_options options, client::callback<sip_response> done) {
  auto& s = *s_;
  const auto target = with_scheme(to);
  if (to.empty() || !sp::parse_uri(target)) {
    return done(fail(errc::invalid_argument, "'" + to + "' is not a SIP URI or AOR"));
  }
  auto call_id = options.call_id.empty() ? s.random_token() + "@" + s.own_host() : options.call_id;
  if (s.dialogs.count(call_id)) {
    return done(fail(errc::invalid_argument, "a call " + call_id + " exists already"));
  }
  auto op = std::make_shared<state::request_op>();
  op->request = s.new_request("INVITE", target, call_id, 1);
  op->request.add("Contact", s.contact());
  op->request.add("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE");
  s.set_body(op->request, options.offer.empty() ? "" : options.content_type,
             std::string(options.offer.begin(), options.offer.end()));
  op->progress = std::move(options.progress);
  state::dialog d;
  d.uac = true;
  d.call_id = call_id;
  d.local_tag = sp::from(op->request)->tag().value_or("");
  d.local_uri = s.from_uri();
  d.remote_uri = target;
  s.dialogs[call_id] = std::move(d);
  op->done = [w = std::weak_ptr<state>(s_), call_id, done](result<sip_response> r,
                                                           const sp::message* m) {
    auto st = w.lock();
    if (!st) return done(std::move(r));
    auto it = st->dialogs.find(call_id);
    if (r && r->status < 300 && m && it != st->dialogs.end()) {
      auto& dl = it->second;
      dl.remote_tag = sp::to(*m) ? sp::to(*m)->tag().value_or("") : "";
      dl.remote_target = remote_target_of(*m).value_or("");
      dl.route_set = uac_route_set(*m);
      dl.confirmed = true;
      st->ack_2xx(*m, dl.conn);
      st->set_established(call_id, true);
    } else if (it != st->dialogs.end()) {
      st->dialogs.erase(it);
    }
    done(std::move(r));
  };
  s.start(std::move(op));
}

void sip_agent::hang_up(std::string call_id, client::callback<void> done) {
  auto& s = *s_;
  auto it = s.dialogs.find(call_id);
  if (it == s.dialogs.end()) return done(fail(errc::not_found, "no call " + call_id));
  auto& d = it->second;
  if (d.uac && !d.confirmed) {
    // Still ringing: CANCEL (9.1); call() then ends with 487. Before the INVITE went out the
    // call is only forgotten (call() ends with its own result).
    if (d.invite_tx != 0) s.tl.cancel(d.invite_tx, steady::now());
    s.pump();
    s.arm();
    return done(ok{});
  }
  if (!d.uac && !d.confirmed) {
    // Ringing here: decline it.
    auto invite = d.invite;
    const auto st = d.invite_tx;
    const auto tag = d.local_tag;
    s.dialogs.erase(it);
    s.respond(st, invite, 603, "Decline", tag);
    return done(ok{});
  }
  auto dl = std::move(d);
  s.dialogs.erase(it);
  s.set_established(call_id, false);
  s.send_in_dialog(dl, "BYE", std::move(done));
}

void sip_agent::set_handler(sip_request_handler handler) {
  std::lock_guard lock(s_->shared_mutex);
  s_->handler = std::move(handler);
}

std::vector<std::string> sip_agent::calls() const {
  std::lock_guard lock(s_->shared_mutex);
  return {s_->established.begin(), s_->established.end()};
}

// ---- the public members ----

namespace {

template <class T, class F>
void on_agent(client::impl& p, client::callback<T> done, bool direct, F&& f) {
  p.on_io(done, direct, [done, direct, f = std::forward<F>(f)](client::impl& self) mutable {
    f(self.sip(),
      [&self, done, direct](result<T> r) { self.deliver_result<T>(done, std::move(r), direct); });
  });
}

void send_message_async_on(client::impl& p, std::string to, bytes body, std::string content_type,
                           client::client::callback<sip_response> done, bool direct) {
  on_agent<sip_response>(
      p, std::move(done), direct,
      [to = std::move(to), body = std::move(body), type = std::move(content_type)](
          sip_agent& a, client::callback<sip_response> d) mutable {
        a.send_message(to, std::move(body), type, std::move(d));
      });
}

}  // namespace

result<void> client::sip_register(std::string_view aor, std::uint32_t lifetime_seconds) {
  return blocking<void>(*impl_, [&](callback<void> done) {
    on_agent<void>(*impl_, std::move(done), true,
                   [aor = std::string(aor), lifetime_seconds](sip_agent& a, callback<void> d) {
                     a.sip_register(aor, lifetime_seconds, std::move(d));
                   });
  });
}

void client::sip_register_async(std::string_view aor, std::uint32_t lifetime_seconds,
                                callback<void> done) {
  on_agent<void>(*impl_, std::move(done), false,
                 [aor = std::string(aor), lifetime_seconds](sip_agent& a, callback<void> d) {
                   a.sip_register(aor, lifetime_seconds, std::move(d));
                 });
}

result<void> client::sip_unregister() {
  return blocking<void>(*impl_, [&](callback<void> done) {
    on_agent<void>(*impl_, std::move(done), true,
                   [](sip_agent& a, callback<void> d) { a.sip_unregister(std::move(d)); });
  });
}

void client::sip_unregister_async(callback<void> done) {
  on_agent<void>(*impl_, std::move(done), false,
                 [](sip_agent& a, callback<void> d) { a.sip_unregister(std::move(d)); });
}

void client::on_sip_request(sip_request_handler handler) {
  impl_->sip_handler(std::move(handler));
}

result<sip_response> client::send_message(std::string_view to, bytes body,
                                          std::string_view content_type) {
  return blocking<sip_response>(*impl_, [&](callback<sip_response> done) {
    send_message_async_on(*impl_, std::string(to), std::move(body), std::string(content_type),
                          std::move(done), true);
  });
}

void client::send_message_async(std::string_view to, bytes body, std::string_view content_type,
                                callback<sip_response> done) {
  send_message_async_on(*impl_, std::string(to), std::move(body), std::string(content_type),
                        std::move(done), false);
}

result<sip_response> client::call(std::string_view to, call_options options) {
  return blocking<sip_response>(*impl_, [&](callback<sip_response> done) {
    on_agent<sip_response>(*impl_, std::move(done), true,
                           [to = std::string(to), options = std::move(options)](
                               sip_agent& a, callback<sip_response> d) mutable {
                             a.call(to, std::move(options), std::move(d));
                           });
  });
}

void client::call_async(std::string_view to, call_options options, callback<sip_response> done) {
  on_agent<sip_response>(*impl_, std::move(done), false,
                         [to = std::string(to), options = std::move(options)](
                             sip_agent& a, callback<sip_response> d) mutable {
                           a.call(to, std::move(options), std::move(d));
                         });
}

result<void> client::hang_up(std::string_view call_id) {
  return blocking<void>(*impl_, [&](callback<void> done) {
    on_agent<void>(*impl_, std::move(done), true,
                   [id = std::string(call_id)](sip_agent& a, callback<void> d) {
                     a.hang_up(id, std::move(d));
                   });
  });
}

void client::hang_up_async(std::string_view call_id, callback<void> done) {
  on_agent<void>(
      *impl_, std::move(done), false,
      [id = std::string(call_id)](sip_agent& a, callback<void> d) { a.hang_up(id, std::move(d)); });
}

std::vector<std::string> client::calls() const {
  return impl_->sip_calls();
}

}  // namespace p2psip::client
