#include "p2psip/crypto/trust_store.hpp"

#include <botan/certstor.h>
#include <botan/hash.h>
#include <botan/x509cert.h>
#include <botan/x509path.h>

#include <algorithm>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <optional>

#include "botan_glue.hpp"

namespace p2psip::crypto {

namespace pr = p2psip::protocol;

namespace {

enum class chain_state : std::uint8_t { unknown, trusted, refused };

struct cache_entry {
  std::optional<certificate> cert;
  std::error_code parse_error;
  chain_state state = chain_state::unknown;
  time_point valid_from{};   ///< trusted: every certificate of the chain is valid in
  time_point valid_until{};  ///< [valid_from, valid_until]
  std::error_code refusal;   ///< refused: why
  std::list<detail::sha256_digest>::iterator lru;
};

/// What one validation found: a cacheable verdict, or a time failure we could not cache.
struct chain_outcome {
  chain_state state = chain_state::unknown;  ///< unknown: do not cache, answer `error`
  time_point valid_from{};
  time_point valid_until{};
  std::error_code error;
};

crypto_errc map_status(Botan::Certificate_Status_Code code) noexcept {
  using C = Botan::Certificate_Status_Code;
  switch (code) {
    case C::CERT_HAS_EXPIRED: return crypto_errc::certificate_expired;
    case C::CERT_NOT_YET_VALID: return crypto_errc::certificate_not_yet_valid;
    case C::CERT_ISSUER_NOT_FOUND:
    case C::CANNOT_ESTABLISH_TRUST:
    case C::CHAIN_LACKS_TRUST_ROOT: return crypto_errc::untrusted_certificate;
    default: return crypto_errc::invalid_certificate_chain;
  }
}

bool is_time_failure(Botan::Certificate_Status_Code code) noexcept {
  return code == Botan::Certificate_Status_Code::CERT_HAS_EXPIRED ||
         code == Botan::Certificate_Status_Code::CERT_NOT_YET_VALID;
}

/// The window where every certificate of `path` is valid; nullopt if empty or if they never
/// overlap.
std::optional<std::pair<time_point, time_point>> window_of(
    const std::vector<std::shared_ptr<const Botan::X509_Certificate>>& path) {
  if (path.empty()) return std::nullopt;
  time_point from = time_point::min();
  time_point until = time_point::max();
  for (const auto& c : path) {
    from = std::max(from, detail::to_time_point(c->not_before()));
    until = std::min(until, detail::to_time_point(c->not_after()));
  }
  if (from > until) return std::nullopt;
  return std::pair{from, until};
}

result<void> judge(time_point from, time_point until, time_point now) {
  if (now < from) return make_error_code(crypto_errc::certificate_not_yet_valid);
  if (now > until) return make_error_code(crypto_errc::certificate_expired);
  return {};
}

}  // namespace

struct trust_store::impl {
  overlay_params overlay;
  std::size_t capacity;

  mutable std::mutex mutex;
  // Roots are replaced, never changed in place, so a validation can run on a snapshot outside
  // the lock.
  std::shared_ptr<const Botan::Certificate_Store_In_Memory> roots =
      std::make_shared<Botan::Certificate_Store_In_Memory>();
  std::vector<Botan::X509_Certificate> root_list;
  std::optional<self_signed_digest> self_signed;
  std::uint64_t generation = 0;  // bumped when roots or modes change: in-flight results are stale
  // An ordered map: the keys come from certificates an attacker may choose, and a tree has no
  // bucket to flood.
  std::map<detail::sha256_digest, cache_entry> cache;
  std::list<detail::sha256_digest> lru;  // front = most recently used
  statistics stats;
  // Signatures this process made, by digest (note_own_signature); oldest first.
  std::deque<detail::sha256_digest> own;

  cache_entry* find(const detail::sha256_digest& key) {
    auto it = cache.find(key);
    if (it == cache.end()) return nullptr;
    lru.splice(lru.begin(), lru, it->second.lru);
    return &it->second;
  }

