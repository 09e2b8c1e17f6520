#include "p2psip/crypto/signatures.hpp"

#include <algorithm>

#include "botan_glue.hpp"
#include "signature_counters.hpp"

namespace p2psip::crypto {

namespace pr = p2psip::protocol;

namespace {

constexpr auto cert_hash_type = static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash);
constexpr auto cert_hash_node_id_type =
    static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash_node_id);

bool contains(const std::vector<pr::generic_certificate>& certs, const pr::bytes& der) {
  return std::any_of(certs.begin(), certs.end(), [&](const pr::generic_certificate& g) {
    return g.type == 0 && g.certificate == der;
  });
}

/// Whether `der` hashes to a cert_hash identity's value (cheap pre-filter before parsing).
bool cert_hash_matches(const pr::signer_identity& id, const std::string& hash_name,
                       const pr::bytes& der) {
  if (id.hash.hash_alg == pr::hash_algorithm::sha256) {
    const auto d = detail::sha256(der);
    return std::equal(id.hash.hash.begin(), id.hash.hash.end(), d.begin(), d.end());
  }
  return detail::hash(hash_name, {}, der) == id.hash.hash;
}

struct found_signer {
  certificate cert;
  pr::node_id node;
};

/// The certificate (and Node-ID) a SignerIdentity designates.
result<found_signer> find_signer(const pr::signer_identity& id,
                                 std::span<const pr::generic_certificate> certificates,
                                 trust_store& trust, const certificate_lookup& lookup) {
  if (id.type != cert_hash_type && id.type != cert_hash_node_id_type) {
    return make_error_code(crypto_errc::unsupported_signer_identity);
  }
  const auto hash_name = detail::hash_name(id.hash.hash_alg);
  if (!hash_name) return make_error_code(crypto_errc::unsupported_signer_identity);

  for (const pr::generic_certificate& g : certificates) {
    if (g.type != 0) continue;
    if (id.type == cert_hash_type) {
      if (!cert_hash_matches(id, *hash_name, g.certificate)) continue;
      // This is the signer's certificate: its problems are the signer's.
      auto cert = trust.parse(g.certificate);
      if (!cert) return cert.error();
      auto node = cert->match(id);
      if (!node) return node.error();
      return found_signer{*cert, *node};
    }
    auto cert = trust.parse(g.certificate);
    if (!cert) continue;  // not ours to judge: it is not (or cannot be shown to be) the signer's
    if (auto node = cert->match(id)) return found_signer{*cert, *node};
  }
  if (lookup) {
    if (auto cert = lookup(id)) {
      auto node = cert->match(id);
      if (node) return found_signer{*cert, *node};
      if (node.error() != crypto_errc::signer_not_found) return node.error();
    }
  }
  return make_error_code(crypto_errc::signer_not_found);
}

/// How much of a signature verify_signature_impl checks (the certificate checks always run).
enum class value_check : std::uint8_t {
  verify,        ///< the signature value too
  own_if_noted,  ///< the signature value unless this process noted it as its own over `input`
  deferred,      ///< not the signature value: the caller verifies it before the data is used
};

result<verified_signer> verify_signature_impl(const pr::signature& sig, pr::byte_view input,
                                              std::span<const pr::generic_certificate> certificates,
                                              trust_store& trust, time_point now,
                                              const certificate_lookup& lookup, value_check check) {
  // RFC 6940 section 7.4.1.1: {0,0} and identity none mark synthetic values only.
  if (sig.identity.is_none() || sig.algorithm.signature == pr::signature_algorithm::anonymous ||
      sig.algorithm == pr::signature_and_hash_algorithm{}) {
    return make_error_code(crypto_errc::unsigned_signature);
  }
  try {
    auto signer = find_signer(sig.identity, certificates, trust, lookup);
    if (!signer) return signer.error();
    if (auto chain = trust.check(signer->cert, certificates, now); !chain) return chain.error();
    // A signature this process made over exactly these bytes with this certificate's key, on
    // data that never left the process: it verifies; the certificate checks above still ran.
    if (check == value_check::deferred ||
        (check == value_check::own_if_noted &&
         trust.take_own_signature(signer->cert, sig.algorithm, input, sig.value))) {
      return verified_signer{std::move(signer->cert), signer->node};
    }
    if (auto ok = signer->cert.verify(sig.algorithm, input, sig.value); !ok) return ok.error();
    return verified_signer{std::move(signer->cert), signer->node};
  } catch (const std::exception&) {
    // Botan throws on malformed signature encodings.
    return make_error_code(crypto_errc::bad_signature);
  }
}

}  // namespace

