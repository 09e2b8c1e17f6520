// RFC 3261 section 17 transactions (with the RFC 6026 Accepted state) and the message helpers the
// transaction user needs: responses, CANCEL, ACK, Via editing, received/rport, response routing.

#include "p2psip/sip/transaction.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>

#include "text.hpp"

namespace p2psip::sip {

using detail::iequals;
using detail::to_lower;

namespace {

std::optional<via> top_via(const message& m) {
  const auto values = m.values("Via");
  if (values.empty()) return std::nullopt;
  auto v = parse_via(values.front());
  if (!v) return std::nullopt;
  return std::move(*v);
}

std::string_view strip_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    return host.substr(1, host.size() - 2);
  return host;
}

std::uint16_t default_port(const via& v) {
  return v.transport == "TLS" ? 5061 : 5060;
}

void set_param(std::vector<param>& params, std::string_view name, std::string value) {
  for (auto& p : params) {
    if (iequals(p.name, name)) {
      p.value = std::move(value);
      p.has_value = true;
      p.quoted = false;
      return;
    }
  }
  params.push_back(param{std::string(name), std::move(value), true, false});
}

std::string join(const std::vector<std::string_view>& parts, std::size_t from) {
  std::string out;
  for (std::size_t i = from; i < parts.size(); ++i) {
    if (!out.empty()) out += ", ";
    out += parts[i];
  }
  return out;
}

std::vector<header>::iterator first_header(message& m, std::string_view name) {
  return std::find_if(m.headers.begin(), m.headers.end(),
                      [&](const header& h) { return iequals(h.name, name); });
}

/// The index key of a server transaction (17.2.3). `method` is the method of the transaction to
/// find (INVITE for an ACK with the cookie or for a CANCEL's target). `base` is filled for RFC
/// 2543 requests: the key without method and To tag, to register the ACK key later.
struct server_key_t {
  std::string key;
  std::string base;
};
std::optional<server_key_t> server_key(const message& m, const via& top, std::string_view method) {
  const auto branch = top.branch();
  if (branch && is_rfc3261_branch(*branch)) {
    return server_key_t{"3|" + *branch + "|" + to_lower(top.host) + "|" +
                            (top.port ? std::to_string(*top.port) : std::string()) + "|" +
                            std::string(method),
                        {}};
  }
  auto f = from(m);
  auto t = to(m);
  auto c = call_id(m);
  auto cs = cseq_of(m);
  if (!f || !t || !c || !cs) return std::nullopt;
  std::string base = "2|" + m.request_uri + "|" + f->tag().value_or("") + "|" + *c + "|" +
                     std::to_string(cs->number) + "|" + to_string(top);
  return server_key_t{base + "|" + std::string(method) + "|" + t->tag().value_or(""), base};
}

std::string client_key(std::string_view branch, std::string_view method) {
  return std::string(branch) + "|" + std::string(method);
}

}  // namespace

// ---- helpers ----

std::string make_branch(std::uint64_t random) {
  static std::atomic<std::uint64_t> counter{0};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%016llx.%llx", static_cast<unsigned long long>(random),
                static_cast<unsigned long long>(counter.fetch_add(1, std::memory_order_relaxed)));
  return std::string(branch_cookie) + buf;
}

std::string_view default_reason(int status) {
  switch (status) {
    case 100: return "Trying";
    case 180: return "Ringing";
    case 181: return "Call Is Being Forwarded";
    case 182: return "Queued";
    case 183: return "Session Progress";
    case 200: return "OK";
    case 202: return "Accepted";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Moved Temporarily";
    case 305: return "Use Proxy";
    case 380: return "Alternative Service";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 410: return "Gone";
    case 413: return "Request Entity Too Large";
    case 414: return "Request-URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Unsupported URI Scheme";
    case 420: return "Bad Extension";
    case 421: return "Extension Required";
    case 423: return "Interval Too Brief";
    case 480: return "Temporarily Unavailable";
    case 481: return "Call/Transaction Does Not Exist";
    case 482: return "Loop Detected";
    case 483: return "Too Many Hops";
    case 484: return "Address Incomplete";
    case 485: return "Ambiguous";
    case 486: return "Busy Here";
    case 487: return "Request Terminated";
    case 488: return "Not Acceptable Here";
    case 491: return "Request Pending";
    case 493: return "Undecipherable";
    case 500: return "Server Internal Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Server Time-out";
    case 505: return "Version Not Supported";
    case 513: return "Message Too Large";
    case 600: return "Busy Everywhere";
    case 603: return "Decline";
    case 604: return "Does Not Exist Anywhere";
    case 606: return "Not Acceptable";
    default: return "";
  }
}

