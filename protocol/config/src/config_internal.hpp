#pragma once
// Shared by the parser, the writer and validate_overlay_config: the value checks, so that a
// document and a configuration built in code are held to the same rules with the same messages.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/config/config_document.hpp"
#include "p2psip/config/overlay_config.hpp"

namespace p2psip::config::detail {

/// "configuration/root-cert" + "[i+1]": repeated elements are named by 1-based position.
std::string indexed(std::string_view path, std::size_t i);
/// Lowercase hex SHA-256 of `data`.
std::string sha256_hex(protocol::byte_view data);

using check = std::optional<protocol::error_record>;
/// "PATH: WHAT" with `code` (most refusals are a value the rules forbid: invalid).
inline protocol::error_record fail(std::string_view path, std::string_view what,
                                   config_errc code = config_errc::invalid) {
  return protocol::error_record{make_error_code(code),
                                std::string(path) + ": " + std::string(what)};
}
/// `e` with "PATH: " before its message; its code stays.
inline protocol::error_record at(std::string_view path, protocol::error_record e) {
  e.message = std::string(path) + ": " + e.message;
  return e;
}

/// Largest value of the xsd:int fields (counts, sizes, intervals).
inline constexpr std::uint64_t xsd_int_max = 0x7FFFFFFF;
/// A message smaller than this cannot carry a signed request; p2psip refuses such overlays.
inline constexpr std::uint32_t min_max_message_size = 256;

check check_instance_name(std::string_view name, std::string_view path);
check check_sequence(std::uint64_t sequence, std::string_view path);
check check_topology(std::string_view plugin, std::string_view path);
check check_node_id_length(std::uint64_t length, std::string_view path);
/// Parses the DER as X.509 (Botan) and requires a CA certificate (basicConstraints CA).
check check_root_cert(protocol::byte_view der, std::string_view path);
check check_enrollment_server(std::string_view url, std::string_view path);
check check_self_signed(const self_signed_policy& policy, std::string_view path);
check check_bootstrap(const protocol::ip_address_port& address, std::string_view path);
check check_max_message_size(std::uint64_t size, std::string_view path);
check check_initial_ttl(std::uint64_t ttl, std::string_view path);
check check_reliability_timer(std::uint64_t ms, std::string_view path);
/// A Node-ID of kind-signer, configuration-signer or bad-node: 1..20 bytes. A length other than
/// node-id-length adds a warning (RFC 6940's own example uses 8-byte values).
check check_listed_node_id(protocol::byte_view id, std::size_t node_id_length,
                           std::string_view path, std::vector<std::string>* warnings);
check check_link_protocols(const std::vector<std::string>& protocols, std::string_view path);
check check_mandatory_extension(std::string_view ns, const std::vector<std::string>& supported,
                                std::string_view path);
check check_chord_interval(std::uint64_t seconds, std::string_view path);
check check_domain_restriction(const domain_restriction& r, std::string_view path,
                               std::vector<std::string>* warnings);
/// The rules of one kind: id, counts, registry agreement, policy versus data model.
check check_kind(const kind_definition& kind, std::string_view path);
/// Whole-configuration rules: roots present unless self-signed, kind ids unique.
check check_cross_fields(const overlay_config& config);

/// Parses decimal digits (xsd integer lexical form: optional '+', no '-' accepted here);
/// nullopt when not a number or larger than `max`.
enum class number_status { ok, not_a_number, negative, too_large };
number_status parse_unsigned(std::string_view text, std::uint64_t max, std::uint64_t& out);

/// Node-ID hex as the document lists it (kind-signer etc.), whitespace trimmed.
std::optional<protocol::bytes> parse_hex_id(std::string_view text);

}  // namespace p2psip::config::detail
