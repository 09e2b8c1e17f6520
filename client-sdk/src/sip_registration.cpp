// The SIP usage's data (RFC 7904): register_aor / unregister_aor / resolve, on the typed
// store/fetch of the SIP-REGISTRATION kind. The SipRegistration codec is the protocol library's.
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "p2psip/client/client.hpp"

#include "client_impl.hpp"
#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/data.hpp"
#include "p2psip/protocol/ids.hpp"

namespace p2psip::client {

namespace {

namespace pr = p2psip::protocol;

/// Follows at most this many AOR indirections (RFC 7904 leaves the bound to the implementation).
constexpr int max_indirections = 4;

/// The Resource Name of an AOR: without its scheme (RFC 7904 section 2 and 7).
std::string resource_of(std::string_view aor) {
  for (std::string_view scheme : {"sip:", "sips:"}) {
    if (aor.size() > scheme.size() && aor.substr(0, scheme.size()) == scheme) {
      return std::string(aor.substr(scheme.size()));
    }
  }
  return std::string(aor);
}

error invalid(std::string message) {
  return error{make_error_code(errc::invalid_argument), std::move(message)};
}

result<pr::bytes> encode(const client::impl& self, const sip_contact& contact) {
  pr::sip_registration reg;
  if (!contact.uri.empty()) {
    reg.type = pr::sip_registration_type::uri;
    reg.uri = pr::to_bytes(contact.uri);
  } else {
    reg.type = pr::sip_registration_type::route;
    reg.contact_prefs = pr::to_bytes(contact.contact_prefs);
    auto hops = contact.route;
    if (hops.empty()) {
      // Through the peer we are attached to, then to us over our link.
      const auto peer = self.peer_node();
      if (!peer) return error{make_error_code(errc::no_peer), "not attached to a peer"};
      hops = {peer->hex(), self.own_id.hex()};
    }
    for (const auto& h : hops) {
      const auto id = pr::node_id::from_hex(h);
      if (!id) return invalid("route: '" + h + "' is not a Node-ID in hex");
      reg.destination_list.push_back(pr::to_destination(*id));
    }
  }
  auto encoded = pr::encode_sip_registration(reg);
  if (!encoded) return invalid("registration too large to encode");
  return std::move(*encoded);
}

/// Our own Node-ID as the dictionary key (RFC 7904 section 7).
bytes own_key(const client::impl& self) {
  const auto id = self.own_id.view();
  return bytes(id.begin(), id.end());
}

std::string text_of(const pr::bytes& b) {
  return std::string(b.begin(), b.end());
}

/// Resolution in progress: AORs still to fetch (breadth first, with their depth), those seen,
/// and the bindings found. Shared by resolve() and resolve_async().
struct resolution {
  std::vector<std::pair<std::string, int>> todo;
  std::size_t next = 0;
  std::set<std::string> seen;
  std::vector<sip_binding> found;

