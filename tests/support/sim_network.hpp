#pragma once
// The deterministic in-memory network the core tests and the simulator drive peers
// (overlay_core) and clients (client_node) on: a virtual clock, seeded randomness, per-link FIFO
// delivery with latency and optional loss, a fake signer (the Node-ID travels in the
// SignerIdentity; no real crypto) and an in-memory store. Every node's actions are carried out
// here: send -> delivered to the other end of the link after the latency, open_link -> both ends
// get on_link_up, close_link -> on_link_down. A link closes as TLS over TCP does: what the closer
// sent before its close still arrives; what the other end sent that arrives after the close is
// not taken (never acked), and goes back to its sender with the sender's on_link_down, as the
// real link layer hands its unacknowledged frames back.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "p2psip/crypto/certificate.hpp"
#include "p2psip/node/client_node.hpp"
#include "p2psip/peer/overlay_core.hpp"
#include "test_identity.hpp"

namespace p2psip::sim {

namespace pr = protocol;
using peer::time_point;
using namespace std::chrono_literals;

/// splitmix64: small, seedable, good enough for jitter and transaction ids.
class seeded_random final : public peer::random_source {
 public:
  explicit seeded_random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next_u64() override {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next_u64() % n; }

 private:
  std::uint64_t state_;
};

/// One certificate shared by every fake signer (made once per test process): verified_signer
/// needs a certificate object; the Node-ID the fake vouches for is the one in the SignerIdentity.
inline const crypto::certificate& shared_test_certificate() {
  static const crypto::certificate cert = [] {
    const auto id = test_support::test_identity::generate(
        *pr::node_id::from_hex("0102030405060708090a0b0c0d0e0f10"));
    return *crypto::certificate::parse(id.certificate_der(),
                                       crypto::overlay_params{"example.org", 16});
  }();
  return cert;
}

/// Signs by writing the Node-ID into a cert_hash SignerIdentity; verifies by reading it back.
class fake_signer final : public peer::message_signer {
 public:
  explicit fake_signer(pr::node_id self) : self_(self) {}
  void sign(pr::message& m) override {
    m.security.signature.algorithm = {pr::hash_algorithm::sha256, pr::signature_algorithm::ecdsa};
    m.security.signature.identity.type =
        static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash);
    m.security.signature.identity.hash.hash_alg = pr::hash_algorithm::sha256;
    m.security.signature.identity.hash.hash = pr::to_bytes(self_.view());
    m.security.signature.value = pr::to_bytes("fake");
  }
  pr::result<crypto::verified_signer> verify(const pr::message& m) override {
    if (reject_all) return make_error_code(pr::reload_errc::forbidden);
    const auto& id = m.security.signature.identity;
    auto node = pr::node_id::from_bytes(id.hash.hash);
    if (!node || m.security.signature.value != pr::to_bytes("fake")) {
      return make_error_code(pr::reload_errc::forbidden);
    }
    return crypto::verified_signer{shared_test_certificate(), *node};
  }
  bool reject_all = false;

 private:
  pr::node_id self_;
};

