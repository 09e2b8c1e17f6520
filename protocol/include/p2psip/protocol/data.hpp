#pragma once
// Kinds, data models and the storage structures (RFC 6940 sections 6.4.1, 7; RFC 7904 section 3).

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "p2psip/protocol/address.hpp"
#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/forwarding.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/limits.hpp"
#include "p2psip/protocol/result.hpp"
#include "p2psip/protocol/security.hpp"

namespace p2psip::protocol {

/// Data models are not on the wire: the kind's definition says which one a value uses.
enum class data_model : std::uint8_t { single_value, array, dictionary };
std::string_view data_model_name(data_model m) noexcept;  ///< "SINGLE", "ARRAY", "DICTIONARY"

/// Says which data model a kind uses; nullopt for an unknown kind.
using kind_model_lookup = std::function<std::optional<data_model>(std::uint32_t kind)>;
/// The models of the IANA-registered kinds (SIP-REGISTRATION, TURN-SERVICE, CERTIFICATE_BY_*,
/// REDIR) and p2psip's generic kind.
std::optional<data_model> registered_kind_model(std::uint32_t kind) noexcept;

/// How body decoding learns kinds' data models.
struct body_context {
  kind_model_lookup model_of = registered_kind_model;
  /// For a kind with no known model, try each model and keep the one that parses cleanly (for
  /// debugging tools). A peer leaves this off and answers Error_Unknown_Kind instead.
  bool guess_unknown_models = false;
};

/// DataValue: `Boolean exists; opaque value<0..2^32-1>`.
struct data_value {
  bool exists = true;
  bytes value;
  friend bool operator==(const data_value&, const data_value&) = default;
};
/// ArrayEntry: `uint32 index; DataValue value`. Index 0xFFFFFFFF appends.
struct array_entry {
  std::uint32_t index = 0;
  data_value value;
  friend bool operator==(const array_entry&, const array_entry&) = default;
};
inline constexpr std::uint32_t array_append_index = 0xFFFFFFFF;
/// DictionaryEntry: `opaque key<0..2^16-1>; DataValue value`.
struct dictionary_entry {
  bytes key;
  data_value value;
  friend bool operator==(const dictionary_entry&, const dictionary_entry&) = default;
};
/// StoredDataValue; which alternative is on the wire follows from the kind's data model.
using stored_data_value = std::variant<data_value, array_entry, dictionary_entry>;
data_model model_of(const stored_data_value& v) noexcept;

/// StoredData (its leading uint32 length is computed by the encoder).
struct stored_data {
  std::uint64_t storage_time = 0;  ///< ms since the Unix epoch
  std::uint32_t lifetime = 0;      ///< seconds
  stored_data_value value;
  struct signature signature;
  friend bool operator==(const stored_data&, const stored_data&) = default;
};

struct store_kind_data {
  std::uint32_t kind = 0;
  std::uint64_t generation_counter = 0;
  std::vector<stored_data> values;
  /// When the kind's data model is unknown (and not guessed): the undecoded `values` list bytes.
  std::optional<bytes> undecoded_values;
  bool model_guessed = false;
  friend bool operator==(const store_kind_data&, const store_kind_data&) = default;
};

/// ArrayRange `{first, last}`; RFC 6940 types them int32 but uses 0xFFFFFFFF for "last": uint32.
struct array_range {
  std::uint32_t first = 0;
  std::uint32_t last = 0;
  friend bool operator==(const array_range&, const array_range&) = default;
};

/// StoredDataSpecifier: which values of a kind a Fetch or Stat wants.
struct stored_data_specifier {
  std::uint32_t kind = 0;
  std::uint64_t generation = 0;
  /// single value: monostate; array: index ranges; dictionary: keys (empty = all).
  std::variant<std::monostate, std::vector<array_range>, std::vector<bytes>> model;
  std::optional<bytes> undecoded;  ///< model unknown, not guessed: the raw bytes after `length`
  bool model_guessed = false;      ///< the model was unknown and body_context guessed it
  friend bool operator==(const stored_data_specifier&, const stored_data_specifier&) = default;
};

/// MetaData of a Stat answer. hash_value covers the DataValue's value with its length prefix.
struct meta_data {
  bool exists = true;
  std::uint32_t value_length = 0;
  std::uint8_t hash_algorithm = hash_algorithm::sha256;
  bytes hash_value;
  friend bool operator==(const meta_data&, const meta_data&) = default;
};
struct array_entry_meta {
  std::uint32_t index = 0;
  meta_data value;
  friend bool operator==(const array_entry_meta&, const array_entry_meta&) = default;
};
struct dictionary_entry_meta {
  bytes key;
  meta_data value;
  friend bool operator==(const dictionary_entry_meta&, const dictionary_entry_meta&) = default;
};
using meta_data_value = std::variant<meta_data, array_entry_meta, dictionary_entry_meta>;

/// StoredMetaData. Its leading uint32 `value_length` is, like StoredData's `length`, the size of
/// the rest of the structure: the encoder computes it and the decoder checks it (RFC 6940 section
/// 7.4.3.2 says the fields are "the same as the corresponding fields in StoredData"; Wireshark
/// reads it the same way). The stored value's own length is metadata.value_length.
struct stored_meta_data {
  std::uint64_t storage_time = 0;
  std::uint32_t lifetime = 0;
  meta_data_value metadata;
  friend bool operator==(const stored_meta_data&, const stored_meta_data&) = default;
};

/// The bytes a StoredData signature covers (RFC 6940 section 7.1):
/// resource_id || kind || storage_time || StoredDataValue || SignerIdentity, where resource_id is
/// the raw id bytes, kind a uint32, and an array entry's index is written as 0.
/// (docs/conformance.md records the reading; this one function is the only place that decides.)
bytes data_signature_input(const resource_id& resource, std::uint32_t kind,
                           std::uint64_t storage_time, const stored_data_value& value,
                           const signer_identity& signer);

// ---- SIP usage (RFC 7904) ----

enum class sip_registration_type : std::uint8_t { uri = 1, route = 2 };

/// SIP-REGISTRATION value: another AOR, or a route (contact preferences + destination list).
/// `type` may hold a byte other than uri/route: then unknown_value carries that type's data.
struct sip_registration {
  sip_registration_type type = sip_registration_type::route;
  bytes uri;                                  ///< type uri
  bytes contact_prefs;                        ///< type route: RFC 3840 feature predicate
  std::vector<destination> destination_list;  ///< type route: at least one entry (RFC 7904 <3..>)
  bytes unknown_value;  ///< a type this code does not know: its data as it was
  friend bool operator==(const sip_registration&, const sip_registration&) = default;
};

/// Decodes a SIP-REGISTRATION value (the bytes of a DataValue's `value`), requiring it to fill
/// `value` exactly; `lim` bounds its destination list.
result<sip_registration, decode_error> decode_sip_registration(byte_view value, const limits& lim);
result<bytes> encode_sip_registration(const sip_registration& reg);

/// TURN-SERVICE value: `uint8 iteration; IpAddressPort server_address` (RFC 6940 section 9).
struct turn_server {
  std::uint8_t iteration = 0;
  ip_address_port server_address;
  friend bool operator==(const turn_server&, const turn_server&) = default;
};
result<turn_server, decode_error> decode_turn_server(byte_view value);
result<bytes> encode_turn_server(const turn_server& t);

}  // namespace p2psip::protocol
