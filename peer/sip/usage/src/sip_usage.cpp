// The peer's SIP usage: registrar (RFC 3261 10.3, RFC 5626 6, RFC 7904 3), stateful proxy
// (RFC 3261 16) resolving AORs in the overlay (RFC 7904 4 and 5), redirect (RFC 3261 8.3,
// RFC 3841 Request-Disposition between peers). See sip_usage.hpp.
#include "p2psip/peer/sip_usage.hpp"

#include <algorithm>
#include <cctype>
#include <utility>
#include <variant>

#include <botan/hex.h>
#include <botan/mac.h>

#include "p2psip/crypto/access.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "p2psip/sip/digest.hpp"
#include "p2psip/sip/headers.hpp"
#include "p2psip/sip/uri.hpp"

namespace p2psip::peer {

namespace pr = p2psip::protocol;

namespace {

constexpr std::string_view node_user_prefix = "p2p-";
/// The Record-Route parameter carrying a flow token (RFC 5626 5.2's role, in a parameter: our
/// user part names the peer).
constexpr std::string_view flow_token_param = "p2p-flow";

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && lower(a) == lower(b);
}

/// The canonical AOR of a sip/sips URI: "sip:user@host" (host lower-cased, user unescaped).
std::string aor_of(const sip::uri& u) {
  return "sip:" + sip::unescape(u.user) + "@" + lower(u.host);
}

}  // namespace

std::string sip_resource_name(std::string_view aor) {
  for (std::string_view scheme : {"sip:", "sips:"}) {
    if (aor.size() > scheme.size() && iequal(aor.substr(0, scheme.size()), scheme)) {
      return sip::unescape(aor.substr(scheme.size()));
    }
  }
  return sip::unescape(aor);
}

struct sip_usage::impl {
  // ---- state ----

  /// One registered contact of an AOR at this peer.
  struct binding {
    std::string contact;  ///< the Contact value as registered (name-addr text)
    sip::uri uri;
    std::uint64_t flow = 0;  ///< where its REGISTER came from (requests to it go there)
    std::string instance;    ///< +sip.instance (RFC 5626), empty when none
    std::optional<std::uint32_t> reg_id;
    bool outbound = false;  ///< an RFC 5626 flow: when it dies, requests get 430
    /// Registered by an SDK client over its AppAttach connection, authenticated by the
    /// certificate: the client stores its own route, so nothing goes to the overlay for it, and
    /// it goes with its flow.
    bool certified = false;
    /// The client's Node-ID (its connection's certificate) for a certified binding: the key
    /// under which the client stores its own route, never ours to choose or tombstone.
    std::optional<pr::node_id> client;
    std::string call_id;
    std::uint32_t cseq = 0;
    sip_time_point expires{};
    std::uint16_t q = 1000;
  };
  struct registration {
    sip_account account;
    std::vector<binding> bindings;
    std::uint64_t last_storage_time = 0;
    bool storing = false;  ///< a Store is in flight: later REGISTERs wait
    /// The user's Node-ID this peer's route is stored under (chosen at the first Store).
    std::optional<pr::node_id> key;
    struct waiting_register {
      sip::transaction_id server_tx = 0;
      sip::message request;
      sip_endpoint from;
    };
    std::vector<waiting_register> waiting;
  };

  /// Where a forwarded request goes.
  struct target {
    sip::uri request_uri;
    std::uint64_t flow = 0;  ///< 0: send_to(address)
    bool outbound = false;   ///< 430 when the flow is gone
  };

  /// A request being proxied: its server transaction, resolution and branches.
  struct proxied {
    sip::transaction_id server_tx = 0;
    sip::message received;  ///< as received (loop detection hashes it)
    sip::message request;   ///< Route preprocessed
    sip_endpoint from;
    /// From a UA (a plain one, or an SDK client using us as outbound proxy): resolved in the
    /// overlay, Record-Routed with its flow's token; else a hop from another peer.
    bool from_ua = true;
    std::string aor;
    int lookups = 0;                    ///< fetches and AppAttaches outstanding
    bool found_binding = false;         ///< some registration exists (480 rather than 404)
    bool flow_failed = false;           ///< an outbound binding's flow was gone (430)
    bool overlay_failed = false;        ///< a lookup got no answer (503 when nothing else is found)
    std::optional<sip::uri> route_hop;  ///< the next hop when it is an address (a Route)
    bool gateway_lookup = false;        ///< the target is outside the overlay
    bool to_trunk = false;              ///< we are the gateway: the branch goes to our trunk
    bool redirect = false;              ///< answer 302 with contacts instead of forwarding
    std::set<std::string> seen_aors;
    std::vector<target> targets;
    std::set<std::string> seen_targets;
    std::optional<sip::response_context> context;
    std::map<sip::transaction_id, sip::message> branches;  ///< client tx -> request sent
    std::vector<std::string> redirect_contacts;
    bool cancelled = false;
    bool final_sent = false;
    bool answered = false;  ///< a branch got a response beyond 100 (some UA answered)
  };

  sip_usage_config cfg;
  pr::node_id self;
  sip_services& services;
  sip::transaction_layer transactions;
  std::unique_ptr<sip::nonce_source> nonces;
  std::uint64_t rng_state;
  std::map<std::string, registration> registrations;  // by canonical AOR
  /// No binding expires before this (nullopt: no binding). Lowered wherever bindings are set,
  /// made exact by expire(): next_deadline() and the timer read it instead of walking every
  /// registration after each event (a share of every REGISTER's CPU, growing with the AORs). A
  /// floor that is too early costs one wake-up, never a missed expiry.
  std::optional<sip_time_point> binding_expiry_floor;

  void lower_expiry_floor(const std::vector<binding>& bindings) {
    for (const auto& b : bindings) {
      if (!binding_expiry_floor || b.expires < *binding_expiry_floor) {
        binding_expiry_floor = b.expires;
      }
    }
  }
  std::map<std::uint64_t, std::shared_ptr<proxied>> proxies;     // by id
  std::map<sip::transaction_id, std::uint64_t> proxy_of_client;  // client tx -> proxy id
  std::map<sip::transaction_id, std::uint64_t> proxy_of_server;  // server tx -> proxy id
  std::uint64_t next_proxy_id = 1;
  sip_usage_stats counters;
  /// This peer as a gateway: the role's account, and when to advertise again.
  std::optional<registration> gateway;
  std::optional<sip_time_point> gateway_refresh_at;
  bool gateway_advertised = false;
  static constexpr std::uint32_t gateway_lifetime = 600;
  /// REGISTERs of one AOR waiting for the Store of an earlier one, at most (they then go in one
  /// Store).
  static constexpr std::size_t max_waiting_registers = 256;

  impl(sip_usage_config c, pr::node_id id, sip_services& s, std::uint64_t seed)
      : cfg(std::move(c)),
        self(std::move(id)),
        services(s),
        transactions(cfg.timers),
        rng_state(seed ^ 0x9E3779B97F4A7C15ULL) {
    if (cfg.gateway_trunk && cfg.gateway_account) {
      gateway.emplace();
      gateway->account = *cfg.gateway_account;
      gateway_refresh_at = sip_time_point{};  // at the first timer
    }
    nonces = std::make_unique<sip::nonce_source>(std::span<const std::byte>(
        reinterpret_cast<const std::byte*>(cfg.secret.data()), cfg.secret.size()));
  }

