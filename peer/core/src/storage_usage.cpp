#include "p2psip/peer/storage_usage.hpp"

#include <algorithm>

#include "p2psip/protocol/reader.hpp"

namespace p2psip::peer {

namespace pr = protocol;
using pr::reload_errc;

storage_usage::storage_usage(const core_config& cfg, storage_service& storage,
                             const chord_topology& ring, const node::connection_table& links,
                             node::message_transport& transport, data_movement& movement)
    : cfg_(cfg),
      storage_(storage),
      ring_(ring),
      links_(links),
      transport_(transport),
      movement_(movement) {
  for (const auto code :
       {pr::codes::store_req, pr::codes::fetch_req, pr::codes::stat_req, pr::codes::find_req}) {
    transport_.handle(code, *this);
  }
  // A client may store only its own data (replica 0): a replica Store from it would set the
  // generation counter of whatever resource it names, so its first peer does not pass it on.
  transport_.set_client_forward_check([](const pr::message& m) -> std::optional<std::string> {
    if (m.contents.code != pr::codes::store_req) return std::nullopt;
    pr::reader r(m.contents.body);
    (void)r.opaque(1, 0, 255, "resource");
    const auto replica = r.u8("replica_number");
    if (!r.ok() || replica == 0) return std::nullopt;
    return "a client sends no replica Store";
  });
}

void storage_usage::on_request(const node::inbound_request& r, time_point now) {
  serve(r, now);
  // Reading or writing may have found damaged values (dropped from the answer): fetch a good
  // copy from another holder.
  for (const auto& damaged : storage_.take_repairs()) movement_.repair(damaged, now);
}

void storage_usage::serve(const node::inbound_request& r, time_point now) {
  if (const auto* st = std::get_if<pr::store_req>(&r.body)) return on_store(r, *st, now);
  if (const auto* fr = std::get_if<pr::fetch_req>(&r.body)) {
    auto ans = storage_.fetch(*fr, cfg_.wall());
    auto certs = std::holds_alternative<pr::fetch_ans>(ans)
                     ? storage_.signer_certificates(ans)
                     : std::vector<pr::generic_certificate>{};
    transport_.answer(r, ans, now, std::move(certs));
    return;
  }
  if (const auto* sr = std::get_if<pr::stat_req>(&r.body)) {
    transport_.answer(r, storage_.stat(*sr, cfg_.wall()), now);
    return;
  }
  if (const auto* fd = std::get_if<pr::find_req>(&r.body)) {
    transport_.answer(r, storage_.find(*fd, ring_.range_start(), cfg_.self, cfg_.wall()), now);
    return;
  }
  transport_.send_error(r, reload_errc::invalid_message, "not a storage request", now);
}

std::string storage_usage::implausible_replica(const node::inbound_request& r,
                                               const pr::node_id& point, bool ours) const {
  const auto& sender = r.signer.node;
  if (links_.has_link(sender) && !links_.has_peer_link(sender)) {
    return "replica Store from a client";
  }
  if (r.direct && links_.has_peer_link(sender)) return {};  // a neighbor's replica or hand-over
  // Routed: only a hand-over to us as the new owner (a Join elsewhere, rings merging). Its sender
  // held the value before us, so it is no node of our own range: one there would be closer to
  // the Resource-ID than we are.
  if (!ours) return "replica Store for a Resource-ID we hold no copy of";
  if (pr::in_open_interval(sender, point, cfg_.self) || sender == point) {
    return "replica Store from a node that cannot have held it";
  }
  return {};
}

void storage_usage::on_store(const node::inbound_request& r, const pr::store_req& st,
                             time_point now) {
  const auto point = st.resource.as_ring_point();
  const bool ours = point && ring_.joined() && ring_.is_responsible(*point);
  // RFC 6940 7.4.1.1: an original Store only where we are responsible; a replica only from a
  // sender consistent with being the responsible node. Either way every value must be signed by
  // a writer the kind's access policy admits (the store checks).
  if (st.replica_number == 0 && !ours) {
    transport_.send_error(r, reload_errc::forbidden, "not responsible for this Resource-ID", now);
    return;
  }
  if (st.replica_number != 0) {
    const auto why = point ? implausible_replica(r, *point, ours) : "bad Resource-ID";
    if (!why.empty()) {
      transport_.send_error(r, reload_errc::forbidden, why, now);
      return;
    }
  }
  auto ans = storage_.store(st, r.signer, r.message.security.certificates, cfg_.wall(),
                            r.from_this_process);
  // Ours to replicate: an original Store, or a hand-over from a peer outside our replica set (one
  // from our successor, whose Join handing-over made us responsible, is already there).
  const auto replicas = ring_.replica_set();
  const bool replicate =
      st.replica_number == 0 ||
      (ours && std::find(replicas.begin(), replicas.end(), r.signer.node) == replicas.end());
  if (auto* sa = std::get_if<pr::store_ans>(&ans); sa && replicate && ring_.joined()) {
    const auto copies = movement_.replicate(st, *sa, now);
    for (auto& kr : sa->kind_responses) kr.replicas = copies;
  }
  transport_.answer(r, ans, now);
}

}  // namespace p2psip::peer
