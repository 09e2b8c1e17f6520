// Parsing the overlay configuration document (RFC 6940 section 11.1, grammar in 11.1.1;
// RFC 7904 section 3.4). pugixml has no namespace support, so names are resolved here against the
// xmlns declarations in scope. Elements of other namespaces are foreign and skipped, as the
// grammar's foreign-elements allow; unknown elements of our namespaces are refused.

#include <pugixml.hpp>

#include <botan/base64.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "config_internal.hpp"

namespace p2psip::config {

namespace pr = p2psip::protocol;
using namespace detail;

namespace {

constexpr std::string_view xml_namespace = "http://www.w3.org/XML/1998/namespace";

struct qname {
  std::string ns;
  std::string local;
};

bool is_xml_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string trim(std::string_view s) {
  while (!s.empty() && is_xml_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_xml_space(s.back())) s.remove_suffix(1);
  return std::string(s);
}

// The namespace bound to `prefix` at `node` (empty prefix: the default namespace).
std::optional<std::string> lookup_namespace(pugi::xml_node node, std::string_view prefix) {
  if (prefix == "xml") return std::string(xml_namespace);
  const std::string attr = prefix.empty() ? "xmlns" : "xmlns:" + std::string(prefix);
  for (pugi::xml_node n = node; n && n.type() == pugi::node_element; n = n.parent()) {
    if (const pugi::xml_attribute a = n.attribute(attr.c_str())) return std::string(a.value());
  }
  if (prefix.empty()) return std::string();  // no default namespace declared: no namespace
  return std::nullopt;
}

result<qname> resolve(pugi::xml_node node, std::string_view path) {
  const std::string_view name = node.name();
  const std::size_t colon = name.find(':');
  const std::string_view prefix = colon == std::string_view::npos ? "" : name.substr(0, colon);
  const std::string_view local = colon == std::string_view::npos ? name : name.substr(colon + 1);
  auto ns = lookup_namespace(node, prefix);
  if (!ns) return fail(path, "namespace prefix '" + std::string(prefix) + "' is not declared");
  return qname{std::move(*ns), std::string(local)};
}

// The element's name for paths: our namespaces with their usual prefixes whatever the document
// binds ("chord:chord-ping-interval"), foreign elements as written ("ext:example-extension").
std::string display_name(pugi::xml_node node, const qname& q) {
  if (q.ns == base_namespace) return q.local;
  if (q.ns == chord_namespace) return "chord:" + q.local;
  if (q.ns == sip_namespace) return "sip:" + q.local;
  return node.name();
}

bool is_ours(const qname& q) {
  // The grammar's foreign-elements exclude config-base, config-chord and no namespace; the SIP
  // usage's namespace is ours too.
  return q.ns == base_namespace || q.ns == chord_namespace || q.ns == sip_namespace || q.ns.empty();
}

// Walks the element children of `node`: visit(child, qname, child_path) for each one in our
// namespaces, stopping at the first error it returns. Elements of other namespaces are
// extensions the grammar lets through: recorded in `ignored`. Text and comments are skipped.
template <class Visit>
check for_each_element(pugi::xml_node node, const std::string& path,
                       std::vector<std::string>& ignored, Visit&& visit) {
  for (const pugi::xml_node child : node.children()) {
    if (child.type() != pugi::node_element) continue;
    auto q = resolve(child, path + "/" + child.name());
    if (!q) return q.error();
    const std::string child_path = path + "/" + display_name(child, *q);
    if (!is_ours(*q)) {
      ignored.push_back(child_path);
      continue;
    }
    if (auto c = visit(child, *q, child_path)) return c;
  }
  return std::nullopt;
}

// Unprefixed attributes must be the ones the grammar allows; prefixed ones are foreign and
// namespace declarations are not attributes at all.
check check_attributes(pugi::xml_node node, std::string_view path,
                       std::initializer_list<std::string_view> allowed) {
  for (const pugi::xml_attribute a : node.attributes()) {
    const std::string_view name = a.name();
    if (name == "xmlns" || name.starts_with("xmlns:")) continue;
    if (name.find(':') != std::string_view::npos) continue;
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return fail(path, "unknown attribute '" + std::string(name) + "'");
    }
  }
  return std::nullopt;
}

// Character data of a simple-content element, trimmed (xsd whitespace collapse for the typed
// values; for xsd:string values such as shared-secret p2psip trims too, see docs).
result<std::string> text_of(pugi::xml_node node, std::string_view path) {
  std::string text;
  for (const pugi::xml_node child : node.children()) {
    switch (child.type()) {
      case pugi::node_pcdata:
      case pugi::node_cdata: text += child.value(); break;
      case pugi::node_element:
        return fail(path, "expected text, found element <" + std::string(child.name()) + ">");
      default: break;  // comments, processing instructions
    }
  }
  return trim(text);
}

check unexpected_text(pugi::xml_node node, std::string_view path) {
  for (const pugi::xml_node child : node.children()) {
    if (child.type() != pugi::node_pcdata && child.type() != pugi::node_cdata) continue;
    const std::string t = trim(child.value());
    if (!t.empty()) return fail(path, "unexpected text '" + t + "'");
  }
  return std::nullopt;
}

result<std::uint64_t> number_of(std::string_view text, std::uint64_t max, std::string_view path) {
  std::uint64_t v = 0;
  switch (parse_unsigned(text, max, v)) {
    case number_status::ok: return v;
    case number_status::not_a_number:
      return fail(path, "'" + std::string(text) + "' is not a number");
    case number_status::negative: return fail(path, std::string(text) + " is negative");
    case number_status::too_large:
      return fail(path, std::string(text) + " is larger than " + std::to_string(max));
  }
  return fail(path, "'" + std::string(text) + "' is not a number");
}

result<std::uint64_t> element_number(pugi::xml_node node, std::uint64_t max,
                                     std::string_view path) {
  auto text = text_of(node, path);
  if (!text) return text.error();
  return number_of(*text, max, path);
}

result<bool> element_bool(pugi::xml_node node, std::string_view path) {
  auto text = text_of(node, path);
  if (!text) return text.error();
  if (*text == "true" || *text == "1") return true;
  if (*text == "false" || *text == "0") return false;
  return fail(path, "'" + *text + "' is not a boolean (true, false, 1, 0)");
}

result<pr::bytes> element_base64(pugi::xml_node node, std::string_view path) {
  auto text = text_of(node, path);
  if (!text) return text.error();
  if (text->empty()) return fail(path, "empty base64 content");
  try {
    const auto decoded = Botan::base64_decode(*text, true);
    return pr::bytes(decoded.begin(), decoded.end());
  } catch (const std::exception&) {
    return fail(path, "invalid base64");
  }
}

result<signature_element> element_signature(pugi::xml_node node, std::string_view path) {
  if (auto c = check_attributes(node, path, {"algorithm"})) return std::move(*c);
  signature_element sig;
  sig.algorithm = trim(node.attribute("algorithm").value());
  auto value = element_base64(node, path);
  if (!value) return value.error();
  sig.value = std::move(*value);
  return sig;
}

// The exact source bytes of an element, from its '<' to the '>' of its end tag (RFC 6940 11.1:
// what <signature> and <kind-signature> cover). Empty when they cannot be located.
std::string source_text(std::string_view source, pugi::xml_node node) {
  const std::ptrdiff_t name_at = node.offset_debug();
  if (name_at < 1) return {};
  const auto start = static_cast<std::size_t>(name_at - 1);
  const std::string_view name = node.name();
  if (start >= source.size() || source[start] != '<' ||
      source.substr(start + 1, name.size()) != name) {
    return {};
  }
  // End of the start tag, skipping quoted attribute values (they may contain '>').
  char quote = 0;
  std::size_t i = start + 1 + name.size();
  for (; i < source.size(); ++i) {
    const char c = source[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '>') {
      break;
    }
  }
  if (i >= source.size()) return {};
  if (source[i - 1] == '/') return std::string(source.substr(start, i + 1 - start));
  const std::string end_tag = "</" + std::string(name);
  std::size_t end = source.find(end_tag, i);
  while (end != std::string_view::npos) {
    std::size_t j = end + end_tag.size();
    while (j < source.size() && is_xml_space(source[j])) ++j;
    if (j < source.size() && source[j] == '>')
      return std::string(source.substr(start, j + 1 - start));
    end = source.find(end_tag, end + 1);
  }
  return {};
}

// Refuses a second occurrence of an element the grammar allows once.
check once(std::set<std::string>& seen, const std::string& name, std::string_view path) {
  if (!seen.insert(name).second) return fail(path, "appears more than once");
  return std::nullopt;
}

/// A number element that may appear once: read it, check it with `check_value` (which names the
/// element on failure), then hand it to `store`.
template <class Check, class Store>
check once_number(pugi::xml_node node, const std::string& name, const std::string& path,
                  std::set<std::string>& seen, std::uint64_t max, Check check_value, Store store) {
  if (auto c = once(seen, name, path)) return c;
  auto v = element_number(node, max, path);
  if (!v) return v.error();
  if (auto c = check_value(*v, path)) return c;
  store(*v);
  return std::nullopt;
}

class configuration_parser {
 public:
  configuration_parser(std::string_view source, const parse_options& options, parsed_document& doc)
      : source_(source), options_(options), doc_(doc), config_(doc.config) {}

