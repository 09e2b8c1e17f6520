// Value rules of the overlay configuration (RFC 6940 section 11.1, RFC 7904 section 3.4), shared
// by the parser and validate_overlay_config.

#include <regex.h>

#include <botan/data_src.h>
#include <botan/exceptn.h>
#include <botan/hash.h>
#include <botan/x509cert.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "config_internal.hpp"

namespace p2psip::config::detail {

namespace pr = p2psip::protocol;

namespace {

std::string range_text(std::uint64_t v, std::uint64_t lo, std::uint64_t hi) {
  return std::to_string(v) + " is outside " + std::to_string(lo) + ".." + std::to_string(hi);
}

bool is_builtin_namespace(std::string_view ns) {
  return ns == base_namespace || ns == chord_namespace || ns == sip_namespace;
}

}  // namespace

std::string indexed(std::string_view path, std::size_t i) {
  return std::string(path) + "[" + std::to_string(i + 1) + "]";
}

std::string sha256_hex(pr::byte_view data) {
  auto h = Botan::HashFunction::create_or_throw("SHA-256");
  h->update(data.data(), data.size());
  const auto digest = h->final();
  return pr::to_hex(pr::byte_view(digest.data(), digest.size()));
}

number_status parse_unsigned(std::string_view text, std::uint64_t max, std::uint64_t& out) {
  if (!text.empty() && text.front() == '-') {
    // "-0" is zero; anything else below zero is refused as negative.
    const std::string_view digits = text.substr(1);
    if (digits.empty()) return number_status::not_a_number;
    for (const char c : digits) {
      if (c < '0' || c > '9') return number_status::not_a_number;
    }
    if (digits.find_first_not_of('0') == std::string_view::npos) {
      out = 0;
      return number_status::ok;
    }
    return number_status::negative;
  }
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return number_status::not_a_number;
  std::uint64_t v = 0;
  bool too_large = false;
  for (const char c : text) {
    if (c < '0' || c > '9') return number_status::not_a_number;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (v > (max - digit) / 10) too_large = true;
    if (!too_large) v = v * 10 + digit;
  }
  if (too_large) return number_status::too_large;
  out = v;
  return number_status::ok;
}

std::optional<pr::bytes> parse_hex_id(std::string_view text) {
  pr::bytes out;
  if (!pr::from_hex(text, out) || out.empty()) return std::nullopt;
  return out;
}

check check_instance_name(std::string_view name, std::string_view path) {
  if (name.empty()) return fail(path, "instance-name is empty");
  if (name.size() > 255) return fail(path, "instance-name is longer than 255 characters");
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    // The overlay name is the host part of reload:// URIs: no spaces, controls or delimiters.
    if (u <= 0x20 || u == 0x7F || c == '/' || c == '@' || c == '?' || c == '#') {
      return fail(path, "instance-name '" + std::string(name) +
                            "' contains a character not allowed in a host name");
    }
  }
  return std::nullopt;
}

check check_sequence(std::uint64_t sequence, std::string_view path) {
  if (sequence > max_sequence)
    return fail(path, "sequence " + range_text(sequence, 0, max_sequence));
  return std::nullopt;
}

check check_topology(std::string_view plugin, std::string_view path) {
  if (plugin != chord_reload) {
    return fail(path, "'" + std::string(plugin) + "' is not supported (only CHORD-RELOAD)");
  }
  return std::nullopt;
}

check check_node_id_length(std::uint64_t length, std::string_view path) {
  if (length < pr::min_node_id_length || length > pr::max_node_id_length) {
    return fail(path, range_text(length, pr::min_node_id_length, pr::max_node_id_length));
  }
  return std::nullopt;
}

check check_root_cert(pr::byte_view der, std::string_view path) {
  if (der.empty()) return fail(path, "empty certificate");
  try {
    Botan::DataSource_Memory source(der.data(), der.size());
    const Botan::X509_Certificate cert(source);
    if (!source.end_of_data()) return fail(path, "bytes after the DER certificate");
    if (!cert.is_CA_cert()) {
      return fail(path, "not a CA certificate (basicConstraints CA is not set)");
    }
  } catch (const std::exception& e) {
    return fail(path, std::string("not a DER X.509 certificate (") + e.what() + ")");
  }
  return std::nullopt;
}

check check_enrollment_server(std::string_view url, std::string_view path) {
  constexpr std::string_view scheme = "https://";
  const bool https = url.size() > scheme.size() &&
                     std::equal(scheme.begin(), scheme.end(), url.begin(), [](char a, char b) {
                       return a == std::tolower(static_cast<unsigned char>(b));
                     });
  if (!https) return fail(path, "'" + std::string(url) + "' is not an https: URL");
  return std::nullopt;
}

check check_self_signed(const self_signed_policy& policy, std::string_view path) {
  if (policy.digest != "sha1" && policy.digest != "sha256") {
    return fail(path, "digest '" + policy.digest + "' is not supported (sha1 or sha256)");
  }
  return std::nullopt;
}

