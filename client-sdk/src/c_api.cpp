// The C API (p2psip_client.h) over the C++ client. Every entry point catches everything: no
// exception crosses into C. Results handed to C are packed into one malloc block each (the
// structs first, then their strings and bytes), so one free() releases a whole result.
#include "p2psip/client/p2psip_client.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "p2psip/client/client.hpp"

namespace cl = p2psip::client;

struct p2psip_client {
  std::unique_ptr<cl::client> impl;
};

struct p2psip_task {
  std::function<void()> run;
};

namespace {

/// Copies `s` into a fixed buffer of `cap` bytes, truncating, always NUL-terminated.
void copy_to(char* dst, std::size_t cap, std::string_view s) {
  if (cap == 0) return;
  const auto n = std::min(s.size(), cap - 1);
  if (n != 0) std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

void set_error(p2psip_error* err, p2psip_errc code, std::string_view message) {
  if (!err) return;
  err->code = code;
  copy_to(err->message, sizeof err->message, message);
}

void set_ok(p2psip_error* err) {
  set_error(err, P2PSIP_OK, {});
}

p2psip_errc code_of(const std::error_code& ec) {
  if (!ec) return P2PSIP_OK;
  if (ec.category() == cl::client_category() && ec.value() >= 1 &&
      ec.value() <= static_cast<int>(cl::errc::would_deadlock)) {
    return static_cast<p2psip_errc>(ec.value());
  }
  return P2PSIP_ERR_INTERNAL;
}

p2psip_errc fail(p2psip_error* err, const cl::error& e) {
  const auto code = code_of(e.code);
  set_error(err, code == P2PSIP_OK ? P2PSIP_ERR_INTERNAL : code, e.message);
  return code == P2PSIP_OK ? P2PSIP_ERR_INTERNAL : code;
}

p2psip_errc fail(p2psip_error* err, p2psip_errc code, std::string_view message) {
  set_error(err, code, message);
  return code;
}

/// Runs `f` (an entry point's body), turning any exception into an error code.
template <class F>
p2psip_errc guarded(p2psip_error* err, F&& f) noexcept {
  try {
    return std::forward<F>(f)();
  } catch (const std::bad_alloc&) {
    return fail(err, P2PSIP_ERR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(err, P2PSIP_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(err, P2PSIP_ERR_INTERNAL, "internal error");
  }
}

/// The p2psip_error a callback receives for `r`.
template <class R>
p2psip_error error_of(const R& r) {
  p2psip_error e{};
  if (r) {
    set_ok(&e);
  } else {
    fail(&e, r.error());
  }
  return e;
}

// ---- packing results into one block ----

/// Bytes and strings laid out after the structs of a block: first counted, then copied.
class tail {
 public:
  void count(std::size_t n) { size_ += n; }
  void count_string(std::string_view s) { size_ += s.size() + 1; }
  std::size_t size() const { return size_; }
  void start(char* at) { at_ = at; }
  const uint8_t* bytes(const cl::bytes& b) {
    if (b.empty()) return nullptr;
    std::memcpy(at_, b.data(), b.size());
    const auto* out = reinterpret_cast<const uint8_t*>(at_);
    at_ += b.size();
    return out;
  }
  const char* string(std::string_view s) {
    if (!s.empty()) std::memcpy(at_, s.data(), s.size());
    at_[s.size()] = '\0';
    const char* out = at_;
    at_ += s.size() + 1;
    return out;
  }

 private:
  std::size_t size_ = 0;
  char* at_ = nullptr;
};

/// One block holding the values' array and everything it points to; nullptr when empty.
/// Throws std::bad_alloc when malloc fails.
p2psip_owned_value* pack_values(const std::vector<cl::owned_value>& values) {
  if (values.empty()) return nullptr;
  tail t;
  for (const auto& v : values) {
    t.count_string(v.owner_node_id);
    t.count_string(v.owner_user);
    t.count(v.value.size());
  }
  const auto head = sizeof(p2psip_owned_value) * values.size();
  void* block = std::malloc(head + t.size());
  if (!block) throw std::bad_alloc();
  auto* out = static_cast<p2psip_owned_value*>(block);
  t.start(static_cast<char*>(block) + head);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto& v = values[i];
    out[i].owner_node_id = t.string(v.owner_node_id);
    out[i].owner_user = t.string(v.owner_user);
    out[i].value = t.bytes(v.value);
    out[i].value_size = v.value.size();
    out[i].storage_time = v.storage_time;
    out[i].lifetime = v.lifetime;
  }
  return out;
}

p2psip_data_model model_to_c(cl::data_model m) {
  switch (m) {
    case cl::data_model::single_value: return P2PSIP_SINGLE_VALUE;
    case cl::data_model::array: return P2PSIP_ARRAY;
    case cl::data_model::dictionary: return P2PSIP_DICTIONARY;
  }
  return P2PSIP_SINGLE_VALUE;
}

/// One block: the p2psip_kind_data, its items, their bytes and strings. Throws std::bad_alloc.
p2psip_kind_data* pack_kind_data(const cl::kind_data& d) {
  tail t;
  for (const auto& it : d.items) {
    t.count(it.key.size());
    t.count(it.value.size());
    t.count(it.hash.size());
    t.count_string(it.signer_node_id);
    t.count_string(it.signer_user);
  }
  // sizeof(p2psip_kind_data) is a multiple of its alignment, which p2psip_item's does not exceed
  // (both hold 64-bit fields and pointers).
  static_assert(alignof(p2psip_item) <= alignof(p2psip_kind_data));
  const auto head = sizeof(p2psip_kind_data) + sizeof(p2psip_item) * d.items.size();
  void* block = std::malloc(head + t.size());
  if (!block) throw std::bad_alloc();
  auto* out = static_cast<p2psip_kind_data*>(block);
  auto* items = reinterpret_cast<p2psip_item*>(static_cast<char*>(block) + sizeof *out);
  t.start(static_cast<char*>(block) + head);
  out->kind = d.kind;
  out->model = model_to_c(d.model);
  out->generation = d.generation;
  out->items = d.items.empty() ? nullptr : items;
  out->count = d.items.size();
  for (std::size_t i = 0; i < d.items.size(); ++i) {
    const auto& it = d.items[i];
    auto& o = items[i];
    o.index = it.index;
    o.key = t.bytes(it.key);
    o.key_size = it.key.size();
    o.exists = it.exists ? 1 : 0;
    o.value = t.bytes(it.value);
    o.value_size = it.value.size();
    o.lifetime = it.lifetime;
    o.storage_time = it.storage_time;
    o.signer_node_id = t.string(it.signer_node_id);
    o.signer_user = t.string(it.signer_user);
    o.value_length = it.value_length;
    o.hash = t.bytes(it.hash);
    o.hash_size = it.hash.size();
  }
  return out;
}

/// One block: the bindings, their route pointer arrays, then the strings. Throws std::bad_alloc.
p2psip_sip_binding* pack_bindings(const std::vector<cl::sip_binding>& bindings) {
  if (bindings.empty()) return nullptr;
  tail t;
  std::size_t hops = 0;
  for (const auto& b : bindings) {
    t.count_string(b.aor);
    t.count_string(b.owner_node_id);
    t.count_string(b.owner_user);
    t.count_string(b.contact.uri);
    t.count_string(b.contact.contact_prefs);
    for (const auto& h : b.contact.route) t.count_string(h);
    hops += b.contact.route.size();
  }
  static_assert(alignof(const char*) <= alignof(p2psip_sip_binding));
  const auto head = sizeof(p2psip_sip_binding) * bindings.size() + sizeof(const char*) * hops;
  void* block = std::malloc(head + t.size());
  if (!block) throw std::bad_alloc();
  auto* out = static_cast<p2psip_sip_binding*>(block);
  auto* route_at = reinterpret_cast<const char**>(out + bindings.size());
  t.start(static_cast<char*>(block) + head);
  for (std::size_t i = 0; i < bindings.size(); ++i) {
    const auto& b = bindings[i];
    auto& o = out[i];
    o.aor = t.string(b.aor);
    o.owner_node_id = t.string(b.owner_node_id);
    o.owner_user = t.string(b.owner_user);
    o.uri = t.string(b.contact.uri);
    o.contact_prefs = t.string(b.contact.contact_prefs);
    o.lifetime = b.lifetime;
    o.route = b.contact.route.empty() ? nullptr : route_at;
    o.route_count = b.contact.route.size();
    for (const auto& h : b.contact.route) *route_at++ = t.string(h);
  }
  return out;
}

/// One block: the response, then its strings and body. Throws std::bad_alloc.
p2psip_sip_response* pack_response(const cl::sip_response& r) {
  tail t;
  t.count_string(r.reason);
  t.count_string(r.call_id);
  t.count_string(r.content_type);
  t.count(r.body.size());
  const auto head = sizeof(p2psip_sip_response);
  void* block = std::malloc(head + t.size());
  if (!block) throw std::bad_alloc();
  auto* out = static_cast<p2psip_sip_response*>(block);
  t.start(static_cast<char*>(block) + head);
  out->status = r.status;
  out->reason = t.string(r.reason);
  out->call_id = t.string(r.call_id);
  out->content_type = t.string(r.content_type);
  out->body = t.bytes(r.body);
  out->body_size = r.body.size();
  out->local = r.local ? 1 : 0;
  return out;
}

/// `r` seen through C: pointers into `r`, valid while it lives (progress callbacks).
p2psip_sip_response view_of(const cl::sip_response& r) {
  p2psip_sip_response v{};
  v.status = r.status;
  v.reason = r.reason.c_str();
  v.call_id = r.call_id.c_str();
  v.content_type = r.content_type.c_str();
  v.body = r.body.empty() ? nullptr : r.body.data();
  v.body_size = r.body.size();
  v.local = r.local ? 1 : 0;
  return v;
}

p2psip_sip_request view_of(const cl::sip_request& r) {
  p2psip_sip_request v{};
  v.method = r.method.c_str();
  v.request_uri = r.request_uri.c_str();
  v.from = r.from.c_str();
  v.to = r.to.c_str();
  v.call_id = r.call_id.c_str();
  v.content_type = r.content_type.c_str();
  v.body = r.body.empty() ? nullptr : r.body.data();
  v.body_size = r.body.size();
  return v;
}

/// Calls the application's request callback and copies its answer (500 if it is unusable).
cl::sip_response answer_with(p2psip_sip_request_fn fn, void* user, const cl::sip_request& r) {
  cl::sip_response out;
  try {
    const auto request = view_of(r);
    p2psip_sip_answer answer{};
    answer.struct_size = sizeof answer;
    answer.status = 200;
    fn(user, &request, &answer);
    if (answer.status < 200 || answer.status > 699 || (!answer.body && answer.body_size != 0)) {
      out.status = 500;
      return out;
    }
    out.status = answer.status;
    if (answer.reason) out.reason = answer.reason;
    if (answer.content_type) out.content_type = answer.content_type;
    if (answer.body) out.body.assign(answer.body, answer.body + answer.body_size);
  } catch (...) {
    out = cl::sip_response{};
    out.status = 500;
  }
  return out;
}

using kind_data_block = std::unique_ptr<p2psip_kind_data, decltype(&std::free)>;
using values_block = std::unique_ptr<p2psip_owned_value, decltype(&std::free)>;

void fill_peer(p2psip_peer_info* out, const cl::peer_info& p) {
  copy_to(out->address, sizeof out->address, p.address);
  copy_to(out->node_id, sizeof out->node_id, p.node_id);
}

void fill_find(p2psip_find_result* out, const std::optional<std::string>& found) {
  out->found = found ? 1 : 0;
  copy_to(out->resource_id, sizeof out->resource_id, found ? *found : std::string_view{});
}

void fill_ping(p2psip_ping_info* out, const cl::ping_info& p) {
  copy_to(out->responder_node_id, sizeof out->responder_node_id, p.responder_node_id);
  out->round_trip_us = static_cast<std::uint64_t>(std::max<std::int64_t>(0, p.round_trip.count()));
}

// ---- inputs ----

/// `p` as bytes; `ok` false when p is NULL with a non-zero size.
bool to_bytes(const uint8_t* p, std::size_t n, cl::bytes& out) {
  if (!p && n != 0) return false;
  out.assign(p, p + n);
  return true;
}

/// The C items as SDK items, or an error message.
std::variant<std::vector<cl::item>, std::string> items_of(const p2psip_item* items,
                                                          std::size_t count) {
  if (!items && count != 0) return std::string("items is NULL");
  std::vector<cl::item> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    cl::item it;
    it.index = items[i].index;
    it.lifetime = items[i].lifetime;
    if (!to_bytes(items[i].key, items[i].key_size, it.key)) {
      return "item " + std::to_string(i) + ": key is NULL";
    }
    if (!to_bytes(items[i].value, items[i].value_size, it.value)) {
      return "item " + std::to_string(i) + ": value is NULL";
    }
    out.push_back(std::move(it));
  }
  return out;
}

std::variant<cl::selection, std::string> selection_of(const p2psip_selection* which) {
  cl::selection s;
  if (!which) return s;
  if ((!which->ranges && which->range_count != 0) || (!which->keys && which->key_count != 0)) {
    return std::string("selection: ranges or keys is NULL");
  }
  for (std::size_t i = 0; i < which->range_count; ++i) {
    s.ranges.emplace_back(which->ranges[i].first, which->ranges[i].last);
  }
  for (std::size_t i = 0; i < which->key_count; ++i) {
    cl::bytes k;
    if (!to_bytes(which->keys[i].data, which->keys[i].size, k)) {
      return "selection: key " + std::to_string(i) + " is NULL";
    }
    s.keys_.push_back(std::move(k));
  }
  return s;
}

cl::store_options store_options_of(const p2psip_store_options* o) {
  cl::store_options s;
  if (o) {
    s.lifetime = o->lifetime;
    s.generation = o->generation;
  }
  return s;
}

/// `options` as the C++ client's, reading only the fields inside its struct_size; an error
/// message when something is wrong.
std::variant<cl::client_options, std::string> options_of(const p2psip_client_options* in) {
  if (in->struct_size < P2PSIP_CLIENT_OPTIONS_SIZE_V1) {
    return "options struct_size " + std::to_string(in->struct_size) +
           " is below the first "
           "version's " +
           std::to_string(P2PSIP_CLIENT_OPTIONS_SIZE_V1) +
           " (fill the options with p2psip_client_options_init)";
  }
  // Fields the caller's (older) struct lacks keep the defaults of init.
  p2psip_client_options o;
  p2psip_client_options_init(&o);
  std::memcpy(&o, in, std::min(in->struct_size, sizeof o));
  if (!o.config_file || !o.certificate_file || !o.key_file) {
    return std::string("config_file, certificate_file and key_file are required");
  }
  if (!o.peers && o.peer_count != 0) return std::string("peers is NULL");
  cl::client_options out;
  out.config_file = o.config_file;
  out.certificate_file = o.certificate_file;
  out.key_file = o.key_file;
  for (std::size_t i = 0; i < o.peer_count; ++i) {
    if (!o.peers[i]) return "peer " + std::to_string(i) + " is NULL";
    out.peers.emplace_back(o.peers[i]);
  }
  if (o.overlay) out.overlay = o.overlay;
  out.operation_timeout = std::chrono::milliseconds(o.operation_timeout_ms);
  out.request_timeout = std::chrono::milliseconds(o.request_timeout_ms);
  out.keepalive_interval = std::chrono::milliseconds(o.keepalive_interval_ms);
  if (auto* log = o.log) {
    void* user = o.log_user;
    out.log = [log, user](std::string_view text) { log(user, text.data(), text.size()); };
  }
  if (auto* dispatch = o.dispatch) {
    void* user = o.dispatch_user;
    out.dispatcher = [dispatch, user](std::function<void()> f) {
      p2psip_task* task = nullptr;
      try {
        task = new p2psip_task{std::move(f)};
      } catch (...) {
        // No memory for the task: run the callback here rather than drop it.
        if (f) f();
        return;
      }
      dispatch(user, task);
    };
  }
  // As an int: a C caller may store any int there, which C++ may not load as the enum.
  int routing = 0;
  static_assert(sizeof routing == sizeof o.sip_routing);
  std::memcpy(&routing, &o.sip_routing, sizeof routing);
  if (routing == P2PSIP_SIP_ROUTING_DIRECT) {
    out.sip_routing_mode = cl::sip_routing::direct;
  } else if (routing == P2PSIP_SIP_ROUTING_OUTBOUND_PROXY) {
    out.sip_routing_mode = cl::sip_routing::outbound_proxy;
  } else {
    return "sip_routing " + std::to_string(routing) +
           " is neither P2PSIP_SIP_ROUTING_DIRECT nor P2PSIP_SIP_ROUTING_OUTBOUND_PROXY";
  }
  if (o.sip_listen) out.sip_listen = o.sip_listen;
  return out;
}

/// The C call options as the C++ ones, or an error message.
std::variant<cl::call_options, std::string> call_options_of(const p2psip_call_options* in) {
  cl::call_options out;
  if (!in) return out;
  if (in->struct_size < P2PSIP_CALL_OPTIONS_SIZE_V1) {
    return "call options struct_size " + std::to_string(in->struct_size) +
           " is below the first version's " + std::to_string(P2PSIP_CALL_OPTIONS_SIZE_V1) +
           " (fill the options with p2psip_call_options_init)";
  }
  p2psip_call_options o;
  p2psip_call_options_init(&o);
  std::memcpy(&o, in, std::min(in->struct_size, sizeof o));
  if (!to_bytes(o.offer, o.offer_size, out.offer)) return std::string("offer is NULL");
  if (o.content_type) out.content_type = o.content_type;
  if (o.call_id) out.call_id = o.call_id;
  if (auto* progress = o.progress) {
    void* user = o.progress_user;
    out.progress = [progress, user](const cl::sip_response& r) {
      const auto v = view_of(r);
      progress(user, &v);
    };
  }
  return out;
}

/// The SDK callback that hands a final response (or the error) to a C callback.
std::function<void(cl::result<cl::sip_response>)> response_callback(p2psip_sip_response_fn done,
                                                                    void* user) {
  return [done, user](cl::result<cl::sip_response> r) {
    const auto e = error_of(r);
    if (!r) {
      done(user, &e, nullptr);
      return;
    }
    const auto v = view_of(*r);
    done(user, &e, &v);
  };
}

constexpr std::string_view null_client = "client is NULL";
constexpr std::string_view null_name = "name is NULL";
constexpr std::string_view null_out = "an output pointer is NULL";

p2psip_errc store_or_remove(p2psip_client* client, const char* resource, uint32_t kind,
                            const p2psip_item* items, size_t count,
                            const p2psip_store_options* options, uint64_t* generation,
                            p2psip_error* err, bool remove) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!resource) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "resource is NULL");
    auto in = items_of(items, count);
    if (auto* msg = std::get_if<std::string>(&in)) {
      return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, *msg);
    }
    auto& list = std::get<std::vector<cl::item>>(in);
    const auto o = store_options_of(options);
    auto r = remove ? client->impl->remove_items(resource, kind, std::move(list), o)
                    : client->impl->store(resource, kind, std::move(list), o);
    if (!r) return fail(err, r.error());
    if (generation) *generation = *r;
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc fetch_or_stat(p2psip_client* client, const char* resource, uint32_t kind,
                          const p2psip_selection* which, p2psip_kind_data** data, p2psip_error* err,
                          bool stat) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!data) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_out);
    *data = nullptr;
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!resource) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "resource is NULL");
    auto sel = selection_of(which);
    if (auto* msg = std::get_if<std::string>(&sel)) {
      return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, *msg);
    }
    auto& s = std::get<cl::selection>(sel);
    auto r = stat ? client->impl->stat(resource, kind, std::move(s))
                  : client->impl->fetch(resource, kind, std::move(s));
    if (!r) return fail(err, r.error());
    *data = pack_kind_data(*r);
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc store_or_remove_async(p2psip_client* client, const char* resource, uint32_t kind,
                                  const p2psip_item* items, size_t count,
                                  const p2psip_store_options* options, p2psip_generation_fn done,
                                  void* user, bool remove) {
  return guarded(nullptr, [&]() -> p2psip_errc {
    if (!client || !resource || !done) return P2PSIP_ERR_INVALID_ARGUMENT;
    auto in = items_of(items, count);
    if (std::holds_alternative<std::string>(in)) return P2PSIP_ERR_INVALID_ARGUMENT;
    auto& list = std::get<std::vector<cl::item>>(in);
    auto cb = [done, user](cl::result<std::uint64_t> r) {
      const auto e = error_of(r);
      done(user, &e, r ? *r : 0);
    };
    const auto o = store_options_of(options);
    if (remove) {
      client->impl->remove_items_async(resource, kind, std::move(list), o, std::move(cb));
    } else {
      client->impl->store_async(resource, kind, std::move(list), o, std::move(cb));
    }
    return P2PSIP_OK;
  });
}

