// The client SDK's public API (client.hpp) on its engine (client_impl.hpp): creating a client,
// and each operation as a request built, sent through the engine and its outcome turned into
// the operation's result.
#include "p2psip/client/client.hpp"

#include "client_impl.hpp"
#include "peer_address.hpp"

namespace p2psip::client {

namespace {

std::variant<pe::client_config, struct error> make_node_config(const client_options& o,
                                                               const client_setup& s) {
  pe::client_config core;
  core.transport = pe::transport_config_of(s.config(), s.creds);
  core.transport.request_timeout = o.request_timeout;
  for (const auto& p : o.peers) {
    auto addresses = resolve_peer(p);  // host names too: here, never on the I/O thread
    if (auto* e = std::get_if<struct error>(&addresses)) return *e;
    for (const auto& a : std::get<std::vector<pr::ip_address_port>>(addresses)) {
      core.bootstrap.push_back(a);
    }
  }
  if (core.bootstrap.empty()) core.bootstrap = s.config().bootstrap_nodes;
  if (core.bootstrap.empty()) {
    return fail(errc::invalid_argument,
                "no peer to attach to: give peers, or bootstrap-node entries in " + o.config_file);
  }
  return core;
}

}  // namespace

result<std::unique_ptr<client>> client::create(client_options options) {
  if (options.config_file.empty()) return {errc::invalid_argument, "no configuration file given"};
  if (options.certificate_file.empty() || options.key_file.empty()) {
    return {errc::invalid_argument, "a certificate file and a key file are required"};
  }
  if (options.operation_timeout.count() <= 0 || options.request_timeout.count() <= 0 ||
      options.keepalive_interval.count() <= 0) {
    return {errc::invalid_argument, "timeouts and the keepalive interval must be positive"};
  }
  auto overlay = shared_overlay_setup(options.config_file, options.overlay);
  if (!overlay) return {errc::bad_configuration, overlay.error().message};
  auto own = pe::load_node_credentials(**overlay, options.certificate_file, options.key_file);
  if (!own) return {errc::bad_credentials, own.error().message};
  client_setup setup{std::move(*overlay), std::move(own->creds), std::move(own->tls)};
  if (setup.creds.signing.cert().node_ids().size() != 1) {
    // RFC 6940 4.2.1: a client presents a certificate with one Node-ID.
    return {errc::bad_credentials,
            options.certificate_file + ": a client certificate must carry exactly one Node-ID"};
  }
  auto core = make_node_config(options, setup);
  if (auto* e = std::get_if<struct error>(&core)) return *e;
  auto p = impl::make(std::move(options), std::move(setup));
  p->start(std::move(std::get<pe::client_config>(core)));
  return std::make_unique<client>(std::move(p));
}

client::client(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

client::~client() {
  if (!impl_) return;
  // Held until the engine is deleted, so that when this was the process's last client its
  // threads end here, joined, rather than on themselves a little later.
  auto io = impl_->io_thread;
  std::shared_ptr<detail::callback_thread> callbacks;
  if (impl_->callbacks) callbacks = impl_->callbacks->thread();
  auto deleted = impl_->deleted.get_future();
  impl_->destroy();
  // Deleted on the I/O thread (impl::make) once the shutdown's handlers have let go of it. The
  // wait is bounded all the same: past it, the threads end by themselves instead.
  impl_.reset();
  if (!io->is_current()) (void)deleted.wait_for(std::chrono::seconds(10));
  callbacks.reset();
  io.reset();
}

void client::stop() {
  impl_->shutdown();
}

std::string client::node_id() const {
  return impl_->own_id.hex();
}

std::optional<data_model> client::model_of(std::uint32_t kind) const {
  const auto m = impl_->body_context.model_of(kind);
  if (!m) return std::nullopt;
  return model_from(*m);
}

std::optional<peer_info> client::attached_peer() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->attached;
}

result<peer_info> client::wait_attached(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->state_mutex);
  std::optional<std::string> hopeless;
  impl_->attached_cv.wait_for(lock, timeout, [&] {
    hopeless = impl_->unreachable_locked();
    return impl_->attached || impl_->shutting_down || hopeless;
  });
  if (impl_->attached) return *impl_->attached;
  if (impl_->shutting_down) return {errc::stopped, "the client was stopped"};
  if (hopeless) return {errc::no_peer, *hopeless};
  return {errc::no_peer, "no peer attached within " + std::to_string(timeout.count()) + " ms (" +
                             impl_->dials_text_locked() + ")"};
}

