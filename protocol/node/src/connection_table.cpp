#include "p2psip/node/connection_table.hpp"

#include <set>

namespace p2psip::node {

const connection* connection_table::find(link_id link) const {
  const auto it = rows_.find(link);
  return it == rows_.end() ? nullptr : &it->second;
}

connection* connection_table::find(link_id link) {
  const auto it = rows_.find(link);
  return it == rows_.end() ? nullptr : &it->second;
}

void connection_table::add(connection c) {
  if (const auto old = rows_.find(c.link); old != rows_.end()) {
    by_remote_.erase({old->second.remote, old->first});
  }
  by_remote_.emplace(c.remote, c.link);
  rows_[c.link] = std::move(c);
}

std::optional<connection> connection_table::remove(link_id link) {
  const auto it = rows_.find(link);
  if (it == rows_.end()) return std::nullopt;
  auto c = std::move(it->second);
  rows_.erase(it);
  by_remote_.erase({c.remote, link});
  return c;
}

bool connection_table::better(const connection& c, const connection& best) const {
  // The keeper's links first (those the lower Node-ID opened, when we were told); among several
  // (one end opened two), the one last received on; on a tie the one seen first (the oldest).
  const auto keeper = self_ < c.remote ? link_origin::outbound : link_origin::inbound;
  const bool c_keeps = c.origin_told && c.origin == keeper;
  const bool best_keeps = best.origin_told && best.origin == keeper;
  if (c_keeps != best_keeps) return c_keeps;
  return c.last_received > best.last_received;
}

std::optional<link_id> connection_table::link_to(const protocol::node_id& node) const {
  // In link order, as a walk over every row would meet them: ties go to the lowest link id.
  const connection* best = nullptr;
  for (auto it = by_remote_.lower_bound({node, link_id{}});
       it != by_remote_.end() && it->first == node; ++it) {
    const auto& c = rows_.at(it->second);
    if (c.leaving) continue;
    if (!best || better(c, *best)) best = &c;
  }
  if (!best) return std::nullopt;
  return best->link;
}

std::map<protocol::node_id, link_id> connection_table::preferred_links() const {
  std::map<protocol::node_id, link_id> out;
  for (const auto& [id, c] : rows_) {
    if (c.leaving) continue;
    const auto [it, fresh] = out.emplace(c.remote, id);
    if (!fresh && better(c, rows_.at(it->second))) it->second = id;
  }
  return out;
}

bool connection_table::has_peer_link(const protocol::node_id& node) const {
  for (auto it = by_remote_.lower_bound({node, link_id{}});
       it != by_remote_.end() && it->first == node; ++it) {
    const auto& c = rows_.at(it->second);
    if (c.is_peer && !c.leaving) return true;
  }
  return false;
}

bool connection_table::has_link(const protocol::node_id& node) const {
  const auto it = by_remote_.lower_bound({node, link_id{}});
  return it != by_remote_.end() && it->first == node;
}

void connection_table::note_traffic(link_id link, time_point now) {
  if (auto* c = find(link)) c->last_traffic = now;
}

void connection_table::note_received(link_id link, time_point now) {
  if (auto* c = find(link)) {
    c->last_traffic = now;
    c->last_received = now;
  }
}

bool connection_table::count_malformed(link_id link, unsigned limit) {
  auto* c = find(link);
  if (!c) return false;
  return ++c->malformed == limit;
}

std::size_t connection_table::clients() const {
  // A node with a peer link counts as a peer, whatever else it holds; a client with two links is
  // one client.
  std::set<protocol::node_id> peers, clients;
  for (const auto& [id, c] : rows_) {
    if (!c.from_client()) peers.insert(c.remote);
  }
  for (const auto& [id, c] : rows_) {
    if (peers.count(c.remote) == 0) clients.insert(c.remote);
  }
  return clients.size();
}

}  // namespace p2psip::node
