#pragma once
// RFC 3261 section 17 transactions, sans-I/O: the transaction layer of one SIP endpoint (UA or
// proxy). The front end owns the sockets: it feeds parsed messages with on_message(), time with
// on_timer(), and turns the actions of take_actions() into sends and TU events. No clock is read
// here: every entry point takes `now`.
//
// Readings of the RFC:
// - INVITE server and client transactions have the RFC 6026 Accepted state: a 2xx moves them to
//   Accepted (Timer L / Timer M, 64*T1) instead of Terminated, so INVITE retransmissions after a
//   2xx are absorbed and further 2xx responses reach the TU (a proxy forwards them upstream).
// - RFC 2543 requests (top Via branch without the magic cookie) are matched as 17.2.3 describes:
//   Request-URI, From tag, Call-ID, CSeq number, top Via and the To tag (for an ACK, the To tag of
//   the final response the transaction sent).
// - A response matches a client transaction on branch and CSeq method (17.1.3) and, unless
//   timer_settings::match_response_flow is false, only when it arrives on the flow the request was
//   sent to (a response is never matched on the branch alone).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "p2psip/sip/headers.hpp"
#include "p2psip/sip/message.hpp"

namespace p2psip::sip {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;

/// Where a message goes or came from. Opaque to the layer: the front end maps `flow` to a UDP
/// remote endpoint or a TCP/TLS connection. `reliable` selects the timers: A, E and G only on
/// unreliable flows; D, I, J and K are zero on reliable ones.
struct sip_target {
  std::uint64_t flow = 0;
  bool reliable = false;
  bool operator==(const sip_target&) const = default;
};

/// A transaction of one transaction_layer; never 0 (0 means "none").
using transaction_id = std::uint64_t;

/// RFC 3261 timer values (17.1.1.1, table 4) and the layer's limits.
struct timer_settings {
  std::chrono::milliseconds t1{
      500};  ///< RTT estimate; A, E, G start here; B, F, H, J, L, M = 64*T1
  std::chrono::milliseconds t2{4000};        ///< cap of E (and G) on unreliable flows
  std::chrono::milliseconds t4{5000};        ///< I and K on unreliable flows
  std::chrono::milliseconds timer_d{32000};  ///< INVITE client Completed wait on unreliable flows
  /// An INVITE server transaction sends 100 Trying when the TU has not answered by then (17.2.1);
  /// zero sends it as soon as the INVITE arrives (what a proxy does, 16.2).
  std::chrono::milliseconds trying_delay{200};
  /// New requests beyond this many server transactions get a stateless 503 (no transaction).
  std::size_t max_server_transactions = 10000;
  /// Match a response only when it arrives on the flow its request was sent to.
  bool match_response_flow = true;
};

/// States of RFC 3261 figures 5 to 8, with RFC 6026 Accepted.
enum class tx_state {
  calling,     ///< INVITE client: request sent, nothing received
  trying,      ///< non-INVITE client or server: nothing sent back yet
  proceeding,  ///< a provisional response received (client) or sent (server)
  completed,   ///< a final response (non-2xx for INVITE) received or sent
  confirmed,   ///< INVITE server: ACK for the non-2xx final received (Timer I)
  accepted,    ///< INVITE: 2xx received or sent (RFC 6026, Timer M or L)
};

/// Counters for a status line.
struct transaction_stats {
  std::size_t server_transactions = 0;  ///< alive now
  std::size_t client_transactions = 0;  ///< alive now
  std::uint64_t retransmissions = 0;    ///< requests and responses sent again (timers or absorbed)
  std::uint64_t timeouts = 0;           ///< Timer B, F, H (and the 64*T1 wait after a CANCEL)
  std::uint64_t absorbed = 0;           ///< retransmitted requests and responses not passed up
  std::uint64_t stray_responses = 0;    ///< responses that matched no client transaction
  std::uint64_t overload_rejections = 0;  ///< stateless 503s over max_server_transactions
  std::uint64_t dropped = 0;              ///< messages without a usable top Via or CSeq
};

/// The transaction layer of one SIP endpoint (RFC 3261 section 17). Not thread-safe.
class transaction_layer {
 public:
  /// Put `msg` on the wire to `target`. `tx` is the transaction it belongs to (0 for a stateless
  /// 503); report a failure with on_transport_error(tx).
  struct send {
    sip_target target;
    message msg;
    transaction_id tx = 0;
  };
  /// A new request for the TU (retransmissions are absorbed). Answer it with respond(server_tx).
  /// For a CANCEL, `cancels` names the INVITE server transaction it matches (17.2.3, 9.2), if any.
  struct request_received {
    transaction_id server_tx = 0;
    message request;
    sip_target source;
    std::optional<transaction_id> cancels;
  };
  /// An ACK that no server transaction absorbed: the ACK for a 2xx (its own branch), or one that
  /// matched an INVITE server transaction in Accepted (then `server_tx` is set, RFC 6026).
  struct ack_received {
    message ack;
    sip_target source;
    std::optional<transaction_id> server_tx;
  };
  /// A response that matched no client transaction (a 2xx retransmission after the transaction
  /// ended, or garbage). A proxy forwards 2xx ones statelessly (16.7 step 5); the TU decides.
  struct stray_response {
    message response;
    sip_target source;
  };
  /// A provisional or final response of a client transaction (retransmitted finals absorbed; in
  /// Accepted, every 2xx is passed up, RFC 6026).
  struct response_received {
    transaction_id client_tx = 0;
    message response;
  };
  /// No final response in time (Timer B, F, or 64*T1 after a CANCEL), or no ACK (Timer H).
  struct timed_out {
    transaction_id tx = 0;
  };
  /// The front end reported a send failure (on_transport_error); the transaction is terminated.
  struct transport_error {
    transaction_id tx = 0;
  };
  /// The transaction is gone; its id will not appear again.
  struct terminated {
    transaction_id tx = 0;
  };
  using action = std::variant<send, request_received, ack_received, stray_response,
                              response_received, timed_out, transport_error, terminated>;