  check parse(pugi::xml_node node) {
    const std::string path = "configuration";
    if (auto c = check_attributes(node, path, {"instance-name", "sequence", "expiration"}))
      return c;
    if (auto c = parse_attributes(node, path)) return c;
    if (auto c = unexpected_text(node, path)) return c;

    std::set<std::string> seen;
    std::map<std::string, std::size_t> counts;
    if (auto c = for_each_element(
            node, path, doc_.ignored,
            [&](pugi::xml_node child, const qname& q, const std::string& child_path) {
              return element(child, q, child_path, counts[child_path]++, seen);
            })) {
      return c;
    }

    const std::string base = "configuration";
    if (auto c =
            check_link_protocols(config_.overlay_link_protocols, base + "/overlay-link-protocol")) {
      return c;
    }
    for (const auto& [id, where] : listed_ids_) {
      if (auto c = check_listed_node_id(id, config_.node_id_length, where, &doc_.warnings))
        return c;
    }
    return check_cross_fields(config_);
  }

 private:
  check parse_attributes(pugi::xml_node node, const std::string& path) {
    const pugi::xml_attribute name = node.attribute("instance-name");
    if (!name) return fail(path, "the instance-name attribute is missing");
    config_.instance_name = trim(name.value());
    if (auto c = check_instance_name(config_.instance_name, path)) return c;
    if (const pugi::xml_attribute seq = node.attribute("sequence")) {
      auto v = number_of(trim(seq.value()), 0xFFFFFFFFFFFFull, path + " sequence");
      if (!v) return v.error();
      if (auto c = check_sequence(*v, path)) return c;
      config_.sequence = static_cast<std::uint16_t>(*v);
    }
    if (const pugi::xml_attribute exp = node.attribute("expiration")) {
      const std::string text = trim(exp.value());
      const auto t = parse_date_time(text);
      if (!t) {
        return fail(path, "expiration '" + text + "' is not an RFC 3339 date-time in UTC");
      }
      config_.expiration = *t;
    }
    return std::nullopt;
  }