message make_response(const message& request, int status, std::string_view reason,
                      std::optional<std::string_view> to_tag) {
  message r;
  r.status = status;
  r.reason = std::string(reason.empty() ? default_reason(status) : reason);
  for (const auto& h : request.headers) {
    if (iequals(h.name, "Via") || iequals(h.name, "From") || iequals(h.name, "Call-ID") ||
        iequals(h.name, "CSeq") || (status == 100 && iequals(h.name, "Timestamp"))) {
      r.headers.push_back(h);
    } else if (iequals(h.name, "To")) {
      header copy = h;
      if (to_tag && status > 100) {
        auto t = parse_name_addr(h.value);
        if (t && !t->tag()) copy.value += ";tag=" + std::string(*to_tag);
      }
      r.headers.push_back(std::move(copy));
    }
  }
  return r;
}

message make_cancel(const message& invite) {
  message c;
  c.method = "CANCEL";
  c.request_uri = invite.request_uri;
  const auto vias_of_invite = invite.values("Via");
  if (!vias_of_invite.empty()) c.add("Via", std::string(vias_of_invite.front()));
  c.add("Max-Forwards", "70");
  for (const auto& h : invite.headers) {
    if (iequals(h.name, "Route") || iequals(h.name, "From") || iequals(h.name, "To") ||
        iequals(h.name, "Call-ID")) {
      c.headers.push_back(h);
    }
  }
  if (auto cs = cseq_of(invite)) c.add("CSeq", std::to_string(cs->number) + " CANCEL");
  return c;
}

message make_ack_for_failure(const message& invite, const message& response) {
  message a;
  a.method = "ACK";
  a.request_uri = invite.request_uri;
  const auto vias_of_invite = invite.values("Via");
  if (!vias_of_invite.empty()) a.add("Via", std::string(vias_of_invite.front()));
  a.add("Max-Forwards", "70");
  for (const auto& h : invite.headers) {
    if (iequals(h.name, "Route") || iequals(h.name, "From") || iequals(h.name, "Call-ID")) {
      a.headers.push_back(h);
    }
  }
  if (const header* to_of_response = response.find("To")) {
    a.headers.push_back(*to_of_response);
  } else if (const header* to_of_invite = invite.find("To")) {
    a.headers.push_back(*to_of_invite);
  }
  if (auto cs = cseq_of(invite)) a.add("CSeq", std::to_string(cs->number) + " ACK");
  return a;
}

bool replace_top_via(message& m, const via& v) {
  auto it = first_header(m, "Via");
  if (it == m.headers.end()) return false;
  const auto parts = split_list(it->value);
  std::string value = to_string(v);
  if (parts.size() > 1) value += ", " + join(parts, 1);
  it->value = std::move(value);
  return true;
}

bool remove_top_via(message& m) {
  auto it = first_header(m, "Via");
  if (it == m.headers.end()) return false;
  const auto parts = split_list(it->value);
  if (parts.size() <= 1) {
    m.headers.erase(it);
  } else {
    it->value = join(parts, 1);
  }
  return true;
}

void push_via(message& m, const via& v) {
  auto it = first_header(m, "Via");
  if (it == m.headers.end()) it = m.headers.begin();
  m.headers.insert(it, header{"Via", "Via", to_string(v)});
}

bool stamp_received(message& request, std::string_view source_ip, std::uint16_t source_port) {
  auto v = top_via(request);
  if (!v) return false;
  const std::string_view ip = strip_brackets(source_ip);
  const auto rport = v->rport();
  if (rport || !iequals(strip_brackets(v->host), ip))
    set_param(v->params, "received", std::string(ip));
  if (rport && !rport->has_value()) set_param(v->params, "rport", std::to_string(source_port));
  return replace_top_via(request, *v);
}

std::optional<response_address> response_destination(const message& response) {
  auto v = top_via(response);
  if (!v) return std::nullopt;
  response_address out;
  out.transport = v->transport;
  const std::uint16_t sent_by_port = v->port.value_or(default_port(*v));
  if (auto maddr = v->maddr()) {
    out.host = std::string(strip_brackets(*maddr));
    out.port = sent_by_port;
  } else if (auto received = v->received()) {
    out.host = std::string(strip_brackets(*received));
    const auto rport = v->rport();
    out.port = rport && rport->has_value() ? **rport : sent_by_port;
  } else {
    out.host = std::string(strip_brackets(v->host));
    out.port = sent_by_port;
  }
  return out;
}

