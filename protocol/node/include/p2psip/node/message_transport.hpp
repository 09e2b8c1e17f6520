#pragma once
// RELOAD's Message Transport (RFC 6940 1.2, 6.1-6.3): originating requests, forwarding, routing or
// delivering what arrives, answering, and the table of requests in flight keyed by (transaction
// id, link). Each request carries its own typed completion (like libtorrent's observers), so an
// answer goes back to the part that asked and nothing calls up into a god object. Requests
// addressed to this node are handed, decoded and with their verified signer, to the handler
// registered for their message code (the topology plugin's and the usages').
//
// Readings of the RFC taken here (docs/conformance.md):
// - Routing state is kept in the via list (6.1.2 first strategy); answers go to
//   [previous hop] + reverse(via). Responses are forwarded without via entries.
// - TTL above initial-ttl: Error_TTL_Exceeded for any request; TTL 0: only when it would be
//   forwarded. A response with a bad TTL, duplicate destinations, etc. is dropped, never answered.
// - Own Node-ID in a request's via list (loop) and duplicate destination entries (13.6.5):
//   Error_Invalid_Message, except our own request come back to us (the completion learns it).
//   A request is never forwarded to a node already in its via list.
// - A Node-ID destination neither connected nor routable onwards: Error_Not_Found.
//   Opaque/compressed ids (we mint none): Error_Invalid_Message.
// - configuration_sequence (6.3.2.1): every message carries ours; a request for us with another
//   one is answered Error_Config_Too_Old / Error_Config_Too_New (65535 on a ConfigUpdate is
//   accepted), and a requester with an older document is sent a ConfigUpdate. Our own
//   ConfigUpdates carry 65535, so that a node with an older document does not refuse them.

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "p2psip/node/connection_table.hpp"
#include "p2psip/node/node_types.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/limits.hpp"

