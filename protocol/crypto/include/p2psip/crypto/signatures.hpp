#pragma once
// Signing and verifying RELOAD messages (RFC 6940 section 6.3.4) and StoredData values (section
// 7.1). The signed bytes come from the codec (message_signature_input, data_signature_input).
//
// Verification failures and the RELOAD error they are answered with (to_reload_errc):
//   unsigned_signature            {0,0} or identity none          -> Error_Forbidden
//   unsupported_signer_identity   identity type / hash we refuse  -> Error_Forbidden
//   signer_not_found              no certificate matches identity -> Error_Forbidden
//                                 (also: cert_hash_node_id over a Node-ID the cert lacks)
//   wrong_signer_identity_type    cert_hash on a multi-Node-ID certificate -> Error_Forbidden
//   malformed_certificate, no_node_id, wrong_overlay, ...   (the signer's certificate) -> Forbidden
//   untrusted_certificate, invalid_certificate_chain       -> Error_Forbidden
//   certificate_expired, certificate_not_yet_valid (at `now`) -> Error_Forbidden
//   unsupported_algorithm         algorithm unknown or not the key's -> Error_Forbidden
//   bad_signature                 the value does not verify      -> Error_Forbidden
// For a message the RFC says to drop it silently (section 6.3.4); for a StoreReq value it says
// Error_Forbidden (section 7.4.1.1).

#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "p2psip/crypto/certificate.hpp"
#include "p2psip/crypto/identity.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/protocol/data.hpp"
#include "p2psip/protocol/message.hpp"

namespace p2psip::crypto {

/// Who signed, once the signature, the certificate chain and its validity at `now` all passed.
struct verified_signer {
  certificate cert;
  protocol::node_id node;  ///< the Node-ID the SignerIdentity names (one of cert.node_ids())
  const std::string& user() const noexcept { return cert.user(); }
};

/// Certificates known besides a security block's bucket (e.g. from CERTIFICATE_BY_NODE, or those
/// a storing peer keeps for its data). Returns a candidate; it is checked against the identity.
using certificate_lookup =
    std::function<std::optional<certificate>(const protocol::signer_identity&)>;

/// Adds `id`'s certificate and chain to `block` unless already there (other certificates stay:
/// a StoreReq or FetchAns also carries the certificates of the values it holds).
void add_certificates(protocol::security_block& block, const node_identity& id);

/// Signs `m` as Node-ID `as` of `id`: adds the certificates and sets the signature over
/// message_signature_input(overlay, transaction_id, contents, SignerIdentity). The header and
/// contents must be final. node_id_not_in_certificate, signing_failed.
result<void> sign_message(protocol::message& m, const node_identity& id,
                          const protocol::node_id& as);
/// Signs as id.default_node_id().
result<void> sign_message(protocol::message& m, const node_identity& id);

/// Verifies a received message: finds the certificate the SignerIdentity names among the
/// security block's certificates (then through `lookup`), checks its chain against `trust` and
/// validity at `now`, and the signature. Never throws.
result<verified_signer> verify_message(const protocol::message& m, trust_store& trust,
                                       time_point now, const certificate_lookup& lookup = {});

/// Signs a StoredData value for (resource, kind) as Node-ID `as` of `id` over
/// data_signature_input(resource, kind, storage_time, value, SignerIdentity). Set storage_time
/// and value first. The caller adds id's certificate to the message (add_certificates). With
/// `note_in`, the signature is noted there as this process's own (trust_store::note_own_signature):
/// a Store of it delivered within this process is then not verified again.
result<void> sign_stored_data(protocol::stored_data& d, const protocol::resource_id& resource,
                              std::uint32_t kind, const node_identity& id,
                              const protocol::node_id& as, trust_store* note_in = nullptr);
result<void> sign_stored_data(protocol::stored_data& d, const protocol::resource_id& resource,
                              std::uint32_t kind, const node_identity& id);

/// Verifies a StoredData signature for (resource, kind); `certificates` is the bucket of the
/// message that carried it. The certificate must be valid at `now` (RFC 6940 section 7.1: a value
/// whose signing certificate expired is no longer valid). Never throws.
/// `from_this_process`: the value came in a message that never left this process (a Store this
/// node sent and delivered to itself). Then a signature that `trust` noted as made here over these
/// very bytes (sign_stored_data's `note_in`) is taken instead of verified again; the signer's
/// certificate, its chain and its validity are checked all the same. Never for data another node
/// sent: that is always verified.
result<verified_signer> verify_stored_data(
    const protocol::stored_data& d, const protocol::resource_id& resource, std::uint32_t kind,
    std::span<const protocol::generic_certificate> certificates, trust_store& trust, time_point now,
    const certificate_lookup& lookup = {}, bool from_this_process = false);

/// Every check of verify_stored_data but the signature value itself: the SignerIdentity names a
/// certificate (in `certificates` or from `lookup`) that chains to a root and is valid at `now`.
/// The returned signer is the one the value claims; the caller must verify the signature (with
/// verify_stored_data) before the value is served, handed on or lets it decide anything. For a
/// storing peer's replicas, vetted on first use (docs/conformance.md) and for a value it already
/// holds, verified, under the very same signature.
result<verified_signer> stored_data_signer(
    const protocol::stored_data& d, std::span<const protocol::generic_certificate> certificates,
    trust_store& trust, time_point now, const certificate_lookup& lookup = {});

/// The common step: verifies `sig` over `input` (built with sig.identity). For other signed
/// structures (e.g. a configuration document's signature).
result<verified_signer> verify_signature(
    const protocol::signature& sig, protocol::byte_view input,
    std::span<const protocol::generic_certificate> certificates, trust_store& trust, time_point now,
    const certificate_lookup& lookup = {});

/// The signer of a message this process signed as Node-ID `as` of `id` and delivers to itself
/// (it never left the process): what verify_message would return, with the same certificate
/// checks (`as` is id's, the chain to a root and validity at `now`), without verifying the
/// signature value just made. node_id_not_in_certificate or the chain's errors.
result<verified_signer> own_signer(const node_identity& id, const protocol::node_id& as,
                                   std::span<const protocol::generic_certificate> certificates,
                                   trust_store& trust, time_point now);

/// For a message this node delivers to itself (it is never sent): adds id's certificates to
/// its security block as sign_message does, leaves it unsigned (no one outside this process
/// sees it, and this process knows who made it) and returns own_signer.
result<verified_signer> prepare_own_message(protocol::message& m, const node_identity& id,
                                            const protocol::node_id& as, trust_store& trust,
                                            time_point now);

/// Makes a whole Signature over the input that `make_input(identity)` builds.
result<protocol::signature> make_signature(
    const node_identity& id, const protocol::node_id& as,
    const std::function<protocol::bytes(const protocol::signer_identity&)>& make_input);

/// The signature values this process has made and checked since it started, any algorithm and
/// any use (messages, stored values, configuration documents). `verified` counts every check of a
/// value, the failed ones too; a value left to its first use (deferred) or noted as this
/// process's own is not counted until it is checked. TLS handshakes are Botan's and not counted.
/// For operators' metrics and the benchmark's crypto budget per operation.
struct signature_counts {
  std::uint64_t made = 0;
  std::uint64_t verified = 0;
};
signature_counts signature_totals() noexcept;

}  // namespace p2psip::crypto
