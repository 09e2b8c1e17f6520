// Core tests of the peer's SIP usage (p2psip::peer::sip_usage): the registrar, the stateful
// proxy and the redirect server driven through a fake sip_services and a fake clock, without
// sockets. The fake keeps what the usage sends per flow, answers Store and Fetch from an
// in-memory map (the StoreReq goes through the codec and its values' signatures are checked
// against the test CA, as a storing peer would), and completes AppAttach connections when the
// test says so. Certificates come from the test PKI at run time.

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "p2psip/crypto/access.hpp"
#include "p2psip/crypto/credentials.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/peer/sip_usage.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "p2psip/sip/digest.hpp"
#include "p2psip/sip/headers.hpp"
#include "p2psip/sip/message.hpp"
#include "p2psip/sip/transaction.hpp"
#include "p2psip/sip/uri.hpp"
#include "test_pki.hpp"

namespace {

namespace pr = p2psip::protocol;
namespace sip = p2psip::sip;
namespace crypto = p2psip::crypto;
namespace node = p2psip::node;
namespace peer = p2psip::peer;
namespace test_pki = p2psip::test_pki;

using namespace std::chrono_literals;

constexpr std::string_view domain = "example.org";
constexpr std::string_view alice_aor = "sip:alice@example.org";
constexpr std::string_view alice_password = "alice-secret";

// ---- the PKI: one CA; alice with four Node-IDs (devices), bob with two ----

struct user_pki {
  test_pki::test_ca ca;
  std::vector<pr::node_id> alice_ids;
  std::vector<pr::node_id> bob_ids;
  std::shared_ptr<const crypto::credentials> alice;
  std::shared_ptr<const crypto::credentials> bob;
};

std::shared_ptr<const crypto::credentials> user_credentials(const test_pki::test_ca& ca,
                                                            const std::vector<pr::node_id>& ids,
                                                            const std::string& user) {
  const auto id = test_pki::make_identity(ca, test_pki::spec_for(ids, user));
  return std::make_shared<const crypto::credentials>(crypto::credentials{id, id});
}

const user_pki& pki() {
  static const user_pki p = [] {
    user_pki u{test_pki::test_ca("p2psip sip usage test root"), {}, {}, nullptr, nullptr};
    for (std::uint8_t s = 10; s < 14; ++s) u.alice_ids.push_back(test_pki::test_node(s));
    for (std::uint8_t s = 20; s < 22; ++s) u.bob_ids.push_back(test_pki::test_node(s));
    u.alice = user_credentials(u.ca, u.alice_ids, "alice@example.org");
    u.bob = user_credentials(u.ca, u.bob_ids, "bob@example.org");
    return u;
  }();
  return p;
}

const pr::node_id& self_id() {
  static const pr::node_id id = test_pki::test_node(1);
  return id;
}
const pr::node_id& other_peer() {
  static const pr::node_id id = test_pki::test_node(2);
  return id;
}

peer::sip_account account_of(std::string aor, std::string username, std::string_view password,
                             std::shared_ptr<const crypto::credentials> credentials) {
  peer::sip_account a;
  a.aor = std::move(aor);
  a.username = std::move(username);
  a.ha1_md5 = sip::digest_ha1(sip::digest_algorithm::md5, a.username, domain, password);
  a.ha1_sha256 = sip::digest_ha1(sip::digest_algorithm::sha256, a.username, domain, password);
  a.credentials = std::move(credentials);
  return a;
}

pr::bytes key_of(const pr::node_id& id) {
  return pr::bytes(id.view().begin(), id.view().end());
}

pr::resource_id resource_of(std::string_view user_at_domain) {
  return pr::hash_resource_name(user_at_domain, self_id().size());
}

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(test_pki::test_now().time_since_epoch())
          .count());
}

// ---- the fake front end ----

/// One overlay request of the usage, as a storing peer would see it (the body went through the
/// codec).
struct overlay_call {
  pr::message_body body;
  std::string sign_as;  ///< the account's AOR, empty when the peer's own signer
  std::optional<pr::node_id> as_node;
  std::vector<pr::generic_certificate> certificates;
};

class fake_services final : public peer::sip_services {
 public:
  fake_services(const peer::sip_time_point& now, crypto::trust_store& trust)
      : now_(now), trust_(trust) {}

  // -- flows --
  std::uint64_t open_flow(std::string transport, std::string ip, std::uint16_t port,
                          std::optional<pr::node_id> peer = std::nullopt,
                          std::string peer_user = {}) {
    const auto id = next_flow_++;
    const bool reliable = transport != "UDP";
    flows_[id] = peer::sip_endpoint{id,
                                    std::move(transport),
                                    reliable,
                                    std::move(ip),
                                    port,
                                    std::move(peer),
                                    std::move(peer_user)};
    return id;
  }
  void close_flow(std::uint64_t flow) { flows_.erase(flow); }
  const peer::sip_endpoint& endpoint_of(std::uint64_t flow) const { return flows_.at(flow); }

  /// Everything sent on `flow` since the last take, in order.
  std::vector<sip::message> take(std::uint64_t flow) {
    auto out = std::move(sent_[flow]);
    sent_[flow].clear();
    return out;
  }
  const std::vector<sip::message>& sent_on(std::uint64_t flow) { return sent_[flow]; }

  // -- the overlay --
  std::vector<overlay_call> calls;  ///< every overlay request, in order
  /// When set and it returns an outcome, that is the answer instead of the storage's.
  std::function<std::optional<node::outcome>(const overlay_call&)> answer_with;
  /// Held requests are answered by settle() only when false.
  bool hold_overlay = false;

  /// Puts a value in the storage directly (another peer's Store).
  void put(const pr::resource_id& resource, pr::stored_data d,
           std::vector<pr::generic_certificate> certs) {
    auto& r = storage_[resource.hex()];
    r.values[std::get<pr::dictionary_entry>(d.value).key] = std::move(d);
    for (auto& c : certs) r.certificates.push_back(std::move(c));
  }
  /// The value stored under `key` at `resource`, if any.
  const pr::stored_data* stored(const pr::resource_id& resource, const pr::bytes& key) const {
    auto it = storage_.find(resource.hex());
    if (it == storage_.end()) return nullptr;
    auto v = it->second.values.find(key);
    return v == it->second.values.end() ? nullptr : &v->second;
  }