namespace p2psip::node {

struct transport_config {
  protocol::node_id self;
  std::uint32_t overlay = 0;  ///< forwarding header `overlay` (overlay_hash of the name)
  /// Our configuration document's sequence (6.3.2.1): sent on every message, checked on requests.
  std::uint16_t configuration_sequence = 0;
  protocol::limits limits;  ///< codec limits, node_id_length and initial_ttl
  /// Data models of the overlay's kinds; bodies naming another kind keep its values undecoded.
  protocol::kind_model_lookup kind_models = protocol::registered_kind_model;
  duration request_timeout{15'000};  ///< end-to-end request timeout
  std::size_t max_pending = 1024;    ///< outstanding requests of this node
  unsigned max_malformed_per_link = 8;
  /// A client never forwards for others (RFC 6940 4.2.1).
  bool forwards = true;
};

/// Decisions only the topology plugin can make, asked while routing (RFC 6940 1.2).
class router {
 public:
  virtual ~router() = default;
  /// Joined to a ring that routes by Resource-ID; false: only this node's own links count.
  virtual bool routes() const = 0;
  /// This node is responsible for `point` (only asked when routes()).
  virtual bool is_responsible(const protocol::node_id& point) const = 0;
  /// The next hop towards `point` (greedy), never a node of `avoid`.
  virtual std::optional<protocol::node_id> next_hop(
      const protocol::node_id& point, const std::vector<protocol::node_id>& avoid) const = 0;
  /// Where every request of this node's own goes, when set (a client's home peer).
  virtual std::optional<link_id> default_link() const { return std::nullopt; }
};

/// A request addressed to this node, decoded and verified.
struct inbound_request {
  link_id link;  ///< where it arrived; {} for our own request delivered locally
  protocol::message message;
  protocol::message_body body;
  crypto::verified_signer signer;
  /// Sent straight by its signer over its own link (no via entries).
  bool direct = false;
  /// Our own request, signed in this process and delivered here without leaving it: the values
  /// it carries that this process signed need not be verified again (the StoreReq's, through
  /// the trust store's record of its own signatures). Never set for a message from a link.
  bool from_this_process = false;
};

class request_handler {
 public:
  virtual ~request_handler() = default;
  /// Answer with message_transport::answer / send_error (now or later).
  virtual void on_request(const inbound_request& r, time_point now) = 0;
};

/// How a request of ours ended.
struct outcome {
  enum class kind : std::uint8_t {
    answer,    ///< an answer of the expected kind or any non-error response
    error,     ///< an Error response (`error` holds it)
    timeout,   ///< nothing within request_timeout, or the link it went on was lost
    returned,  ///< our own request came back to us (via list starts with us)
  };
  kind what = kind::timeout;
  link_id link;                                   ///< where the answer arrived
  protocol::message message;                      ///< the answer as received (answer / error)
  protocol::message_body body;                    ///< its decoded body (answer / error)
  std::optional<crypto::verified_signer> signer;  ///< who answered (answer / error)
  protocol::error_response error;                 ///< kind::error
  bool ok() const noexcept { return what == kind::answer; }
};
using completion = std::function<void(outcome&&, time_point)>;

/// "error N (text)" or "no answer" for a log line.
std::string describe(const outcome& o);

/// Counters of the message transport, for tests and monitoring.
struct transport_stats {
  std::uint64_t forwarded = 0;            ///< messages passed on towards others
  std::uint64_t delivered_locally = 0;    ///< messages for this node
  std::uint64_t dropped = 0;              ///< not delivered nor forwarded (no error sent)
  std::uint64_t errors_sent = 0;          ///< Error responses we made
  std::uint64_t malformed = 0;            ///< undecodable messages
  std::uint64_t timeouts = 0;             ///< requests of ours nobody answered
  std::uint64_t config_updates_sent = 0;  ///< ConfigUpdates to nodes with an older document
  /// Requests of ours not sent: the pending table was full (max_pending) (logged at WARN).
  std::uint64_t refused_pending_full = 0;
  /// Messages we forwarded or answered on a link that closed before its other end took them,
  /// routed again (link_down's `undelivered`), and those that could not be.
  std::uint64_t rerouted = 0;
  std::uint64_t reroute_dropped = 0;
};

/// Durations counted in fixed buckets (Prometheus's histogram shape, kept here without the
/// library: the node layer stays free of monitoring dependencies).
struct latency_histogram {
  /// Upper bounds of the buckets, in seconds; a last bucket takes everything above.
  static constexpr std::array<double, 14> bounds_seconds{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  /// Observations per bucket (not cumulative); the last one is above every bound.
  std::array<std::uint64_t, bounds_seconds.size() + 1> counts{};
  double sum_seconds = 0;
  std::uint64_t count = 0;
  void observe(std::chrono::nanoseconds d);
};

/// What went through the message transport, by message code, for monitoring. Codes outside
/// RFC 6940's registry (message codes) or with no registered name (Error-Codes) are counted
/// under `other_code`, so that a peer sending random codes cannot grow these maps.
struct transport_traffic {
  static constexpr std::uint16_t other_code = 0;
  /// Messages decoded from links, and messages sent (originated, answered, forwarded), by
  /// message code (0xffff: Error).
  std::map<std::uint16_t, std::uint64_t> received_by_code;
  std::map<std::uint16_t, std::uint64_t> sent_by_code;
  /// Error responses we sent, and those that answered requests of ours, by Error-Code.
  std::map<std::uint16_t, std::uint64_t> errors_sent_by_code;
  std::map<std::uint16_t, std::uint64_t> errors_received_by_code;
  /// Requests of ours, from sending until their answer or error arrived, by request code
  /// (timeouts are transport_stats::timeouts, not observations).
  std::map<std::uint16_t, latency_histogram> request_latency;
};

/// Options of one originated request.
struct send_options {
  /// Send on this link (else: to a link to the first destination, or routed).
  std::optional<link_id> via;
  /// Sent straight to this neighbor: `direct_target` is the Node-ID addressed, for liveness.
  bool direct = false;
  /// Signs the request instead of the node's own signer: a peer acting for a user whose
  /// credentials it holds (RFC 7904: only the owner of the certificate may store its
  /// SIP-REGISTRATION, and in a non-replica Store the StoreReq's signer must meet the kind's
  /// policy too, RFC 6940 7.3). Must outlive the call; answers are checked by the node's signer.
  message_signer* sign_as = nullptr;
};

class message_transport {
 public:
  message_transport(transport_config cfg, connection_table& links, router& topology,
                    message_signer& signer, random_source& rng, action_queue& actions);

