// The typed overlay configuration: names, the kind registry, derived tables and checks.

#include "p2psip/config/overlay_config.hpp"

#include <regex.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include "config_internal.hpp"

namespace p2psip::config {

namespace pr = p2psip::protocol;

namespace {

constexpr std::array<std::pair<access_policy, std::string_view>, 5> policy_names{{
    {access_policy::user_match, "USER-MATCH"},
    {access_policy::node_match, "NODE-MATCH"},
    {access_policy::user_node_match, "USER-NODE-MATCH"},
    {access_policy::node_multiple, "NODE-MULTIPLE"},
    {access_policy::p2psip_generic, "P2PSIP-GENERIC"},
}};

// RFC 6940 section 14.6, RFC 7904 section 9.1 and p2psip's generic kind (docs/conformance.md).
constexpr std::array<registered_kind, 6> registry{{
    {pr::kinds::sip_registration, "SIP-REGISTRATION", pr::data_model::dictionary,
     access_policy::user_node_match, true},
    {pr::kinds::turn_service, "TURN-SERVICE", pr::data_model::single_value,
     access_policy::node_multiple, true},
    {pr::kinds::certificate_by_node, "CERTIFICATE_BY_NODE", pr::data_model::array,
     access_policy::node_match, true},
    {pr::kinds::certificate_by_user, "CERTIFICATE_BY_USER", pr::data_model::array,
     access_policy::user_match, true},
    {pr::kinds::p2psip_generic, "p2psip-generic", pr::data_model::dictionary,
     access_policy::p2psip_generic, false},
    {pr::kinds::p2psip_sip_gateway, "p2psip-sip-gateway", pr::data_model::dictionary,
     access_policy::user_node_match, false},
}};

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Whole-string, case-insensitive POSIX ERE match. A pattern that does not compile matches
// nothing (the parser refuses such patterns, so only hand-built configurations can have one).
bool ere_full_match(const std::string& pattern, const std::string& text) {
  const std::string anchored = "^(" + pattern + ")$";
  regex_t re;
  if (regcomp(&re, anchored.c_str(), REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0) return false;
  const bool matched = regexec(&re, text.c_str(), 0, nullptr, 0) == 0;
  regfree(&re);
  return matched;
}

std::string two_digits(unsigned v) {
  std::string s = std::to_string(v);
  return s.size() < 2 ? "0" + s : s;
}

// Digits of a fixed width; nullopt if any is not a digit.
std::optional<unsigned> fixed_digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  unsigned v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v;
}

class config_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "p2psip.config"; }
  std::string message(int ev) const override {
    switch (static_cast<config_errc>(ev)) {
      case config_errc::ok: return "success";
      case config_errc::unreadable: return "the configuration document cannot be read";
      case config_errc::too_large: return "the configuration document is too large";
      case config_errc::malformed: return "the configuration document is malformed";
      case config_errc::invalid: return "the configuration document holds an invalid value";
      case config_errc::wrong_overlay: return "the configuration is for another overlay";
      case config_errc::untrusted_root: return "the configuration lists an untrusted root";
      case config_errc::expired: return "the configuration has expired";
      case config_errc::not_newer: return "the configuration is not newer than the current one";
      case config_errc::unsigned_document: return "the configuration is unsigned";
      case config_errc::bad_signature: return "the configuration's signature is not acceptable";
      case config_errc::signing_failed: return "the configuration could not be signed";
      case config_errc::write_failed: return "the configuration could not be written";
    }
    return "unknown configuration error";
  }
};

}  // namespace

const std::error_category& config_category() noexcept {
  static const config_category_impl category;
  return category;
}

std::error_code make_error_code(config_errc e) noexcept {
  return {static_cast<int>(e), config_category()};
}

std::string_view access_policy_name(access_policy p) noexcept {
  for (const auto& [policy, name] : policy_names) {
    if (policy == p) return name;
  }
  return "?";
}

std::optional<access_policy> access_policy_from_name(std::string_view name) noexcept {
  for (const auto& [policy, n] : policy_names) {
    if (n == name) return policy;
  }
  return std::nullopt;
}

