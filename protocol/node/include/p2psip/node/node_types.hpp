#pragma once
// What every RELOAD node (peer or client) is made of below its usages: link numbers, the actions a
// sans-I/O node asks its runtime to carry out, the clock types, and the services injected into it
// (signatures and randomness). Shared by peer/ and client-sdk/ (RFC 6940 1.2's Message Transport
// and Forwarding and Link Management layers).

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "p2psip/crypto/signatures.hpp"
#include "p2psip/protocol/address.hpp"
#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/message.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::node {

/// Deadlines and intervals run on steady time: a wall clock that steps must neither stall nor fire
/// every timer. Wall time enters only where certificates and storage times need it
/// (wall_clock_source).
using time_point = std::chrono::steady_clock::time_point;
using duration = std::chrono::milliseconds;
/// Wall time (certificate validity, storage times, PingAns response times).
using wall_time = std::chrono::system_clock::time_point;
/// Reads wall time; the simulator supplies one that follows its virtual clock.
using wall_clock_source = std::function<wall_time()>;
/// `given`, or the system's wall clock when none was given.
inline wall_clock_source or_system_clock(wall_clock_source given) {
  if (given) return given;
  return [] { return std::chrono::system_clock::now(); };
}

/// Which end opened a link (the TCP/TLS client side). Both ends agree on it, so it decides which
/// of two links between the same peers is kept.
enum class link_origin : std::uint8_t {
  unknown,   ///< the runtime did not say; the node infers it from its own open_link_actions
  outbound,  ///< this node opened it (an open_link_action)
  inbound,   ///< the remote opened it
};

/// A link as the runtime numbers it (one TLS connection). 0 is never a real link.
struct link_id {
  std::uint64_t value = 0;
  friend auto operator<=>(const link_id&, const link_id&) = default;
};

/// Send these bytes (one whole RELOAD message) on a link.
struct send_action {
  link_id link;
  protocol::bytes data;
};
/// Close a link (hostile, dead, or no longer needed); what was sent on it before goes first.
struct close_link_action {
  link_id link;
  std::string reason;
};
/// Open a link to `address`; the remote certificate must carry `expected` when set (Attach
/// without ICE: TLS-TCP-FH-NO-ICE host candidates). The runtime answers with on_link_up or
/// on_link_failed.
struct open_link_action {
  protocol::ip_address_port address;
  std::optional<protocol::node_id> expected;
};
/// Open an application connection (AppAttach answered, RFC 6940 6.5.2): TLS to `address`, whose
/// certificate must carry `expected`, handed to the usage that serves `application` as a byte
/// stream. `token` is the one the AppAttach was started with.
struct open_app_connection_action {
  protocol::ip_address_port address;
  protocol::node_id expected;
  std::uint16_t application = 0;
  std::uint64_t token = 0;
};
struct log_action {
  std::string text;
  /// Worth an admin's attention (pressure, a copy missing): logged at WARN, not DEBUG.
  bool notable = false;
  /// Set for something refused from the remote of this link (a message for another overlay):
  /// logged at INFO with the remote's address, which only the runtime knows, rate-limited there.
  std::optional<link_id> refused_from;
};
using action = std::variant<send_action, close_link_action, open_link_action,
                            open_app_connection_action, log_action>;

/// The actions a node has produced and its runtime has not taken yet, oldest first.
class action_queue {
 public:
  void push(action a) { actions_.push_back(std::move(a)); }
  void log(std::string text) {
    actions_.push_back(log_action{std::move(text), false, std::nullopt});
  }
  /// A line for the admin (WARN): pressure, refusals, copies missing. Rate-limit at the source.
  void warn(std::string text) {
    actions_.push_back(log_action{std::move(text), true, std::nullopt});
  }
  /// Something the remote of `link` sent that we refuse (INFO with its address; the runtime
  /// rate-limits these, so a flood of them costs a bounded number of lines).
  void refused(link_id link, std::string text) {
    actions_.push_back(log_action{std::move(text), false, link});
  }
  std::vector<action> take() {
    std::vector<action> out(std::make_move_iterator(actions_.begin()),
                            std::make_move_iterator(actions_.end()));
    actions_.clear();
    return out;
  }

 private:
  std::deque<action> actions_;
};

/// Signs outgoing messages and verifies incoming ones (RFC 6940 section 6.3.4). The real one
/// wraps crypto::sign_message / crypto::verify_message with the node's identity and trust store.
class message_signer {
 public:
  virtual ~message_signer() = default;
  /// Signs `m` as this node; header and contents are final.
  virtual void sign(protocol::message& m) = 0;
  /// Who signed `m` (certificates checked against wall time), or an error (then dropped).
  virtual protocol::result<crypto::verified_signer> verify(const protocol::message& m) = 0;
  /// Readies `m`, a message of this node that it delivers to itself (it never leaves the
  /// process), and returns its signer as verify() would after sign(). An implementation may leave
  /// the signature out (nothing outside the process sees the message), never the certificate
  /// checks. An error drops the message, as verify's does.
  virtual protocol::result<crypto::verified_signer> prepare_own(protocol::message& m) {
    sign(m);
    return verify(m);
  }
};

/// Randomness for transaction ids and timer jitter (a seeded PRNG in the simulator).
class random_source {
 public:
  virtual ~random_source() = default;
  virtual std::uint64_t next_u64() = 0;
};

/// Uniform in [base/2, 3*base/2): spreads the periodic work of many nodes (RFC 6940 10.7.1).
duration jittered(duration base, random_source& rng);

/// Rate-limits the log lines about one kind of event (pressure, drops): note() counts an event
/// and, at most once per `interval`, returns how many happened since the last line it allowed.
class log_throttle {
 public:
  explicit log_throttle(duration interval = duration{10'000}) : interval_(interval) {}
  std::optional<std::uint64_t> note(time_point now) {
    ++unreported_;
    if (last_ && now - *last_ < interval_) return std::nullopt;
    last_ = now;
    return std::exchange(unreported_, 0);
  }

 private:
  duration interval_;
  std::uint64_t unreported_ = 0;
  std::optional<time_point> last_;
};

/// Milliseconds since the Unix epoch (0 before it).
std::uint64_t epoch_ms(wall_time t);

}  // namespace p2psip::node