p2psip_errc fetch_or_stat_async(p2psip_client* client, const char* resource, uint32_t kind,
                                const p2psip_selection* which, p2psip_kind_data_fn done, void* user,
                                bool stat) {
  return guarded(nullptr, [&]() -> p2psip_errc {
    if (!client || !resource || !done) return P2PSIP_ERR_INVALID_ARGUMENT;
    auto sel = selection_of(which);
    if (std::holds_alternative<std::string>(sel)) return P2PSIP_ERR_INVALID_ARGUMENT;
    auto& s = std::get<cl::selection>(sel);
    auto cb = [done, user](cl::result<cl::kind_data> r) {
      auto e = error_of(r);
      kind_data_block data(nullptr, &std::free);
      if (r) {
        try {
          data.reset(pack_kind_data(*r));
        } catch (...) {
          fail(&e, P2PSIP_ERR_OUT_OF_MEMORY, "out of memory");
        }
      }
      done(user, &e, data.get());
    };
    if (stat) {
      client->impl->stat_async(resource, kind, std::move(s), std::move(cb));
    } else {
      client->impl->fetch_async(resource, kind, std::move(s), std::move(cb));
    }
    return P2PSIP_OK;
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------------

extern "C" {

const char* p2psip_errc_message(p2psip_errc code) {
  switch (code) {
    case P2PSIP_OK: return "success";
    case P2PSIP_ERR_INVALID_ARGUMENT: return "invalid argument";
    case P2PSIP_ERR_BAD_CONFIGURATION: return "bad overlay configuration";
    case P2PSIP_ERR_BAD_CREDENTIALS: return "bad certificate or key";
    case P2PSIP_ERR_NO_PEER: return "no peer could be attached to";
    case P2PSIP_ERR_TIMEOUT: return "no answer within the operation's time";
    case P2PSIP_ERR_NOT_FOUND: return "not found";
    case P2PSIP_ERR_FORBIDDEN: return "forbidden by the access policy";
    case P2PSIP_ERR_UNKNOWN_KIND: return "unknown kind";
    case P2PSIP_ERR_TOO_LARGE: return "too large";
    case P2PSIP_ERR_GENERATION_CONFLICT: return "generation counter conflict";
    case P2PSIP_ERR_INVALID_ANSWER: return "invalid answer";
    case P2PSIP_ERR_OVERLAY_ERROR: return "overlay error";
    case P2PSIP_ERR_STOPPED: return "the client was stopped";
    case P2PSIP_ERR_WOULD_DEADLOCK: return "blocking call on the SDK's I/O thread";
    case P2PSIP_ERR_OUT_OF_MEMORY: return "out of memory";
    case P2PSIP_ERR_INTERNAL: return "internal error";
  }
  return "unknown error code";
}

const char* p2psip_version(void) {
  return P2PSIP_VERSION_STRING;
}

uint32_t p2psip_version_number(void) {
  return P2PSIP_VERSION_MAJOR * 10000u + P2PSIP_VERSION_MINOR * 100u + P2PSIP_VERSION_PATCH;
}

void p2psip_client_options_init(p2psip_client_options* options) {
  if (!options) return;
  *options = p2psip_client_options{};
  options->struct_size = sizeof *options;
  options->operation_timeout_ms = 30'000;
  options->request_timeout_ms = 10'000;
  options->keepalive_interval_ms = 20'000;
  options->sip_routing = P2PSIP_SIP_ROUTING_DIRECT;
}

p2psip_errc p2psip_client_create(const p2psip_client_options* options, p2psip_client** out,
                                 p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!out) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_out);
    *out = nullptr;
    if (!options) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "options is NULL");
    auto o = options_of(options);
    if (auto* msg = std::get_if<std::string>(&o)) {
      return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, *msg);
    }
    auto made = cl::client::create(std::move(std::get<cl::client_options>(o)));
    if (!made) return fail(err, made.error());
    auto handle = std::make_unique<p2psip_client>();
    handle->impl = std::move(*made);
    *out = handle.release();
    set_ok(err);
    return P2PSIP_OK;
  });
}

