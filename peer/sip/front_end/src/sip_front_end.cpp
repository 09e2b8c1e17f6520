#include "p2psip/peer/sip_front_end.hpp"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include <asio/post.hpp>

#include "p2psip/crypto/credentials.hpp"
#include "p2psip/transport/errors.hpp"

namespace p2psip::peer {

namespace {

namespace pr = p2psip::protocol;

/// How long an AppAttach and its TLS connection may take before the targets behind it count as
/// unreachable.
constexpr auto connect_timeout = std::chrono::seconds(10);

std::string kind_name(sip_transport_kind k) {
  switch (k) {
    case sip_transport_kind::udp: return "UDP";
    case sip_transport_kind::tcp: return "TCP";
    case sip_transport_kind::tls: return "TLS";
  }
  return "UDP";
}

std::optional<sip_transport_kind> kind_of(std::string_view name) {
  // Case-insensitive (RFC 3261 7.3.1: transport parameter values are tokens).
  std::string n(name);
  for (auto& c : n) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (n == "UDP") return sip_transport_kind::udp;
  if (n == "TCP") return sip_transport_kind::tcp;
  if (n == "TLS") return sip_transport_kind::tls;
  return std::nullopt;
}

std::string host_text(const asio::ip::address& a) {
  return a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
}

pr::bytes random_secret() {
  std::random_device rd;
  pr::bytes out(32);
  for (auto& b : out) b = static_cast<std::uint8_t>(rd());
  return out;
}

bool same_host(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

/// A file's text, or an error naming the option and the file.
protocol::result<std::string, protocol::error_record> read_option_file(
    std::string_view option, const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    return protocol::error_record{
        transport::make_error_code(transport::transport_errc::invalid_credentials),
        std::string(option) + " " + path.string() + ": cannot be read"};
  }
  return text.str();
}

}  // namespace

protocol::result<sip_trunk, std::string> parse_sip_trunk(std::string_view text) {
  const std::string form =
      "expected the trunk's SIP URI: sip:IP[:PORT][;transport=udp|tcp], or for TLS "
      "sips:HOST[:PORT] or sip:HOST[:PORT];transport=tls";
  auto u = sip::parse_uri(text);
  if (!u || !u->is_sip() || u->host.empty()) return form;
  sip_trunk t;
  std::string transport = u->scheme == "sips" ? "tls" : "udp";
  if (const auto* tp = sip::find_param(u->params, "transport")) {
    std::string v = tp->value;
    for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (v != "udp" && v != "tcp" && v != "tls") {
      return "transport '" + tp->value + "' is not udp, tcp or tls";
    }
    // sips over TCP is TLS (RFC 3261 26.2.2); sips over UDP does not exist.
    if (u->scheme == "sips" && v == "udp") return std::string("sips needs TLS over TCP, not UDP");
    if (u->scheme != "sips") transport = v;
  }
  t.kind = transport == "tls"   ? sip_transport_kind::tls
           : transport == "tcp" ? sip_transport_kind::tcp
                                : sip_transport_kind::udp;
  t.host = u->host;
  std::string bare = t.host;
  if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') {
    bare = bare.substr(1, bare.size() - 2);
  }
  std::error_code ec;
  (void)asio::ip::make_address(bare, ec);
  if (ec && t.kind != sip_transport_kind::tls) {
    // No DNS for UDP and TCP (targets are reached by address); a TLS trunk is named, since the
    // name is what its certificate is checked against.
    return "'" + u->host + "' is not an IP address (a host name needs TLS: sips:" + u->host +
           " or ;transport=tls)";
  }
  t.port = u->port.value_or(t.kind == sip_transport_kind::tls ? 5061 : 5060);
  if (t.port == 0) return std::string("port 0");
  return t;
}