/// The data store as a map Resource-ID -> last StoreReq kind data (enough to test hand-over and
/// replication through the core; the real semantics live in peer/storage). It keeps the two
/// rules of RFC 6940 7.4.1.1 that decide whether a copy lands: an original Store (replica 0) must
/// come from the resource's first writer (as under a USER- or NODE-MATCH policy) with a
/// generation counter of 0 or the current one; a replica Store must carry a non-zero counter,
/// which it sets.
class memory_storage final : public peer::storage_service {
 public:
  pr::message_body store(const pr::store_req& req, const crypto::verified_signer& requester,
                         std::span<const pr::generic_certificate>, node::wall_time, bool) override {
    const auto existing = data_.find(req.resource);
    if (req.replica_number == 0) {
      if (existing != data_.end() && existing->second.writer != requester.node) {
        ++refused;
        return pr::error_response{static_cast<std::uint16_t>(pr::reload_errc::forbidden),
                                  pr::to_bytes("the requester may not write here")};
      }
      for (const auto& k : req.kind_data) {
        const std::uint64_t current = existing == data_.end() ? 0 : existing->second.generation;
        if (k.generation_counter != 0 && k.generation_counter != current) {
          ++refused;
          return pr::error_response{
              static_cast<std::uint16_t>(pr::reload_errc::generation_counter_too_low), {}};
        }
      }
    } else {
      for (const auto& k : req.kind_data) {
        if (k.generation_counter == 0) {
          ++refused;
          return pr::error_response{static_cast<std::uint16_t>(pr::reload_errc::invalid_message),
                                    pr::to_bytes("a replica Store must not use generation 0")};
        }
      }
    }
    auto& rec = data_[req.resource];
    if (existing == data_.end()) rec.writer = requester.node;
    rec.req.resource = req.resource;
    rec.req.kind_data = req.kind_data;
    if (req.replica_number != 0) {
      ++replica_stores;
      for (const auto& k : req.kind_data) rec.generation = k.generation_counter;
    } else {
      ++rec.generation;
    }
    pr::store_ans ans;
    for (const auto& k : req.kind_data) ans.kind_responses.push_back({k.kind, rec.generation, {}});
    return ans;
  }
  pr::message_body fetch(const pr::fetch_req& req, node::wall_time) override {
    pr::fetch_ans ans;
    const auto it = data_.find(req.resource);
    if (it == data_.end()) return pr::error_response{3, pr::to_bytes("not found")};
    for (const auto& k : it->second.req.kind_data)
      ans.kind_responses.push_back({k.kind, 1, k.values, {}, false});
    return ans;
  }
  pr::message_body stat(const pr::stat_req&, node::wall_time) override { return pr::stat_ans{}; }
  pr::message_body find(const pr::find_req&, const pr::node_id&, const pr::node_id&,
                        node::wall_time) override {
    return pr::find_ans{};
  }
  std::vector<pr::store_req> export_range(const pr::node_id& after, const pr::node_id& up_to,
                                          node::wall_time) override {
    std::vector<pr::store_req> out;
    for (const auto& [r, e] : data_) {
      const auto p = r.as_ring_point();
      if (!p || !(after == up_to || pr::in_half_open_interval(*p, after, up_to))) continue;
      out.push_back(e.req);
      for (auto& k : out.back().kind_data) k.generation_counter = e.generation;
    }
    return out;
  }
  void drop_range(const pr::node_id& after, const pr::node_id& up_to) override {
    std::erase_if(data_, [&](const auto& e) {
      const auto p = e.first.as_ring_point();
      return p && pr::in_half_open_interval(*p, after, up_to);
    });
  }
  bool has(const pr::resource_id& r) const { return data_.count(r) != 0; }
  std::size_t size() const { return data_.size(); }
  std::size_t replica_stores = 0;
  std::size_t refused = 0;  ///< Stores answered with an error

 private:
  struct record {
    pr::store_req req;
    pr::node_id writer;  ///< requester of the first Store (original or copy)
    std::uint64_t generation = 0;
  };
  std::map<pr::resource_id, record> data_;
};

/// The outcome of an application request (sim_network::request), as the tests look at it.
struct delivery {
  node::outcome::kind what = node::outcome::kind::timeout;
  /// The answer as received; for a timeout, a made-up Error_Request_Timeout with the request's
  /// transaction id.
  pr::message msg;
  peer::link_id link;
};

/// A request addressed to a node for a message code the test records (record_requests()).
struct recorded_request {
  pr::message msg;
  peer::link_id link;
};

/// Answers requests of one message code with Error_Not_Found and records them: a usage the
/// tests can look into (hops a request took, who received it).
class recording_usage final : public node::request_handler {
 public:
  explicit recording_usage(node::message_transport& t) : transport_(t) {}
  void on_request(const node::inbound_request& r, time_point now) override {
    requests.push_back({r.message, r.link});
    transport_.send_error(r, pr::reload_errc::not_found, "recorded", now);
  }
  std::vector<recorded_request> requests;

 private:
  node::message_transport& transport_;
};

/// The network: nodes, links, an event queue on a virtual clock.
///
/// Built to run tens of thousands of peers: events sit in a binary heap of small keys (their
/// payload, the message bytes included, is moved in once and out once, never copied), each
/// node's next timer in a second heap (no scan of every node per step), and link and address
/// lookups are indexed. Events at the same time run in the order they were posted, timers due
/// at the same time in node order, and an event before a timer due at its time.
class sim_network {
 public:
  struct node {
    std::unique_ptr<fake_signer> signer;
    std::unique_ptr<memory_storage> storage;
    std::unique_ptr<seeded_random> rng;
    std::unique_ptr<p2psip::node::node_engine> engine;
    peer::overlay_core* core = nullptr;           ///< a peer (else null)
    p2psip::node::client_node* client = nullptr;  ///< a client (else null)
    std::unique_ptr<recording_usage> recorder;
    std::optional<peer::core_config> config;  ///< a peer's, kept for restart()
    pr::ip_address_port address;
    pr::node_id self;
    /// Runs (timers, messages). Set it through crash(), mute(), freeze() and thaw(), which keep
    /// the timer queue right.
    bool alive = true;
    bool mute = false;  ///< crashed without closing links: receives nothing, sends nothing
    int side = 0;       ///< network partition it is on (see partition())
    std::optional<time_point> deadline;  ///< engine->next_deadline() after the last call
    std::vector<delivery> delivered;
    std::vector<std::string> logs;
    bool joined() const { return core && core->joined(); }