void p2psip_client_destroy(p2psip_client* client) {
  try {
    delete client;
  } catch (...) {
    // ~client does not throw; nothing may leave this function either way.
  }
}

void p2psip_client_stop(p2psip_client* client) {
  try {
    if (client) client->impl->stop();
  } catch (...) {
  }
}

p2psip_errc p2psip_client_wait_attached(p2psip_client* client, uint32_t timeout_ms,
                                        p2psip_peer_info* peer, p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    auto r = client->impl->wait_attached(std::chrono::milliseconds(timeout_ms));
    if (!r) return fail(err, r.error());
    if (peer) fill_peer(peer, *r);
    set_ok(err);
    return P2PSIP_OK;
  });
}

int p2psip_client_attached_peer(const p2psip_client* client, p2psip_peer_info* peer) {
  try {
    if (!client) return 0;
    const auto p = client->impl->attached_peer();
    if (!p) return 0;
    if (peer) fill_peer(peer, *p);
    return 1;
  } catch (...) {
    return 0;
  }
}

void p2psip_client_node_id(const p2psip_client* client, char out[P2PSIP_ID_HEX_SIZE]) {
  if (!out) return;
  out[0] = '\0';
  try {
    if (client) copy_to(out, P2PSIP_ID_HEX_SIZE, client->impl->node_id());
  } catch (...) {
  }
}