  std::size_t count_calls(std::uint16_t code) const {
    return static_cast<std::size_t>(std::count_if(
        calls.begin(), calls.end(), [code](const auto& c) { return pr::code_of(c.body) == code; }));
  }
  const pr::store_req* last_store() const {
    for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
      if (const auto* s = std::get_if<pr::store_req>(&it->body)) return s;
    }
    return nullptr;
  }
  const overlay_call* last_store_call() const {
    for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
      if (std::holds_alternative<pr::store_req>(it->body)) return &*it;
    }
    return nullptr;
  }

  // -- AppAttach connections --
  struct connect_call {
    std::vector<pr::destination> route;
    connect_done done;
  };
  std::vector<std::vector<pr::destination>> connect_routes;  ///< every connect_peer, in order
  /// Held connections are completed by settle() only when false (or by complete_connect).
  bool hold_connects = false;
  /// What settle() completes a connection with: a flow (0: failure) and the error.
  std::function<std::pair<std::uint64_t, std::string>(const std::vector<pr::destination>&)>
      connect_with;

  /// Answers one held overlay request or completes one held connection; false when none is left.
  bool settle_one() {
    if (!hold_overlay && !pending_overlay_.empty()) {
      auto p = std::move(pending_overlay_.front());
      pending_overlay_.pop_front();
      auto o = answer(calls[p.first]);
      p.second(std::move(o), now_);
      return true;
    }
    if (!hold_connects && !pending_connects_.empty()) {
      auto c = std::move(pending_connects_.front());
      pending_connects_.pop_front();
      auto [flow, error] = connect_with ? connect_with(c.route) : default_connect(c.route);
      c.done(flow, error, now_);
      return true;
    }
    return false;
  }
  std::size_t pending_connects() const { return pending_connects_.size(); }

  std::vector<std::string> logs;

  // -- sip_services --
  bool send(std::uint64_t flow, const sip::message& m) override {
    if (flows_.count(flow) == 0) return false;
    sent_[flow].push_back(m);
    return true;
  }
  std::uint64_t send_to(std::string_view transport, std::string_view host, std::uint16_t port,
                        const sip::message& m) override {
    const auto flow = flow_to(transport, host, port);
    if (flow != 0) send(flow, m);
    return flow;
  }
  std::uint64_t flow_to(std::string_view transport, std::string_view host,
                        std::uint16_t port) override {
    for (const auto& [id, e] : flows_) {
      if (!e.peer && e.transport == transport && e.remote_ip == host && e.remote_port == port)
        return id;
    }
    return open_flow(std::string(transport), std::string(host), port);
  }
  std::optional<peer::sip_endpoint> endpoint(std::uint64_t flow) const override {
    auto it = flows_.find(flow);
    if (it == flows_.end()) return std::nullopt;
    return it->second;
  }
  bool overlay_request(std::vector<pr::destination> destinations, pr::message_body body,
                       const peer::sip_account* sign_as, const pr::node_id* as_node,
                       std::vector<pr::generic_certificate> certificates,
                       node::completion done) override {
    (void)destinations;
    // Through the codec, as the storing peer receives it.
    auto encoded = pr::encode_body(body);
    REQUIRE(encoded);
    auto decoded = pr::decode_body(pr::code_of(body), *encoded, pr::limits{});
    REQUIRE(decoded);
    calls.push_back(overlay_call{std::move(*decoded), sign_as ? sign_as->aor : std::string(),
                                 as_node ? std::optional<pr::node_id>(*as_node) : std::nullopt,
                                 std::move(certificates)});
    pending_overlay_.emplace_back(calls.size() - 1, std::move(done));
    return true;
  }
  void connect_peer(const std::vector<pr::destination>& route, connect_done done) override {
    connect_routes.push_back(route);
    pending_connects_.push_back(connect_call{route, std::move(done)});
  }
  std::uint64_t wall_clock_ms() const override { return wall_ms(); }
  std::optional<peer::sip_account> account_by_username(std::string_view username) const override {
    for (const auto& a : accounts) {
      if (a.username == username) return a;
    }
    return std::nullopt;
  }

  void log(int level, std::string_view text) override {
    logs.push_back(std::to_string(level) + " " + std::string(text));
  }

  std::vector<peer::sip_account> accounts;

 private:
  struct resource_data {
    std::map<pr::bytes, pr::stored_data> values;
    std::vector<pr::generic_certificate> certificates;
  };

  static node::outcome error_outcome(pr::reload_errc code, std::string_view text) {
    node::outcome o;
    o.what = node::outcome::kind::error;
    o.error.error_code = static_cast<std::uint16_t>(code);
    o.error.error_info.assign(text.begin(), text.end());
    o.body = o.error;
    return o;
  }

  node::outcome answer(const overlay_call& call) {
    if (answer_with) {
      if (auto o = answer_with(call)) return std::move(*o);
    }
    const auto wall = test_pki::test_now();
    if (const auto* store = std::get_if<pr::store_req>(&call.body)) {
      auto& r = storage_[store->resource.hex()];
      pr::store_ans ans;
      for (const auto& kd : store->kind_data) {
        for (const auto& d : kd.values) {
          // A storing peer's checks (RFC 6940 7.4.1.1, RFC 7904 3.3: USER-NODE-MATCH).
          auto who = crypto::verify_stored_data(d, store->resource, kd.kind, call.certificates,
                                                trust_, wall);
          if (!who || !crypto::check_access(crypto::access_policy::user_node_match, *who,
                                            store->resource, d.value)) {
            return error_outcome(pr::reload_errc::forbidden, "signature or owner does not check");
          }
          const auto& key = std::get<pr::dictionary_entry>(d.value).key;
          r.values[key] = d;
        }
        ans.kind_responses.push_back(pr::store_kind_response{kd.kind, ++generation_, {}});
      }
      for (const auto& c : call.certificates) r.certificates.push_back(c);
      node::outcome o;
      o.what = node::outcome::kind::answer;
      o.body = std::move(ans);
      return o;
    }
    if (const auto* fetch = std::get_if<pr::fetch_req>(&call.body)) {
      pr::fetch_ans ans;
      node::outcome o;
      o.what = node::outcome::kind::answer;
      for (const auto& spec : fetch->specifiers) {
        pr::fetch_kind_response kr;
        kr.kind = spec.kind;
        kr.generation = generation_;
        if (auto it = storage_.find(fetch->resource.hex()); it != storage_.end()) {
          for (const auto& [key, d] : it->second.values) kr.values.push_back(d);
          o.message.security.certificates = it->second.certificates;
        }
        ans.kind_responses.push_back(std::move(kr));
      }
      o.body = std::move(ans);
      return o;
    }
    return error_outcome(pr::reload_errc::forbidden, "not a request the fake knows");
  }

  std::pair<std::uint64_t, std::string> default_connect(const std::vector<pr::destination>& route) {
    const auto* target = route.back().node();
    if (target == nullptr) return {0, "not a node"};
    for (const auto& [id, e] : flows_) {
      if (e.peer && *e.peer == *target) return {id, {}};
    }
    return {open_flow("TLS", "198.51.100.7", 40000, *target), {}};
  }

  const peer::sip_time_point& now_;
  crypto::trust_store& trust_;
  std::uint64_t next_flow_ = 1;
  std::map<std::uint64_t, peer::sip_endpoint> flows_;
  std::map<std::uint64_t, std::vector<sip::message>> sent_;
  std::map<std::string, resource_data> storage_;
  std::deque<std::pair<std::size_t, node::completion>> pending_overlay_;
  std::deque<connect_call> pending_connects_;
  std::uint64_t generation_ = 0;
};

// ---- SIP text ----

/// A message from header lines (CRLF added), Content-Length: 0 and the empty line; parsed as the
/// front end would.
sip::message parse(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\r\n";
  text += "Content-Length: 0\r\n\r\n";
  auto m = sip::parse_datagram(text);
  REQUIRE_MESSAGE(m, "does not parse: " << (m ? "" : m.error().reason) << "\n" << text);
  return std::move(*m);
}

std::string new_branch() {
  static int n = 0;
  return "z9hG4bK-test-" + std::to_string(++n);
}

struct register_spec {
  std::string to = std::string(alice_aor);
  std::vector<std::string> contacts{"<sip:alice@192.0.2.10:5060>"};
  std::optional<std::string> expires = "600";
  std::vector<std::string> extra;
  std::string via = "SIP/2.0/UDP 192.0.2.10:5060";
  std::string call_id = "reg-alice-1";
};

sip::message make_register(const register_spec& s, std::uint32_t cseq,
                           const std::string& authorization = {}) {
  std::vector<std::string> lines{"REGISTER sip:example.org SIP/2.0",
                                 "Via: " + s.via + ";branch=" + new_branch(),
                                 "Max-Forwards: 70",
                                 "From: <" + s.to + ">;tag=reg" + std::to_string(cseq),
                                 "To: <" + s.to + ">",
                                 "Call-ID: " + s.call_id,
                                 "CSeq: " + std::to_string(cseq) + " REGISTER"};
  for (const auto& c : s.contacts) lines.push_back("Contact: " + c);
  if (s.expires) lines.push_back("Expires: " + *s.expires);
  for (const auto& e : s.extra) lines.push_back(e);
  if (!authorization.empty()) lines.push_back("Authorization: " + authorization);
  return parse(lines);
}

/// The Authorization value answering the challenge of `algorithm` in `challenge` (a 401).
std::string authorization_for(const sip::message& challenge, sip::digest_algorithm algorithm,
                              std::string_view username, std::string_view password,
                              std::string_view uri = "sip:example.org") {
  auto values = sip::auth_values(challenge, "WWW-Authenticate");
  REQUIRE(values);
  for (const auto& v : *values) {
    const auto a = sip::parse_digest_algorithm(v.get("algorithm").value_or("MD5"));
    if (a != algorithm) continue;
    sip::digest_credentials c;
    c.username = std::string(username);
    c.realm = v.get("realm").value_or("");
    c.nonce = v.get("nonce").value_or("");
    c.uri = std::string(uri);
    c.algorithm = algorithm;
    c.qop = "auth";
    c.cnonce = "0a4f113b";
    c.nc = "00000001";
    const auto ha1 = sip::digest_ha1(algorithm, username, c.realm, password);
    c.response = sip::digest_response(c, ha1, "REGISTER");
    return "Digest username=\"" + c.username + "\", realm=\"" + c.realm + "\", nonce=\"" + c.nonce +
           "\", uri=\"" + c.uri + "\", response=\"" + c.response +
           "\", algorithm=" + std::string(sip::digest_algorithm_name(algorithm)) +
           ", qop=auth, cnonce=\"" + *c.cnonce + "\", nc=" + *c.nc;
  }
  FAIL("no challenge for the algorithm");
  return {};
}

/// What was sent, in order: status codes of responses, methods of requests ("100 INVITE 480").
std::string summary(const std::vector<sip::message>& ms) {
  std::string out;
  for (const auto& m : ms) {
    if (!out.empty()) out += ' ';
    out += m.is_request() ? m.method : std::to_string(m.status);
  }
  return out;
}

const sip::message* find_status(const std::vector<sip::message>& ms, int status) {
  for (const auto& m : ms) {
    if (m.status == status) return &m;
  }
  return nullptr;
}

const sip::message* find_method(const std::vector<sip::message>& ms, std::string_view method) {
  for (const auto& m : ms) {
    if (m.is_request() && m.method == method) return &m;
  }
  return nullptr;
}

std::string header_value(const sip::message& m, std::string_view name) {
  const auto* h = m.find(name);
  return h ? h->value : std::string();
}

// ---- the harness ----

/// A far-off start for the fake steady clock: whatever the usage computes must come from the
/// `now` it is given (a reading of the real steady clock is years before this).
const peer::sip_time_point fake_epoch = peer::sip_time_point{} + 24h * 365 * 30;

