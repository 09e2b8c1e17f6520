#include "p2psip/crypto/certificate.hpp"

#include <botan/ed25519.h>
#include <botan/pkix_types.h>
#include <botan/pubkey.h>
#include <botan/x509cert.h>

#include <algorithm>
#include <mutex>

#include "botan_glue.hpp"
#include "ed25519.hpp"
#include "signature_counters.hpp"

namespace p2psip::crypto {

namespace pr = p2psip::protocol;

std::string_view key_type_name(key_type k) noexcept {
  switch (k) {
    case key_type::rsa: return "RSA";
    case key_type::ecdsa_p256: return "ECDSA-P256";
    case key_type::ecdsa_p384: return "ECDSA-P384";
    case key_type::ecdsa_p521: return "ECDSA-P521";
    case key_type::ed25519: return "Ed25519";
    case key_type::unknown: break;
  }
  return "unknown";
}

namespace {

constexpr std::string_view reload_scheme = "reload://";

char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

bool starts_with_ci(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool all_hex(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

}  // namespace

result<pr::node_id> parse_reload_uri(std::string_view uri, const overlay_params& overlay) {
  if (!starts_with_ci(uri, reload_scheme)) return make_error_code(crypto_errc::bad_reload_uri);
  std::string_view rest = uri.substr(reload_scheme.size());
  const auto at = rest.find('@');
  if (at == std::string_view::npos) return make_error_code(crypto_errc::bad_reload_uri);
  const std::string_view destination = rest.substr(0, at);
  std::string_view host = rest.substr(at + 1);
  // RELOAD-URI = "reload://" destination "@" overlay "/" [specifier]. A specifier addresses a
  // stored value, not a peer; danpascu/reload leaves out the "/".
  if (const auto slash = host.find('/'); slash != std::string_view::npos) {
    if (slash + 1 != host.size()) return make_error_code(crypto_errc::bad_reload_uri);
    host = host.substr(0, slash);
  }
  if (host.empty()) return make_error_code(crypto_errc::bad_reload_uri);
  if (!iequals(host, overlay.name)) return make_error_code(crypto_errc::wrong_overlay);
  if (!all_hex(destination)) return make_error_code(crypto_errc::bad_reload_uri);

  pr::bytes raw;
  if (!pr::from_hex(destination, raw)) return make_error_code(crypto_errc::bad_reload_uri);
  const std::size_t len = overlay.node_id_length;
  pr::byte_view id;
  if (raw.size() == len + 2 && raw[0] == 0x01 && std::size_t{raw[1]} == len) {
    id = pr::byte_view(raw).subspan(2);  // a Destination: type node (1), length, id
  } else if (raw.size() == len) {
    id = raw;  // the bare Node-ID
  } else {
    return make_error_code(crypto_errc::bad_reload_uri);
  }
  auto node = pr::node_id::from_bytes(id);
  if (!node || node->is_zero() || node->is_wildcard()) {
    return make_error_code(crypto_errc::bad_reload_uri);
  }
  return *node;
}

std::string make_reload_uri(const pr::node_id& id, std::string_view overlay) {
  const pr::bytes prefix{0x01, static_cast<std::uint8_t>(id.size())};
  return std::string(reload_scheme) + pr::to_hex(prefix) + id.hex() + "@" + std::string(overlay) +
         "/";
}

struct certificate::impl {
  pr::bytes der;
  detail::sha256_digest fingerprint{};
  key_type type = key_type::unknown;
  // The raw Ed25519 public key, taken once from Botan's parse, for libsodium's verification.
  std::optional<detail::ed25519_public_key> ed25519;
  std::vector<pr::node_id> node_ids;
  std::string user;
  time_point not_before;
  time_point not_after;
  // parse_compact: Botan's certificate is not kept (and for Ed25519 neither is its key), and no
  // verifier is kept.
  bool compact = false;
  // Botan's objects. A full parse sets both before the impl is shared. A compact one keeps the
  // key of ECDSA and RSA from the start (every verification needs it) and makes the rest on first
  // use, once each: the certificate again from the DER, an Ed25519 key from its raw bytes.
  mutable std::once_flag cert_once;
  mutable std::once_flag key_once;
  mutable std::unique_ptr<Botan::X509_Certificate> cert;
  mutable std::unique_ptr<Botan::Public_Key> key;
  // Building a Botan verifier costs about a fifth of an ECDSA verification (its precomputed
  // table), so a full certificate keeps one; it is stateful, hence the mutex.
  mutable std::mutex verifier_mutex;
  mutable std::unique_ptr<Botan::PK_Verifier> verifier;
  mutable std::string verifier_padding;
};

result<certificate> certificate::parse(pr::byte_view der, const overlay_params& overlay) {
  return parse_as(der, overlay, false);
}

result<certificate> certificate::parse_compact(pr::byte_view der, const overlay_params& overlay) {
  return parse_as(der, overlay, true);
}

result<certificate> certificate::from_parsed(pr::byte_view der,
                                             const Botan::X509_Certificate& parsed,
                                             const overlay_params& overlay, bool compact) {
  std::unique_ptr<Botan::X509_Certificate> cert;
  try {
    cert = std::make_unique<Botan::X509_Certificate>(parsed);
  } catch (const std::exception&) {
    return make_error_code(crypto_errc::malformed_certificate);
  }
  return from_botan(der, std::move(cert), overlay, compact);
}

result<certificate> certificate::parse_as(pr::byte_view der, const overlay_params& overlay,
                                          bool compact) {
  std::unique_ptr<Botan::X509_Certificate> cert;
  try {
    cert = std::make_unique<Botan::X509_Certificate>(der.data(), der.size());
  } catch (const std::exception&) {
    return make_error_code(crypto_errc::malformed_certificate);
  }
  return from_botan(der, std::move(cert), overlay, compact);
}

result<certificate> certificate::from_botan(pr::byte_view der,
                                            std::unique_ptr<Botan::X509_Certificate> cert,
                                            const overlay_params& overlay, bool compact) {
  auto p = std::make_shared<impl>();
  p->compact = compact;
  try {
    p->der.assign(der.begin(), der.end());
    p->der.shrink_to_fit();
    std::unique_ptr<Botan::Public_Key> key = cert->load_subject_public_key();
    p->type = detail::classify(*key);
    if (p->type == key_type::ed25519) {
      const auto* ed = dynamic_cast<const Botan::Ed25519_PublicKey*>(key.get());
      if (ed == nullptr || ed->get_public_key().size() != detail::ed25519_public_key_size) {
        return make_error_code(crypto_errc::malformed_certificate);
      }
      p->ed25519.emplace();
      std::copy(ed->get_public_key().begin(), ed->get_public_key().end(), p->ed25519->begin());
    }
    p->not_before = detail::to_time_point(cert->not_before());
    p->not_after = detail::to_time_point(cert->not_after());
    p->fingerprint = detail::sha256(p->der);

    const Botan::AlternativeName& san = cert->subject_alt_name();
    bool other_overlay = false;
    for (const std::string& uri : san.get_attribute("URI")) {
      if (!starts_with_ci(uri, reload_scheme)) continue;  // not a Node-ID
      auto id = parse_reload_uri(uri, overlay);
      if (!id) {
        if (id.error() == crypto_errc::wrong_overlay) {
          other_overlay = true;
          continue;
        }
        return id.error();
      }
      if (std::find(p->node_ids.begin(), p->node_ids.end(), *id) == p->node_ids.end()) {
        p->node_ids.push_back(*id);
      }
    }
    if (p->node_ids.empty()) {
      return make_error_code(other_overlay ? crypto_errc::wrong_overlay : crypto_errc::no_node_id);
    }
    const auto users = san.get_attribute("RFC822");
    if (users.size() > 1) return make_error_code(crypto_errc::multiple_user_names);
    if (!users.empty()) p->user = users.front();
    p->node_ids.shrink_to_fit();
    p->user.shrink_to_fit();
    if (!compact) {
      p->cert = std::move(cert);
      p->key = std::move(key);
    } else if (p->type != key_type::ed25519) {
      p->key = std::move(key);  // what every verification needs; libsodium needs no object
    }
  } catch (const std::exception&) {
    return make_error_code(crypto_errc::malformed_certificate);
  }
  return certificate(std::move(p));
}

bool certificate::compact() const noexcept {
  return impl_->compact;
}

const std::vector<pr::node_id>& certificate::node_ids() const noexcept {
  return impl_->node_ids;
}
bool certificate::has_node_id(const pr::node_id& id) const noexcept {
  return std::find(impl_->node_ids.begin(), impl_->node_ids.end(), id) != impl_->node_ids.end();
}
const std::string& certificate::user() const noexcept {
  return impl_->user;
}
time_point certificate::not_before() const noexcept {
  return impl_->not_before;
}
time_point certificate::not_after() const noexcept {
  return impl_->not_after;
}
bool certificate::valid_at(time_point now) const noexcept {
  return impl_->not_before <= now && now <= impl_->not_after;
}
key_type certificate::key() const noexcept {
  return impl_->type;
}
const pr::bytes& certificate::der() const noexcept {
  return impl_->der;
}
const std::array<std::uint8_t, 32>& certificate::sha256() const noexcept {
  return impl_->fingerprint;
}
pr::generic_certificate certificate::generic() const {
  return pr::generic_certificate{0, impl_->der};
}
const Botan::X509_Certificate& certificate::botan_certificate() const noexcept {
  if (impl_->compact) {
    std::call_once(impl_->cert_once, [p = impl_.get()] {
      p->cert = std::make_unique<Botan::X509_Certificate>(p->der);
    });
  }
  return *impl_->cert;
}
const Botan::Public_Key& certificate::public_key() const noexcept {
  if (impl_->compact && impl_->ed25519) {
    std::call_once(impl_->key_once, [p = impl_.get()] {
      p->key = std::make_unique<Botan::Ed25519_PublicKey>(
          std::vector<std::uint8_t>(p->ed25519->begin(), p->ed25519->end()));
    });
  }
  return *impl_->key;
}

result<void> certificate::verify(pr::signature_and_hash_algorithm alg, pr::byte_view data,
                                 pr::byte_view signature) const {
  const auto scheme = detail::verification_scheme(alg, impl_->type);
  if (!scheme) return make_error_code(crypto_errc::unsupported_algorithm);
  detail::count_signature_verified();
  if (scheme->engine == detail::signature_engine::sodium) {
    if (!impl_->ed25519) return make_error_code(crypto_errc::unsupported_algorithm);
    if (!detail::ed25519_verify(*impl_->ed25519, data, signature)) {
      return make_error_code(crypto_errc::bad_signature);
    }
    return {};
  }
  const auto format = scheme->der_sequence ? Botan::DER_SEQUENCE : Botan::IEEE_1363;
  bool ok = false;
  if (impl_->compact) {
    // A kept verifier's precomputed tables would outweigh the rest of a compact certificate.
    try {
      Botan::PK_Verifier verifier(public_key(), scheme->padding, format);
      ok = verifier.verify_message(data.data(), data.size(), signature.data(), signature.size());
    } catch (const std::exception&) {
      ok = false;
    }
    if (!ok) return make_error_code(crypto_errc::bad_signature);
    return {};
  }
  std::unique_lock lock(impl_->verifier_mutex, std::try_to_lock);
  try {
    if (lock.owns_lock()) {
      if (!impl_->verifier || impl_->verifier_padding != scheme->padding) {
        impl_->verifier.reset();  // a failed construction must not leave the old one behind
        impl_->verifier =
            std::make_unique<Botan::PK_Verifier>(*impl_->key, scheme->padding, format);
        impl_->verifier_padding = scheme->padding;
      }
      ok = impl_->verifier->verify_message(data.data(), data.size(), signature.data(),
                                           signature.size());
      // Botan may refuse a malformed value before it finalizes the hash of `data`; the verifier
      // would carry that data into the next check. Refusals are rare: start afresh.
      if (!ok) impl_->verifier.reset();
    } else {
      Botan::PK_Verifier verifier(*impl_->key, scheme->padding, format);
      ok = verifier.verify_message(data.data(), data.size(), signature.data(), signature.size());
    }
  } catch (const std::exception&) {
    if (lock.owns_lock()) impl_->verifier.reset();  // as above
    ok = false;
  }
  if (!ok) return make_error_code(crypto_errc::bad_signature);
  return {};
}

result<pr::signer_identity> certificate::signer_identity_for(const pr::node_id& node) const {
  if (!has_node_id(node)) return make_error_code(crypto_errc::node_id_not_in_certificate);
  pr::signer_identity id;
  id.hash.hash_alg = pr::hash_algorithm::sha256;
  if (impl_->node_ids.size() == 1) {
    id.type = static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash);
    id.hash.hash.assign(impl_->fingerprint.begin(), impl_->fingerprint.end());
  } else {
    id.type = static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash_node_id);
    try {
      id.hash.hash = detail::hash("SHA-256", node.view(), impl_->der);
    } catch (const std::exception&) {
      return make_error_code(crypto_errc::signing_failed);
    }
  }
  return id;
}

result<pr::node_id> certificate::match(const pr::signer_identity& id) const {
  const auto name = detail::hash_name(id.hash.hash_alg);
  if (!name) return make_error_code(crypto_errc::unsupported_signer_identity);
  try {
    if (id.type == static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash)) {
      const bool same = id.hash.hash_alg == pr::hash_algorithm::sha256
                            ? std::equal(id.hash.hash.begin(), id.hash.hash.end(),
                                         impl_->fingerprint.begin(), impl_->fingerprint.end())
                            : id.hash.hash == detail::hash(*name, {}, impl_->der);
      if (!same) return make_error_code(crypto_errc::signer_not_found);
      // RFC 6940 section 6.3.4: cert_hash is for a certificate with exactly one Node-ID, so it
      // names that Node-ID; with several it would not say which one signs.
      if (impl_->node_ids.size() != 1) {
        return make_error_code(crypto_errc::wrong_signer_identity_type);
      }
      return impl_->node_ids.front();
    }
    if (id.type == static_cast<std::uint8_t>(pr::signer_identity_type::cert_hash_node_id)) {
      // Accepted for a single-Node-ID certificate too: the hash still binds the Node-ID.
      for (const pr::node_id& node : impl_->node_ids) {
        if (detail::hash(*name, node.view(), impl_->der) == id.hash.hash) return node;
      }
      return make_error_code(crypto_errc::signer_not_found);
    }
  } catch (const std::exception&) {
    return make_error_code(crypto_errc::unsupported_signer_identity);
  }
  return make_error_code(crypto_errc::unsupported_signer_identity);
}

}  // namespace p2psip::crypto