// ---- operations: each starts on the I/O thread; `direct` is set for the blocking forms ----

namespace {

using impl = client::impl;
template <class T>
using callback = client::callback<T>;

result<kind_data> unknown_kind_error(std::uint32_t kind) {
  return {errc::unknown_kind,
          "kind " + config::kind_display_name(kind) + " is not in the overlay configuration"};
}

void start_store(impl& p, std::string res, std::uint32_t kind, std::vector<item> items,
                 store_options options, bool tombstones, callback<std::uint64_t> done,
                 bool direct) {
  p.on_io(done, direct,
          [res = std::move(res), kind, items = std::move(items), options, tombstones, done,
           direct](impl& self) mutable {
            auto req = self.make_store(res, kind, items, options, tombstones);
            if (auto* e = std::get_if<struct error>(&req)) {
              self.deliver_result<std::uint64_t>(done, *e, direct);
              return;
            }
            auto& sr = std::get<pr::store_req>(req);
            auto dest = std::vector<pr::destination>{pr::to_destination(sr.resource)};
            self.begin(self.make_operation<std::uint64_t>(
                std::move(dest), std::move(sr), std::move(done), direct,
                [&self, kind](pe::outcome&& m) -> result<std::uint64_t> {
                  auto ans = self.answer_of<pr::store_ans>(m, "StoreAns");
                  if (auto* e = std::get_if<struct error>(&ans)) return *e;
                  for (const auto& kr : std::get<pr::store_ans>(ans).kind_responses) {
                    if (kr.kind == kind) return kr.generation_counter;
                  }
                  return {errc::invalid_answer, "the StoreAns does not mention the kind stored"};
                }));
          });
}

/// Fetch (values) or Stat (lengths and hashes) of one kind.
void start_fetch(impl& p, std::string res, std::uint32_t kind, selection which, bool stat,
                 callback<kind_data> done, bool direct) {
  p.on_io(done, direct,
          [res = std::move(res), kind, which = std::move(which), stat, done,
           direct](impl& self) mutable {
            if (!self.body_context.model_of(kind)) {
              self.deliver_result<kind_data>(done, unknown_kind_error(kind), direct);
              return;
            }
            const auto resource = self.resource_of(res);
            std::vector<pr::stored_data_specifier> specifiers{self.specifier(kind, which)};
            pr::message_body request;
            if (stat) {
              request = pr::stat_req{resource, std::move(specifiers)};
            } else {
              request = pr::fetch_req{resource, std::move(specifiers)};
            }
            auto dest = std::vector<pr::destination>{pr::to_destination(resource)};
            self.begin(self.make_operation<kind_data>(
                std::move(dest), std::move(request), std::move(done), direct,
                [&self, resource, kind, stat](pe::outcome&& m) -> result<kind_data> {
                  auto r = stat ? self.kind_items<pr::stat_ans>(m, resource, kind)
                                : self.kind_items<pr::fetch_ans>(m, resource, kind);
                  if (auto* e = std::get_if<struct error>(&r)) return *e;
                  return std::get<kind_data>(std::move(r));
                }));
          });
}

void start_find(impl& p, std::string res, std::uint32_t kind,
                callback<std::optional<std::string>> done, bool direct) {
  using found = std::optional<std::string>;
  p.on_io(done, direct, [res = std::move(res), kind, done, direct](impl& self) mutable {
    if (!self.body_context.model_of(kind)) {
      self.deliver_result<found>(done, unknown_kind_error(kind).error(), direct);
      return;
    }
    pr::find_req req;
    req.resource = self.resource_of(res);
    req.kinds.push_back(kind);
    auto dest = std::vector<pr::destination>{pr::to_destination(req.resource)};
    self.begin(self.make_operation<found>(std::move(dest), req, std::move(done), direct,
                                          [&self, kind](pe::outcome&& m) -> result<found> {
                                            auto ans = self.answer_of<pr::find_ans>(m, "FindAns");
                                            if (auto* e = std::get_if<struct error>(&ans))
                                              return *e;
                                            for (const auto& r :
                                                 std::get<pr::find_ans>(ans).results) {
                                              if (r.kind != kind) continue;
                                              if (!r.found()) return found{};
                                              return found{r.closest.hex()};
                                            }
                                            return found{};
                                          }));
  });
}

void start_ping(impl& p, std::string res, callback<ping_info> done, bool direct) {
  p.on_io(done, direct, [res = std::move(res), done, direct](impl& self) mutable {
    std::vector<pr::destination> dest;
    if (!res.empty()) {
      dest.push_back(pr::to_destination(self.resource_of(res)));
    } else if (const auto peer = self.peer_node()) {
      dest.push_back(pr::to_destination(*peer));
    } else {
      // Not attached yet: address the wildcard Node-ID, which the first peer answers itself.
      dest.push_back(pr::to_destination(pr::node_id::wildcard(self.setup.config().node_id_length)));
    }
    const auto sent = steady::now();
    self.begin(self.make_operation<ping_info>(
        std::move(dest), pr::ping_req{}, std::move(done), direct,
        [&self, sent](pe::outcome&& m) -> result<ping_info> {
          auto ans = self.answer_of<pr::ping_ans>(m, "PingAns");
          if (auto* e = std::get_if<struct error>(&ans)) return *e;
          ping_info info;
          info.round_trip =
              std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - sent);
          // The node verified the signature on arrival; this names the signer.
          if (m.signer) info.responder_node_id = m.signer->node.hex();
          return info;
        }));
  });
}

