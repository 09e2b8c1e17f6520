#pragma once
// Building blocks of an RFC 3261 section 16 stateful proxy, sans-I/O. The front end assembles them
// with a transaction_layer: a request_received goes through check_request_for_proxy (16.3) and
// preprocess_route (16.4); each target gets prepare_forward (16.6) and
// transaction_layer::start_client; a response_context (16.7) per server transaction decides what
// goes upstream (through transaction_layer::respond) and which branches to CANCEL
// (transaction_layer::cancel), and runs Timer C (16.8).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "p2psip/sip/error.hpp"
#include "p2psip/sip/headers.hpp"
#include "p2psip/sip/message.hpp"
#include "p2psip/sip/transaction.hpp"
#include "p2psip/sip/uri.hpp"

namespace p2psip::sip {

/// A sent-by this proxy writes in its Via. A Via matches when its host is equal (case-insensitive)
/// and its port, or the default of its transport (5060, 5061 for TLS), equals `port`.
struct sent_by {
  std::string host;
  std::uint16_t port = 5060;
};

/// True when the Via's sent-by is one of `own`.
bool is_own_via(const via& v, const std::vector<sent_by>& own);

/// Why a request is not proxied, and the response to send (make_response(request, status, reason)
/// plus `headers`, e.g. Unsupported for a 420).
struct proxy_rejection {
  int status = 0;
  std::string reason;
  std::vector<header> headers;
  bool operator==(const proxy_rejection&) const = default;
};

struct proxy_check_options {
  /// Option tags this proxy supports in Proxy-Require; any other gives 420 (16.3 item 5).
  std::vector<std::string> supported;
  /// This proxy's sent-by values, for loop detection (16.3 item 4); empty: no loop check.
  std::vector<sent_by> own;
};

/// The request validation of 16.3, in the RFC's order: 416 for a Request-URI scheme other than
/// sip, sips and tel (item 2); 483 Too Many Hops when Max-Forwards is 0 (item 3; an OPTIONS
/// addressed to this proxy may instead be answered locally: the caller decides before calling);
/// 482 Loop Detected when a Via of ours carries the branch loop_hash gives for this request as we
/// received it then (item 4: the Request-URI, Call-ID, CSeq, tags and the Via below ours are the
/// same, so the request is looping, not spiralling); 420 Bad Extension with an Unsupported header
/// listing the Proxy-Require tags not in `supported` (item 5). A malformed header this check needs
/// gives 400. nullopt: proxy it.
std::optional<proxy_rejection> check_request_for_proxy(const message& request,
                                                       const proxy_check_options& options);

/// The loop-detection part of a proxy branch (16.6 item 8): 32 hex digits of SHA-256 over the
/// Request-URI as received, the top Via, Call-ID, CSeq number, From tag, To tag, and the
/// Proxy-Require and Proxy-Authorization values. Max-Forwards and Route are left out (they change
/// at every hop).
std::string loop_hash(const message& received_request);
/// "z9hG4bK" + loop_hash(received_request) + "." + hex of `unique`: a branch for one forwarded
/// copy (one per target) that check_request_for_proxy recognises when the request loops back.
std::string make_proxy_branch(const message& received_request, std::uint64_t unique);

/// What preprocess_route did.
struct route_preprocessing {
  bool strict_route_fixed = false;  ///< the Request-URI was ours: replaced by the last Route
  bool removed_own_route = false;   ///< the first Route was ours and is gone
  bool operator==(const route_preprocessing&) const = default;
};
/// 16.4: when the Request-URI is one of ours (a value we put in Record-Route, for a strict router
/// upstream), it is replaced by the last Route value, which is removed; then, when the first Route
/// value is ours, it is removed. Route values are rewritten one per header line.
result<route_preprocessing, parse_error> preprocess_route(
    message& request, const std::function<bool(const uri&)>& is_self);

struct forward_options {
  std::string via_host;  ///< our sent-by host
  std::optional<std::uint16_t> via_port;
  std::string via_transport = "UDP";
  std::string branch;               ///< make_proxy_branch(request, unique) keeps loops detectable
  bool rport = false;               ///< ask the next hop for rport (RFC 3581)
  std::optional<uri> record_route;  ///< inserted before any Record-Route; ;lr added if missing
  std::vector<uri> routes;          ///< inserted before the existing Route values, in this order
  std::optional<uri> path;          ///< RFC 3327: inserted before any Path (REGISTER)
};

/// 16.6 steps 1 to 8 for one target: a copy with Request-URI `target`, Max-Forwards decremented
/// (70 when absent), the optional Record-Route, Route and Path values, strict-route postprocessing
/// (step 6: a first Route without lr becomes the Request-URI and the Request-URI the last Route),
/// and our Via on top. Content-Length is the serializer's (step 9). 483 when Max-Forwards is 0,
/// 400 when a header it edits is malformed.
result<message, parse_error> prepare_forward(const message& request, const uri& target,
                                             const forward_options& options);

/// Where a request goes next (16.6 step 7, 8.1.2): the first Route URI, else the Request-URI.
result<uri, parse_error> next_hop(const message& request);

/// 16.7 step 3: true when the response's top Via is one of ours (else it is not for us: drop).
bool top_via_is_ours(const message& response, const std::vector<sent_by>& own);

struct response_context_options {
  /// Timer C (16.8; more than 3 minutes), per INVITE branch, reset by provisional responses.
  /// Ignored for other methods.
  std::chrono::milliseconds timer_c{181000};
  /// The To tag of the responses the proxy makes itself (408 for a timed-out branch, the 500 that
  /// replaces a best 503).
  std::string to_tag;
};

/// What to do after a response, a timeout or Timer C.
struct proxy_decision {
  /// Send upstream through the server transaction (transaction_layer::respond). Responses from
  /// downstream come with the received request's Vias (16.7 step 9: ours removed).
  std::optional<message> forward;
  bool final = false;  ///< `forward` is a final response
  /// Client transactions to CANCEL (transaction_layer::cancel).
  std::vector<transaction_id> cancel;
};

/// The response context of one proxied request (16.7): its branches (client transactions), the
/// final responses received, and Timer C.
class response_context {
 public:
  /// `request` is the request as received (the server transaction's), before forwarding.
  explicit response_context(message request, response_context_options options = {});

