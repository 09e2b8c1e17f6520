#pragma once
// The overlay configuration document (RFC 6940 section 11.1, RFC 7904 section 3.4) as a typed
// value: what one <configuration> element of an application/p2p-overlay+xml document says, with
// the RFC's defaults filled in. Parsing and writing the XML live in config_document.hpp.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "p2psip/protocol/address.hpp"
#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/data.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/ids.hpp"
#include "p2psip/protocol/limits.hpp"
#include "p2psip/protocol/result.hpp"

namespace p2psip::config {

/// XML namespaces the parser understands.
inline constexpr std::string_view base_namespace = "urn:ietf:params:xml:ns:p2p:config-base";
inline constexpr std::string_view chord_namespace = "urn:ietf:params:xml:ns:p2p:config-chord";
inline constexpr std::string_view sip_namespace = "urn:ietf:params:xml:ns:p2p:config-base:sip";

/// The only topology plug-in this implementation runs.
inline constexpr std::string_view chord_reload = "CHORD-RELOAD";
/// The default (and only supported) overlay link protocol name: TLS and DTLS (RFC 6940 6.6.1).
inline constexpr std::string_view tls_link_protocol = "TLS";
/// Default port of a bootstrap-node without a port attribute (RFC 6940 section 11.1).
inline constexpr std::uint16_t default_bootstrap_port = 6084;
/// Smallest overlay-reliability-timer the RFC permits.
inline constexpr std::chrono::milliseconds min_reliability_timer{200};
/// Largest sequence a configuration may carry (RFC 6940 section 11.1: 0..2^16-2).
inline constexpr std::uint16_t max_sequence = 0xFFFE;

/// Why a configuration document was refused, read, signed or written (the code of an
/// error_record whose message names the element: "configuration/node-id-length: 12 is outside
/// 16..20").
enum class config_errc {
  ok = 0,
  unreadable = 1,     ///< the document's file cannot be opened or read
  too_large,          ///< the document is larger than parse_options::max_document_size
  malformed,          ///< not well-formed XML, or its root is not a base-namespace <overlay>
  invalid,            ///< an element or attribute is missing, unknown, repeated or out of range
  wrong_overlay,      ///< instance-name is not the expected overlay's (or the current one's)
  untrusted_root,     ///< root-cert lists none or a certificate other than the expected roots
  expired,            ///< the configuration's expiration has passed
  not_newer,          ///< an update whose sequence is not newer than the current document's
  unsigned_document,  ///< the configuration or a kind-block carries no signature
  bad_signature,      ///< a signature does not verify, or its signer may not sign the document
  signing_failed,     ///< a document could not be signed (signer certificate or key, crypto)
  write_failed,       ///< a document could not be written to its file
};
const std::error_category& config_category() noexcept;
std::error_code make_error_code(config_errc e) noexcept;

/// A value of the config library, or a protocol::error_record with a config_errc code.
template <class T>
using result = protocol::result<T, protocol::error_record>;

/// Access control policies (RFC 6940 section 7.3) plus p2psip's own for the generic kind.
enum class access_policy : std::uint8_t {
  user_match,       ///< USER-MATCH
  node_match,       ///< NODE-MATCH
  user_node_match,  ///< USER-NODE-MATCH (dictionary only)
  node_multiple,    ///< NODE-MULTIPLE (needs max-node-multiple)
  /// P2PSIP-GENERIC: any resource name; a writer owns only the dictionary entry keyed by its own
  /// Node-ID (checked in p2psip::crypto). Dictionary only.
  p2psip_generic,
};
/// "USER-MATCH", ..., "P2PSIP-GENERIC".
std::string_view access_policy_name(access_policy p) noexcept;
/// The policy with that exact (case-sensitive) name; nullopt for any other text.
std::optional<access_policy> access_policy_from_name(std::string_view name) noexcept;
/// "SINGLE", "ARRAY", "DICTIONARY" to a data model; nullopt for any other text.
std::optional<protocol::data_model> data_model_from_name(std::string_view name) noexcept;

/// A kind whose model and policy are fixed by a registry, not by the document: the IANA kinds
/// (SIP-REGISTRATION, TURN-SERVICE, CERTIFICATE_BY_NODE, CERTIFICATE_BY_USER) and p2psip's
/// generic kind (private range, fixed by this implementation).
struct registered_kind {
  std::uint32_t id = 0;
  std::string_view name;  ///< IANA name; "p2psip-generic" for ours (never written as name=)
  protocol::data_model model = protocol::data_model::single_value;
  access_policy policy = access_policy::user_match;
  bool iana = true;  ///< false for p2psip's generic kind
};
std::optional<registered_kind> registered_kind_by_id(std::uint32_t id) noexcept;
/// By IANA name as it appears in <kind name="...">; nullopt for unknown names.
std::optional<registered_kind> registered_kind_by_name(std::string_view name) noexcept;
/// A kind as messages name it: a registered kind in lower case with '-' ("sip-registration",
/// "certificate-by-user", "generic" for p2psip's generic kind, what p2psip-client --kind takes),
/// any other kind as its decimal number.
std::string kind_display_name(std::uint32_t id);

/// A <signature> or <kind-signature>: the base64-decoded SecurityBlock and its algorithm
/// attribute, as parsed. Made and checked by config_signature.hpp.
struct signature_element {
  std::string algorithm;  ///< the algorithm attribute; empty when absent
  protocol::bytes value;  ///< base64-decoded content
  friend bool operator==(const signature_element&, const signature_element&) = default;
};

/// One kind of required-kinds/kind-block/kind.
struct kind_definition {
  std::uint32_t id = 0;
  protocol::data_model model = protocol::data_model::single_value;
  access_policy policy = access_policy::user_match;
  std::uint32_t max_count = 0;  ///< values per resource a member must store (>= 1)
  std::uint32_t max_size = 0;   ///< bytes per value (>= 1)
  std::optional<std::uint32_t> max_node_multiple;  ///< required for NODE-MULTIPLE
  std::optional<signature_element> signature;      ///< kind-signature (config_signature.hpp)
  friend bool operator==(const kind_definition&, const kind_definition&) = default;
};

/// self-signed-permitted with its digest attribute ("sha1" or "sha256").
struct self_signed_policy {
  bool permitted = false;
  std::string digest = "sha1";
  friend bool operator==(const self_signed_policy&, const self_signed_policy&) = default;
};

/// RFC 7904 section 3.4 sip:domain-restriction: which AOR domains SIP-REGISTRATION accepts.
struct domain_restriction {
  bool enable = false;                ///< false: only the overlay's own domain
  std::vector<std::string> patterns;  ///< POSIX extended regular expressions over the domain
  friend bool operator==(const domain_restriction&, const domain_restriction&) = default;
};

/// The chord:* parameters (RFC 6940 sections 10.7.4.1, 10.7.4.2, 10.6).
struct chord_parameters {
  std::chrono::seconds update_interval{600};  ///< "about every ten minutes"
  std::chrono::seconds ping_interval{3600};   ///< "defaults to 3600 seconds"
  bool reactive = true;
  friend bool operator==(const chord_parameters&, const chord_parameters&) = default;
};

/// One overlay's configuration. Every field holds the RFC default when the element is absent.
struct overlay_config {
  std::string instance_name;  ///< the overlay name
  std::uint16_t sequence = 0;
  std::optional<std::chrono::sys_seconds> expiration;
  std::string topology_plugin{chord_reload};
  std::size_t node_id_length = protocol::default_node_id_length;
  std::vector<protocol::bytes> root_certs;      ///< DER, each parsed as X.509 when read
  std::vector<std::string> enrollment_servers;  ///< https: URLs
  std::optional<self_signed_policy> self_signed;
  std::vector<protocol::ip_address_port> bootstrap_nodes;
  std::uint8_t turn_density = 1;
  bool clients_permitted = true;
  bool no_ice = false;
  std::optional<std::string> shared_secret;
  std::uint32_t max_message_size = 5000;
  std::uint8_t initial_ttl = 100;
  std::chrono::milliseconds overlay_reliability_timer{3000};
  /// As listed; empty means the default, "TLS" (see link_protocols()).
  std::vector<std::string> overlay_link_protocols;
  std::vector<protocol::bytes> kind_signers;           ///< Node-IDs
  std::vector<protocol::bytes> configuration_signers;  ///< Node-IDs
  std::vector<protocol::bytes> bad_nodes;              ///< Node-IDs whose certificates are void
  std::vector<std::string> mandatory_extensions;       ///< namespace URIs
  std::vector<kind_definition> kinds;                  ///< required-kinds, in document order
  std::optional<domain_restriction> sip_domain_restriction;
  chord_parameters chord;
  /// The <signature> elements after this configuration (verify_configuration_signature).
  std::vector<signature_element> signatures;