  cache_entry& insert(const detail::sha256_digest& key) {
    if (auto* e = find(key)) return *e;
    while (!lru.empty() && cache.size() >= std::max<std::size_t>(capacity, 1)) {
      cache.erase(lru.back());
      lru.pop_back();
    }
    lru.push_front(key);
    auto& e = cache[key];
    e.lru = lru.begin();
    return e;
  }

  void clear_locked() {
    cache.clear();
    lru.clear();
    ++generation;
  }

  // `c` is cert's Botan certificate: kept by a full certificate, parsed for the check by
  // check() for a compact one (the cache's), so that the cache never keeps it.
  chain_outcome validate_self_signed(const certificate& cert, const Botan::X509_Certificate& c,
                                     self_signed_digest digest);
  chain_outcome validate_path(const certificate& cert, const Botan::X509_Certificate& c,
                              std::span<const pr::generic_certificate> extra, time_point now,
                              const Botan::Certificate_Store& store);
};

chain_outcome trust_store::impl::validate_self_signed(const certificate& cert,
                                                      const Botan::X509_Certificate& c,
                                                      self_signed_digest digest) {
  chain_outcome out;
  out.state = chain_state::refused;
  if (c.verify_signature(*c.load_subject_public_key()) !=
      Botan::Certificate_Status_Code::VERIFIED) {
    out.error = make_error_code(crypto_errc::invalid_certificate_chain);
    return out;
  }
  const std::string name = digest == self_signed_digest::sha1 ? "SHA-1" : "SHA-256";
  const std::vector<std::uint8_t>& spki = c.subject_public_key_info();
  const auto& ids = cert.node_ids();
  const std::size_t len = overlay.node_id_length;
  auto high_order = [len](const pr::bytes& d) {
    return pr::byte_view(d).first(std::min(len, d.size()));
  };
  bool ok = true;
  if (ids.size() == 1) {
    const pr::bytes d = detail::hash(name, {}, spki);
    ok = d.size() >= len && std::ranges::equal(ids.front().view(), high_order(d));
  } else {
    // digest(uint32 index || SPKI) for index 1..n. Botan does not keep the SAN's order, so each
    // Node-ID must match a distinct index.
    std::vector<bool> used(ids.size(), false);
    for (const pr::node_id& id : ids) {
      bool found = false;
      for (std::uint32_t i = 1; i <= ids.size() && !found; ++i) {
        if (used[i - 1]) continue;
        const pr::bytes index{static_cast<std::uint8_t>(i >> 24),
                              static_cast<std::uint8_t>(i >> 16), static_cast<std::uint8_t>(i >> 8),
                              static_cast<std::uint8_t>(i)};
        const pr::bytes d = detail::hash(name, index, spki);
        if (d.size() >= len && std::ranges::equal(id.view(), high_order(d))) {
          used[i - 1] = true;
          found = true;
        }
      }
      ok = ok && found;
    }
  }
  if (!ok) {
    out.error = make_error_code(crypto_errc::self_signed_node_id_mismatch);
    return out;
  }
  out.state = chain_state::trusted;
  out.valid_from = cert.not_before();
  out.valid_until = cert.not_after();
  return out;
}

chain_outcome trust_store::impl::validate_path(const certificate& cert,
                                               const Botan::X509_Certificate& c,
                                               std::span<const pr::generic_certificate> extra,
                                               time_point now,
                                               const Botan::Certificate_Store& store) {
  std::vector<Botan::X509_Certificate> chain{c};
  for (const auto& g : extra) {
    if (g.type != 0 || chain.size() > 16) continue;
    try {
      Botan::X509_Certificate in_bucket(g.certificate);
      // Node certificates cannot issue.
      if (in_bucket.is_CA_cert()) chain.push_back(std::move(in_bucket));
    } catch (const std::exception&) {
      // A broken certificate in the bucket is not the signer's; ignore it.
    }
  }
  // No revocation data (RFC 6940 has none besides <bad-node>); RSA-2048 is the weakest key.
  const Botan::Path_Validation_Restrictions restrictions(false, 110);
  auto run = [&](time_point at) {
    {
      std::lock_guard lock(mutex);
      ++stats.path_validations;
    }
    return Botan::x509_path_validate(chain, restrictions, store, "", Botan::Usage_Type::UNSPECIFIED,
                                     at);
  };

  chain_outcome out;
  const Botan::Path_Validation_Result r = run(now);
  if (r.successful_validation()) {
    const auto w = window_of(r.cert_path());
    out.state = chain_state::trusted;
    out.valid_from = w ? w->first : cert.not_before();
    out.valid_until = w ? w->second : cert.not_after();
    return out;
  }
  if (!is_time_failure(r.result())) {
    out.state = chain_state::refused;
    out.error = make_error_code(map_status(r.result()));
    return out;
  }
  // Refused for time only: validate once more inside the chain's window so that the verdict
  // (and with it every later "expired") can be cached.
  out.error = make_error_code(map_status(r.result()));
  const auto w = window_of(r.cert_path());
  if (!w) return out;
  const Botan::Path_Validation_Result again = run(w->first);
  if (again.successful_validation()) {
    out.state = chain_state::trusted;
    out.valid_from = w->first;
    out.valid_until = w->second;
  } else if (!is_time_failure(again.result())) {
    out.state = chain_state::refused;
    out.error = make_error_code(map_status(again.result()));
  }
  return out;
}

trust_store::trust_store(overlay_params overlay, std::size_t cache_capacity)
    : impl_(std::make_unique<impl>()) {
  impl_->overlay = std::move(overlay);
  impl_->capacity = cache_capacity;
}

trust_store::~trust_store() = default;

const overlay_params& trust_store::overlay() const noexcept {
  return impl_->overlay;
}

result<void> trust_store::add_root(pr::byte_view der) {
  try {
    Botan::X509_Certificate c(der.data(), der.size());
    if (!c.is_CA_cert()) return make_error_code(crypto_errc::not_a_ca);
    std::lock_guard lock(impl_->mutex);
    impl_->root_list.push_back(c);
    auto store = std::make_shared<Botan::Certificate_Store_In_Memory>();
    for (const auto& r : impl_->root_list) store->add_certificate(r);
    impl_->roots = std::move(store);
    impl_->clear_locked();
  } catch (const std::exception&) {
    return make_error_code(crypto_errc::malformed_certificate);
  }
  return {};
}

result<void> trust_store::add_roots_pem(std::string_view pem) {
  const auto blocks = detail::pem_blocks(pem);
  if (!blocks) return make_error_code(crypto_errc::bad_pem);
  bool any = false;
  for (const auto& b : *blocks) {
    if (b.label != "CERTIFICATE") continue;
    if (auto r = add_root(b.der); !r) return r.error();
    any = true;
  }
  if (!any) return make_error_code(crypto_errc::no_certificate_in_file);
  return {};
}

std::size_t trust_store::root_count() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->root_list.size();
}

