// p2psip-admin: the overlay operator's tool. Creates the overlay CA and the configuration
// document, enrolls users (keys and certificates signed by the CA), keeps the registrar's SIP
// users file, edits bootstrap nodes and shows certificates and configurations. Every
// configuration document it writes is signed (RFC 6940 11.1) by the CA directory's configuration
// signer, a certificate the CA issues.
//
// Exit status (p2psip/tool/exit_codes.hpp, the table every tool shares): 0 success, 1 failure
// (I/O, crypto, refusing to overwrite), 2 usage (unknown command or option, missing or malformed
// argument), 6 a configuration document or CA file that cannot be loaded. Every error is one
// line on stderr: "p2psip-admin <command>: <message>".

#include <unistd.h>
#include <cxxopts.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "files.hpp"
#include "issuance.hpp"
#include "p2psip/config/config_document.hpp"
#include "p2psip/config/config_signature.hpp"
#include "p2psip/config/overlay_config.hpp"
#include "p2psip/peer/sip_users.hpp"
#include "p2psip/protocol/address.hpp"
#include "p2psip/sip/digest.hpp"
#include "p2psip/sip/uri.hpp"
#include "p2psip/tool/exit_codes.hpp"
#include "p2psip/tool/log.hpp"
#include "p2psip/tool/options.hpp"
#include "p2psip/tool/version.hpp"
#include "ring.hpp"