  explicit transaction_layer(timer_settings settings = {});

  /// Feeds a message received from `source` (as parse_datagram / stream_parser give it: validated).
  /// Requests are matched to server transactions (17.2.3), responses to client ones (17.1.3).
  /// Call stamp_received on a request first: its responses copy the stamped Via. A message without
  /// a parsable top Via (or, for a request, From, To, Call-ID, CSeq when RFC 2543) is dropped and
  /// counted.
  void on_message(const message& m, sip_target source, time_point now);

  /// Starts a client transaction for `request` (not ACK) and sends it. The caller has put a top Via
  /// with a fresh RFC 3261 branch (make_branch). Returns 0, sending nothing, when the request is an
  /// ACK, has no such Via or CSeq, or its branch and method are already in use.
  transaction_id start_client(message request, sip_target dest, time_point now);

  /// Cancels an INVITE client transaction (9.1): returns the id of the CANCEL client transaction.
  /// The CANCEL is sent now if a provisional response has arrived, else when one does (if a final
  /// response comes first, the CANCEL transaction only reports `terminated`). If no final response
  /// arrives within 64*T1 afterwards, the INVITE transaction times out. Returns 0 when `invite_tx`
  /// is not an INVITE client transaction waiting for its final response; the same id if already
  /// asked.
  transaction_id cancel(transaction_id invite_tx, time_point now);

  /// Sends `response` through server transaction `server_tx` to the request's source. INVITE: 1xx
  /// (stops the automatic 100), 2xx (Accepted; more 2xx may follow), 3xx-6xx (retransmitted with
  /// Timer G until the ACK, Timer H). Non-INVITE: 1xx, then one final (Timer J). Returns false,
  /// sending nothing, when the transaction is unknown or cannot send this response any more.
  bool respond(transaction_id server_tx, message response, time_point now);

  /// The front end could not send a message of `tx`: reports transport_error and terminates it.
  void on_transport_error(transaction_id tx, time_point now);

  /// The front end's reliable flow `flow` is gone (its connection closed, or never came up):
  /// client transactions that sent on it and still wait for a final response can never get one
  /// (a response matches only on its request's flow): each reports transport_error and is
  /// terminated (RFC 3261 17.1.4), now rather than at Timer B or F. Unreliable flows are left
  /// alone (a UDP flow has no connection to lose).
  void on_flow_failed(std::uint64_t flow, time_point now);

  /// Fires every timer due at `now`.
  void on_timer(time_point now);
  /// The earliest timer, if any transaction has one.
  std::optional<time_point> next_deadline() const;
  /// The actions produced so far, oldest first; the queue is emptied.
  std::vector<action> take_actions();

  /// The state of a live transaction, nullopt once terminated.
  std::optional<tx_state> state(transaction_id tx) const;
  transaction_stats stats() const;
  const timer_settings& settings() const noexcept { return settings_; }

