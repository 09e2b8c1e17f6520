#pragma once
// Adapts peer/storage's data_store to the core's storage_service. Header-only on purpose: only a
// target that links both p2psip::peer_core and p2psip::peer_storage includes it (the runtime);
// the core itself does not depend on the store.

#include "p2psip/peer/data_store.hpp"
#include "p2psip/peer/services.hpp"

namespace p2psip::peer {

class data_store_service final : public storage_service {
 public:
  /// `store` must outlive this adapter. `max_values_bytes`: split exported resources larger than
  /// this over several StoreReqs (keeps replica and hand-over messages under max-message-size).
  explicit data_store_service(data_store& store, std::size_t max_values_bytes = 3000)
      : store_(store), max_values_bytes_(max_values_bytes) {}

  protocol::message_body store(const protocol::store_req& req,
                               const crypto::verified_signer& requester,
                               std::span<const protocol::generic_certificate> certificates,
                               node::wall_time now, bool from_this_process) override {
    return store_.store(req, requester, certificates, now, from_this_process);
  }
  protocol::message_body fetch(const protocol::fetch_req& req, node::wall_time now) override {
    return store_.fetch(req, now);
  }
  protocol::message_body stat(const protocol::stat_req& req, node::wall_time now) override {
    return store_.stat(req, now);
  }
  protocol::message_body find(const protocol::find_req& req, const protocol::node_id& after,
                              const protocol::node_id& to, node::wall_time now) override {
    return store_.find(req, after, to, now);
  }
  std::vector<protocol::store_req> export_range(const protocol::node_id& after,
                                                const protocol::node_id& up_to,
                                                node::wall_time now) override {
    return store_.export_range(after, up_to, now, max_values_bytes_);
  }
  void drop_range(const protocol::node_id& after, const protocol::node_id& up_to) override {
    (void)store_.drop_range(after, up_to);
  }
  std::vector<repair_request> take_repairs() override {
    std::vector<repair_request> out;
    for (auto& [resource, kind] : store_.take_quarantined()) {
      const auto* rules = store_.rules(kind);
      out.push_back({resource, kind, rules ? rules->model : protocol::data_model::single_value});
    }
    return out;
  }
  std::vector<protocol::generic_certificate> signer_certificates(
      const protocol::message_body& body) const override {
    return store_.signer_certificates(body);
  }

 private:
  data_store& store_;
  std::size_t max_values_bytes_;
};

}  // namespace p2psip::peer