check check_bootstrap(const pr::ip_address_port& address, std::string_view path) {
  if (address.port() == 0) return fail(path, "port 0 is not a usable port");
  return std::nullopt;
}

check check_max_message_size(std::uint64_t size, std::string_view path) {
  if (size < min_max_message_size || size > 0xFFFFFFFFu) {
    return fail(path, range_text(size, min_max_message_size, 0xFFFFFFFFu));
  }
  return std::nullopt;
}

check check_initial_ttl(std::uint64_t ttl, std::string_view path) {
  // The forwarding header's ttl is a uint8; 0 could never be forwarded.
  if (ttl < 1 || ttl > 255) return fail(path, range_text(ttl, 1, 255));
  return std::nullopt;
}

check check_reliability_timer(std::uint64_t ms, std::string_view path) {
  if (ms < static_cast<std::uint64_t>(min_reliability_timer.count()) || ms > xsd_int_max) {
    return fail(path, range_text(ms, static_cast<std::uint64_t>(min_reliability_timer.count()),
                                 xsd_int_max) +
                          " (RFC 6940 11.1: at least 200 ms)");
  }
  return std::nullopt;
}

check check_listed_node_id(pr::byte_view id, std::size_t node_id_length, std::string_view path,
                           std::vector<std::string>* warnings) {
  if (id.empty() || id.size() > pr::max_node_id_length) {
    return fail(path, "a Node-ID of " + std::to_string(id.size()) + " bytes (expected 1..20)");
  }
  if (id.size() != node_id_length && warnings != nullptr) {
    warnings->push_back(std::string(path) + ": Node-ID " + pr::to_hex(id) + " has " +
                        std::to_string(id.size()) + " bytes, node-id-length is " +
                        std::to_string(node_id_length) + "; it can never match");
  }
  return std::nullopt;
}

check check_link_protocols(const std::vector<std::string>& protocols, std::string_view path) {
  if (protocols.empty()) return std::nullopt;
  for (const auto& p : protocols) {
    if (p == tls_link_protocol) return std::nullopt;
  }
  return fail(path, "none of the listed protocols is supported (only TLS)");
}

check check_mandatory_extension(std::string_view ns, const std::vector<std::string>& supported,
                                std::string_view path) {
  if (ns.empty()) return fail(path, "empty namespace");
  if (is_builtin_namespace(ns)) return std::nullopt;
  if (std::find(supported.begin(), supported.end(), ns) != supported.end()) return std::nullopt;
  return fail(path, "extension '" + std::string(ns) +
                        "' is not supported (RFC 6940 11.1: a joining node MUST support it)");
}

check check_chord_interval(std::uint64_t seconds, std::string_view path) {
  if (seconds < 1 || seconds > xsd_int_max) return fail(path, range_text(seconds, 1, xsd_int_max));
  return std::nullopt;
}

check check_domain_restriction(const domain_restriction& r, std::string_view path,
                               std::vector<std::string>* warnings) {
  for (std::size_t i = 0; i < r.patterns.size(); ++i) {
    const std::string& p = r.patterns[i];
    const std::string where = indexed(std::string(path) + "/sip:pattern", i);
    if (p.empty()) return fail(where, "empty pattern");
    regex_t re;
    const std::string anchored = "^(" + p + ")$";
    if (regcomp(&re, anchored.c_str(), REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0) {
      return fail(where, "'" + p + "' is not a POSIX extended regular expression");
    }
    regfree(&re);
  }
  if (!r.enable && !r.patterns.empty() && warnings != nullptr) {
    warnings->push_back(std::string(path) +
                        ": patterns are ignored while enable is false (only the overlay's domain)");
  }
  return std::nullopt;
}

check check_kind(const kind_definition& kind, std::string_view path) {
  if (kind.id == pr::kinds::invalid) return fail(path, "Kind-ID 0 is INVALID");
  if (kind.id == 0x7FFFFFFFu || kind.id == 0xFFFFFFFEu) {
    return fail(path, "Kind-ID " + std::to_string(kind.id) + " is reserved");
  }
  if (const auto reg = registered_kind_by_id(kind.id)) {
    if (kind.model != reg->model || kind.policy != reg->policy) {
      return fail(path, std::string(reg->name) + " is " +
                            std::string(pr::data_model_name(reg->model)) + " with " +
                            std::string(access_policy_name(reg->policy)));
    }
  }
  if (kind.max_count < 1 || kind.max_count > xsd_int_max) {
    return fail(std::string(path) + "/max-count", range_text(kind.max_count, 1, xsd_int_max));
  }
  if (kind.max_size < 1 || kind.max_size > xsd_int_max) {
    return fail(std::string(path) + "/max-size", range_text(kind.max_size, 1, xsd_int_max));
  }
  if ((kind.policy == access_policy::user_node_match ||
       kind.policy == access_policy::p2psip_generic) &&
      kind.model != pr::data_model::dictionary) {
    return fail(std::string(path) + "/access-control",
                std::string(access_policy_name(kind.policy)) +
                    " needs the DICTIONARY data model (RFC 6940 7.3.3)");
  }
  if (kind.policy == access_policy::node_multiple && !kind.max_node_multiple) {
    return fail(std::string(path) + "/max-node-multiple",
                "missing; NODE-MULTIPLE needs it (RFC 6940 11.1)");
  }
  if (kind.max_node_multiple &&
      (*kind.max_node_multiple < 1 || *kind.max_node_multiple > xsd_int_max)) {
    return fail(std::string(path) + "/max-node-multiple",
                range_text(*kind.max_node_multiple, 1, xsd_int_max));
  }
  return std::nullopt;
}

check check_cross_fields(const overlay_config& config) {
  if (config.root_certs.empty() && !config.self_signed_permitted()) {
    return fail("configuration/root-cert",
                "none listed and self-signed-permitted is not true (RFC 6940 11.1)");
  }
  std::set<std::uint32_t> ids;
  for (std::size_t i = 0; i < config.kinds.size(); ++i) {
    if (!ids.insert(config.kinds[i].id).second) {
      return fail(indexed("configuration/required-kinds/kind-block", i) + "/kind",
                  "Kind-ID " + std::to_string(config.kinds[i].id) + " is defined twice");
    }
  }
  return std::nullopt;
}

}  // namespace p2psip::config::detail