  check element(pugi::xml_node node, const qname& q, const std::string& path, std::size_t index,
                std::set<std::string>& seen) {
    const std::string ipath = indexed(path, index);
    if (q.ns == chord_namespace) return chord_element(node, q.local, path, seen);
    if (q.ns == sip_namespace) {
      if (q.local == "domain-restriction" || q.local == "domain-restrictions") {
        return domain_restriction_element(node, path);
      }
      return fail(path, "unknown element");
    }
    if (q.ns.empty())
      return fail(path, "element in no namespace (expected " + std::string(base_namespace) + ")");
    const std::string& n = q.local;
    // Elements that carry only text: no attributes.
    if (n != "self-signed-permitted" && n != "bootstrap-node") {
      if (auto c = check_attributes(node, path, {})) return c;
    }
    if (n == "topology-plugin" || n == "topology-plug-in") {
      // RFC 6940 11.1 prose says "topology-plug-in", the grammar says "topology-plugin".
      if (auto c = once(seen, "topology-plugin", path)) return c;
      auto t = text_of(node, path);
      if (!t) return t.error();
      if (auto c = check_topology(*t, path)) return c;
      config_.topology_plugin = *t;
      return std::nullopt;
    }
    if (n == "node-id-length") {
      return once_number(
          node, n, path, seen, 0xFFFFFFFFu, check_node_id_length,
          [&](std::uint64_t v) { config_.node_id_length = static_cast<std::size_t>(v); });
    }
    if (n == "root-cert") {
      auto der = element_base64(node, ipath);
      if (!der) return der.error();
      if (auto c = check_root_cert(*der, ipath)) return c;
      config_.root_certs.push_back(std::move(*der));
      return std::nullopt;
    }
    if (n == "enrollment-server") {
      auto t = text_of(node, ipath);
      if (!t) return t.error();
      if (auto c = check_enrollment_server(*t, ipath)) return c;
      config_.enrollment_servers.push_back(std::move(*t));
      return std::nullopt;
    }
    if (n == "self-signed-permitted") {
      if (auto c = once(seen, n, path)) return c;
      if (auto c = check_attributes(node, path, {"digest"})) return c;
      const pugi::xml_attribute digest = node.attribute("digest");
      if (!digest) return fail(path, "the digest attribute is missing");
      auto b = element_bool(node, path);
      if (!b) return b.error();
      self_signed_policy p{*b, trim(digest.value())};
      if (auto c = check_self_signed(p, path)) return c;
      config_.self_signed = std::move(p);
      return std::nullopt;
    }
    if (n == "bootstrap-node") return bootstrap_element(node, ipath);
    if (n == "turn-density") {
      return once_number(
          node, n, path, seen, 255, [](std::uint64_t, std::string_view) -> check { return {}; },
          [&](std::uint64_t v) { config_.turn_density = static_cast<std::uint8_t>(v); });
    }
    if (n == "clients-permitted" || n == "no-ice") {
      if (auto c = once(seen, n, path)) return c;
      auto b = element_bool(node, path);
      if (!b) return b.error();
      (n == "no-ice" ? config_.no_ice : config_.clients_permitted) = *b;
      return std::nullopt;
    }
    if (n == "shared-secret") {
      if (auto c = once(seen, n, path)) return c;
      auto t = text_of(node, path);
      if (!t) return t.error();
      config_.shared_secret = std::move(*t);
      return std::nullopt;
    }
    if (n == "max-message-size") {
      return once_number(
          node, n, path, seen, 0xFFFFFFFFFFFFull, check_max_message_size,
          [&](std::uint64_t v) { config_.max_message_size = static_cast<std::uint32_t>(v); });
    }
    if (n == "initial-ttl") {
      return once_number(
          node, n, path, seen, 0xFFFFFFFFFFFFull, check_initial_ttl,
          [&](std::uint64_t v) { config_.initial_ttl = static_cast<std::uint8_t>(v); });
    }
    if (n == "overlay-reliability-timer") {
      return once_number(node, n, path, seen, 0xFFFFFFFFFFFFull, check_reliability_timer,
                         [&](std::uint64_t v) {
                           config_.overlay_reliability_timer =
                               std::chrono::milliseconds(static_cast<std::int64_t>(v));
                         });
    }
    if (n == "overlay-link-protocol") {
      auto t = text_of(node, ipath);
      if (!t) return t.error();
      if (t->empty()) return fail(ipath, "empty protocol name");
      config_.overlay_link_protocols.push_back(std::move(*t));
      return std::nullopt;
    }
    if (n == "kind-signer" || n == "configuration-signer" || n == "bad-node") {
      auto t = text_of(node, ipath);
      if (!t) return t.error();
      auto id = parse_hex_id(*t);
      if (!id) return fail(ipath, "'" + *t + "' is not a Node-ID in hex");
      listed_ids_.emplace_back(*id, ipath);
      auto& list = n == "kind-signer"            ? config_.kind_signers
                   : n == "configuration-signer" ? config_.configuration_signers
                                                 : config_.bad_nodes;
      list.push_back(std::move(*id));
      return std::nullopt;
    }
    if (n == "mandatory-extension") {
      auto t = text_of(node, ipath);
      if (!t) return t.error();
      if (auto c = check_mandatory_extension(*t, options_.supported_extensions, ipath)) return c;
      config_.mandatory_extensions.push_back(std::move(*t));
      return std::nullopt;
    }
    if (n == "required-kinds") {
      if (auto c = once(seen, n, path)) return c;
      return required_kinds_element(node, path);
    }
    return fail(path, "unknown element");
  }