  /// The next AOR to fetch, if any.
  std::optional<std::string> next_name() {
    while (next < todo.size()) {
      const auto& name = todo[next].first;
      if (seen.insert(name).second) return name;
      ++next;
    }
    return std::nullopt;
  }
  /// The fetch of todo[next] answered `data` (nullopt: nothing there).
  void take(const std::optional<kind_data>& data) {
    const auto [name, depth] = todo[next++];
    if (!data) return;
    for (const auto& it : data->items) {
      if (!it.exists) continue;
      auto reg = pr::decode_sip_registration(it.value, pr::limits{});
      if (!reg) continue;  // the storing peer checks this; a foreign one may not have
      sip_binding b;
      b.aor = name;
      b.owner_node_id = pr::to_hex(it.key);
      b.owner_user = it.signer_user;
      b.lifetime = it.lifetime;
      if (reg->type == pr::sip_registration_type::uri) {
        const auto target = resource_of(text_of(reg->uri));
        if (depth < max_indirections && !seen.count(target)) {
          todo.emplace_back(target, depth + 1);
          continue;
        }
        b.contact.uri = text_of(reg->uri);
      } else {
        b.contact.contact_prefs = text_of(reg->contact_prefs);
        for (const auto& d : reg->destination_list) {
          if (const auto* n = d.node()) b.contact.route.push_back(n->hex());
        }
      }
      found.push_back(std::move(b));
    }
  }
};

/// Steps a resolution with fetches until it is done, then calls `done` once. Holds the client's
/// implementation weakly: a client stopped or destroyed meanwhile fails the fetch (stopped).
void resolve_step(std::weak_ptr<client::impl> weak, std::shared_ptr<resolution> r,
                  client::callback<std::vector<sip_binding>> done, bool on_io_thread) {
  const auto name = r->next_name();
  if (!name) {
    done(std::move(r->found));
    return;
  }
  const auto p = weak.lock();
  if (!p) {
    done(error{make_error_code(errc::stopped), "the client was stopped"});
    return;
  }
  fetch_all_async(
      *p, *name, pr::kinds::sip_registration,
      [weak, r, done = std::move(done), on_io_thread](result<kind_data> data) mutable {
        if (!data && data.code() != errc::not_found) {
          done(data.error());
          return;
        }
        r->take(data ? std::optional<kind_data>(std::move(*data)) : std::nullopt);
        resolve_step(std::move(weak), std::move(r), std::move(done), on_io_thread);
      },
      on_io_thread);
}

/// The registration item of this client under `aor`: its own Node-ID as the key.
result<item> registration_item(const client::impl& self, std::string_view aor,
                               const sip_contact& contact, std::uint32_t lifetime) {
  if (aor.empty()) return invalid("empty AOR");
  auto value = encode(self, contact);
  if (!value) return value.error();
  item it;
  it.key = own_key(self);
  it.value = std::move(*value);
  it.lifetime = lifetime;
  return it;
}

/// register_aor on the I/O thread (encode reads the attached peer), answered as `on_io_thread`.
void start_register(client::impl& p, std::string aor, sip_contact contact, std::uint32_t lifetime,
                    client::callback<std::uint64_t> done, bool on_io_thread) {
  p.on_io(done, on_io_thread,
          [aor = std::move(aor), contact = std::move(contact), lifetime, done,
           on_io_thread](client::impl& self) mutable {
            auto it = registration_item(self, aor, contact, lifetime);
            if (!it) return self.deliver_result<std::uint64_t>(done, it.error(), on_io_thread);
            store_items_async(self, resource_of(aor), pr::kinds::sip_registration, {std::move(*it)},
                              false, std::move(done), on_io_thread);
          });
}

void start_unregister(client::impl& p, std::string aor, client::callback<std::uint64_t> done,
                      bool on_io_thread) {
  if (aor.empty()) return p.deliver_result<std::uint64_t>(done, invalid("empty AOR"), on_io_thread);
  item it;
  it.key = own_key(p);
  store_items_async(p, resource_of(aor), pr::kinds::sip_registration, {std::move(it)}, true,
                    std::move(done), on_io_thread);
}

void start_resolve(client::impl& p, std::string aor,
                   client::callback<std::vector<sip_binding>> done, bool on_io_thread) {
  if (aor.empty()) {
    return p.deliver_result<std::vector<sip_binding>>(done, invalid("empty AOR"), on_io_thread);
  }
  auto r = std::make_shared<resolution>();
  r->todo.emplace_back(resource_of(aor), 0);
  resolve_step(p.weak_from_this(), std::move(r), std::move(done), on_io_thread);
}

}  // namespace

void register_aor_on_io(client::impl& p, std::string aor, sip_contact contact,
                        std::uint32_t lifetime, client::callback<std::uint64_t> done) {
  start_register(p, std::move(aor), std::move(contact), lifetime, std::move(done), true);
}
void unregister_aor_on_io(client::impl& p, std::string aor, client::callback<std::uint64_t> done) {
  start_unregister(p, std::move(aor), std::move(done), true);
}
void resolve_on_io(client::impl& p, std::string aor,
                   client::callback<std::vector<sip_binding>> done) {
  start_resolve(p, std::move(aor), std::move(done), true);
}

result<std::uint64_t> client::register_aor(std::string_view aor, sip_contact contact,
                                           std::uint32_t lifetime_seconds) {
  return blocking<std::uint64_t>(*impl_, [&](callback<std::uint64_t> done) {
    start_register(*impl_, std::string(aor), std::move(contact), lifetime_seconds, std::move(done),
                   true);
  });
}

void client::register_aor_async(std::string_view aor, sip_contact contact,
                                std::uint32_t lifetime_seconds, callback<std::uint64_t> done) {
  start_register(*impl_, std::string(aor), std::move(contact), lifetime_seconds, std::move(done),
                 false);
}

result<std::uint64_t> client::unregister_aor(std::string_view aor) {
  return blocking<std::uint64_t>(*impl_, [&](callback<std::uint64_t> done) {
    start_unregister(*impl_, std::string(aor), std::move(done), true);
  });
}

void client::unregister_aor_async(std::string_view aor, callback<std::uint64_t> done) {
  start_unregister(*impl_, std::string(aor), std::move(done), false);
}

result<std::vector<sip_binding>> client::resolve(std::string_view aor) {
  return blocking<std::vector<sip_binding>>(*impl_, [&](callback<std::vector<sip_binding>> done) {
    start_resolve(*impl_, std::string(aor), std::move(done), true);
  });
}

void client::resolve_async(std::string_view aor, callback<std::vector<sip_binding>> done) {
  start_resolve(*impl_, std::string(aor), std::move(done), false);
}

}  // namespace p2psip::client
