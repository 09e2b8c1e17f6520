#pragma once
// The production message_signer: RELOAD message signatures through p2psip::crypto. Certificates
// are checked against wall time, read here (the node itself runs on steady time).

#include <chrono>
#include <utility>

#include "p2psip/crypto/identity.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/node/node_types.hpp"

namespace p2psip::node {

/// Signs as `as` with `identity`; verifies against `trust`. Both must outlive the signer.
class crypto_signer final : public message_signer {
 public:
  crypto_signer(const crypto::node_identity& identity, const protocol::node_id& as,
                crypto::trust_store& trust, crypto::certificate_lookup lookup = {})
      : identity_(identity), as_(as), trust_(trust), lookup_(std::move(lookup)) {}

  void sign(protocol::message& m) override { (void)crypto::sign_message(m, identity_, as_); }
  protocol::result<crypto::verified_signer> verify(const protocol::message& m) override {
    return crypto::verify_message(m, trust_, std::chrono::system_clock::now(), lookup_);
  }
  /// The certificates and the certificate checks, without a signature to make and verify: the
  /// message is delivered to this node and never leaves the process.
  protocol::result<crypto::verified_signer> prepare_own(protocol::message& m) override {
    return crypto::prepare_own_message(m, identity_, as_, trust_, std::chrono::system_clock::now());
  }

 private:
  const crypto::node_identity& identity_;
  protocol::node_id as_;
  crypto::trust_store& trust_;
  crypto::certificate_lookup lookup_;
};

}  // namespace p2psip::node