// ---- transaction_layer ----

transaction_layer::transaction_layer(timer_settings settings) : settings_(settings) {}

transaction_layer::transaction* transaction_layer::find(transaction_id id) {
  auto it = transactions_.find(id);
  return it == transactions_.end() ? nullptr : &it->second;
}
const transaction_layer::transaction* transaction_layer::find(transaction_id id) const {
  auto it = transactions_.find(id);
  return it == transactions_.end() ? nullptr : &it->second;
}

void transaction_layer::on_message(const message& m, sip_target source, time_point now) {
  auto top = top_via(m);
  if (!top) {
    ++stats_.dropped;
    return;
  }
  if (!m.is_request()) {
    on_response(m, source, now);
  } else if (m.method == "ACK") {
    on_ack(m, *top, source, now);
  } else {
    on_request(m, *top, source, now);
  }
}

void transaction_layer::on_request(const message& m, const via& top, sip_target source,
                                   time_point now) {
  auto key = server_key(m, top, m.method);
  if (!key) {
    ++stats_.dropped;
    return;
  }
  if (auto it = server_index_.find(key->key); it != server_index_.end()) {
    // A retransmission (17.2.1, 17.2.2): absorbed, the last response sent again.
    ++stats_.absorbed;
    retransmit_last_response(transactions_.at(it->second));
    return;
  }
  if (server_count_ >= settings_.max_server_transactions) {
    ++stats_.overload_rejections;
    emit(send{source, make_response(m, 503), 0});
    return;
  }

  const transaction_id id = next_id_++;
  transaction& t = transactions_[id];
  t.id = id;
  t.client = false;
  ++server_count_;
  t.invite = m.method == "INVITE";
  t.st = t.invite ? tx_state::proceeding : tx_state::trying;
  t.target = source;
  t.request = m;
  t.keys.push_back(key->key);
  t.index_base = key->base;
  server_index_[key->key] = id;

  std::optional<transaction_id> cancels;
  if (m.method == "CANCEL") {
    // The CANCEL matches the INVITE it cancels by the ACK rules (9.2).
    if (auto target = server_key(m, top, "INVITE")) {
      if (auto it = server_index_.find(target->key); it != server_index_.end())
        cancels = it->second;
    }
  }
  emit(request_received{id, m, source, cancels});
  if (t.invite) {
    if (settings_.trying_delay.count() <= 0) {
      t.last_response = make_response(t.request, 100);
      emit(send{t.target, *t.last_response, t.id});
    } else {
      t.trying_at = now + settings_.trying_delay;
      reschedule(t);
    }
  }
}

void transaction_layer::retransmit_last_response(transaction& t) {
  if (t.client || !t.last_response) return;
  // INVITE: the last provisional in Proceeding, the final in Completed (Confirmed and Accepted
  // absorb); non-INVITE: the last response in Proceeding and Completed (Trying absorbs).
  if (t.st != tx_state::proceeding && t.st != tx_state::completed) return;
  ++stats_.retransmissions;
  emit(send{t.target, *t.last_response, t.id});
}

void transaction_layer::on_ack(const message& m, const via& top, sip_target source,
                               time_point now) {
  const auto branch = top.branch();
  const bool cookie = branch && is_rfc3261_branch(*branch);
  // With the cookie the ACK carries the INVITE's branch; an RFC 2543 ACK matches on the To tag
  // of the final response (registered by respond()).
  auto key = server_key(m, top, cookie ? "INVITE" : "ACK");
  transaction* t = nullptr;
  if (key) {
    if (auto it = server_index_.find(key->key); it != server_index_.end()) t = find(it->second);
  }
  if (!t || !t->invite) {
    emit(ack_received{m, source, std::nullopt});
    return;
  }
  switch (t->st) {
    case tx_state::completed:
      t->st = tx_state::confirmed;
      t->retransmit_at.reset();
      t->timeout_at.reset();
      if (t->target.reliable) {
        terminate(*t);
        return;
      }
      t->wait_at = now + settings_.t4;  // Timer I
      reschedule(*t);
      return;
    case tx_state::accepted: emit(ack_received{m, source, t->id}); return;
    default: ++stats_.absorbed; return;
  }
}

