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

void data_movement::peer_joining(const pr::node_id& joining, time_point now,
                                 std::function<void(time_point)> delivered) {
  const auto after = ring_.range_start();
  if (!pr::in_open_interval(joining, after, cfg_.self)) {
    delivered(now);  // not between us and our predecessor: nothing of ours is its
    return;
  }
  // Its range only: from the nearest node before it that we know is there (our predecessor, or
  // another peer we are admitting: several may join into our range at once after a failure).
  auto from = after;
  for (const auto& [other, unused] : admissions_) {
    if (pr::in_open_interval(other, from, joining)) from = other;
  }
  auto reqs = storage_.export_range(from, joining, cfg_.wall());
  auto& a = admissions_[joining];
  a.delivered = std::move(delivered);
  a.unsettled += reqs.size();
  for (auto& req : reqs) {
    req.replica_number = kHandoverReplicaNumber;
    enqueue({std::move(req), joining, purpose::join_handover, 1});
  }
  if (a.unsettled == 0) {
    a.ready = true;
    release_admissions(now);
    return;
  }
  actions_.log("Join of " + joining.hex() + ": " + std::to_string(reqs.size()) +
               " resources to hand over before it becomes our predecessor");
  send_queued(now);
}

void data_movement::leaving(const pr::node_id& successor, link_id link, time_point now) {
  clear_outbox();
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
  // A replica carries the generation we just assigned: the holder takes it as is, and a replica
  // with generation 0 is refused (RFC 6940 7.4.1.1); the requester's may be 0.
  auto with_generation = [&](std::uint8_t number) {
    auto copy = req;
    copy.replica_number = number;
    for (auto& kd : copy.kind_data) {
      for (const auto& kr : ans.kind_responses) {
        if (kr.kind == kd.kind) kd.generation_counter = kr.generation_counter;
      }
    }
    return copy;
  };
  std::vector<pr::node_id> replicas;
  std::uint8_t number = 1;
  // The requester gets a replica too when it is a successor: sending the StoreReq does not mean
  // it stored the value (a hand-over's sender already holds it; the copy is a no-op).
  for (const auto& s : ring_.replica_set()) {
    if (!links_.link_to(s)) continue;
    // In turn with the bulk already waiting: copies are paced like the rest.
    send_store({with_generation(number++), s, purpose::replica, 1, true}, now);
    replicas.push_back(s);
  }
  // A peer we are admitting takes over this value's range: it gets the value as part of its
  // hand-over, or it would become responsible without it.
  if (const auto point = req.resource.as_ring_point()) {
    for (auto& [joining, a] : admissions_) {
      if (!pr::in_half_open_interval(*point, ring_.range_start(), joining)) continue;
      ++a.unsettled;
      send_store(
          {with_generation(kHandoverReplicaNumber), joining, purpose::join_handover, 1, true}, now);
    }
  }
  return replicas;
}

void data_movement::send_store(queued_store s, time_point now) {
  enqueue(std::move(s));
  send_queued(now);
}

void data_movement::enqueue(queued_store s) {
  ++queued_;
  if (s.write_copy) ++queued_write_copies_;
  auto key = s.what == purpose::routed_handover ? std::nullopt : s.to;
  outbox_[key].push_back(std::move(s));
}

void data_movement::clear_outbox() {
  outbox_.clear();
  queued_ = 0;
  queued_write_copies_ = 0;
}

bool data_movement::still_wanted(const queued_store& s) const {
  if (!s.to || !links_.link_to(*s.to) || ring_.left()) return false;
  if (s.what == purpose::join_handover) return admissions_.count(*s.to) != 0;
  return contains_node(ring_.replica_set(), *s.to);
}

