// Writing the overlay configuration document. pugixml builds the tree and does the escaping.

#include <pugixml.hpp>

#include <botan/base64.h>

#include <sstream>

#include "config_internal.hpp"

namespace p2psip::config {

namespace pr = p2psip::protocol;

namespace {

void text_element(pugi::xml_node parent, const char* name, const std::string& text) {
  parent.append_child(name).append_child(pugi::node_pcdata).set_value(text.c_str());
}

void number_element(pugi::xml_node parent, const char* name, std::uint64_t v) {
  text_element(parent, name, std::to_string(v));
}

void bool_element(pugi::xml_node parent, const char* name, bool v) {
  text_element(parent, name, v ? "true" : "false");
}

std::string base64(const pr::bytes& b) {
  return Botan::base64_encode(b.data(), b.size());
}

void signature_element_to(pugi::xml_node parent, const char* name, const signature_element& s) {
  pugi::xml_node n = parent.append_child(name);
  if (!s.algorithm.empty()) n.append_attribute("algorithm").set_value(s.algorithm.c_str());
  n.append_child(pugi::node_pcdata).set_value(base64(s.value).c_str());
}

// The address of an ip_address_port without brackets or port, as bootstrap-node's address.
std::string host_text(const pr::ip_address_port& a) {
  std::string s = a.to_string();
  s.erase(s.rfind(':'));
  if (!s.empty() && s.front() == '[') s = s.substr(1, s.size() - 2);
  return s;
}

void domain_restriction_to(pugi::xml_node parent, const domain_restriction& r) {
  pugi::xml_node n = parent.append_child("sip:domain-restriction");
  n.append_attribute("enable").set_value(r.enable ? "true" : "false");
  for (const auto& p : r.patterns) text_element(n, "sip:pattern", p);
}

void kind_to(pugi::xml_node required, const kind_definition& k,
             const std::optional<domain_restriction>& restriction) {
  pugi::xml_node block = required.append_child("kind-block");
  if (k.id == pr::kinds::p2psip_generic) {
    block.append_child(pugi::node_comment)
        .set_value(" p2psip generic put/get: each writer owns the entry keyed by its Node-ID ");
  } else if (k.id == pr::kinds::p2psip_sip_gateway) {
    block.append_child(pugi::node_comment)
        .set_value(
            " p2psip SIP gateways: at sip-gateway@<overlay>, an entry per gateway peer, "
            "written with the gateway role's credentials ");
  }
  pugi::xml_node kind = block.append_child("kind");
  const auto reg = registered_kind_by_id(k.id);
  if (reg && reg->iana) {
    kind.append_attribute("name").set_value(std::string(reg->name).c_str());
  } else {
    kind.append_attribute("id").set_value(std::to_string(k.id).c_str());
  }
  text_element(kind, "data-model", std::string(pr::data_model_name(k.model)));
  text_element(kind, "access-control", std::string(access_policy_name(k.policy)));
  number_element(kind, "max-count", k.max_count);
  number_element(kind, "max-size", k.max_size);
  if (k.max_node_multiple) number_element(kind, "max-node-multiple", *k.max_node_multiple);
  if (restriction && k.id == pr::kinds::sip_registration) domain_restriction_to(kind, *restriction);
  if (k.signature) signature_element_to(block, "kind-signature", *k.signature);
}

struct string_writer final : pugi::xml_writer {
  std::string out;
  void write(const void* data, std::size_t size) override {
    out.append(static_cast<const char*>(data), size);
  }
};

}  // namespace

std::string write_document(const overlay_config& c) {
  pugi::xml_document doc;
  pugi::xml_node decl = doc.append_child(pugi::node_declaration);
  decl.append_attribute("version").set_value("1.0");
  decl.append_attribute("encoding").set_value("UTF-8");

  pugi::xml_node overlay = doc.append_child("overlay");
  overlay.append_attribute("xmlns").set_value(std::string(base_namespace).c_str());
  overlay.append_attribute("xmlns:chord").set_value(std::string(chord_namespace).c_str());
  if (c.sip_domain_restriction) {
    overlay.append_attribute("xmlns:sip").set_value(std::string(sip_namespace).c_str());
  }

  pugi::xml_node cfg = overlay.append_child("configuration");
  cfg.append_attribute("instance-name").set_value(c.instance_name.c_str());
  cfg.append_attribute("sequence").set_value(std::to_string(c.sequence).c_str());
  if (c.expiration) {
    cfg.append_attribute("expiration").set_value(format_date_time(*c.expiration).c_str());
  }

  text_element(cfg, "topology-plugin", c.topology_plugin);
  number_element(cfg, "node-id-length", c.node_id_length);
  for (const auto& der : c.root_certs) text_element(cfg, "root-cert", base64(der));
  for (const auto& url : c.enrollment_servers) text_element(cfg, "enrollment-server", url);
  if (c.self_signed) {
    pugi::xml_node n = cfg.append_child("self-signed-permitted");
    n.append_attribute("digest").set_value(c.self_signed->digest.c_str());
    n.append_child(pugi::node_pcdata).set_value(c.self_signed->permitted ? "true" : "false");
  }
  for (const auto& b : c.bootstrap_nodes) {
    pugi::xml_node n = cfg.append_child("bootstrap-node");
    n.append_attribute("address").set_value(host_text(b).c_str());
    n.append_attribute("port").set_value(std::to_string(b.port()).c_str());
  }
  number_element(cfg, "turn-density", c.turn_density);
  bool_element(cfg, "clients-permitted", c.clients_permitted);
  bool_element(cfg, "no-ice", c.no_ice);
  if (c.shared_secret) text_element(cfg, "shared-secret", *c.shared_secret);
  number_element(cfg, "max-message-size", c.max_message_size);
  number_element(cfg, "initial-ttl", c.initial_ttl);
  number_element(cfg, "overlay-reliability-timer",
                 static_cast<std::uint64_t>(c.overlay_reliability_timer.count()));
  for (const auto& p : c.overlay_link_protocols) text_element(cfg, "overlay-link-protocol", p);
  for (const auto& id : c.kind_signers) text_element(cfg, "kind-signer", pr::to_hex(id));
  for (const auto& id : c.configuration_signers) {
    text_element(cfg, "configuration-signer", pr::to_hex(id));
  }
  for (const auto& id : c.bad_nodes) text_element(cfg, "bad-node", pr::to_hex(id));
  for (const auto& ns : c.mandatory_extensions) text_element(cfg, "mandatory-extension", ns);
  number_element(cfg, "chord:chord-update-interval",
                 static_cast<std::uint64_t>(c.chord.update_interval.count()));
  number_element(cfg, "chord:chord-ping-interval",
                 static_cast<std::uint64_t>(c.chord.ping_interval.count()));
  bool_element(cfg, "chord:chord-reactive", c.chord.reactive);

  // RFC 7904's grammar puts sip:domain-restriction among the kind parameters; without a
  // SIP-REGISTRATION kind to hold it, it goes in the configuration (the parser takes both).
  const bool restriction_in_kind = find_kind(c, pr::kinds::sip_registration) != nullptr;
  if (c.sip_domain_restriction && !restriction_in_kind) {
    domain_restriction_to(cfg, *c.sip_domain_restriction);
  }
  if (!c.kinds.empty()) {
    pugi::xml_node required = cfg.append_child("required-kinds");
    for (const auto& k : c.kinds) kind_to(required, k, c.sip_domain_restriction);
  }
  for (const auto& s : c.signatures) signature_element_to(overlay, "signature", s);

  string_writer w;
  doc.save(w, "  ", pugi::format_indent, pugi::encoding_utf8);
  return std::move(w.out);
}

}  // namespace p2psip::config