void transaction_layer::on_response(const message& m, sip_target source, time_point now) {
  const auto top = top_via(m);
  const auto branch = top ? top->branch() : std::nullopt;
  const auto cs = cseq_of(m);
  transaction* t = nullptr;
  if (branch && cs) {
    if (auto it = client_index_.find(client_key(*branch, cs->method)); it != client_index_.end())
      t = find(it->second);
  }
  if (t && settings_.match_response_flow && t->target.flow != source.flow) t = nullptr;
  if (!t) {
    ++stats_.stray_responses;
    emit(stray_response{m, source});
    return;
  }
  const int code = m.status;
  if (t->invite) {
    switch (t->st) {
      case tx_state::calling:
      case tx_state::proceeding:
        if (code < 200) {
          if (t->st == tx_state::calling) {
            t->st = tx_state::proceeding;
            t->retransmit_at.reset();
            t->timeout_at.reset();  // Timer B only runs in Calling
            reschedule(*t);
          }
          emit(response_received{t->id, m});
          if (t->cancel_id != 0 && !t->cancel_started) start_cancel(*t, t->cancel_id, now);
        } else if (code < 300) {
          t->st = tx_state::accepted;
          t->retransmit_at.reset();
          t->timeout_at.reset();
          t->wait_at = now + 64 * settings_.t1;  // Timer M (RFC 6026)
          emit(response_received{t->id, m});
          if (t->cancel_id != 0 && !t->cancel_started) {
            t->cancel_started = true;
            emit(terminated{t->cancel_id});
          }
          reschedule(*t);
        } else {
          complete_invite_client(*t, m, now);
        }
        return;
      case tx_state::completed:
        ++stats_.absorbed;
        if (code >= 300 && t->ack) {
          ++stats_.retransmissions;
          emit(send{t->target, *t->ack, t->id});
        }
        return;
      case tx_state::accepted:
        if (code >= 200 && code < 300) {
          emit(response_received{t->id, m});
        } else {
          ++stats_.absorbed;
        }
        return;
      default: ++stats_.absorbed; return;
    }
  }
  if (t->st != tx_state::trying && t->st != tx_state::proceeding) {
    ++stats_.absorbed;
    return;
  }
  if (code < 200) {
    t->st = tx_state::proceeding;
    emit(response_received{t->id, m});
    return;
  }
  t->st = tx_state::completed;
  t->retransmit_at.reset();
  t->timeout_at.reset();
  emit(response_received{t->id, m});
  if (t->target.reliable) {
    terminate(*t);
    return;
  }
  t->wait_at = now + settings_.t4;  // Timer K
  reschedule(*t);
}

void transaction_layer::complete_invite_client(transaction& t, const message& response,
                                               time_point now) {
  t.st = tx_state::completed;
  t.retransmit_at.reset();
  t.timeout_at.reset();
  emit(response_received{t.id, response});
  t.ack = make_ack_for_failure(t.request, response);
  emit(send{t.target, *t.ack, t.id});
  if (t.cancel_id != 0 && !t.cancel_started) {
    t.cancel_started = true;
    emit(terminated{t.cancel_id});
  }
  if (t.target.reliable) {
    terminate(t);
    return;
  }
  t.wait_at = now + settings_.timer_d;
  reschedule(t);
}

transaction_id transaction_layer::start_client(message request, sip_target dest, time_point now) {
  if (!request.is_request() || request.method == "ACK") return 0;
  const auto top = top_via(request);
  const auto branch = top ? top->branch() : std::nullopt;
  const auto cs = cseq_of(request);
  if (!branch || !is_rfc3261_branch(*branch) || !cs) return 0;
  const std::string key = client_key(*branch, cs->method);
  if (client_index_.contains(key)) return 0;

  const transaction_id id = next_id_++;
  transaction& t = transactions_[id];
  t.id = id;
  t.client = true;
  ++client_count_;
  t.invite = request.method == "INVITE";
  t.st = t.invite ? tx_state::calling : tx_state::trying;
  t.target = dest;
  t.request = std::move(request);
  t.keys.push_back(key);
  client_index_[key] = id;
  if (dest.reliable) reliable_clients_.emplace(dest.flow, id);
  emit(send{t.target, t.request, t.id});
  if (!dest.reliable) {
    t.interval = settings_.t1;
    t.retransmit_at = now + t.interval;  // Timer A or E
  }
  t.timeout_at = now + 64 * settings_.t1;  // Timer B or F
  reschedule(t);
  return id;
}