   private:
    friend class sim_network;
    /// The deadline last put in the timer queue for this node (entries for others are stale).
    std::optional<time_point> timer_queued;
    /// The network's ids of the links this node is an end of, ascending.
    std::set<std::uint64_t> links;
  };

  /// What the nodes handed to the network (lost or not), since the start or reset_traffic().
  struct traffic_count {
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;
  };

  explicit sim_network(std::uint64_t seed = 1, std::chrono::milliseconds latency = 5ms,
                       std::chrono::milliseconds jitter = 5ms, double loss = 0.0)
      : rng_(seed), latency_(latency), jitter_(jitter), loss_(loss) {}

  time_point now() const { return now_; }
  /// The virtual clock's reading when the network was made.
  static time_point epoch() { return time_point{} + std::chrono::hours(24 * 365 * 50); }
  /// Probability that one message is lost (a link layer that gives up on it).
  void set_loss(double p) { loss_ = p; }
  std::size_t size() const { return nodes_.size(); }
  node& at(std::size_t i) { return *nodes_.at(i); }
  peer::overlay_core& core(std::size_t i) { return *nodes_.at(i)->core; }
  bool keep_logs = false;
  const traffic_count& traffic() const { return traffic_; }
  void reset_traffic() { traffic_ = {}; }
  /// Events (messages, link changes) and node timers run so far: the simulator's work.
  std::uint64_t steps() const { return steps_; }

  /// A config with test-friendly timers; tweak before add().
  static peer::core_config default_config(const pr::node_id& id, peer::node_role role) {
    peer::core_config c;
    c.self = id;
    c.role = role;
    c.overlay = 0x12345678;
    c.update_interval = 2000ms;
    c.finger_interval = 500ms;
    c.request_timeout = 3000ms;
    c.join_retry = 10000ms;
    c.link_linger = 3000ms;
    return c;
  }

  /// Adds a peer listening at a fresh address; bootstrap = node 0's address unless given.
  std::size_t add(peer::core_config cfg) { return add_node(std::move(cfg), false); }
  /// Adds a client (client_node) with cfg's Node-ID, timers and bootstrap list.
  std::size_t add_client(peer::core_config cfg) { return add_node(std::move(cfg), true); }
  /// Wall time that follows the virtual clock.
  p2psip::node::wall_clock_source wall() const {
    return [this] {
      return p2psip::node::wall_time{} +
             std::chrono::duration_cast<std::chrono::system_clock::duration>(
                 now_.time_since_epoch());
    };
  }
  /// Requests with `code` addressed to node i are recorded in its recorder (and answered
  /// Error_Not_Found) instead of going to the usage that serves them.
  recording_usage& record_requests(std::size_t i, std::uint16_t code) {
    auto& n = at(i);
    if (!n.recorder) n.recorder = std::make_unique<recording_usage>(n.engine->transport());
    n.engine->transport().handle(code, *n.recorder);
    return *n.recorder;
  }
  std::size_t add(const pr::node_id& id, peer::node_role role) {
    return add(default_config(id, role));
  }

  void start(std::size_t i) {
    at(i).engine->start(now_);
    drain(i);
  }

  /// Runs events and timers up to now + d.
  void run_for(std::chrono::milliseconds d) { run_until(now_ + d); }
  void run_until(time_point end) {
    for (;;) {
      drop_stale_timers();
      if (events_.empty() && timers_.empty()) break;
      const bool timer_first =
          !timers_.empty() && (events_.empty() || timers_.front().at < events_.front().at);
      const auto t = timer_first ? timers_.front().at : events_.front().at;
      if (t > end) break;
      if (t > now_) now_ = t;
      ++steps_;
      if (timer_first) {
        std::pop_heap(timers_.begin(), timers_.end(), later{});
        const auto i = timers_.back().node;
        timers_.pop_back();
        nodes_[i]->timer_queued.reset();  // drain() queues the next one, even at the same time
        nodes_[i]->engine->on_timer(now_);
        drain(i);
        continue;
      }
      std::pop_heap(events_.begin(), events_.end(), later{});
      const auto slot = events_.back().slot;
      events_.pop_back();
      event e = std::move(event_slots_[slot]);
      free_slots_.push_back(slot);
      run_event(std::move(e));
    }
    now_ = end;
  }