void p2psip_task_run(p2psip_task* task) {
  if (!task) return;
  try {
    if (task->run) task->run();
  } catch (...) {
  }
  delete task;
}

int p2psip_client_model_of(const p2psip_client* client, uint32_t kind, p2psip_data_model* model) {
  try {
    if (!client) return 0;
    const auto m = client->impl->model_of(kind);
    if (!m) return 0;
    if (model) *model = model_to_c(*m);
    return 1;
  } catch (...) {
    return 0;
  }
}

// ---- put / get / remove ----

void p2psip_values_free(p2psip_owned_value* values) {
  std::free(values);
}

p2psip_errc p2psip_client_put(p2psip_client* client, const char* name, const uint8_t* value,
                              size_t size, uint32_t lifetime_seconds, p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!name) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_name);
    cl::bytes v;
    if (!to_bytes(value, size, v)) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "value is NULL");
    auto r = client->impl->put(name, std::move(v), lifetime_seconds);
    if (!r) return fail(err, r.error());
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_get(p2psip_client* client, const char* name, p2psip_owned_value** values,
                              size_t* count, p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!values || !count) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_out);
    *values = nullptr;
    *count = 0;
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!name) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_name);
    auto r = client->impl->get(name);
    if (!r) return fail(err, r.error());
    *values = pack_values(*r);
    *count = r->size();
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_remove(p2psip_client* client, const char* name, p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!name) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_name);
    auto r = client->impl->remove(name);
    if (!r) return fail(err, r.error());
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_put_async(p2psip_client* client, const char* name, const uint8_t* value,
                                    size_t size, uint32_t lifetime_seconds, p2psip_done_fn done,
                                    void* user) {
  return guarded(nullptr, [&]() -> p2psip_errc {
    if (!client || !name || !done) return P2PSIP_ERR_INVALID_ARGUMENT;
    cl::bytes v;
    if (!to_bytes(value, size, v)) return P2PSIP_ERR_INVALID_ARGUMENT;
    client->impl->put_async(name, std::move(v), lifetime_seconds, [done, user](cl::result<void> r) {
      const auto e = error_of(r);
      done(user, &e);
    });
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_get_async(p2psip_client* client, const char* name, p2psip_values_fn done,
                                    void* user) {
  return guarded(nullptr, [&]() -> p2psip_errc {
    if (!client || !name || !done) return P2PSIP_ERR_INVALID_ARGUMENT;
    client->impl->get_async(name, [done, user](cl::result<std::vector<cl::owned_value>> r) {
      auto e = error_of(r);
      values_block values(nullptr, &std::free);
      std::size_t count = 0;
      if (r) {
        try {
          values.reset(pack_values(*r));
          count = r->size();
        } catch (...) {
          fail(&e, P2PSIP_ERR_OUT_OF_MEMORY, "out of memory");
        }
      }
      done(user, &e, values.get(), count);
    });
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_remove_async(p2psip_client* client, const char* name, p2psip_done_fn done,
                                       void* user) {
  return guarded(nullptr, [&]() -> p2psip_errc {
    if (!client || !name || !done) return P2PSIP_ERR_INVALID_ARGUMENT;
    client->impl->remove_async(name, [done, user](cl::result<void> r) {
      const auto e = error_of(r);
      done(user, &e);
    });
    return P2PSIP_OK;
  });
}

// ---- typed data ----

void p2psip_kind_data_free(p2psip_kind_data* data) {
  std::free(data);
}

p2psip_errc p2psip_client_store(p2psip_client* client, const char* resource, uint32_t kind,
                                const p2psip_item* items, size_t count,
                                const p2psip_store_options* options, uint64_t* generation,
                                p2psip_error* err) {
  return store_or_remove(client, resource, kind, items, count, options, generation, err, false);
}

p2psip_errc p2psip_client_remove_items(p2psip_client* client, const char* resource, uint32_t kind,
                                       const p2psip_item* items, size_t count,
                                       const p2psip_store_options* options, uint64_t* generation,
                                       p2psip_error* err) {
  return store_or_remove(client, resource, kind, items, count, options, generation, err, true);
}

p2psip_errc p2psip_client_fetch(p2psip_client* client, const char* resource, uint32_t kind,
                                const p2psip_selection* which, p2psip_kind_data** data,
                                p2psip_error* err) {
  return fetch_or_stat(client, resource, kind, which, data, err, false);
}

p2psip_errc p2psip_client_stat(p2psip_client* client, const char* resource, uint32_t kind,
                               const p2psip_selection* which, p2psip_kind_data** data,
                               p2psip_error* err) {
  return fetch_or_stat(client, resource, kind, which, data, err, true);
}

p2psip_errc p2psip_client_find(p2psip_client* client, const char* resource, uint32_t kind,
                               p2psip_find_result* result, p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!result) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_out);
    fill_find(result, std::nullopt);
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!resource) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "resource is NULL");
    auto r = client->impl->find(resource, kind);
    if (!r) return fail(err, r.error());
    fill_find(result, *r);
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_ping(p2psip_client* client, const char* resource, p2psip_ping_info* info,
                               p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    auto r = client->impl->ping(resource ? std::string_view(resource) : std::string_view{});
    if (!r) return fail(err, r.error());
    if (info) fill_ping(info, *r);
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_register_aor(p2psip_client* client, const char* aor,
                                       const char* forward_to, uint32_t lifetime_seconds,
                                       uint64_t* generation, p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (generation) *generation = 0;
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!aor) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "aor is NULL");
    cl::sip_contact contact;
    if (forward_to) contact.uri = forward_to;
    auto r = client->impl->register_aor(aor, contact, lifetime_seconds);
    if (!r) return fail(err, r.error());
    if (generation) *generation = *r;
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_unregister_aor(p2psip_client* client, const char* aor,
                                         uint64_t* generation, p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (generation) *generation = 0;
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!aor) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "aor is NULL");
    auto r = client->impl->unregister_aor(aor);
    if (!r) return fail(err, r.error());
    if (generation) *generation = *r;
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_resolve(p2psip_client* client, const char* aor,
                                  p2psip_sip_binding** bindings, size_t* count, p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!bindings || !count) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_out);
    *bindings = nullptr;
    *count = 0;
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!aor) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "aor is NULL");
    auto r = client->impl->resolve(aor);
    if (!r) return fail(err, r.error());
    *bindings = pack_bindings(*r);
    *count = r->size();
    set_ok(err);
    return P2PSIP_OK;
  });
}

