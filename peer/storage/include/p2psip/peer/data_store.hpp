#pragma once
// The peer's storage engine: what a responsible peer (or a replica holder) does with Store, Fetch,
// Stat and Find (RFC 6940 section 7.4), and the data it hands over when the ring changes (sections
// 10.4, 10.7.3). Sans-I/O: time is a parameter (wall clock: storage_time and lifetimes are wall
// clock in RELOAD), no threads, no sockets. Persistence is a storage_backend.
//
// Semantics, with the RFC section that decides each (docs/conformance.md lists our readings):
//  - Store is atomic over every kind of the request (7.4.1.1): each change is checked on a working
//    copy and applied to memory and the backend only when the whole request passed.
//  - Check order: unknown kinds (Error_Unknown_Kind listing all of them, 7.4.1.2); replica with
//    generation 0 (Error_Invalid_Message); generation counters of originals (must equal the
//    current one unless 0, else Error_Generation_Counter_Too_Low with a StoreAns in error_info);
//    then per value: the unsigned signature, the signature itself, the value's signer and, for
//    originals, the StoreReq's signer under the kind's policy (Error_Forbidden, 7.3); max-size;
//    storage_time (Error_Data_Too_Old); finally max-count (Error_Data_Too_Large).
//  - storage_time must be greater than that of the value replaced; an equal storage_time is
//    accepted only for the very same StoredData (an idempotent re-store, e.g. a repeated replica).
//  - Counters start at 1 and grow by one per Store that changes a kind; replicas take the
//    request's counter. A kind whose values are all gone (expired or dropped) forgets its counter.
//  - max-size bounds a DataValue's value bytes; max-count bounds the values of a (resource, kind):
//    for an array its length (highest index + 1), since holes are answered as values.
//  - Lifetime runs from receipt. Expired values are invisible at once and removed by expire().
//    Fetch, Stat and export_range give the remaining lifetime (elapsed time rounded up), so a value
//    never outlives its first receipt.
//  - Fetch/Stat: one answer per specifier; a specifier whose generation equals the current
//    (non-zero) counter gets no values; absent single values, array indices and dictionary keys
//    that were asked for come back as synthetic exists=false values with the unsigned signature.
//    An array range is clamped to the array's length (0xFFFFFFFF = last entry); a dictionary
//    specifier without keys returns every entry. Tombstones are returned as stored.
//  - Find: per kind, the first Resource-ID at or after the requested one (clockwise, within this
//    peer's range) holding an existing value of that kind; an all-zero id when none or the kind
//    is unknown. Error_Not_Found when the requested id is outside the range.
//  - Stored values are vouched for before they are served: a value taken in by an original
//    Store was verified then. Two kinds of value are verified later (signature, and its signer's
//    certificate against the trust store at `now`), the first time a Fetch, Stat, Find or
//    export_range touches its (resource, kind), or a Store that it would decide (see store_impl),
//    and the verdict kept: one read from the backend at load, and one taken in by a replica Store,
//    whose signer's certificate, chain and access were checked on arrival but not the signature
//    value (docs/conformance.md, "replica values verified before first use"). A value that a Store
//    brings again under the very signature of a verified one already held is not verified again.
//    One that fails is never answered, so it cannot hide the good entries beside it (a client
//    refuses a whole answer with a bad signature): when its bytes are wrong (bad signature,
//    unreadable certificate, signer mismatch) it is quarantined (moved aside in the backend,
//    dropped from memory); when only its certificate's chain or validity period fails at `now` it
//    is withheld and checked again next time. Both are counted (storage_counts) and logged as
//    warnings (rate-limited).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "p2psip/config/overlay_config.hpp"
#include "p2psip/crypto/access.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/peer/storage_backend.hpp"
#include "p2psip/protocol/bodies.hpp"
#include "p2psip/protocol/data.hpp"
#include "p2psip/protocol/ids.hpp"