 private:
  struct transaction {
    transaction_id id = 0;
    bool client = false;
    bool invite = false;
    tx_state st = tx_state::trying;
    sip_target target;  ///< client: destination; server: the request's source
    message request;
    std::optional<message> last_response;     ///< server: the last response sent
    std::optional<message> ack;               ///< INVITE client: the ACK of the non-2xx final
    std::vector<std::string> keys;            ///< its entries in the match index
    std::string index_base;                   ///< server, RFC 2543: key without method and To tag
    std::chrono::milliseconds interval{0};    ///< current A, E or G interval
    std::optional<time_point> retransmit_at;  ///< A, E, G
    std::optional<time_point> timeout_at;     ///< B, F, H, or 64*T1 after a CANCEL
    std::optional<time_point> wait_at;        ///< D, I, J, K, L, M
    std::optional<time_point> trying_at;      ///< the automatic 100 Trying
    std::optional<time_point> scheduled;      ///< its entry in schedule_
    transaction_id cancel_id = 0;             ///< INVITE client: the CANCEL asked for
    bool cancel_started = false;
  };
  void on_request(const message& m, const via& top, sip_target source, time_point now);
  void on_response(const message& m, sip_target source, time_point now);
  void on_ack(const message& m, const via& top, sip_target source, time_point now);
  void retransmit_last_response(transaction& t);
  void start_cancel(transaction& invite, transaction_id cancel_id, time_point now);
  void complete_invite_client(transaction& t, const message& response, time_point now);
  void fire(transaction& t, time_point now);
  void reschedule(transaction& t);
  void terminate(transaction& t);
  transaction* find(transaction_id id);
  const transaction* find(transaction_id id) const;
  void emit(action a) { actions_.push_back(std::move(a)); }

  timer_settings settings_;
  transaction_id next_id_ = 1;
  std::map<transaction_id, transaction> transactions_;
  std::map<std::string, transaction_id> server_index_;
  std::map<std::string, transaction_id> client_index_;
  std::set<std::pair<time_point, transaction_id>> schedule_;
  /// (flow, id) of the client transactions sent on reliable flows (start_client): on_flow_failed.
  std::set<std::pair<std::uint64_t, transaction_id>> reliable_clients_;
  std::vector<action> actions_;
  std::size_t server_count_ = 0;
  std::size_t client_count_ = 0;
  transaction_stats stats_;
};

/// A branch for a new client transaction: "z9hG4bK" + hex of `random` + a process-wide counter,
/// so two calls never return the same value even with the same `random`.
std::string make_branch(std::uint64_t random);

/// The reason phrase RFC 3261 section 21 gives `status` ("OK", "Request Terminated"), or "".
std::string_view default_reason(int status);

/// A response to `request` (RFC 3261 8.2.6): every Via in order, From, To, Call-ID, CSeq (and
/// Timestamp for a 100). `to_tag` is added to To when To has none and status > 100. An empty
/// `reason` becomes default_reason(status).
message make_response(const message& request, int status, std::string_view reason = {},
                      std::optional<std::string_view> to_tag = std::nullopt);

/// The CANCEL of `invite` (9.1): same Request-URI, Call-ID, From, To, CSeq number; only the top
/// Via; the Route headers; Max-Forwards 70.
message make_cancel(const message& invite);

/// The ACK of an INVITE client transaction for a non-2xx final response (17.1.1.3).
message make_ack_for_failure(const message& invite, const message& response);

/// Via editing (the top Via may share a header line with others; the rest are kept as written).
/// Replaces the top Via value; false when there is none.
bool replace_top_via(message& m, const via& v);
/// Removes the top Via value; false when there is none.
bool remove_top_via(message& m);
/// Adds `v` as the new top Via (its own header line, before the other Via headers).
void push_via(message& m, const via& v);

/// RFC 3261 18.2.1 and RFC 3581 section 4 on a received request: adds received=`source_ip` to the
/// top Via when its sent-by host differs from it (textual comparison, brackets ignored) or when
/// the Via has rport, and sets rport=`source_port` when the Via has rport without a value.
/// Returns false (request unchanged) when there is no parsable top Via.
bool stamp_received(message& request, std::string_view source_ip, std::uint16_t source_port);

/// Where to send a response when the request's connection is gone or the transport is
/// unreliable (18.2.2, RFC 3581): maddr if present; else received (port: rport value, else the
/// sent-by port, else 5060, 5061 for TLS); else the sent-by host (which may need RFC 3263 section
/// 5 resolution) and port. IPv6 hosts come without brackets.
struct response_address {
  std::string host;
  std::uint16_t port = 5060;
  std::string transport;  ///< the Via's transport, upper-case
  bool operator==(const response_address&) const = default;
};
/// nullopt when the response has no parsable top Via.
std::optional<response_address> response_destination(const message& response);

}  // namespace p2psip::sip