void data_movement::straight_store_done(queued_store s, const node::outcome& o, time_point now) {
  if (auto f = in_flight_.find(s.to); f != in_flight_.end() && --f->second == 0) {
    in_flight_.erase(f);
  }
  const bool answered =
      o.what == node::outcome::kind::answer || o.what == node::outcome::kind::error;
  const char* what = s.what == purpose::join_handover ? "hand-over" : "replica";
  if (o.what == node::outcome::kind::error) {
    // A copy that did not land is a copy missing: say so (a refused hand-over once went unseen).
    actions_.log(std::string(what) + " Store refused by " + s.to->hex() + ": " + node::describe(o));
  }
  if (!answered && still_wanted(s)) {
    // Unanswered (lost with a link, timed out): again, as long as the peer is linked and still
    // needs it (a dead one loses its link to the liveness checks, which ends this).
    ++s.attempt;
    ++stats_.bulk_stores_resent;
    enqueue(std::move(s));
    return;
  }
  if (!answered) {
    ++stats_.bulk_stores_given_up;
    actions_.log(std::string(what) + " Store to " + s.to->hex() + " unanswered after " +
                 std::to_string(s.attempt) + " attempts, and the peer is gone (unlinked, or out " +
                 "of our replica set): not sent again");
  }
  if (s.what == purpose::join_handover) join_store_settled(*s.to, now);
}

void data_movement::join_store_settled(const pr::node_id& joining, time_point now) {
  const auto it = admissions_.find(joining);
  if (it == admissions_.end() || --it->second.unsettled != 0) return;
  it->second.ready = true;
  actions_.log("Join of " + joining.hex() + ": hand-over delivered");
  release_admissions(now);
}

void data_movement::release_admissions(time_point now) {
  // In ring order from our range's start: a peer admitted before one joining below it would
  // take that one's part of the range in everyone's view without its data (each hand-over is
  // only the joining peer's own part when others join at the same time).
  for (;;) {
    const auto start = ring_.range_start();
    auto first = admissions_.end();
    for (auto it = admissions_.begin(); it != admissions_.end(); ++it) {
      if (first == admissions_.end() ||
          pr::ring_distance(start, it->first) < pr::ring_distance(start, first->first)) {
        first = it;
      }
    }
    if (first == admissions_.end() || !first->second.ready) return;
    auto done = std::move(first->second.delivered);
    admissions_.erase(first);
    done(now);  // becomes our predecessor: our range start moves up to it
  }
}

void data_movement::replicate_range_to(const pr::node_id& to, std::uint8_t replica_number,
                                       time_point now) {
  if (!links_.link_to(to)) return;
  for (auto& req : storage_.export_range(ring_.range_start(), cfg_.self, cfg_.wall())) {
    req.replica_number = replica_number;
    enqueue({std::move(req), to, purpose::replica, 1});
  }
  send_queued(now);
}

void data_movement::hand_over(const pr::node_id& after, const pr::node_id& up_to, unsigned attempt,
                              time_point now) {
  auto lost = storage_.export_range(after, up_to, cfg_.wall());
  if (lost.empty()) return;
  if (attempt == 1) {
    actions_.log("range shrank: " + std::to_string(lost.size()) + " resources of (" + after.hex() +
                 ", " + up_to.hex() + "] to hand over");
  }
  for (auto& req : lost) {
    req.replica_number = kHandoverReplicaNumber;
    enqueue({std::move(req), std::nullopt, purpose::routed_handover, attempt});
  }
  send_queued(now);
}

void data_movement::send_queued(time_point now) {
  if (ring_.left()) {
    clear_outbox();  // gone from the overlay: the Leave's hand-over went out already
    return;
  }
  // One queue per target, served in turn, each with at most max_bulk_in_flight out: the Stores
  // wait in the links' queues ahead of the clients' requests forwarded the same way, so they may
  // not fill them (a put's latency is the queue's), and one joining peer's hand-over does not
  // wait for another's.
  const auto room = cfg_.max_pending - cfg_.max_pending / 4;
  for (bool sent = true; sent && queued_ > 0 && transport_.pending_count() < room;) {
    sent = false;
    // Starting after the target served last, so that with room for only a few each time the
    // first target does not get them all.
    std::vector<target_key> targets;
    for (auto it = outbox_.upper_bound(last_served_); it != outbox_.end(); ++it) {
      targets.push_back(it->first);
    }
    for (auto it = outbox_.begin(); it != outbox_.end() && it->first <= last_served_; ++it) {
      targets.push_back(it->first);
    }
    for (const auto& key : targets) {
      if (transport_.pending_count() >= room) break;
      const auto it = outbox_.find(key);
      if (it == outbox_.end()) continue;
      if (it->second.empty()) {
        outbox_.erase(it);
        continue;
      }
      if (in_flight_[key] >= cfg_.max_bulk_in_flight) continue;
      auto s = std::move(it->second.front());
      it->second.pop_front();
      --queued_;
      if (s.write_copy) --queued_write_copies_;
      last_served_ = key;
      send_one(std::move(s), key, now);
      sent = true;
    }
  }
  std::erase_if(in_flight_, [](const auto& e) { return e.second == 0; });
}

