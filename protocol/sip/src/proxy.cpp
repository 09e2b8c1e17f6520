// RFC 3261 section 16 proxy building blocks: request validation with loop detection, route
// preprocessing, request forwarding and the response context.

#include "p2psip/sip/proxy.hpp"

#include <botan/hash.h>
#include <botan/hex.h>
#include <algorithm>
#include <cstdio>

#include "text.hpp"

namespace p2psip::sip {

using detail::iequals;
using detail::to_lower;
using detail::to_upper;

namespace {

std::string_view strip_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    return host.substr(1, host.size() - 2);
  return host;
}

/// Appends a length-prefixed field, so that no two field lists hash the same input.
void field(std::string& out, std::string_view value) {
  out += std::to_string(value.size());
  out += ':';
  out += value;
  out += '\n';
}

/// The hash of 16.6 item 8, with `top` standing for the top Via the request had when received.
std::string loop_hash_with(const message& m, const via& top) {
  std::string input;
  field(input, m.request_uri);
  field(input, to_string(top));
  field(input, call_id(m).value_or(""));
  const auto cs = cseq_of(m);
  field(input, cs ? std::to_string(cs->number) : std::string());
  const auto f = from(m);
  field(input, f ? f->tag().value_or("") : std::string());
  const auto t = to(m);
  field(input, t ? t->tag().value_or("") : std::string());
  for (auto v : m.values("Proxy-Require")) field(input, v);
  input += "|";
  for (const auto& h : m.headers)
    if (iequals(h.name, "Proxy-Authorization")) field(input, h.value);
  auto hash = Botan::HashFunction::create_or_throw("SHA-256");
  hash->update(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  const auto digest = hash->final();
  return Botan::hex_encode(digest.data(), 16, false);
}

/// Rewrites every `name` header as one line per value, at the place of the first one.
void set_values(message& m, std::string_view name, const std::vector<name_addr>& values) {
  auto pos = std::find_if(m.headers.begin(), m.headers.end(),
                          [&](const header& h) { return iequals(h.name, name); });
  std::size_t index = static_cast<std::size_t>(pos - m.headers.begin());
  m.remove(name);
  index = std::min(index, m.headers.size());
  const std::string canon = canonical_header_name(name);
  for (const auto& v : values) {
    m.headers.insert(m.headers.begin() + static_cast<std::ptrdiff_t>(index),
                     header{canon, canon, to_string(v)});
    ++index;
  }
}

/// Inserts `values` before the first `name` header (or at the end when there is none).
void insert_before_first(message& m, std::string_view name, const std::vector<uri>& values) {
  auto pos = std::find_if(m.headers.begin(), m.headers.end(),
                          [&](const header& h) { return iequals(h.name, name); });
  const std::string canon = canonical_header_name(name);
  for (const auto& u : values) {
    name_addr na;
    na.bracketed = true;
    na.address = u;
    pos = m.headers.insert(pos, header{canon, canon, to_string(na)});
    ++pos;
  }
}

bool is_challenge(int status) {
  return status == 401 || status == 407;
}

}  // namespace

bool is_own_via(const via& v, const std::vector<sent_by>& own) {
  const std::uint16_t port = v.port.value_or(v.transport == "TLS" ? 5061 : 5060);
  return std::any_of(own.begin(), own.end(), [&](const sent_by& s) {
    return s.port == port && iequals(strip_brackets(s.host), strip_brackets(v.host));
  });
}

std::string loop_hash(const message& received_request) {
  const auto values = received_request.values("Via");
  via top;
  if (!values.empty()) {
    if (auto v = parse_via(values.front())) top = std::move(*v);
  }
  return loop_hash_with(received_request, top);
}

std::string make_proxy_branch(const message& received_request, std::uint64_t unique) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(unique));
  return std::string(branch_cookie) + loop_hash(received_request) + "." + buf;
}

std::optional<proxy_rejection> check_request_for_proxy(const message& request,
                                                       const proxy_check_options& options) {
  if (auto e = check_request_uri_scheme(request)) return proxy_rejection{e->status, e->reason, {}};
  auto mf = max_forwards(request);
  if (!mf) return proxy_rejection{mf.error().status, mf.error().reason, {}};
  if (*mf && **mf == 0) return proxy_rejection{483, "Too Many Hops", {}};

  if (!options.own.empty()) {
    auto v = vias(request);
    if (!v) return proxy_rejection{v.error().status, v.error().reason, {}};
    // A Via of ours at i was added when the request arrived with (*v)[i + 1] on top: recompute
    // the branch with that Via. Equal: the same request came back (a loop); different: the
    // Request-URI or another field changed (a spiral).
    for (std::size_t i = 0; i + 1 < v->size(); ++i) {
      if (!is_own_via((*v)[i], options.own)) continue;
      const auto branch = (*v)[i].branch();
      if (!branch) continue;
      const std::string expected =
          std::string(branch_cookie) + loop_hash_with(request, (*v)[i + 1]) + ".";
      if (branch->starts_with(expected)) return proxy_rejection{482, "Loop Detected", {}};
    }
  }

  auto required = option_tags(request, "Proxy-Require");
  if (!required) return proxy_rejection{required.error().status, required.error().reason, {}};
  std::string unsupported;
  for (const auto& tag : *required) {
    const bool known = std::any_of(options.supported.begin(), options.supported.end(),
                                   [&](const std::string& s) { return iequals(s, tag); });
    if (known) continue;
    if (!unsupported.empty()) unsupported += ", ";
    unsupported += tag;
  }
  if (!unsupported.empty()) {
    return proxy_rejection{
        420, "Bad Extension", {header{"Unsupported", "Unsupported", std::move(unsupported)}}};
  }
  return std::nullopt;
}

