#include "p2psip/crypto/access.hpp"

#include <algorithm>

namespace p2psip::crypto {

namespace pr = p2psip::protocol;

std::string_view access_policy_name(access_policy p) noexcept {
  switch (p) {
    case access_policy::user_match: return "USER-MATCH";
    case access_policy::node_match: return "NODE-MATCH";
    case access_policy::user_node_match: return "USER-NODE-MATCH";
    case access_policy::node_multiple: return "NODE-MULTIPLE";
    case access_policy::node_key: return "P2PSIP-GENERIC";
  }
  return "";
}

std::optional<access_policy> parse_access_policy(std::string_view name) noexcept {
  for (auto p :
       {access_policy::user_match, access_policy::node_match, access_policy::user_node_match,
        access_policy::node_multiple, access_policy::node_key}) {
    if (access_policy_name(p) == name) return p;
  }
  return std::nullopt;
}

std::optional<access_policy> registered_kind_policy(std::uint32_t kind) noexcept {
  switch (kind) {
    case pr::kinds::sip_registration: return access_policy::user_node_match;  // RFC 7904
    case pr::kinds::turn_service: return access_policy::node_multiple;
    case pr::kinds::certificate_by_node: return access_policy::node_match;
    case pr::kinds::certificate_by_user: return access_policy::user_match;
    case pr::kinds::p2psip_generic: return access_policy::node_key;
    case pr::kinds::p2psip_sip_gateway: return access_policy::user_node_match;
    default: return std::nullopt;  // REDIR (RFC 7374) has its own policy, not implemented
  }
}

pr::resource_id node_multiple_resource(const pr::node_id& node, std::uint32_t i) {
  pr::bytes name(node.view().begin(), node.view().end());
  name.push_back(static_cast<std::uint8_t>(i >> 24));
  name.push_back(static_cast<std::uint8_t>(i >> 16));
  name.push_back(static_cast<std::uint8_t>(i >> 8));
  name.push_back(static_cast<std::uint8_t>(i));
  return pr::hash_resource_name(pr::byte_view(name), node.size());
}

namespace {

result<void> forbidden() {
  return make_error_code(pr::reload_errc::forbidden);
}

bool user_matches(const verified_signer& signer, const pr::resource_id& resource) {
  const std::string& user = signer.user();
  return !user.empty() &&
         pr::hash_resource_name(std::string_view(user), signer.node.size()) == resource;
}

bool key_is_node(const pr::stored_data_value& value, const pr::node_id& node) {
  const auto* entry = std::get_if<pr::dictionary_entry>(&value);
  return entry != nullptr && std::ranges::equal(entry->key, node.view());
}

}  // namespace

result<void> check_access(access_policy policy, const verified_signer& signer,
                          const pr::resource_id& resource, const pr::stored_data_value& value,
                          std::uint32_t max_node_multiple) {
  // verified_signer.node is the Node-ID the SignerIdentity names, so "that Node-ID is the one
  // indicated in the SignerIdentity" holds by construction.
  switch (policy) {
    case access_policy::user_match:
      if (user_matches(signer, resource)) return {};
      return forbidden();
    case access_policy::node_match:
      if (pr::hash_resource_name(signer.node.view(), signer.node.size()) == resource) return {};
      return forbidden();
    case access_policy::user_node_match:
      if (user_matches(signer, resource) && key_is_node(value, signer.node)) return {};
      return forbidden();
    case access_policy::node_multiple:
      for (std::uint32_t i = 1; i <= max_node_multiple; ++i) {
        if (node_multiple_resource(signer.node, i) == resource) return {};
        if (i == UINT32_MAX) break;
      }
      return forbidden();
    case access_policy::node_key:
      if (key_is_node(value, signer.node)) return {};
      return forbidden();
  }
  return forbidden();
}

}  // namespace p2psip::crypto