transaction_id transaction_layer::cancel(transaction_id invite_tx, time_point now) {
  transaction* t = find(invite_tx);
  if (!t || !t->client || !t->invite) return 0;
  if (t->cancel_id != 0) return t->cancel_id;
  if (t->st != tx_state::calling && t->st != tx_state::proceeding) return 0;
  t->cancel_id = next_id_++;
  // 9.1: no CANCEL before a provisional response; Calling waits for one.
  if (t->st == tx_state::proceeding) start_cancel(*t, t->cancel_id, now);
  return t->cancel_id;
}

void transaction_layer::start_cancel(transaction& invite, transaction_id cancel_id,
                                     time_point now) {
  invite.cancel_started = true;
  // 9.1: without a final response 64*T1 after the CANCEL, the INVITE transaction is given up.
  invite.timeout_at = now + 64 * settings_.t1;
  reschedule(invite);

  message c = make_cancel(invite.request);
  const auto top = top_via(c);
  const auto branch = top ? top->branch() : std::nullopt;
  if (!branch) {
    emit(terminated{cancel_id});
    return;
  }
  const std::string key = client_key(*branch, "CANCEL");
  if (client_index_.contains(key)) {
    emit(terminated{cancel_id});
    return;
  }
  transaction& t = transactions_[cancel_id];
  t.id = cancel_id;
  t.client = true;
  ++client_count_;
  t.invite = false;
  t.st = tx_state::trying;
  t.target = invite.target;
  t.request = std::move(c);
  t.keys.push_back(key);
  client_index_[key] = cancel_id;
  emit(send{t.target, t.request, t.id});
  if (!t.target.reliable) {
    t.interval = settings_.t1;
    t.retransmit_at = now + t.interval;
  }
  t.timeout_at = now + 64 * settings_.t1;
  reschedule(t);
}

bool transaction_layer::respond(transaction_id server_tx, message response, time_point now) {
  transaction* t = find(server_tx);
  if (!t || t->client || response.is_request()) return false;
  const int code = response.status;
  if (t->invite) {
    if (t->st == tx_state::accepted) {
      // RFC 6026: more 2xx (a UA's retransmissions, a proxy's other branches) go through.
      if (code < 200 || code >= 300) return false;
      emit(send{t->target, std::move(response), t->id});
      return true;
    }
    if (t->st != tx_state::proceeding) return false;
    t->trying_at.reset();
    t->last_response = std::move(response);
    emit(send{t->target, *t->last_response, t->id});
    if (code < 200) {
      reschedule(*t);
      return true;
    }
    if (code < 300) {
      t->st = tx_state::accepted;
      t->wait_at = now + 64 * settings_.t1;  // Timer L (RFC 6026)
      reschedule(*t);
      return true;
    }
    t->st = tx_state::completed;
    if (!t->target.reliable) {
      t->interval = settings_.t1;
      t->retransmit_at = now + t->interval;  // Timer G
    }
    t->timeout_at = now + 64 * settings_.t1;  // Timer H
    if (!t->index_base.empty()) {
      // RFC 2543 ACK: matches on the To tag of this response (17.2.3).
      std::string tag;
      if (auto to_value = to(*t->last_response)) tag = to_value->tag().value_or("");
      std::string key = t->index_base + "|ACK|" + tag;
      server_index_[key] = t->id;
      t->keys.push_back(std::move(key));
    }
    reschedule(*t);
    return true;
  }
  if (t->st != tx_state::trying && t->st != tx_state::proceeding) return false;
  t->last_response = std::move(response);
  emit(send{t->target, *t->last_response, t->id});
  if (code < 200) {
    t->st = tx_state::proceeding;
    return true;
  }
  t->st = tx_state::completed;
  if (t->target.reliable) {
    terminate(*t);
    return true;
  }
  t->wait_at = now + 64 * settings_.t1;  // Timer J
  reschedule(*t);
  return true;
}

void transaction_layer::on_transport_error(transaction_id tx, time_point /*now*/) {
  transaction* t = find(tx);
  if (!t) return;
  emit(transport_error{tx});
  terminate(*t);
}

