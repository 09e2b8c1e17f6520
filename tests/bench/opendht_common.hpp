#pragma once
// What p2psip-opendht-node and p2psip-opendht-load share: one way to start a DhtRunner on
// 127.0.0.1 with every limit off, on a network id of its own.

#include <arpa/inet.h>
#include <netinet/in.h>

#include <memory>
#include <stdexcept>
#include <string>

#include <opendht.h>

namespace p2psip::bench {

/// Network id of the benchmark's nodes: they answer only each other (0 is OpenDHT's public one).
inline constexpr dht::NetId k_opendht_network = 0x70327073;  // "p2ps"

/// Runs `node` (threaded) on 127.0.0.1:`port` (0: any), IPv4 only, with OpenDHT's global and
/// per-address request rate limits, search limit and storage limits off (-1 is "no limit" in
/// dht::Config), so that it is bound by CPU like our peers.
inline void run_opendht(dht::DhtRunner& node, in_port_t port) {
  dht::DhtRunner::Config config;
  auto& nc = config.dht_config.node_config;
  nc.network = k_opendht_network;
  nc.max_req_per_sec = -1;
  nc.max_peer_req_per_sec = -1;
  nc.max_searches = -1;
  nc.max_store_size = -1;
  nc.max_store_keys = -1;
  config.threaded = true;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  config.bind4 = dht::SockAddr(reinterpret_cast<const sockaddr*>(&a), sizeof a);  // NOLINT
  dht::DhtRunner::Context context;
  context.sock = std::make_unique<dht::net::UdpSocket>(config.bind4, dht::SockAddr{});
  node.run(config, std::move(context));
}

/// Joins through the node at "127.0.0.1:PORT" by pinging it. (DhtRunner::bootstrap(host, service)
/// would stop pinging its list once one node answered, so a node given three of them might learn
/// the third only much later.)
inline void bootstrap_opendht(dht::DhtRunner& node, const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("bootstrap: want HOST:PORT");
  auto addrs = dht::SockAddr::resolve(host_port.substr(0, colon), host_port.substr(colon + 1));
  if (addrs.empty()) throw std::runtime_error("bootstrap: cannot resolve " + host_port);
  node.bootstrap(std::move(addrs));
}

}  // namespace p2psip::bench