namespace p2psip::config {

result<void> validate_overlay_config(const overlay_config& c) {
  using namespace detail;
  const std::string cfg = "configuration";
  std::vector<check> checks;
  checks.push_back(check_instance_name(c.instance_name, cfg));
  checks.push_back(check_sequence(c.sequence, cfg));
  checks.push_back(check_topology(c.topology_plugin, cfg + "/topology-plugin"));
  checks.push_back(check_node_id_length(c.node_id_length, cfg + "/node-id-length"));
  for (std::size_t i = 0; i < c.root_certs.size(); ++i) {
    checks.push_back(check_root_cert(c.root_certs[i], indexed(cfg + "/root-cert", i)));
  }
  for (std::size_t i = 0; i < c.enrollment_servers.size(); ++i) {
    checks.push_back(
        check_enrollment_server(c.enrollment_servers[i], indexed(cfg + "/enrollment-server", i)));
  }
  if (c.self_signed)
    checks.push_back(check_self_signed(*c.self_signed, cfg + "/self-signed-permitted"));
  for (std::size_t i = 0; i < c.bootstrap_nodes.size(); ++i) {
    checks.push_back(check_bootstrap(c.bootstrap_nodes[i], indexed(cfg + "/bootstrap-node", i)));
  }
  checks.push_back(check_max_message_size(c.max_message_size, cfg + "/max-message-size"));
  checks.push_back(check_initial_ttl(c.initial_ttl, cfg + "/initial-ttl"));
  checks.push_back(check_reliability_timer(
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, c.overlay_reliability_timer.count())),
      cfg + "/overlay-reliability-timer"));
  checks.push_back(check_link_protocols(c.overlay_link_protocols, cfg + "/overlay-link-protocol"));
  const std::pair<const std::vector<pr::bytes>*, const char*> lists[] = {
      {&c.kind_signers, "/kind-signer"},
      {&c.configuration_signers, "/configuration-signer"},
      {&c.bad_nodes, "/bad-node"}};
  for (const auto& [list, name] : lists) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      checks.push_back(
          check_listed_node_id((*list)[i], c.node_id_length, indexed(cfg + name, i), nullptr));
    }
  }
  for (std::size_t i = 0; i < c.mandatory_extensions.size(); ++i) {
    checks.push_back(check_mandatory_extension(c.mandatory_extensions[i], {},
                                               indexed(cfg + "/mandatory-extension", i)));
  }
  checks.push_back(check_chord_interval(
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, c.chord.update_interval.count())),
      cfg + "/chord:chord-update-interval"));
  checks.push_back(check_chord_interval(
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, c.chord.ping_interval.count())),
      cfg + "/chord:chord-ping-interval"));
  if (c.sip_domain_restriction) {
    checks.push_back(check_domain_restriction(*c.sip_domain_restriction,
                                              cfg + "/sip:domain-restriction", nullptr));
  }
  for (std::size_t i = 0; i < c.kinds.size(); ++i) {
    checks.push_back(
        check_kind(c.kinds[i], indexed(cfg + "/required-kinds/kind-block", i) + "/kind"));
  }
  checks.push_back(check_cross_fields(c));
  for (auto& ch : checks) {
    if (ch) return std::move(*ch);
  }
  return {};
}

}  // namespace p2psip::config