void transaction_layer::on_flow_failed(std::uint64_t flow, time_point now) {
  // Through the index: a busy proxy forgets many (UDP) flows at once, among 100,000s of
  // transactions.
  std::vector<transaction_id> failed;
  for (auto it = reliable_clients_.lower_bound({flow, 0});
       it != reliable_clients_.end() && it->first == flow; ++it) {
    const transaction* t = find(it->second);
    if (t && (t->st == tx_state::calling || t->st == tx_state::trying ||
              t->st == tx_state::proceeding)) {
      failed.push_back(it->second);
    }
  }
  for (const auto id : failed) on_transport_error(id, now);
}

void transaction_layer::fire(transaction& t, time_point now) {
  for (;;) {
    std::optional<time_point>* due = nullptr;
    for (auto* slot : {&t.trying_at, &t.retransmit_at, &t.timeout_at, &t.wait_at}) {
      if (*slot && **slot <= now && (!due || **slot < **due)) due = slot;
    }
    if (!due) break;
    if (due == &t.trying_at) {
      t.trying_at.reset();
      if (!t.client && t.invite && t.st == tx_state::proceeding && !t.last_response) {
        t.last_response = make_response(t.request, 100);
        emit(send{t.target, *t.last_response, t.id});
      }
    } else if (due == &t.retransmit_at) {
      if (t.client && t.invite && t.st == tx_state::calling) {  // Timer A: doubles, no cap
        t.interval *= 2;
        emit(send{t.target, t.request, t.id});
      } else if (t.client && !t.invite &&
                 (t.st == tx_state::trying || t.st == tx_state::proceeding)) {  // Timer E
        t.interval =
            t.st == tx_state::trying ? std::min(2 * t.interval, settings_.t2) : settings_.t2;
        emit(send{t.target, t.request, t.id});
      } else if (!t.client && t.invite && t.st == tx_state::completed &&
                 t.last_response) {  // Timer G
        t.interval = std::min(2 * t.interval, settings_.t2);
        emit(send{t.target, *t.last_response, t.id});
      } else {
        t.retransmit_at.reset();
        continue;
      }
      ++stats_.retransmissions;
      t.retransmit_at = now + t.interval;
    } else if (due == &t.timeout_at) {
      ++stats_.timeouts;
      emit(timed_out{t.id});
      terminate(t);
      return;
    } else {
      terminate(t);
      return;
    }
  }
  reschedule(t);
}

void transaction_layer::on_timer(time_point now) {
  while (!schedule_.empty() && schedule_.begin()->first <= now) {
    const transaction_id id = schedule_.begin()->second;
    transaction* t = find(id);
    if (!t) {
      schedule_.erase(schedule_.begin());
      continue;
    }
    fire(*t, now);
  }
}

void transaction_layer::reschedule(transaction& t) {
  if (t.scheduled) schedule_.erase({*t.scheduled, t.id});
  t.scheduled.reset();
  for (const auto* slot : {&t.trying_at, &t.retransmit_at, &t.timeout_at, &t.wait_at}) {
    if (*slot && (!t.scheduled || **slot < *t.scheduled)) t.scheduled = **slot;
  }
  if (t.scheduled) schedule_.insert({*t.scheduled, t.id});
}

void transaction_layer::terminate(transaction& t) {
  if (t.scheduled) schedule_.erase({*t.scheduled, t.id});
  auto& index = t.client ? client_index_ : server_index_;
  for (const auto& key : t.keys) {
    auto it = index.find(key);
    if (it != index.end() && it->second == t.id) index.erase(it);
  }
  if (t.cancel_id != 0 && !t.cancel_started) emit(terminated{t.cancel_id});
  if (t.client && t.target.reliable) reliable_clients_.erase({t.target.flow, t.id});
  --(t.client ? client_count_ : server_count_);
  const transaction_id id = t.id;
  emit(terminated{id});
  transactions_.erase(id);
}

std::optional<time_point> transaction_layer::next_deadline() const {
  if (schedule_.empty()) return std::nullopt;
  return schedule_.begin()->first;
}

std::vector<transaction_layer::action> transaction_layer::take_actions() {
  std::vector<action> out;
  out.swap(actions_);
  return out;
}

std::optional<tx_state> transaction_layer::state(transaction_id tx) const {
  const transaction* t = find(tx);
  if (!t) return std::nullopt;
  return t->st;
}

transaction_stats transaction_layer::stats() const {
  transaction_stats s = stats_;
  s.server_transactions = server_count_;
  s.client_transactions = client_count_;
  return s;
}

}  // namespace p2psip::sip
