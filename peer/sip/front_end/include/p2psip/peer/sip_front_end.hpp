#pragma once
// The SIP front end of p2psip-peer: the sip_usage (registrar, proxy, redirect) wired to the SIP
// listeners (sip_transport), the overlay (peer_runtime: Store, Fetch, AppAttach for application
// 5060) and the users file. Asio, on the runtime's io_context thread.
//
// Order: make the front end, add application() to the runtime_config, create and start the
// runtime, then attach(runtime) and start().

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "p2psip/crypto/certificate.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/node/crypto_signer.hpp"
#include "p2psip/peer/peer_runtime.hpp"
#include "p2psip/peer/sip_transport.hpp"
#include "p2psip/peer/sip_usage.hpp"
#include "p2psip/peer/sip_users.hpp"

namespace p2psip::peer {

/// The AppAttach application number of SIP (RFC 7904 5.1).
inline constexpr std::uint16_t sip_application = 5060;

struct sip_front_end_config {
  std::vector<sip_listen_spec> listen;
  /// Per-source limits of the listeners (messages per second and burst per source IP, ...).
  sip_source_limits source_limits;
  /// The users the registrar authenticates and acts for (p2psip-admin sip-user add); empty: no
  /// registrar (REGISTER gets 403).
  std::optional<std::filesystem::path> users_file;
  sip_mode mode = sip_mode::proxy;
  /// RFC 3261's T1: where retransmissions start; B, F, H and J are 64 times it.
  std::chrono::milliseconds t1{500};
  /// Digest algorithms of the registrar's challenges, in order of preference.
  std::vector<sip::digest_algorithm> digest_algorithms{sip::digest_algorithm::md5,
                                                       sip::digest_algorithm::sha256};
  /// Be a gateway to this trunk (parse_sip_trunk's URI) for targets outside the overlay,
  /// advertised with the gateway role's credentials (user sip-gateway@<overlay>).
  std::optional<std::string> gateway;
  std::filesystem::path gateway_certificate;
  std::filesystem::path gateway_key;
  /// A TLS trunk only: the CA certificates (PEM) its chain must verify against; empty: the
  /// system's store (/etc/ssl/certs).
  std::filesystem::path trunk_ca;
  /// A TLS trunk only: our client certificate (PEM, intermediates after it) and its unencrypted
  /// PKCS #8 key, for a trunk that asks for one (mutual TLS); both or neither.
  std::filesystem::path trunk_certificate;
  std::filesystem::path trunk_key;
  /// The overlay (its name is the SIP domain) and its trust anchors.
  crypto::overlay_params overlay;
  crypto::trust_store* trust = nullptr;
  /// The node's link credentials: the TLS server certificate of tls: listeners.
  std::shared_ptr<const transport::tls_credentials> tls;
  /// Where AppAttach SIP connections are accepted (port 0: any free port).
  asio::ip::tcp::endpoint app_listen;
  std::function<void(log_level, std::string_view)> log;
};

/// Where a gateway's trunk is: from "sip:HOST[:PORT][;transport=udp|tcp|tls]" or
/// "sips:HOST[:PORT]" (TLS; a transport=tcp parameter allowed, RFC 3261 26.2.2).
struct sip_trunk {
  sip_transport_kind kind = sip_transport_kind::udp;
  std::string host;           ///< an IP address (IPv6 in brackets), or for TLS also a host name
  std::uint16_t port = 5060;  ///< as given, else 5061 for TLS and 5060 otherwise
};

/// Reads a --sip-gateway URI. Errors in words: not a SIP URI, an unknown transport, UDP over
/// sips, a host name for UDP or TCP (no DNS there: a TLS trunk may be named, as its certificate
/// names it).
protocol::result<sip_trunk, std::string> parse_sip_trunk(std::string_view uri);

/// Figures for the status line.
struct sip_front_end_status {
  sip_usage_stats usage;
  std::size_t flows = 0;
  std::size_t peer_connections = 0;
};

class sip_front_end final : public sip_services {
 public:
  /// Loads the users file and every user's credentials (errors name the file and the user).
  static protocol::result<std::unique_ptr<sip_front_end>, protocol::error_record> create(
      asio::io_context& io, sip_front_end_config cfg);
  ~sip_front_end() override;