struct harness {
  peer::sip_time_point now = fake_epoch;
  crypto::trust_store trust{test_pki::example_overlay()};
  fake_services services{now, trust};
  std::unique_ptr<peer::sip_usage> usage;
  std::uint64_t alice_ua = 0;   ///< alice's phone: UDP 192.0.2.10:5060
  std::uint64_t caller_ua = 0;  ///< a caller: UDP 192.0.2.20:5060
  std::uint32_t cseq = 0;

  explicit harness(peer::sip_mode mode = peer::sip_mode::proxy) {
    REQUIRE(trust.add_root(pki().ca.der()));
    services.accounts.push_back(
        account_of(std::string(alice_aor), "alice", alice_password, pki().alice));
    services.accounts.push_back(account_of("sip:bob@example.org", "bob", "bob-secret", pki().bob));
    peer::sip_usage_config cfg;
    cfg.domain = std::string(domain);
    cfg.mode = mode;
    cfg.listen = {{"UDP", "192.0.2.1", 5060}, {"TCP", "192.0.2.1", 5060}};
    cfg.secret = pr::bytes(32, 0x5a);
    cfg.trust = &trust;
    usage = std::make_unique<peer::sip_usage>(std::move(cfg), self_id(), services, 42);
    alice_ua = services.open_flow("UDP", "192.0.2.10", 5060);
    caller_ua = services.open_flow("UDP", "192.0.2.20", 5060);
  }

  /// Answers what the fake holds (overlay requests, connections) until nothing is left.
  void settle() {
    for (int i = 0; i < 1000 && services.settle_one(); ++i) {
    }
  }

  void receive(sip::message m, std::uint64_t flow) {
    usage->on_message(std::move(m), services.endpoint_of(flow), now);
    settle();
  }

  /// Moves the clock forward by `d`, through every deadline on the way.
  void advance(std::chrono::milliseconds d) {
    const auto end = now + d;
    int rounds = 0;
    for (; rounds < 10000; ++rounds) {
      const auto next = usage->next_deadline();
      if (!next || *next > end) break;
      now = std::max(now, *next);
      usage->on_timer(now);
      settle();
    }
    CHECK_MESSAGE(rounds < 10000, "a deadline that never moves on");
    now = end;
    usage->on_timer(now);
    settle();
  }

  /// REGISTER without credentials, then with those the 401 asks for; the final answer.
  sip::message register_as(const register_spec& s, std::uint64_t flow,
                           std::string_view username = "alice",
                           std::string_view password = alice_password,
                           sip::digest_algorithm algorithm = sip::digest_algorithm::md5) {
    services.take(flow);
    receive(make_register(s, ++cseq), flow);
    auto challenged = services.take(flow);
    REQUIRE(challenged.size() == 1);
    REQUIRE(challenged[0].status == 401);
    receive(
        make_register(s, ++cseq, authorization_for(challenged[0], algorithm, username, password)),
        flow);
    auto answered = services.take(flow);
    REQUIRE(answered.size() == 1);
    return answered[0];
  }

  /// alice registers her phone (UDP 192.0.2.10:5060) and gets 200.
  void register_alice() {
    const auto r = register_as(register_spec{}, alice_ua);
    REQUIRE(r.status == 200);
  }

  sip::message invite(std::string_view request_uri, int max_forwards = 70,
                      std::string call_id = "call-1") {
    return parse({"INVITE " + std::string(request_uri) + " SIP/2.0",
                  "Via: SIP/2.0/UDP 192.0.2.20:5060;branch=" + new_branch(),
                  "Max-Forwards: " + std::to_string(max_forwards),
                  "From: <sip:carol@example.org>;tag=caller1",
                  "To: <" + std::string(request_uri) + ">", "Call-ID: " + call_id, "CSeq: 1 INVITE",
                  "Contact: <sip:carol@192.0.2.20:5060>"});
  }
};

/// A user's route through another peer under `key`, as that peer stored it (signed with the
/// user's credentials).
void store_route_elsewhere(harness& h, std::string_view user_at_domain,
                           const crypto::credentials& user, const pr::node_id& key) {
  const auto resource = resource_of(user_at_domain);
  pr::sip_registration reg;
  reg.type = pr::sip_registration_type::route;
  reg.destination_list.push_back(pr::to_destination(other_peer()));
  auto value = pr::encode_sip_registration(reg);
  REQUIRE(value);
  pr::stored_data d;
  d.storage_time = wall_ms() - 1000;
  d.lifetime = 3600;
  d.value = pr::dictionary_entry{key_of(key), pr::data_value{true, *value}};
  REQUIRE(crypto::sign_stored_data(d, resource, pr::kinds::sip_registration, user.signing, key));
  h.services.put(resource, std::move(d), {user.signing.cert().generic()});
}

/// bob's route through another peer.
void store_bob_elsewhere(harness& h) {
  store_route_elsewhere(h, "bob@example.org", *pki().bob, pki().bob_ids[0]);
}

sip::message ua_response(const sip::message& request, int status, std::string_view tag = "uas1") {
  auto r = sip::make_response(request, status, {}, tag);
  if (status >= 200 && status < 300 && request.method == "INVITE") {
    r.add("Contact", "<sip:alice@192.0.2.10:5060>");
  }
  return r;
}

}  // namespace

// ---------------------------------------------------------------- registrar

TEST_CASE("sip_usage: REGISTER without credentials gets 401 with MD5 then SHA-256 challenges") {
  harness h;
  h.receive(make_register(register_spec{}, 1), h.alice_ua);
  const auto sent = h.services.take(h.alice_ua);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].status == 401);
  auto challenges = sip::auth_values(sent[0], "WWW-Authenticate");
  REQUIRE(challenges);
  REQUIRE(challenges->size() == 2);
  CHECK((*challenges)[0].get("algorithm") == std::optional<std::string>("MD5"));
  CHECK((*challenges)[1].get("algorithm") == std::optional<std::string>("SHA-256"));
  for (const auto& c : *challenges) {
    CHECK(c.scheme == "Digest");
    CHECK(c.get("realm") == std::optional<std::string>("example.org"));
    CHECK(c.get("nonce").value_or("").size() >= 32);
  }
  CHECK((*challenges)[0].get("nonce") == (*challenges)[1].get("nonce"));
  CHECK(h.services.calls.empty());
}

TEST_CASE("sip_usage: REGISTER with the MD5 digest stores the route signed as the user then 200") {
  harness h;
  const auto r = h.register_as(register_spec{}, h.alice_ua);
  CHECK(r.status == 200);

  // The Store: alice's route (destination list = this peer) under one of her Node-IDs.
  REQUIRE(h.services.count_calls(pr::codes::store_req) == 1);
  const auto* call = h.services.last_store_call();
  REQUIRE(call != nullptr);
  CHECK(call->sign_as == alice_aor);
  REQUIRE(call->as_node.has_value());
  const auto& store = std::get<pr::store_req>(call->body);
  const auto resource = resource_of("alice@example.org");
  CHECK(store.resource == resource);
  REQUIRE(store.kind_data.size() == 1);
  CHECK(store.kind_data[0].kind == pr::kinds::sip_registration);
  REQUIRE(store.kind_data[0].values.size() == 1);
  const auto& d = store.kind_data[0].values[0];
  CHECK(d.lifetime >= 600);
  CHECK(d.storage_time >= wall_ms());
  const auto* entry = std::get_if<pr::dictionary_entry>(&d.value);
  REQUIRE(entry != nullptr);
  const auto& ids = pki().alice_ids;
  CHECK(std::find_if(ids.begin(), ids.end(),
                     [&](const pr::node_id& id) { return key_of(id) == entry->key; }) != ids.end());
  CHECK(entry->key == key_of(*call->as_node));
  CHECK(entry->value.exists);
  auto reg = pr::decode_sip_registration(entry->value.value, pr::limits{});
  REQUIRE(reg);
  CHECK(reg->type == pr::sip_registration_type::route);
  REQUIRE(reg->destination_list.size() == 1);
  CHECK(reg->destination_list[0] == pr::to_destination(self_id()));
  // Signed by alice's certificate as that Node-ID.
  auto who = crypto::verify_stored_data(d, resource, pr::kinds::sip_registration,
                                        call->certificates, h.trust, test_pki::test_now());
  REQUIRE(who);
  CHECK(who->user() == "alice@example.org");
  CHECK(who->node == *call->as_node);
  CHECK(h.services.stored(resource, entry->key) != nullptr);

  // The 200 lists the binding with its expiry.
  auto contacts = sip::contacts(r);
  REQUIRE(contacts);
  REQUIRE(contacts->contacts.size() == 1);
  CHECK(sip::to_string(contacts->contacts[0].address) == "sip:alice@192.0.2.10:5060");
  CHECK(sip::contact_expires(contacts->contacts[0]) == std::optional<std::uint32_t>(600));
  CHECK(h.usage->stats().registrations == 1);
  CHECK(h.usage->stats().bindings == 1);
  CHECK(h.usage->stats().registers_stored == 1);
}