namespace {

namespace fs = std::filesystem;
namespace pr = p2psip::protocol;
namespace cfg = p2psip::config;
namespace adm = p2psip::admin;
namespace tool = p2psip::tool;

constexpr int exit_ok = tool::status(tool::exit_code::ok);
constexpr int exit_failure = tool::status(tool::exit_code::failure);
constexpr int exit_usage = tool::status(tool::exit_code::usage);
constexpr int exit_config = tool::status(tool::exit_code::configuration);

// File names inside the CA directory and a node's directory.
constexpr std::string_view ca_key_file = "ca.key";
constexpr std::string_view ca_cert_file = "ca.crt";
constexpr std::string_view config_file = "overlay.xml";
constexpr std::string_view enrollments_file = "enrollments.txt";
// The certificate (issued by the CA) and key that sign overlay.xml: RFC 6940 11.1 names
// configuration signers by Node-ID, so the CA certifies a signing key rather than signing itself.
constexpr std::string_view signer_cert_file = "config-signer.crt";
constexpr std::string_view signer_key_file = "config-signer.key";

// What init writes into the document besides the CA, bootstrap nodes and kinds.
constexpr std::uint32_t init_max_message_size = 32768;
constexpr unsigned max_nodes_per_certificate = 16;

constexpr std::string_view usage_text =
    "usage: p2psip-admin <command> [options]\n"
    "\n"
    "commands:\n"
    "  init --overlay NAME --out DIR [--bootstrap HOST:PORT ...] [--days N] [--force]\n"
    "      create the overlay CA (DIR/ca.key, DIR/ca.crt) and the configuration DIR/overlay.xml\n"
    "  enroll --user USER@DOMAIN --out DIR [--nodes N] [--ca-dir DIR] [--name NAME] [--days N]\n"
    "         [--force]\n"
    "      issue a node's keys and certificates: DIR/NAME.crt and DIR/NAME.key (mode 0600)\n"
    "  add-bootstrap HOST:PORT [--config FILE] [--ca-dir DIR] [--force]\n"
    "      add a bootstrap-node to the configuration (default ./overlay.xml) and sign it again\n"
    "  sign [--config FILE] [--ca-dir DIR] [--force]\n"
    "      sign a configuration document (after editing it by hand) with the overlay CA\n"
    "  show FILE\n"
    "      describe a certificate file or a configuration document\n"
    "  sip-user add AOR --users FILE --ca-dir DIR [--password-file F] [--out DIR] [--days N]\n"
    "               [--force]\n"
    "      enroll a SIP user's credentials (OUT/USER@HOST.crt, .key) and record the user with\n"
    "      digest HA1 values (MD5, SHA-256) in FILE (mode 0600); the password is read from F or\n"
    "      standard input, never from the command line; --batch FILE instead of AOR adds\n"
    "      every 'AOR PASSWORD' line of FILE in one run\n"
    "  sip-user list --users FILE [--json]\n"
    "      list the users of a SIP users file\n"
    "  sip-user remove AOR --users FILE\n"
    "      remove a user from a SIP users file (the credential files are kept)\n"
    "  ring --config FILE --cert FILE --key FILE --peer IP:PORT [--json] [--max-steps N]\n"
    "      walk the ring from a peer (as a client: Probe and Attach) and list every peer's\n"
    "      Node-ID, address, uptime and resources stored\n"
    "\n"
    "'p2psip-admin <command> --help' lists a command's options; --version prints the version.\n";

const std::string admin_exit_codes = tool::exit_codes_help(
    {{tool::exit_code::ok, ""},
     {tool::exit_code::failure, "I/O, crypto, refusing to overwrite"},
     {tool::exit_code::usage, ""},
     {tool::exit_code::configuration, "the configuration document or the CA directory's files"}});

int report(std::string_view command, std::string_view message, int code) {
  std::string program = "p2psip-admin";
  if (!command.empty()) program += " " + std::string(command);
  tool::error_line(program, message);
  return code;
}

// An error of the admin library: 6 when the configuration or the CA's files could not be loaded.
int report(std::string_view command, const adm::admin_error& e) {
  return report(command, e.message, e.configuration ? exit_config : exit_failure);
}

struct usage_failure {
  std::string message;
};

// Parses a command's options; a usage_failure for anything cxxopts refuses or that is left over.
std::variant<cxxopts::ParseResult, usage_failure> parse(cxxopts::Options& options, int argc,
                                                        char** argv) {
  try {
    auto r = options.parse(argc, argv);
    if (!r.unmatched().empty())
      return usage_failure{"unexpected argument '" + r.unmatched().front() + "'"};
    return r;
  } catch (const cxxopts::exceptions::exception& e) {
    return usage_failure{tool::usage_message(e, argc, argv)};
  }
}

// A command's options, or the exit code once it is done: a usage failure reported (exit 2), or
// --help printed (exit 0).
std::variant<cxxopts::ParseResult, int> parse_command(std::string_view name,
                                                      cxxopts::Options& options, int argc,
                                                      char** argv) {
  auto parsed = parse(options, argc, argv);
  if (auto* u = std::get_if<usage_failure>(&parsed)) return report(name, u->message, exit_usage);
  auto& r = std::get<cxxopts::ParseResult>(parsed);
  if (r.count("help")) {
    std::cout << options.help() << admin_exit_codes;
    return exit_ok;
  }
  return std::move(r);
}

// HOST:PORT, [IPv6]:PORT, or an address without a port (6084). IP literals only: the document's
// bootstrap-node holds an address (RFC 6940 11.1).
std::optional<pr::ip_address_port> parse_host_port(std::string_view s) {
  std::optional<pr::ip_address_port> a = pr::ip_address_port::parse(s);
  const std::string port = ":" + std::to_string(cfg::default_bootstrap_port);
  if (!a && !s.empty()) {
    const std::size_t colons = static_cast<std::size_t>(std::count(s.begin(), s.end(), ':'));
    if (s.front() == '[' && s.back() == ']') {
      a = pr::ip_address_port::parse(std::string(s) + port);
    } else if (colons == 0) {
      a = pr::ip_address_port::parse(std::string(s) + port);
    } else if (colons > 1 && s.front() != '[') {
      a = pr::ip_address_port::parse("[" + std::string(s) + "]" + port);
    }
  }
  if (a && a->port() == 0) return std::nullopt;
  return a;
}

// ---- the configuration signer ----

// DIR/ca.crt and DIR/ca.key.
adm::result<adm::pem_pair> load_ca(const fs::path& ca_dir) {
  auto cert = adm::read_file(ca_dir / ca_cert_file);
  if (!cert) return adm::admin_error{cert.error().message, true};
  auto key = adm::read_file(ca_dir / ca_key_file);
  if (!key) return adm::admin_error{key.error().message, true};
  return adm::pem_pair{std::move(*cert), std::move(*key)};
}

// "DIR/ca.crt is not a root-cert of FILE" unless the CA certificate is one of the document's.
adm::result<void> check_ca_is_root(const fs::path& ca_dir, const adm::pem_pair& ca,
                                   const cfg::overlay_config& config, const fs::path& file) {
  auto der = adm::certificate_der(ca.certificate);
  if (!der) return adm::admin_error{(ca_dir / ca_cert_file).string() + ": " + der.error().message};
  if (std::find(config.root_certs.begin(), config.root_certs.end(), *der) ==
      config.root_certs.end()) {
    return adm::admin_error{(ca_dir / ca_cert_file).string() + " is not a root-cert of " +
                            file.string()};
  }
  return {};
}

struct config_signer {
  cfg::document_signer document;
  pr::node_id id;
};

// The signer of a certificate and key pair (PEM): its one Node-ID of the configuration's overlay.
adm::result<config_signer> signer_of(const adm::pem_pair& pem, const cfg::overlay_config& config,
                                     const fs::path& cert_path) {
  auto der = adm::certificate_der(pem.certificate);
  if (!der) return adm::admin_error{cert_path.string() + ": " + der.error().message};
  auto ids = adm::certificate_node_ids(pem.certificate, config.instance_name);
  if (!ids) return adm::admin_error{cert_path.string() + ": " + ids.error().message};
  if (ids->size() != 1 || ids->front().size() != config.node_id_length) {
    return adm::admin_error{cert_path.string() + ": expected one Node-ID of " +
                            std::to_string(config.node_id_length) + " bytes for overlay " +
                            config.instance_name};
  }
  return config_signer{cfg::document_signer{std::move(*der), pem.private_key, {}}, ids->front()};
}

// Node-IDs the CA has handed out to users (DIR/enrollments.txt), which a signer must not reuse.
std::vector<pr::node_id> enrolled_node_ids(const fs::path& ca_dir);

// Issues a configuration signer for `config` with a fresh Node-ID.
adm::result<adm::pem_pair> issue_signer(const adm::pem_pair& ca, const cfg::overlay_config& config,
                                        std::chrono::hours validity,
                                        const std::vector<pr::node_id>& taken) {
  const auto id = adm::random_node_ids(1, config.node_id_length, taken).front();
  return adm::issue_configuration_signer(ca, config.instance_name, id, validity);
}

// The CA directory's signer; one is issued and saved (config-signer.key mode 0600) when the
// directory has none (CA directories made before documents were signed).
adm::result<config_signer> load_or_create_signer(const fs::path& ca_dir, const adm::pem_pair& ca,
                                                 const cfg::overlay_config& config) {
  const fs::path cert_path = ca_dir / signer_cert_file;
  const fs::path key_path = ca_dir / signer_key_file;
  std::error_code ec;
  if (fs::exists(cert_path, ec) || fs::exists(key_path, ec)) {
    auto cert = adm::read_file(cert_path);
    if (!cert) return cert.error();
    auto key = adm::read_file(key_path);
    if (!key) return key.error();
    return signer_of({std::move(*cert), std::move(*key)}, config, cert_path);
  }
  // As long as the CA: issue_configuration_signer clamps to the CA's notAfter.
  auto pem = issue_signer(ca, config, std::chrono::hours(24) * 36500, enrolled_node_ids(ca_dir));
  if (!pem) return pem.error();
  if (auto ok = adm::write_file(key_path, pem->private_key, adm::key_file_mode, false); !ok) {
    return ok.error();
  }
  if (auto ok = adm::write_file(cert_path, pem->certificate, adm::public_file_mode, false); !ok) {
    return ok.error();
  }
  return signer_of(*pem, config, cert_path);
}

// Lists the signer's Node-ID as configuration-signer and kind-signer (once).
void list_signer(cfg::overlay_config& config, const pr::node_id& id) {
  const pr::bytes raw(id.view().begin(), id.view().end());
  for (auto* list : {&config.configuration_signers, &config.kind_signers}) {
    if (std::find(list->begin(), list->end(), raw) == list->end()) list->push_back(raw);
  }
}

// The document for `config`, every kind-block and the configuration signed by `signer`.
adm::result<std::string> signed_document(cfg::overlay_config config, const config_signer& signer) {
  list_signer(config, signer.id);
  if (auto ok = cfg::validate_overlay_config(config); !ok)
    return adm::admin_error{ok.error().message};
  auto xml = cfg::write_signed_document(std::move(config), signer.document,
                                        std::chrono::system_clock::now());
  if (!xml) return adm::admin_error{"signing: " + xml.error().message};
  return std::move(*xml);
}

// ---- init ----

int cmd_init(int argc, char** argv) {
  const std::string_view name = "init";
  cxxopts::Options options("p2psip-admin init",
                           "Create an overlay CA and its configuration document.");
  // clang-format off
  options.add_options()
      ("overlay", "overlay name (instance-name, host part of reload:// URIs)", cxxopts::value<std::string>())
      ("out", "directory for ca.key, ca.crt and overlay.xml", cxxopts::value<std::string>())
      ("bootstrap", "bootstrap peer HOST:PORT (repeatable; IP literals)", cxxopts::value<std::vector<std::string>>())
      ("days", "validity of the CA certificate in days", cxxopts::value<int>()->default_value("3650"))
      ("force", "overwrite existing files")
      ("h,help", "show this help");
  // clang-format on
  auto parsed = parse_command(name, options, argc, argv);
  if (const int* done = std::get_if<int>(&parsed)) return *done;
  const auto& r = std::get<cxxopts::ParseResult>(parsed);
  if (!r.count("overlay")) return report(name, "--overlay is required", exit_usage);
  if (!r.count("out")) return report(name, "--out is required", exit_usage);
  const std::string overlay = r["overlay"].as<std::string>();
  if (!adm::valid_overlay_name(overlay)) {
    return report(name, "--overlay '" + overlay + "' is not a valid host name", exit_usage);
  }
  const int days = r["days"].as<int>();
  if (days < 1 || days > 36500) return report(name, "--days must be 1..36500", exit_usage);
  std::vector<pr::ip_address_port> bootstrap;
  if (r.count("bootstrap")) {
    for (const auto& b : r["bootstrap"].as<std::vector<std::string>>()) {
      const auto a = parse_host_port(b);
      if (!a)
        return report(name, "--bootstrap '" + b + "' is not IPv4:PORT or [IPv6]:PORT", exit_usage);
      if (std::find(bootstrap.begin(), bootstrap.end(), *a) == bootstrap.end())
        bootstrap.push_back(*a);
    }
  }
  const bool force = r.count("force") != 0;
  const fs::path dir = r["out"].as<std::string>();
  const fs::path key_path = dir / ca_key_file;
  const fs::path cert_path = dir / ca_cert_file;
  const fs::path config_path = dir / config_file;
  const fs::path signer_key_path = dir / signer_key_file;
  const fs::path signer_cert_path = dir / signer_cert_file;

  if (auto ok = adm::refuse_existing(
          {key_path, cert_path, config_path, signer_key_path, signer_cert_path}, force);
      !ok) {
    return report(name, ok.error().message, exit_failure);
  }
  if (auto ok = adm::make_directory(dir, 0700); !ok)
    return report(name, ok.error().message, exit_failure);

  auto ca = adm::create_overlay_ca(overlay, std::chrono::hours(24) * days);
  if (!ca) return report(name, ca.error().message, exit_failure);
  auto der = adm::certificate_der(ca->certificate);
  if (!der) return report(name, der.error().message, exit_failure);

  cfg::overlay_config config;
  config.instance_name = overlay;
  config.sequence = 1;
  config.root_certs.push_back(*der);
  config.bootstrap_nodes = bootstrap;
  config.max_message_size = init_max_message_size;
  // p2psip's links use host candidates only (docs/conformance.md): the No-ICE link protocols.
  config.no_ice = true;
  config.overlay_link_protocols = {std::string(cfg::tls_link_protocol)};
  config.kinds = cfg::standard_kinds();
  if (auto ok = cfg::validate_overlay_config(config); !ok) {
    return report(name, ok.error().message, exit_failure);
  }
  // RFC 6940 11.1: the document is signed by a configuration-signer certified by the CA.
  auto signer_pem =
      issue_signer(*ca, config, std::chrono::hours(24) * days, enrolled_node_ids(dir));
  if (!signer_pem) return report(name, signer_pem.error().message, exit_failure);
  auto signer = signer_of(*signer_pem, config, signer_cert_path);
  if (!signer) return report(name, signer.error());
  auto xml = signed_document(config, *signer);
  if (!xml) return report(name, xml.error().message, exit_failure);

  if (auto ok = adm::write_file(key_path, ca->private_key, adm::key_file_mode, force); !ok) {
    return report(name, ok.error().message, exit_failure);
  }
  if (auto ok = adm::write_file(cert_path, ca->certificate, adm::public_file_mode, force); !ok) {
    return report(name, ok.error().message, exit_failure);
  }
  if (auto ok =
          adm::write_file(signer_key_path, signer_pem->private_key, adm::key_file_mode, force);
      !ok) {
    return report(name, ok.error().message, exit_failure);
  }
  if (auto ok =
          adm::write_file(signer_cert_path, signer_pem->certificate, adm::public_file_mode, force);
      !ok) {
    return report(name, ok.error().message, exit_failure);
  }
  if (auto ok = adm::write_file(config_path, *xml, adm::public_file_mode, force); !ok) {
    return report(name, ok.error().message, exit_failure);
  }
  std::cout << "created overlay " << overlay << "\n"
            << "  " << key_path.string() << "  overlay CA private key (mode 0600; keep it secret)\n"
            << "  " << cert_path.string() << "  overlay CA certificate, valid " << days << " days\n"
            << "  " << signer_key_path.string()
            << "  configuration signer's private key (mode 0600; keep it secret)\n"
            << "  " << signer_cert_path.string() << "  configuration signer's certificate, node-id "
            << signer->id.hex() << "\n"
            << "  " << config_path.string() << "  configuration, sequence " << config.sequence
            << ", " << bootstrap.size() << " bootstrap node(s), signed\n";
  return exit_ok;
}

// ---- enroll ----

struct enrollment_record {
  std::string user;
  std::vector<pr::node_id> node_ids;
};

// CA-dir/enrollments.txt: "user hex hex ..." per line. RFC 6940 11.3: the enrollment server
// SHOULD give a returning user the same Node-IDs, so that re-issued certificates do not force the
// user to re-store all data.
adm::result<std::vector<enrollment_record>> load_enrollments(const fs::path& file) {
  std::vector<enrollment_record> out;
  std::error_code ec;
  if (!fs::exists(file, ec)) return out;
  auto text = adm::read_file(file, std::size_t{64} << 20);
  if (!text) return text.error();
  std::istringstream in(*text);
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    std::istringstream words(line);
    enrollment_record rec;
    if (!(words >> rec.user) || rec.user.starts_with('#')) continue;
    std::string hex;
    while (words >> hex) {
      const auto id = pr::node_id::from_hex(hex);
      if (!id) {
        return adm::admin_error{file.string() + ":" + std::to_string(number) + ": '" + hex +
                                "' is not a Node-ID"};
      }
      rec.node_ids.push_back(*id);
    }
    out.push_back(std::move(rec));
  }
  return out;
}

