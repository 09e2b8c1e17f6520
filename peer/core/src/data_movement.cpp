#include "p2psip/peer/data_movement.hpp"

#include <algorithm>

namespace p2psip::peer {

namespace pr = protocol;
using pr::reload_errc;

namespace {

/// Hand-overs (Join, Leave, a shrunken range) are replica Stores (RFC 6940 7.4.1.1): the receiver
/// keeps the generation counters of the copy it is given, and the request is signed by the peer
/// handing over, not by the values' writers, so an original Store (replica_number 0) would be
/// refused on both counts.
constexpr std::uint8_t kHandoverReplicaNumber = 1;

/// A routed hand-over is sent at most this many times.
constexpr unsigned kHandoverAttempts = 5;

bool contains_node(const std::vector<pr::node_id>& v, const pr::node_id& n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

}  // namespace

data_movement::data_movement(const core_config& cfg, storage_service& storage,
                             const chord_topology& ring, node::connection_table& links,
                             node::message_transport& transport, node::action_queue& actions,
                             core_stats& stats)
    : cfg_(cfg),
      storage_(storage),
      ring_(ring),
      links_(links),
      transport_(transport),
      actions_(actions),
      stats_(stats) {}

void data_movement::ring_joined(time_point now) {
  last_replicas_ = ring_.replica_set();
  last_range_start_ = ring_.range_start();
  note_predecessors(now);
}

void data_movement::ring_changed(time_point now) {
  note_predecessors(now);
  if (!ring_.joined()) return;
  // Re-replicate our range to new members of the replica set (RFC 6940 10.7.3). When our range
  // grew (a predecessor left), the replicas lack the part we took over: send the whole range to
  // every replica holder. When it shrank without a Join (rings merging), hand the lost part over.
  const auto start = ring_.range_start();
  const auto& self = cfg_.self;
  const bool grew = last_range_start_ && start != *last_range_start_ &&
                    pr::in_open_interval(*last_range_start_, start, self);
  const bool shrank = last_range_start_ && start != *last_range_start_ &&
                      pr::in_open_interval(start, *last_range_start_, self);
  if (shrank) {
    // Routed by Resource-ID rather than sent to the new predecessor: when two rings merge we may
    // know only some of the peers now between the old start and us, and a value handed to one
    // that is not responsible for it would stay there. Routed, each lands where the overlay says
    // it belongs, and moves on again from there if that peer's range shrinks in turn.
    hand_over(*last_range_start_, start, 1, now);
  }
  last_range_start_ = start;
  const auto replicas = ring_.replica_set();
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    if (grew || !contains_node(last_replicas_, replicas[i])) {
      replicate_range_to(replicas[i], static_cast<std::uint8_t>(i + 1), now);
    }
  }
  last_replicas_ = replicas;
  drop_foreign_data(now);
}

void data_movement::peer_joining(const pr::node_id& joining, time_point now) {
  const auto after = ring_.range_start();
  if (!pr::in_open_interval(joining, after, cfg_.self)) return;
  for (auto& req : storage_.export_range(after, joining, cfg_.wall())) {
    handover_queue_.push_back({std::move(req), joining, 1});
  }
  send_queued_handovers(now);
  last_range_start_ = joining;
}

void data_movement::leaving(const pr::node_id& successor, link_id link, time_point now) {
  handover_queue_.clear();
  for (auto& req : storage_.export_range(ring_.range_start(), cfg_.self, cfg_.wall())) {
    req.replica_number = kHandoverReplicaNumber;
    store_at(successor, link, req, "hand-over", now);
  }
}

void data_movement::store_at(const pr::node_id& to, link_id link, const pr::store_req& req,
                             std::string_view what, time_point now) {
  auto done = [this, to, what = std::string(what)](node::outcome&& o, time_point) {
    // A copy that did not land is a copy missing: say so (a refused hand-over once went unseen).
    if (o.what == node::outcome::kind::error) {
      actions_.log(what + " Store refused by " + to.hex() + ": " + node::describe(o));
    }
  };
  transport_.originate({pr::to_destination(to)}, req, std::move(done), now,
                       node::send_options{link, false}, storage_.signer_certificates(req));
}

std::vector<pr::node_id> data_movement::replicate(const pr::store_req& req,
                                                  const pr::store_ans& ans, time_point now) {
  std::vector<pr::node_id> replicas;
  std::uint8_t number = 1;
  // The requester gets a replica too when it is a successor: sending the StoreReq does not mean
  // it stored the value (a hand-over's sender already holds it; the copy is a no-op).
  for (const auto& s : ring_.replica_set()) {
    const auto l = links_.link_to(s);
    if (!l) continue;
    auto copy = req;
    copy.replica_number = number++;
    // A replica carries the generation we just assigned: the holder takes it as is, and a replica
    // with generation 0 is refused (RFC 6940 7.4.1.1); the requester's may be 0.
    for (auto& kd : copy.kind_data) {
      for (const auto& kr : ans.kind_responses) {
        if (kr.kind == kd.kind) kd.generation_counter = kr.generation_counter;
      }
    }
    const auto sent = transport_.pending_count();
    store_at(s, *l, copy, "replica", now);
    if (transport_.pending_count() > sent) replicas.push_back(s);
  }
  return replicas;
}

void data_movement::replicate_range_to(const pr::node_id& to, std::uint8_t replica_number,
                                       time_point now) {
  const auto l = links_.link_to(to);
  if (!l) return;
  for (auto& req : storage_.export_range(ring_.range_start(), cfg_.self, cfg_.wall())) {
    req.replica_number = replica_number;
    store_at(to, *l, req, "replica", now);
  }
}

void data_movement::hand_over(const pr::node_id& after, const pr::node_id& up_to, unsigned attempt,
                              time_point now) {
  auto lost = storage_.export_range(after, up_to, cfg_.wall());
  if (lost.empty()) return;
  if (attempt == 1) {
    actions_.log("range shrank: " + std::to_string(lost.size()) + " resources of (" + after.hex() +
                 ", " + up_to.hex() + "] to hand over");
  }
  for (auto& req : lost) handover_queue_.push_back({std::move(req), std::nullopt, attempt});
  send_queued_handovers(now);
}

void data_movement::send_queued_handovers(time_point now) {
  if (ring_.left()) {
    handover_queue_.clear();  // gone from the overlay: the Leave's hand-over went out already
    return;
  }
  const auto room = cfg_.max_pending - cfg_.max_pending / 4;
  while (!handover_queue_.empty() && transport_.pending_count() < room) {
    auto h = std::move(handover_queue_.front());
    handover_queue_.pop_front();
    h.req.replica_number = kHandoverReplicaNumber;
    ++stats_.handovers;
    if (h.to) {
      // A Join's: straight to the joining peer while its link lasts.
      if (const auto l = links_.link_to(*h.to)) store_at(*h.to, *l, h.req, "hand-over", now);
      continue;
    }
    const auto point = h.req.resource.as_ring_point();
    if (!point || ring_.is_responsible(*point)) continue;  // ours again meanwhile
    const auto resource = h.req.resource;
    const auto attempt = h.attempt;
    auto done = [this, p = *point, attempt](node::outcome&& o, time_point t) {
      if (o.ok()) return;
      handover_failed(p, attempt, o, t);
    };
    transport_.originate({pr::to_destination(resource)}, h.req, std::move(done), now, {},
                         storage_.signer_certificates(h.req));
  }
}

void data_movement::handover_failed(const pr::node_id& point, unsigned attempt,
                                    const node::outcome& o, time_point now) {
  last_handover_failure_ = node::describe(o);
  // The new owner holds a newer value already (written on its side of a partition): the
  // hand-over has nothing to add (RFC 6940 7.4.1.1's merge rule: the newer value wins).
  if (o.what == node::outcome::kind::error &&
      o.error.error_code == static_cast<std::uint16_t>(reload_errc::data_too_old)) {
    return;
  }
  if (ring_.joined() && attempt < kHandoverAttempts && handover_retry_.size() < cfg_.max_pending) {
    // No route yet (rings still merging) or no answer: again after request_timeout.
    handover_retry_.emplace(point, attempt);
    if (!next_handover_retry_) next_handover_retry_ = now + cfg_.request_timeout;
  } else {
    actions_.log("hand-over of Resource-ID point " + point.hex() + " given up after " +
                 std::to_string(attempt) + " attempts: " + last_handover_failure_);
  }
}

void data_movement::retry_handovers(time_point now) {
  next_handover_retry_.reset();
  const auto due = std::exchange(handover_retry_, {});
  actions_.log("hand-over of " + std::to_string(due.size()) +
               " resources sent again (last failure: " + last_handover_failure_ + ")");
  const auto one = pr::node_id::power_of_two(0, cfg_.self.view().size());
  for (const auto& [point, attempts] : due) hand_over(point - one, point, attempts + 1, now);
}

void data_movement::note_predecessors(time_point now) {
  const auto& preds = ring_.routes_table().predecessors();
  if (preds == last_predecessors_) return;
  last_predecessors_ = preds;
  predecessors_since_ = now;
  next_drop_ = now + cfg_.replica_hold_down;
}

void data_movement::drop_foreign_data(time_point now) {
  // RFC 6940 10.7.3: "When peer x detects that it is no longer in the replica set for a resource R
  // (i.e., there are three predecessors between x and R), it SHOULD delete all data associated
  // with R from its local store." We keep (third predecessor, self]: our own range and those of
  // our first two predecessors, whose replica holder we are (10.4).
  if (!ring_.joined()) return;
  note_predecessors(now);
  const auto& preds = ring_.routes_table().predecessors();
  if (preds.size() < 3 || now - predecessors_since_ < cfg_.replica_hold_down) return;
  for (std::size_t i = 0; i < 3; ++i) {
    if (ring_.suspected(preds[i])) return;
  }
  storage_.drop_range(cfg_.self, preds[2]);
  ++stats_.ranges_dropped;
}

void data_movement::on_timer(time_point now) {
  if (!ring_.joined()) return;
  if (next_drop_ && *next_drop_ <= now) {
    next_drop_.reset();
    drop_foreign_data(now);
  }
  if (next_handover_retry_ && *next_handover_retry_ <= now) retry_handovers(now);
  send_queued_handovers(now);
}

std::optional<time_point> data_movement::next_deadline() const {
  if (!ring_.joined()) return std::nullopt;
  std::optional<time_point> d = next_drop_;
  if (next_handover_retry_ && (!d || *next_handover_retry_ < *d)) d = next_handover_retry_;
  return d;
}

}  // namespace p2psip::peer
