#include "p2psip/peer/routing_table.hpp"

#include <algorithm>

namespace p2psip::peer {

namespace pr = protocol;

namespace {

// Inserts `p` into `list` kept sorted by `dist(p)` ascending, capped at `cap`. True if inserted.
template <class Dist>
bool insert_sorted(std::vector<pr::node_id>& list, const pr::node_id& p, std::size_t cap,
                   Dist dist) {
  if (std::find(list.begin(), list.end(), p) != list.end()) return false;
  const auto d = dist(p);
  auto it =
      std::find_if(list.begin(), list.end(), [&](const pr::node_id& q) { return d < dist(q); });
  if (it == list.end() && list.size() >= cap) return false;
  list.insert(it, p);
  if (list.size() > cap) list.pop_back();
  return true;
}

}  // namespace

routing_table::routing_table(const pr::node_id& self, std::size_t neighbors)
    : self_(self), neighbors_(neighbors == 0 ? 1 : neighbors), fingers_(8 * self.size()) {}

unsigned routing_table::finger_index(const pr::node_id& peer) const noexcept {
  const auto d = pr::ring_distance(self_, peer);
  const auto v = d.view();
  for (std::size_t byte = 0; byte < v.size(); ++byte) {
    if (v[byte] == 0) continue;
    unsigned top = 7;
    while (((static_cast<unsigned>(v[byte]) >> top) & 1u) == 0) --top;
    // Bit position counted from the least significant bit of the whole id.
    const auto bit = static_cast<unsigned>((v.size() - 1 - byte) * 8 + top);
    return static_cast<unsigned>(8 * v.size()) - bit;
  }
  return 0;
}

bool routing_table::add(const pr::node_id& peer) {
  if (peer == self_ || peer.size() != self_.size()) return false;
  bool added = false;
  added |= insert_sorted(successors_, peer, neighbors_,
                         [&](const pr::node_id& q) { return pr::ring_distance(self_, q); });
  added |= insert_sorted(predecessors_, peer, neighbors_,
                         [&](const pr::node_id& q) { return pr::ring_distance(q, self_); });
  const unsigned i = finger_index(peer);
  if (i >= 1 && i <= fingers_.size()) {
    auto& slot = fingers_[i - 1];
    // Keep the first peer found in the interval (candidates arrive in random order), but prefer
    // the one nearest the interval start so that the finger is the responsible peer of the target.
    if (!slot || pr::ring_distance(pr::finger_target(self_, i), peer) <
                     pr::ring_distance(pr::finger_target(self_, i), *slot)) {
      slot = peer;
      added = true;
    }
  }
  if (added) ++changes_;
  return added;
}

bool routing_table::improves_neighbors(const pr::node_id& peer) const {
  if (peer == self_ || peer.size() != self_.size() || contains(peer)) return false;
  if (successors_.size() < neighbors_ || predecessors_.size() < neighbors_) return true;
  return pr::ring_distance(self_, peer) < pr::ring_distance(self_, successors_.back()) ||
         pr::ring_distance(peer, self_) < pr::ring_distance(predecessors_.back(), self_);
}

void routing_table::remove(const pr::node_id& peer) {
  bool removed = std::erase(successors_, peer) != 0;
  removed |= std::erase(predecessors_, peer) != 0;
  for (auto& f : fingers_) {
    if (f && *f == peer) {
      f.reset();
      removed = true;
    }
  }
  if (removed) ++changes_;
}

void routing_table::clear() {
  if (!successors_.empty() || !predecessors_.empty() ||
      std::any_of(fingers_.begin(), fingers_.end(), [](const auto& f) { return f.has_value(); })) {
    ++changes_;
  }
  successors_.clear();
  predecessors_.clear();
  for (auto& f : fingers_) f.reset();
}

void routing_table::rebuild(const std::vector<pr::node_id>& peers) {
  clear();
  for (const auto& p : peers) add(p);
}

std::optional<pr::node_id> routing_table::finger(unsigned i) const {
  if (i < 1 || i > fingers_.size()) return std::nullopt;
  return fingers_[i - 1];
}

std::vector<pr::node_id> routing_table::fingers() const {
  std::vector<pr::node_id> out;
  for (const auto& f : fingers_) {
    if (f && std::find(out.begin(), out.end(), *f) == out.end()) out.push_back(*f);
  }
  return out;
}

std::vector<pr::node_id> routing_table::peers() const {
  std::vector<pr::node_id> out = successors_;
  for (const auto& p : predecessors_) {
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  }
  for (const auto& f : fingers_) {
    if (f && std::find(out.begin(), out.end(), *f) == out.end()) out.push_back(*f);
  }
  return out;
}

bool routing_table::contains(const pr::node_id& peer) const {
  if (is_neighbor(peer)) return true;
  return std::any_of(fingers_.begin(), fingers_.end(),
                     [&](const auto& f) { return f && *f == peer; });
}

bool routing_table::is_neighbor(const pr::node_id& peer) const {
  return std::find(successors_.begin(), successors_.end(), peer) != successors_.end() ||
         std::find(predecessors_.begin(), predecessors_.end(), peer) != predecessors_.end();
}

bool routing_table::is_responsible(const pr::node_id& k) const {
  if (predecessors_.empty()) return true;
  return pr::in_half_open_interval(k, predecessors_.front(), self_);
}

std::optional<pr::node_id> routing_table::next_hop(const pr::node_id& k,
                                                   const std::vector<pr::node_id>& avoid) const {
  auto all = peers();
  std::erase_if(all, [&](const pr::node_id& p) {
    return std::find(avoid.begin(), avoid.end(), p) != avoid.end();
  });
  if (all.empty()) return std::nullopt;
  // Largest Node-ID in (self, k): the peer in that interval nearest to k counter-clockwise.
  std::optional<pr::node_id> best;
  for (const auto& p : all) {
    if (!pr::in_open_interval(p, self_, k)) continue;
    if (!best || pr::ring_distance(p, k) < pr::ring_distance(*best, k)) best = p;
  }
  if (best) return best;
  // Else the smallest Node-ID greater than k: the first peer clockwise from k (k itself if known).
  for (const auto& p : all) {
    if (!best || pr::ring_distance(k, p) < pr::ring_distance(k, *best)) best = p;
  }
  return best;
}

}  // namespace p2psip::peer