result<route_preprocessing, parse_error> preprocess_route(
    message& request, const std::function<bool(const uri&)>& is_self) {
  route_preprocessing out;
  auto ruri = request_uri_of(request);
  if (!ruri) return ruri.error();
  auto routes = route_set(request, "Route");
  if (!routes) return routes.error();
  bool changed = false;
  if (is_self(*ruri) && !routes->empty()) {
    // The previous hop was a strict router (16.4): the real target is the last Route value.
    request.request_uri = to_string(routes->back().address);
    routes->pop_back();
    out.strict_route_fixed = true;
    changed = true;
  }
  if (!routes->empty() && is_self(routes->front().address)) {
    routes->erase(routes->begin());
    out.removed_own_route = true;
    changed = true;
  }
  if (changed) set_values(request, "Route", *routes);
  return out;
}

result<message, parse_error> prepare_forward(const message& request, const uri& target,
                                             const forward_options& options) {
  message copy = request;                // step 1
  copy.request_uri = to_string(target);  // step 2

  auto mf = max_forwards(copy);  // step 3
  if (!mf) return mf.error();
  if (!*mf) {
    copy.set("Max-Forwards", "70");
  } else if (**mf == 0) {
    return parse_error{483, "Too Many Hops"};
  } else {
    copy.set("Max-Forwards", std::to_string(**mf - 1));
  }

  if (options.record_route) {  // step 4
    uri rr = *options.record_route;
    if (!find_param(rr.params, "lr")) rr.params.push_back(param{"lr", "", false, false});
    insert_before_first(copy, "Record-Route", {rr});
  }
  if (!options.routes.empty()) insert_before_first(copy, "Route", options.routes);  // step 5
  if (options.path) insert_before_first(copy, "Path", {*options.path});

  auto routes = route_set(copy, "Route");  // step 6
  if (!routes) return routes.error();
  if (!routes->empty() && !find_param(routes->front().address.params, "lr")) {
    auto current = parse_uri(copy.request_uri);
    if (!current) return current.error();
    name_addr last;
    last.bracketed = true;
    last.address = std::move(*current);
    routes->push_back(std::move(last));
    copy.request_uri = to_string(routes->front().address);
    routes->erase(routes->begin());
    set_values(copy, "Route", *routes);
  }

  via ours;  // step 8
  ours.protocol_name = "SIP";
  ours.protocol_version = "2.0";
  ours.transport = to_upper(options.via_transport);
  ours.host = options.via_host;
  ours.port = options.via_port;
  ours.params.push_back(param{"branch", options.branch, true, false});
  if (options.rport) ours.params.push_back(param{"rport", "", false, false});
  push_via(copy, ours);
  return copy;
}

result<uri, parse_error> next_hop(const message& request) {
  auto routes = route_set(request, "Route");
  if (!routes) return routes.error();
  if (!routes->empty()) return routes->front().address;
  return request_uri_of(request);
}

bool top_via_is_ours(const message& response, const std::vector<sent_by>& own) {
  const auto values = response.values("Via");
  if (values.empty()) return false;
  auto v = parse_via(values.front());
  return v && is_own_via(*v, own);
}

// ---- response_context ----

response_context::response_context(message request, response_context_options options)
    : request_(std::move(request)), options_(std::move(options)) {
  invite_ = request_.method == "INVITE";
}

response_context::branch* response_context::find(transaction_id id) {
  auto it =
      std::find_if(branches_.begin(), branches_.end(), [&](const branch& b) { return b.id == id; });
  return it == branches_.end() ? nullptr : &*it;
}

bool response_context::add_branch(transaction_id client_tx, time_point now) {
  if (final_forwarded_ || six_xx_ || client_tx == 0 || find(client_tx)) return false;
  branch b;
  b.id = client_tx;
  if (invite_) b.timer_c = now + options_.timer_c;
  branches_.push_back(b);
  return true;
}

bool response_context::complete() const noexcept {
  return std::all_of(branches_.begin(), branches_.end(), [](const branch& b) { return b.final; });
}