  check chord_element(pugi::xml_node node, const std::string& local, const std::string& path,
                      std::set<std::string>& seen) {
    if (auto c = check_attributes(node, path, {})) return c;
    if (local == "chord-update-interval" || local == "chord-ping-interval") {
      return once_number(node, "chord:" + local, path, seen, 0xFFFFFFFFFFFFull,
                         check_chord_interval, [&](std::uint64_t v) {
                           (local == "chord-update-interval" ? config_.chord.update_interval
                                                             : config_.chord.ping_interval) =
                               std::chrono::seconds(static_cast<std::int64_t>(v));
                         });
    }
    if (local == "chord-reactive") {
      if (auto c = once(seen, "chord:" + local, path)) return c;
      auto b = element_bool(node, path);
      if (!b) return b.error();
      config_.chord.reactive = *b;
      return std::nullopt;
    }
    return fail(path, "unknown element");
  }

  check bootstrap_element(pugi::xml_node node, const std::string& path) {
    if (auto c = check_attributes(node, path, {"address", "port"})) return c;
    if (auto c = unexpected_text(node, path)) return c;
    const pugi::xml_attribute address = node.attribute("address");
    if (!address) return fail(path, "the address attribute is missing");
    const std::string host = trim(address.value());
    std::uint64_t port = default_bootstrap_port;
    if (const pugi::xml_attribute p = node.attribute("port")) {
      auto v = number_of(trim(p.value()), 0xFFFFFFFFFFFFull, path + " port");
      if (!v) return v.error();
      if (*v < 1 || *v > 65535) {
        return fail(path, "port " + std::to_string(*v) + " is outside 1..65535");
      }
      port = *v;
    }
    const bool v6 = host.find(':') != std::string::npos;
    const std::string text = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
    auto parsed = pr::ip_address_port::parse(text);
    if (!parsed) return fail(path, "address '" + host + "' is not an IPv4 or IPv6 literal");
    if (auto c = check_bootstrap(*parsed, path)) return c;
    config_.bootstrap_nodes.push_back(*parsed);
    return std::nullopt;
  }