/// This client's own entry of a put/get name: the generic kind's dictionary key is our Node-ID.
item own_entry(const impl& p) {
  item it;
  const auto id = p.own_id.view();
  it.key = bytes(id.begin(), id.end());
  return it;
}

void start_put(impl& p, std::string name, bytes value, std::uint32_t lifetime, callback<void> done,
               bool direct) {
  auto it = own_entry(p);
  it.value = std::move(value);
  store_options o;
  o.lifetime = lifetime;
  start_store(
      p, std::move(name), client::generic_kind, {std::move(it)}, o, false,
      [done](result<std::uint64_t> r) { r ? done(ok{}) : done(r.error()); }, direct);
}

void start_remove(impl& p, std::string name, callback<void> done, bool direct) {
  start_store(
      p, std::move(name), client::generic_kind, {own_entry(p)}, {}, true,
      [done](result<std::uint64_t> r) { r ? done(ok{}) : done(r.error()); }, direct);
}

void start_get(impl& p, std::string name, callback<std::vector<owned_value>> done, bool direct) {
  start_fetch(
      p, std::move(name), client::generic_kind, selection::all(), false,
      [done](result<kind_data> r) {
        if (!r) {
          done(r.error());
          return;
        }
        std::vector<owned_value> values;
        for (auto& it : r->items) {
          if (!it.exists) continue;
          owned_value v;
          v.owner_node_id = it.signer_node_id;
          v.owner_user = it.signer_user;
          v.value = std::move(it.value);
          v.storage_time = it.storage_time;
          v.lifetime = it.lifetime;
          values.push_back(std::move(v));
        }
        done(std::move(values));
      },
      direct);
}

}  // namespace

void fetch_all_async(client::impl& p, std::string resource, std::uint32_t kind,
                     client::callback<kind_data> done, bool on_io_thread) {
  start_fetch(p, std::move(resource), kind, selection::all(), false, std::move(done), on_io_thread);
}

void store_items_async(client::impl& p, std::string resource, std::uint32_t kind,
                       std::vector<item> items, bool tombstones,
                       client::callback<std::uint64_t> done, bool on_io_thread) {
  start_store(p, std::move(resource), kind, std::move(items), {}, tombstones, std::move(done),
              on_io_thread);
}