  /// An application request from node i; its outcome lands in at(i).delivered.
  pr::result<std::uint64_t> request(std::size_t i, std::vector<pr::destination> dest,
                                    const pr::message_body& body) {
    auto& n = at(i);
    auto txid = std::make_shared<std::uint64_t>(0);
    auto done = [this, i, txid](p2psip::node::outcome&& o, time_point) {
      delivery d;
      d.what = o.what;
      d.link = o.link;
      if (o.what == p2psip::node::outcome::kind::answer ||
          o.what == p2psip::node::outcome::kind::error) {
        d.msg = std::move(o.message);
      } else {
        d.msg.header.transaction_id = *txid;
        d.msg.contents.code = pr::codes::error;
        pr::error_response e{static_cast<std::uint16_t>(pr::reload_errc::request_timeout),
                             pr::to_bytes("no answer")};
        if (auto enc = pr::encode_body(e)) d.msg.contents.body = std::move(*enc);
      }
      nodes_[i]->delivered.push_back(std::move(d));
    };
    auto r = n.core ? n.core->send_request(std::move(dest), body, std::move(done), now_)
                    : n.client->send_request(std::move(dest), body, std::move(done), now_);
    if (r) *txid = *r;
    drain(i);
    return r;
  }

  /// The node closes every link (its peers see link loss) and stops.
  void crash(std::size_t i) {
    auto& n = at(i);
    n.alive = false;
    for (const auto id : std::exchange(n.links, {})) begin_close(id, i, now_ + latency_);
  }
  /// Starts crashed peer i again as a process restarted after kill -9 would: a new core with the
  /// same Node-ID, address and configuration (joining through its bootstrap peers), and the data
  /// its store held when it crashed (the data dir survives).
  void restart(std::size_t i) {
    auto& n = at(i);
    if (n.alive || !n.config) throw std::logic_error("restart: not a crashed peer");
    auto cfg = *n.config;
    cfg.role = peer::node_role::joining_peer;
    n.recorder.reset();
    n.rng = std::make_unique<seeded_random>(rng_.next_u64());
    n.signer = std::make_unique<fake_signer>(cfg.self);
    auto c = std::make_unique<peer::overlay_core>(cfg, *n.signer, n.storage.get(), *n.rng);
    n.core = c.get();
    n.engine = std::move(c);
    n.alive = true;
    n.mute = false;
    n.deadline.reset();
    n.timer_queued.reset();
    start(i);
  }
  /// The node stops answering but its links stay up (failure found by timeouts).
  void mute(std::size_t i) {
    at(i).alive = false;
    at(i).mute = true;
  }
  /// The node is suspended (a stopped process): no timers, every message to it lost, its links
  /// left up. thaw() lets it run again with the state it had.
  void freeze(std::size_t i) { at(i).alive = false; }
  void thaw(std::size_t i) {
    auto& n = at(i);
    n.alive = true;
    n.timer_queued.reset();  // its queued timer was dropped while it was frozen
    queue_timer(i);
  }
  /// Graceful leave, then the node's links close.
  void leave(std::size_t i) {
    at(i).engine->leave(now_);
    drain(i);
    run_for(200ms);
    crash(i);
  }

  /// Cuts the network in two: `cut` on one side, everyone else on the other. Messages between
  /// the sides are lost and links across cannot be opened; links already up stay up (as TCP
  /// connections do until something times out), so each side finds the other gone by its own
  /// liveness checks. A close is still seen by both ends (the transport's timeout, early).
  void partition(const std::vector<std::size_t>& cut) {
    for (auto& n : nodes_) n->side = 0;
    for (const auto i : cut) at(i).side = 1;
  }
  void heal() {
    for (auto& n : nodes_) n->side = 0;
  }