  const transport_config& config() const noexcept { return cfg_; }
  void set_configuration_sequence(std::uint16_t sequence) {
    cfg_.configuration_sequence = sequence;
  }
  /// The configuration document sent in ConfigUpdates to nodes with an older one (null or
  /// empty: none). Shared: the clients of one process hold one copy.
  void set_configuration_document(std::shared_ptr<const protocol::bytes> document) {
    document_ = std::move(document);
  }

  /// Requests with this message code addressed to us go to `h` (which must outlive us).
  void handle(std::uint16_t request_code, request_handler& h) { handlers_[request_code] = &h; }
  /// Asked before a request that arrived from a client (a link no Join or Update came over) is
  /// forwarded: a reason refuses it with Error_Forbidden (a usage's rule on what clients send).
  using forward_check = std::function<std::optional<std::string>(const protocol::message&)>;
  void set_client_forward_check(forward_check check) { client_forward_check_ = std::move(check); }
  /// The body decoding context (the overlay's kinds and those usages registered).
  const protocol::body_context& bodies() const noexcept { return body_context_; }
  void add_kind_model(std::uint32_t kind, protocol::data_model model);

  /// Bytes of one message arrived on a link.
  void on_message(link_id link, protocol::byte_view data, time_point now);
  /// The link is gone. Requests of ours waiting on it are sent once more on another first hop
  /// when there is one (the link may have been closed by its other end as ours was on its way),
  /// else they end with kind::timeout. `undelivered`: messages sent on it that its other end
  /// never took (the link layer's unacknowledged frames, oldest first); those we forwarded or
  /// answered are routed again by the links left (reroute_undelivered).
  void link_down(link_id link, const protocol::node_id& remote, time_point now,
                 std::vector<protocol::bytes> undelivered = {});
  /// Routes again the messages of a lost link that its other end never took: a request we
  /// forwarded as if it had just arrived from its previous hop, an answer or forwarded response
  /// by its destination list. Requests of ours are left to link_down (sent once more).
  void reroute_undelivered(std::vector<protocol::bytes> undelivered, time_point now);
  void on_timer(time_point now);
  std::optional<time_point> next_deadline() const;

  /// Sends a request towards `destinations`; `done` runs once with its outcome. Nothing is sent
  /// (nullopt) when the pending table is full, the body does not encode, or there is no route.
  /// Leading entries naming this node are dropped: [self, client] goes to the client's link.
  std::optional<std::uint64_t> originate(std::vector<protocol::destination> destinations,
                                         const protocol::message_body& body, completion done,
                                         time_point now, send_options opts = {},
                                         std::vector<protocol::generic_certificate> certs = {});
  /// Answers a request delivered to a handler.
  void answer(const inbound_request& r, const protocol::message_body& body, time_point now,
              std::vector<protocol::generic_certificate> certs = {});
  void send_error(link_id from, const protocol::message& request, protocol::reload_errc code,
                  std::string_view text, time_point now);
  void send_error(const inbound_request& r, protocol::reload_errc code, std::string_view text,
                  time_point now) {
    send_error(r.link, r.message, code, text, now);
  }
  /// Answers Error_Message_Too_Large to a message cut short at its forwarding header (6.6).
  void refuse_oversized(link_id link, protocol::byte_view header_bytes,
                        std::uint32_t declared_length, time_point now);