namespace p2psip::peer {

using wall_clock = std::chrono::system_clock;

/// What the overlay configuration says about one kind (RFC 6940 section 11.1 <kind>).
struct kind_rules {
  std::uint32_t kind = 0;
  protocol::data_model model = protocol::data_model::single_value;
  crypto::access_policy policy = crypto::access_policy::user_match;
  std::uint32_t max_count = 0;
  std::uint32_t max_size = 0;
  std::uint32_t max_node_multiple = 0;
  friend bool operator==(const kind_rules&, const kind_rules&) = default;
};

/// The kind table of a configuration. Registered kinds keep their fixed policy (RFC 6940 section
/// 11.1; crypto::registered_kind_policy); P2PSIP-GENERIC maps to crypto::access_policy::node_key.
std::vector<kind_rules> kind_rules_of(const config::overlay_config& config);
std::vector<kind_rules> kind_rules_of(const config::kind_table& table);

/// Counts for metrics and tests.
struct storage_counts {
  std::size_t resources = 0;  ///< Resource-IDs with at least one stored value
  std::size_t values = 0;     ///< stored values (tombstones included)
  std::size_t bytes = 0;      ///< StoredData wire bytes
  /// Since start: loaded values whose stored bytes failed verification, moved aside (never
  /// served).
  std::size_t quarantined = 0;
  /// Since start: times a loaded value was left out of an answer because its signer's
  /// certificate did not verify at that time (expired, not yet valid, no chain to a root).
  std::size_t withheld = 0;
  /// Since start: value signatures verified, at Store or when vetted.
  std::size_t signatures_verified = 0;
  /// Since start: values a replica Store brought in whose signature was left to their first use.
  std::size_t signatures_deferred = 0;
};

class data_store {
 public:
  /// Loads everything `backend` holds (values of kinds not in `kinds`, or that do not decode, are
  /// left untouched on disk and not served). `trust` verifies data signatures; it must outlive
  /// the store.
  data_store(std::unique_ptr<storage_backend> backend, std::vector<kind_rules> kinds,
             crypto::trust_store& trust);
  ~data_store();
  data_store(const data_store&) = delete;
  data_store& operator=(const data_store&) = delete;

  /// requester: the verified signer of the StoreReq. replica: replica_number > 0 (sender is the
  /// responsible peer; the core checks that it is plausible). Value signatures are verified with
  /// the requester's certificate and those of values already stored.
  /// Returns a store_ans (replicas left empty: the core fills them) or an error_response body.
  protocol::message_body store(const protocol::store_req& req,
                               const crypto::verified_signer& requester,
                               wall_clock::time_point now);
  /// The same with the StoreReq's security block certificates, for values signed by others (a
  /// replica or handover carries the owners' values). `from_this_process`: the StoreReq is this
  /// node's own, delivered to itself without leaving the process; a value signature the trust
  /// store noted as made here over the same bytes is then taken without verifying it again
  /// (crypto::verify_stored_data). Any other value, and every value of a StoreReq from another
  /// node, is verified.
  protocol::message_body store(const protocol::store_req& req,
                               const crypto::verified_signer& requester,
                               std::span<const protocol::generic_certificate> certificates,
                               wall_clock::time_point now, bool from_this_process = false);
  protocol::message_body fetch(const protocol::fetch_req& req, wall_clock::time_point now);
  protocol::message_body stat(const protocol::stat_req& req, wall_clock::time_point now);
  /// Find among the Resource-IDs this peer holds in (range_after, range_to] (its responsibility;
  /// range_after == range_to is the whole ring).
  protocol::message_body find(const protocol::find_req& req, const protocol::node_id& range_after,
                              const protocol::node_id& range_to, wall_clock::time_point now);

  /// Replication and handover: StoreReqs (replica_number set by the caller) carrying every live
  /// value of every resource in (after, up_to] on the ring, lifetimes reduced by the time already
  /// held, with each kind's current generation counter. One StoreReq per resource; with
  /// `max_values_bytes` > 0 a resource whose values' wire bytes exceed it is split over several
  /// StoreReqs (each with at least one value), which a replica applies independently.
  std::vector<protocol::store_req> export_range(const protocol::node_id& after,
                                                const protocol::node_id& up_to,
                                                wall_clock::time_point now,
                                                std::size_t max_values_bytes = 0);
  /// Removes every value of every resource in (after, up_to]; returns the number of values removed.
  std::size_t drop_range(const protocol::node_id& after, const protocol::node_id& up_to);
  /// Removes the values whose lifetime has run out; returns how many.
  std::size_t expire(wall_clock::time_point now);
  /// When the next value expires; nullopt when nothing is stored.
  std::optional<wall_clock::time_point> next_expiry() const;

  /// The certificates of the signers of the StoredData values in `body` (a fetch_ans or a
  /// store_req made by export_range), for the security block of the message carrying them.
  std::vector<protocol::generic_certificate> signer_certificates(
      const protocol::message_body& body) const;