  check domain_restriction_element(pugi::xml_node node, const std::string& path) {
    if (config_.sip_domain_restriction) return fail(path, "appears more than once");
    if (auto c = check_attributes(node, path, {"enable"})) return c;
    if (auto c = unexpected_text(node, path)) return c;
    domain_restriction r;
    if (const pugi::xml_attribute enable = node.attribute("enable")) {
      const std::string v = trim(enable.value());
      if (v == "true" || v == "1") {
        r.enable = true;
      } else if (v != "false" && v != "0") {
        return fail(path, "enable '" + v + "' is not a boolean (true, false, 1, 0)");
      }
    }
    std::size_t index = 0;
    const auto pattern = [&](pugi::xml_node child, const qname& q,
                             const std::string& child_path) -> check {
      if (q.ns != sip_namespace || q.local != "pattern") return fail(child_path, "unknown element");
      if (auto c = check_attributes(child, child_path, {})) return c;
      auto t = text_of(child, indexed(child_path, index));
      if (!t) return t.error();
      r.patterns.push_back(std::move(*t));
      ++index;
      return std::nullopt;
    };
    if (auto c = for_each_element(node, path, doc_.ignored, pattern)) return c;
    if (auto c = check_domain_restriction(r, path, &doc_.warnings)) return c;
    config_.sip_domain_restriction = std::move(r);
    return std::nullopt;
  }