  std::size_t pending_count() const noexcept { return pending_.size(); }
  /// Requests a client sent us on `link` that we have not answered yet (ours or forwarded ones
  /// whose answer has not come back), not counting those older than request_timeout (their
  /// answer is lost). The runtime reads no more of a client's requests while it has too many
  /// in progress: a client cannot fill the overlay's queues ahead of the others.
  std::size_t client_requests_in_progress(link_id link, time_point now);
  /// Links with a request of ours waiting on them, sorted.
  std::vector<link_id> busy_links() const;

  std::uint64_t new_txid();

  const transport_stats& counters() const noexcept { return stats_; }
  /// Messages and errors by code, and request latencies.
  const transport_traffic& traffic() const noexcept { return traffic_; }
  /// Stops processing: every message is dropped from now on (the node left the overlay).
  void set_closed() { closed_ = true; }

 private:
  struct pending_request {
    time_point deadline;
    completion done;
    /// The request as sent (signed), for one more attempt when its link goes down first.
    protocol::message sent;
    bool resent = false;
    /// When it was first sent, and its code: the latency observed when it completes.
    time_point sent_at{};
    std::uint16_t code = 0;
  };
  struct pending_key {
    std::uint64_t txid = 0;
    link_id link;
    friend auto operator<=>(const pending_key&, const pending_key&) = default;
  };

  void handle_message(link_id link, protocol::message&& m, time_point now);
  /// `own`: the signer of our own request, not yet signed: readied for ourselves with
  /// message_signer::prepare_own when delivered here, signed if forwarded. Without it a message
  /// delivered here is verified.
  void route_or_deliver(link_id from, protocol::message&& m, time_point now,
                        message_signer* own = nullptr);
  void forward(link_id from, link_id to, protocol::message&& m, time_point now);
  void deliver_local(link_id from, protocol::message&& m, time_point now, message_signer* own);
  void dispatch_request(link_id from, protocol::message&& m, crypto::verified_signer&& signer,
                        time_point now, bool from_this_process = false);
  void handle_response(link_id from, protocol::message&& m,
                       std::optional<crypto::verified_signer> signer, time_point now);
  void send_answer(link_id from, const protocol::message& request,
                   const protocol::message_body& body, time_point now,
                   std::vector<protocol::generic_certificate> certs = {});
  bool own_request_returned(protocol::message& m, time_point now);
  void send_config_update(link_id from, const protocol::message& request, time_point now);
  /// The link a request of ours to `d` goes out on (routed: never through a node of `avoid`).
  std::optional<link_id> first_hop(const protocol::destination& d,
                                   const std::vector<protocol::node_id>& avoid = {}) const;
  bool encode_and_send(link_id link, protocol::message& m, time_point now);
  void complete(pending_request&& p, outcome&& o, time_point now);
  void malformed(link_id link, std::string_view why);

  transport_config cfg_;
  connection_table& links_;
  router& topology_;
  message_signer& signer_;
  random_source& rng_;
  action_queue& actions_;
  protocol::body_context body_context_;
  std::map<std::uint32_t, protocol::data_model> extra_kinds_;
  std::shared_ptr<const protocol::bytes> document_;
  std::map<std::uint16_t, request_handler*> handlers_;
  forward_check client_forward_check_;
  std::map<pending_key, pending_request> pending_;
  /// Per client link: when each request it sent us and we have not answered yet arrived, oldest
  /// first (answers go out in about the order requests came).
  std::map<link_id, std::deque<time_point>> client_requests_;
  /// WARN lines about requests refused for a full pending table.
  log_throttle pending_full_log_;
  /// An answer went out on `link`: one request of its client less in progress.
  void answered_on(link_id link);
  /// Counts a message sent on a link.
  void count_sent(std::uint16_t code) { ++traffic_.sent_by_code[traffic_code(code)]; }
  static std::uint16_t traffic_code(std::uint16_t code);
  transport_stats stats_;
  transport_traffic traffic_;
  bool closed_ = false;
};

}  // namespace p2psip::node