void p2psip_sip_bindings_free(p2psip_sip_binding* bindings) {
  std::free(bindings);
}

// ---- SIP user agent ----

void p2psip_sip_response_free(p2psip_sip_response* response) {
  std::free(response);
}

p2psip_errc p2psip_client_sip_register(p2psip_client* client, const char* aor,
                                       uint32_t lifetime_seconds, p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!aor) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "aor is NULL");
    auto r = client->impl->sip_register(aor, lifetime_seconds);
    if (!r) return fail(err, r.error());
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_sip_unregister(p2psip_client* client, p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    auto r = client->impl->sip_unregister();
    if (!r) return fail(err, r.error());
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_send_message(p2psip_client* client, const char* to, const uint8_t* body,
                                       size_t size, const char* content_type,
                                       p2psip_sip_response** response, p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!response) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_out);
    *response = nullptr;
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!to) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "to is NULL");
    cl::bytes b;
    if (!to_bytes(body, size, b)) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "body is NULL");
    auto r =
        client->impl->send_message(to, std::move(b), content_type ? content_type : "text/plain");
    if (!r) return fail(err, r.error());
    *response = pack_response(*r);
    set_ok(err);
    return P2PSIP_OK;
  });
}

void p2psip_call_options_init(p2psip_call_options* options) {
  if (!options) return;
  *options = p2psip_call_options{};
  options->struct_size = sizeof *options;
}