TEST_CASE("sip_usage: REGISTER with the SHA-256 digest is accepted too") {
  harness h;
  const auto r = h.register_as(register_spec{}, h.alice_ua, "alice", alice_password,
                               sip::digest_algorithm::sha256);
  CHECK(r.status == 200);
  CHECK(h.services.count_calls(pr::codes::store_req) == 1);
}

TEST_CASE("sip_usage: REGISTER with a wrong password gets 403 and nothing is stored") {
  harness h;
  const auto r = h.register_as(register_spec{}, h.alice_ua, "alice", "not-her-password");
  CHECK(r.status == 403);
  CHECK(h.services.count_calls(pr::codes::store_req) == 0);
  CHECK(h.services.count_calls(pr::codes::fetch_req) == 0);
  CHECK(h.usage->stats().auth_failures == 1);
  CHECK(h.usage->stats().registrations == 0);
}

TEST_CASE("sip_usage: REGISTER with Expires 0 stores a tombstone and unregisters") {
  harness h;
  h.register_alice();
  const auto first = std::get<pr::store_req>(h.services.last_store_call()->body);
  const auto key = std::get<pr::dictionary_entry>(first.kind_data[0].values[0].value).key;

  register_spec s;
  s.expires = "0";
  const auto r = h.register_as(s, h.alice_ua);
  CHECK(r.status == 200);
  CHECK(r.find("Contact") == nullptr);
  REQUIRE(h.services.count_calls(pr::codes::store_req) == 2);
  const auto* store = h.services.last_store();
  REQUIRE(store != nullptr);
  REQUIRE(store->kind_data.size() == 1);
  REQUIRE(store->kind_data[0].values.size() == 1);
  const auto& d = store->kind_data[0].values[0];
  const auto* entry = std::get_if<pr::dictionary_entry>(&d.value);
  REQUIRE(entry != nullptr);
  CHECK(entry->key == key);  // the same device's key
  CHECK_FALSE(entry->value.exists);
  CHECK(d.storage_time > first.kind_data[0].values[0].storage_time);
  const auto* kept = h.services.stored(resource_of("alice@example.org"), key);
  REQUIRE(kept != nullptr);
  CHECK_FALSE(std::get<pr::dictionary_entry>(kept->value).value.exists);
  CHECK(h.usage->stats().registrations == 0);
  CHECK(h.usage->stats().bindings == 0);
}

// A peer that holds no registration of the user (restarted, or never used by this device) is
// asked to unregister: it must not tombstone whatever device's route is stored under a key it
// never used (it once took the certificate's first Node-ID).
TEST_CASE("sip_usage: an unregister at a peer without bindings leaves other devices' routes") {
  harness h;
  const auto resource = resource_of("alice@example.org");
  const auto key = key_of(pki().alice_ids[0]);
  store_route_elsewhere(h, "alice@example.org", *pki().alice, pki().alice_ids[0]);
  register_spec s;
  s.contacts = {"*"};
  s.expires = "0";
  const auto r = h.register_as(s, h.alice_ua);
  CHECK(r.status == 200);
  const auto* other = h.services.stored(resource, key);
  REQUIRE(other != nullptr);
  const auto* store = h.services.last_store();
  CHECK_MESSAGE(std::get<pr::dictionary_entry>(other->value).value.exists,
                "the route another peer stored under alice's first Node-ID was replaced by a "
                "tombstone ("
                    << h.services.count_calls(pr::codes::store_req) << " Store, key "
                    << (store ? pr::to_hex(std::get<pr::dictionary_entry>(
                                               store->kind_data.at(0).values.at(0).value)
                                               .key)
                              : std::string("none"))
                    << ")");
}

TEST_CASE("sip_usage: REGISTER with Expires 30 gets 423 with Min-Expires 60") {
  harness h;
  register_spec s;
  s.expires = "30";
  const auto r = h.register_as(s, h.alice_ua);
  CHECK(r.status == 423);
  CHECK(header_value(r, "Min-Expires") == "60");
  CHECK(h.services.count_calls(pr::codes::store_req) == 0);
}

TEST_CASE("sip_usage: Contact star without Expires 0 gets 400") {
  harness h;
  register_spec s;
  s.contacts = {"*"};
  s.expires = "600";
  const auto r = h.register_as(s, h.alice_ua);
  CHECK(r.status == 400);
  CHECK(h.services.count_calls(pr::codes::store_req) == 0);
}

TEST_CASE("sip_usage: REGISTER for another user's AOR gets 403") {
  harness h;
  register_spec s;
  s.to = "sip:bob@example.org";
  const auto r = h.register_as(s, h.alice_ua);  // alice's credentials
  CHECK(r.status == 403);
  CHECK(h.services.count_calls(pr::codes::store_req) == 0);
  CHECK(h.usage->stats().registrations == 0);
}

TEST_CASE("sip_usage: REGISTER whose Store fails gets 503") {
  harness h;
  h.services.answer_with = [](const overlay_call& c) -> std::optional<node::outcome> {
    if (!std::holds_alternative<pr::store_req>(c.body)) return std::nullopt;
    node::outcome o;
    o.what = node::outcome::kind::error;
    o.error.error_code = static_cast<std::uint16_t>(pr::reload_errc::forbidden);
    o.body = o.error;
    return o;
  };
  const auto r = h.register_as(register_spec{}, h.alice_ua);
  CHECK(r.status == 503);
  CHECK(r.find("Retry-After") != nullptr);
  CHECK(h.services.count_calls(pr::codes::store_req) == 1);
  CHECK(h.usage->stats().overlay_failures == 1);
  CHECK(h.usage->stats().bindings == 0);
}

// ---------------------------------------------------------------- proxy: local bindings

TEST_CASE("sip_usage: an INVITE to a local AOR goes to the binding's flow and back") {
  harness h;
  h.register_alice();
  const auto invite = h.invite("sip:alice@example.org");
  h.receive(invite, h.caller_ua);

  auto upstream = h.services.take(h.caller_ua);
  CHECK(summary(upstream) == "100");
  auto downstream = h.services.take(h.alice_ua);
  REQUIRE(downstream.size() == 1);
  const auto fwd = downstream[0];
  CHECK(fwd.method == "INVITE");
  CHECK(fwd.request_uri == "sip:alice@192.0.2.10:5060");
  auto vias = sip::vias(fwd);
  REQUIRE(vias);
  REQUIRE(vias->size() == 2);
  CHECK((*vias)[0].host == "192.0.2.1");
  CHECK((*vias)[0].port == std::optional<std::uint16_t>(5060));
  CHECK((*vias)[0].transport == "UDP");
  CHECK((*vias)[1].host == "192.0.2.20");
  CHECK(sip::max_forwards(fwd).value() == std::optional<std::uint8_t>(69));
  auto rr = sip::route_set(fwd, "Record-Route");
  REQUIRE(rr);
  REQUIRE(rr->size() == 1);
  CHECK((*rr)[0].address.user == "p2p-" + self_id().hex());
  CHECK(sip::find_param((*rr)[0].address.params, "lr") != nullptr);

  const auto original_vias = sip::vias(invite).value();
  h.receive(ua_response(fwd, 180), h.alice_ua);
  upstream = h.services.take(h.caller_ua);
  REQUIRE(upstream.size() == 1);
  CHECK(upstream[0].status == 180);
  CHECK(sip::vias(upstream[0]).value().size() == 1);
  CHECK(sip::vias(upstream[0]).value()[0].branch() == original_vias[0].branch());

  h.receive(ua_response(fwd, 200), h.alice_ua);
  upstream = h.services.take(h.caller_ua);
  REQUIRE(upstream.size() == 1);
  CHECK(upstream[0].status == 200);
  CHECK(sip::vias(upstream[0]).value().size() == 1);
  CHECK(sip::vias(upstream[0]).value()[0].branch() == original_vias[0].branch());
  CHECK(h.usage->stats().proxied == 1);
}

TEST_CASE("sip_usage: CANCEL of a proxied INVITE gets 200 and a CANCEL downstream then 487") {
  harness h;
  h.register_alice();
  const auto invite = h.invite("sip:alice@example.org");
  h.receive(invite, h.caller_ua);
  auto downstream = h.services.take(h.alice_ua);
  REQUIRE(downstream.size() == 1);
  const auto fwd = downstream[0];
  h.receive(ua_response(fwd, 180), h.alice_ua);
  h.services.take(h.caller_ua);

  h.receive(sip::make_cancel(invite), h.caller_ua);
  auto upstream = h.services.take(h.caller_ua);
  REQUIRE(upstream.size() == 1);
  CHECK(upstream[0].status == 200);
  CHECK(sip::cseq_of(upstream[0]).value().method == "CANCEL");
  downstream = h.services.take(h.alice_ua);
  const auto* cancel = find_method(downstream, "CANCEL");
  REQUIRE(cancel != nullptr);
  CHECK(sip::vias(*cancel).value()[0].branch() == sip::vias(fwd).value()[0].branch());

  h.receive(ua_response(*cancel, 200), h.alice_ua);
  // The 487 with the CANCEL's single Via, as sipp's [last_Via:] writes it: the caller still gets
  // its own Via back.
  auto terminated = ua_response(fwd, 487);
  terminated.remove("Via");
  terminated.headers.insert(terminated.headers.begin(), *cancel->find("Via"));
  REQUIRE(sip::vias(terminated).value().size() == 1);
  h.receive(terminated, h.alice_ua);
  upstream = h.services.take(h.caller_ua);
  REQUIRE(upstream.size() == 1);
  CHECK(upstream[0].status == 487);
  CHECK(sip::cseq_of(upstream[0]).value().method == "INVITE");
  CHECK(sip::vias(upstream[0]).value() == sip::vias(invite).value());
  CHECK(find_method(h.services.take(h.alice_ua), "ACK") != nullptr);
}