  std::uint64_t random() {
    // splitmix64: branches and tags only.
    std::uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  void log(int level, const std::string& text) { services.log(level, text); }

  /// A flow token (RFC 5626 5.2): the flow, and an HMAC over it with our secret, so that a
  /// Route naming a flow cannot be forged by a UA.
  std::string flow_token(std::uint64_t flow) const {
    const std::string id = to_hex(flow);
    return id + "." + flow_mac(id);
  }

  /// The flow a token names, or nullopt when its MAC does not check.
  std::optional<std::uint64_t> flow_of_token(std::string_view token) const {
    const auto dot = token.find('.');
    if (dot != 16 || token.size() != 16 + 1 + 32) return std::nullopt;
    const std::string id(token.substr(0, dot));
    const std::string mac = flow_mac(id);
    unsigned diff = 0;  // constant time
    for (std::size_t i = 0; i < mac.size(); ++i) {
      diff |= static_cast<unsigned>(mac[i] ^ token[dot + 1 + i]);
    }
    if (diff != 0) return std::nullopt;
    std::uint64_t flow = 0;
    for (const char c : id) {
      const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (v < 0) return std::nullopt;
      flow = (flow << 4) | static_cast<std::uint64_t>(v);
    }
    return flow;
  }

  std::string flow_mac(std::string_view id) const {
    auto mac = Botan::MessageAuthenticationCode::create_or_throw("HMAC(SHA-256)");
    mac->set_key(cfg.secret.data(), cfg.secret.size());
    mac->update(reinterpret_cast<const std::uint8_t*>(id.data()), id.size());
    const auto out = mac->final();
    return Botan::hex_encode(out.data(), 16, false);  // the first 128 bits are enough
  }

  /// The top Route when it is ours and carries a flow token: the flow it names (0 when the token
  /// does not check). nullopt when there is no such Route.
  std::optional<std::uint64_t> flow_of_top_route(const sip::message& m) const {
    auto routes = sip::route_set(m, "Route");
    if (!routes || routes->empty() || !is_self_uri(routes->front().address)) return std::nullopt;
    const auto* token = sip::find_param(routes->front().address.params, flow_token_param);
    if (!token) return std::nullopt;
    return flow_of_token(token->value).value_or(0);
  }

  /// A Fetch of every dictionary entry of `kind` at `resource` (RFC 7904 4.2: no keys named).
  static pr::fetch_req fetch_all(const pr::resource_id& resource, std::uint32_t kind) {
    pr::fetch_req req;
    req.resource = resource;
    pr::stored_data_specifier spec;
    spec.kind = kind;
    spec.model = std::vector<pr::bytes>{};
    req.specifiers.push_back(std::move(spec));
    return req;
  }

  // ---- the transaction layer's actions ----

  void pump(sip_time_point now) {
    // Handlers may start transactions: take actions until none are left.
    for (int round = 0; round < 1000; ++round) {
      auto actions = transactions.take_actions();
      if (actions.empty()) return;
      for (auto& a : actions) handle_action(std::move(a), now);
    }
  }

  void handle_action(sip::transaction_layer::action&& a, sip_time_point now) {
    using layer = sip::transaction_layer;
    std::visit(
        [&](auto&& act) {
          using T = std::decay_t<decltype(act)>;
          if constexpr (std::is_same_v<T, layer::send>) {
            if (!services.send(act.target.flow, act.msg) && act.tx != 0) {
              transactions.on_transport_error(act.tx, now);
            }
          } else if constexpr (std::is_same_v<T, layer::request_received>) {
            auto from = services.endpoint(act.source.flow);
            if (!from) return;
            on_request(act.server_tx, std::move(act.request), *from, act.cancels, now);
          } else if constexpr (std::is_same_v<T, layer::ack_received>) {
            auto from = services.endpoint(act.source.flow);
            if (from) forward_stateless(std::move(act.ack), *from);
          } else if constexpr (std::is_same_v<T, layer::stray_response>) {
            forward_stray_response(std::move(act.response));
          } else if constexpr (std::is_same_v<T, layer::response_received>) {
            on_branch_response(act.client_tx, std::move(act.response), now);
          } else if constexpr (std::is_same_v<T, layer::timed_out>) {
            on_branch_failure(act.tx, 408, now);
          } else if constexpr (std::is_same_v<T, layer::transport_error>) {
            on_branch_failure(act.tx, 503, now);
          } else if constexpr (std::is_same_v<T, layer::terminated>) {
            on_terminated(act.tx);
          }
        },
        std::move(a));
  }

  // ---- responses of ours ----

  sip::message response_to(const sip::message& req, int status, std::string_view reason = {}) {
    std::string tag;
    if (status > 100) tag = to_hex(random()).substr(0, 10);
    return sip::make_response(req, status, reason,
                              tag.empty() ? std::nullopt : std::optional<std::string_view>(tag));
  }

  static std::string to_hex(std::uint64_t v) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = digits[v & 0xF];
    return out;
  }

  void respond(sip::transaction_id st, const sip::message& req, int status, sip_time_point now,
               std::string_view reason = {},
               const std::vector<std::pair<std::string, std::string>>& extra = {}) {
    auto r = response_to(req, status, reason);
    for (const auto& [name, value] : extra) r.add(name, value);
    transactions.respond(st, std::move(r), now);
  }

  // ---- requests ----

  static std::string describe(const sip_endpoint& e) {
    if (e.peer) return "peer " + e.peer->hex().substr(0, 8);
    return e.transport + " " + e.remote_ip + ":" + std::to_string(e.remote_port);
  }

  void on_request(sip::transaction_id st, sip::message req, const sip_endpoint& from,
                  std::optional<sip::transaction_id> cancels, sip_time_point now) {
    log(0, "SIP " + req.method + " " + req.request_uri + " from " + describe(from));
    if (auto bad = sip::check_request_uri_scheme(req)) {
      respond(st, req, bad->status, now, bad->reason);
      return;
    }
    if (req.method == "CANCEL") {
      on_cancel(st, req, cancels, now);
      return;
    }
    auto ruri = sip::request_uri_of(req);
    if (!ruri) {
      respond(st, req, 400, now, ruri.error().reason);
      return;
    }
    const bool for_us = is_self_uri(*ruri);
    if (req.method == "REGISTER" && (for_us || is_our_domain(*ruri))) {
      on_register(st, std::move(req), from, now);
      return;
    }
    sip::message received = req;
    const auto route_flow = flow_of_top_route(req);
    const bool ua = from_ua(req, from);
    if (auto refused = sip::check_request_for_proxy(req, proxy_checks())) {
      auto r = response_to(req, refused->status, refused->reason);
      for (auto& h : refused->headers) r.add(h.name, h.value);
      transactions.respond(st, std::move(r), now);
      return;
    }
    if (auto pre = sip::preprocess_route(req, [this](const sip::uri& u) { return is_self_uri(u); });
        !pre) {
      respond(st, req, 400, now, pre.error().reason);
      return;
    }
    if (for_us && !has_route(req) && ruri->user.empty()) {
      // A request for this peer itself: OPTIONS is answered (a keepalive ping of UAs).
      if (req.method == "OPTIONS") {
        respond(st, req, 200, now, {},
                {{"Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, REGISTER"},
                 {"Supported", "outbound, path"}});
      } else {
        respond(st, req, 404, now, "No such user here");
      }
      return;
    }
    start_proxy(st, std::move(received), std::move(req), from, ua, route_flow, now);
  }

  /// Whether a request comes from a UA rather than from another peer: anything not on an
  /// AppAttach connection does; on one, an SDK client's request does: its top Route names us with
  /// `ob` (RFC 5626 5.1: the outbound proxy's URI it was configured with), or its flow holds the
  /// client's certified registration.
  bool from_ua(const sip::message& req, const sip_endpoint& from) const {
    if (!from.peer || client_flow(from.flow)) return true;
    auto routes = sip::route_set(req, "Route");
    return routes && !routes->empty() && is_self_uri(routes->front().address) &&
           sip::find_param(routes->front().address.params, "ob") != nullptr;
  }

  /// A flow holding a certified (SDK client) binding.
  bool client_flow(std::uint64_t flow) const {
    if (flow == 0) return false;
    for (const auto& [aor, reg] : registrations) {
      for (const auto& b : reg.bindings) {
        if (b.certified && b.flow == flow) return true;
      }
    }
    return false;
  }

  /// Another peer's AppAttach connection (not a client's registered one).
  bool is_peer_hop(const sip_endpoint& e) const { return e.peer && !client_flow(e.flow); }

  static bool has_route(const sip::message& m) { return m.find("Route") != nullptr; }

  /// What 16.3 checks against: no Proxy-Require extension, and our sent-by values (loops).
  sip::proxy_check_options proxy_checks() const {
    sip::proxy_check_options o;
    for (const auto& l : cfg.listen) o.own.push_back({l.host, l.port});
    o.own.push_back({peer_host(), 5061});
    return o;
  }

  /// The host name our Vias and Record-Routes carry on AppAttach connections.
  std::string peer_host() const { return std::string(node_user_prefix) + self.hex() + ".invalid"; }

  bool is_our_domain(const sip::uri& u) const { return u.is_sip() && iequal(u.host, cfg.domain); }

  /// A URI naming this peer: our Node-ID as user (Record-Route of ours), or one of our listen
  /// addresses without a user part.
  bool is_self_uri(const sip::uri& u) const {
    if (!u.is_sip()) return false;
    if (u.user.starts_with(node_user_prefix)) {
      return iequal(std::string_view(u.user).substr(node_user_prefix.size()), self.hex());
    }
    if (iequal(u.host, peer_host())) return true;
    if (!u.user.empty()) return false;
    for (const auto& l : cfg.listen) {
      if (iequal(u.host, l.host) && u.port.value_or(l.transport == "TLS" ? 5061 : 5060) == l.port)
        return true;
    }
    return false;
  }

  /// The Node-ID a URI of another peer names (its Record-Route), if any.
  std::optional<pr::node_id> peer_of_uri(const sip::uri& u) const {
    if (!u.is_sip() || !u.user.starts_with(node_user_prefix)) return std::nullopt;
    auto id = pr::node_id::from_hex(std::string_view(u.user).substr(node_user_prefix.size()));
    if (!id || *id == self) return std::nullopt;
    return id;
  }

  // ---- registrar ----

  void on_register(sip::transaction_id st, sip::message req, const sip_endpoint& from,
                   sip_time_point now) {
    auto to = sip::to(req);
    if (!to || !to->address.is_sip()) {
      respond(st, req, 400, now, "To is not a SIP AOR");
      return;
    }
    if (!is_our_domain(to->address)) {
      respond(st, req, 403, now, "Not a domain of this registrar");
      return;
    }
    for (const auto& tag : sip::option_tags(req, "Require").value_or(std::vector<std::string>{})) {
      if (tag != "outbound" && tag != "path") {
        respond(st, req, 420, now, {}, {{"Unsupported", tag}});
        return;
      }
    }
    const std::string aor = aor_of(to->address);
    if (from.peer) {
      register_certified(st, req, from, aor, now);
      return;
    }
    auto account = authenticate(st, req, now);
    if (!account) return;  // challenged or refused
    const auto account_uri = sip::parse_uri(account->aor);
    if (!account_uri || aor_of(*account_uri) != aor) {
      ++counters.auth_failures;
      respond(st, req, 403, now, "Not your AOR");
      return;
    }
    auto& reg = registrations[aor];
    reg.account = *account;
    if (reg.storing) {
      if (reg.waiting.size() >= max_waiting_registers) {
        // One AOR's REGISTERs wait for the Store in flight and then go together: a flood for
        // one AOR is refused rather than queued without bound.
        respond(st, req, 503, now, "Registration in progress", {{"Retry-After", "1"}});
        return;
      }
      reg.waiting.push_back({st, std::move(req), from});
      return;
    }
    apply_register(aor, st, req, from, now);
  }