  /// The AppAttach application to put in the runtime_config.
  node::application_endpoint application();
  /// The runtime whose overlay this front end uses (started).
  void attach(peer_runtime& runtime);
  /// Binds the SIP listeners and logs "SIP listening on udp:IP:PORT" for each.
  protocol::result<void, protocol::error_record> start();
  /// Closes listeners and flows (bounded).
  asio::awaitable<void> stop();
  sip_front_end_status status() const;

  /// Use create().
  sip_front_end(asio::io_context& io, sip_front_end_config cfg, std::vector<sip_user> users,
                std::map<std::string, std::shared_ptr<const crypto::credentials>> credentials);

 private:
  // sip_services
  bool send(std::uint64_t flow, const sip::message& m) override;
  std::uint64_t send_to(std::string_view transport, std::string_view host, std::uint16_t port,
                        const sip::message& m) override;
  std::uint64_t flow_to(std::string_view transport, std::string_view host,
                        std::uint16_t port) override;
  std::optional<sip_endpoint> endpoint(std::uint64_t flow) const override;
  bool overlay_request(std::vector<protocol::destination> destinations, protocol::message_body body,
                       const sip_account* sign_as, const protocol::node_id* as_node,
                       std::vector<protocol::generic_certificate> certificates,
                       node::completion done) override;
  void connect_peer(const std::vector<protocol::destination>& route, connect_done done) override;
  std::optional<sip_account> account_by_username(std::string_view username) const override;
  std::uint64_t wall_clock_ms() const override;
  void log(int level, std::string_view text) override;

  /// The transport and address of transport:host:port, or nullopt (logged) when not an IP.
  std::optional<std::pair<sip_transport_kind, asio::ip::address>> address_of(
      std::string_view transport, std::string_view host);
  /// The trunk's TLS connection when transport:host:port is the TLS trunk; nullopt otherwise.
  std::optional<std::uint64_t> trunk_flow(std::string_view transport, std::string_view host,
                                          std::uint16_t port);
  void on_app_connection(node::app_connection c);
  void on_flow_closed(sip_flow_id flow);
  void rearm();
  sip_account account_of(const sip_user& u) const;

  struct pending_connect {
    std::string key;
    /// Completions (posted: never inside the caller), with the flow or the error.
    std::vector<std::function<void(std::uint64_t flow, std::string error)>> waiting;
    std::unique_ptr<asio::steady_timer> timeout;
  };

  asio::io_context& io_;
  sip_front_end_config cfg_;
  std::vector<sip_user> users_;
  /// users_ by digest user name (the first of a name, as a walk in order finds): one lookup per
  /// REGISTER instead of a walk over every user.
  std::unordered_map<std::string, std::size_t> user_by_name_;
  std::map<std::string, std::shared_ptr<const crypto::credentials>> credentials_;  // by AOR
  std::optional<sip_account> gateway_account_;
  /// A TLS trunk: its name, port and credentials (for_named_servers).
  std::optional<sip_named_server> trunk_tls_;
  /// The TLS trunk's latest flow, and the addresses its connections reached (a few): a trunk's
  /// Contact usually names its address, and what goes there is the trunk's too (by name).
  std::uint64_t trunk_flow_id_ = 0;
  std::vector<asio::ip::address> trunk_addresses_;
  std::map<std::string, std::unique_ptr<node::crypto_signer>> signers_;  // by AOR and Node-ID
  peer_runtime* runtime_ = nullptr;
  std::unique_ptr<sip_transport> transport_;
  std::unique_ptr<sip_usage> usage_;
  std::map<std::string, sip_flow_id> peer_flows_;        // by the last Node-ID of the route (hex)
  std::map<std::uint64_t, pending_connect> connecting_;  // by AppAttach token
  std::uint64_t next_token_ = 1;
  asio::steady_timer timer_;
  std::optional<sip_time_point> armed_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace p2psip::peer