TEST_CASE("sip_usage: CANCEL before the AOR is resolved gets 487 and nothing goes downstream") {
  harness h;
  h.register_alice();
  h.services.hold_overlay = true;  // the Fetch of the AOR is not answered yet
  const auto invite = h.invite("sip:alice@example.org");
  h.receive(invite, h.caller_ua);
  CHECK(summary(h.services.take(h.caller_ua)) == "100");
  h.receive(sip::make_cancel(invite), h.caller_ua);
  CHECK(summary(h.services.take(h.caller_ua)) == "200");
  h.services.hold_overlay = false;
  h.settle();
  const auto upstream = h.services.take(h.caller_ua);
  CHECK(summary(upstream) == "487");
  CHECK(h.services.take(h.alice_ua).empty());
}

// ---------------------------------------------------------------- proxy: through the overlay

TEST_CASE("sip_usage: an INVITE to an AOR of another peer is fetched then connected then sent") {
  harness h;
  store_bob_elsewhere(h);
  h.services.hold_connects = true;
  h.receive(h.invite("sip:bob@example.org"), h.caller_ua);

  REQUIRE(h.services.count_calls(pr::codes::fetch_req) == 1);
  CHECK(std::get<pr::fetch_req>(h.services.calls.back().body).resource ==
        resource_of("bob@example.org"));
  REQUIRE(h.services.connect_routes.size() == 1);
  CHECK(h.services.connect_routes[0] ==
        std::vector<pr::destination>{pr::to_destination(other_peer())});
  CHECK(summary(h.services.take(h.caller_ua)) == "100");

  const auto peer_flow = h.services.open_flow("TLS", "198.51.100.7", 40000, other_peer());
  h.services.connect_with = [peer_flow](const auto&) {
    return std::pair<std::uint64_t, std::string>{peer_flow, {}};
  };
  h.services.hold_connects = false;
  h.settle();
  auto sent = h.services.take(peer_flow);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].method == "INVITE");
  CHECK(sent[0].request_uri == "sip:bob@example.org");
  auto vias = sip::vias(sent[0]);
  REQUIRE(vias);
  REQUIRE(vias->size() == 2);
  CHECK((*vias)[0].host == "p2p-" + self_id().hex() + ".invalid");
  CHECK((*vias)[0].transport == "TLS");
  auto rr = sip::route_set(sent[0], "Record-Route");
  REQUIRE(rr);
  REQUIRE(rr->size() == 1);
  CHECK((*rr)[0].address.user == "p2p-" + self_id().hex());
  CHECK(h.services.take(h.caller_ua).empty());
}

TEST_CASE("sip_usage: an INVITE whose peer cannot be connected gets 480") {
  harness h;
  store_bob_elsewhere(h);
  h.services.connect_with = [](const auto&) {
    return std::pair<std::uint64_t, std::string>{0, "AppAttach refused"};
  };
  h.receive(h.invite("sip:bob@example.org"), h.caller_ua);
  CHECK(h.services.connect_routes.size() == 1);
  CHECK(summary(h.services.take(h.caller_ua)) == "100 480");
}

TEST_CASE("sip_usage: an INVITE to an AOR the overlay holds nothing for gets 404") {
  harness h;
  h.receive(h.invite("sip:nobody@example.org"), h.caller_ua);
  CHECK(h.services.count_calls(pr::codes::fetch_req) == 1);
  CHECK(h.services.connect_routes.empty());
  CHECK(summary(h.services.take(h.caller_ua)) == "100 404");
}

TEST_CASE("sip_usage: an INVITE whose Fetch times out gets 503") {
  harness h;
  store_bob_elsewhere(h);
  h.services.answer_with = [](const overlay_call& c) -> std::optional<node::outcome> {
    if (!std::holds_alternative<pr::fetch_req>(c.body)) return std::nullopt;
    node::outcome o;
    o.what = node::outcome::kind::timeout;
    return o;
  };
  h.receive(h.invite("sip:bob@example.org"), h.caller_ua);
  CHECK(h.services.connect_routes.empty());
  CHECK(summary(h.services.take(h.caller_ua)) == "100 503");
}

// A connection's completion carries the time: the branch over the AppAttach flow starts its
// Timer B and Timer C on the clock on_timer is given (it once read the real steady clock).
TEST_CASE("sip_usage: a branch over an AppAttach flow keeps the caller's clock") {
  harness h;
  store_bob_elsewhere(h);
  h.receive(h.invite("sip:bob@example.org"), h.caller_ua);
  REQUIRE(h.services.connect_routes.size() == 1);
  CHECK(summary(h.services.take(h.caller_ua)) == "100");
  const auto deadline = h.usage->next_deadline();
  REQUIRE(deadline.has_value());
  CHECK_MESSAGE(*deadline >= h.now,
                "the next deadline is "
                    << std::chrono::duration_cast<std::chrono::hours>(h.now - *deadline).count()
                    << " h before now");
  h.advance(1s);
  const auto upstream = h.services.take(h.caller_ua);
  CHECK_MESSAGE(upstream.empty(), "one second after the INVITE went to the peer, the caller got "
                                      << (upstream.empty() ? 0 : upstream[0].status));
}

// ---------------------------------------------------------------- proxy: failures

TEST_CASE("sip_usage: Timer B with no response at all gives 480 upstream") {
  harness h;
  h.register_alice();
  h.receive(h.invite("sip:alice@example.org"), h.caller_ua);
  CHECK(summary(h.services.take(h.caller_ua)) == "100");
  CHECK(h.services.take(h.alice_ua).size() == 1);

  h.advance(31s);
  CHECK(h.services.take(h.caller_ua).empty());
  const auto retransmissions = h.services.take(h.alice_ua);
  CHECK(retransmissions.size() >= 5);  // Timer A over UDP: 0.5, 1, 2, 4, 8, 16 s
  for (const auto& m : retransmissions) CHECK(m.method == "INVITE");

  h.advance(2s);  // Timer B: 64*T1 = 32 s
  const auto upstream = h.services.take(h.caller_ua);
  REQUIRE_FALSE(upstream.empty());
  CHECK(upstream[0].status == 480);
  // Over UDP the server transaction repeats its final response until the ACK (Timer G).
  for (const auto& m : upstream) CHECK(m == upstream[0]);
}

TEST_CASE("sip_usage: Max-Forwards 0 gets 483") {
  harness h;
  h.register_alice();
  h.receive(h.invite("sip:alice@example.org", 0), h.caller_ua);
  CHECK(summary(h.services.take(h.caller_ua)) == "100 483");
  CHECK(h.services.take(h.alice_ua).empty());
}

TEST_CASE("sip_usage: the same request back with our Via gets 482") {
  harness h;
  // A target outside the overlay by address: the Request-URI is kept, so the copy that comes
  // back is the same request (a loop, not a spiral).
  h.receive(h.invite("sip:carol@192.0.2.30:5060"), h.caller_ua);
  CHECK(summary(h.services.take(h.caller_ua)) == "100");
  const auto far = h.services.flow_to("UDP", "192.0.2.30", 5060);
  auto sent = h.services.take(far);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].request_uri == "sip:carol@192.0.2.30:5060");

  h.receive(sent[0], far);  // the next hop routes it back to us
  const auto back = h.services.take(far);
  const auto* loop = find_status(back, 482);
  CHECK_MESSAGE(loop != nullptr, "sent back: " << summary(back));
  CHECK(find_method(back, "INVITE") == nullptr);
}

// ---------------------------------------------------------------- redirect

TEST_CASE("sip_usage: redirect mode answers 302 with the local contacts") {
  harness h(peer::sip_mode::redirect);
  h.register_alice();
  h.receive(h.invite("sip:alice@example.org"), h.caller_ua);
  const auto upstream = h.services.take(h.caller_ua);
  const auto* r = find_status(upstream, 302);
  REQUIRE(r != nullptr);
  auto contacts = sip::contacts(*r);
  REQUIRE(contacts);
  REQUIRE(contacts->contacts.size() == 1);
  CHECK(sip::to_string(contacts->contacts[0].address) == "sip:alice@192.0.2.10:5060");
  CHECK(h.services.take(h.alice_ua).empty());
  CHECK(h.services.connect_routes.empty());
}

// ---------------------------------------------------------------- RFC 5626 outbound