protocol::result<std::unique_ptr<sip_front_end>, protocol::error_record> sip_front_end::create(
    asio::io_context& io, sip_front_end_config cfg) {
  std::vector<sip_user> users;
  std::map<std::string, std::shared_ptr<const crypto::credentials>> credentials;
  if (cfg.users_file) {
    auto loaded = load_sip_users(*cfg.users_file);
    if (!loaded) return loaded.error();
    users = std::move(*loaded);
    for (const auto& u : users) {
      auto creds = crypto::load_credentials(u.certificate, u.private_key, cfg.overlay, cfg.trust,
                                            std::chrono::system_clock::now());
      if (!creds) {
        return protocol::error_record{creds.error().code, cfg.users_file->string() + ": user " +
                                                              u.aor + ": " + creds.error().message};
      }
      credentials[u.aor] = std::make_shared<const crypto::credentials>(std::move(*creds));
    }
  }
  std::optional<sip_account> gateway;
  std::optional<sip_named_server> trunk_tls;
  const bool trunk_options =
      !cfg.trunk_ca.empty() || !cfg.trunk_certificate.empty() || !cfg.trunk_key.empty();
  if (!cfg.gateway && trunk_options) {
    return protocol::error_record{make_error_code(std::errc::invalid_argument),
                                  "--sip-trunk-ca, --sip-trunk-cert and --sip-trunk-key need "
                                  "--sip-gateway with a TLS trunk"};
  }
  if (cfg.gateway) {
    auto trunk = parse_sip_trunk(*cfg.gateway);
    if (!trunk) {
      return protocol::error_record{make_error_code(std::errc::invalid_argument),
                                    "--sip-gateway '" + *cfg.gateway + "': " + trunk.error()};
    }
    if (trunk->kind != sip_transport_kind::tls && trunk_options) {
      return protocol::error_record{
          make_error_code(std::errc::invalid_argument),
          "--sip-trunk-ca, --sip-trunk-cert and --sip-trunk-key need a TLS trunk: --sip-gateway "
          "sips:HOST[:PORT] or sip:HOST[:PORT];transport=tls, not '" +
              *cfg.gateway + "'"};
    }
    if (cfg.trunk_certificate.empty() != cfg.trunk_key.empty()) {
      return protocol::error_record{make_error_code(std::errc::invalid_argument),
                                    "--sip-trunk-cert and --sip-trunk-key go together"};
    }
    if (trunk->kind == sip_transport_kind::tls) {
      std::string ca, chain, key;
      if (!cfg.trunk_ca.empty()) {
        auto text = read_option_file("--sip-trunk-ca", cfg.trunk_ca);
        if (!text) return text.error();
        ca = std::move(*text);
        // An empty file would silently mean "the system store".
        if (ca.find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
          return protocol::error_record{
              transport::make_error_code(transport::transport_errc::invalid_credentials),
              "--sip-trunk-ca " + cfg.trunk_ca.string() + ": no PEM certificate in it"};
        }
      }
      if (!cfg.trunk_certificate.empty()) {
        auto text = read_option_file("--sip-trunk-cert", cfg.trunk_certificate);
        if (!text) return text.error();
        chain = std::move(*text);
        auto key_text = read_option_file("--sip-trunk-key", cfg.trunk_key);
        if (!key_text) return key_text.error();
        key = std::move(*key_text);
      }
      auto creds = transport::tls_credentials::for_named_servers_pem(ca, chain, key);
      if (!creds) {
        std::string which = "--sip-trunk-ca " + cfg.trunk_ca.string();
        if (cfg.trunk_ca.empty()) which = "the system certificate store";
        if (creds.error().message.find("client") != std::string::npos) {
          which = "--sip-trunk-cert " + cfg.trunk_certificate.string() + " / --sip-trunk-key " +
                  cfg.trunk_key.string();
        }
        return protocol::error_record{creds.error().code, which + ": " + creds.error().message};
      }
      sip_named_server server;
      server.host = trunk->host;
      server.port = trunk->port;
      server.tls = std::move(*creds);
      server.label = "SIP trunk " + *cfg.gateway;
      trunk_tls = std::move(server);
    }
    auto creds = crypto::load_credentials(cfg.gateway_certificate, cfg.gateway_key, cfg.overlay,
                                          cfg.trust, std::chrono::system_clock::now());
    if (!creds) {
      return protocol::error_record{creds.error().code,
                                    "gateway credentials: " + creds.error().message};
    }
    const std::string role = "sip-gateway@" + cfg.overlay.name;
    if (creds->signing.cert().user() != role) {
      return protocol::error_record{make_error_code(std::errc::permission_denied),
                                    "gateway credentials " + cfg.gateway_certificate.string() +
                                        " are " + creds->signing.cert().user() +
                                        "'s; a gateway advertises itself as " + role +
                                        " (p2psip-admin enroll --user " + role + " --nodes 4)"};
    }
    sip_account a;
    a.aor = "sip:" + role;
    a.credentials = std::make_shared<const crypto::credentials>(std::move(*creds));
    credentials[a.aor] = a.credentials;
    gateway = std::move(a);
  }
  auto made =
      std::make_unique<sip_front_end>(io, std::move(cfg), std::move(users), std::move(credentials));
  made->gateway_account_ = std::move(gateway);
  made->trunk_tls_ = std::move(trunk_tls);
  return made;
}