  friend bool operator==(const overlay_config&, const overlay_config&) = default;

  /// overlay_link_protocols, or {"TLS"} when none is listed.
  std::vector<std::string> link_protocols() const;
  /// True when the document says self-signed certificates are permitted.
  bool self_signed_permitted() const noexcept { return self_signed && self_signed->permitted; }
};

/// The codec limits this configuration implies: node_id_length, max_message_size and initial_ttl
/// replace those of `base`; the other limits are kept.
protocol::limits limits_of(const overlay_config& config, protocol::limits base = {});

/// The kind table: Kind-ID to definition.
using kind_table = std::map<std::uint32_t, kind_definition>;
kind_table make_kind_table(const overlay_config& config);
/// The definition of `id` in the configuration, or nullptr.
const kind_definition* find_kind(const overlay_config& config, std::uint32_t id) noexcept;
/// A body_context model lookup that knows exactly the configuration's kinds (a peer answers
/// Error_Unknown_Kind for the others). Holds its own copy of the table.
protocol::kind_model_lookup kind_model_lookup_of(const overlay_config& config);

/// The generic put/get kind as p2psip-admin writes it: kinds::p2psip_generic, DICTIONARY keyed by
/// the writer's Node-ID, P2PSIP-GENERIC.
kind_definition generic_kind(std::uint32_t max_count = 16, std::uint32_t max_size = 1024);
/// The kinds p2psip-admin writes: SIP-REGISTRATION, CERTIFICATE_BY_NODE, CERTIFICATE_BY_USER and
/// the generic kind, with limits that fit a 32 KiB message.
std::vector<kind_definition> standard_kinds();

/// RFC 7904 section 3.4: may SIP-REGISTRATION store this AOR (without scheme, "alice@dht.example")
/// in this overlay? No restriction: yes; restriction disabled: the AOR's domain equals the overlay
/// name; enabled: the domain matches one of the patterns as a whole (case-insensitive).
bool aor_domain_allowed(const overlay_config& config, std::string_view aor);

/// What a caller already trusts about an overlay before it accepts a configuration.
struct expectation {
  std::string overlay_name;  ///< instance-name must equal this
  /// DER root certificates the caller trusts. When non-empty, the document must list at least one
  /// root-cert and every root-cert it lists must be one of these (an unsigned document must not
  /// be able to add a trust anchor). Empty: roots are not checked.
  std::vector<protocol::bytes> root_certs;
  /// When set, a configuration whose expiration is not after `now` is refused.
  std::optional<std::chrono::sys_seconds> now;
};
/// Refuses a configuration for another overlay, with an unexpected root certificate, or expired.
result<void> check_overlay_config(const overlay_config& config, const expectation& expected);

/// RFC 3339 UTC text of a time ("2002-10-10T07:00:00Z").
std::string format_date_time(std::chrono::sys_seconds t);
/// Parses RFC 3339 date-time in UTC ("Z" or "+00:00"/"-00:00"; fractional seconds dropped).
std::optional<std::chrono::sys_seconds> parse_date_time(std::string_view text);

}  // namespace p2psip::config

template <>
struct std::is_error_code_enum<p2psip::config::config_errc> : std::true_type {};