TEST_CASE("sip_usage: an outbound REGISTER gets Require outbound and then 430 once its flow dies") {
  harness h;
  const auto tcp = h.services.open_flow("TCP", "192.0.2.10", 50123);
  register_spec s;
  s.via = "SIP/2.0/TCP 192.0.2.10:50123";
  s.contacts = {
      "<sip:alice@192.0.2.10:50123;transport=tcp>;+sip.instance=\""
      "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1"};
  s.extra = {"Supported: outbound, path"};
  const auto r = h.register_as(s, tcp);
  REQUIRE(r.status == 200);
  auto required = sip::option_tags(r, "Require");
  REQUIRE(required);
  CHECK(*required == std::vector<std::string>{"outbound"});
  CHECK(header_value(r, "Flow-Timer") == "120");
  auto contacts = sip::contacts(r);
  REQUIRE(contacts);
  REQUIRE(contacts->contacts.size() == 1);
  CHECK(sip::contact_reg_id(contacts->contacts[0]) == std::optional<std::uint32_t>(1));
  CHECK(sip::contact_instance(contacts->contacts[0]) ==
        std::optional<std::string>("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"));

  h.services.close_flow(tcp);
  h.usage->on_flow_closed(tcp, h.now);
  h.receive(h.invite("sip:alice@example.org"), h.caller_ua);
  CHECK(summary(h.services.take(h.caller_ua)) == "100 430");
}

// REGISTERs of one AOR that arrive while its Store is in flight wait, then go in one Store: each
// is answered 200 with the bindings of all of them, and the overlay saw two Stores, not three.
TEST_CASE("sip_usage: REGISTERs waiting for one AOR's Store go together in the next Store") {
  harness h;
  h.services.hold_overlay = true;
  // The first REGISTER (challenged, then with credentials): its Store is held.
  h.receive(make_register(register_spec{}, 1), h.alice_ua);
  auto challenged = h.services.take(h.alice_ua);
  REQUIRE(challenged.size() == 1);
  const auto auth =
      authorization_for(challenged[0], sip::digest_algorithm::md5, "alice", alice_password);
  h.receive(make_register(register_spec{}, 2, auth), h.alice_ua);
  // While it is held: two more devices of alice's, with the same nonce (still fresh).
  register_spec second;
  second.contacts = {"<sip:alice@192.0.2.11:5060>"};
  second.call_id = "reg-alice-2";
  register_spec third;
  third.contacts = {"<sip:alice@192.0.2.12:5060>"};
  third.call_id = "reg-alice-3";
  h.receive(make_register(second, 3, auth), h.alice_ua);
  h.receive(make_register(third, 4, auth), h.alice_ua);
  CHECK(h.services.take(h.alice_ua).empty());  // nobody answered before the overlay did
  // (the first Store waits behind the Fetch that chooses alice's key, or is itself held)
  CHECK(h.services.count_calls(pr::codes::store_req) <= 1);
  // The overlay answers: the first 200, then one Store for the two waiting, then their 200s.
  h.services.hold_overlay = false;
  h.settle();
  CHECK(h.services.count_calls(pr::codes::store_req) == 2);
  const auto answers = h.services.take(h.alice_ua);
  REQUIRE(answers.size() == 3);
  for (const auto& a : answers) CHECK(a.status == 200);
  auto last = sip::contacts(answers.back());
  REQUIRE(last);
  CHECK(last->contacts.size() == 3);
}

// RFC 5626 5.2/5.3 for our Record-Route: an in-dialog request that comes back through it reaches
// the UA on the flow the token names, whatever its Request-URI says (a contact behind NAT); 430
// once that flow is gone; 403 for a token whose MAC does not check.
TEST_CASE(
    "sip_usage: an in-dialog request through our Record-Route goes on the flow its token names") {
  harness h;
  h.register_alice();
  h.receive(h.invite("sip:alice@example.org"), h.caller_ua);
  h.services.take(h.caller_ua);
  auto downstream = h.services.take(h.alice_ua);
  REQUIRE(downstream.size() == 1);
  auto rr = sip::route_set(downstream[0], "Record-Route");
  REQUIRE(rr);
  REQUIRE(rr->size() == 1);
  const auto* token = sip::find_param((*rr)[0].address.params, "p2p-flow");
  REQUIRE(token != nullptr);
  const std::string route = sip::to_string((*rr)[0].address);
  const auto bye = [&](const std::string& route_uri, const std::string& branch) {
    return parse({"BYE sip:alice@203.0.113.9:5070 SIP/2.0",
                  "Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-" + branch, "Max-Forwards: 70",
                  "Route: <" + route_uri + ">", "From: <sip:carol@example.org>;tag=caller1",
                  "To: <sip:alice@example.org>;tag=callee1", "Call-ID: call-1", "CSeq: 2 BYE"});
  };
  h.receive(bye(route, "bye-1"), h.caller_ua);
  auto on_flow = h.services.take(h.alice_ua);
  REQUIRE(on_flow.size() == 1);
  CHECK(on_flow[0].method == "BYE");
  CHECK(on_flow[0].request_uri == "sip:alice@203.0.113.9:5070");
  CHECK(sip::route_set(on_flow[0], "Route").value().empty());

  // A forged token: its MAC does not check.
  std::string forged = route;
  const auto at = forged.find(token->value);
  REQUIRE(at != std::string::npos);
  forged[at] = forged[at] == '0' ? '1' : '0';
  h.receive(bye(forged, "bye-2"), h.caller_ua);
  auto refused = h.services.take(h.caller_ua);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].status == 403);
  CHECK(h.services.take(h.alice_ua).empty());

  // The flow is gone: 430 Flow Failed.
  h.services.close_flow(h.alice_ua);
  h.usage->on_flow_closed(h.alice_ua, h.now);
  h.receive(bye(route, "bye-3"), h.caller_ua);
  auto failed = h.services.take(h.caller_ua);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].status == 430);
}

// RFC 5626 6: a REGISTER with reg-id through an edge proxy that does not support outbound (its
// Path URI lacks ;ob) gets 439.
TEST_CASE("sip_usage: an outbound REGISTER through a Path without ob gets 439") {
  harness h;
  register_spec s;
  s.contacts = {
      "<sip:alice@192.0.2.10:5060>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>"
      "\";reg-id=1"};
  s.extra = {"Supported: outbound, path", "Path: <sip:edge.example.org;lr>"};
  const auto r = h.register_as(s, h.alice_ua);
  CHECK(r.status == 439);
  CHECK(h.services.count_calls(pr::codes::store_req) == 0);
}

// Both UAs at this peer: the Record-Route's token names the callee's flow, so the callee's own
// BYE (which arrives on that flow) is routed by its Request-URI, not sent back to it.
TEST_CASE(
    "sip_usage: a request that arrives on the flow its Route token names goes by its Request-URI") {
  harness h;
  h.register_alice();
  h.receive(h.invite("sip:alice@example.org"), h.caller_ua);
  h.services.take(h.caller_ua);
  auto downstream = h.services.take(h.alice_ua);
  REQUIRE(downstream.size() == 1);
  const auto rr = sip::route_set(downstream[0], "Record-Route").value();
  REQUIRE(rr.size() == 1);
  h.receive(parse({"BYE sip:carol@192.0.2.20:5060 SIP/2.0",
                   "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-callee-bye", "Max-Forwards: 70",
                   "Route: <" + sip::to_string(rr[0].address) + ">",
                   "From: <sip:alice@example.org>;tag=callee1",
                   "To: <sip:carol@example.org>;tag=caller1", "Call-ID: call-1", "CSeq: 1 BYE"}),
            h.alice_ua);
  auto to_caller = h.services.take(h.caller_ua);
  REQUIRE(to_caller.size() == 1);
  CHECK(to_caller[0].method == "BYE");
}

// One AOR's REGISTERs waiting for its Store in flight are bounded: 256 wait, the 257th gets 503
// with Retry-After.
TEST_CASE("sip_usage: at most 256 REGISTERs of one AOR wait for its Store then 503") {
  harness h;
  h.services.hold_overlay = true;
  h.receive(make_register(register_spec{}, 1), h.alice_ua);
  auto challenged = h.services.take(h.alice_ua);
  REQUIRE(challenged.size() == 1);
  const auto auth =
      authorization_for(challenged[0], sip::digest_algorithm::md5, "alice", alice_password);
  std::uint32_t cseq = 2;
  h.receive(make_register(register_spec{}, cseq++, auth), h.alice_ua);  // its Store is held
  for (int i = 0; i < 256; ++i) h.receive(make_register(register_spec{}, cseq++, auth), h.alice_ua);
  CHECK(h.services.take(h.alice_ua).empty());
  h.receive(make_register(register_spec{}, cseq++, auth), h.alice_ua);
  const auto refused = h.services.take(h.alice_ua);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].status == 503);
  CHECK(refused[0].find("Retry-After") != nullptr);
}

// ---------------------------------------------------------------- SDK clients over AppAttach