  /// Whether a certificate's user name ("alice@example.org") is the AOR's user (RFC 6940 13.3
  /// and RFC 7904 3.3: the certificate names the user whose AOR it is; the domain compares
  /// without case as in aor_of).
  static bool certificate_names(std::string_view user, const std::string& aor) {
    if (user.empty()) return false;
    const auto at = user.rfind('@');
    const std::string canonical =
        at == std::string_view::npos
            ? std::string(user)
            : std::string(user.substr(0, at + 1)) + lower(user.substr(at + 1));
    return canonical == sip_resource_name(aor);
  }

  /// A REGISTER over an AppAttach connection: an SDK client's, authenticated by the
  /// connection's certificate (mutual TLS with overlay certificates) rather than digest. The
  /// client stores its own route (signed with its own key, RFC 7904 3.3), so its bindings are
  /// kept here only, on its flow, and answered at once. A Store in flight for the AOR's digest
  /// bindings is not waited for: it touches only those (see apply_registers).
  void register_certified(sip::transaction_id st, const sip::message& req, const sip_endpoint& from,
                          const std::string& aor, sip_time_point now) {
    if (!certificate_names(from.peer_user, aor)) {
      ++counters.auth_failures;
      log(1, "SIP REGISTER for " + aor + " from " + describe(from) + ": its certificate is " +
                 (from.peer_user.empty() ? std::string("no user's")
                                         : printable(from.peer_user) + "'s"));
      respond(st, req, 403, now, "Not your AOR");
      return;
    }
    auto& reg = registrations[aor];
    if (reg.account.aor.empty()) reg.account.aor = aor;  // no credentials: nothing stored by us
    std::vector<binding> mine;
    std::vector<binding> others;
    for (auto& b : reg.bindings) {
      if (b.expires <= now) continue;
      (b.certified ? mine : others).push_back(std::move(b));
    }
    const bool was_empty = mine.empty();
    auto effect = apply_contacts(st, req, from, mine, now, true);
    if (effect) {
      // Only this registration's own bindings change (a client's Contact: * leaves the phones
      // registered by digest).
      if (!effect->query) {
        if (mine.empty() && !was_empty) {
          log(1, "SIP " + aor + " unregistered its client");
        } else if (was_empty && !mine.empty()) {
          log(1, "SIP " + aor + " registered a client (" + describe(from) + ")");
        }
      }
    }
    reg.bindings = std::move(others);
    for (auto& b : mine) reg.bindings.push_back(std::move(b));
    lower_expiry_floor(reg.bindings);
    if (effect) answer_register(st, req, reg.bindings, effect->outbound, now);
    drop_if_unused(aor);
  }

  /// Forgets an AOR with no binding, no Store in flight and nothing waiting.
  void drop_if_unused(const std::string& aor) {
    auto it = registrations.find(aor);
    if (it == registrations.end()) return;
    const auto& reg = it->second;
    if (reg.bindings.empty() && !reg.storing && reg.waiting.empty()) registrations.erase(it);
  }