  storage_counts counts() const noexcept;
  /// The current generation counter of (resource, kind); 0 when nothing is stored.
  std::uint64_t generation(const protocol::resource_id& resource, std::uint32_t kind) const;
  const kind_rules* rules(std::uint32_t kind) const noexcept;
  /// The last backend failure (a Store answered with an error because the change could not be
  /// made durable), for the runtime's log; empty message when none.
  const protocol::error_record& last_backend_error() const noexcept { return last_error_; }
  /// Stored values that load() could not serve (unknown kind or undecodable); left on disk.
  std::size_t skipped_at_load() const noexcept { return skipped_at_load_; }
  /// Where warnings go (a quarantined or withheld value); at most one line per 10 s of the
  /// `now` given to the store's operations, with the number left out meanwhile. Default: none.
  void set_warning_log(std::function<void(std::string_view)> log) { warn_ = std::move(log); }
  /// The (resource, kind) pairs that had values quarantined since the last call: the overlay
  /// fetches a good copy from another holder.
  std::vector<std::pair<protocol::resource_id, std::uint32_t>> take_quarantined() {
    return std::exchange(quarantined_since_, {});
  }

 private:
  /// Whether a slot's signature was checked (see "vouched for" above).
  enum class check_state : std::uint8_t {
    unchecked,  ///< loaded from the backend or taken in by a replica Store, not verified yet
    verified,   ///< taken in by Store, or verified since
    withheld,   ///< its certificate failed at the last check: not served, checked again
  };
  struct slot {
    protocol::bytes wire;        ///< StoredData as encoded
    protocol::stored_data data;  ///< decoded
    std::int64_t received_ms = 0;
    protocol::bytes signer_certificate;
    check_state check = check_state::verified;
    std::int64_t expires_ms() const noexcept;
  };
  struct kind_state {
    std::uint64_t generation = 0;
    std::map<protocol::bytes, slot> values;  ///< by value key (see value_record::key)
  };
  using resource_state = std::map<std::uint32_t, kind_state>;
  using expiry_key =
      std::tuple<std::int64_t, protocol::resource_id, std::uint32_t, protocol::bytes>;

  protocol::message_body store_impl(const protocol::store_req& req,
                                    const crypto::verified_signer& requester,
                                    std::span<const protocol::generic_certificate> certificates,
                                    wall_clock::time_point now, bool from_this_process,
                                    bool vet_first = false);
  bool commit(const change_set& changes);
  void insert_slot(const protocol::resource_id& resource, std::uint32_t kind,
                   const protocol::bytes& key, slot s);
  void erase_slot(const protocol::resource_id& resource, std::uint32_t kind,
                  const protocol::bytes& key);
  const kind_state* find_kind(const protocol::resource_id& resource, std::uint32_t kind) const;
  std::optional<crypto::certificate> lookup_certificate(const protocol::signer_identity& id) const;
  std::uint32_t remaining_lifetime(const slot& s, std::int64_t now_ms) const noexcept;
  /// Verifies the unchecked and withheld values of (resource, kind); quarantines those whose
  /// bytes are wrong.
  void vet(const protocol::resource_id& resource, std::uint32_t kind, wall_clock::time_point now);
  void warn(wall_clock::time_point now, const std::string& text);

  std::unique_ptr<storage_backend> backend_;
  std::map<std::uint32_t, kind_rules> kinds_;
  crypto::trust_store& trust_;
  std::map<protocol::resource_id, resource_state> resources_;
  std::set<expiry_key> expiries_;
  /// Signer certificates of stored values by SignerIdentity (type || hash), reference-counted.
  std::map<protocol::bytes, std::pair<protocol::bytes, std::size_t>> certificates_;
  storage_counts counts_;
  protocol::error_record last_error_;
  std::size_t skipped_at_load_ = 0;
  std::vector<std::pair<protocol::resource_id, std::uint32_t>> quarantined_since_;
  /// (resource, kind) pairs holding unchecked or withheld values: vet() has work only there.
  std::set<std::pair<protocol::resource_id, std::uint32_t>> unvetted_;
  std::function<void(std::string_view)> warn_;
  std::int64_t warned_at_ms_ = std::numeric_limits<std::int64_t>::min();
  std::size_t warnings_left_out_ = 0;
};

}  // namespace p2psip::peer