  check required_kinds_element(pugi::xml_node node, const std::string& path) {
    if (auto c = unexpected_text(node, path)) return c;
    std::size_t index = 0;
    return for_each_element(
        node, path, doc_.ignored,
        [&](pugi::xml_node child, const qname& q, const std::string& child_path) -> check {
          if (q.ns != base_namespace || q.local != "kind-block") {
            return fail(child_path, "unknown element");
          }
          return kind_block_element(child, indexed(child_path, index++));
        });
  }

  check kind_block_element(pugi::xml_node node, const std::string& path) {
    if (auto c = check_attributes(node, path, {})) return c;
    if (auto c = unexpected_text(node, path)) return c;
    pugi::xml_node kind_node;
    std::optional<signature_element> signature;
    const auto part = [&](pugi::xml_node child, const qname& q,
                          const std::string& child_path) -> check {
      if (q.ns == base_namespace && q.local == "kind") {
        if (kind_node) return fail(child_path, "appears more than once");
        kind_node = child;
      } else if (q.ns == base_namespace && q.local == "kind-signature") {
        if (signature) return fail(child_path, "appears more than once");
        auto sig = element_signature(child, child_path);
        if (!sig) return sig.error();
        signature = std::move(*sig);
      } else {
        return fail(child_path, "unknown element");
      }
      return std::nullopt;
    };
    if (auto c = for_each_element(node, path, doc_.ignored, part)) return c;
    if (!kind_node) return fail(path, "no kind element");
    auto kind = kind_element(kind_node, path + "/kind");
    if (!kind) return kind.error();
    kind->signature = std::move(signature);
    config_.kinds.push_back(std::move(*kind));
    doc_.kind_texts.push_back(source_text(source_, kind_node));
    return std::nullopt;
  }