std::optional<pr::data_model> data_model_from_name(std::string_view name) noexcept {
  for (const auto m :
       {pr::data_model::single_value, pr::data_model::array, pr::data_model::dictionary}) {
    if (pr::data_model_name(m) == name) return m;
  }
  return std::nullopt;
}

std::string kind_display_name(std::uint32_t id) {
  const auto k = registered_kind_by_id(id);
  if (!k) return std::to_string(id);
  std::string name = lowercase(k->name);
  std::replace(name.begin(), name.end(), '_', '-');
  constexpr std::string_view ours = "p2psip-";
  if (name.rfind(ours, 0) == 0) name.erase(0, ours.size());
  return name;
}

std::optional<registered_kind> registered_kind_by_id(std::uint32_t id) noexcept {
  for (const auto& k : registry) {
    if (k.id == id) return k;
  }
  return std::nullopt;
}

std::optional<registered_kind> registered_kind_by_name(std::string_view name) noexcept {
  for (const auto& k : registry) {
    if (k.iana && k.name == name) return k;
  }
  return std::nullopt;
}

std::vector<std::string> overlay_config::link_protocols() const {
  if (!overlay_link_protocols.empty()) return overlay_link_protocols;
  return {std::string(tls_link_protocol)};
}

pr::limits limits_of(const overlay_config& config, pr::limits base) {
  base.node_id_length = config.node_id_length;
  base.max_message_size = config.max_message_size;
  base.initial_ttl = config.initial_ttl;
  return base;
}

kind_table make_kind_table(const overlay_config& config) {
  kind_table table;
  for (const auto& k : config.kinds) table.emplace(k.id, k);
  return table;
}