namespace {

constexpr std::string_view client_instance = "<urn:uuid:6a1c4b3e-0000-4000-8000-00000000a11c>";

/// An SDK client's AppAttach connection: its Node-ID and the user its certificate names.
std::uint64_t open_client(harness& h, const pr::node_id& node,
                          std::string user = "alice@example.org", std::uint16_t port = 40001) {
  return h.services.open_flow("TLS", "198.51.100.30", port, node, std::move(user));
}

std::string outbound_route() {
  return "Route: <sip:p2p-" + self_id().hex() + ".invalid;lr;ob>";
}

/// The REGISTER the SDK sends in outbound-proxy mode: no Authorization, an RFC 5626 contact,
/// our URI with ob as Route.
register_spec client_spec(std::string call_id = "reg-client-1", std::uint16_t port = 40001) {
  register_spec s;
  s.via = "SIP/2.0/TLS 198.51.100.30:" + std::to_string(port);
  s.contacts = {"<sip:alice@198.51.100.30:" + std::to_string(port) +
                ";transport=tls;ob>;+sip.instance=\"" + std::string(client_instance) +
                "\";reg-id=1"};
  s.extra = {"Supported: outbound, path", outbound_route()};
  s.call_id = std::move(call_id);
  return s;
}

/// The client registers on `flow` and gets 200 at once.
sip::message register_client(harness& h, std::uint64_t flow, const register_spec& s) {
  h.services.take(flow);
  h.receive(make_register(s, ++h.cseq), flow);
  auto answered = h.services.take(flow);
  REQUIRE(answered.size() == 1);
  return answered[0];
}

/// A request of the client: over its flow, with our URI and ob as Route.
sip::message client_request(std::string_view method, std::string_view request_uri,
                            std::string call_id = "client-call-1") {
  return parse({std::string(method) + " " + std::string(request_uri) + " SIP/2.0",
                "Via: SIP/2.0/TLS 198.51.100.30:40001;branch=" + new_branch(), "Max-Forwards: 70",
                outbound_route(), "From: <sip:alice@example.org>;tag=client1",
                "To: <" + std::string(request_uri) + ">", "Call-ID: " + call_id,
                "CSeq: 1 " + std::string(method),
                "Contact: <sip:alice@198.51.100.30:40001;transport=tls;ob>"});
}

/// A request another peer forwards to us (its Via first).
sip::message from_peer(std::string_view method, std::string_view request_uri,
                       std::vector<std::string> extra = {}) {
  std::vector<std::string> lines{
      std::string(method) + " " + std::string(request_uri) + " SIP/2.0",
      "Via: SIP/2.0/TLS p2p-" + other_peer().hex() + ".invalid;branch=" + new_branch(),
      "Via: SIP/2.0/UDP 192.0.2.50:5060;branch=" + new_branch(),
      "Max-Forwards: 69",
      "From: <sip:bob@example.org>;tag=bob1",
      "To: <" + std::string(request_uri) + ">",
      "Call-ID: peer-call-1",
      "CSeq: 1 " + std::string(method),
      "Contact: <sip:bob@192.0.2.50:5060>"};
  for (auto& e : extra) lines.push_back(std::move(e));
  return parse(lines);
}

/// The client's own route value as it stores it (signed with its key): `route` under `key`.
void store_client_route(harness& h, const std::vector<pr::destination>& route,
                        const pr::node_id& key) {
  const auto resource = resource_of("alice@example.org");
  pr::sip_registration reg;
  reg.type = pr::sip_registration_type::route;
  reg.destination_list = route;
  auto value = pr::encode_sip_registration(reg);
  REQUIRE(value);
  pr::stored_data d;
  d.storage_time = wall_ms() - 1000;
  d.lifetime = 3600;
  d.value = pr::dictionary_entry{key_of(key), pr::data_value{true, *value}};
  REQUIRE(crypto::sign_stored_data(d, resource, pr::kinds::sip_registration, pki().alice->signing,
                                   key));
  h.services.put(resource, std::move(d), {pki().alice->signing.cert().generic()});
}

}  // namespace

TEST_CASE("sip_usage: an SDK client's REGISTER is accepted by its certificate, nothing stored") {
  harness h;
  const auto client = open_client(h, pki().alice_ids[0]);
  const auto r = register_client(h, client, client_spec());
  CHECK(r.status == 200);
  CHECK(sip::option_tags(r, "Require").value() == std::vector<std::string>{"outbound"});
  CHECK(header_value(r, "Flow-Timer") == "120");
  auto contacts = sip::contacts(r);
  REQUIRE(contacts);
  REQUIRE(contacts->contacts.size() == 1);
  CHECK(sip::contact_reg_id(contacts->contacts[0]) == std::optional<std::uint32_t>(1));
  CHECK(sip::contact_instance(contacts->contacts[0]) ==
        std::optional<std::string>(std::string(client_instance)));
  CHECK(sip::contact_expires(contacts->contacts[0]) == std::optional<std::uint32_t>(600));
  CHECK(h.services.calls.empty());  // the client stores its own route
  auto stats = h.usage->stats();
  CHECK(stats.registrations == 1);
  CHECK(stats.bindings == 1);
  CHECK(stats.auth_failures == 0);
  CHECK(stats.registers_stored == 0);

  // Expires below the minimum: 423 as for any UA; the binding stays.
  auto short_spec = client_spec();
  short_spec.expires = "30";
  CHECK(register_client(h, client, short_spec).status == 423);
  CHECK(h.usage->stats().bindings == 1);

  // It expires like any binding, without overlay traffic.
  h.advance(601s);
  CHECK(h.usage->stats().registrations == 0);
  CHECK(h.services.calls.empty());

  // Again, then Expires: 0 removes it at once, still without overlay traffic.
  CHECK(register_client(h, client, client_spec()).status == 200);
  auto remove = client_spec();
  remove.expires = "0";
  const auto removed = register_client(h, client, remove);
  CHECK(removed.status == 200);
  CHECK(removed.find("Contact") == nullptr);
  CHECK(h.usage->stats().registrations == 0);
  CHECK(h.services.calls.empty());
}

TEST_CASE("sip_usage: an SDK client's REGISTER for another user's AOR gets 403 and no binding") {
  harness h;
  const auto bob_client = open_client(h, pki().bob_ids[0], "bob@example.org");
  const auto r = register_client(h, bob_client, client_spec());
  CHECK(r.status == 403);
  CHECK(r.reason == "Not your AOR");
  // A certificate without a user name (a peer's) cannot register anyone.
  const auto peer_flow = open_client(h, other_peer(), "", 40002);
  CHECK(register_client(h, peer_flow, client_spec()).status == 403);
  const auto stats = h.usage->stats();
  CHECK(stats.registrations == 0);
  CHECK(stats.bindings == 0);
  CHECK(stats.auth_failures == 2);
  CHECK(h.services.calls.empty());
}

TEST_CASE("sip_usage: the client's REGISTER over a TCP listener still gets the digest challenge") {
  harness h;
  const auto tcp = h.services.open_flow("TCP", "198.51.100.30", 40001);
  h.receive(make_register(client_spec(), 1), tcp);
  const auto sent = h.services.take(tcp);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].status == 401);
  CHECK(h.usage->stats().registrations == 0);
}

TEST_CASE("sip_usage: a request from another peer for the client's AOR goes on its flow") {
  harness h;
  const auto client = open_client(h, pki().alice_ids[0]);
  REQUIRE(register_client(h, client, client_spec()).status == 200);
  const auto peer_flow = h.services.open_flow("TLS", "198.51.100.7", 40000, other_peer());

  const auto invite = from_peer("INVITE", "sip:alice@example.org");
  h.receive(invite, peer_flow);
  CHECK(h.services.calls.empty());  // a peer hop: local bindings only
  CHECK(summary(h.services.take(peer_flow)) == "100");
  auto to_client = h.services.take(client);
  REQUIRE(to_client.size() == 1);
  const auto fwd = to_client[0];
  CHECK(fwd.method == "INVITE");
  CHECK(fwd.request_uri == "sip:alice@198.51.100.30:40001;transport=tls;ob");
  CHECK(sip::vias(fwd).value()[0].host == "p2p-" + self_id().hex() + ".invalid");
  // Our Record-Route names us for the peer and carries the client flow's token.
  const auto rr = sip::route_set(fwd, "Record-Route").value();
  REQUIRE(rr.size() == 1);
  CHECK(rr[0].address.user == "p2p-" + self_id().hex());
  CHECK(sip::find_param(rr[0].address.params, "p2p-flow") != nullptr);

  // The client answers over its flow; the answer goes back to the peer.
  h.receive(ua_response(fwd, 200), client);
  auto upstream = h.services.take(peer_flow);
  REQUIRE(upstream.size() == 1);
  CHECK(upstream[0].status == 200);

  // The far end's BYE through our Record-Route reaches the client over its flow.
  h.receive(from_peer("BYE", "sip:alice@198.51.100.30:40001;transport=tls;ob",
                      {"Route: <" + sip::to_string(rr[0].address) + ">"}),
            peer_flow);
  auto bye = h.services.take(client);
  REQUIRE(bye.size() == 1);
  CHECK(bye[0].method == "BYE");

  // The client's BYE (its route set: our Record-Route, then the far peer's) goes to that peer.
  const std::string far_rr = "<sip:p2p-" + other_peer().hex() + "@p2p-" + other_peer().hex() +
                             ".invalid;transport=tls;lr>";
  h.receive(parse({"BYE sip:bob@192.0.2.50:5060 SIP/2.0",
                   "Via: SIP/2.0/TLS 198.51.100.30:40001;branch=" + new_branch(),
                   "Max-Forwards: 70", "Route: <" + sip::to_string(rr[0].address) + ">," + far_rr,
                   "From: <sip:alice@example.org>;tag=uas1", "To: <sip:bob@example.org>;tag=bob1",
                   "Call-ID: peer-call-1", "CSeq: 1 BYE"}),
            client);
  auto to_peer = h.services.take(peer_flow);
  REQUIRE(to_peer.size() == 1);
  CHECK(to_peer[0].method == "BYE");
  CHECK(to_peer[0].request_uri == "sip:bob@192.0.2.50:5060");
  CHECK(sip::route_set(to_peer[0], "Route").value().size() == 1);
}