std::string format_enrollments(const std::vector<enrollment_record>& records) {
  std::string out = "# p2psip-admin: Node-IDs issued to each user (reused on re-enrollment)\n";
  for (const auto& r : records) {
    out += r.user;
    for (const auto& id : r.node_ids) out += " " + id.hex();
    out += "\n";
  }
  return out;
}

std::vector<pr::node_id> enrolled_node_ids(const fs::path& ca_dir) {
  std::vector<pr::node_id> out;
  // An unreadable registry is reported by enroll; here it only narrows the random choice.
  if (auto records = load_enrollments(ca_dir / enrollments_file)) {
    for (const auto& r : *records) out.insert(out.end(), r.node_ids.begin(), r.node_ids.end());
  }
  return out;
}

// The overlay an enrollment issues for: its configuration and its CA, which must be one of the
// configuration's root-certs.
struct enrollment_ca {
  fs::path dir;
  cfg::overlay_config config;
  adm::pem_pair ca;
};

// Loads CA-DIR/overlay.xml, CA-DIR/ca.crt and CA-DIR/ca.key.
adm::result<enrollment_ca> load_enrollment_ca(const fs::path& ca_dir) {
  auto doc = cfg::load_document(ca_dir / config_file);
  if (!doc) return adm::admin_error{doc.error().message, true};
  auto ca = load_ca(ca_dir);
  if (!ca) return ca.error();
  if (auto ok = check_ca_is_root(ca_dir, *ca, doc->config, ca_dir / config_file); !ok) {
    return ok.error();
  }
  return enrollment_ca{ca_dir, std::move(doc->config), std::move(*ca)};
}

// What to issue: for whom, how many Node-IDs, for how long, and where the two files go.
struct enroll_request {
  std::string user;  // the rfc822Name, checked by adm::valid_user_name
  int nodes = 1;
  int days = 365;
  fs::path cert_path;
  fs::path key_path;
  bool force = false;  // overwrite the credential files
};

struct enrollment {
  std::vector<pr::node_id> ids;
  std::chrono::system_clock::time_point not_after;
};