void trust_store::permit_self_signed(self_signed_digest digest) {
  std::lock_guard lock(impl_->mutex);
  impl_->self_signed = digest;
  impl_->clear_locked();
}

result<certificate> trust_store::parse(pr::byte_view der) {
  const detail::sha256_digest key = detail::sha256(der);
  {
    std::lock_guard lock(impl_->mutex);
    if (cache_entry* e = impl_->find(key)) {
      ++impl_->stats.parse_cache_hits;
      if (e->cert) return *e->cert;
      return e->parse_error;
    }
  }
  // Compact: the cache holds a certificate for every node that signs (at a peer, every attached
  // client), and Botan's parsed form is most of a full one's size.
  auto parsed = certificate::parse_compact(der, impl_->overlay);
  std::lock_guard lock(impl_->mutex);
  cache_entry& e = impl_->insert(key);
  if (parsed) {
    e.cert = *parsed;
  } else {
    e.parse_error = parsed.error();
  }
  return parsed;
}

result<void> trust_store::check(const certificate& cert,
                                std::span<const pr::generic_certificate> extra, time_point now) {
  return check_parsed(cert, nullptr, extra, now);
}

result<void> trust_store::check(const certificate& cert, const Botan::X509_Certificate& parsed,
                                std::span<const pr::generic_certificate> extra, time_point now) {
  return check_parsed(cert, &parsed, extra, now);
}

