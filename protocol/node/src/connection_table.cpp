#include "p2psip/node/connection_table.hpp"

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

std::optional<link_id> connection_table::link_to(const protocol::node_id& node) const {
  const auto keeper = self_ < node ? link_origin::outbound : link_origin::inbound;
  std::optional<link_id> first;
  for (const auto& [id, c] : rows_) {
    if (c.remote != node || c.leaving) continue;
    if (c.origin_told && c.origin == keeper) return id;
    if (!first) first = id;
  }
  return first;
}

std::map<protocol::node_id, link_id> connection_table::preferred_links() const {
  std::map<protocol::node_id, link_id> out;
  for (const auto& [id, c] : rows_) {
    if (c.leaving) continue;
    const auto keeper = self_ < c.remote ? link_origin::outbound : link_origin::inbound;
    const auto [it, fresh] = out.emplace(c.remote, id);
    if (!fresh && c.origin_told && c.origin == keeper) {
      const auto& chosen = rows_.at(it->second);
      if (!(chosen.origin_told && chosen.origin == keeper)) it->second = id;
    }
  }
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

bool connection_table::count_malformed(link_id link, unsigned limit) {
  auto* c = find(link);
  if (!c) return false;
  return ++c->malformed == limit;
}

std::size_t connection_table::client_links() const {
  // A node with a peer link counts once as a peer, whatever else it holds (a second link it
  // opened for the same purpose is a peer's, not a client's).
  std::size_t n = 0;
  for (const auto& [id, c] : rows_) {
    if (!c.is_peer && !has_peer_link(c.remote)) ++n;
  }
  return n;
}

}  // namespace p2psip::node