  result<kind_definition> kind_element(pugi::xml_node node, const std::string& path) {
    if (auto c = check_attributes(node, path, {"name", "id"})) return std::move(*c);
    if (auto c = unexpected_text(node, path)) return std::move(*c);
    const pugi::xml_attribute name = node.attribute("name");
    const pugi::xml_attribute id = node.attribute("id");
    if (name && id) return fail(path, "has both a name and an id attribute");
    if (!name && !id) return fail(path, "has neither a name nor an id attribute");

    kind_definition kind;
    std::optional<registered_kind> reg;
    std::string label;
    if (name) {
      const std::string n = trim(name.value());
      reg = registered_kind_by_name(n);
      if (!reg) return fail(path, "unknown kind name '" + n + "' (private kinds use id=)");
      kind.id = reg->id;
      label = n;
    } else {
      auto v = number_of(trim(id.value()), 0xFFFFFFFFu, path + " id");
      if (!v) return v.error();
      kind.id = static_cast<std::uint32_t>(*v);
      reg = registered_kind_by_id(kind.id);
      label = reg && reg->iana ? std::string(reg->name) : "Kind-ID " + std::to_string(kind.id);
    }

    std::set<std::string> seen;
    std::optional<pr::data_model> model;
    std::optional<access_policy> policy;
    std::optional<std::uint64_t> max_count;
    std::optional<std::uint64_t> max_size;
    const auto setting = [&](pugi::xml_node child, const qname& q,
                             const std::string& child_path) -> check {
      if (q.ns == sip_namespace &&
          (q.local == "domain-restriction" || q.local == "domain-restrictions")) {
        if (kind.id != pr::kinds::sip_registration) {
          return fail(child_path, "applies to SIP-REGISTRATION only (RFC 7904 3.4)");
        }
        return domain_restriction_element(child, child_path);
      }
      if (q.ns != base_namespace) return fail(child_path, "unknown element");
      if (auto c = check_attributes(child, child_path, {})) return c;
      const std::string& n = q.local;
      if (n != "data-model" && n != "access-control" && n != "max-count" && n != "max-size" &&
          n != "max-node-multiple") {
        return fail(child_path, "unknown element");
      }
      if (auto c = once(seen, n, child_path)) return c;
      if (n == "data-model") {
        auto t = text_of(child, child_path);
        if (!t) return t.error();
        model = data_model_from_name(*t);
        if (!model) {
          return fail(child_path, "'" + *t + "' is not a data model (SINGLE, ARRAY, DICTIONARY)");
        }
      } else if (n == "access-control") {
        auto t = text_of(child, child_path);
        if (!t) return t.error();
        policy = access_policy_from_name(*t);
        if (!policy) return fail(child_path, "unknown access control policy '" + *t + "'");
      } else {
        auto v = element_number(child, 0xFFFFFFFFFFFFull, child_path);
        if (!v) return v.error();
        if (n == "max-count") max_count = *v;
        if (n == "max-size") max_size = *v;
        if (n == "max-node-multiple") {
          if (*v < 1 || *v > xsd_int_max) {
            return fail(child_path,
                        std::to_string(*v) + " is outside 1.." + std::to_string(xsd_int_max));
          }
          kind.max_node_multiple = static_cast<std::uint32_t>(*v);
        }
      }
      return std::nullopt;
    };
    if (auto c = for_each_element(node, path, doc_.ignored, setting)) return std::move(*c);
    // RFC 6940 11.1: "All of the non-optional values MUST be provided."
    if (!model) return fail(path + "/data-model", "missing");
    if (!policy) return fail(path + "/access-control", "missing");
    if (!max_count) return fail(path + "/max-count", "missing");
    if (!max_size) return fail(path + "/max-size", "missing");
    if (*max_count < 1 || *max_count > xsd_int_max) {
      return fail(path + "/max-count",
                  std::to_string(*max_count) + " is outside 1.." + std::to_string(xsd_int_max));
    }
    if (*max_size < 1 || *max_size > xsd_int_max) {
      return fail(path + "/max-size",
                  std::to_string(*max_size) + " is outside 1.." + std::to_string(xsd_int_max));
    }
    kind.max_count = static_cast<std::uint32_t>(*max_count);
    kind.max_size = static_cast<std::uint32_t>(*max_size);
    kind.model = *model;
    kind.policy = *policy;
    if (reg && (kind.model != reg->model || kind.policy != reg->policy)) {
      if (reg->iana) {
        // RFC 6940 11.1: they "MUST match those in the Kind registration, and clients MUST ignore
        // them in favor of the IANA versions".
        doc_.warnings.push_back(
            path + ": " + label + " is " + std::string(pr::data_model_name(reg->model)) + " with " +
            std::string(access_policy_name(reg->policy)) + " (IANA); the document's " +
            std::string(pr::data_model_name(kind.model)) + " with " +
            std::string(access_policy_name(kind.policy)) + " is ignored");
        kind.model = reg->model;
        kind.policy = reg->policy;
      } else {
        return fail(path, label + " is p2psip's " + std::string(reg->name) +
                              " kind: " + std::string(pr::data_model_name(reg->model)) + " with " +
                              std::string(access_policy_name(reg->policy)));
      }
    }
    if (auto c = check_kind(kind, path)) return std::move(*c);
    return kind;
  }

  std::string_view source_;
  const parse_options& options_;
  parsed_document& doc_;
  overlay_config& config_;
  std::vector<std::pair<pr::bytes, std::string>> listed_ids_;
};

struct configuration_entry {
  pugi::xml_node node;
  std::string instance_name;
  std::vector<pugi::xml_node> signatures;
};

}  // namespace