TEST_CASE("sip_usage: the client's ob-routed MESSAGE and INVITE are resolved in the overlay") {
  harness h;
  store_bob_elsewhere(h);
  const auto client = open_client(h, pki().alice_ids[0]);
  REQUIRE(register_client(h, client, client_spec()).status == 200);
  const auto peer_flow = h.services.open_flow("TLS", "198.51.100.7", 40000, other_peer());

  h.receive(client_request("MESSAGE", "sip:bob@example.org"), client);
  REQUIRE(h.services.count_calls(pr::codes::fetch_req) == 1);
  CHECK(std::get<pr::fetch_req>(h.services.calls.back().body).resource ==
        resource_of("bob@example.org"));
  REQUIRE(h.services.connect_routes.size() == 1);
  CHECK(h.services.connect_routes[0] ==
        std::vector<pr::destination>{pr::to_destination(other_peer())});
  auto sent = h.services.take(peer_flow);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].method == "MESSAGE");
  CHECK(sent[0].request_uri == "sip:bob@example.org");
  CHECK(sent[0].find("Route") == nullptr);  // our own Route is consumed

  h.receive(client_request("INVITE", "sip:bob@example.org", "client-call-2"), client);
  CHECK(h.services.count_calls(pr::codes::fetch_req) == 2);
  sent = h.services.take(peer_flow);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].method == "INVITE");
  const auto rr = sip::route_set(sent[0], "Record-Route").value();
  REQUIRE(rr.size() == 1);
  CHECK(rr[0].address.user == "p2p-" + self_id().hex());
  const auto* token = sip::find_param(rr[0].address.params, "p2p-flow");
  REQUIRE(token != nullptr);

  // bob's BYE from the far peer through that Record-Route: to the client's flow.
  h.services.take(client);
  h.receive(from_peer("BYE", "sip:alice@198.51.100.30:40001;transport=tls;ob",
                      {"Route: <" + sip::to_string(rr[0].address) + ">"}),
            peer_flow);
  auto bye = h.services.take(client);
  REQUIRE(bye.size() == 1);
  CHECK(bye[0].method == "BYE");
}

TEST_CASE("sip_usage: an unregistered client's ob Route makes it a UA, without it a peer hop") {
  harness h;
  store_bob_elsewhere(h);
  const auto client = open_client(h, pki().alice_ids[0]);
  const auto peer_flow = h.services.open_flow("TLS", "198.51.100.7", 40000, other_peer());
  h.receive(client_request("MESSAGE", "sip:bob@example.org"), client);
  CHECK(h.services.count_calls(pr::codes::fetch_req) == 1);
  CHECK(summary(h.services.take(peer_flow)) == "MESSAGE");

  // The same request without ob, from a connection with no client registration: a peer's hop,
  // delivered to local bindings only (none: 480).
  h.receive(parse({"MESSAGE sip:bob@example.org SIP/2.0",
                   "Via: SIP/2.0/TLS 198.51.100.30:40001;branch=" + new_branch(),
                   "Max-Forwards: 70", "From: <sip:alice@example.org>;tag=client1",
                   "To: <sip:bob@example.org>", "Call-ID: client-call-9", "CSeq: 1 MESSAGE"}),
            client);
  CHECK(h.services.count_calls(pr::codes::fetch_req) == 1);
  CHECK(summary(h.services.take(client)) == "480");
}

TEST_CASE("sip_usage: the client's binding goes with its flow: 480 by AOR, 430 by flow token") {
  harness h;
  const auto client = open_client(h, pki().alice_ids[0]);
  REQUIRE(register_client(h, client, client_spec()).status == 200);
  store_client_route(h, {pr::to_destination(self_id())}, pki().alice_ids[0]);
  const auto peer_flow = h.services.open_flow("TLS", "198.51.100.7", 40000, other_peer());
  h.receive(from_peer("INVITE", "sip:alice@example.org"), peer_flow);
  auto to_client = h.services.take(client);
  REQUIRE(to_client.size() == 1);
  const auto rr = sip::route_set(to_client[0], "Record-Route").value();
  REQUIRE(rr.size() == 1);
  h.receive(ua_response(to_client[0], 200), client);
  h.services.take(peer_flow);

  h.services.close_flow(client);
  h.usage->on_flow_closed(client, h.now);
  auto stats = h.usage->stats();
  CHECK(stats.registrations == 0);
  CHECK(stats.bindings == 0);

  // In the dialog: the token names a flow that is gone (RFC 5626 5.3).
  h.receive(from_peer("BYE", "sip:alice@198.51.100.30:40001;transport=tls;ob",
                      {"Route: <" + sip::to_string(rr[0].address) + ">"}),
            peer_flow);
  CHECK(summary(h.services.take(peer_flow)) == "430");
  // A new call from another peer that found the client's route to us: 480.
  h.receive(from_peer("INVITE", "sip:alice@example.org"), peer_flow);
  CHECK(summary(h.services.take(peer_flow)) == "100 480");
  // From a UA here: the lookup finds the client's own value (through us), no binding: 480.
  h.receive(h.invite("sip:alice@example.org"), h.caller_ua);
  CHECK(h.services.count_calls(pr::codes::fetch_req) == 1);
  CHECK(summary(h.services.take(h.caller_ua)) == "100 480");
  CHECK(h.services.count_calls(pr::codes::store_req) == 0);
}

TEST_CASE("sip_usage: the client's REGISTER on a new flow with the same instance and reg-id") {
  harness h;
  const auto old_flow = open_client(h, pki().alice_ids[0]);
  REQUIRE(register_client(h, old_flow, client_spec("reg-client-1")).status == 200);
  const auto new_flow = open_client(h, pki().alice_ids[0], "alice@example.org", 40003);
  const auto r = register_client(h, new_flow, client_spec("reg-client-2", 40003));
  REQUIRE(r.status == 200);
  CHECK(sip::contacts(r).value().contacts.size() == 1);
  CHECK(h.usage->stats().bindings == 1);

  // The old flow closing later takes nothing with it.
  h.services.close_flow(old_flow);
  h.usage->on_flow_closed(old_flow, h.now);
  CHECK(h.usage->stats().bindings == 1);
  h.receive(h.invite("sip:alice@example.org"), h.caller_ua);
  auto to_client = h.services.take(new_flow);
  REQUIRE(to_client.size() == 1);
  CHECK(to_client[0].request_uri == "sip:alice@198.51.100.30:40003;transport=tls;ob");
}

TEST_CASE("sip_usage: a client's binding leaves the digest-registered phone's Store alone") {
  harness h;
  h.register_alice();
  REQUIRE(h.services.count_calls(pr::codes::store_req) == 1);
  const auto client = open_client(h, pki().alice_ids[3]);
  REQUIRE(register_client(h, client, client_spec()).status == 200);
  CHECK(h.services.count_calls(pr::codes::store_req) == 1);
  CHECK(h.usage->stats().bindings == 2);

  // The phone unregisters: the tombstone is stored, the client stays registered.
  auto remove = register_spec{};
  remove.expires = "0";
  CHECK(h.register_as(remove, h.alice_ua).status == 200);
  CHECK(h.services.count_calls(pr::codes::store_req) == 2);
  CHECK(h.usage->stats().bindings == 1);
  h.receive(h.invite("sip:alice@example.org"), h.caller_ua);
  CHECK(h.services.take(client).size() == 1);
}

TEST_CASE("sip_usage: a route [this peer, client] found in the overlay is connected as is") {
  harness h;
  const auto client_node = pki().alice_ids[1];
  store_client_route(h, {pr::to_destination(self_id()), pr::to_destination(client_node)},
                     client_node);
  h.services.hold_connects = true;
  h.receive(h.invite("sip:alice@example.org"), h.caller_ua);
  REQUIRE(h.services.connect_routes.size() == 1);
  CHECK(
      h.services.connect_routes[0] ==
      std::vector<pr::destination>{pr::to_destination(self_id()), pr::to_destination(client_node)});
  const auto client = open_client(h, client_node);
  h.services.connect_with = [client](const auto&) {
    return std::pair<std::uint64_t, std::string>{client, {}};
  };
  h.services.hold_connects = false;
  h.settle();
  auto sent = h.services.take(client);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].method == "INVITE");
  CHECK(sent[0].request_uri == "sip:alice@example.org");
}