sip_front_end::sip_front_end(
    asio::io_context& io, sip_front_end_config cfg, std::vector<sip_user> users,
    std::map<std::string, std::shared_ptr<const crypto::credentials>> credentials)
    : io_(io),
      cfg_(std::move(cfg)),
      users_(std::move(users)),
      credentials_(std::move(credentials)),
      timer_(io) {
  for (std::size_t i = 0; i < users_.size(); ++i) user_by_name_.try_emplace(users_[i].username, i);
  // One signer per Node-ID of each user: a peer stores under the one it chose (RFC 7904 7).
  for (const auto& [aor, creds] : credentials_) {
    for (const auto& id : creds->signing.cert().node_ids()) {
      signers_[aor + " " + id.hex()] =
          std::make_unique<node::crypto_signer>(creds->signing, id, *cfg_.trust);
    }
  }
}

sip_front_end::~sip_front_end() {
  *alive_ = false;
}

node::application_endpoint sip_front_end::application() {
  node::application_endpoint app;
  app.id = sip_application;
  app.listen = cfg_.app_listen;
  std::weak_ptr<bool> alive = alive_;
  app.connected = [this, alive](node::app_connection c) {
    if (alive.expired()) {
      c.stream->close();
      return;
    }
    on_app_connection(std::move(c));
  };
  return app;
}

void sip_front_end::attach(peer_runtime& runtime) {
  runtime_ = &runtime;
}

protocol::result<void, protocol::error_record> sip_front_end::start() {
  sip_transport_config tc;
  tc.listen = cfg_.listen;
  tc.source = cfg_.source_limits;
  tc.tls = cfg_.tls;
  tc.log = cfg_.log;
  sip_transport::handlers h;
  std::weak_ptr<bool> alive = alive_;
  h.on_message = [this, alive](sip::message m, const sip_source& from) {
    if (alive.expired() || !usage_) return;
    if (from.flow == trunk_flow_id_ && trunk_flow_id_ != 0 &&
        std::find(trunk_addresses_.begin(), trunk_addresses_.end(), from.remote_address) ==
            trunk_addresses_.end()) {
      // A name may resolve to several addresses over time; a handful is plenty.
      if (trunk_addresses_.size() >= 8) trunk_addresses_.erase(trunk_addresses_.begin());
      trunk_addresses_.push_back(from.remote_address);
    }
    auto e = endpoint(from.flow);
    if (!e) return;
    usage_->on_message(std::move(m), *e, sip_clock::now());
    rearm();
  };
  h.on_flow_closed = [this, alive](sip_flow_id flow) {
    if (alive.expired()) return;
    on_flow_closed(flow);
  };
  transport_ = std::make_unique<sip_transport>(io_, std::move(tc), std::move(h));
  if (auto started = transport_->start(); !started) return started.error();

  sip_usage_config uc;
  uc.domain = cfg_.overlay.name;
  uc.mode = cfg_.mode;
  uc.digest_algorithms = cfg_.digest_algorithms;
  uc.timers.t1 = cfg_.t1;
  if (cfg_.gateway && gateway_account_) {
    uc.gateway_trunk = *sip::parse_uri(*cfg_.gateway);
    uc.gateway_account = gateway_account_;
  }
  uc.trust = cfg_.trust;
  uc.secret = random_secret();
  for (const auto& l : transport_->local_endpoints()) {
    uc.listen.push_back({kind_name(l.kind), host_text(l.address), l.port});
    log(
        1, "SIP listening on " +
               [&] {
                 std::string k = kind_name(l.kind);
                 for (auto& c : k)
                   c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                 return k;
               }() +
               ":" + host_text(l.address) + ":" + std::to_string(l.port));
  }
  const auto self = runtime_ ? runtime_->overlay_settings().self : pr::node_id{};
  usage_ = std::make_unique<sip_usage>(
      std::move(uc), self, *this,
      std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32));
  rearm();  // a gateway advertises itself at the first deadline
  return {};
}

asio::awaitable<void> sip_front_end::stop() {
  timer_.cancel();
  for (auto& [token, p] : connecting_) {
    if (p.timeout) p.timeout->cancel();
  }
  if (transport_) co_await transport_->stop();
}

sip_front_end_status sip_front_end::status() const {
  sip_front_end_status s;
  if (usage_) s.usage = usage_->stats();
  if (transport_) {
    const auto t = transport_->stats();
    s.flows = t.udp_flows + t.tcp_flows + t.tls_flows + t.adopted_flows;
  }
  s.peer_connections = peer_flows_.size();
  return s;
}