const kind_definition* find_kind(const overlay_config& config, std::uint32_t id) noexcept {
  for (const auto& k : config.kinds) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

pr::kind_model_lookup kind_model_lookup_of(const overlay_config& config) {
  // Only the models, sorted by kind: a table of whole kind definitions cost about 1.5 KiB per
  // lookup, and a client holds several.
  using entry = std::pair<std::uint32_t, pr::data_model>;
  std::vector<entry> models;
  models.reserve(config.kinds.size());
  for (const auto& k : config.kinds) models.emplace_back(k.id, k.model);
  // The first definition of a kind counts, as in make_kind_table (emplace keeps the first).
  std::stable_sort(models.begin(), models.end(),
                   [](const entry& a, const entry& b) { return a.first < b.first; });
  auto table = std::make_shared<const std::vector<entry>>(std::move(models));
  return [table](std::uint32_t kind) -> std::optional<pr::data_model> {
    const auto it = std::lower_bound(table->begin(), table->end(), kind,
                                     [](const entry& e, std::uint32_t k) { return e.first < k; });
    if (it == table->end() || it->first != kind) return std::nullopt;
    return it->second;
  };
}

kind_definition generic_kind(std::uint32_t max_count, std::uint32_t max_size) {
  kind_definition k;
  k.id = pr::kinds::p2psip_generic;
  k.model = pr::data_model::dictionary;
  k.policy = access_policy::p2psip_generic;
  k.max_count = max_count;
  k.max_size = max_size;
  return k;
}

std::vector<kind_definition> standard_kinds() {
  std::vector<kind_definition> out;
  // One SIP-REGISTRATION entry per device of a user; a route value is a short destination list.
  kind_definition sip;
  sip.id = pr::kinds::sip_registration;
  sip.model = pr::data_model::dictionary;
  sip.policy = access_policy::user_node_match;
  sip.max_count = 16;
  sip.max_size = 1024;
  out.push_back(sip);
  // Certificates are appended on renewal; an ECDSA or Ed25519 certificate is well under 2 KiB.
  kind_definition by_node;
  by_node.id = pr::kinds::certificate_by_node;
  by_node.model = pr::data_model::array;
  by_node.policy = access_policy::node_match;
  by_node.max_count = 4;
  by_node.max_size = 2048;
  out.push_back(by_node);
  kind_definition by_user = by_node;
  by_user.id = pr::kinds::certificate_by_user;
  by_user.policy = access_policy::user_match;
  out.push_back(by_user);
  out.push_back(generic_kind());
  // SIP gateways: one entry per gateway peer, a route of one or two Node-IDs.
  kind_definition gateways = sip;
  gateways.id = pr::kinds::p2psip_sip_gateway;
  out.push_back(gateways);
  return out;
}

bool aor_domain_allowed(const overlay_config& config, std::string_view aor) {
  if (!config.sip_domain_restriction) return true;
  const std::size_t at = aor.rfind('@');
  const std::string domain = lowercase(at == std::string_view::npos ? aor : aor.substr(at + 1));
  if (domain.empty()) return false;
  if (!config.sip_domain_restriction->enable) return domain == lowercase(config.instance_name);
  return std::any_of(config.sip_domain_restriction->patterns.begin(),
                     config.sip_domain_restriction->patterns.end(),
                     [&](const std::string& p) { return ere_full_match(p, domain); });
}

result<void> check_overlay_config(const overlay_config& config, const expectation& expected) {
  if (config.instance_name != expected.overlay_name) {
    return pr::error_record{make_error_code(config_errc::wrong_overlay),
                            "configuration: instance-name is '" + config.instance_name +
                                "', expected '" + expected.overlay_name + "'"};
  }
  if (!expected.root_certs.empty()) {
    if (config.root_certs.empty()) {
      return pr::error_record{make_error_code(config_errc::untrusted_root),
                              "configuration/root-cert: none listed, expected the overlay's root"};
    }
    for (std::size_t i = 0; i < config.root_certs.size(); ++i) {
      const auto& der = config.root_certs[i];
      if (std::find(expected.root_certs.begin(), expected.root_certs.end(), der) ==
          expected.root_certs.end()) {
        return pr::error_record{make_error_code(config_errc::untrusted_root),
                                detail::indexed("configuration/root-cert", i) +
                                    ": not a trusted root certificate (SHA-256 " +
                                    detail::sha256_hex(der) + ")"};
      }
    }
  }
  if (expected.now && config.expiration && *config.expiration <= *expected.now) {
    return pr::error_record{make_error_code(config_errc::expired),
                            "configuration: expired at " + format_date_time(*config.expiration)};
  }
  return {};
}

std::string format_date_time(std::chrono::sys_seconds t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  std::string year = std::to_string(static_cast<int>(ymd.year()));
  // Zero-padded to four digits (std::string::insert here trips GCC 12's -Wrestrict at -O3).
  if (year.size() < 4) year = std::string(4 - year.size(), '0') + year;
  return year + "-" + two_digits(static_cast<unsigned>(ymd.month())) + "-" +
         two_digits(static_cast<unsigned>(ymd.day())) + "T" +
         two_digits(static_cast<unsigned>(hms.hours().count())) + ":" +
         two_digits(static_cast<unsigned>(hms.minutes().count())) + ":" +
         two_digits(static_cast<unsigned>(hms.seconds().count())) + "Z";
}

std::optional<std::chrono::sys_seconds> parse_date_time(std::string_view s) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS, then optional .fraction, then Z or +00:00 / -00:00.
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
      s[13] != ':' || s[16] != ':') {
    return std::nullopt;
  }
  const auto y = fixed_digits(s.substr(0, 4));
  const auto mo = fixed_digits(s.substr(5, 2));
  const auto d = fixed_digits(s.substr(8, 2));
  const auto h = fixed_digits(s.substr(11, 2));
  const auto mi = fixed_digits(s.substr(14, 2));
  const auto se = fixed_digits(s.substr(17, 2));
  if (!y || !mo || !d || !h || !mi || !se) return std::nullopt;
  std::string_view rest = s.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    std::size_t n = 1;
    while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') ++n;
    if (n == 1) return std::nullopt;
    rest.remove_prefix(n);
  }
  if (rest != "Z" && rest != "z" && rest != "+00:00" && rest != "-00:00") return std::nullopt;
  const year_month_day ymd{year{static_cast<int>(*y)}, month{*mo}, day{*d}};
  // A leap second (60) is not representable in sys_seconds; xsd:dateTime does not allow it.
  if (!ymd.ok() || *h > 23 || *mi > 59 || *se > 59) return std::nullopt;
  return sys_days{ymd} + hours{*h} + minutes{*mi} + seconds{*se};
}

}  // namespace p2psip::config
