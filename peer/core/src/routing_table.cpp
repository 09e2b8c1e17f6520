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
  const int bit = d.highest_bit();  // counted from the least significant bit of the whole id
  return bit < 0 ? 0u : static_cast<unsigned>(8 * d.size()) - static_cast<unsigned>(bit);
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
      if (slot) drop_finger_ref(*slot);
      add_finger_ref(peer);
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
  if (std::erase_if(finger_refs_, [&](const auto& r) { return r.first == peer; }) == 0) {
    if (removed) ++changes_;
    return;
  }
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
  finger_refs_.clear();
}

void routing_table::add_finger_ref(const pr::node_id& peer) {
  const auto it = std::find_if(finger_refs_.begin(), finger_refs_.end(),
                               [&](const auto& r) { return r.first == peer; });
  if (it == finger_refs_.end()) {
    finger_refs_.emplace_back(peer, 1u);
  } else {
    ++it->second;
  }
}

void routing_table::drop_finger_ref(const pr::node_id& peer) {
  const auto it = std::find_if(finger_refs_.begin(), finger_refs_.end(),
                               [&](const auto& r) { return r.first == peer; });
  if (it != finger_refs_.end() && --it->second == 0) finger_refs_.erase(it);
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
  return std::any_of(finger_refs_.begin(), finger_refs_.end(),
                     [&](const auto& r) { return r.first == peer; });
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
  // Every peer of the table once would be peers(); a peer seen twice (a neighbor that is also a
  // finger) changes neither minimum below, so the lists are walked as they are.
  const auto for_each_candidate = [&](auto&& f) {
    const auto usable = [&](const pr::node_id& p) {
      return std::find(avoid.begin(), avoid.end(), p) == avoid.end();
    };
    for (const auto& p : successors_) {
      if (usable(p)) f(p);
    }
    for (const auto& p : predecessors_) {
      if (usable(p)) f(p);
    }
    for (const auto& [p, slots] : finger_refs_) {
      if (usable(p)) f(p);
    }
  };
  // Largest Node-ID in (self, k): the peer in that interval nearest to k counter-clockwise.
  std::optional<pr::node_id> best;
  std::optional<pr::node_id> best_distance;
  for_each_candidate([&](const pr::node_id& p) {
    if (!pr::in_open_interval(p, self_, k)) return;
    const auto d = pr::ring_distance(p, k);
    if (!best || d < *best_distance) {
      best = p;
      best_distance = d;
    }
  });
  if (best) return best;
  // Else the smallest Node-ID greater than k: the first peer clockwise from k (k itself if known).
  for_each_candidate([&](const pr::node_id& p) {
    const auto d = pr::ring_distance(k, p);
    if (!best || d < *best_distance) {
      best = p;
      best_distance = d;
    }
  });
  return best;
}

bool routing_table::has_finger_start_in(const pr::node_id& peer, const pr::node_id& a,
                                        const pr::node_id& b) noexcept {
  // Finger interval i of `peer` starts at peer + 2^(8n - i), i = 1..8n: every power of two from
  // `peer`. x = peer + 2^k lies in (a, b] when 2^k lies in (a - peer, b - peer] going clockwise,
  // so one look at the highest bits answers what 8n calls of in_half_open_interval would.
  if (a == b) return true;  // (a, a]: the whole ring
  const auto from = pr::ring_distance(peer, a);
  const auto to = pr::ring_distance(peer, b);
  const int from_bit = from.highest_bit();
  const int to_bit = to.highest_bit();
  const int top_bit = static_cast<int>(8 * peer.size()) - 1;
  if (from < to) {
    // (from, to] without wrapping: the smallest power of two above `from` is 2^(from_bit + 1)
    // (2^0 for from = 0); it is in when it is not above `to`.
    return from_bit < to_bit;
  }
  // Wrapping: (from, 2^8n) holds a power of two when from < 2^(8n-1); [0, to] when to >= 1.
  return from_bit < top_bit || to_bit >= 0;
}

}  // namespace p2psip::peer