  /// Ids of live, joined peers in ring order.
  std::vector<pr::node_id> ring() const {
    std::vector<pr::node_id> ids;
    for (const auto& n : nodes_) {
      if (n->alive && n->joined()) ids.push_back(n->self);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  std::optional<std::size_t> index_of(const pr::node_id& id) const {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i]->self == id) return i;
    }
    return std::nullopt;
  }
  /// Every live peer's first successor and predecessor are its ring neighbors (and, when the ring
  /// is large enough, its whole successor/predecessor lists are right). Empty string when so.
  std::string ring_problems(std::size_t depth = 3) const {
    const auto ids = ring();
    std::string out;
    const auto n = ids.size();
    for (std::size_t k = 0; k < n; ++k) {
      const auto& c = *nodes_[*index_of(ids[k])]->core;
      const auto& succ = c.routes().successors();
      const auto& pred = c.routes().predecessors();
      const std::size_t want = std::min(depth, n - 1);
      for (std::size_t j = 0; j < want; ++j) {
        const auto& s = ids[(k + 1 + j) % n];
        const auto& p = ids[(k + n - 1 - j) % n];
        if (succ.size() <= j || succ[j] != s) {
          out += ids[k].hex().substr(0, 6) + ": successor " + std::to_string(j) + " wrong (want " +
                 s.hex().substr(0, 6) + ", have " +
                 (succ.size() > j ? succ[j].hex().substr(0, 6) : std::string("none")) + ")\n";
        }
        if (pred.size() <= j || pred[j] != p) {
          out += ids[k].hex().substr(0, 6) + ": predecessor " + std::to_string(j) + " wrong\n";
        }
      }
    }
    return out;
  }

  /// Links currently up between nodes a and b.
  bool linked(std::size_t a, std::size_t b) const {
    return std::any_of(nodes_.at(a)->links.begin(), nodes_.at(a)->links.end(),
                       [&](std::uint64_t id) {
                         const auto& l = links_.at(id);
                         return l.a == b || l.b == b;
                       });
  }
  /// Injects raw bytes as if `from` sent them on its link to `to`.
  void inject(std::size_t from, std::size_t to, pr::bytes data) {
    for (const auto id : nodes_.at(from)->links) {
      const auto& l = links_.at(id);
      if (l.a == from && l.b == to) return deliver(id, true, std::move(data));
      if (l.b == from && l.a == to) return deliver(id, false, std::move(data));
    }
  }
  /// Bytes each node sent, for assertions: (node, link, bytes).
  struct sent_record {
    std::size_t from;
    peer::link_id link;
    pr::bytes data;
  };
  std::vector<sent_record> sent;
  bool record_sent = false;

  /// Carries out node i's pending actions.
  void drain(std::size_t i) {
    auto& n = *nodes_[i];
    n.deadline = n.engine->next_deadline();
    if (n.deadline != n.timer_queued) queue_timer(i);
    for (auto& a : n.engine->take_actions()) {
      if (n.mute) continue;
      if (trace_) trace(i, a);
      if (auto* s = std::get_if<peer::send_action>(&a)) {
        if (record_sent) sent.push_back({i, s->link, s->data});
        send(i, s->link, std::move(s->data));
      } else if (auto* c = std::get_if<peer::close_link_action>(&a)) {
        close(i, c->link);
      } else if (auto* o = std::get_if<peer::open_link_action>(&a)) {
        open(i, *o);
      } else if (auto* l = std::get_if<peer::log_action>(&a)) {
        if (keep_logs) n.logs.push_back(l->text);
      }
    }
  }

 private:
  std::size_t add_node(peer::core_config cfg, bool client) {
    auto n = std::make_unique<node>();
    const auto index = nodes_.size();
    pr::ipv4_address_port a;
    a.address = {10, static_cast<std::uint8_t>(index >> 16), static_cast<std::uint8_t>(index >> 8),
                 static_cast<std::uint8_t>(index & 0xFF)};
    a.port = 6084;
    n->address.value = a;
    address_index_[n->address.to_string()] = index;
    n->self = cfg.self;
    cfg.listen_address = n->address;
    cfg.wall = wall();
    if (cfg.bootstrap.empty() && !nodes_.empty()) cfg.bootstrap.push_back(nodes_[0]->address);
    n->signer = std::make_unique<fake_signer>(cfg.self);
    n->rng = std::make_unique<seeded_random>(rng_.next_u64());
    // A client's stays empty (it stores nothing): tests count copies over every node.
    n->storage = std::make_unique<memory_storage>();
    if (client) {
      p2psip::node::client_config cc;
      cc.transport.self = cfg.self;
      cc.transport.overlay = cfg.overlay;
      cc.transport.configuration_sequence = cfg.configuration_sequence;
      cc.transport.limits = cfg.limits;
      cc.transport.request_timeout = cfg.request_timeout;
      cc.bootstrap = cfg.bootstrap;
      cc.wall = cfg.wall;
      auto c = std::make_unique<p2psip::node::client_node>(cc, *n->signer, *n->rng);
      n->client = c.get();
      n->engine = std::move(c);
    } else {
      n->config = cfg;
      auto c = std::make_unique<peer::overlay_core>(cfg, *n->signer, n->storage.get(), *n->rng);
      n->core = c.get();
      n->engine = std::move(c);
    }
    nodes_.push_back(std::move(n));
    return index;
  }

  void trace(std::size_t i, const peer::action& a) {
    const auto t =
        std::chrono::duration_cast<std::chrono::milliseconds>(now_.time_since_epoch()).count() %
        1000000;
    const auto who = nodes_[i]->self.hex().substr(0, 4);
    if (auto* s = std::get_if<peer::send_action>(&a)) {
      auto m = pr::decode_message(s->data, pr::limits{});
      std::string dest;
      if (m)
        for (const auto& d : m->header.destination_list)
          dest += (d.node() ? d.node()->hex().substr(0, 4) : std::string("R")) + ",";
      std::fprintf(
          stderr, "%6lld %zu/%s send L%llu %s tx=%llx dest=%s\n", static_cast<long long>(t), i,
          who.c_str(), static_cast<unsigned long long>(s->link.value),
          m ? std::string(pr::message_code_name(m->contents.code)).c_str() : "?",
          m ? static_cast<unsigned long long>(m->header.transaction_id) : 0ull, dest.c_str());
    } else if (auto* l = std::get_if<peer::log_action>(&a)) {
      std::fprintf(stderr, "%6lld %zu/%s log %s\n", static_cast<long long>(t), i, who.c_str(),
                   l->text.c_str());
    } else if (auto* o = std::get_if<peer::open_link_action>(&a)) {
      std::fprintf(stderr, "%6lld %zu/%s open %s\n", static_cast<long long>(t), i, who.c_str(),
                   o->address.to_string().c_str());
    } else if (auto* c = std::get_if<peer::close_link_action>(&a)) {
      std::fprintf(stderr, "%6lld %zu/%s close L%llu %s\n", static_cast<long long>(t), i,
                   who.c_str(), static_cast<unsigned long long>(c->link.value), c->reason.c_str());
    }
  }
  bool trace_ = std::getenv("P2PSIP_SIM_TRACE") != nullptr;

  struct link_rec {
    std::size_t a, b;
    peer::link_id la, lb;  // the id each end uses
    time_point fifo_ab{}, fifo_ba{};
    /// The end that closed the link (or crashed), until the other end learns it.
    std::optional<std::size_t> closed_by;
    /// What the other end sent that the closer did not take, for the other end's on_link_down.
    std::vector<pr::bytes> untaken;
  };
  /// Something that happens to a node at a set time.
  struct event {
    enum class kind : std::uint8_t {
      message,      ///< `data` arrives from `other` on network link `link`
      link_down,    ///< `node_link` went down (closed by the other end, or the other end crashed)
      link_failed,  ///< `node`'s link to `address` could not be opened
      link_up,      ///< network link `link` that `node` opened to `other` is up at both ends
    };
    kind what = kind::message;
    std::size_t node = 0;
    std::size_t other = 0;
    std::uint64_t link = 0;
    peer::link_id node_link;
    pr::ip_address_port address;
    pr::bytes data;
  };
  /// Heap entries: small, so that reordering the heap moves no payload.
  struct queued_event {
    time_point at;
    std::uint64_t seq;
    std::uint32_t slot;  ///< in event_slots_
  };
  struct queued_timer {
    time_point at;
    std::size_t node;
  };
  /// Orders std::*_heap as a min-heap: by time, then posting order (events) or node (timers).
  struct later {
    bool operator()(const queued_event& x, const queued_event& y) const {
      return x.at != y.at ? x.at > y.at : x.seq > y.seq;
    }
    bool operator()(const queued_timer& x, const queued_timer& y) const {
      return x.at != y.at ? x.at > y.at : x.node > y.node;
    }
  };

  void post(time_point at, event e) {
    std::uint32_t slot = 0;
    if (free_slots_.empty()) {
      slot = static_cast<std::uint32_t>(event_slots_.size());
      event_slots_.push_back(std::move(e));
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
      event_slots_[slot] = std::move(e);
    }
    events_.push_back(queued_event{at, seq_++, slot});
    std::push_heap(events_.begin(), events_.end(), later{});
  }
  void queue_timer(std::size_t i) {
    auto& n = *nodes_[i];
    n.timer_queued = n.deadline;
    if (!n.deadline) return;
    timers_.push_back(queued_timer{*n.deadline, i});
    std::push_heap(timers_.begin(), timers_.end(), later{});
  }
  /// Pops timer entries that no longer hold: the node's deadline moved, or it is not running (a
  /// frozen node's timer is queued again by thaw(), a restarted one's by start()).
  void drop_stale_timers() {
    while (!timers_.empty()) {
      const auto& top = timers_.front();
      auto& n = *nodes_[top.node];
      const bool current = n.timer_queued && *n.timer_queued == top.at;
      if (current && n.alive && n.deadline == n.timer_queued) return;
      if (current) n.timer_queued.reset();
      std::pop_heap(timers_.begin(), timers_.end(), later{});
      timers_.pop_back();
    }
  }

  void run_event(event e) {
    switch (e.what) {
      case event::kind::message: {
        const auto rec = links_.find(e.link);
        if (rec == links_.end()) return;
        if (rec->second.closed_by == e.node) {
          rec->second.untaken.push_back(std::move(e.data));  // arrived after its close
          return;
        }
        if (!nodes_[e.node]->alive) return;
        if (nodes_[e.other]->side != nodes_[e.node]->side) return;  // lost in the partition
        nodes_[e.node]->engine->on_message(e.node_link, e.data, now_);
        drain(e.node);
        return;
      }
      case event::kind::link_down: {
        std::vector<pr::bytes> untaken;
        if (const auto rec = links_.find(e.link); rec != links_.end()) {
          untaken = std::move(rec->second.untaken);
          links_.erase(rec);
        }
        if (!nodes_[e.node]->alive) return;
        nodes_[e.node]->engine->on_link_down(e.node_link, now_, std::move(untaken));
        drain(e.node);
        return;
      }
      case event::kind::link_failed: {
        if (!nodes_[e.node]->alive) return;
        nodes_[e.node]->engine->on_link_failed(e.address, now_);
        drain(e.node);
        return;
      }
      case event::kind::link_up: {
        const auto i = e.node, t = e.other;
        const peer::link_id la{e.link * 2}, lb{e.link * 2 + 1};
        if (!link_open(e.link)) return;
        if (!nodes_[i]->alive || !nodes_[t]->alive) return;
        nodes_[t]->engine->on_link_up(lb, nodes_[i]->self, now_, peer::link_origin::inbound);
        drain(t);
        if (!link_open(e.link)) return;
        nodes_[i]->engine->on_link_up(la, nodes_[t]->self, now_, peer::link_origin::outbound);
        drain(i);
        return;
      }
    }
  }

  /// Up, or on its way up, and closed by neither end.
  bool link_open(std::uint64_t id) const {
    const auto it = links_.find(id);
    return it != links_.end() && !it->second.closed_by;
  }

  std::chrono::milliseconds delay() {
    return latency_ +
           std::chrono::milliseconds(rng_.below(static_cast<std::uint64_t>(jitter_.count()) + 1));
  }

  // Link ids are unique per network, so one id names the link at both ends' view through la/lb.
  std::optional<std::uint64_t> find_link(std::size_t node_index, peer::link_id l, bool& from_a) {
    // Link ids are 2*id (opener's end) and 2*id+1 (acceptor's end).
    const auto id = l.value / 2;
    const auto it = links_.find(id);
    if (it == links_.end()) return std::nullopt;
    from_a = (l.value % 2) == 0;
    if ((from_a ? it->second.a : it->second.b) != node_index) return std::nullopt;
    return id;
  }

  void send(std::size_t i, peer::link_id l, pr::bytes data) {
    ++traffic_.messages;
    traffic_.bytes += data.size();
    bool from_a = false;
    const auto id = find_link(i, l, from_a);
    if (!id) return;
    if (auto& rec = links_.at(*id); rec.closed_by) {
      // The other end closed it and we do not know yet: it will not take this.
      if (*rec.closed_by != i) rec.untaken.push_back(std::move(data));
      return;
    }
    if (loss_ > 0.0 && static_cast<double>(rng_.below(1'000'000)) < loss_ * 1e6) return;
    deliver(*id, from_a, std::move(data));
  }
  void deliver(std::uint64_t id, bool from_a, pr::bytes data) {
    auto& rec = links_.at(id);
    auto& fifo = from_a ? rec.fifo_ab : rec.fifo_ba;
    const auto at = std::max(now_ + delay(), fifo);
    fifo = at;
    event e;
    e.what = event::kind::message;
    e.other = from_a ? rec.a : rec.b;
    e.node = from_a ? rec.b : rec.a;
    e.node_link = from_a ? rec.lb : rec.la;
    e.link = id;
    e.data = std::move(data);
    post(at, std::move(e));
  }
  void close(std::size_t i, peer::link_id l) {
    bool from_a = false;
    const auto id = find_link(i, l, from_a);
    if (!id || links_.at(*id).closed_by) return;
    nodes_[i]->links.erase(*id);
    begin_close(*id, i, now_ + delay());
    nodes_[i]->engine->on_link_down(l, now_);
    drain(i);
  }
  /// Node `closer` closed link `id` (or crashed): the other end learns it at `at`, after what
  /// the closer sent before (TLS's order), and gets back then what it sent that the closer did
  /// not take.
  void begin_close(std::uint64_t id, std::size_t closer, time_point at) {
    auto& rec = links_.at(id);
    rec.closed_by = closer;
    const bool closer_is_a = rec.a == closer;
    const auto other = closer_is_a ? rec.b : rec.a;
    nodes_[other]->links.erase(id);
    event e;
    e.what = event::kind::link_down;
    e.node = other;
    e.node_link = closer_is_a ? rec.lb : rec.la;
    e.link = id;
    // After every message the other end sent before: each arrives (untaken) or is dropped first.
    post(std::max({at, rec.fifo_ab, rec.fifo_ba}), std::move(e));
  }
  void open(std::size_t i, const peer::open_link_action& o) {
    std::optional<std::size_t> target;
    if (const auto it = address_index_.find(o.address.to_string());
        it != address_index_.end() && nodes_[it->second]->alive) {
      target = it->second;
    }
    if (!target || (o.expected && nodes_[*target]->self != *o.expected) || *target == i ||
        nodes_[*target]->side != nodes_[i]->side) {
      event e;
      e.what = event::kind::link_failed;
      e.node = i;
      e.address = o.address;
      post(now_ + delay(), std::move(e));
      return;
    }
    const auto id = next_link_++;
    const peer::link_id la{id * 2}, lb{id * 2 + 1};
    const auto up_at = now_ + 2 * delay();  // TCP + TLS handshakes
    links_[id] = link_rec{i, *target, la, lb, up_at, up_at, std::nullopt, {}};
    nodes_[i]->links.insert(id);
    nodes_[*target]->links.insert(id);
    event e;
    e.what = event::kind::link_up;
    e.node = i;
    e.other = *target;
    e.link = id;
    post(up_at, std::move(e));
  }

  seeded_random rng_;
  std::chrono::milliseconds latency_, jitter_;
  double loss_;
  time_point now_ = epoch();
  std::vector<std::unique_ptr<node>> nodes_;
  /// Listening address (as text) -> node.
  std::unordered_map<std::string, std::size_t> address_index_;
  std::unordered_map<std::uint64_t, link_rec> links_;
  std::uint64_t next_link_ = 1;
  std::uint64_t seq_ = 0;
  std::vector<queued_event> events_;  // a heap (later{})
  std::vector<event> event_slots_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<queued_timer> timers_;  // a heap (later{}): each node's deadline when queued
  traffic_count traffic_;
  std::uint64_t steps_ = 0;
};

/// A Node-ID with the given leading byte (rest filled from `fill`), for readable ring positions.
/// A StoreReq of one unsigned generic-kind dictionary entry {"k": value} at `r` (the sim's
/// signatures are faked, so nothing checks them).
inline pr::store_req generic_store(const pr::resource_id& r, std::string_view value = "v",
                                   std::uint32_t lifetime = 3600) {
  pr::store_req s;
  s.resource = r;
  pr::store_kind_data k;
  k.kind = pr::kinds::p2psip_generic;
  pr::stored_data d;
  d.storage_time = 1;
  d.lifetime = lifetime;
  d.value = pr::dictionary_entry{pr::to_bytes("k"), pr::data_value{true, pr::to_bytes(value)}};
  k.values.push_back(d);
  s.kind_data.push_back(k);
  return s;
}

inline pr::node_id id_at(std::uint8_t top, std::uint8_t fill = 0) {
  pr::bytes b(16, fill);
  b[0] = top;
  return *pr::node_id::from_bytes(b);
}

}  // namespace p2psip::sim