result<parsed_document> parse_document(std::string_view xml, const parse_options& options) {
  if (xml.size() > options.max_document_size) {
    return fail("overlay",
                "document of " + std::to_string(xml.size()) +
                    " bytes is larger than the limit of " +
                    std::to_string(options.max_document_size),
                config_errc::too_large);
  }
  pugi::xml_document dom;
  const pugi::xml_parse_result parsed =
      dom.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!parsed) {
    return fail("overlay",
                std::string("not well-formed XML at offset ") + std::to_string(parsed.offset) +
                    ": " + parsed.description(),
                config_errc::malformed);
  }
  const pugi::xml_node root = dom.document_element();
  if (!root) return fail("overlay", "the document has no root element", config_errc::malformed);
  auto root_name = resolve(root, "overlay");
  if (!root_name) return root_name.error();
  if (root_name->local != "overlay") {
    return fail("overlay", "root element is <" + std::string(root.name()) + ">, expected <overlay>",
                config_errc::malformed);
  }
  if (root_name->ns != base_namespace) {
    return fail("overlay",
                (root_name->ns.empty() ? std::string("in no namespace")
                                       : "namespace is '" + root_name->ns + "'") +
                    ", expected '" + std::string(base_namespace) + "'",
                config_errc::malformed);
  }
  if (auto c = check_attributes(root, "overlay", {})) return std::move(*c);
  if (auto c = unexpected_text(root, "overlay")) return std::move(*c);

  parsed_document doc;
  std::vector<configuration_entry> entries;
  const auto entry = [&](pugi::xml_node child, const qname& q, const std::string& path) -> check {
    if (q.ns == base_namespace && q.local == "configuration") {
      const pugi::xml_attribute name = child.attribute("instance-name");
      if (!name) {
        return fail(indexed("overlay/configuration", entries.size()),
                    "the instance-name attribute is missing");
      }
      const std::string instance = trim(name.value());
      for (const auto& e : entries) {
        if (e.instance_name == instance) {
          return fail(indexed("overlay/configuration", entries.size()),
                      "a second configuration for instance-name '" + instance + "'");
        }
      }
      entries.push_back({child, instance, {}});
    } else if (q.ns == base_namespace && q.local == "signature") {
      if (entries.empty()) return fail(path, "comes before any configuration");
      entries.back().signatures.push_back(child);
    } else {
      return fail(path, "unknown element");
    }
    return std::nullopt;
  };
  if (auto c = for_each_element(root, "overlay", doc.ignored, entry)) return std::move(*c);
  if (entries.empty()) return fail("overlay", "no configuration element");

  const configuration_entry* chosen = &entries.front();
  if (options.instance_name) {
    chosen = nullptr;
    std::string names;
    for (const auto& e : entries) {
      if (e.instance_name == *options.instance_name) chosen = &e;
      names += (names.empty() ? "'" : ", '") + e.instance_name + "'";
    }
    if (chosen == nullptr) {
      return fail("overlay",
                  "no configuration for instance-name '" + *options.instance_name +
                      "' (the document has " + names + ")",
                  config_errc::wrong_overlay);
    }
  }
  for (const auto& e : entries) doc.instance_names.push_back(e.instance_name);

  configuration_parser parser(xml, options, doc);
  if (auto c = parser.parse(chosen->node)) return std::move(*c);
  for (std::size_t i = 0; i < chosen->signatures.size(); ++i) {
    auto sig = element_signature(chosen->signatures[i], indexed("overlay/signature", i));
    if (!sig) return sig.error();
    doc.config.signatures.push_back(std::move(*sig));
  }
  doc.configuration_text = source_text(xml, chosen->node);
  return doc;
}

result<overlay_config> parse_overlay_config(std::string_view xml, const parse_options& options) {
  auto doc = parse_document(xml, options);
  if (!doc) return doc.error();
  return std::move(doc->config);
}

result<parsed_document> load_document(const std::filesystem::path& file,
                                      const parse_options& options) {
  const std::string name = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail(name, "cannot open for reading", config_errc::unreadable);
  std::string text;
  // Read at most one byte over the limit so that an oversized file is refused, not truncated;
  // in pieces, so that a small document does not cost a zeroed buffer of the limit's size.
  char piece[4096];
  while (text.size() <= options.max_document_size) {
    const std::size_t want = std::min(sizeof piece, options.max_document_size + 1 - text.size());
    in.read(piece, static_cast<std::streamsize>(want));
    text.append(piece, static_cast<std::size_t>(in.gcount()));
    if (!in) break;
  }
  if (in.bad()) return fail(name, "read error", config_errc::unreadable);
  auto doc = parse_document(text, options);
  if (!doc) return at(name, doc.error());
  return doc;
}

}  // namespace p2psip::config
