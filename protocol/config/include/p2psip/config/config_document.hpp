#pragma once
// Reading and writing the overlay configuration document (RFC 6940 section 11.1 and its RELAX NG
// grammar in 11.1.1; RFC 7904 section 3.4 for sip:domain-restriction).
//
// Which configuration: a document may hold several <configuration> elements, one per overlay.
// The parser takes the one whose instance-name equals parse_options::instance_name, or the first
// when none is asked for; only that one is validated in full. Two configurations with the same
// instance-name are refused.

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p2psip/config/overlay_config.hpp"

namespace p2psip::config {

struct parse_options {
  /// Take the configuration with this instance-name; nullopt: the first one.
  std::optional<std::string> instance_name;
  /// Namespaces of mandatory-extension values this node supports besides config-base,
  /// config-chord and config-base:sip, which are always supported. Any other
  /// mandatory-extension refuses the document (RFC 6940 11.1: joiners MUST support it).
  std::vector<std::string> supported_extensions;
  /// Larger documents are refused before parsing.
  std::size_t max_document_size = std::size_t{1} << 20;
};

/// A parsed document: the selected configuration and what a signature check will need.
struct parsed_document {
  overlay_config config;
  /// instance-name of every configuration element, in document order.
  std::vector<std::string> instance_names;
  /// The exact bytes of the selected <configuration ...>...</configuration>, which its
  /// <signature> covers (RFC 6940 11.1); empty if they could not be located.
  std::string configuration_text;
  /// The exact bytes of each <kind>...</kind>, parallel to config.kinds (kind-signature input).
  std::vector<std::string> kind_texts;
  /// Things accepted but worth telling an operator ("...: data-model SINGLE differs from the
  /// IANA registration DICTIONARY; using DICTIONARY").
  std::vector<std::string> warnings;
  /// Paths of foreign elements (other namespaces) that were skipped and that the writer drops.
  std::vector<std::string> ignored;
};

/// Parses and validates a document. Errors name the element:
/// "configuration/node-id-length: 12 is outside 16..20"; codes: too_large, malformed, invalid,
/// wrong_overlay (no configuration for options.instance_name).
result<parsed_document> parse_document(std::string_view xml, const parse_options& options = {});
/// parse_document(...).config.
result<overlay_config> parse_overlay_config(std::string_view xml,
                                            const parse_options& options = {});
/// Reads and parses a file; error messages start with the file name ("overlay.xml: ..."); codes:
/// unreadable, or parse_document's.
result<parsed_document> load_document(const std::filesystem::path& file,
                                      const parse_options& options = {});

/// The document for one configuration: XML declaration with UTF-8 encoding, <overlay> with the
/// base, chord (and sip, when used) namespaces, the <configuration> and its <signature>s.
/// Every field is written explicitly, so parse_overlay_config(write_document(c)) == c for every
/// configuration that validate_overlay_config accepts.
std::string write_document(const overlay_config& config);

/// The checks parse_document applies to the values (ranges, kind rules, root certificates as
/// X.509), for configurations built in code before they are written.
result<void> validate_overlay_config(const overlay_config& config);

}  // namespace p2psip::config