void data_movement::send_one(queued_store s, const target_key& key, time_point now) {
  if (s.what == purpose::routed_handover) {
    ++stats_.handovers;
    const auto point = s.req.resource.as_ring_point();
    if (!point || ring_.is_responsible(*point)) return;  // ours again meanwhile
    const auto resource = s.req.resource;
    const auto attempt = s.attempt;
    auto done = [this, p = *point, attempt](node::outcome&& o, time_point t) {
      if (auto f = in_flight_.find(std::nullopt); f != in_flight_.end() && f->second > 0) {
        --f->second;
      }
      if (o.ok()) return;
      handover_failed(p, attempt, o, t);
    };
    if (transport_.originate({pr::to_destination(resource)}, s.req, std::move(done), now, {},
                             storage_.signer_certificates(s.req))) {
      ++in_flight_[key];
    }
    return;
  }
  if (!still_wanted(s)) {
    if (s.what == purpose::join_handover) join_store_settled(*s.to, now);
    return;
  }
  if (s.what == purpose::join_handover) ++stats_.handovers;
  if (s.what == purpose::replica) ++stats_.replica_stores;
  const auto link = *links_.link_to(*s.to);
  const auto req = s.req;
  const auto to = *s.to;
  auto done = [this, s = std::move(s)](node::outcome&& o, time_point t) mutable {
    straight_store_done(std::move(s), o, t);
  };
  if (transport_.originate({pr::to_destination(to)}, req, std::move(done), now,
                           node::send_options{link, false}, storage_.signer_certificates(req))) {
    ++in_flight_[key];
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

void data_movement::repair(const repair_request& damaged, time_point now) {
  const auto point = damaged.resource.as_ring_point();
  if (!point || !ring_.joined()) return;
  pr::stored_data_specifier spec;
  spec.kind = damaged.kind;
  if (damaged.model == pr::data_model::array) {
    spec.model = std::vector<pr::array_range>{{0, 0xFFFFFFFF}};
  } else if (damaged.model == pr::data_model::dictionary) {
    spec.model = std::vector<pr::bytes>{};  // every key
  }
  const pr::fetch_req fetch{damaged.resource, {spec}};
  auto take = [this, resource = damaged.resource](node::outcome&& o, time_point) {
    const auto* ans = std::get_if<pr::fetch_ans>(&o.body);
    if (!o.ok() || !ans || !o.signer) return;
    pr::store_req copy;
    copy.resource = resource;
    copy.replica_number = kHandoverReplicaNumber;
    for (const auto& kr : ans->kind_responses) {
      if (kr.values.empty() || kr.generation == 0) continue;
      pr::store_kind_data kd;
      kd.kind = kr.kind;
      kd.generation_counter = kr.generation;
      kd.values = kr.values;
      copy.kind_data.push_back(std::move(kd));
    }
    if (copy.kind_data.empty()) return;
    const auto stored =
        storage_.store(copy, *o.signer, o.message.security.certificates, cfg_.wall(), false);
    if (std::holds_alternative<pr::store_ans>(stored)) {
      ++stats_.values_repaired;
      actions_.warn("damaged values of Resource-ID " + resource.hex() + " repaired from " +
                    o.signer->node.hex());
    }
  };
  ++stats_.repairs_requested;
  if (ring_.is_responsible(*point)) {
    for (const auto& holder : ring_.replica_set()) {
      if (const auto l = links_.link_to(holder)) {
        transport_.originate({pr::to_destination(holder)}, fetch, take, now,
                             node::send_options{*l, false});
      }
    }
    return;
  }
  transport_.originate({pr::to_destination(damaged.resource)}, fetch, std::move(take), now);
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
  send_queued(now);
}

std::optional<time_point> data_movement::next_deadline() const {
  if (!ring_.joined()) return std::nullopt;
  std::optional<time_point> d = next_drop_;
  if (next_handover_retry_ && (!d || *next_handover_retry_ < *d)) d = next_handover_retry_;
  return d;
}

}  // namespace p2psip::peer