// Issues a user's link and signing certificates with the overlay CA and writes them (keys mode
// 0600): the work of `enroll`, shared with `sip-user add`. Refuses existing files unless `force`,
// the configuration signer's user name, and users outside the overlay's SIP domains; reuses the
// Node-IDs CA-DIR/enrollments.txt records for the user (RFC 6940 11.3).
adm::result<enrollment> enroll_user(const enrollment_ca& overlay, const enroll_request& request) {
  const cfg::overlay_config& config = overlay.config;
  const std::string& user = request.user;
  if (auto ok = adm::refuse_existing({request.cert_path, request.key_path}, request.force); !ok) {
    return ok.error();
  }
  if (user == std::string(adm::configuration_signer_user) + "@" + config.instance_name) {
    return adm::admin_error{"user '" + user + "' is reserved for the configuration signer"};
  }
  if (!cfg::aor_domain_allowed(config, user)) {
    return adm::admin_error{"user '" + user +
                            "' is outside the domains the overlay's sip:domain-restriction admits"};
  }

  const fs::path registry_path = overlay.dir / enrollments_file;
  auto records = load_enrollments(registry_path);
  if (!records) return records.error();
  std::vector<pr::node_id> taken;
  // A user must never hold a Node-ID the document authorises to sign it.
  for (const auto* list : {&config.configuration_signers, &config.kind_signers}) {
    for (const auto& raw : *list) {
      if (const auto id = pr::node_id::from_bytes(raw)) taken.push_back(*id);
    }
  }
  enrollment_record* mine = nullptr;
  for (auto& rec : *records) {
    if (rec.user == user) mine = &rec;
    taken.insert(taken.end(), rec.node_ids.begin(), rec.node_ids.end());
  }
  const auto nodes = static_cast<std::size_t>(request.nodes);
  std::vector<pr::node_id> ids;
  bool registry_changed = false;
  if (mine != nullptr) {
    for (const auto& id : mine->node_ids) {
      if (ids.size() < nodes && id.size() == config.node_id_length) ids.push_back(id);
    }
  }
  if (ids.size() < nodes) {
    const auto fresh = adm::random_node_ids(nodes - ids.size(), config.node_id_length, taken);
    ids.insert(ids.end(), fresh.begin(), fresh.end());
    if (mine == nullptr) {
      records->push_back({user, {}});
      mine = &records->back();
    }
    mine->node_ids.insert(mine->node_ids.end(), fresh.begin(), fresh.end());
    registry_changed = true;
  }

  adm::node_request node;
  node.overlay = config.instance_name;
  node.user = user;
  node.node_ids = ids;
  node.validity = std::chrono::hours(24) * request.days;
  auto issued = adm::issue_node(overlay.ca, node);
  if (!issued) return issued.error();

  const fs::path out_dir =
      request.cert_path.parent_path().empty() ? fs::path(".") : request.cert_path.parent_path();
  if (auto ok = adm::make_directory(out_dir, 0700); !ok) return ok.error();
  // The registry first: a certificate must never carry Node-IDs the CA could hand out again.
  if (registry_changed) {
    if (auto ok =
            adm::write_file(registry_path, format_enrollments(*records), adm::key_file_mode, true);
        !ok) {
      return ok.error();
    }
  }
  // p2psip::crypto's credential files: certificates link first, then signing; keys in one file.
  const std::string certs = issued->link.certificate + issued->signing.certificate;
  const std::string keys = issued->link.private_key + issued->signing.private_key;
  if (auto ok = adm::write_file(request.key_path, keys, adm::key_file_mode, request.force); !ok) {
    return ok.error();
  }
  if (auto ok = adm::write_file(request.cert_path, certs, adm::public_file_mode, request.force);
      !ok) {
    return ok.error();
  }
  return enrollment{std::move(ids), issued->not_after};
}

void print_enrollment(const enroll_request& request, const enrollment& done,
                      const enrollment_ca& ca) {
  const std::string_view overlay = ca.config.instance_name;
  std::cout << "enrolled " << request.user << " in overlay " << overlay << " until "
            << cfg::format_date_time(std::chrono::floor<std::chrono::seconds>(done.not_after))
            << "\n";
  for (const auto& id : done.ids) std::cout << "  node-id " << id.hex() << "\n";
  std::cout << "  " << request.cert_path.string()
            << "  link (ECDSA P-256) and signing (Ed25519) certificates\n"
            << "  " << request.key_path.string() << "  their private keys (mode 0600)\n";
  // A client's certificate holds one Node-ID (RFC 6940 4.2.1): say how to make it the defaults.
  if (done.ids.size() == 1) {
    const auto absolute = [](const fs::path& p) {
      std::error_code ec;
      const auto a = fs::absolute(p, ec);
      return ec ? p.string() : a.lexically_normal().string();
    };
    std::cout << "  as p2psip-client's defaults: p2psip-client setup --config "
              << absolute(ca.dir / config_file) << " --cert " << absolute(request.cert_path)
              << " --key " << absolute(request.key_path) << "\n";
  }
}

int cmd_enroll(int argc, char** argv) {
  const std::string_view name = "enroll";
  cxxopts::Options options("p2psip-admin enroll",
                           "Issue a node's link and signing certificates with the overlay CA.");
  // clang-format off
  options.add_options()
      ("user", "user name for the rfc822Name (alice@example.org)", cxxopts::value<std::string>())
      ("nodes", "number of Node-IDs in the certificates", cxxopts::value<int>()->default_value("1"))
      ("out", "directory for the credential files", cxxopts::value<std::string>())
      ("ca-dir", "directory of ca.key, ca.crt and overlay.xml", cxxopts::value<std::string>()->default_value("."))
      ("name", "base name of the credential files (NAME.crt, NAME.key)", cxxopts::value<std::string>()->default_value("node"))
      ("days", "validity in days (at most the CA's)", cxxopts::value<int>()->default_value("365"))
      ("force", "overwrite existing files")
      ("h,help", "show this help");
  // clang-format on
  auto parsed = parse_command(name, options, argc, argv);
  if (const int* done = std::get_if<int>(&parsed)) return *done;
  const auto& r = std::get<cxxopts::ParseResult>(parsed);
  if (!r.count("user")) return report(name, "--user is required", exit_usage);
  if (!r.count("out")) return report(name, "--out is required", exit_usage);
  enroll_request request;
  request.user = r["user"].as<std::string>();
  if (!adm::valid_user_name(request.user)) {
    return report(name, "--user '" + request.user + "' is not a user name like alice@example.org",
                  exit_usage);
  }
  request.nodes = r["nodes"].as<int>();
  if (request.nodes < 1 || request.nodes > static_cast<int>(max_nodes_per_certificate)) {
    return report(name, "--nodes must be 1.." + std::to_string(max_nodes_per_certificate),
                  exit_usage);
  }
  request.days = r["days"].as<int>();
  if (request.days < 1 || request.days > 36500) {
    return report(name, "--days must be 1..36500", exit_usage);
  }
  const std::string base = r["name"].as<std::string>();
  if (base.empty() || base.find('/') != std::string::npos || base.starts_with('.')) {
    return report(name, "--name '" + base + "' must be a plain file name", exit_usage);
  }
  request.force = r.count("force") != 0;
  const fs::path out_dir = r["out"].as<std::string>();
  request.cert_path = out_dir / (base + ".crt");
  request.key_path = out_dir / (base + ".key");

  // Existing files are refused before the CA directory is read (enroll_user checks again).
  if (auto ok = adm::refuse_existing({request.cert_path, request.key_path}, request.force); !ok) {
    return report(name, ok.error().message, exit_failure);
  }
  auto overlay = load_enrollment_ca(r["ca-dir"].as<std::string>());
  if (!overlay) return report(name, overlay.error());
  auto done = enroll_user(*overlay, request);
  if (!done) return report(name, done.error().message, exit_failure);
  print_enrollment(request, *done, *overlay);
  return exit_ok;
}

// ---- sip-user ----

// `sip-user add`'s AOR: sip:USER@HOST, nothing else in the URI, USER@HOST a valid user name for
// the certificates (so no %-escapes: the rfc822Name and the digest user name are the text as
// written). The host is lower-cased.
struct sip_aor {
  std::string aor;       // "sip:alice@example.org"
  std::string user;      // "alice@example.org": the RELOAD user name (rfc822Name)
  std::string username;  // "alice": the digest user name
};

