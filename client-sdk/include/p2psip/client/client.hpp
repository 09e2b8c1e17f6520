#pragma once
// The p2psip client SDK: a RELOAD client (RFC 6940 section 4.2.1). It attaches to one peer of an
// overlay over one TLS link, never joins, and reads and writes the overlay's data through it.
//
//   p2psip::client::client_options o;
//   o.config_file = "overlay.xml";
//   o.certificate_file = "alice.crt";
//   o.key_file = "alice.key";
//   auto c = p2psip::client::client::create(o);           // starts attaching
//   if (!c) { std::cerr << c.error().message << "\n"; return 1; }
//   auto put = (*c)->put("greeting", p2psip::client::to_bytes("hello"));
//   auto got = (*c)->get("greeting");                       // every writer's value
//
// Two levels of data access:
//   - put / get / remove: named byte values for applications that do not model the overlay's
//     data. They use p2psip's generic kind, a dictionary per name in which every writer owns
//     exactly its own entry (keyed by its Node-ID): get() returns every writer's value.
//   - store / fetch / stat / find / remove_items: typed data of any kind the overlay
//     configuration defines (single value, array, dictionary), with generation counters and
//     lifetimes, as RFC 6940 section 7 describes.
// Values returned by fetch and get have had their signatures verified against the overlay's CA.
//
// Every operation has a blocking form and a callback form (`..._async`). Callbacks run through
// the dispatcher in client_options (default: the callback thread), never on the caller's stack.
// Any member may be called from any thread. The client may be destroyed from inside one of its
// own callbacks. A blocking call made on the callback thread works (it is not the I/O thread);
// a blocking call of any client made on the I/O thread, from a dispatcher that runs callbacks
// inline, fails with errc::would_deadlock.
//
// Threads: the clients of a process share one I/O thread, started with the first client and
// ended (joined) when the last one is destroyed, and one default callback thread, started with
// the first callback. Every client's network work runs on the I/O thread, and the callbacks of
// every client without a dispatcher of its own run on the callback thread one at a time, in
// order: a callback that takes long (or blocks) delays the other clients' callbacks, and a
// dispatcher that runs callbacks inline on the I/O thread delays every client's I/O, keepalives
// included. Give a client whose callbacks are slow a dispatcher that hands them to a thread of
// the application's.
//
// Failover: when the attached peer's link dies (closed, or no ack to a keepalive), the client
// attaches to the next peer of its list and retries the operations in flight until their
// operation_timeout; none hangs. Operations started while no peer is attached wait for one
// (and fail at once with errc::no_peer when every peer of the list has refused). Answers that
// pass are retried too, within operation_timeout: a Store, Fetch, Stat or Find answered
// Error_Not_Found (no route, or "not responsible" while the ring changes) up to 4 times after
// 0.1-0.8 s, and any request answered Error_Config_Too_Old once the peer's newer configuration
// has arrived.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "p2psip/client/errors.hpp"