// ---- sip_services ----

bool sip_front_end::send(std::uint64_t flow, const sip::message& m) {
  return transport_ && transport_->send(flow, m);
}

std::optional<std::pair<sip_transport_kind, asio::ip::address>> sip_front_end::address_of(
    std::string_view transport, std::string_view host) {
  const auto kind = kind_of(transport);
  if (!kind) {
    log(1, "SIP: cannot send over transport '" + std::string(transport) + "'");
    return std::nullopt;
  }
  std::string h(host);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::error_code ec;
  const auto address = asio::ip::make_address(h, ec);
  if (ec) {
    // No DNS (RFC 3263) here: targets in the overlay are reached by Node-ID, UAs by address.
    log(1, "SIP: cannot send to '" + std::string(host) + "': not an IP address");
    return std::nullopt;
  }
  return std::make_pair(*kind, address);
}

std::optional<std::uint64_t> sip_front_end::trunk_flow(std::string_view transport,
                                                       std::string_view host, std::uint16_t port) {
  if (!trunk_tls_ || !transport_ || port != trunk_tls_->port ||
      kind_of(transport) != sip_transport_kind::tls) {
    return std::nullopt;
  }
  if (!same_host(host, trunk_tls_->host)) {
    // An address the trunk's connection reached (its Contact, say) is the trunk as well.
    std::string bare(host);
    if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') {
      bare = bare.substr(1, bare.size() - 2);
    }
    std::error_code ec;
    const auto address = asio::ip::make_address(bare, ec);
    if (ec || std::find(trunk_addresses_.begin(), trunk_addresses_.end(), address) ==
                  trunk_addresses_.end()) {
      return std::nullopt;
    }
  }
  // The trunk's one connection, verified by name, reused while it lives (RFC 5923's idea).
  trunk_flow_id_ = transport_->flow_to_server(*trunk_tls_);
  return trunk_flow_id_;
}

std::uint64_t sip_front_end::send_to(std::string_view transport, std::string_view host,
                                     std::uint16_t port, const sip::message& m) {
  if (auto flow = trunk_flow(transport, host, port)) {
    return *flow != 0 && transport_->send(*flow, m) ? *flow : 0;
  }
  const auto to = address_of(transport, host);
  if (!to || !transport_) return 0;
  return transport_->send_to(to->first, to->second, port, m);
}

std::uint64_t sip_front_end::flow_to(std::string_view transport, std::string_view host,
                                     std::uint16_t port) {
  if (auto flow = trunk_flow(transport, host, port)) return *flow;
  const auto to = address_of(transport, host);
  if (!to || !transport_) return 0;
  return transport_->flow_to(to->first, to->second, port);
}

std::optional<sip_endpoint> sip_front_end::endpoint(std::uint64_t flow) const {
  if (!transport_) return std::nullopt;
  auto s = transport_->source_of(flow);
  if (!s) return std::nullopt;
  sip_endpoint e;
  e.flow = s->flow;
  e.transport = kind_name(s->kind);
  e.reliable = s->reliable;
  e.remote_ip = s->remote_address.to_string();
  e.remote_port = s->remote_port;
  e.peer = s->node;
  e.peer_user = s->peer_user;
  return e;
}

bool sip_front_end::overlay_request(std::vector<protocol::destination> destinations,
                                    protocol::message_body body, const sip_account* sign_as,
                                    const protocol::node_id* as_node,
                                    std::vector<protocol::generic_certificate> certificates,
                                    node::completion done) {
  if (!runtime_) return false;
  node::send_options options;
  if (sign_as) {
    if (!sign_as->credentials) return false;
    const auto& node = as_node ? *as_node : sign_as->credentials->signing.default_node_id();
    const auto it = signers_.find(sign_as->aor + " " + node.hex());
    if (it == signers_.end()) return false;
    options.sign_as = it->second.get();
  }
  std::weak_ptr<bool> alive = alive_;
  return runtime_->originate(
      std::move(destinations), body,
      [this, alive, done = std::move(done)](node::outcome&& o, node::time_point now) {
        if (alive.expired()) return;
        done(std::move(o), now);
        rearm();
      },
      options, std::move(certificates));
}