std::optional<sip_aor> parse_add_aor(std::string_view text, std::string& why) {
  const auto uri = p2psip::sip::parse_uri(text);
  if (!uri || uri->scheme != "sip" || uri->user.empty()) {
    why = "is not an AOR like sip:alice@example.org";
    return std::nullopt;
  }
  if (uri->password || uri->port || !uri->params.empty() || !uri->headers.empty()) {
    why = "is not an AOR like sip:alice@example.org (no password, port, parameters or headers)";
    return std::nullopt;
  }
  if (uri->user.find('%') != std::string::npos) {
    why = "has %-escapes in its user part; write the user part without them";
    return std::nullopt;
  }
  std::string host = uri->host;
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  sip_aor out{"sip:" + uri->user + "@" + host, uri->user + "@" + host, uri->user};
  if (!adm::valid_user_name(out.user)) {
    why = "does not give a user name like alice@example.org for the certificates";
    return std::nullopt;
  }
  return out;
}

// The password for HA1: the first line of `file` (without its line end), or of standard input
// when that is not a terminal. Never from the command line. Exit code with the error.
struct password_failure {
  std::string message;
  int code;
};

std::variant<std::string, password_failure> read_password(const std::optional<std::string>& file) {
  std::string text;
  std::string source;
  if (file) {
    auto content = adm::read_file(*file, 64 * 1024);
    if (!content) return password_failure{content.error().message, exit_failure};
    text = std::move(*content);
    source = *file;
  } else {
    if (::isatty(STDIN_FILENO) != 0) {
      return password_failure{
          "give the password with --password-file FILE or on standard input (not a terminal)",
          exit_usage};
    }
    std::getline(std::cin, text);
    source = "standard input";
  }
  const std::size_t end = text.find('\n');
  std::string line = text.substr(0, end);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::fill(text.begin(), text.end(), '\0');
  if (line.empty()) return password_failure{"no password on " + source, exit_failure};
  return line;
}

// The users file, or no users when it does not exist yet.
adm::result<std::vector<p2psip::peer::sip_user>> load_users_or_none(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return std::vector<p2psip::peer::sip_user>{};
  auto users = p2psip::peer::load_sip_users(path);
  if (!users) return adm::admin_error{users.error().message};
  return std::move(*users);
}

// A plain file name for a user's credentials: "alice@example.org" (characters a file name should
// not hold become '_').
std::string credential_base_name(std::string_view user) {
  std::string out(user);
  for (char& c : out) {
    const bool plain = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' ||
                       c == '_' || c == '+' || c == '@';
    if (!plain) c = '_';
  }
  return out;
}

// A user `sip-user add` records: the AOR and the password its HA1 values are made from.
struct user_to_add {
  sip_aor aor;
  std::string password;
};

// `sip-user add --batch FILE`: one user per line, "AOR PASSWORD" (the password is the rest of the
// line after the blanks that follow the AOR; it may hold blanks itself). Empty lines and lines
// starting with '#' are skipped. Errors name the line.
std::variant<std::vector<user_to_add>, password_failure> read_batch(const std::string& file) {
  auto content = adm::read_file(file, p2psip::peer::max_sip_users_file);
  if (!content) return password_failure{content.error().message, exit_failure};
  std::vector<user_to_add> out;
  std::istringstream in(*content);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    const auto blank = line.find_first_of(" \t", first);
    const auto pw = blank == std::string::npos ? blank : line.find_first_not_of(" \t", blank);
    const std::string where = file + ":" + std::to_string(number) + ": ";
    if (pw == std::string::npos) {
      return password_failure{where + "expected 'AOR PASSWORD'", exit_failure};
    }
    std::string why;
    const std::string aor_text = line.substr(first, blank - first);
    auto aor = parse_add_aor(aor_text, why);
    if (!aor) return password_failure{where + "'" + aor_text + "' " + why, exit_failure};
    out.push_back({std::move(*aor), line.substr(pw)});
    std::fill(line.begin(), line.end(), '\0');
  }
  std::fill(content->begin(), content->end(), '\0');
  if (out.empty()) return password_failure{"no users in " + file, exit_failure};
  return out;
}