std::vector<transaction_id> response_context::cancel_pending() {
  std::vector<transaction_id> out;
  if (!invite_) return out;  // only an INVITE can be cancelled (9.1)
  for (auto& b : branches_) {
    if (b.final || b.cancelled) continue;
    b.cancelled = true;
    b.timer_c.reset();
    out.push_back(b.id);
  }
  return out;
}

std::vector<transaction_id> response_context::cancel_all() {
  return cancel_pending();
}

proxy_decision response_context::on_response(transaction_id id, const message& response,
                                             time_point now) {
  proxy_decision d;
  branch* b = find(id);
  if (!b || response.is_request()) return d;
  const int code = response.status;
  message upstream = response;
  // 16.7 step 9: our Via removed. What is left must be the Vias of the request we received; they
  // are taken from it, so that a UA that answers a cancelled INVITE with the CANCEL's single Via
  // (sipp's [last_Via:]) still yields a response that can go upstream.
  upstream.remove("Via");
  std::vector<header> vias;
  for (const auto& h : request_.headers) {
    if (h.name == "Via") vias.push_back(h);
  }
  upstream.headers.insert(upstream.headers.begin(), vias.begin(), vias.end());

  if (code < 200) {
    if (b->final) return d;
    b->provisional = true;
    if (invite_ && !b->cancelled) b->timer_c = now + options_.timer_c;  // 16.7 step 2
    if (code != 100 && !final_forwarded_) d.forward = std::move(upstream);
    return d;
  }
  if (code < 300) {
    // 2xx: forwarded at once; for an INVITE every 2xx is, other branches' and retransmissions
    // alike (16.7 step 5, RFC 6026: the ACK is end to end).
    b->final = true;
    b->timer_c.reset();
    if (!final_forwarded_ || invite_) {
      d.forward = std::move(upstream);
      d.final = true;
      final_forwarded_ = true;
    }
    d.cancel = cancel_pending();  // 16.7 step 10
    return d;
  }
  if (b->final) return d;
  record_final(*b, std::move(upstream), d);
  return d;
}

void response_context::record_final(branch& b, message response, proxy_decision& d) {
  b.final = true;
  b.timer_c.reset();
  if (response.status >= 600) {
    six_xx_ = true;
    d.cancel = cancel_pending();  // 16.7 step 5
  }
  finals_.push_back(std::move(response));
  finish(d);
}

proxy_decision response_context::on_timeout(transaction_id id) {
  proxy_decision d;
  branch* b = find(id);
  if (!b || b->final) return d;
  record_final(*b, make_response(request_, 408, {}, options_.to_tag), d);
  return d;
}

void response_context::finish(proxy_decision& d) {
  if (final_forwarded_ || branches_.empty() || !complete()) return;
  d.forward = best_response();
  d.final = true;
  final_forwarded_ = true;
}

message response_context::best_response() const {
  // 16.7 step 6: a 6xx if any; else the lowest class; among 4xx those that help a resubmission.
  const message* best = nullptr;
  auto rank = [](int status) {
    const int cls = status / 100;
    if (cls == 6) return 0;
    const bool helps =
        status == 401 || status == 407 || status == 415 || status == 420 || status == 484;
    return cls * 2 + (helps ? 0 : 1);
  };
  for (const auto& m : finals_)
    if (!best || rank(m.status) < rank(best->status)) best = &m;
  if (best->status == 503) {
    // 16.7 step 6: a 503 is not passed on (it would mean this proxy is unavailable).
    return make_response(request_, 500, {}, options_.to_tag);
  }
  message out = *best;
  if (is_challenge(out.status)) {
    // 16.7 step 7: every challenge of every 401 and 407 received.
    for (const auto& m : finals_) {
      if (&m == best || !is_challenge(m.status)) continue;
      for (const auto& h : m.headers)
        if (iequals(h.name, "WWW-Authenticate") || iequals(h.name, "Proxy-Authenticate"))
          out.headers.push_back(h);
    }
  }
  return out;
}

std::optional<time_point> response_context::next_deadline() const {
  std::optional<time_point> out;
  for (const auto& b : branches_)
    if (b.timer_c && (!out || *b.timer_c < *out)) out = b.timer_c;
  return out;
}

proxy_decision response_context::on_timer(time_point now) {
  proxy_decision d;
  for (auto& b : branches_) {
    if (!b.timer_c || *b.timer_c > now) continue;
    b.timer_c.reset();
    if (b.provisional) {
      // 16.8: CANCEL it; the transaction layer ends it 64*T1 later without a final response.
      b.cancelled = true;
      d.cancel.push_back(b.id);
    } else {
      proxy_decision timeout;
      record_final(b, make_response(request_, 408, {}, options_.to_tag), timeout);
      for (auto id : timeout.cancel) d.cancel.push_back(id);
      if (timeout.forward) {
        d.forward = std::move(timeout.forward);
        d.final = true;
      }
    }
  }
  return d;
}

}  // namespace p2psip::sip