void client::put_async(std::string_view name, bytes value, std::uint32_t lifetime_seconds,
                       callback<void> done) {
  start_put(*impl_, std::string(name), std::move(value), lifetime_seconds, std::move(done), false);
}
void client::get_async(std::string_view name, callback<std::vector<owned_value>> done) {
  start_get(*impl_, std::string(name), std::move(done), false);
}
void client::remove_async(std::string_view name, callback<void> done) {
  start_remove(*impl_, std::string(name), std::move(done), false);
}
void client::store_async(std::string_view resource, std::uint32_t kind, std::vector<item> items,
                         store_options options, callback<std::uint64_t> done) {
  start_store(*impl_, std::string(resource), kind, std::move(items), options, false,
              std::move(done), false);
}
void client::remove_items_async(std::string_view resource, std::uint32_t kind,
                                std::vector<item> items, store_options options,
                                callback<std::uint64_t> done) {
  start_store(*impl_, std::string(resource), kind, std::move(items), options, true, std::move(done),
              false);
}
void client::fetch_async(std::string_view resource, std::uint32_t kind, selection which,
                         callback<kind_data> done) {
  start_fetch(*impl_, std::string(resource), kind, std::move(which), false, std::move(done), false);
}
void client::stat_async(std::string_view resource, std::uint32_t kind, selection which,
                        callback<kind_data> done) {
  start_fetch(*impl_, std::string(resource), kind, std::move(which), true, std::move(done), false);
}
void client::find_async(std::string_view resource, std::uint32_t kind,
                        callback<std::optional<std::string>> done) {
  start_find(*impl_, std::string(resource), kind, std::move(done), false);
}
void client::ping_async(std::string_view resource, callback<ping_info> done) {
  start_ping(*impl_, std::string(resource), std::move(done), false);
}

result<void> client::put(std::string_view name, bytes value, std::uint32_t lifetime_seconds) {
  return blocking<void>(*impl_, [&](callback<void> cb) {
    start_put(*impl_, std::string(name), std::move(value), lifetime_seconds, std::move(cb), true);
  });
}
result<std::vector<owned_value>> client::get(std::string_view name) {
  return blocking<std::vector<owned_value>>(*impl_, [&](callback<std::vector<owned_value>> cb) {
    start_get(*impl_, std::string(name), std::move(cb), true);
  });
}
result<void> client::remove(std::string_view name) {
  return blocking<void>(*impl_, [&](callback<void> cb) {
    start_remove(*impl_, std::string(name), std::move(cb), true);
  });
}
result<std::uint64_t> client::store(std::string_view resource, std::uint32_t kind,
                                    std::vector<item> items, store_options options) {
  return blocking<std::uint64_t>(*impl_, [&](callback<std::uint64_t> cb) {
    start_store(*impl_, std::string(resource), kind, std::move(items), options, false,
                std::move(cb), true);
  });
}
result<std::uint64_t> client::remove_items(std::string_view resource, std::uint32_t kind,
                                           std::vector<item> items, store_options options) {
  return blocking<std::uint64_t>(*impl_, [&](callback<std::uint64_t> cb) {
    start_store(*impl_, std::string(resource), kind, std::move(items), options, true, std::move(cb),
                true);
  });
}
result<kind_data> client::fetch(std::string_view resource, std::uint32_t kind, selection which) {
  return blocking<kind_data>(*impl_, [&](callback<kind_data> cb) {
    start_fetch(*impl_, std::string(resource), kind, std::move(which), false, std::move(cb), true);
  });
}
result<kind_data> client::stat(std::string_view resource, std::uint32_t kind, selection which) {
  return blocking<kind_data>(*impl_, [&](callback<kind_data> cb) {
    start_fetch(*impl_, std::string(resource), kind, std::move(which), true, std::move(cb), true);
  });
}
result<std::optional<std::string>> client::find(std::string_view resource, std::uint32_t kind) {
  return blocking<std::optional<std::string>>(*impl_, [&](callback<std::optional<std::string>> cb) {
    start_find(*impl_, std::string(resource), kind, std::move(cb), true);
  });
}
result<ping_info> client::ping(std::string_view resource) {
  return blocking<ping_info>(*impl_, [&](callback<ping_info> cb) {
    start_ping(*impl_, std::string(resource), std::move(cb), true);
  });
}

}  // namespace p2psip::client