int cmd_sip_user_add(int argc, char** argv) {
  const std::string_view name = "sip-user add";
  cxxopts::Options options(
      "p2psip-admin sip-user add",
      "Enroll a SIP user's RELOAD credentials and record the user, with digest HA1 values, in the "
      "registrar's users file. The password is read from --password-file or standard input; "
      "--batch adds many users at once, each with its own password.");
  // clang-format off
  options.add_options()
      ("aor", "the user's address-of-record (sip:alice@example.org)", cxxopts::value<std::string>())
      ("users", "the SIP users file (created if missing)", cxxopts::value<std::string>())
      ("ca-dir", "directory of ca.key, ca.crt and overlay.xml", cxxopts::value<std::string>())
      ("password-file", "file whose first line is the password (default: standard input)", cxxopts::value<std::string>())
      ("batch", "instead of AOR: a file of lines 'AOR PASSWORD' (mode 0600 advised), every user added in one run and the users file written once", cxxopts::value<std::string>())
      ("out", "directory for the credential files USER@HOST.crt and .key (default: the users file's)", cxxopts::value<std::string>())
      ("days", "validity of the certificates in days (at most the CA's)", cxxopts::value<int>()->default_value("365"))
      ("devices", "peers the user may be registered through at once: one Node-ID each, the dictionary keys of its SIP-REGISTRATION (RFC 7904 section 7)", cxxopts::value<int>()->default_value("4"))
      ("force", "replace the user if listed, and overwrite the credential files")
      ("h,help", "show this help");
  // clang-format on
  options.parse_positional({"aor"});
  options.positional_help("AOR");
  auto parsed = parse_command(name, options, argc, argv);
  if (const int* done = std::get_if<int>(&parsed)) return *done;
  const auto& r = std::get<cxxopts::ParseResult>(parsed);
  const bool batch = r.count("batch") != 0;
  if (batch && (r.count("aor") || r.count("password-file"))) {
    return report(name, "--batch replaces AOR and --password-file", exit_usage);
  }
  if (!batch && !r.count("aor"))
    return report(name, "AOR (or --batch FILE) is required", exit_usage);
  if (!r.count("users")) return report(name, "--users is required", exit_usage);
  if (!r.count("ca-dir")) return report(name, "--ca-dir is required", exit_usage);
  std::vector<user_to_add> to_add;
  if (!batch) {
    const std::string aor_text = r["aor"].as<std::string>();
    std::string why;
    auto aor = parse_add_aor(aor_text, why);
    if (!aor) return report(name, "'" + aor_text + "' " + why, exit_usage);
    to_add.push_back({std::move(*aor), {}});
  }
  const int days = r["days"].as<int>();
  if (days < 1 || days > 36500) return report(name, "--days must be 1..36500", exit_usage);
  const int devices = r["devices"].as<int>();
  if (devices < 1 || devices > static_cast<int>(max_nodes_per_certificate)) {
    return report(name, "--devices must be 1.." + std::to_string(max_nodes_per_certificate),
                  exit_usage);
  }
  const bool force = r.count("force") != 0;
  const fs::path users_path = r["users"].as<std::string>();
  const fs::path out_dir =
      r.count("out")
          ? fs::path(r["out"].as<std::string>())
          : (users_path.parent_path().empty() ? fs::path(".") : users_path.parent_path());

  if (batch) {
    auto read = read_batch(r["batch"].as<std::string>());
    if (auto* f = std::get_if<password_failure>(&read)) return report(name, f->message, f->code);
    to_add = std::move(std::get<std::vector<user_to_add>>(read));
  } else {
    auto password =
        read_password(r.count("password-file") ? std::optional(r["password-file"].as<std::string>())
                                               : std::nullopt);
    if (auto* f = std::get_if<password_failure>(&password)) {
      return report(name, f->message, f->code);
    }
    to_add.front().password = std::move(std::get<std::string>(password));
  }
  struct scrub {
    std::vector<user_to_add>& users;
    ~scrub() {
      for (auto& u : users) std::fill(u.password.begin(), u.password.end(), '\0');
    }
  } scrub_passwords{to_add};

  // Everything that can refuse is checked before credentials are issued.
  auto users = load_users_or_none(users_path);
  if (!users) return report(name, users.error().message, exit_failure);
  auto overlay = load_enrollment_ca(r["ca-dir"].as<std::string>());
  if (!overlay) return report(name, overlay.error());
  const std::string& realm = overlay->config.instance_name;
  // The users file's directory exists before credentials are issued.
  if (!users_path.parent_path().empty()) {
    if (auto ok = adm::make_directory(users_path.parent_path(), 0700); !ok) {
      return report(name, ok.error().message, exit_failure);
    }
  }

  // Each user in turn against the users recorded so far (the file's and this run's); the file is
  // written once at the end, also after a failure, with the users whose credentials were issued.
  int code = exit_ok;
  std::size_t added = 0;
  for (const auto& [aor, secret] : to_add) {
    const p2psip::peer::sip_user_directory directory(*users);
    const auto* listed = directory.find_aor(aor.aor);
    if (listed != nullptr && !force) {
      code = report(
          name, aor.aor + " is already in " + users_path.string() + " (use --force to replace it)",
          exit_failure);
      break;
    }
    if (const auto* same = directory.find(aor.username, realm); same != nullptr && same != listed) {
      code = report(name,
                    "digest user name '" + aor.username + "' in realm '" + realm + "' is " +
                        same->aor + "'s in " + users_path.string(),
                    exit_failure);
      break;
    }
    enroll_request request;
    request.user = aor.user;
    request.nodes = devices;
    request.days = days;
    const std::string base = credential_base_name(aor.user);
    request.cert_path = out_dir / (base + ".crt");
    request.key_path = out_dir / (base + ".key");
    request.force = force;
    const fs::path cert_abs = fs::absolute(request.cert_path).lexically_normal();
    const fs::path key_abs = fs::absolute(request.key_path).lexically_normal();
    // File names of distinct users can meet ("a!b" and "a_b"): --force must not overwrite another
    // user's credentials.
    const p2psip::peer::sip_user* clash = nullptr;
    for (const auto& other : directory.users()) {
      if (&other != listed && (other.certificate == cert_abs || other.private_key == key_abs)) {
        clash = &other;
        break;
      }
    }
    if (clash != nullptr) {
      code = report(
          name, cert_abs.string() + " holds " + clash->aor + "'s credentials; use another --out",
          exit_failure);
      break;
    }
    auto done = enroll_user(*overlay, request);
    if (!done) {
      code = report(name, done.error().message, exit_failure);
      break;
    }

    namespace sip = p2psip::sip;
    p2psip::peer::sip_user user;
    user.aor = aor.aor;
    user.username = aor.username;
    user.realm = realm;
    user.ha1_md5 = sip::digest_ha1(sip::digest_algorithm::md5, user.username, realm, secret);
    user.ha1_sha256 = sip::digest_ha1(sip::digest_algorithm::sha256, user.username, realm, secret);
    user.certificate = cert_abs;
    user.private_key = key_abs;
    const bool replaced = listed != nullptr;
    if (replaced) {
      (*users)[static_cast<std::size_t>(listed - directory.users().data())] = std::move(user);
    } else {
      users->push_back(std::move(user));
    }
    ++added;
    print_enrollment(request, *done, *overlay);
    std::cout << (replaced ? "replaced " : "added ") << aor.aor << " in " << users_path.string()
              << " (digest user " << aor.username << ", realm " << realm << ", MD5 and SHA-256)\n";
  }
  if (added > 0) {
    if (auto ok = p2psip::peer::save_sip_users(users_path, *users); !ok) {
      return report(name, ok.error().message, exit_failure);
    }
  }
  return code;
}

int cmd_sip_user_list(int argc, char** argv) {
  const std::string_view name = "sip-user list";
  cxxopts::Options options("p2psip-admin sip-user list",
                           "List the users of a SIP users file (never their HA1 values).");
  // clang-format off
  options.add_options()
      ("users", "the SIP users file", cxxopts::value<std::string>())
      ("json", "print a JSON array of {aor, username, realm, certificate, private_key}")
      ("h,help", "show this help");
  // clang-format on
  auto parsed = parse_command(name, options, argc, argv);
  if (const int* done = std::get_if<int>(&parsed)) return *done;
  const auto& r = std::get<cxxopts::ParseResult>(parsed);
  if (!r.count("users")) return report(name, "--users is required", exit_usage);
  const fs::path users_path = r["users"].as<std::string>();
  auto users = p2psip::peer::load_sip_users(users_path);
  if (!users) return report(name, users.error().message, exit_failure);
  if (r.count("json")) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& u : *users) {
      list.push_back({{"aor", u.aor},
                      {"username", u.username},
                      {"realm", u.realm},
                      {"certificate", u.certificate.string()},
                      {"private_key", u.private_key.string()}});
    }
    std::cout << list.dump(2) << "\n";
    return exit_ok;
  }
  for (const auto& u : *users) {
    std::cout << u.aor << "  user " << u.username << "  realm " << u.realm << "  certificate "
              << u.certificate.string() << "\n";
  }
  return exit_ok;
}

int cmd_sip_user_remove(int argc, char** argv) {
  const std::string_view name = "sip-user remove";
  cxxopts::Options options("p2psip-admin sip-user remove",
                           "Remove a user from a SIP users file (its credential files are kept).");
  // clang-format off
  options.add_options()
      ("aor", "the user's address-of-record (sip:alice@example.org)", cxxopts::value<std::string>())
      ("users", "the SIP users file", cxxopts::value<std::string>())
      ("h,help", "show this help");
  // clang-format on
  options.parse_positional({"aor"});
  options.positional_help("AOR");
  auto parsed = parse_command(name, options, argc, argv);
  if (const int* done = std::get_if<int>(&parsed)) return *done;
  const auto& r = std::get<cxxopts::ParseResult>(parsed);
  if (!r.count("aor")) return report(name, "AOR is required", exit_usage);
  if (!r.count("users")) return report(name, "--users is required", exit_usage);
  const std::string aor = r["aor"].as<std::string>();
  if (!p2psip::peer::canonical_aor(aor)) {
    return report(name, "'" + aor + "' is not an AOR like sip:alice@example.org", exit_usage);
  }
  const fs::path users_path = r["users"].as<std::string>();
  auto users = p2psip::peer::load_sip_users(users_path);
  if (!users) return report(name, users.error().message, exit_failure);
  const p2psip::peer::sip_user_directory directory(*users);
  const auto* found = directory.find_aor(aor);
  if (found == nullptr) {
    return report(name, aor + " is not in " + users_path.string(), exit_failure);
  }
  const p2psip::peer::sip_user removed = *found;
  users->erase(users->begin() + (found - directory.users().data()));
  if (auto ok = p2psip::peer::save_sip_users(users_path, *users); !ok) {
    return report(name, ok.error().message, exit_failure);
  }
  std::cout << "removed " << removed.aor << " from " << users_path.string()
            << "; its credential files are kept:\n"
            << "  " << removed.certificate.string() << "\n"
            << "  " << removed.private_key.string() << "\n";
  return exit_ok;
}