void sip_front_end::connect_peer(const std::vector<protocol::destination>& route,
                                 connect_done done) {
  std::weak_ptr<bool> alive = alive_;
  // Always completed later, never inside the caller.
  auto complete = [this, alive, done](std::uint64_t flow, std::string error) {
    asio::post(io_, [this, alive, done, flow, error = std::move(error)] {
      if (alive.expired()) return;
      done(flow, error, sip_clock::now());
      rearm();
    });
  };
  const auto* last = route.empty() ? nullptr : route.back().node();
  if (!last || !runtime_) {
    complete(0, "no Node-ID to connect to");
    return;
  }
  const std::string key = last->hex();
  if (auto it = peer_flows_.find(key); it != peer_flows_.end() && endpoint(it->second)) {
    complete(it->second, {});
    return;
  }
  for (auto& [token, p] : connecting_) {
    if (p.key == key) {
      p.waiting.push_back(std::move(complete));
      return;
    }
  }
  const auto token = next_token_++;
  auto& p = connecting_[token];
  p.key = key;
  p.waiting.push_back(std::move(complete));
  p.timeout = std::make_unique<asio::steady_timer>(io_, connect_timeout);
  p.timeout->async_wait([this, alive, token](const std::error_code& ec) {
    if (ec || alive.expired()) return;
    auto it = connecting_.find(token);
    if (it == connecting_.end()) return;
    auto waiting = std::move(it->second.waiting);
    const auto target = it->second.key;
    connecting_.erase(it);
    for (auto& w : waiting) w(0, "no SIP connection to " + target + " within 10 s");
  });
  const bool sent = runtime_->app_attach(
      route, sip_application, token,
      [this, alive, token](std::optional<std::string> error, node::time_point) {
        if (alive.expired() || !error) return;  // success: the connection arrives with the token
        auto it = connecting_.find(token);
        if (it == connecting_.end()) return;
        auto waiting = std::move(it->second.waiting);
        if (it->second.timeout) it->second.timeout->cancel();
        connecting_.erase(it);
        for (auto& w : waiting) w(0, *error);
      });
  if (!sent) {
    auto it = connecting_.find(token);
    auto waiting = std::move(it->second.waiting);
    it->second.timeout->cancel();
    connecting_.erase(it);
    for (auto& w : waiting) w(0, "AppAttach to " + key + " could not be sent (no route)");
  }
}

void sip_front_end::on_app_connection(node::app_connection c) {
  if (!transport_) {
    c.stream->close();
    return;
  }
  const auto flow = transport_->adopt(c.stream, c.remote);
  const std::string key = c.remote.hex();
  peer_flows_[key] = flow;
  log(0, "SIP connection " + std::string(c.token ? "to " : "from ") + key);
  if (c.token == 0) return;
  auto it = connecting_.find(c.token);
  if (it == connecting_.end()) return;
  auto waiting = std::move(it->second.waiting);
  if (it->second.timeout) it->second.timeout->cancel();
  connecting_.erase(it);
  for (auto& w : waiting) w(flow, {});
}

void sip_front_end::on_flow_closed(sip_flow_id flow) {
  std::erase_if(peer_flows_, [flow](const auto& e) { return e.second == flow; });
  if (usage_) {
    usage_->on_flow_closed(flow, sip_clock::now());
    rearm();
  }
}

sip_account sip_front_end::account_of(const sip_user& u) const {
  sip_account a;
  a.aor = u.aor;
  a.username = u.username;
  a.ha1_md5 = u.ha1_md5;
  a.ha1_sha256 = u.ha1_sha256;
  if (auto it = credentials_.find(u.aor); it != credentials_.end()) a.credentials = it->second;
  return a;
}

std::optional<sip_account> sip_front_end::account_by_username(std::string_view username) const {
  const auto it = user_by_name_.find(std::string(username));
  if (it == user_by_name_.end()) return std::nullopt;
  return account_of(users_[it->second]);
}

std::uint64_t sip_front_end::wall_clock_ms() const {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

void sip_front_end::log(int level, std::string_view text) {
  if (!cfg_.log) return;
  const auto l = level <= 0   ? log_level::debug
                 : level == 1 ? log_level::info
                 : level == 2 ? log_level::warn
                              : log_level::error;
  cfg_.log(l, text);
}

void sip_front_end::rearm() {
  if (!usage_) return;
  const auto next = usage_->next_deadline();
  if (!next) {
    armed_.reset();
    timer_.cancel();
    return;
  }
  if (armed_ && *armed_ <= *next) return;
  armed_ = next;
  timer_.expires_at(*next);
  std::weak_ptr<bool> alive = alive_;
  timer_.async_wait([this, alive](const std::error_code& ec) {
    if (ec || alive.expired()) return;
    armed_.reset();
    usage_->on_timer(sip_clock::now());
    rearm();
  });
}

}  // namespace p2psip::peer