namespace p2psip::client {

using bytes = std::vector<std::uint8_t>;

inline bytes to_bytes(std::string_view s) {
  return bytes(s.begin(), s.end());
}
inline std::string to_string(const bytes& b) {
  return std::string(b.begin(), b.end());
}

/// Runs a callback somewhere (a thread pool, a GUI loop, ...). It must not drop callbacks.
using dispatcher = std::function<void(std::function<void()>)>;

/// How the client's SIP user agent reaches others and is reached (RFC 7904 section 3.3 and the
/// P2PSIP client discussion's two routing modes).
enum class sip_routing {
  /// Resolve the target AOR in the overlay, AppAttach to the node its route ends at and send the
  /// request over that connection. Others reach this client the same way: the registration is a
  /// route through the attached peer to this client, which accepts their connections at
  /// client_options::sip_listen.
  direct,
  /// One RFC 5626 flow over TLS to the attached peer, which is the outbound proxy of every
  /// request and delivers every incoming one. The registration is a route to that peer. After a
  /// failover the client registers again through the new peer.
  outbound_proxy,
};

struct client_options {
  std::string config_file;       ///< the overlay configuration document (overlay.xml)
  std::string certificate_file;  ///< NAME.crt from p2psip-admin enroll
  std::string key_file;          ///< NAME.key
  /// Peers to attach to, "IP:PORT", "[IPv6]:PORT" or "HOST:PORT", tried in order; empty: the
  /// configuration's bootstrap peers. Host names are resolved once, by create() on the calling
  /// thread (getaddrinfo; every address is tried); create() fails with no_peer when a name does
  /// not resolve, invalid_argument when an entry is malformed.
  std::vector<std::string> peers;
  /// Refuse a configuration for another overlay; empty: accept the document's own name.
  std::string overlay;
  /// How long one operation may take in all (waiting for a peer, retries after failover).
  std::chrono::milliseconds operation_timeout{30'000};
  /// How long one attempt waits for its answer before it is retried.
  std::chrono::milliseconds request_timeout{10'000};
  /// A Ping to the attached peer this often keeps the link alive and finds a dead peer.
  std::chrono::milliseconds keepalive_interval{20'000};
  /// Runs callbacks; empty: the callback thread the process's clients share (see the top of
  /// this file).
  client::dispatcher dispatcher;
  /// Receives debug lines (links, retries); may be empty. Called on the I/O thread, which every
  /// client shares: keep it short.
  std::function<void(std::string_view)> log;
  /// The SIP user agent's routing mode (sip_register, send_message, call).
  sip_routing sip_routing_mode = sip_routing::direct;
  /// Direct mode: where this client accepts SIP connections from other nodes once it serves SIP
  /// (sip_register or on_sip_request), "IP:PORT" (port 0: any free one). Empty: the local address
  /// this host uses toward the first peer, any port.
  std::string sip_listen;
};

enum class data_model { single_value, array, dictionary };

/// One value of a kind at a resource. Which fields matter follows from the kind's data model:
/// `index` for arrays, `key` for dictionaries, neither for a single value.
struct item {
  std::uint32_t index = 0;  ///< array index (store: 0xFFFFFFFF appends)
  bytes key;                ///< dictionary key
  bool exists = true;       ///< false: deleted (a tombstone)
  bytes value;
  /// store: seconds the value lives (0: the store call's lifetime). fetch/stat: the seconds left,
  /// counted by the answering peer from when it received the value.
  std::uint32_t lifetime = 0;
  std::uint64_t storage_time = 0;  ///< ms since the Unix epoch (fetch/stat)
  std::string signer_node_id;      ///< hex Node-ID that signed the value (fetch)
  std::string signer_user;         ///< user name of the signer's certificate (fetch)
  std::uint32_t value_length = 0;  ///< stat: the value's length (the value itself is not sent)
  bytes hash;                      ///< stat: SHA-256 over the value as RFC 6940 7.4.3 says
};

/// A kind's items at one resource, with the kind's generation counter.
struct kind_data {
  std::uint32_t kind = 0;
  data_model model = data_model::single_value;
  std::uint64_t generation = 0;
  std::vector<item> items;
};

/// Which items of a kind fetch or stat asks for.
struct selection {
  /// Every item (a single value: the value).
  static selection all() { return {}; }
  /// Array indices first..last (inclusive), several ranges allowed.
  static selection indices(std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges) {
    selection s;
    s.ranges = std::move(ranges);
    return s;
  }
  /// Dictionary keys.
  static selection keys(std::vector<bytes> keys) {
    selection s;
    s.keys_ = std::move(keys);
    return s;
  }
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges;
  std::vector<bytes> keys_;
};

struct store_options {
  std::uint32_t lifetime = 3600;  ///< seconds, for items whose own lifetime is 0
  /// Expected generation counter of the kind (0: store regardless; otherwise the peer refuses
  /// with errc::generation_conflict unless it matches what it holds).
  std::uint64_t generation = 0;
};

/// One writer's value of a put/get name.
struct owned_value {
  std::string owner_node_id;  ///< hex
  std::string owner_user;     ///< user name of the owner's certificate
  bytes value;
  std::uint64_t storage_time = 0;  ///< ms since the Unix epoch
  std::uint32_t lifetime = 0;      ///< seconds left, as the answering peer counts them
};

struct ping_info {
  std::string responder_node_id;  ///< hex
  std::chrono::microseconds round_trip{0};
};

/// The peer the client is attached to.
struct peer_info {
  std::string address;  ///< "IP:PORT"
  std::string node_id;  ///< hex
};

/// Where an AOR's calls go, as one registration says (RFC 7904 3.2): another AOR (`uri`), or a
/// route to a node (`route`, Node-IDs in hex, the last one the registered node).
struct sip_contact {
  std::string uri;                 ///< set: an AOR (or URI) to go to instead
  std::vector<std::string> route;  ///< else: the destination list to the registered node
  std::string contact_prefs;       ///< RFC 3840 feature parameters, e.g. "(sip.schemes=SIPS)"
};

/// One binding found by resolve(): a route to a registered node, with who registered it.
struct sip_binding {
  std::string aor;             ///< the AOR it was registered under (after indirections)
  std::string owner_node_id;   ///< the registering node (the dictionary key), hex
  std::string owner_user;      ///< user name of its certificate
  sip_contact contact;         ///< `route` set; `uri` only when an indirection was not followed
  std::uint32_t lifetime = 0;  ///< seconds left
};

/// A SIP request that arrived for this client's user agent.
struct sip_request {
  std::string method;        ///< "MESSAGE", "INVITE", "BYE", "CANCEL", "OPTIONS", ...
  std::string request_uri;   ///< as received
  std::string from;          ///< the From URI: who sends it
  std::string to;            ///< the To URI
  std::string call_id;       ///< the dialog's (or the request's) Call-ID
  std::string content_type;  ///< "" without a body
  bytes body;                ///< MESSAGE text, SDP offer, ...
};

/// A final SIP response: received (send_message, call) or to send (a sip_request_handler's answer).
struct sip_response {
  int status = 200;
  std::string reason;        ///< "" when answering: the standard phrase
  std::string call_id;       ///< of the request it answers (received responses)
  std::string content_type;  ///< "" without a body
  bytes body;                ///< an SDP answer, say
  /// Received responses: true when the SDK made it up instead of a node answering (404 when the
  /// overlay has no binding for the target, 408 when no binding answered, 503 when no connection
  /// could be opened).
  bool local = false;
};

/// Answers incoming requests (MESSAGE, INVITE, OPTIONS, ...), through the dispatcher, with the
/// final response to send. An INVITE has been answered 180 Ringing already; a 2xx answer
/// establishes a call (hang it up with client::hang_up(call_id)). BYE and CANCEL are answered by
/// the SDK (200; the INVITE gets 487 if not yet answered) and then shown to the handler, whose
/// answer is ignored.
using sip_request_handler = std::function<sip_response(const sip_request&)>;

/// What client::call sends, and what it reports while the call sets up.
struct call_options {
  bytes offer;  ///< the INVITE's body (SDP, passed through untouched); may be empty
  std::string content_type = "application/sdp";
  /// The call's Call-ID; empty: a new one. Set it to hang up (cancel) a call from another thread
  /// while call() still waits.
  std::string call_id;
  /// Provisional responses (180 Ringing, 183, ...), through the dispatcher: the last ones may
  /// still run after call() returned.
  std::function<void(const sip_response&)> progress;
};

class P2PSIP_CLIENT_API client {
 public:
  /// Reads the configuration and credentials, starts the process's I/O thread unless a client
  /// runs it already, and begins attaching to the first peer. Errors: bad_configuration,
  /// bad_credentials, invalid_argument (a bad peer address, no peer at all).
  static result<std::unique_ptr<client>> create(client_options options);

  /// Stops (as stop()) and frees everything. With the default callback thread, this client's
  /// callbacks have run when it returns (unless called on that thread: then they run after the
  /// current callback), so it waits for the other clients' callbacks queued before them too: do
  /// not destroy a client while holding a lock that such a callback takes. The process's last
  /// client ends the shared threads here (joined; on one of them, they end by themselves after the
  /// current callback). Safe from inside the client's own callbacks.
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Blocks until attached to a peer, or `timeout` passes (errc::no_peer, naming each peer
  /// address and how it fares: still dialing, not tried yet, or why it failed). Returns
  /// errc::no_peer at once when every peer address has failed its latest dial (refused, TLS
  /// alert) and none is being dialed: nothing can attach before the next round of dials, which
  /// the client makes by itself, backing off. Operations started then fail the same way.
  result<peer_info> wait_attached(std::chrono::milliseconds timeout);
  /// The peer attached to now, if any.
  std::optional<peer_info> attached_peer() const;
  /// This client's Node-ID (hex).
  std::string node_id() const;
  /// Closes the link; operations in flight and later ones fail with errc::stopped. Returns once
  /// the link is closed (within about a second unless a callback holds up the I/O thread),
  /// except when called on the I/O thread: then that happens after the current callback. The
  /// process's other clients are not affected. Idempotent.
  void stop();

  // ---- put / get on the generic kind ----
  /// Stores `value` as this client's entry under `name` for `lifetime_seconds`.
  result<void> put(std::string_view name, bytes value, std::uint32_t lifetime_seconds = 3600);
  /// Every writer's current value under `name` (empty vector: nothing stored; not an error).
  result<std::vector<owned_value>> get(std::string_view name);
  /// Deletes this client's entry under `name` (a signed tombstone).
  result<void> remove(std::string_view name);

  // ---- typed data (RFC 6940 section 7) ----
  /// Stores items of `kind` at the resource named `resource`; returns the kind's new generation.
  result<std::uint64_t> store(std::string_view resource, std::uint32_t kind,
                              std::vector<item> items, store_options options = {});
  /// Deletes items (by index or key; values ignored): stores signed tombstones.
  result<std::uint64_t> remove_items(std::string_view resource, std::uint32_t kind,
                                     std::vector<item> items, store_options options = {});
  /// The items of `kind` at `resource`. Nothing stored is not an error, as for get(): the
  /// result then has no item whose `exists` is true.
  result<kind_data> fetch(std::string_view resource, std::uint32_t kind,
                          selection which = selection::all());
  /// Like fetch, but lengths and hashes instead of values.
  result<kind_data> stat(std::string_view resource, std::uint32_t kind,
                         selection which = selection::all());
  /// The Resource-ID (hex) nearest to `resource`'s that holds data of `kind` on the responsible
  /// peer, or nullopt when it holds none (RFC 6940 section 7.4.4).
  result<std::optional<std::string>> find(std::string_view resource, std::uint32_t kind);
  /// Pings the attached peer (or the node responsible for `resource` when given).
  result<ping_info> ping(std::string_view resource = {});

  // ---- SIP registrations (RFC 7904): the SIP-REGISTRATION kind ----
  /// Registers this client under `aor` ("sip:alice@example.org" or "alice@example.org"): a
  /// SipRegistration under its own Node-ID, signed with its key. Default contact: a route
  /// through the attached peer to this client, so that others reach it over its link. Returns
  /// the kind's generation. The certificate's user must be the AOR (USER-NODE-MATCH).
  result<std::uint64_t> register_aor(std::string_view aor, sip_contact contact = {},
                                     std::uint32_t lifetime_seconds = 3600);
  /// Removes this client's registration under `aor` (a signed tombstone).
  result<std::uint64_t> unregister_aor(std::string_view aor);
  /// Every binding of `aor`, following AOR indirections up to 4 deep (a loop or a deeper chain
  /// is returned as a `uri` binding, not followed). Empty: nothing registered.
  result<std::vector<sip_binding>> resolve(std::string_view aor);

  // ---- SIP user agent (RFC 3261 over the overlay, in client_options::sip_routing_mode) ----
  /// Makes this client reachable as `aor` (the certificate's user must be the AOR): in direct mode
  /// it serves incoming SIP connections and registers a route through its peer to itself; in
  /// outbound_proxy mode it opens its flow to the peer, REGISTERs over it and registers a route to
  /// the peer. The registration is refreshed before `lifetime_seconds` runs out and made again
  /// through the new peer after a failover, until sip_unregister() or stop(). Incoming requests
  /// go to the handler of on_sip_request (without one: 480).
  result<void> sip_register(std::string_view aor, std::uint32_t lifetime_seconds = 3600);
  /// Stops being reachable: removes the registration (a tombstone; outbound: REGISTER Expires 0)
  /// and stops refreshing it.
  result<void> sip_unregister();
  /// Who answers incoming SIP requests (replaces the previous handler; empty: 480 to all).
  void on_sip_request(sip_request_handler handler);
  /// Sends a MESSAGE (RFC 3428) to `to` ("sip:bob@overlay" or "bob@overlay") and returns its final
  /// response, whatever its status. Errors only when nothing could be tried: invalid_argument,
  /// no_peer, timeout, stopped.
  result<sip_response> send_message(std::string_view to, bytes body,
                                    std::string_view content_type = "text/plain");
  /// Calls `to` (INVITE, signalling only) and returns the final response: a 2xx is an established
  /// call (ACK sent; end it with hang_up), anything else a failed one (487 after hang_up while it
  /// rang).
  result<sip_response> call(std::string_view to, call_options options = {});
  /// Ends the call `call_id`: CANCEL while it has no final answer, BYE once established (either
  /// side's call). Errors: not_found (no such call), stopped.
  result<void> hang_up(std::string_view call_id);
  /// Calls established now (their Call-IDs).
  std::vector<std::string> calls() const;

  // ---- the same, with a callback ----
  template <class T>
  using callback = std::function<void(result<T>)>;
  void put_async(std::string_view name, bytes value, std::uint32_t lifetime_seconds,
                 callback<void> done);
  void get_async(std::string_view name, callback<std::vector<owned_value>> done);
  void remove_async(std::string_view name, callback<void> done);
  void store_async(std::string_view resource, std::uint32_t kind, std::vector<item> items,
                   store_options options, callback<std::uint64_t> done);
  void remove_items_async(std::string_view resource, std::uint32_t kind, std::vector<item> items,
                          store_options options, callback<std::uint64_t> done);
  void fetch_async(std::string_view resource, std::uint32_t kind, selection which,
                   callback<kind_data> done);
  void stat_async(std::string_view resource, std::uint32_t kind, selection which,
                  callback<kind_data> done);
  void find_async(std::string_view resource, std::uint32_t kind,
                  callback<std::optional<std::string>> done);
  void ping_async(std::string_view resource, callback<ping_info> done);
  void register_aor_async(std::string_view aor, sip_contact contact, std::uint32_t lifetime_seconds,
                          callback<std::uint64_t> done);
  void unregister_aor_async(std::string_view aor, callback<std::uint64_t> done);
  void resolve_async(std::string_view aor, callback<std::vector<sip_binding>> done);
  void sip_register_async(std::string_view aor, std::uint32_t lifetime_seconds,
                          callback<void> done);
  void sip_unregister_async(callback<void> done);
  void send_message_async(std::string_view to, bytes body, std::string_view content_type,
                          callback<sip_response> done);
  void call_async(std::string_view to, call_options options, callback<sip_response> done);
  void hang_up_async(std::string_view call_id, callback<void> done);

  /// The data model of `kind` in this overlay's configuration, if the kind is there.
  std::optional<data_model> model_of(std::uint32_t kind) const;
  /// p2psip's generic put/get kind.
  static constexpr std::uint32_t generic_kind = 0xF0000101;

  struct impl;
  explicit client(std::shared_ptr<impl> p);

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace p2psip::client