  /// A new branch (client transaction) started at `now`. False (not added) after a final response
  /// was forwarded or a 6xx received (16.7 step 5), or for a known id.
  bool add_branch(transaction_id client_tx, time_point now);

  /// A response of client transaction `branch` (as the transaction layer passes it: our Via still
  /// on top). 100 is not forwarded; other 1xx are while no final was forwarded (and reset Timer
  /// C); a 2xx is forwarded at once and the other pending INVITE branches are cancelled; a 6xx
  /// cancels the pending INVITE branches; when every branch has a final, the best one is
  /// forwarded (16.7 step 6: a 6xx, else the lowest class, preferring 401, 407, 415, 420 and 484
  /// among 4xx, else the first received; 401/407 carry every challenge received; a 503 becomes
  /// 500).
  proxy_decision on_response(transaction_id branch, const message& response, time_point now);
  /// The branch timed out or failed to send: it counts as a 408 response (16.7 step 6).
  proxy_decision on_timeout(transaction_id branch);
  /// The upstream CANCEL (16.10): every branch without a final response that was not cancelled
  /// yet.
  std::vector<transaction_id> cancel_all();

  /// The earliest Timer C.
  std::optional<time_point> next_deadline() const;
  /// Timer C: a branch with a provisional response is cancelled; one without counts as a 408.
  proxy_decision on_timer(time_point now);

  /// A final response has been forwarded upstream.
  bool final_forwarded() const noexcept { return final_forwarded_; }
  /// Every branch has a final response (or timed out): the context can go once
  /// final_forwarded() too.
  bool complete() const noexcept;
  const message& request() const noexcept { return request_; }

 private:
  struct branch {
    transaction_id id = 0;
    bool provisional = false;
    bool final = false;
    bool cancelled = false;
    std::optional<time_point> timer_c;
  };
  branch* find(transaction_id id);
  void record_final(branch& b, message response, proxy_decision& d);
  void finish(proxy_decision& d);
  std::vector<transaction_id> cancel_pending();
  message best_response() const;

  message request_;
  response_context_options options_;
  bool invite_ = false;
  bool final_forwarded_ = false;
  bool six_xx_ = false;
  std::vector<branch> branches_;
  std::vector<message> finals_;  ///< in arrival order, with the request's Vias
};

}  // namespace p2psip::sip