  /// The account a REGISTER's credentials prove, or nullopt after answering 401 or 403.
  std::optional<sip_account> authenticate(sip::transaction_id st, const sip::message& req,
                                          sip_time_point now) {
    const auto wall =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(services.wall_clock_ms()));
    bool stale = false;
    auto values = sip::auth_values(req, "Authorization");
    if (values) {
      for (const auto& v : *values) {
        auto cred = sip::parse_digest_credentials(v);
        if (!cred || !iequal(cred->realm, cfg.domain)) continue;
        if (std::find(cfg.digest_algorithms.begin(), cfg.digest_algorithms.end(),
                      cred->algorithm) == cfg.digest_algorithms.end()) {
          continue;  // an algorithm we do not offer: challenged again
        }
        const auto check = nonces->check(cred->nonce, wall, cfg.nonce_lifetime);
        if (check == sip::nonce_source::nonce_check::stale) {
          stale = true;
          continue;
        }
        if (check != sip::nonce_source::nonce_check::valid) continue;
        auto account = services.account_by_username(cred->username);
        const std::string& ha1 = !account ? std::string()
                                 : cred->algorithm == sip::digest_algorithm::sha256
                                     ? account->ha1_sha256
                                     : account->ha1_md5;
        if (account && !ha1.empty() && sip::check_digest_response(*cred, ha1, req.method)) {
          return account;
        }
        // A fresh nonce and a wrong answer: the password is wrong (or the user unknown).
        ++counters.auth_failures;
        log(1, "SIP REGISTER for " + printable(cred->username) + " from " + describe_source(req) +
                   ": wrong credentials");
        respond(st, req, 403, now, "Wrong credentials");
        return std::nullopt;
      }
    }
    const std::string nonce = nonces->issue(wall);
    auto r = response_to(req, 401);
    for (const auto algorithm : cfg.digest_algorithms) {
      r.add("WWW-Authenticate", sip::make_challenge(algorithm, cfg.domain, nonce, stale));
    }
    transactions.respond(st, std::move(r), now);
    return std::nullopt;
  }

  /// `s` with every octet outside printable ASCII as '?', for log lines.
  static std::string printable(std::string_view s) {
    std::string out(s.substr(0, 128));
    for (auto& c : out) {
      if (c < 0x20 || c > 0x7E) c = '?';
    }
    return out;
  }

  static std::string describe_source(const sip::message& req) {
    auto v = sip::vias(req);
    if (!v || v->empty()) return "?";
    return v->front().received().value_or(v->front().host);
  }

  /// What one REGISTER did to the working bindings.
  struct register_effect {
    bool query = false;     ///< no Contact: answered with the bindings, nothing to store
    bool outbound = false;  ///< an RFC 5626 registration (Require: outbound in the 200)
  };

  /// RFC 3261 10.3 steps 6 and 7 for one authenticated REGISTER: applies its contacts to
  /// `bindings`. A refused one is answered here (nullopt); `bindings` is then as it was.
  std::optional<register_effect> apply_contacts(sip::transaction_id st, const sip::message& req,
                                                const sip_endpoint& from,
                                                std::vector<binding>& bindings, sip_time_point now,
                                                bool certified = false) {
    auto contacts = sip::contacts(req);
    if (!contacts) {
      respond(st, req, 400, now, contacts.error().reason);
      return std::nullopt;
    }
    auto expires_header = sip::delta_seconds(req, "Expires");
    const std::uint32_t default_expires =
        expires_header && *expires_header ? **expires_header : cfg.default_expires;
    const auto call = sip::call_id(req);
    const auto seq = sip::cseq_of(req);
    if (!call || !seq) {
      respond(st, req, 400, now, "Malformed Call-ID or CSeq");
      return std::nullopt;
    }
    register_effect effect;
    if (contacts->contacts.empty() && !contacts->star) {
      effect.query = true;
      return effect;
    }
    auto working = bindings;
    if (contacts->star) {
      if (default_expires != 0 || !contacts->contacts.empty()) {
        respond(st, req, 400, now, "Contact: * needs Expires: 0 and no other contact");
        return std::nullopt;
      }
      working.clear();
    }
    const auto supported = sip::option_tags(req, "Supported").value_or(std::vector<std::string>{});
    const bool ua_outbound =
        std::find(supported.begin(), supported.end(), "outbound") != supported.end();
    if (ua_outbound) {
      // RFC 5626 6: a REGISTER with reg-id that came through an edge proxy (Path) without
      // outbound support (no ;ob on the first Path URI) cannot get a flow: 439.
      const bool with_reg_id =
          std::any_of(contacts->contacts.begin(), contacts->contacts.end(),
                      [](const sip::name_addr& c) { return sip::contact_reg_id(c).has_value(); });
      auto path = sip::route_set(req, "Path");
      if (with_reg_id && path && !path->empty() &&
          !sip::find_param(path->front().address.params, "ob")) {
        respond(st, req, 439, now, "First Hop Lacks Outbound Support");
        return std::nullopt;
      }
    }
    for (const auto& c : contacts->contacts) {
      const std::uint32_t expires = sip::contact_expires(c).value_or(default_expires);
      if (expires != 0 && expires < cfg.min_expires) {
        respond(st, req, 423, now, {}, {{"Min-Expires", std::to_string(cfg.min_expires)}});
        return std::nullopt;
      }
      binding b;
      b.uri = c.address;
      b.contact = sip::to_string(sip::name_addr{{}, true, c.address, {}});
      b.flow = from.flow;
      b.instance = sip::contact_instance(c).value_or("");
      b.reg_id = sip::contact_reg_id(c);
      b.outbound = ua_outbound && !b.instance.empty() && b.reg_id.has_value();
      b.certified = certified;
      if (certified) b.client = from.peer;
      effect.outbound = effect.outbound || b.outbound;
      b.call_id = *call;
      b.cseq = seq->number;
      b.q = sip::contact_q(c).value_or(1000);
      b.expires = now + std::chrono::seconds(std::min(expires, cfg.max_expires));
      // The same contact, or for RFC 5626 the same instance and reg-id, replaces its binding.
      auto same = std::find_if(working.begin(), working.end(), [&](const binding& o) {
        if (b.outbound && o.outbound) return o.instance == b.instance && o.reg_id == b.reg_id;
        return sip::uri_equal(o.uri, b.uri);
      });
      if (same != working.end()) {
        if (same->call_id == b.call_id && same->cseq >= b.cseq) {
          respond(st, req, 500, now, "CSeq out of order");
          return std::nullopt;
        }
        if (expires == 0) {
          working.erase(same);
        } else {
          *same = b;
        }
      } else if (expires != 0) {
        working.push_back(b);
      }
    }
    bindings = std::move(working);
    return effect;
  }

  void apply_register(const std::string& aor, sip::transaction_id st, const sip::message& req,
                      const sip_endpoint& from, sip_time_point now) {
    std::vector<registration::waiting_register> batch;
    batch.push_back({st, req, from});
    apply_registers(aor, std::move(batch), now);
  }

  /// RFC 3261 10.3 for REGISTERs of `aor` in arrival order, as one change: their bindings are
  /// stored in the overlay first (one Store for all), applied and answered when it is. REGISTERs
  /// that arrive meanwhile wait and go together in the next batch.
  void apply_registers(const std::string& aor, std::vector<registration::waiting_register> batch,
                       sip_time_point now) {
    auto& reg = registrations[aor];
    // The digest-registered bindings only: this peer stores the route for those; an SDK
    // client's (certified) ones are the client's to store and change meanwhile.
    auto bindings = reg.bindings;
    std::erase_if(bindings, [now](const binding& b) { return b.certified || b.expires <= now; });
    struct accepted_register {
      sip::transaction_id server_tx = 0;
      sip::message request;
      bool outbound = false;
    };
    std::vector<accepted_register> accepted;
    for (auto& w : batch) {
      auto effect = apply_contacts(w.server_tx, w.request, w.from, bindings, now);
      if (!effect) continue;
      if (effect->query) {
        answer_register(w.server_tx, w.request, bindings, false, now);
        continue;
      }
      accepted.push_back({w.server_tx, std::move(w.request), effect->outbound});
    }
    if (accepted.empty()) return next_waiting(aor, now);
    // Store (or tombstone) this peer's route for the user, then apply and answer.
    sip_time_point last = now;
    for (const auto& b : bindings) last = std::max(last, b.expires);
    const auto lifetime = static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::seconds>(last - now).count());
    reg.storing = true;
    // Computed before the call: the callback below takes `bindings` away.
    const std::uint32_t stored_lifetime = bindings.empty() ? 0 : lifetime + 1;
    store_route(
        aor, stored_lifetime,
        [this, aor, accepted = std::move(accepted), bindings = std::move(bindings)](
            std::optional<std::string> error, sip_time_point at) mutable {
          auto it = registrations.find(aor);
          if (it == registrations.end()) return;
          it->second.storing = false;
          if (error) {
            ++counters.overlay_failures;
            log(2, "SIP REGISTER of " + aor + ": the overlay refused the Store: " + *error);
            for (const auto& a : accepted) {
              respond(a.server_tx, a.request, 503, at, "Overlay unavailable",
                      {{"Retry-After", "5"}});
            }
          } else {
            ++counters.registers_stored;
            const bool was_empty =
                std::none_of(it->second.bindings.begin(), it->second.bindings.end(),
                             [](const binding& b) { return !b.certified; });
            // The stored ones, and the certified ones as they are now (not waited for).
            for (auto& b : it->second.bindings) {
              if (b.certified) bindings.push_back(std::move(b));
            }
            it->second.bindings = std::move(bindings);
            lower_expiry_floor(it->second.bindings);
            for (const auto& a : accepted) {
              answer_register(a.server_tx, a.request, it->second.bindings, a.outbound, at);
            }
            const auto stored = static_cast<std::size_t>(
                std::count_if(it->second.bindings.begin(), it->second.bindings.end(),
                              [](const binding& b) { return !b.certified; }));
            if (stored == 0) {
              log(1, "SIP " + aor + " unregistered");
            } else if (was_empty) {
              log(1, "SIP " + aor + " registered (" + std::to_string(stored) + " contacts)");
            }
          }
          next_waiting(aor, at);
          pump(at);
        },
        now);
  }

  /// After a Store: every REGISTER that waited for it, as the next batch.
  void next_waiting(const std::string& aor, sip_time_point now) {
    auto it = registrations.find(aor);
    if (it == registrations.end()) return;
    auto& reg = it->second;
    if (reg.storing || reg.waiting.empty()) {
      if (!reg.storing && reg.waiting.empty() && reg.bindings.empty()) registrations.erase(it);
      return;
    }
    auto batch = std::move(reg.waiting);
    reg.waiting.clear();
    apply_registers(aor, std::move(batch), now);
  }

  void answer_register(sip::transaction_id st, const sip::message& req,
                       const std::vector<binding>& bindings, bool outbound, sip_time_point now) {
    auto r = response_to(req, 200);
    for (const auto& b : bindings) {
      const auto left = std::chrono::duration_cast<std::chrono::seconds>(b.expires - now).count();
      std::string value = b.contact + ";expires=" + std::to_string(std::max<long long>(left, 0));
      if (!b.instance.empty()) value += ";+sip.instance=\"" + b.instance + "\"";
      if (b.reg_id) value += ";reg-id=" + std::to_string(*b.reg_id);
      r.add("Contact", value);
    }
    if (outbound) {
      r.add("Require", "outbound");
      r.add("Flow-Timer", std::to_string(cfg.flow_timer));
    }
    transactions.respond(st, std::move(r), now);
  }

  /// Stores this peer's route for the account's user at `aor` (a tombstone when lifetime is 0),
  /// signed with the user's credentials (RFC 7904 3.3: only the certificate's owner stores).
  using store_done = std::function<void(std::optional<std::string>, sip_time_point)>;

  /// What a route is stored for: a user's AOR (SIP-REGISTRATION, RFC 7904) or this peer as a
  /// gateway (p2psip-sip-gateway at "sip-gateway@<domain>").
  struct route_slot {
    std::string aor;  ///< the registrations key, or empty for the gateway advertisement
    std::uint32_t kind = pr::kinds::sip_registration;
    std::string resource_name() const { return sip_resource_name(aor); }
  };

  registration* registration_of(const route_slot& slot) {
    if (slot.kind == pr::kinds::p2psip_sip_gateway) return gateway ? &*gateway : nullptr;
    auto it = registrations.find(slot.aor);
    return it == registrations.end() ? nullptr : &it->second;
  }

  route_slot gateway_slot() const {
    return {"sip:sip-gateway@" + cfg.domain, pr::kinds::p2psip_sip_gateway};
  }

  void store_route(const std::string& aor, std::uint32_t lifetime, store_done done,
                   sip_time_point now) {
    store_route(route_slot{aor, pr::kinds::sip_registration}, lifetime, std::move(done), now);
  }

  /// Stores this peer's route for the slot's user (a tombstone when lifetime is 0), signed with
  /// the user's credentials (RFC 7904 3.3: only the certificate's owner stores). The dictionary
  /// key is one of the user's Node-IDs (RFC 7904 7: one per device): the first time, a key no
  /// other peer's live route uses is chosen from what the overlay holds.
  void store_route(const route_slot& slot, std::uint32_t lifetime, store_done done,
                   sip_time_point now) {
    auto* reg = registration_of(slot);
    if (!reg || !reg->account.credentials) {
      done("no credentials for " + slot.aor, now);
      return;
    }
    if (reg->key) {
      store_with_key(slot, lifetime, std::move(done), now);
      return;
    }
    const auto& ids = reg->account.credentials->signing.cert().node_ids();
    if (ids.size() == 1) {
      reg->key = ids.front();
      store_with_key(slot, lifetime, std::move(done), now);
      return;
    }
    const auto resource = pr::hash_resource_name(slot.resource_name(), self.size());
    pr::fetch_req req = fetch_all(resource, slot.kind);
    const bool sent = services.overlay_request(
        {pr::to_destination(resource)}, std::move(req), nullptr, nullptr, {},
        [this, slot, lifetime, done](node::outcome&& o, node::time_point at) {
          auto* r = registration_of(slot);
          if (!r) return;
          if (!o.ok() &&
              !(o.what == node::outcome::kind::error &&
                o.error.error_code == static_cast<std::uint16_t>(pr::reload_errc::not_found))) {
            done("cannot read the stored routes: " + node::describe(o), at);
            return;
          }
          if (lifetime == 0) {
            // Removing: only a route of ours (stored before a restart, say); never another
            // device's key.
            r->key = our_key(*r, o);
            if (!r->key) {
              done(std::nullopt, at);
              return;
            }
          } else {
            r->key = choose_key(*r, o);
          }
          store_with_key(slot, lifetime, done, at);
        });
    if (!sent) done("no route into the overlay", now);
  }

  /// Whether `key` is the Node-ID of a client registered here by certificate: its own value
  /// (also a route through this peer) is under it.
  static bool client_key(const registration& reg, const pr::bytes& key) {
    return std::any_of(reg.bindings.begin(), reg.bindings.end(), [&key](const binding& b) {
      return b.client && pr::bytes(b.client->view().begin(), b.client->view().end()) == key;
    });
  }

  /// The key of a live route through this peer among the fetched values, if any.
  std::optional<pr::node_id> our_key(const registration& reg, const node::outcome& o) const {
    const auto* ans = std::get_if<pr::fetch_ans>(&o.body);
    if (!ans) return std::nullopt;
    for (const auto& kr : ans->kind_responses) {
      for (const auto& d : kr.values) {
        const auto* entry = std::get_if<pr::dictionary_entry>(&d.value);
        if (!entry || !entry->value.exists || client_key(reg, entry->key)) continue;
        auto v = pr::decode_sip_registration(entry->value.value, pr::limits{});
        if (!v || v->destination_list.empty()) continue;
        const auto* last = v->destination_list.back().node();
        if (!last || *last != self) continue;
        for (const auto& id : reg.account.credentials->signing.cert().node_ids()) {
          if (pr::bytes(id.view().begin(), id.view().end()) == entry->key) return id;
        }
      }
    }
    return std::nullopt;
  }

  /// The user's Node-ID this peer stores under: the key of a route through us if the overlay
  /// holds one, else one no live value uses, else the one whose value is oldest (that device's
  /// registration is then replaced: logged).
  pr::node_id choose_key(const registration& reg, const node::outcome& o) {
    const auto& ids = reg.account.credentials->signing.cert().node_ids();
    std::map<pr::bytes, std::pair<bool, std::uint64_t>> used;  // key -> (ours, storage time)
    if (const auto* ans = std::get_if<pr::fetch_ans>(&o.body)) {
      for (const auto& kr : ans->kind_responses) {
        for (const auto& d : kr.values) {
          const auto* entry = std::get_if<pr::dictionary_entry>(&d.value);
          if (!entry || !entry->value.exists) continue;
          bool ours = false;
          if (auto v = pr::decode_sip_registration(entry->value.value, pr::limits{});
              v && !v->destination_list.empty()) {
            const auto* last = v->destination_list.back().node();
            ours = last && *last == self && !client_key(reg, entry->key);
          }
          used[entry->key] = {ours, d.storage_time};
        }
      }
    }
    const auto key_of = [](const pr::node_id& id) {
      return pr::bytes(id.view().begin(), id.view().end());
    };
    for (const auto& id : ids) {
      if (auto it = used.find(key_of(id)); it != used.end() && it->second.first) return id;
    }
    for (const auto& id : ids) {
      if (used.count(key_of(id)) == 0) return id;
    }
    const pr::node_id* oldest = &ids.front();
    for (const auto& id : ids) {
      if (used[key_of(id)].second < used[key_of(*oldest)].second) oldest = &id;
    }
    log(2, "SIP " + reg.account.aor + " is registered through " + std::to_string(ids.size()) +
               " peers already (its certificate's Node-IDs): the oldest registration is replaced");
    return *oldest;
  }

  void store_with_key(const route_slot& slot, std::uint32_t lifetime, const store_done& done,
                      sip_time_point now) {
    auto* reg = registration_of(slot);
    if (!reg || !reg->key) {
      done("no key chosen for " + slot.aor, now);
      return;
    }
    const auto& signing = reg->account.credentials->signing;
    const pr::node_id user_node = *reg->key;
    const auto resource = pr::hash_resource_name(slot.resource_name(), self.size());
    pr::stored_data d;
    d.storage_time = std::max(services.wall_clock_ms(), reg->last_storage_time + 1);
    reg->last_storage_time = d.storage_time;
    d.lifetime = lifetime == 0 ? cfg.max_expires : lifetime;
    pr::data_value dv;
    dv.exists = lifetime != 0;
    if (dv.exists) {
      pr::sip_registration value;
      value.type = pr::sip_registration_type::route;
      value.destination_list.push_back(pr::to_destination(self));
      auto encoded = pr::encode_sip_registration(value);
      if (!encoded) {
        done("cannot encode the registration", now);
        return;
      }
      dv.value = std::move(*encoded);
    }
    d.value = pr::dictionary_entry{pr::bytes(user_node.view().begin(), user_node.view().end()),
                                   std::move(dv)};
    // Noted as ours in the trust store: when this peer stores the value itself (it is
    // responsible for the Resource-ID), the Store never leaves the process and the storage
    // takes the signature without verifying it again.
    if (auto ok = crypto::sign_stored_data(d, resource, slot.kind, signing, user_node, cfg.trust);
        !ok) {
      done("cannot sign as " + reg->account.aor + ": " + ok.error().message(), now);
      return;
    }
    pr::store_req req;
    req.resource = resource;
    pr::store_kind_data kd;
    kd.kind = slot.kind;
    kd.values.push_back(std::move(d));
    req.kind_data.push_back(std::move(kd));
    std::vector<pr::generic_certificate> certs{signing.cert().generic()};
    const bool sent = services.overlay_request(
        {pr::to_destination(resource)}, std::move(req), &reg->account, &user_node, std::move(certs),
        [done](node::outcome&& o, node::time_point at) {
          if (o.ok() && std::holds_alternative<pr::store_ans>(o.body)) {
            done(std::nullopt, at);
          } else {
            done(node::describe(o), at);
          }
        });
    if (!sent) done("no route into the overlay", now);
  }

  // ---- gateway ----

  /// Advertises this peer as a gateway (a route to it under the gateway role's key), again
  /// before the value's lifetime runs out; retried sooner after a failure.
  void advertise_gateway(sip_time_point now) {
    if (!gateway || gateway->storing) return;
    gateway->storing = true;
    gateway_refresh_at.reset();
    store_route(
        gateway_slot(), gateway_lifetime,
        [this](std::optional<std::string> error, sip_time_point at) {
          gateway->storing = false;
          if (error) {
            log(2, "SIP gateway: cannot advertise this peer in the overlay: " + *error);
            gateway_refresh_at = at + std::chrono::seconds(1);  // the overlay may be joining
          } else {
            if (!gateway_advertised) log(1, "SIP gateway: advertised in the overlay");
            gateway_advertised = true;
            gateway_refresh_at = at + std::chrono::seconds(gateway_lifetime / 2);
          }
        },
        now);
  }

  /// A target outside the overlay (tel:, another domain): to our trunk when we are a gateway,
  /// else to a gateway peer found in the overlay.
  void route_to_gateway(std::uint64_t id, sip_time_point now) {
    auto p = proxies.at(id);
    const auto ruri = *sip::request_uri_of(p->request);
    if (cfg.gateway_trunk) {
      p->route_hop = *cfg.gateway_trunk;
      p->to_trunk = true;
      p->targets.push_back(target{ruri, 0, false});
      return resolved(id, now);
    }
    if (!p->from_ua) {
      respond(p->server_tx, p->request, 404, now, "This peer is not a gateway");
      return finish(id);
    }
    const auto slot = gateway_slot();
    const auto resource = pr::hash_resource_name(slot.resource_name(), self.size());
    pr::fetch_req req = fetch_all(resource, slot.kind);
    ++p->lookups;
    p->gateway_lookup = true;
    const bool sent = services.overlay_request(
        {pr::to_destination(resource)}, std::move(req), nullptr, nullptr, {},
        [this, id, resource, ruri](node::outcome&& o, node::time_point at) {
          auto it = proxies.find(id);
          if (it == proxies.end()) return;
          auto& px = *it->second;
          --px.lookups;
          if (o.ok()) {
            // One gateway (a call must reach the trunk once): the most recently advertised.
            auto routes = verified_routes(o, resource, pr::kinds::p2psip_sip_gateway,
                                          "sip-gateway@" + cfg.domain);
            if (!routes.empty()) {
              std::sort(routes.begin(), routes.end(),
                        [](const auto& a, const auto& b) { return a.first > b.first; });
              connect_target(id, routes.front().second.destination_list, ruri);
            }
          } else if (o.what != node::outcome::kind::error) {
            px.overlay_failed = true;
          }
          resolved(id, at);
          pump(at);
        });
    if (!sent) {
      --p->lookups;
      p->overlay_failed = true;
    }
    resolved(id, now);
  }

  /// The route values of a Fetch answer whose signature and owner check (USER-NODE-MATCH), with
  /// their storage times.
  std::vector<std::pair<std::uint64_t, pr::sip_registration>> verified_routes(
      const node::outcome& o, const pr::resource_id& resource, std::uint32_t kind,
      const std::string& what) {
    std::vector<std::pair<std::uint64_t, pr::sip_registration>> out;
    const auto* ans = std::get_if<pr::fetch_ans>(&o.body);
    if (!ans) return out;
    const auto wall =
        std::chrono::system_clock::time_point(std::chrono::milliseconds(services.wall_clock_ms()));
    for (const auto& kr : ans->kind_responses) {
      if (kr.kind != kind) continue;
      for (const auto& d : kr.values) {
        const auto* entry = std::get_if<pr::dictionary_entry>(&d.value);
        if (!entry || !entry->value.exists) continue;
        if (cfg.trust) {
          auto who = crypto::verify_stored_data(d, resource, kind, o.message.security.certificates,
                                                *cfg.trust, wall);
          if (!who || !crypto::check_access(crypto::access_policy::user_node_match, *who, resource,
                                            d.value)) {
            log(2, "SIP lookup of " + what + ": a value whose signature or owner does not check");
            continue;
          }
        }
        auto reg = pr::decode_sip_registration(entry->value.value, pr::limits{});
        if (!reg) {
          log(2, "SIP lookup of " + what +
                     ": a value that is not a SipRegistration: " + reg.error().message());
          continue;
        }
        out.emplace_back(d.storage_time, std::move(*reg));
      }
    }
    return out;
  }

  // ---- proxy ----

  void start_proxy(sip::transaction_id st, sip::message received, sip::message req,
                   const sip_endpoint& from, bool from_ua, std::optional<std::uint64_t> route_flow,
                   sip_time_point now) {
    auto p = std::make_shared<proxied>();
    p->received = std::move(received);
    const auto id = next_proxy_id++;
    p->server_tx = st;
    p->request = std::move(req);
    p->from = from;
    p->from_ua = from_ua;
    proxies[id] = p;
    proxy_of_server[st] = id;
    // RFC 3841: a peer asking for a redirect gets the contacts registered here.
    if (cfg.mode == sip_mode::redirect && from_ua) p->redirect = true;
    if (!from_ua) {
      if (auto* d = p->request.find("Request-Disposition"); d && lower(d->value) == "redirect") {
        p->redirect = true;
      }
    }

    auto routes = sip::route_set(p->request, "Route");
    if (routes && !routes->empty()) {
      // Loose routing (16.6 step 6... 7): the next hop is the top Route.
      const auto& next = routes->front().address;
      if (auto peer = peer_of_uri(next)) {
        connect_target(id, {pr::to_destination(*peer)},
                       p->request.request_uri.empty() ? next : *sip::request_uri_of(p->request));
      } else {
        add_address_target(*p, next, *sip::request_uri_of(p->request));
      }
      return resolved(id, now);
    }
    if (route_flow && *route_flow == from.flow) {
      // The token names the flow the request came on: the UA's own request going out (RFC 5626
      // 5.3), routed by its Request-URI.
      route_flow.reset();
    }
    if (route_flow) {
      // Our Record-Route's flow token (RFC 5626 5.3): the UA's flow, or 430 when it is gone; a
      // token that does not check is refused.
      if (*route_flow == 0) {
        respond(st, p->request, 403, now, "Invalid flow token");
        return finish(id);
      }
      if (!services.endpoint(*route_flow)) {
        respond(st, p->request, 430, now);
        return finish(id);
      }
      p->targets.push_back(target{*sip::request_uri_of(p->request), *route_flow, true});
      return resolved(id, now);
    }
    auto ruri = *sip::request_uri_of(p->request);
    if (auto node = peer_of_uri(ruri)) {
      // A node's own Contact (an SDK client's, say): in-dialog requests go to that node, over
      // the AppAttach connection open to it.
      connect_target(id, {pr::to_destination(*node)}, ruri);
      return resolved(id, now);
    }
    if (is_our_domain(ruri) && !ruri.user.empty()) {
      p->aor = aor_of(ruri);
      add_local_targets(*p, p->aor, now);
      if (from_ua) {
        lookup(id, p->aor, 0);
      } else {
        // The other peer found a registration through us: with no binding left here (its flow
        // closed, say) the user is registered but unreachable (480), not unknown.
        p->found_binding = true;
      }
      return resolved(id, now);
    }
    if (auto flow = binding_flow_of_contact(ruri)) {
      p->targets.push_back(target{ruri, flow->first, flow->second});
      return resolved(id, now);
    }
    if (ruri.scheme == "tel" || !ruri.is_sip() || !is_address(ruri.host)) {
      return route_to_gateway(id, now);
    }
    add_address_target(*p, ruri, ruri);
    resolved(id, now);
  }

  static bool is_address(std::string_view host) {
    if (host.starts_with('[')) return true;
    return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
      return std::isdigit(static_cast<unsigned char>(c)) || c == '.';
    });
  }

  /// A local binding whose contact is `u` (an in-dialog request to a UA registered here).
  std::optional<std::pair<std::uint64_t, bool>> binding_flow_of_contact(const sip::uri& u) const {
    for (const auto& [aor, reg] : registrations) {
      for (const auto& b : reg.bindings) {
        if (sip::uri_equal(b.uri, u)) return std::make_pair(b.flow, b.outbound);
      }
    }
    return std::nullopt;
  }

  void add_address_target(proxied& p, const sip::uri& next_hop, const sip::uri& request_uri) {
    target t;
    t.request_uri = request_uri;
    t.flow = 0;
    p.targets.push_back(t);
    if (!sip::uri_equal(next_hop, request_uri)) p.route_hop = next_hop;
  }

  void add_local_targets(proxied& p, const std::string& aor, sip_time_point now) {
    auto it = registrations.find(aor);
    if (it == registrations.end()) return;
    for (const auto& b : it->second.bindings) {
      if (b.expires <= now) continue;
      p.found_binding = true;
      if (!services.endpoint(b.flow) && b.outbound) {
        p.flow_failed = true;
        continue;
      }
      if (!p.seen_targets.insert(b.contact).second) continue;
      if (p.redirect) {
        p.redirect_contacts.push_back(b.contact);
        continue;
      }
      target t;
      t.request_uri = b.uri;
      t.flow = services.endpoint(b.flow) ? b.flow : 0;
      t.outbound = b.outbound;
      p.targets.push_back(t);
    }
  }

  /// Fetches the AOR's SIP-REGISTRATION values (RFC 7904 4.2) and follows them.
  void lookup(std::uint64_t id, const std::string& aor, int depth) {
    auto p = proxies.at(id);
    if (!p->seen_aors.insert(aor).second || depth > cfg.max_indirections) return;
    const auto resource = pr::hash_resource_name(sip_resource_name(aor), self.size());
    pr::fetch_req req = fetch_all(resource, pr::kinds::sip_registration);
    ++p->lookups;
    const bool sent = services.overlay_request(
        {pr::to_destination(resource)}, std::move(req), nullptr, nullptr, {},
        [this, id, aor, depth, resource](node::outcome&& o, node::time_point at) {
          auto it = proxies.find(id);
          if (it == proxies.end()) return;
          auto& px = *it->second;
          --px.lookups;
          if (!o.ok()) {
            log(1, "SIP lookup of " + aor + ": " + node::describe(o));
            if (o.what != node::outcome::kind::error ||
                o.error.error_code != static_cast<std::uint16_t>(pr::reload_errc::not_found)) {
              px.overlay_failed = true;
            }
          } else {
            on_fetched(id, px, aor, depth, resource, o);
          }
          resolved(id, at);
          pump(at);
        });
    if (!sent) {
      --p->lookups;
      p->overlay_failed = true;
    }
  }

  void on_fetched(std::uint64_t id, proxied& p, const std::string& aor, int depth,
                  const pr::resource_id& resource, const node::outcome& o) {
    auto routes = verified_routes(o, resource, pr::kinds::sip_registration, aor);
    log(0, "SIP lookup of " + aor + ": " + std::to_string(routes.size()) + " registrations");
    for (auto& [storage_time, reg] : routes) {
      p.found_binding = true;
      if (reg.type == pr::sip_registration_type::uri) {
        const std::string next(reg.uri.begin(), reg.uri.end());
        auto u = sip::parse_uri(next);
        if (u && u->is_sip()) lookup(id, aor_of(*u), depth + 1);
        continue;
      }
      if (reg.type != pr::sip_registration_type::route || reg.destination_list.empty()) continue;
      const auto* last = reg.destination_list.back().node();
      if (last && *last == self) continue;  // ours: the local bindings are targets already
      std::string key;
      for (const auto& hop : reg.destination_list) {
        if (const auto* n = hop.node()) key += n->hex() + "/";
      }
      if (!p.seen_targets.insert(key).second) continue;
      connect_target(id, reg.destination_list, *sip::request_uri_of(p.request));
    }
  }

  /// Opens (or reuses) a SIP connection along `route` and adds it as a target.
  void connect_target(std::uint64_t id, std::vector<pr::destination> route,
                      const sip::uri& request_uri) {
    auto p = proxies.at(id);
    ++p->lookups;
    services.connect_peer(
        route, [this, id, request_uri](std::uint64_t flow, std::string error, sip_time_point at) {
          auto it = proxies.find(id);
          if (it == proxies.end()) return;
          auto& px = *it->second;
          --px.lookups;
          if (flow == 0) {
            log(1, "SIP connection for " + px.aor + ": " + error);
          } else {
            target t;
            t.request_uri = request_uri;
            t.flow = flow;
            px.targets.push_back(t);
          }
          resolved(id, at);
          pump(at);
        });
  }

  /// Once every lookup and connection is done: forward to the targets, or answer.
  void resolved(std::uint64_t id, sip_time_point now) {
    auto it = proxies.find(id);
    if (it == proxies.end()) return;
    auto p = it->second;
    if (p->lookups > 0 || p->context || p->final_sent) return;
    if (p->cancelled) {
      respond(p->server_tx, p->request, 487, now);
      return finish(id);
    }
    if (p->redirect && p->targets.empty()) {
      if (p->redirect_contacts.empty()) {
        respond(p->server_tx, p->request, p->found_binding ? 480 : 404, now);
      } else {
        auto r = response_to(p->request, 302);
        for (const auto& c : p->redirect_contacts) r.add("Contact", c);
        transactions.respond(p->server_tx, std::move(r), now);
      }
      return finish(id);
    }
    if (p->targets.empty()) {
      int status = 404;
      std::string reason =
          p->gateway_lookup ? "No gateway to targets outside the overlay" : "Not registered";
      if (p->flow_failed) {
        status = 430;
        reason = "Flow Failed";
      } else if (p->found_binding) {
        status = 480;
        reason = "Registered but unreachable";
      } else if (p->overlay_failed) {
        status = 503;
        reason = "Overlay unavailable";
      }
      respond(p->server_tx, p->request, status, now, reason);
      return finish(id);
    }
    sip::response_context_options options;
    options.to_tag = to_hex(random()).substr(0, 10);
    p->context.emplace(p->request, options);
    for (const auto& t : p->targets) forward(id, *p, t, now);
    ++counters.proxied;
    if (p->branches.empty()) {
      // The trunk cannot even be tried (its name does not resolve, say): 502 as below.
      if (p->to_trunk) {
        respond(p->server_tx, p->request, 502, now, "Bad Gateway: SIP trunk unavailable");
      } else {
        respond(p->server_tx, p->request, 480, now, "No target reachable");
      }
      finish(id);
    }
  }

  /// A Via sent-by for a flow: the listen point of its transport, or our peer host name.
  std::tuple<std::string, std::string, std::uint16_t> via_of(const sip_endpoint& e) const {
    if (e.peer) return {"TLS", peer_host(), 0};
    for (const auto& l : cfg.listen) {
      if (l.transport == e.transport) return {l.transport, l.host, l.port};
    }
    if (!cfg.listen.empty()) return {e.transport, cfg.listen.front().host, cfg.listen.front().port};
    return {e.transport, peer_host(), 0};
  }

  /// Our Record-Route URI for the side of `e`: our Node-ID (for peers) at the address UAs use;
  /// `token`: with the flow token of `e` (the side of a UA).
  sip::uri record_route_of(const sip_endpoint& e, bool token) const {
    auto [transport, host, port] = via_of(e);
    sip::uri u;
    u.scheme = "sip";
    u.user = std::string(node_user_prefix) + self.hex();
    u.host = host;
    if (port != 0) u.port = port;
    if (transport != "UDP") u.params.push_back({"transport", lower(transport), true, false});
    u.params.push_back({"lr", {}, false, false});
    // The UA's side: in-dialog requests come back to it on its flow (RFC 5626 5.2).
    if (token && e.flow != 0) {
      u.params.push_back({std::string(flow_token_param), flow_token(e.flow), true, false});
    }
    return u;
  }

  void forward(std::uint64_t id, proxied& p, const target& t, sip_time_point now) {
    std::uint64_t flow = t.flow;
    if (flow == 0) {
      // An address (a contact or a Route of a plain UA): over UDP unless it says otherwise.
      const sip::uri& hop = p.route_hop ? *p.route_hop : t.request_uri;
      const std::string transport = transport_of(hop);
      flow = services.flow_to(transport, hop.host,
                              hop.port.value_or(transport == "TLS" ? 5061 : 5060));
      if (flow == 0) return;
    }
    auto e = services.endpoint(flow);
    if (!e) return;
    auto prepared = prepare(p, t, *e);
    const auto tx = transactions.start_client(prepared, {flow, e->reliable}, now);
    if (tx == 0) return;
    p.branches[tx] = std::move(prepared);
    p.context->add_branch(tx, now);
    proxy_of_client[tx] = id;
  }

  /// The transport a URI asks for: its transport parameter, TLS for sips, else UDP.
  static std::string transport_of(const sip::uri& u) {
    std::string transport = "UDP";
    if (const auto* tp = sip::find_param(u.params, "transport")) transport = tp->value;
    for (auto& c : transport) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (u.scheme == "sips") transport = "TLS";
    return transport;
  }

  sip::message prepare(const proxied& p, const target& t, const sip_endpoint& out) {
    sip::forward_options o;
    auto [transport, host, port] = via_of(out);
    o.via_transport = transport;
    o.via_host = host;
    o.via_port = port == 0 ? std::nullopt : std::optional<std::uint16_t>(port);
    o.branch = sip::make_proxy_branch(p.received, random());
    if (p.request.method == "INVITE" || p.request.method == "SUBSCRIBE") {
      // One Record-Route serves both sides: other peers read our Node-ID in its user part, a
      // plain UA its address (so its side wins: the outgoing one, else the incoming one), and
      // the flow token takes in-dialog requests to a UA's flow. Between two AppAttach
      // connections, the SDK client's side (outgoing, else incoming) carries the token.
      const sip_endpoint* side = &out;
      bool token = false;
      if (!out.peer) {
        // Not toward our trunk: its connection is ours to open again, so in-dialog requests
        // go by its Contact (a new connection when it died), not 430 on a flow that is gone.
        token = !p.to_trunk;
      } else if (!p.from.peer) {
        side = &p.from;
        token = true;
      } else if (!is_peer_hop(out)) {
        token = true;
      } else if (p.from_ua) {
        side = &p.from;
        token = true;
      }
      o.record_route = record_route_of(*side, token);
    }
    auto m = sip::prepare_forward(p.request, t.request_uri, o);
    if (!m) return {};
    if (p.redirect && is_peer_hop(out)) m->set("Request-Disposition", "redirect");
    return std::move(*m);
  }

  void on_branch_response(sip::transaction_id tx, sip::message resp, sip_time_point now) {
    auto pit = proxy_of_client.find(tx);
    if (pit == proxy_of_client.end()) {
      return;  // the CANCEL's own answer, or a branch whose request is done
    }
    auto it = proxies.find(pit->second);
    if (it == proxies.end()) return;
    auto& p = *it->second;
    if (resp.status > 100) p.answered = true;
    if (p.redirect && resp.status >= 300 && resp.status < 400) {
      for (const auto& c : resp.values("Contact")) p.redirect_contacts.emplace_back(c);
    }
    auto decision = p.context->on_response(tx, resp, now);
    apply_decision(pit->second, p, std::move(decision), now);
  }

  void on_branch_failure(sip::transaction_id tx, int status, sip_time_point now) {
    auto pit = proxy_of_client.find(tx);
    if (pit == proxy_of_client.end()) return;
    auto it = proxies.find(pit->second);
    if (it == proxies.end()) return;
    auto& p = *it->second;
    if (!p.context) return;
    if (status == 503 && p.to_trunk) {
      // The trunk could not be reached, or its TLS failed (unknown CA, wrong name, expired, our
      // certificate refused). RFC 3261 16.9 makes that a 503 here, but 16.7 step 6 turns a
      // best 503 into 500 upstream (the peer of the caller does so too), and 503 (21.5.4) would
      // say that this peer is overloaded. As the overlay's gateway, what failed is the server
      // beyond us: 502 Bad Gateway (21.5.3), which every proxy passes on unchanged, so the
      // caller learns the trunk failed. The reason is in the gateway peer's log (one WARN).
      if (auto b = p.branches.find(tx); b != p.branches.end()) {
        auto bad = sip::make_response(b->second, 502, "Bad Gateway: SIP trunk unavailable",
                                      to_hex(random()).substr(0, 10));
        auto decision = p.context->on_response(tx, bad, now);
        return apply_decision(pit->second, p, std::move(decision), now);
      }
    }
    // A timeout, or a send failure on any other branch: both count as 408 (16.7 step 6, 16.9).
    auto decision = p.context->on_timeout(tx);
    apply_decision(pit->second, p, std::move(decision), now);
  }

  void apply_decision(std::uint64_t id, proxied& p, sip::proxy_decision d, sip_time_point now) {
    for (auto tx : d.cancel) transactions.cancel(tx, now);
    if (d.forward) {
      auto r = std::move(*d.forward);
      log(0, "SIP " + std::to_string(r.status) + " for " + p.request.method + " to " +
                 describe(p.from));
      if (d.final && p.redirect && r.status >= 300 && r.status < 400 &&
          !p.redirect_contacts.empty()) {
        // Every peer's contacts in one 302 (each answered a Request-Disposition: redirect).
        r.remove("Contact");
        for (const auto& c : p.redirect_contacts) r.add("Contact", c);
      }
      if (d.final && r.status == 408 && !p.answered) {
        // Registered, but no UA said anything (not even 180): temporarily unavailable rather
        // than a timeout of ours (RFC 3261 21.4.18).
        r.status = 480;
        r.reason = "Registered but not responding";
      }
      if (d.final) p.final_sent = true;
      const int status = r.status;
      if (!transactions.respond(p.server_tx, std::move(r), now)) {
        log(0, "SIP " + std::to_string(status) + ": the server transaction cannot send it");
      }
    }
    if (p.context && p.context->complete() && p.context->final_forwarded()) finish(id);
  }

  void cancel_branch(proxied& p, sip::transaction_id tx, sip_time_point now) {
    if (p.branches.count(tx) != 0) transactions.cancel(tx, now);
  }

  void on_cancel(sip::transaction_id st, const sip::message& cancel,
                 std::optional<sip::transaction_id> invite_tx, sip_time_point now) {
    // RFC 3261 16.10: answered at once; the INVITE's pending branches are cancelled, and their
    // 487 comes back through the INVITE's own transaction.
    const auto it = invite_tx ? proxy_of_server.find(*invite_tx) : proxy_of_server.end();
    if (it == proxy_of_server.end()) {
      respond(st, cancel, 481, now);
      return;
    }
    respond(st, cancel, 200, now);
    auto p = proxies.at(it->second);
    if (p->final_sent) return;
    if (!p->context) {
      p->cancelled = true;
      return;
    }
    for (auto tx : p->context->cancel_all()) transactions.cancel(tx, now);
  }

  void forward_stateless(sip::message ack, const sip_endpoint& from) {
    // An ACK for a 2xx: routed like any request, without a transaction (RFC 3261 16.11 ... 16.6).
    const auto route_flow = flow_of_top_route(ack);
    if (sip::check_request_for_proxy(ack, proxy_checks())) return;
    if (!sip::preprocess_route(ack, [this](const sip::uri& u) { return is_self_uri(u); })) return;
    auto routes = sip::route_set(ack, "Route");
    auto ruri = sip::request_uri_of(ack);
    if (!ruri) return;
    sip::uri hop = *ruri;
    std::optional<pr::node_id> peer;
    if (routes && !routes->empty()) {
      hop = routes->front().address;
      peer = peer_of_uri(hop);
    }
    std::uint64_t flow = 0;
    if (!peer && (!routes || routes->empty()) && route_flow && *route_flow != from.flow) {
      flow = *route_flow;  // our Record-Route's flow token; 0 (forged) or gone: dropped below
      if (flow == 0 || !services.endpoint(flow)) return;
    } else if (!peer) {
      if (auto f = binding_flow_of_contact(hop)) flow = f->first;
    }
    if (peer) {
      services.connect_peer(
          {pr::to_destination(*peer)},
          [this, ack, ruri = *ruri, from](std::uint64_t f, std::string, sip_time_point) mutable {
            if (f == 0) return;
            auto e = services.endpoint(f);
            if (!e) return;
            services.send(f, stamp(ack, ruri, *e));
          });
      return;
    }
    if (flow != 0) {
      if (auto e = services.endpoint(flow)) services.send(flow, stamp(ack, *ruri, *e));
      return;
    }
    const std::string transport = transport_of(hop);
    services.send_to(
        transport, hop.host, hop.port.value_or(transport == "TLS" ? 5061 : 5060),
        stamp(ack, *ruri, sip_endpoint{0, transport, transport != "UDP", {}, 0, {}, {}}));
  }

  /// A stateless copy of `m` for `out`: Max-Forwards, our Via (branch derived from theirs so
  /// that retransmissions keep it, RFC 3261 16.11).
  sip::message stamp(const sip::message& m, const sip::uri& ruri, const sip_endpoint& out) {
    sip::forward_options o;
    auto [transport, host, port] = via_of(out);
    o.via_transport = transport;
    o.via_host = host;
    o.via_port = port == 0 ? std::nullopt : std::optional<std::uint16_t>(port);
    // The same branch for every retransmission of the ACK (16.11).
    o.branch = sip::make_proxy_branch(m, 0);
    auto forwarded = sip::prepare_forward(m, ruri, o);
    return forwarded ? std::move(*forwarded) : m;
  }

  void forward_stray_response(sip::message resp) {
    // A 2xx retransmission after the transaction ended (RFC 3261 16.7 ... forwarded
    // statelessly): back along its next Via.
    if (!sip::remove_top_via(resp)) return;
    auto v = sip::vias(resp);
    if (!v || v->empty()) return;
    const auto& next = v->front();
    if (next.host.starts_with(node_user_prefix)) return;  // a peer's: its connection carries it
    const auto port = next.rport().value_or(std::nullopt).value_or(next.port.value_or(5060));
    services.send_to(next.transport, next.received().value_or(next.host), port, resp);
  }

  void on_terminated(sip::transaction_id tx) {
    auto pit = proxy_of_client.find(tx);
    if (pit != proxy_of_client.end()) {
      auto it = proxies.find(pit->second);
      if (it != proxies.end()) it->second->branches.erase(tx);
      proxy_of_client.erase(pit);
    }
    auto sit = proxy_of_server.find(tx);
    if (sit != proxy_of_server.end()) {
      finish(sit->second);
    }
  }

  void finish(std::uint64_t id) {
    auto it = proxies.find(id);
    if (it == proxies.end()) return;
    proxy_of_server.erase(it->second->server_tx);
    for (const auto& [tx, req] : it->second->branches) proxy_of_client.erase(tx);
    proxies.erase(it);
  }

  // ---- flows and time ----

  void on_flow_closed(std::uint64_t flow) {
    for (auto it = registrations.begin(); it != registrations.end();) {
      auto& reg = it->second;
      // An SDK client's binding lives on its AppAttach connection: it goes with it (the client
      // registers again over a new one).
      const auto gone = std::erase_if(
          reg.bindings, [flow](const binding& b) { return b.certified && b.flow == flow; });
      if (gone != 0) log(1, "SIP " + it->first + ": the client's connection closed");
      for (auto& b : reg.bindings) {
        if (b.flow == flow && !b.outbound) b.flow = 0;  // plain: reached at its contact now
      }
      if (reg.bindings.empty() && !reg.storing && reg.waiting.empty()) {
        it = registrations.erase(it);
      } else {
        ++it;
      }
    }
  }

  void expire(sip_time_point now) {
    // Nothing expires yet: registrations without bindings went where they emptied
    // (drop_if_unused, the Store's completion, on_flow_closed).
    if (!binding_expiry_floor || *binding_expiry_floor > now) return;
    binding_expiry_floor.reset();
    for (auto it = registrations.begin(); it != registrations.end();) {
      std::erase_if(it->second.bindings, [now](const binding& b) { return b.expires <= now; });
      if (it->second.bindings.empty() && !it->second.storing && it->second.waiting.empty()) {
        it = registrations.erase(it);
      } else {
        lower_expiry_floor(it->second.bindings);
        ++it;
      }
    }
  }
};