constexpr std::string_view sip_user_usage =
    "usage: p2psip-admin sip-user add AOR --users FILE --ca-dir DIR [--password-file F]\n"
    "                                 [--out DIR] [--days N] [--devices N] [--force]\n"
    "       p2psip-admin sip-user add --batch FILE --users FILE --ca-dir DIR [--out DIR] ...\n"
    "       p2psip-admin sip-user list --users FILE [--json]\n"
    "       p2psip-admin sip-user remove AOR --users FILE\n";

int cmd_sip_user(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << sip_user_usage;
    return exit_usage;
  }
  const std::string sub = argv[1];
  if (sub == "-h" || sub == "--help" || sub == "help") {
    std::cout << sip_user_usage;
    return exit_ok;
  }
  if (sub == "add") return cmd_sip_user_add(argc - 1, argv + 1);
  if (sub == "list") return cmd_sip_user_list(argc - 1, argv + 1);
  if (sub == "remove") return cmd_sip_user_remove(argc - 1, argv + 1);
  return report("sip-user", "unknown command '" + sub + "' (add, list or remove)", exit_usage);
}

// ---- add-bootstrap, sign ----

// The document a rewriting command edits, with the CA directory that signs it.
struct editable_document {
  fs::path path;
  cfg::parsed_document doc;
  fs::path ca_dir;
  mode_t mode = adm::public_file_mode;
};

// Loads FILE for a rewrite: one configuration, nothing the writer would drop (unless `force`),
// and the CA directory (default: FILE's directory) holding a root-cert of it.
adm::result<editable_document> load_for_edit(const fs::path& path,
                                             const std::optional<std::string>& ca_dir, bool force,
                                             std::string_view what) {
  auto doc = cfg::load_document(path);
  if (!doc) return adm::admin_error{doc.error().message, true};
  const std::string file = path.string();
  if (doc->instance_names.size() > 1) {
    return adm::admin_error{file + ": holds " + std::to_string(doc->instance_names.size()) +
                            " configurations; " + std::string(what) +
                            " edits single-configuration documents"};
  }
  if (!force && !doc->ignored.empty()) {
    return adm::admin_error{file + ": the rewrite would drop " + doc->ignored.front() +
                            " (use --force to drop foreign elements)"};
  }
  editable_document out;
  out.path = path;
  out.doc = std::move(*doc);
  out.ca_dir = ca_dir ? fs::path(*ca_dir)
                      : (path.parent_path().empty() ? fs::path(".") : path.parent_path());
  std::error_code ec;
  const auto perms = fs::status(path, ec).permissions();
  if (!ec) out.mode = static_cast<mode_t>(static_cast<unsigned>(perms) & 0777u);
  return out;
}

// Signs `config` with the CA directory's configuration signer and writes it over the document.
adm::result<config_signer> sign_and_write(const editable_document& e, cfg::overlay_config config) {
  auto ca = load_ca(e.ca_dir);
  if (!ca) return ca.error();
  if (auto ok = check_ca_is_root(e.ca_dir, *ca, config, e.path); !ok) return ok.error();
  auto signer = load_or_create_signer(e.ca_dir, *ca, config);
  if (!signer) return signer.error();
  auto xml = signed_document(std::move(config), *signer);
  if (!xml) return adm::admin_error{e.path.string() + ": " + xml.error().message};
  if (auto ok = adm::write_file(e.path, *xml, e.mode, true); !ok) return ok.error();
  return signer;
}

int cmd_add_bootstrap(int argc, char** argv) {
  const std::string_view name = "add-bootstrap";
  cxxopts::Options options("p2psip-admin add-bootstrap",
                           "Add a bootstrap-node to a configuration document and sign it again.");
  // clang-format off
  options.add_options()
      ("address", "bootstrap peer HOST:PORT", cxxopts::value<std::string>())
      ("config", "the configuration document", cxxopts::value<std::string>()->default_value(std::string(config_file)))
      ("ca-dir", "directory of ca.key, ca.crt and the configuration signer (default: the document's)", cxxopts::value<std::string>())
      ("force", "drop foreign elements the rewrite cannot keep; edit a document whose signature does not verify")
      ("h,help", "show this help");
  // clang-format on
  options.parse_positional({"address"});
  options.positional_help("HOST:PORT");
  auto parsed = parse_command(name, options, argc, argv);
  if (const int* done = std::get_if<int>(&parsed)) return *done;
  const auto& r = std::get<cxxopts::ParseResult>(parsed);
  if (!r.count("address")) return report(name, "HOST:PORT is required", exit_usage);
  const std::string text = r["address"].as<std::string>();
  const auto address = parse_host_port(text);
  if (!address) return report(name, "'" + text + "' is not IPv4:PORT or [IPv6]:PORT", exit_usage);
  const bool force = r.count("force") != 0;
  const fs::path path = r["config"].as<std::string>();
  const std::optional<std::string> ca_dir =
      r.count("ca-dir") ? std::optional(r["ca-dir"].as<std::string>()) : std::nullopt;

  auto edit = load_for_edit(path, ca_dir, force, name);
  if (!edit) return report(name, edit.error());
  const std::string file = path.string();
  cfg::overlay_config config = edit->doc.config;
  const auto& list = config.bootstrap_nodes;
  if (std::find(list.begin(), list.end(), *address) != list.end()) {
    std::cout << file << ": bootstrap-node " << address->to_string() << " is already listed\n";
    return exit_ok;
  }
  // Signing again must not launder a document someone else changed.
  if (auto ok = cfg::verify_configuration_signature(edit->doc, std::chrono::system_clock::now());
      !ok && !force) {
    return report(name,
                  file + ": " + ok.error().message +
                      " (use --force to edit and sign it anyway, or 'p2psip-admin sign')",
                  exit_failure);
  }
  if (config.sequence >= cfg::max_sequence) {
    return report(
        name,
        file + ": sequence is already " + std::to_string(config.sequence) + ", the largest allowed",
        exit_failure);
  }
  config.bootstrap_nodes.push_back(*address);
  // RFC 6940 11.1: the sequence increases with every change, so nodes take the new document.
  ++config.sequence;
  if (auto ok = cfg::validate_overlay_config(config); !ok) {
    return report(name, file + ": " + ok.error().message, exit_failure);
  }
  const std::uint16_t sequence = config.sequence;
  auto signer = sign_and_write(*edit, std::move(config));
  if (!signer) return report(name, signer.error());
  std::cout << file << ": added bootstrap-node " << address->to_string() << ", sequence "
            << sequence << ", signed by configuration-signer " << signer->id.hex() << "\n";
  return exit_ok;
}

int cmd_sign(int argc, char** argv) {
  const std::string_view name = "sign";
  cxxopts::Options options(
      "p2psip-admin sign",
      "Sign a configuration document with the overlay CA's configuration signer (RFC 6940 11.1).");
  // clang-format off
  options.add_options()
      ("config", "the configuration document", cxxopts::value<std::string>()->default_value(std::string(config_file)))
      ("ca-dir", "directory of ca.key, ca.crt and the configuration signer (default: the document's)", cxxopts::value<std::string>())
      ("force", "drop foreign elements the rewrite cannot keep")
      ("h,help", "show this help");
  // clang-format on
  auto parsed = parse_command(name, options, argc, argv);
  if (const int* done = std::get_if<int>(&parsed)) return *done;
  const auto& r = std::get<cxxopts::ParseResult>(parsed);
  const bool force = r.count("force") != 0;
  const fs::path path = r["config"].as<std::string>();
  const std::optional<std::string> ca_dir =
      r.count("ca-dir") ? std::optional(r["ca-dir"].as<std::string>()) : std::nullopt;
  auto edit = load_for_edit(path, ca_dir, force, name);
  if (!edit) return report(name, edit.error());
  cfg::overlay_config config = edit->doc.config;
  // The document as it stands is what gets signed: no sequence change (an operator who edited it
  // by hand for a running overlay raises the sequence in the edit).
  const std::uint16_t sequence = config.sequence;
  auto signer = sign_and_write(*edit, std::move(config));
  if (!signer) return report(name, signer.error());
  std::cout << path.string() << ": signed by configuration-signer " << signer->id.hex()
            << ", sequence " << sequence << "\n";
  return exit_ok;
}