result<void> trust_store::check_parsed(const certificate& cert,
                                       const Botan::X509_Certificate* given,
                                       std::span<const pr::generic_certificate> extra,
                                       time_point now) {
  std::shared_ptr<const Botan::Certificate_Store_In_Memory> roots;
  std::optional<self_signed_digest> self_signed;
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(impl_->mutex);
    if (cache_entry* e = impl_->find(cert.sha256()); e && e->state != chain_state::unknown) {
      ++impl_->stats.chain_cache_hits;
      if (e->state == chain_state::refused) return e->refusal;
      return judge(e->valid_from, e->valid_until, now);
    }
    roots = impl_->roots;
    self_signed = impl_->self_signed;
    generation = impl_->generation;
  }

  chain_outcome out;
  try {
    // Parsed for this check only when the certificate does not keep Botan's form: once per
    // certificate, since the verdict is cached.
    std::optional<Botan::X509_Certificate> parsed;
    const Botan::X509_Certificate& c = given != nullptr ? *given
                                       : cert.compact() ? parsed.emplace(cert.der())
                                                        : cert.botan_certificate();
    if (self_signed && c.is_self_signed()) {
      out = impl_->validate_self_signed(cert, c, *self_signed);
    } else {
      out = impl_->validate_path(cert, c, extra, now, *roots);
    }
  } catch (const std::exception&) {
    out.state = chain_state::refused;
    out.error = make_error_code(crypto_errc::invalid_certificate_chain);
  }
  if (out.state == chain_state::unknown) return out.error;

  std::lock_guard lock(impl_->mutex);
  if (generation == impl_->generation) {
    cache_entry& e = impl_->insert(cert.sha256());
    if (!e.cert) e.cert = cert;
    e.state = out.state;
    e.valid_from = out.valid_from;
    e.valid_until = out.valid_until;
    e.refusal = out.error;
  }
  if (out.state == chain_state::refused) return out.error;
  return judge(out.valid_from, out.valid_until, now);
}

trust_store::statistics trust_store::stats() const {
  std::lock_guard lock(impl_->mutex);
  statistics s = impl_->stats;
  s.cached_certificates = impl_->cache.size();
  return s;
}

namespace {

/// SHA-256(certificate's SHA-256 || algorithm || u32 length || input || signature): names one
/// signature value over one input by one certificate's key.
detail::sha256_digest own_signature_digest(const certificate& cert,
                                           pr::signature_and_hash_algorithm alg,
                                           pr::byte_view input, pr::byte_view signature) {
  auto h = Botan::HashFunction::create_or_throw("SHA-256");
  h->update(cert.sha256().data(), cert.sha256().size());
  const std::uint8_t a[2] = {alg.hash, alg.signature};
  h->update(a, sizeof a);
  const auto n = static_cast<std::uint32_t>(input.size());
  const std::uint8_t len[4] = {static_cast<std::uint8_t>(n >> 24),
                               static_cast<std::uint8_t>(n >> 16),
                               static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  h->update(len, sizeof len);
  h->update(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  h->update(reinterpret_cast<const std::uint8_t*>(signature.data()), signature.size());
  detail::sha256_digest d{};
  h->final(d.data());
  return d;
}

}  // namespace

void trust_store::note_own_signature(const certificate& cert, pr::signature_and_hash_algorithm alg,
                                     pr::byte_view input, pr::byte_view signature) {
  const auto d = own_signature_digest(cert, alg, input, signature);
  std::lock_guard lock(impl_->mutex);
  while (impl_->own.size() >= own_signature_capacity) impl_->own.pop_front();
  impl_->own.push_back(d);
}

bool trust_store::take_own_signature(const certificate& cert, pr::signature_and_hash_algorithm alg,
                                     pr::byte_view input, pr::byte_view signature) {
  const auto d = own_signature_digest(cert, alg, input, signature);
  std::lock_guard lock(impl_->mutex);
  const auto it = std::find(impl_->own.begin(), impl_->own.end(), d);
  if (it == impl_->own.end()) return false;
  impl_->own.erase(it);
  ++impl_->stats.own_signatures_taken;
  return true;
}

void trust_store::clear_cache() {
  std::lock_guard lock(impl_->mutex);
  impl_->clear_locked();
}

}  // namespace p2psip::crypto