sip_usage::sip_usage(sip_usage_config cfg, protocol::node_id self, sip_services& services,
                     std::uint64_t seed)
    : impl_(std::make_unique<impl>(std::move(cfg), std::move(self), services, seed)) {}

sip_usage::~sip_usage() = default;

void sip_usage::on_message(sip::message m, const sip_endpoint& from, sip_time_point now) {
  // RFC 3261 18.2.1 and RFC 3581: responses go back where the request came from.
  if (m.is_request()) sip::stamp_received(m, from.remote_ip, from.remote_port);
  impl_->transactions.on_message(m, {from.flow, from.reliable}, now);
  impl_->pump(now);
}

void sip_usage::on_flow_closed(std::uint64_t flow, sip_time_point now) {
  // Requests sent on it get no answer there: their branches fail now, not at Timer B/F.
  impl_->transactions.on_flow_failed(flow, now);
  impl_->on_flow_closed(flow);
  impl_->pump(now);
}

void sip_usage::on_timer(sip_time_point now) {
  impl_->transactions.on_timer(now);
  if (impl_->gateway_refresh_at && *impl_->gateway_refresh_at <= now) {
    impl_->advertise_gateway(now);
  }
  // Timer C of each proxied INVITE (decisions may finish a context: collect ids first).
  std::vector<std::uint64_t> ids;
  for (auto& [id, p] : impl_->proxies) {
    if (p->context) {
      if (auto d = p->context->next_deadline(); d && *d <= now) ids.push_back(id);
    }
  }
  for (auto id : ids) {
    auto it = impl_->proxies.find(id);
    if (it == impl_->proxies.end()) continue;
    auto p = it->second;
    impl_->apply_decision(id, *p, p->context->on_timer(now), now);
  }
  impl_->expire(now);
  impl_->pump(now);
}

std::optional<sip_time_point> sip_usage::next_deadline() const {
  auto d = impl_->transactions.next_deadline();
  if (const auto& g = impl_->gateway_refresh_at; g && (!d || *g < *d)) d = g;
  for (const auto& [id, p] : impl_->proxies) {
    if (!p->context) continue;
    if (auto c = p->context->next_deadline(); c && (!d || *c < *d)) d = c;
  }
  if (const auto& e = impl_->binding_expiry_floor; e && (!d || *e < *d)) d = e;
  return d;
}

sip_usage_stats sip_usage::stats() const {
  auto s = impl_->counters;
  s.registrations = impl_->registrations.size();
  s.bindings = 0;
  for (const auto& [aor, reg] : impl_->registrations) s.bindings += reg.bindings.size();
  const auto t = impl_->transactions.stats();
  s.transactions = t.server_transactions + t.client_transactions;
  return s;
}

}  // namespace p2psip::peer