p2psip_errc p2psip_client_call(p2psip_client* client, const char* to,
                               const p2psip_call_options* options, p2psip_sip_response** response,
                               p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!response) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_out);
    *response = nullptr;
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!to) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "to is NULL");
    auto o = call_options_of(options);
    if (auto* msg = std::get_if<std::string>(&o)) {
      return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, *msg);
    }
    auto r = client->impl->call(to, std::move(std::get<cl::call_options>(o)));
    if (!r) return fail(err, r.error());
    *response = pack_response(*r);
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_hang_up(p2psip_client* client, const char* call_id, p2psip_error* err) {
  return guarded(err, [&]() -> p2psip_errc {
    if (!client) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, null_client);
    if (!call_id) return fail(err, P2PSIP_ERR_INVALID_ARGUMENT, "call_id is NULL");
    auto r = client->impl->hang_up(call_id);
    if (!r) return fail(err, r.error());
    set_ok(err);
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_sip_register_async(p2psip_client* client, const char* aor,
                                             uint32_t lifetime_seconds, p2psip_done_fn done,
                                             void* user) {
  return guarded(nullptr, [&]() -> p2psip_errc {
    if (!client || !aor || !done) return P2PSIP_ERR_INVALID_ARGUMENT;
    client->impl->sip_register_async(aor, lifetime_seconds, [done, user](cl::result<void> r) {
      const auto e = error_of(r);
      done(user, &e);
    });
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_sip_unregister_async(p2psip_client* client, p2psip_done_fn done,
                                               void* user) {
  return guarded(nullptr, [&]() -> p2psip_errc {
    if (!client || !done) return P2PSIP_ERR_INVALID_ARGUMENT;
    client->impl->sip_unregister_async([done, user](cl::result<void> r) {
      const auto e = error_of(r);
      done(user, &e);
    });
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_send_message_async(p2psip_client* client, const char* to,
                                             const uint8_t* body, size_t size,
                                             const char* content_type, p2psip_sip_response_fn done,
                                             void* user) {
  return guarded(nullptr, [&]() -> p2psip_errc {
    if (!client || !to || !done) return P2PSIP_ERR_INVALID_ARGUMENT;
    cl::bytes b;
    if (!to_bytes(body, size, b)) return P2PSIP_ERR_INVALID_ARGUMENT;
    client->impl->send_message_async(to, std::move(b), content_type ? content_type : "text/plain",
                                     response_callback(done, user));
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_call_async(p2psip_client* client, const char* to,
                                     const p2psip_call_options* options,
                                     p2psip_sip_response_fn done, void* user) {
  return guarded(nullptr, [&]() -> p2psip_errc {
    if (!client || !to || !done) return P2PSIP_ERR_INVALID_ARGUMENT;
    auto o = call_options_of(options);
    if (std::holds_alternative<std::string>(o)) return P2PSIP_ERR_INVALID_ARGUMENT;
    client->impl->call_async(to, std::move(std::get<cl::call_options>(o)),
                             response_callback(done, user));
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_on_sip_request(p2psip_client* client, p2psip_sip_request_fn fn,
                                         void* user) {
  return guarded(nullptr, [&]() -> p2psip_errc {
    if (!client) return P2PSIP_ERR_INVALID_ARGUMENT;
    if (!fn) {
      client->impl->on_sip_request({});
      return P2PSIP_OK;
    }
    client->impl->on_sip_request(
        [fn, user](const cl::sip_request& r) { return answer_with(fn, user, r); });
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_store_async(p2psip_client* client, const char* resource, uint32_t kind,
                                      const p2psip_item* items, size_t count,
                                      const p2psip_store_options* options,
                                      p2psip_generation_fn done, void* user) {
  return store_or_remove_async(client, resource, kind, items, count, options, done, user, false);
}

p2psip_errc p2psip_client_remove_items_async(p2psip_client* client, const char* resource,
                                             uint32_t kind, const p2psip_item* items, size_t count,
                                             const p2psip_store_options* options,
                                             p2psip_generation_fn done, void* user) {
  return store_or_remove_async(client, resource, kind, items, count, options, done, user, true);
}

p2psip_errc p2psip_client_fetch_async(p2psip_client* client, const char* resource, uint32_t kind,
                                      const p2psip_selection* which, p2psip_kind_data_fn done,
                                      void* user) {
  return fetch_or_stat_async(client, resource, kind, which, done, user, false);
}

p2psip_errc p2psip_client_stat_async(p2psip_client* client, const char* resource, uint32_t kind,
                                     const p2psip_selection* which, p2psip_kind_data_fn done,
                                     void* user) {
  return fetch_or_stat_async(client, resource, kind, which, done, user, true);
}

p2psip_errc p2psip_client_find_async(p2psip_client* client, const char* resource, uint32_t kind,
                                     p2psip_find_fn done, void* user) {
  return guarded(nullptr, [&]() -> p2psip_errc {
    if (!client || !resource || !done) return P2PSIP_ERR_INVALID_ARGUMENT;
    client->impl->find_async(resource, kind,
                             [done, user](cl::result<std::optional<std::string>> r) {
                               const auto e = error_of(r);
                               p2psip_find_result found{};
                               if (r) fill_find(&found, *r);
                               done(user, &e, r ? &found : nullptr);
                             });
    return P2PSIP_OK;
  });
}

p2psip_errc p2psip_client_ping_async(p2psip_client* client, const char* resource,
                                     p2psip_ping_fn done, void* user) {
  return guarded(nullptr, [&]() -> p2psip_errc {
    if (!client || !done) return P2PSIP_ERR_INVALID_ARGUMENT;
    client->impl->ping_async(resource ? std::string_view(resource) : std::string_view{},
                             [done, user](cl::result<cl::ping_info> r) {
                               const auto e = error_of(r);
                               p2psip_ping_info info{};
                               if (r) fill_ping(&info, *r);
                               done(user, &e, r ? &info : nullptr);
                             });
    return P2PSIP_OK;
  });
}

}  // extern "C"
