#pragma once
// The deterministic in-memory network the core tests and the simulator drive peers
// (overlay_core) and clients (client_node) on: a virtual clock, seeded randomness, per-link FIFO
// delivery with latency and optional loss, a fake signer (the Node-ID travels in the
// SignerIdentity; no real crypto) and an in-memory store. Every node's actions are carried out
// here: send -> delivered to the other end of the link after the latency, open_link -> both ends
// get on_link_up, close_link -> on_link_down.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <stdexcept>
#include <string>
#include <string_view>
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
    bool alive = true;
    bool mute = false;  ///< crashed without closing links: receives nothing, sends nothing
    int side = 0;       ///< network partition it is on (see partition())
    std::optional<time_point> deadline;  ///< engine->next_deadline() after the last call
    std::vector<delivery> delivered;
    std::vector<std::string> logs;
    bool joined() const { return core && core->joined(); }
  };

  explicit sim_network(std::uint64_t seed = 1, std::chrono::milliseconds latency = 5ms,
                       std::chrono::milliseconds jitter = 5ms, double loss = 0.0)
      : rng_(seed), latency_(latency), jitter_(jitter), loss_(loss) {}

  time_point now() const { return now_; }
  /// Probability that one message is lost (a link layer that gives up on it).
  void set_loss(double p) { loss_ = p; }
  std::size_t size() const { return nodes_.size(); }
  node& at(std::size_t i) { return *nodes_.at(i); }
  peer::overlay_core& core(std::size_t i) { return *nodes_.at(i)->core; }
  bool keep_logs = false;

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
      std::optional<time_point> t;
      if (!events_.empty()) t = events_.top().at;
      std::optional<std::size_t> timer_node;
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (!nodes_[i]->alive) continue;
        const auto d = nodes_[i]->deadline;
        if (d && (!t || *d < *t)) {
          t = *d;
          timer_node = i;
        }
      }
      if (!t || *t > end) break;
      if (*t > now_) now_ = *t;
      if (timer_node) {
        nodes_[*timer_node]->engine->on_timer(now_);
        drain(*timer_node);
        continue;
      }
      auto e = events_.top();
      events_.pop();
      e.run();
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
    at(i).alive = false;
    for (auto it = links_.begin(); it != links_.end();) {
      if (it->second.a == i || it->second.b == i) {
        const auto other = it->second.a == i ? it->second.b : it->second.a;
        const auto other_link = it->second.a == i ? it->second.lb : it->second.la;
        it = links_.erase(it);
        post(now_ + latency_, [this, other, other_link] {
          if (!nodes_[other]->alive) return;
          nodes_[other]->engine->on_link_down(other_link, now_);
          drain(other);
        });
      } else {
        ++it;
      }
    }
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
    start(i);
  }
  /// The node stops answering but its links stay up (failure found by timeouts).
  void mute(std::size_t i) {
    at(i).alive = false;
    at(i).mute = true;
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
    return std::any_of(links_.begin(), links_.end(), [&](const auto& e) {
      return (e.second.a == a && e.second.b == b) || (e.second.a == b && e.second.b == a);
    });
  }
  /// Injects raw bytes as if `from` sent them on its link to `to`.
  void inject(std::size_t from, std::size_t to, pr::bytes data) {
    for (const auto& [id, l] : links_) {
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
    a.address = {10, 0, static_cast<std::uint8_t>(index >> 8),
                 static_cast<std::uint8_t>(index & 0xFF)};
    a.port = 6084;
    n->address.value = a;
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
  };
  struct event {
    time_point at;
    std::uint64_t seq;
    std::function<void()> run;
    bool operator>(const event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };

  void post(time_point at, std::function<void()> f) {
    events_.push(event{at, seq_++, std::move(f)});
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
    bool from_a = false;
    const auto id = find_link(i, l, from_a);
    if (!id) return;
    if (loss_ > 0.0 && static_cast<double>(rng_.below(1'000'000)) < loss_ * 1e6) return;
    deliver(*id, from_a, std::move(data));
  }
  void deliver(std::uint64_t id, bool from_a, pr::bytes data) {
    auto& rec = links_.at(id);
    auto& fifo = from_a ? rec.fifo_ab : rec.fifo_ba;
    const auto at = std::max(now_ + delay(), fifo);
    fifo = at;
    const auto from = from_a ? rec.a : rec.b;
    const auto to = from_a ? rec.b : rec.a;
    const auto to_link = from_a ? rec.lb : rec.la;
    post(at, [this, id, from, to, to_link, data = std::move(data)] {
      if (links_.count(id) == 0 || !nodes_[to]->alive) return;
      if (nodes_[from]->side != nodes_[to]->side) return;  // lost in the partition
      nodes_[to]->engine->on_message(to_link, data, now_);
      drain(to);
    });
  }
  void close(std::size_t i, peer::link_id l) {
    bool from_a = false;
    const auto id = find_link(i, l, from_a);
    if (!id) return;
    const auto rec = links_.at(*id);
    links_.erase(*id);
    const auto other = from_a ? rec.b : rec.a;
    const auto other_link = from_a ? rec.lb : rec.la;
    nodes_[i]->engine->on_link_down(l, now_);
    drain(i);
    post(now_ + delay(), [this, other, other_link] {
      if (!nodes_[other]->alive) return;
      nodes_[other]->engine->on_link_down(other_link, now_);
      drain(other);
    });
  }
  void open(std::size_t i, const peer::open_link_action& o) {
    std::optional<std::size_t> target;
    for (std::size_t k = 0; k < nodes_.size(); ++k) {
      if (nodes_[k]->address == o.address && nodes_[k]->alive) target = k;
    }
    const auto addr = o.address;
    if (!target || (o.expected && nodes_[*target]->self != *o.expected) || *target == i ||
        nodes_[*target]->side != nodes_[i]->side) {
      post(now_ + delay(), [this, i, addr] {
        if (!nodes_[i]->alive) return;
        nodes_[i]->engine->on_link_failed(addr, now_);
        drain(i);
      });
      return;
    }
    const auto id = next_link_++;
    const peer::link_id la{id * 2}, lb{id * 2 + 1};
    links_[id] = link_rec{i, *target, la, lb, {}, {}};
    const auto t = *target;
    const auto up_at = now_ + 2 * delay();  // TCP + TLS handshakes
    links_[id].fifo_ab = up_at;
    links_[id].fifo_ba = up_at;
    post(up_at, [this, id, i, t, la, lb] {
      if (links_.count(id) == 0) return;
      if (!nodes_[i]->alive || !nodes_[t]->alive) return;
      nodes_[t]->engine->on_link_up(lb, nodes_[i]->self, now_, peer::link_origin::inbound);
      drain(t);
      if (links_.count(id) == 0) return;
      nodes_[i]->engine->on_link_up(la, nodes_[t]->self, now_, peer::link_origin::outbound);
      drain(i);
    });
  }

  seeded_random rng_;
  std::chrono::milliseconds latency_, jitter_;
  double loss_;
  time_point now_ = time_point{} + std::chrono::hours(24 * 365 * 50);
  std::vector<std::unique_ptr<node>> nodes_;
  std::map<std::uint64_t, link_rec> links_;
  std::uint64_t next_link_ = 1;
  std::uint64_t seq_ = 0;
  std::priority_queue<event, std::vector<event>, std::greater<event>> events_;
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
