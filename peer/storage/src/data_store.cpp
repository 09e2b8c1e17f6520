// The peer's storage engine (RFC 6940 section 7.4); see data_store.hpp for the semantics.
#include "p2psip/peer/data_store.hpp"

#include <botan/hash.h>

#include <algorithm>
#include <limits>
#include <string>
#include <tuple>
#include <variant>

#include "p2psip/config/overlay_config.hpp"
#include "p2psip/crypto/errors.hpp"
#include "p2psip/protocol/reader.hpp"
#include "p2psip/protocol/writer.hpp"
#include "stored_data_codec.hpp"

namespace p2psip::peer {

namespace pr = p2psip::protocol;

namespace {

constexpr std::size_t max_unknown_kinds_listed = 63;  // KindId unknown_kinds<0..2^8-1>

std::int64_t to_ms(wall_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

pr::message_body error_body(pr::reload_errc code, const std::string& text) {
  return pr::error_response{static_cast<std::uint16_t>(code), pr::to_bytes(text)};
}

/// "kind generic", "kind sip-registration", "kind 74565": named as every tool names kinds.
std::string kind_text(std::uint32_t kind) {
  return "kind " + config::kind_display_name(kind);
}

pr::bytes index_key(std::uint32_t index) {
  return {static_cast<std::uint8_t>(index >> 24), static_cast<std::uint8_t>(index >> 16),
          static_cast<std::uint8_t>(index >> 8), static_cast<std::uint8_t>(index)};
}

std::uint32_t key_index(const pr::bytes& key) noexcept {
  if (key.size() != 4) return 0;
  return (std::uint32_t{key[0]} << 24) | (std::uint32_t{key[1]} << 16) |
         (std::uint32_t{key[2]} << 8) | std::uint32_t{key[3]};
}

/// Where a value lives in its kind's data model (see value_record::key).
pr::bytes value_key(const pr::stored_data_value& v) {
  if (const auto* a = std::get_if<pr::array_entry>(&v)) return index_key(a->index);
  if (const auto* d = std::get_if<pr::dictionary_entry>(&v)) return d->key;
  return {};
}

const pr::data_value& data_value_of(const pr::stored_data_value& v) noexcept {
  if (const auto* a = std::get_if<pr::array_entry>(&v)) return a->value;
  if (const auto* d = std::get_if<pr::dictionary_entry>(&v)) return d->value;
  return std::get<pr::data_value>(v);
}

std::optional<pr::bytes> encode_wire(const pr::stored_data& sd) {
  pr::bytes out;
  pr::writer w(out);
  pr::detail::encode_stored_data(w, sd);
  if (!w.ok()) return std::nullopt;
  return out;
}

std::optional<pr::stored_data> decode_wire(const pr::bytes& wire, pr::data_model model) {
  pr::reader r(wire);
  pr::stored_data sd = pr::detail::decode_stored_data(r, model);
  r.expect_done("stored_data");
  if (!r.ok()) return std::nullopt;
  return sd;
}

/// SignerIdentity as encoded: the key under which signer certificates are kept.
pr::bytes identity_key(const pr::signer_identity& id) {
  pr::bytes out;
  pr::writer w(out);
  pr::encode_signer_identity(w, id);
  return out;
}

bool model_matches(const pr::stored_data_specifier& spec, pr::data_model model) noexcept {
  switch (model) {
    case pr::data_model::single_value: return std::holds_alternative<std::monostate>(spec.model);
    case pr::data_model::array:
      return std::holds_alternative<std::vector<pr::array_range>>(spec.model);
    case pr::data_model::dictionary:
      return std::holds_alternative<std::vector<pr::bytes>>(spec.model);
  }
  return false;
}

crypto::access_policy policy_of(config::access_policy p) noexcept {
  switch (p) {
    case config::access_policy::user_match: return crypto::access_policy::user_match;
    case config::access_policy::node_match: return crypto::access_policy::node_match;
    case config::access_policy::user_node_match: return crypto::access_policy::user_node_match;
    case config::access_policy::node_multiple: return crypto::access_policy::node_multiple;
    case config::access_policy::p2psip_generic: return crypto::access_policy::node_key;
  }
  return crypto::access_policy::user_match;
}

/// MetaData of a value (RFC 6940 section 7.4.3.2): SHA-256 over the value with its uint32 length.
pr::meta_data meta_of(const pr::data_value& v) {
  pr::meta_data md;
  md.exists = v.exists;
  md.value_length = static_cast<std::uint32_t>(v.value.size());
  md.hash_algorithm = pr::hash_algorithm::sha256;
  const auto hash = Botan::HashFunction::create_or_throw("SHA-256");
  const std::uint32_t n = md.value_length;
  const std::uint8_t prefix[4] = {static_cast<std::uint8_t>(n >> 24),
                                  static_cast<std::uint8_t>(n >> 16),
                                  static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
  hash->update(prefix, sizeof prefix);
  hash->update(v.value.data(), v.value.size());
  const auto digest = hash->final();
  md.hash_value.assign(digest.begin(), digest.end());
  return md;
}

pr::stored_meta_data stored_meta_of(const pr::stored_data& sd) {
  pr::stored_meta_data m;
  m.storage_time = sd.storage_time;
  m.lifetime = sd.lifetime;
  if (const auto* a = std::get_if<pr::array_entry>(&sd.value)) {
    m.metadata = pr::array_entry_meta{a->index, meta_of(a->value)};
  } else if (const auto* d = std::get_if<pr::dictionary_entry>(&sd.value)) {
    m.metadata = pr::dictionary_entry_meta{d->key, meta_of(d->value)};
  } else {
    m.metadata = meta_of(std::get<pr::data_value>(sd.value));
  }
  return m;
}

bool same_ring(const pr::resource_id& r, const pr::node_id& n) noexcept {
  return r.value.size() == n.size();
}

/// A verification failure that says nothing about the stored bytes: the signer's certificate
/// is out of its validity period or has no chain to a root at this time (a clock not yet set,
/// a changed trust store). Such a value is withheld, not quarantined.
bool certificate_problem(const std::error_code& ec) noexcept {
  return ec == crypto::crypto_errc::certificate_expired ||
         ec == crypto::crypto_errc::certificate_not_yet_valid ||
         ec == crypto::crypto_errc::untrusted_certificate ||
         ec == crypto::crypto_errc::invalid_certificate_chain;
}

std::string location_text(const pr::resource_id& resource, std::uint32_t kind,
                          const pr::bytes& key) {
  std::string s = "resource " + resource.hex() + " " + kind_text(kind);
  if (!key.empty()) s += " key " + pr::to_hex(key);
  return s;
}

}  // namespace

// ---- kind rules ----

std::vector<kind_rules> kind_rules_of(const config::kind_table& table) {
  std::vector<kind_rules> out;
  out.reserve(table.size());
  for (const auto& [id, def] : table) {
    kind_rules k;
    k.kind = id;
    k.model = def.model;
    k.policy = crypto::registered_kind_policy(id).value_or(policy_of(def.policy));
    k.max_count = def.max_count;
    k.max_size = def.max_size;
    k.max_node_multiple = def.max_node_multiple.value_or(0);
    out.push_back(k);
  }
  return out;
}

std::vector<kind_rules> kind_rules_of(const config::overlay_config& config) {
  return kind_rules_of(config::make_kind_table(config));
}

// ---- construction and bookkeeping ----

std::int64_t data_store::slot::expires_ms() const noexcept {
  return received_ms + static_cast<std::int64_t>(data.lifetime) * 1000;
}

data_store::data_store(std::unique_ptr<storage_backend> backend, std::vector<kind_rules> kinds,
                       crypto::trust_store& trust)
    : backend_(std::move(backend)), trust_(trust) {
  for (const auto& k : kinds) kinds_[k.kind] = k;
  if (!backend_) backend_ = make_memory_backend();
  stored_state state = backend_->load();
  for (auto& rec : state.values) {
    const kind_rules* rules_of_kind = rules(rec.kind);
    std::optional<pr::stored_data> sd;
    if (rules_of_kind) sd = decode_wire(rec.stored_data, rules_of_kind->model);
    if (!sd || value_key(sd->value) != rec.key) {
      ++skipped_at_load_;
      continue;
    }
    slot s;
    s.wire = std::move(rec.stored_data);
    s.data = std::move(*sd);
    s.received_ms = rec.received_ms;
    s.signer_certificate = std::move(rec.signer_certificate);
    // Verified when first touched (vet), not here: a start should not wait for every signature.
    s.check = check_state::unchecked;
    unvetted_.emplace(rec.resource, rec.kind);
    insert_slot(rec.resource, rec.kind, rec.key, std::move(s));
  }
  for (const auto& g : state.generations) {
    auto r = resources_.find(g.resource);
    if (r == resources_.end()) continue;
    auto k = r->second.find(g.kind);
    if (k != r->second.end()) k->second.generation = g.generation;
  }
  // A value loaded without a counter (should not happen) still needs one >= 1.
  for (auto& [id, res] : resources_) {
    for (auto& [kind, ks] : res) ks.generation = std::max<std::uint64_t>(ks.generation, 1);
  }
}

data_store::~data_store() = default;

const kind_rules* data_store::rules(std::uint32_t kind) const noexcept {
  const auto it = kinds_.find(kind);
  return it == kinds_.end() ? nullptr : &it->second;
}

storage_counts data_store::counts() const noexcept {
  return counts_;
}

std::uint64_t data_store::generation(const pr::resource_id& resource, std::uint32_t kind) const {
  const kind_state* ks = find_kind(resource, kind);
  return ks ? ks->generation : 0;
}

const data_store::kind_state* data_store::find_kind(const pr::resource_id& resource,
                                                    std::uint32_t kind) const {
  const auto r = resources_.find(resource);
  if (r == resources_.end()) return nullptr;
  const auto k = r->second.find(kind);
  return k == r->second.end() ? nullptr : &k->second;
}

void data_store::insert_slot(const pr::resource_id& resource, std::uint32_t kind,
                             const pr::bytes& key, slot s) {
  erase_slot(resource, kind, key);
  auto [res, inserted] = resources_.try_emplace(resource);
  if (inserted) ++counts_.resources;
  kind_state& ks = res->second[kind];
  expiries_.emplace(s.expires_ms(), resource, kind, key);
  auto& cert = certificates_[identity_key(s.data.signature.identity)];
  if (cert.second++ == 0) cert.first = s.signer_certificate;
  ++counts_.values;
  counts_.bytes += s.wire.size();
  ks.values[key] = std::move(s);
}

void data_store::erase_slot(const pr::resource_id& resource, std::uint32_t kind,
                            const pr::bytes& key) {
  const auto r = resources_.find(resource);
  if (r == resources_.end()) return;
  const auto k = r->second.find(kind);
  if (k == r->second.end()) return;
  const auto v = k->second.values.find(key);
  if (v == k->second.values.end()) return;
  const slot& s = v->second;
  expiries_.erase(expiry_key{s.expires_ms(), resource, kind, key});
  const auto c = certificates_.find(identity_key(s.data.signature.identity));
  if (c != certificates_.end() && --c->second.second == 0) certificates_.erase(c);
  --counts_.values;
  counts_.bytes -= s.wire.size();
  k->second.values.erase(v);
  if (k->second.values.empty()) {
    r->second.erase(k);
    unvetted_.erase({resource, kind});
  }
  if (r->second.empty()) {
    resources_.erase(r);
    --counts_.resources;
  }
}

bool data_store::commit(const change_set& changes) {
  if (changes.empty()) return true;
  auto applied = backend_->apply(changes);
  if (!applied) {
    last_error_ = applied.error();
    return false;
  }
  return true;
}

std::optional<crypto::certificate> data_store::lookup_certificate(
    const pr::signer_identity& id) const {
  const auto it = certificates_.find(identity_key(id));
  if (it == certificates_.end()) return std::nullopt;
  auto cert = trust_.parse(it->second.first);
  if (!cert) return std::nullopt;
  return *cert;
}

void data_store::vet(const pr::resource_id& resource, std::uint32_t kind,
                     wall_clock::time_point now) {
  const auto pending = unvetted_.find({resource, kind});
  if (pending == unvetted_.end()) return;
  const auto r = resources_.find(resource);
  const auto k = r == resources_.end() ? resource_state::iterator{} : r->second.find(kind);
  if (r == resources_.end() || k == r->second.end()) {
    unvetted_.erase(pending);
    return;
  }
  const crypto::certificate_lookup lookup = [this](const pr::signer_identity& id) {
    return lookup_certificate(id);
  };
  change_set changes;
  bool withheld = false;
  for (auto& [key, s] : k->second.values) {
    if (s.check == check_state::verified) continue;
    const pr::generic_certificate cert{0, s.signer_certificate};
    ++counts_.signatures_verified;
    const auto signer = crypto::verify_stored_data(
        s.data, resource, kind, std::span<const pr::generic_certificate>(&cert, 1), trust_, now,
        lookup);
    if (signer) {
      s.check = check_state::verified;
      continue;
    }
    const std::string why = signer.error().message();
    if (certificate_problem(signer.error())) {
      s.check = check_state::withheld;
      withheld = true;
      ++counts_.withheld;
      warn(now, "stored value withheld from answers: " + location_text(resource, kind, key) + ": " +
                    why);
      continue;
    }
    changes.quarantine_values.push_back({{resource, kind, key}, why, to_ms(now)});
  }
  if (!withheld) unvetted_.erase(pending);
  if (changes.quarantine_values.empty()) return;
  if (quarantined_since_.size() < 1024) quarantined_since_.emplace_back(resource, kind);
  for (const auto& q : changes.quarantine_values) {
    warn(now, "stored value quarantined: " + location_text(resource, kind, q.where.key) + ": " +
                  q.reason);
    erase_slot(resource, kind, q.where.key);
    ++counts_.quarantined;
  }
  if (!find_kind(resource, kind)) changes.erase_generations.push_back({resource, kind, {}});
  // Out of memory whatever the backend says: if the move fails it is found again after a
  // restart (the failure is kept for the log).
  (void)commit(changes);
}

void data_store::warn(wall_clock::time_point now, const std::string& text) {
  if (!warn_) return;
  const std::int64_t now_ms = to_ms(now);
  constexpr std::int64_t interval_ms = 10'000;
  if (warned_at_ms_ != std::numeric_limits<std::int64_t>::min() &&
      now_ms - warned_at_ms_ < interval_ms && now_ms >= warned_at_ms_) {
    ++warnings_left_out_;
    return;
  }
  std::string line = text;
  if (warnings_left_out_ > 0) {
    line += " (and " + std::to_string(warnings_left_out_) + " such warnings left out before)";
  }
  warned_at_ms_ = now_ms;
  warnings_left_out_ = 0;
  warn_(line);
}

std::uint32_t data_store::remaining_lifetime(const slot& s, std::int64_t now_ms) const noexcept {
  const std::int64_t elapsed_ms = std::max<std::int64_t>(0, now_ms - s.received_ms);
  const std::int64_t elapsed_s = (elapsed_ms + 999) / 1000;  // round up: never extend a lifetime
  const std::int64_t left = static_cast<std::int64_t>(s.data.lifetime) - elapsed_s;
  return left <= 0 ? 0 : static_cast<std::uint32_t>(left);
}

// ---- Store (RFC 6940 section 7.4.1) ----

pr::message_body data_store::store(const pr::store_req& req,
                                   const crypto::verified_signer& requester,
                                   wall_clock::time_point now) {
  const pr::generic_certificate own = requester.cert.generic();
  return store_impl(req, requester, std::span<const pr::generic_certificate>(&own, 1), now, false);
}

pr::message_body data_store::store(const pr::store_req& req,
                                   const crypto::verified_signer& requester,
                                   std::span<const pr::generic_certificate> certificates,
                                   wall_clock::time_point now, bool from_this_process) {
  std::vector<pr::generic_certificate> all(certificates.begin(), certificates.end());
  all.push_back(requester.cert.generic());
  return store_impl(req, requester, all, now, from_this_process);
}

pr::message_body data_store::store_impl(const pr::store_req& req,
                                        const crypto::verified_signer& requester,
                                        std::span<const pr::generic_certificate> certificates,
                                        wall_clock::time_point now, bool from_this_process,
                                        bool vet_first) {
  const std::int64_t now_ms = to_ms(now);
  const bool replica = req.replica_number > 0;
  // A replica's value signatures are verified before first use, not here (the class comment);
  // its signer's certificate, chain and access are checked here all the same.
  const bool defer_value_signatures = replica && !from_this_process;

  // Every kind must be known (7.4.1.2: list all the unknown ones).
  std::vector<std::uint32_t> unknown;
  for (const auto& kd : req.kind_data) {
    if (!rules(kd.kind) && unknown.size() < max_unknown_kinds_listed) unknown.push_back(kd.kind);
  }
  if (!unknown.empty()) {
    auto info = pr::encode_unknown_kinds(unknown);
    return pr::error_response{static_cast<std::uint16_t>(pr::reload_errc::unknown_kind),
                              info ? std::move(*info) : pr::bytes{}};
  }
  for (const auto& kd : req.kind_data) {
    if (kd.undecoded_values) {
      return error_body(pr::reload_errc::invalid_message,
                        kind_text(kd.kind) + ": values not in the kind's data model");
    }
  }
  // A damaged stored value must not take part (its storage_time could refuse every new one, it
  // counts towards max-count, it places an append). An original Store vets its kinds first; a
  // replica Store only when an unverified value would decide it (then it starts again vetted).
  if (!replica || vet_first) {
    for (const auto& kd : req.kind_data) vet(req.resource, kd.kind, now);
  }
  const auto decided_by_unverified = [&] {
    return store_impl(req, requester, certificates, now, from_this_process, true);
  };

  // Generation counters (7.4.1.1, 7.4.1.2).
  if (replica) {
    for (const auto& kd : req.kind_data) {
      if (kd.generation_counter == 0) {
        return error_body(pr::reload_errc::invalid_message,
                          kind_text(kd.kind) + ": a replica Store must not use generation 0");
      }
    }
  } else {
    bool too_low = false;
    pr::store_ans correct;
    for (const auto& kd : req.kind_data) {
      const std::uint64_t current = generation(req.resource, kd.kind);
      if (kd.generation_counter != 0 && kd.generation_counter != current) too_low = true;
      correct.kind_responses.push_back({kd.kind, current, {}});
    }
    if (too_low) {
      auto info = pr::encode_body(correct);
      return pr::error_response{
          static_cast<std::uint16_t>(pr::reload_errc::generation_counter_too_low),
          info ? std::move(*info) : pr::bytes{}};
    }
  }

  const crypto::certificate_lookup lookup = [this](const pr::signer_identity& id) {
    return lookup_certificate(id);
  };

  // Each kind on a working copy; nothing is applied until every kind passed.
  struct kind_work {
    std::uint32_t kind = 0;
    std::map<pr::bytes, slot> values;
    std::set<pr::bytes> changed;
    std::uint64_t generation = 0;
    bool merged_older = false;  ///< a replica value older than ours was passed over
  };
  std::vector<kind_work> work;
  work.reserve(req.kind_data.size());
  for (const auto& kd : req.kind_data) {
    const kind_rules& kr = kinds_.at(kd.kind);
    const std::string where = kind_text(kd.kind);
    kind_work w;
    w.kind = kd.kind;
    const kind_state* existing = find_kind(req.resource, kd.kind);
    if (existing) w.values = existing->values;
    // Values whose lifetime ran out are gone, whether or not expire() swept them yet.
    std::erase_if(w.values, [&](const auto& e) { return e.second.expires_ms() <= now_ms; });

    std::size_t position = 0;
    for (const auto& sd : kd.values) {
      const std::string value_where = where + " value " + std::to_string(position++);
      if (pr::model_of(sd.value) != kr.model) {
        return error_body(pr::reload_errc::invalid_message,
                          value_where + ": not in the kind's data model");
      }
      if (sd.signature.is_unsigned() || sd.signature.identity.is_none()) {
        return error_body(pr::reload_errc::forbidden, value_where + ": unsigned value");
      }
      // The very value (storage time, value and signature) of a verified one held: the same
      // verdict (a hand-over or a replica brought again, a client storing it again).
      const auto held = w.values.find(value_key(sd.value));
      const bool verified_before =
          held != w.values.end() && held->second.check == check_state::verified &&
          held->second.data.storage_time == sd.storage_time &&
          held->second.data.signature == sd.signature && held->second.data.value == sd.value;
      const bool signature_later = !verified_before && defer_value_signatures;
      if (!verified_before && !signature_later && !from_this_process) ++counts_.signatures_verified;
      auto signer = verified_before || signature_later
                        ? crypto::stored_data_signer(sd, certificates, trust_, now, lookup)
                        : crypto::verify_stored_data(sd, req.resource, kd.kind, certificates,
                                                     trust_, now, lookup, from_this_process);
      if (!signer) {
        return error_body(crypto::to_reload_errc(signer.error()),
                          value_where + ": signature refused: " + signer.error().message());
      }
      if (auto ok = crypto::check_access(kr.policy, *signer, req.resource, sd.value,
                                         kr.max_node_multiple);
          !ok) {
        return error_body(pr::reload_errc::forbidden,
                          value_where + ": the value's signer may not write here");
      }
      if (!replica) {
        if (auto ok = crypto::check_access(kr.policy, requester, req.resource, sd.value,
                                           kr.max_node_multiple);
            !ok) {
          return error_body(pr::reload_errc::forbidden,
                            value_where + ": the requester may not write here");
        }
      }
      if (data_value_of(sd.value).value.size() > kr.max_size) {
        return error_body(pr::reload_errc::data_too_large,
                          value_where + ": larger than max-size " + std::to_string(kr.max_size));
      }
      // RFC 7904 3.2: a SIP-REGISTRATION value is a SipRegistration (another AOR, or contact
      // preferences and a destination list); anything else would mislead every resolver.
      if (kd.kind == pr::kinds::sip_registration && data_value_of(sd.value).exists) {
        if (auto reg = pr::decode_sip_registration(data_value_of(sd.value).value, pr::limits{});
            !reg) {
          return error_body(
              pr::reload_errc::invalid_message,
              value_where + ": not a SipRegistration (RFC 7904 3.2): " + reg.error().message());
        }
      }

      pr::stored_data placed = sd;
      if (auto* a = std::get_if<pr::array_entry>(&placed.value);
          a && a->index == pr::array_append_index) {
        // Append: the next index after the last live entry (7.4.1.1).
        a->index = w.values.empty() ? 0 : key_index(w.values.rbegin()->first) + 1;
        if (!w.values.empty() &&
            key_index(w.values.rbegin()->first) == pr::array_append_index - 1) {
          return error_body(pr::max_count_exceeded_error, value_where + ": array is full");
        }
      }
      pr::bytes key = value_key(placed.value);
      auto wire = encode_wire(placed);
      if (!wire) {
        return error_body(pr::reload_errc::data_too_large, value_where + ": cannot be encoded");
      }
      if (const auto old = w.values.find(key); old != w.values.end()) {
        const std::uint64_t old_time = old->second.data.storage_time;
        if (sd.storage_time <= old_time && old->second.check != check_state::verified &&
            !vet_first) {
          return decided_by_unverified();
        }
        if (sd.storage_time < old_time ||
            (sd.storage_time == old_time && old->second.wire != *wire)) {
          // A replica or hand-over merges (RFC 6940 7.4.1.1's default merging rule: as if every
          // value had been stored in storage-time order): the older one was overwritten by ours.
          if (replica) {
            w.merged_older = true;
            continue;
          }
          return error_body(pr::reload_errc::data_too_old,
                            value_where + ": storage_time " + std::to_string(sd.storage_time) +
                                " is not after the stored " + std::to_string(old_time));
        }
        if (sd.storage_time == old_time) continue;  // the very same value again: no change
      }
      slot s;
      s.wire = std::move(*wire);
      s.data = std::move(placed);
      s.received_ms = now_ms;
      s.signer_certificate = signer->cert.der();
      if (signature_later) s.check = check_state::unchecked;
      w.values[key] = std::move(s);
      w.changed.insert(std::move(key));
    }

    // max-count: live values; an array counts its length since holes are answered as values.
    std::uint64_t count = w.values.size();
    if (kr.model == pr::data_model::array && !w.values.empty()) {
      count = std::uint64_t{key_index(w.values.rbegin()->first)} + 1;
    }
    if (count > kr.max_count) {
      if (!vet_first && std::any_of(w.values.begin(), w.values.end(), [](const auto& v) {
            return v.second.check != check_state::verified;
          })) {
        return decided_by_unverified();
      }
      return error_body(pr::max_count_exceeded_error, where + ": " + std::to_string(count) +
                                                          " values exceed max-count " +
                                                          std::to_string(kr.max_count));
    }
    const std::uint64_t current = existing ? existing->generation : 0;
    if (replica) {
      // The sender's counter, unless we hold newer values than its copy: then it must not go
      // back (a conditional Store checked against it would accept a stale writer).
      w.generation =
          w.merged_older ? std::max(current, kd.generation_counter) : kd.generation_counter;
    } else {
      // Saturates rather than wrapping to 0 (which means "no check" on the wire).
      w.generation = w.changed.empty() || current == std::numeric_limits<std::uint64_t>::max()
                         ? current
                         : current + 1;
    }
    work.push_back(std::move(w));
  }

  // Durable first, then visible.
  change_set changes;
  for (const auto& w : work) {
    for (const auto& key : w.changed) {
      const slot& s = w.values.at(key);
      changes.put_values.push_back(
          {req.resource, w.kind, key, s.wire, s.received_ms, s.signer_certificate});
    }
    const bool has_values = !w.values.empty();
    if (has_values && (!w.changed.empty() || w.generation != generation(req.resource, w.kind))) {
      changes.put_generations.push_back({req.resource, w.kind, w.generation});
    }
  }
  if (!commit(changes)) {
    return error_body(pr::reload_errc::request_timeout,
                      "the store could not be written: " + last_error_.message);
  }
  pr::store_ans ans;
  for (auto& w : work) {
    for (const auto& key : w.changed) {
      const slot& s = w.values.at(key);
      insert_slot(req.resource, w.kind, key, s);
      if (s.check != check_state::verified) {
        unvetted_.emplace(req.resource, w.kind);  // after insert_slot, which may drop the entry
        ++counts_.signatures_deferred;
      }
    }
    if (auto r = resources_.find(req.resource); r != resources_.end()) {
      if (auto k = r->second.find(w.kind); k != r->second.end())
        k->second.generation = w.generation;
    }
    ans.kind_responses.push_back({w.kind, w.generation, {}});
  }
  return ans;
}

// ---- Fetch and Stat (sections 7.4.2, 7.4.3) ----

namespace {

/// The values a specifier selects, live ones with their remaining lifetime, absent ones asked for
/// by index or key as synthetic exists=false values with the unsigned signature (7.4.2.2).
/// `servable(slot)`: live and not withheld; absent otherwise.
template <class Slots, class Servable, class Remaining>
std::vector<pr::stored_data> select_values(const pr::stored_data_specifier& spec,
                                           pr::data_model model, const Slots* values,
                                           Servable servable, Remaining remaining) {
  std::vector<pr::stored_data> out;
  const auto live = [&](const pr::bytes& key) -> const typename Slots::mapped_type* {
    if (!values) return nullptr;
    const auto it = values->find(key);
    if (it == values->end() || !servable(it->second)) return nullptr;
    return &it->second;
  };
  const auto emit = [&](const typename Slots::mapped_type& s) {
    pr::stored_data sd = s.data;
    sd.lifetime = remaining(s);
    out.push_back(std::move(sd));
  };
  const auto synthetic = [&](pr::stored_data_value v) {
    pr::stored_data sd;
    sd.value = std::move(v);
    out.push_back(std::move(sd));
  };
  switch (model) {
    case pr::data_model::single_value:
      if (const auto* s = live({})) {
        emit(*s);
      } else {
        synthetic(pr::data_value{false, {}});
      }
      break;
    case pr::data_model::array: {
      std::uint64_t length = 0;  // highest live index + 1
      if (values) {
        for (auto it = values->rbegin(); it != values->rend(); ++it) {
          if (servable(it->second)) {
            length = std::uint64_t{key_index(it->first)} + 1;
            break;
          }
        }
      }
      for (const auto& range : std::get<std::vector<pr::array_range>>(spec.model)) {
        if (length == 0) break;
        const std::uint64_t last_index = length - 1;
        const std::uint64_t first =
            range.first == pr::array_append_index ? last_index : range.first;
        const std::uint64_t last = std::min<std::uint64_t>(
            range.last == pr::array_append_index ? last_index : range.last, last_index);
        for (std::uint64_t i = first; i <= last; ++i) {
          const auto index = static_cast<std::uint32_t>(i);
          if (const auto* s = live(index_key(index))) {
            emit(*s);
          } else {
            synthetic(pr::array_entry{index, {false, {}}});
          }
        }
      }
      break;
    }
    case pr::data_model::dictionary: {
      const auto& keys = std::get<std::vector<pr::bytes>>(spec.model);
      if (keys.empty()) {
        if (values) {
          for (const auto& [key, s] : *values) {
            if (servable(s)) emit(s);
          }
        }
      } else {
        for (const auto& key : keys) {
          if (const auto* s = live(key)) {
            emit(*s);
          } else {
            synthetic(pr::dictionary_entry{key, {false, {}}});
          }
        }
      }
      break;
    }
  }
  return out;
}

}  // namespace

pr::message_body data_store::fetch(const pr::fetch_req& req, wall_clock::time_point now) {
  const std::int64_t now_ms = to_ms(now);
  std::vector<std::uint32_t> unknown;
  for (const auto& spec : req.specifiers) {
    if (!rules(spec.kind) && unknown.size() < max_unknown_kinds_listed &&
        std::find(unknown.begin(), unknown.end(), spec.kind) == unknown.end()) {
      unknown.push_back(spec.kind);
    }
  }
  if (!unknown.empty()) {
    auto info = pr::encode_unknown_kinds(unknown);
    return pr::error_response{static_cast<std::uint16_t>(pr::reload_errc::unknown_kind),
                              info ? std::move(*info) : pr::bytes{}};
  }
  pr::fetch_ans ans;
  for (const auto& spec : req.specifiers) {
    const kind_rules& kr = kinds_.at(spec.kind);
    if (spec.undecoded || !model_matches(spec, kr.model)) {
      return error_body(pr::reload_errc::invalid_message,
                        kind_text(spec.kind) + ": specifier not in the kind's data model");
    }
    vet(req.resource, spec.kind, now);
    const kind_state* ks = find_kind(req.resource, spec.kind);
    pr::fetch_kind_response kr_out;
    kr_out.kind = spec.kind;
    kr_out.generation = ks ? ks->generation : 0;
    if (spec.generation == 0 || spec.generation != kr_out.generation) {
      kr_out.values = select_values(
          spec, kr.model, ks ? &ks->values : nullptr,
          [&](const slot& s) {
            return s.expires_ms() > now_ms && s.check != check_state::withheld;
          },
          [&](const slot& s) { return remaining_lifetime(s, now_ms); });
    }
    ans.kind_responses.push_back(std::move(kr_out));
  }
  return ans;
}

pr::message_body data_store::stat(const pr::stat_req& req, wall_clock::time_point now) {
  auto fetched = fetch(pr::fetch_req{req.resource, req.specifiers}, now);
  auto* f = std::get_if<pr::fetch_ans>(&fetched);
  if (!f) return fetched;
  pr::stat_ans ans;
  for (auto& kr : f->kind_responses) {
    pr::stat_kind_response out;
    out.kind = kr.kind;
    out.generation = kr.generation;
    for (const auto& sd : kr.values) out.values.push_back(stored_meta_of(sd));
    ans.kind_responses.push_back(std::move(out));
  }
  return ans;
}

// ---- Find (section 7.4.4) ----

pr::message_body data_store::find(const pr::find_req& req, const pr::node_id& range_after,
                                  const pr::node_id& range_to, wall_clock::time_point now) {
  const std::int64_t now_ms = to_ms(now);
  const auto target = req.resource.as_ring_point();
  if (!target || target->size() != range_to.size() || range_after.size() != range_to.size()) {
    return error_body(pr::reload_errc::invalid_message,
                      "the Resource-ID is not a ring point of this overlay");
  }
  if (!pr::in_half_open_interval(*target, range_after, range_to)) {
    return error_body(pr::reload_errc::not_found,
                      "this peer is not responsible for the Resource-ID");
  }
  const bool whole_ring = range_after == range_to;
  const pr::node_id span = pr::ring_distance(*target, range_to);
  const auto in_window = [&](const pr::node_id& id) {
    return whole_ring || pr::ring_distance(*target, id) <= span;
  };
  const auto holds = [&](const resource_state& res, std::uint32_t kind) {
    const auto k = res.find(kind);
    if (k == res.end()) return false;
    for (const auto& [key, s] : k->second.values) {
      if (s.expires_ms() > now_ms && s.check != check_state::withheld &&
          data_value_of(s.data.value).exists) {
        return true;
      }
    }
    return false;
  };

  // Only values this peer can vouch for count: an unverified replica could be a forgery.
  std::vector<std::pair<pr::resource_id, std::uint32_t>> to_vet;
  for (const auto& [resource, kind] : unvetted_) {
    if (same_ring(resource, range_to) &&
        std::find(req.kinds.begin(), req.kinds.end(), kind) != req.kinds.end() &&
        pr::in_half_open_interval(*resource.as_ring_point(), range_after, range_to)) {
      to_vet.emplace_back(resource, kind);
    }
  }
  for (const auto& [resource, kind] : to_vet) vet(resource, kind, now);

  pr::find_ans ans;
  for (const std::uint32_t kind : req.kinds) {
    pr::find_kind_data out;
    out.kind = kind;
    out.closest.value.assign(req.resource.value.size(), 0);
    if (rules(kind)) {
      std::optional<pr::resource_id> found;
      // Clockwise from the target: first [target, end of the id space), then wrap to [0, target).
      for (auto it = resources_.lower_bound(req.resource); it != resources_.end() && !found; ++it) {
        if (!same_ring(it->first, range_to)) continue;
        const pr::node_id id = *it->first.as_ring_point();
        if (!in_window(id)) break;
        if (holds(it->second, kind)) found = it->first;
      }
      for (auto it = resources_.begin();
           it != resources_.end() && !found && it->first < req.resource; ++it) {
        if (!same_ring(it->first, range_to)) continue;
        const pr::node_id id = *it->first.as_ring_point();
        if (!in_window(id)) continue;
        if (holds(it->second, kind)) found = it->first;
      }
      if (found) out.closest = *found;
    }
    ans.results.push_back(std::move(out));
  }
  return ans;
}

// ---- replication, handover and expiry (sections 7.4.1.1, 10.4, 10.7.3) ----

std::vector<pr::store_req> data_store::export_range(const pr::node_id& after,
                                                    const pr::node_id& up_to,
                                                    wall_clock::time_point now,
                                                    std::size_t max_values_bytes) {
  const std::int64_t now_ms = to_ms(now);
  // Replicas and new owners get only values this peer can vouch for.
  std::vector<std::pair<pr::resource_id, std::uint32_t>> to_vet;
  for (const auto& [resource, kind] : unvetted_) {
    if (same_ring(resource, up_to) &&
        pr::in_half_open_interval(*resource.as_ring_point(), after, up_to)) {
      to_vet.emplace_back(resource, kind);
    }
  }
  for (const auto& [resource, kind] : to_vet) vet(resource, kind, now);
  std::vector<pr::store_req> out;
  for (const auto& [resource, res] : resources_) {
    if (!same_ring(resource, up_to)) continue;
    if (!pr::in_half_open_interval(*resource.as_ring_point(), after, up_to)) continue;
    pr::store_req req;
    req.resource = resource;
    std::size_t bytes_in_req = 0;
    const auto flush = [&] {
      if (!req.kind_data.empty()) out.push_back(std::move(req));
      req = pr::store_req{};
      req.resource = resource;
      bytes_in_req = 0;
    };
    for (const auto& [kind, ks] : res) {
      for (const auto& [key, s] : ks.values) {
        const std::uint32_t left = remaining_lifetime(s, now_ms);
        if (left == 0 || s.expires_ms() <= now_ms || s.check == check_state::withheld) continue;
        if (max_values_bytes > 0 && bytes_in_req > 0 &&
            bytes_in_req + s.wire.size() > max_values_bytes) {
          flush();
        }
        if (req.kind_data.empty() || req.kind_data.back().kind != kind) {
          pr::store_kind_data kd;
          kd.kind = kind;
          kd.generation_counter = ks.generation;
          req.kind_data.push_back(std::move(kd));
        }
        pr::stored_data sd = s.data;
        sd.lifetime = left;
        req.kind_data.back().values.push_back(std::move(sd));
        bytes_in_req += s.wire.size();
      }
    }
    flush();
  }
  return out;
}

std::size_t data_store::drop_range(const pr::node_id& after, const pr::node_id& up_to) {
  change_set changes;
  std::vector<std::tuple<pr::resource_id, std::uint32_t, pr::bytes>> doomed;
  for (const auto& [resource, res] : resources_) {
    if (!same_ring(resource, up_to)) continue;
    if (!pr::in_half_open_interval(*resource.as_ring_point(), after, up_to)) continue;
    for (const auto& [kind, ks] : res) {
      for (const auto& [key, s] : ks.values) {
        changes.erase_values.push_back({resource, kind, key});
        doomed.emplace_back(resource, kind, key);
      }
      changes.erase_generations.push_back({resource, kind, {}});
    }
  }
  // Dropped data is no longer ours: forget it even if the backend fails (it would be dropped
  // again after a restart); the failure is kept for the log.
  (void)commit(changes);
  for (const auto& [resource, kind, key] : doomed) erase_slot(resource, kind, key);
  return doomed.size();
}

std::size_t data_store::expire(wall_clock::time_point now) {
  const std::int64_t now_ms = to_ms(now);
  std::vector<expiry_key> doomed;
  for (auto it = expiries_.begin(); it != expiries_.end() && std::get<0>(*it) <= now_ms; ++it) {
    doomed.push_back(*it);
  }
  if (doomed.empty()) return 0;
  change_set changes;
  std::set<std::pair<pr::resource_id, std::uint32_t>> touched;
  for (const auto& [at, resource, kind, key] : doomed) {
    changes.erase_values.push_back({resource, kind, key});
    touched.emplace(resource, kind);
  }
  for (const auto& e : doomed) erase_slot(std::get<1>(e), std::get<2>(e), std::get<3>(e));
  for (const auto& [resource, kind] : touched) {
    if (!find_kind(resource, kind)) changes.erase_generations.push_back({resource, kind, {}});
  }
  (void)commit(changes);
  return doomed.size();
}

std::optional<wall_clock::time_point> data_store::next_expiry() const {
  if (expiries_.empty()) return std::nullopt;
  return wall_clock::time_point(std::chrono::duration_cast<wall_clock::duration>(
      std::chrono::milliseconds(std::get<0>(*expiries_.begin()))));
}

std::vector<pr::generic_certificate> data_store::signer_certificates(
    const pr::message_body& body) const {
  std::vector<pr::generic_certificate> out;
  std::set<pr::bytes> seen;
  const auto add = [&](const pr::stored_data& sd) {
    if (sd.signature.is_unsigned()) return;
    const auto it = certificates_.find(identity_key(sd.signature.identity));
    if (it == certificates_.end() || !seen.insert(it->second.first).second) return;
    out.push_back({0, it->second.first});
  };
  if (const auto* f = std::get_if<pr::fetch_ans>(&body)) {
    for (const auto& kr : f->kind_responses) {
      for (const auto& sd : kr.values) add(sd);
    }
  } else if (const auto* s = std::get_if<pr::store_req>(&body)) {
    for (const auto& kd : s->kind_data) {
      for (const auto& sd : kd.values) add(sd);
    }
  }
  return out;
}

}  // namespace p2psip::peer
