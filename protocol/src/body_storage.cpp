// The storage bodies: Store, Fetch, Stat and Find requests and answers (RFC 6940 section 7.4).
//
// StoredDataValue, StoredDataSpecifier's model_specifier and MetaDataValue carry no tag: the kind's
// data model (body_context::model_of) says how to read them. For a kind whose model is unknown the
// raw bytes are kept (the peer answers Error_Unknown_Kind), or, for debugging tools, each model is
// tried in turn (body_context::guess_unknown_models).
#include <algorithm>
#include <array>
#include <set>

#include "body_codec.hpp"
#include "stored_data_codec.hpp"

namespace p2psip::protocol::detail {

namespace {

constexpr std::size_t max_u32_list = max_for_prefix(4);

// Tried in this order when guessing: the model with the most structure first, so that a value
// which happens to parse under a looser model too is read the way it most likely was written.
constexpr std::array<data_model, 3> guess_order{data_model::dictionary, data_model::array,
                                                data_model::single_value};

std::optional<data_model> lookup_model(const body_context& ctx, std::uint32_t kind) {
  if (!ctx.model_of) return std::nullopt;
  return ctx.model_of(kind);
}

/// A structure with its own length field in front: the structure is self-delimiting, so we read
/// it field by field and then require that it took exactly `declared` bytes. This names the
/// length field when it is the one that is wrong, and the inner field when that one is.
void check_declared_length(reader& r, std::size_t length_at, std::size_t start,
                           std::uint64_t declared, const char* field) {
  if (r.ok() && r.offset() - start != declared) {
    r.fail_at(length_at, codec_errc::bad_length, field);
  }
}

}  // namespace

// ---- StoredData (RFC 6940 section 7; declared in stored_data_codec.hpp) ----

stored_data decode_stored_data(reader& r, data_model m) {
  stored_data sd;
  const std::size_t length_at = r.offset();
  const std::uint32_t length = r.u32("stored_data.length");
  const std::size_t start = r.offset();
  sd.storage_time = r.u64("stored_data.storage_time");
  sd.lifetime = r.u32("stored_data.lifetime");
  sd.value = decode_stored_data_value(r, m);
  sd.signature = decode_signature(r);
  check_declared_length(r, length_at, start, length, "stored_data.length");
  return sd;
}

void encode_stored_data(writer& w, const stored_data& sd) {
  w.vector(4, max_u32_list, "stored_data.length", [&] {
    w.u64(sd.storage_time);
    w.u32(sd.lifetime);
    encode_stored_data_value(w, sd.value);
    encode_signature(w, sd.signature);
  });
}

namespace {

// ---- StoredMetaData (RFC 6940 section 7.4.3.2) ----

meta_data decode_meta_data(reader& r) {
  meta_data md;
  md.exists = r.boolean("meta_data.exists");
  md.value_length = r.u32("meta_data.value_length");
  md.hash_algorithm = r.u8("meta_data.hash_algorithm");
  md.hash_value = to_bytes(r.opaque(1, 0, 255, "meta_data.hash_value"));
  return md;
}

void encode_meta_data(writer& w, const meta_data& md) {
  w.boolean(md.exists);
  w.u32(md.value_length);
  w.u8(md.hash_algorithm);
  w.opaque(1, 255, md.hash_value, "meta_data.hash_value");
}

stored_meta_data decode_stored_meta_data(reader& r, data_model m) {
  stored_meta_data smd;
  const std::size_t length_at = r.offset();
  const std::uint32_t length = r.u32("stored_meta_data.value_length");
  const std::size_t start = r.offset();
  smd.storage_time = r.u64("stored_meta_data.storage_time");
  smd.lifetime = r.u32("stored_meta_data.lifetime");
  switch (m) {
    case data_model::single_value: smd.metadata = decode_meta_data(r); break;
    case data_model::array: {
      array_entry_meta e;
      e.index = r.u32("array_entry_meta.index");
      e.value = decode_meta_data(r);
      smd.metadata = std::move(e);
      break;
    }
    case data_model::dictionary: {
      dictionary_entry_meta e;
      e.key = to_bytes(r.opaque(2, 0, 0xFFFF, "dictionary_entry_meta.key"));
      e.value = decode_meta_data(r);
      smd.metadata = std::move(e);
      break;
    }
  }
  check_declared_length(r, length_at, start, length, "stored_meta_data.value_length");
  return smd;
}

void encode_stored_meta_data(writer& w, const stored_meta_data& smd) {
  w.vector(4, max_u32_list, "stored_meta_data.value_length", [&] {
    w.u64(smd.storage_time);
    w.u32(smd.lifetime);
    if (const auto* a = std::get_if<array_entry_meta>(&smd.metadata)) {
      w.u32(a->index);
      encode_meta_data(w, a->value);
    } else if (const auto* d = std::get_if<dictionary_entry_meta>(&smd.metadata)) {
      w.opaque(2, 0xFFFF, d->key, "dictionary_entry_meta.key");
      encode_meta_data(w, d->value);
    } else {
      encode_meta_data(w, std::get<meta_data>(smd.metadata));
    }
  });
}

// ---- values lists whose entries depend on the data model ----

template <class Entry, class DecodeOne>
std::vector<Entry> decode_entries(reader& list, data_model m, DecodeOne decode_one) {
  std::vector<Entry> out;
  while (list.ok() && !list.at_end()) out.push_back(decode_one(list, m));
  return out;
}

/// `values<0..2^32-1>` of a kind: decoded with the kind's model, guessed, or kept raw.
template <class Entry, class DecodeOne>
void decode_values(reader& r, const body_context& ctx, std::uint32_t kind, const char* field,
                   std::vector<Entry>& values, std::optional<bytes>& undecoded, bool& guessed,
                   DecodeOne decode_one) {
  if (const auto model = lookup_model(ctx, kind)) {
    reader list = r.sub(4, max_u32_list, field);
    values = decode_entries<Entry>(list, *model, decode_one);
    return;
  }
  const byte_view raw = r.opaque(4, 0, max_u32_list, field);
  if (!r.ok()) return;
  if (ctx.guess_unknown_models) {
    for (const data_model m : guess_order) {
      reader trial(raw);
      auto tried = decode_entries<Entry>(trial, m, decode_one);
      if (trial.ok()) {
        values = std::move(tried);
        guessed = true;
        return;
      }
    }
  }
  undecoded = to_bytes(raw);
}

/// Every entry of a values list must hold the same alternative: a kind has one data model.
bool one_model(const std::vector<stored_data>& values) {
  return std::all_of(values.begin(), values.end(), [&](const stored_data& e) {
    return e.value.index() == values.front().value.index();
  });
}
bool one_model(const std::vector<stored_meta_data>& values) {
  return std::all_of(values.begin(), values.end(), [&](const stored_meta_data& e) {
    return e.metadata.index() == values.front().metadata.index();
  });
}

template <class Entry, class EncodeOne>
void encode_values(writer& w, const char* field, const std::vector<Entry>& values,
                   const std::optional<bytes>& undecoded, EncodeOne encode_one) {
  if (undecoded && !values.empty()) {
    w.fail(codec_errc::invalid_value, field);  // which of the two is meant is not ours to pick
  }
  w.vector(4, max_u32_list, field, [&] {
    if (undecoded) {
      w.raw(*undecoded);
      return;
    }
    for (const auto& v : values) encode_one(w, v);
  });
}

// ---- StoredDataSpecifier (RFC 6940 section 7.4.2.1) ----

/// The model_specifier of `m`; reads exactly what the model defines.
void decode_model_specifier(reader& r, data_model m, stored_data_specifier& out) {
  switch (m) {
    case data_model::single_value: out.model = std::monostate{}; break;
    case data_model::array: {
      std::vector<array_range> ranges;
      reader list = r.sub(2, 0xFFFF, "stored_data_specifier.indices");
      while (list.ok() && !list.at_end()) {
        const std::size_t at = list.offset();
        array_range range;
        range.first = list.u32("array_range.first");
        range.last = list.u32("array_range.last");
        if (list.ok() && range.first > range.last) {
          list.fail_at(at, codec_errc::invalid_value, "array_range.first");
        }
        ranges.push_back(range);
      }
      if (r.ok()) {
        // "While multiple ranges MAY be specified, they MUST NOT overlap."
        std::vector<array_range> sorted = ranges;
        std::sort(sorted.begin(), sorted.end(),
                  [](const array_range& a, const array_range& b) { return a.first < b.first; });
        for (std::size_t i = 1; i < sorted.size(); ++i) {
          if (sorted[i].first <= sorted[i - 1].last) {
            r.fail(codec_errc::invalid_value, "stored_data_specifier.indices");
            break;
          }
        }
      }
      out.model = std::move(ranges);
      break;
    }
    case data_model::dictionary: {
      std::vector<bytes> keys;
      reader list = r.sub(2, 0xFFFF, "stored_data_specifier.keys");
      while (list.ok() && !list.at_end()) {
        keys.push_back(to_bytes(list.opaque(2, 0, 0xFFFF, "dictionary_key")));
      }
      out.model = std::move(keys);
      break;
    }
  }
}

stored_data_specifier decode_specifier(reader& r, const body_context& ctx) {
  stored_data_specifier s;
  s.kind = r.u32("stored_data_specifier.kind");
  s.generation = r.u64("stored_data_specifier.generation");
  if (!r.ok()) return s;
  if (const auto model = lookup_model(ctx, s.kind)) {
    // The length is there so that a node can skip a model it does not know; for a known model the
    // specifier must fill it exactly.
    const std::size_t length_at = r.offset();
    const std::uint16_t length = r.u16("stored_data_specifier.length");
    const std::size_t start = r.offset();
    decode_model_specifier(r, *model, s);
    check_declared_length(r, length_at, start, length, "stored_data_specifier.length");
    return s;
  }
  const byte_view raw = r.opaque(2, 0, 0xFFFF, "stored_data_specifier.length");
  if (!r.ok()) return s;
  if (ctx.guess_unknown_models) {
    for (const data_model m : guess_order) {
      reader trial(raw);
      stored_data_specifier tried = s;
      decode_model_specifier(trial, m, tried);
      trial.expect_done("stored_data_specifier");
      if (trial.ok()) {
        tried.model_guessed = true;
        return tried;
      }
    }
  }
  s.undecoded = to_bytes(raw);
  return s;
}

void encode_specifier(writer& w, const stored_data_specifier& s) {
  w.u32(s.kind);
  w.u64(s.generation);
  w.vector(2, 0xFFFF, "stored_data_specifier.length", [&] {
    if (s.undecoded) {
      if (!std::holds_alternative<std::monostate>(s.model)) {
        w.fail(codec_errc::invalid_value, "stored_data_specifier.length");
      }
      w.raw(*s.undecoded);
    } else if (const auto* ranges = std::get_if<std::vector<array_range>>(&s.model)) {
      w.vector(2, 0xFFFF, "stored_data_specifier.indices", [&] {
        for (const auto& range : *ranges) {
          if (range.first > range.last) w.fail(codec_errc::invalid_value, "array_range.first");
          w.u32(range.first);
          w.u32(range.last);
        }
      });
    } else if (const auto* keys = std::get_if<std::vector<bytes>>(&s.model)) {
      w.vector(2, 0xFFFF, "stored_data_specifier.keys", [&] {
        for (const auto& key : *keys) w.opaque(2, 0xFFFF, key, "dictionary_key");
      });
    }
  });
}

/// FetchReq and StatReq share one layout.
void decode_specifiers_body(reader& r, const body_context& ctx, const char* resource_field,
                            const char* list_field, resource_id& resource,
                            std::vector<stored_data_specifier>& specifiers) {
  resource.value = to_bytes(r.opaque(1, 0, 255, resource_field));
  reader list = r.sub(2, 0xFFFF, list_field);
  while (list.ok() && !list.at_end()) specifiers.push_back(decode_specifier(list, ctx));
}

void encode_specifiers_body(writer& w, const char* resource_field, const char* list_field,
                            const resource_id& resource,
                            const std::vector<stored_data_specifier>& specifiers) {
  w.opaque(1, 255, resource.value, resource_field);
  w.vector(2, 0xFFFF, list_field, [&] {
    for (const auto& s : specifiers) encode_specifier(w, s);
  });
}

bool valid_node_id_length(std::size_t n) {
  return n >= min_node_id_length && n <= max_node_id_length;
}

}  // namespace

// ---- Store (7.4.1) ----

void decode_into(reader& r, const limits&, const body_context& ctx, store_req& out) {
  out.resource.value = to_bytes(r.opaque(1, 0, 255, "store_req.resource"));
  out.replica_number = r.u8("store_req.replica_number");
  reader list = r.sub(4, max_u32_list, "store_req.kind_data");
  std::set<std::uint32_t> seen;
  while (list.ok() && !list.at_end()) {
    store_kind_data kd;
    const std::size_t kind_at = list.offset();
    kd.kind = list.u32("store_kind_data.kind");
    // "The same Kind-ID MUST NOT be used twice in a given store request."
    if (list.ok() && !seen.insert(kd.kind).second) {
      list.fail_at(kind_at, codec_errc::duplicate_entry, "store_kind_data.kind");
      break;
    }
    kd.generation_counter = list.u64("store_kind_data.generation_counter");
    decode_values(list, ctx, kd.kind, "store_kind_data.values", kd.values, kd.undecoded_values,
                  kd.model_guessed, decode_stored_data);
    out.kind_data.push_back(std::move(kd));
  }
}

void encode_to(writer& w, const store_req& in) {
  w.opaque(1, 255, in.resource.value, "store_req.resource");
  w.u8(in.replica_number);
  std::set<std::uint32_t> seen;
  w.vector(4, max_u32_list, "store_req.kind_data", [&] {
    for (const auto& kd : in.kind_data) {
      if (!seen.insert(kd.kind).second) w.fail(codec_errc::duplicate_entry, "store_kind_data.kind");
      if (!one_model(kd.values)) w.fail(codec_errc::invalid_value, "store_kind_data.values");
      w.u32(kd.kind);
      w.u64(kd.generation_counter);
      encode_values(w, "store_kind_data.values", kd.values, kd.undecoded_values,
                    encode_stored_data);
    }
  });
}

void decode_into(reader& r, const limits& lim, const body_context&, store_ans& out) {
  reader list = r.sub(2, 0xFFFF, "store_ans.kind_responses");
  while (list.ok() && !list.at_end()) {
    store_kind_response kr;
    kr.kind = list.u32("store_kind_response.kind");
    kr.generation_counter = list.u64("store_kind_response.generation_counter");
    const std::size_t replicas_at = list.offset();
    reader replicas = list.sub(2, 0xFFFF, "store_kind_response.replicas");
    // `NodeId replicas<0..2^16-1>`: NodeIds are NodeIdLength bytes with no prefix of their own.
    const std::size_t id_length = lim.node_id_length;
    if (list.ok() && (!valid_node_id_length(id_length) || replicas.remaining() % id_length != 0)) {
      list.fail_at(replicas_at, codec_errc::wrong_id_length, "store_kind_response.replicas");
    }
    while (replicas.ok() && !replicas.at_end()) {
      const auto id =
          node_id::from_bytes(replicas.fixed(id_length, "store_kind_response.replicas"));
      if (id) kr.replicas.push_back(*id);
    }
    out.kind_responses.push_back(std::move(kr));
  }
}

void encode_to(writer& w, const store_ans& in) {
  w.vector(2, 0xFFFF, "store_ans.kind_responses", [&] {
    for (const auto& kr : in.kind_responses) {
      w.u32(kr.kind);
      w.u64(kr.generation_counter);
      w.vector(2, 0xFFFF, "store_kind_response.replicas", [&] {
        for (const auto& id : kr.replicas) w.raw(id.view());
      });
    }
  });
}

// ---- Fetch (7.4.2) ----

void decode_into(reader& r, const limits&, const body_context& ctx, fetch_req& out) {
  decode_specifiers_body(r, ctx, "fetch_req.resource", "fetch_req.specifiers", out.resource,
                         out.specifiers);
}

void encode_to(writer& w, const fetch_req& in) {
  encode_specifiers_body(w, "fetch_req.resource", "fetch_req.specifiers", in.resource,
                         in.specifiers);
}

void decode_into(reader& r, const limits&, const body_context& ctx, fetch_ans& out) {
  reader list = r.sub(4, max_u32_list, "fetch_ans.kind_responses");
  while (list.ok() && !list.at_end()) {
    fetch_kind_response kr;
    kr.kind = list.u32("fetch_kind_response.kind");
    kr.generation = list.u64("fetch_kind_response.generation");
    decode_values(list, ctx, kr.kind, "fetch_kind_response.values", kr.values, kr.undecoded_values,
                  kr.model_guessed, decode_stored_data);
    out.kind_responses.push_back(std::move(kr));
  }
}

void encode_to(writer& w, const fetch_ans& in) {
  w.vector(4, max_u32_list, "fetch_ans.kind_responses", [&] {
    for (const auto& kr : in.kind_responses) {
      if (!one_model(kr.values)) w.fail(codec_errc::invalid_value, "fetch_kind_response.values");
      w.u32(kr.kind);
      w.u64(kr.generation);
      encode_values(w, "fetch_kind_response.values", kr.values, kr.undecoded_values,
                    encode_stored_data);
    }
  });
}

// ---- Stat (7.4.3) ----

void decode_into(reader& r, const limits&, const body_context& ctx, stat_req& out) {
  decode_specifiers_body(r, ctx, "stat_req.resource", "stat_req.specifiers", out.resource,
                         out.specifiers);
}

void encode_to(writer& w, const stat_req& in) {
  encode_specifiers_body(w, "stat_req.resource", "stat_req.specifiers", in.resource, in.specifiers);
}

void decode_into(reader& r, const limits&, const body_context& ctx, stat_ans& out) {
  reader list = r.sub(4, max_u32_list, "stat_ans.kind_responses");
  while (list.ok() && !list.at_end()) {
    stat_kind_response kr;
    kr.kind = list.u32("stat_kind_response.kind");
    kr.generation = list.u64("stat_kind_response.generation");
    decode_values(list, ctx, kr.kind, "stat_kind_response.values", kr.values, kr.undecoded_values,
                  kr.model_guessed, decode_stored_meta_data);
    out.kind_responses.push_back(std::move(kr));
  }
}

void encode_to(writer& w, const stat_ans& in) {
  w.vector(4, max_u32_list, "stat_ans.kind_responses", [&] {
    for (const auto& kr : in.kind_responses) {
      if (!one_model(kr.values)) w.fail(codec_errc::invalid_value, "stat_kind_response.values");
      w.u32(kr.kind);
      w.u64(kr.generation);
      encode_values(w, "stat_kind_response.values", kr.values, kr.undecoded_values,
                    encode_stored_meta_data);
    }
  });
}

// ---- Find (7.4.4) ----

void decode_into(reader& r, const limits&, const body_context&, find_req& out) {
  out.resource.value = to_bytes(r.opaque(1, 0, 255, "find_req.resource"));
  reader list = r.sub(1, 255, "find_req.kinds");
  while (list.ok() && !list.at_end()) {
    const std::size_t at = list.offset();
    const std::uint32_t kind = list.u32("find_req.kinds");
    // "Each value MUST appear only once. Otherwise, the request MUST be rejected."
    if (list.ok() && std::find(out.kinds.begin(), out.kinds.end(), kind) != out.kinds.end()) {
      list.fail_at(at, codec_errc::duplicate_entry, "find_req.kinds");
      break;
    }
    if (list.ok()) out.kinds.push_back(kind);
  }
}

void encode_to(writer& w, const find_req& in) {
  w.opaque(1, 255, in.resource.value, "find_req.resource");
  w.vector(1, 255, "find_req.kinds", [&] {
    for (std::size_t i = 0; i < in.kinds.size(); ++i) {
      if (std::find(in.kinds.begin(), in.kinds.begin() + static_cast<std::ptrdiff_t>(i),
                    in.kinds[i]) != in.kinds.begin() + static_cast<std::ptrdiff_t>(i)) {
        w.fail(codec_errc::duplicate_entry, "find_req.kinds");
      }
      w.u32(in.kinds[i]);
    }
  });
}

void decode_into(reader& r, const limits&, const body_context&, find_ans& out) {
  reader list = r.sub(2, 0xFFFF, "find_ans.results");
  while (list.ok() && !list.at_end()) {
    find_kind_data kd;
    kd.kind = list.u32("find_kind_data.kind");
    kd.closest.value = to_bytes(list.opaque(1, 0, 255, "find_kind_data.closest"));
    out.results.push_back(std::move(kd));
  }
}

void encode_to(writer& w, const find_ans& in) {
  w.vector(2, 0xFFFF, "find_ans.results", [&] {
    for (const auto& kd : in.results) {
      w.u32(kd.kind);
      w.opaque(1, 255, kd.closest.value, "find_kind_data.closest");
    }
  });
}

}  // namespace p2psip::protocol::detail