// ---- show ----

std::string describe_config(const cfg::parsed_document& doc) {
  const cfg::overlay_config& c = doc.config;
  std::ostringstream os;
  os << "overlay:      " << c.instance_name << "\n";
  if (doc.instance_names.size() > 1) {
    os << "document:     " << doc.instance_names.size() << " configurations, showing the first\n";
  }
  os << "sequence:     " << c.sequence << "\n";
  os << "expiration:   " << (c.expiration ? cfg::format_date_time(*c.expiration) : "none") << "\n";
  os << "topology:     " << c.topology_plugin << ", node-id-length " << c.node_id_length << "\n";
  os << "root certs:   " << c.root_certs.size() << "\n";
  for (const auto& der : c.root_certs) os << "  " << adm::certificate_summary(der) << "\n";
  for (const auto& url : c.enrollment_servers) os << "enrollment:   " << url << "\n";
  os << "self-signed:  "
     << (c.self_signed_permitted() ? "permitted (" + c.self_signed->digest + ")" : "not permitted")
     << "\n";
  os << "bootstrap:    " << c.bootstrap_nodes.size() << "\n";
  for (const auto& b : c.bootstrap_nodes) os << "  " << b.to_string() << "\n";
  os << "clients:      " << (c.clients_permitted ? "permitted" : "not permitted") << "\n";
  os << "no-ice:       " << (c.no_ice ? "true" : "false") << "\n";
  std::string links;
  for (const auto& p : c.link_protocols()) links += (links.empty() ? "" : ", ") + p;
  os << "link:         " << links << "\n";
  os << "limits:       max-message-size " << c.max_message_size << ", initial-ttl "
     << static_cast<unsigned>(c.initial_ttl) << ", overlay-reliability-timer "
     << c.overlay_reliability_timer.count() << " ms, turn-density "
     << static_cast<unsigned>(c.turn_density) << "\n";
  os << "chord:        update " << c.chord.update_interval.count() << " s, ping "
     << c.chord.ping_interval.count() << " s, reactive " << (c.chord.reactive ? "true" : "false")
     << "\n";
  if (c.shared_secret) os << "shared-secret: set\n";
  for (const auto& id : c.configuration_signers) os << "config-signer: " << pr::to_hex(id) << "\n";
  for (const auto& id : c.kind_signers) os << "kind-signer:  " << pr::to_hex(id) << "\n";
  for (const auto& id : c.bad_nodes) os << "bad-node:     " << pr::to_hex(id) << "\n";
  for (const auto& ns : c.mandatory_extensions) os << "mandatory-extension: " << ns << "\n";
  if (c.sip_domain_restriction) {
    os << "sip domains:  "
       << (c.sip_domain_restriction->enable ? "patterns" : "the overlay's domain only") << "\n";
    if (c.sip_domain_restriction->enable) {
      for (const auto& p : c.sip_domain_restriction->patterns) os << "  " << p << "\n";
    }
  }
  os << "kinds:        " << c.kinds.size() << "\n";
  for (const auto& k : c.kinds) {
    const auto reg = cfg::registered_kind_by_id(k.id);
    os << "  " << k.id;
    if (reg) os << " " << reg->name;
    os << ": " << pr::data_model_name(k.model) << ", " << cfg::access_policy_name(k.policy)
       << ", max-count " << k.max_count << ", max-size " << k.max_size;
    if (k.max_node_multiple) os << ", max-node-multiple " << *k.max_node_multiple;
    if (k.signature) os << ", signed";
    os << "\n";
  }
  // Verified as a node loading this document verifies it (the document authorising itself).
  const auto verified = cfg::verify_configuration_signature(doc, std::chrono::system_clock::now());
  os << "signatures:   " << c.signatures.size() << ", "
     << (verified ? std::string("verified") : "NOT verified: " + verified.error().message) << "\n";
  for (const auto& w : doc.warnings) os << "warning: " << w << "\n";
  for (const auto& i : doc.ignored) os << "ignored: " << i << "\n";
  return os.str();
}

int cmd_show(int argc, char** argv) {
  const std::string_view name = "show";
  cxxopts::Options options("p2psip-admin show", "Describe a certificate file or a configuration.");
  // clang-format off
  options.add_options()
      ("file", "certificate (PEM or DER) or configuration document", cxxopts::value<std::string>())
      ("h,help", "show this help");
  // clang-format on
  options.parse_positional({"file"});
  options.positional_help("CERT|CONFIG");
  auto parsed = parse_command(name, options, argc, argv);
  if (const int* done = std::get_if<int>(&parsed)) return *done;
  const auto& r = std::get<cxxopts::ParseResult>(parsed);
  if (!r.count("file")) return report(name, "FILE is required", exit_usage);
  const fs::path path = r["file"].as<std::string>();
  auto text = adm::read_file(path);
  if (!text) return report(name, text.error().message, exit_failure);
  // A configuration starts with '<' after whitespace and perhaps a UTF-8 byte order mark.
  const std::size_t bom = text->starts_with("\xEF\xBB\xBF") ? 3 : 0;
  const std::size_t first = text->find_first_not_of(" \t\r\n", bom);
  const bool der = !text->empty() && static_cast<unsigned char>((*text)[0]) == 0x30;
  if (text->find("-----BEGIN CERTIFICATE-----") != std::string::npos || der) {
    auto description = adm::describe_certificates(*text);
    if (!description)
      return report(name, path.string() + ": " + description.error().message, exit_failure);
    std::cout << path.string() << ":\n" << *description;
    return exit_ok;
  }
  if (first != std::string::npos && (*text)[first] == '<') {
    auto doc = cfg::parse_document(*text);
    if (!doc) return report(name, path.string() + ": " + doc.error().message, exit_failure);
    std::cout << path.string() << ":\n" << describe_config(*doc);
    return exit_ok;
  }
  return report(name, path.string() + ": neither a certificate nor a configuration document",
                exit_failure);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << usage_text;
    return exit_usage;
  }
  const std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    std::cout << usage_text << admin_exit_codes;
    return exit_ok;
  }
  if (command == "--version") {
    std::cout << tool::version_text("p2psip-admin");
    return exit_ok;
  }
  const std::map<std::string, int (*)(int, char**), std::less<>> commands{
      {"init", cmd_init},      {"enroll", cmd_enroll}, {"add-bootstrap", cmd_add_bootstrap},
      {"sign", cmd_sign},      {"show", cmd_show},     {"sip-user", cmd_sip_user},
      {"ring", adm::cmd_ring},
  };
  const auto it = commands.find(command);
  if (it == commands.end()) {
    return report("", "unknown command '" + command + "' (try --help)", exit_usage);
  }
  // The start-up boundary: nothing below should throw, but a library might.
  try {
    return it->second(argc - 1, argv + 1);
  } catch (const std::exception& e) {
    return report(command, e.what(), exit_failure);
  }
}
