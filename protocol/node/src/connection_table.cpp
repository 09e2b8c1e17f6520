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

std::optional<connection> connection_table::remove(link_id link) {
  const auto it = rows_.find(link);
  if (it == rows_.end()) return std::nullopt;
  auto c = std::move(it->second);
  rows_.erase(it);
  return c;
}

link_id connection_table::choose(const protocol::node_id& node,
                                 const std::vector<const connection*>& rows) const {
  // The keeper's links first (those the lower Node-ID opened, when we were told); among several
  // (one end opened two), the one last received on, then the oldest.
  const auto keeper = self_ < node ? link_origin::outbound : link_origin::inbound;
  const connection* best = nullptr;
  auto rank = [&](const connection& c) { return c.origin_told && c.origin == keeper; };
  for (const auto* c : rows) {
    if (!best || (rank(*c) && !rank(*best)) ||
        (rank(*c) == rank(*best) && c->last_received > best->last_received)) {
      best = c;
    }
  }
  return best->link;
}

std::optional<link_id> connection_table::link_to(const protocol::node_id& node) const {
  std::vector<const connection*> rows;
  for (const auto& [id, c] : rows_) {
    if (c.remote == node && !c.leaving) rows.push_back(&c);
  }
  if (rows.empty()) return std::nullopt;
  return choose(node, rows);
}

std::map<protocol::node_id, link_id> connection_table::preferred_links() const {
  std::map<protocol::node_id, std::vector<const connection*>> by_node;
  for (const auto& [id, c] : rows_) {
    if (!c.leaving) by_node[c.remote].push_back(&c);
  }
  std::map<protocol::node_id, link_id> out;
  for (const auto& [node, rows] : by_node) out.emplace(node, choose(node, rows));
  return out;
}

bool connection_table::has_peer_link(const protocol::node_id& node) const {
  for (const auto& [id, c] : rows_) {
    if (c.remote == node && c.is_peer && !c.leaving) return true;
  }
  return false;
}

bool connection_table::has_link(const protocol::node_id& node) const {
  for (const auto& [id, c] : rows_) {
    if (c.remote == node) return true;
  }
  return false;
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
    if (c.is_peer || c.attached_peer) peers.insert(c.remote);
  }
  for (const auto& [id, c] : rows_) {
    if (peers.count(c.remote) == 0) clients.insert(c.remote);
  }
  return clients.size();
}

}  // namespace p2psip::node