void add_certificates(pr::security_block& block, const node_identity& id) {
  if (!contains(block.certificates, id.cert().der())) {
    block.certificates.push_back(id.cert().generic());
  }
  for (const pr::bytes& der : id.chain()) {
    if (!contains(block.certificates, der)) block.certificates.push_back({0, der});
  }
}

result<pr::signature> make_signature(
    const node_identity& id, const pr::node_id& as,
    const std::function<pr::bytes(const pr::signer_identity&)>& make_input) {
  auto identity = id.cert().signer_identity_for(as);
  if (!identity) return identity.error();
  const pr::bytes input = make_input(*identity);
  auto value = id.sign(input);
  if (!value) return value.error();
  return pr::signature{id.algorithm(), std::move(*identity), std::move(*value)};
}

result<void> sign_message(pr::message& m, const node_identity& id, const pr::node_id& as) {
  auto sig = make_signature(id, as, [&](const pr::signer_identity& identity) {
    return pr::message_signature_input(m.header.overlay, m.header.transaction_id, m.contents,
                                       identity);
  });
  if (!sig) return sig.error();
  add_certificates(m.security, id);
  m.security.signature = std::move(*sig);
  return {};
}

result<void> sign_message(pr::message& m, const node_identity& id) {
  return sign_message(m, id, id.default_node_id());
}

result<void> sign_stored_data(pr::stored_data& d, const pr::resource_id& resource,
                              std::uint32_t kind, const node_identity& id, const pr::node_id& as,
                              trust_store* note_in) {
  pr::bytes input;
  auto sig = make_signature(id, as, [&](const pr::signer_identity& identity) {
    input = pr::data_signature_input(resource, kind, d.storage_time, d.value, identity);
    return input;
  });
  if (!sig) return sig.error();
  if (note_in) note_in->note_own_signature(id.cert(), sig->algorithm, input, sig->value);
  d.signature = std::move(*sig);
  return {};
}

result<void> sign_stored_data(pr::stored_data& d, const pr::resource_id& resource,
                              std::uint32_t kind, const node_identity& id) {
  return sign_stored_data(d, resource, kind, id, id.default_node_id());
}

result<verified_signer> verify_signature(const pr::signature& sig, pr::byte_view input,
                                         std::span<const pr::generic_certificate> certificates,
                                         trust_store& trust, time_point now,
                                         const certificate_lookup& lookup) {
  return verify_signature_impl(sig, input, certificates, trust, now, lookup, value_check::verify);
}

result<verified_signer> own_signer(const node_identity& id, const pr::node_id& as,
                                   std::span<const pr::generic_certificate> certificates,
                                   trust_store& trust, time_point now) {
  if (!id.cert().has_node_id(as)) return make_error_code(crypto_errc::node_id_not_in_certificate);
  try {
    if (auto chain = trust.check(id.cert(), certificates, now); !chain) return chain.error();
  } catch (const std::exception&) {
    return make_error_code(crypto_errc::invalid_certificate_chain);
  }
  return verified_signer{id.cert(), as};
}

result<verified_signer> prepare_own_message(pr::message& m, const node_identity& id,
                                            const pr::node_id& as, trust_store& trust,
                                            time_point now) {
  add_certificates(m.security, id);
  return own_signer(id, as, m.security.certificates, trust, now);
}
result<verified_signer> verify_message(const pr::message& m, trust_store& trust, time_point now,
                                       const certificate_lookup& lookup) {
  const pr::signature& sig = m.security.signature;
  const pr::bytes input = pr::message_signature_input(m.header.overlay, m.header.transaction_id,
                                                      m.contents, sig.identity);
  return verify_signature(sig, input, m.security.certificates, trust, now, lookup);
}

result<verified_signer> verify_stored_data(const pr::stored_data& d,
                                           const pr::resource_id& resource, std::uint32_t kind,
                                           std::span<const pr::generic_certificate> certificates,
                                           trust_store& trust, time_point now,
                                           const certificate_lookup& lookup,
                                           bool from_this_process) {
  const pr::signature& sig = d.signature;
  const pr::bytes input =
      pr::data_signature_input(resource, kind, d.storage_time, d.value, sig.identity);
  return verify_signature_impl(sig, input, certificates, trust, now, lookup,
                               from_this_process ? value_check::own_if_noted : value_check::verify);
}

result<verified_signer> stored_data_signer(const pr::stored_data& d,
                                           std::span<const pr::generic_certificate> certificates,
                                           trust_store& trust, time_point now,
                                           const certificate_lookup& lookup) {
  return verify_signature_impl(d.signature, {}, certificates, trust, now, lookup,
                               value_check::deferred);
}

signature_counts signature_totals() noexcept {
  return {detail::signatures_made.load(std::memory_order_relaxed),
          detail::signatures_verified.load(std::memory_order_relaxed)};
}

}  // namespace p2psip::crypto
