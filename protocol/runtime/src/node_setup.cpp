#include "p2psip/node/node_setup.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <optional>
#include <system_error>
#include <utility>

#include "p2psip/config/config_document.hpp"
#include "p2psip/config/config_signature.hpp"
#include "p2psip/protocol/ids.hpp"

namespace p2psip::node {

namespace {

namespace fs = std::filesystem;

/// Empty when `file` is a regular file we can open for reading, else why not ("FILE: ...").
std::string unreadable(const fs::path& file) {
  std::error_code ec;
  const auto st = fs::status(file, ec);
  if (ec || !fs::exists(st)) return file.string() + ": no such file";
  if (!fs::is_regular_file(st)) return file.string() + ": not a regular file";
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) {
    return file.string() +
           ": cannot be read: " + std::error_code(errno, std::generic_category()).message();
  }
  std::fclose(f);
  return {};
}

/// The file's bytes (nullopt when it cannot be read).
std::optional<protocol::bytes> read_file(const fs::path& file) {
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (!f) return std::nullopt;
  protocol::bytes out;
  std::uint8_t buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
  std::fclose(f);
  out.shrink_to_fit();  // kept for the process's life: not the doubling's 16 KiB for 8.5
  return out;
}

protocol::error_record refused_configuration(std::string message) {
  return protocol::error_record{make_error_code(setup_errc::configuration), std::move(message)};
}
protocol::error_record refused_credentials(std::string message) {
  return protocol::error_record{make_error_code(setup_errc::credentials), std::move(message)};
}
/// A document taken from a ConfigUpdate that could not be written to its file.
protocol::error_record write_error(std::string message) {
  return protocol::error_record{make_error_code(config::config_errc::write_failed),
                                std::move(message)};
}

class setup_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "p2psip.node_setup"; }
  std::string message(int ev) const override {
    switch (static_cast<setup_errc>(ev)) {
      case setup_errc::ok: return "success";
      case setup_errc::configuration: return "the configuration cannot be used";
      case setup_errc::credentials: return "the credentials cannot be used";
    }
    return "unknown setup error";
  }
};

}  // namespace

const std::error_category& setup_category() noexcept {
  static const setup_category_impl category;
  return category;
}

std::error_code make_error_code(setup_errc e) noexcept {
  return {static_cast<int>(e), setup_category()};
}

transport_config transport_config_of(const config::overlay_config& config,
                                     const crypto::credentials& creds) {
  transport_config t;
  t.self = creds.signing.default_node_id();
  t.overlay = protocol::overlay_hash(config.instance_name);
  t.configuration_sequence = config.sequence;
  t.limits = config::limits_of(config);
  t.kind_models = config::kind_model_lookup_of(config);
  return t;
}

transport_config node_setup::transport() const {
  return transport_config_of(config, creds);
}

protocol::result<overlay_setup, protocol::error_record> load_overlay_setup(
    const fs::path& config_file, const std::string& overlay_name, std::size_t certificate_cache) {
  if (auto why = unreadable(config_file); !why.empty()) {
    return protocol::unexpected(refused_configuration(why));
  }
  // The configuration: parsed, signed (RFC 6940 11.1: verified before it is used), for the
  // expected overlay, not expired, with root(s).
  auto doc = config::load_document(config_file);
  if (!doc) return protocol::unexpected(refused_configuration(doc.error().message));
  if (auto ok = config::verify_configuration_signature(*doc, std::chrono::system_clock::now());
      !ok) {
    return protocol::unexpected(
        refused_configuration(config_file.string() + ": " + ok.error().message));
  }
  config::overlay_config cfg = std::move(doc->config);
  config::expectation expected;
  expected.overlay_name = overlay_name.empty() ? cfg.instance_name : overlay_name;
  expected.now =
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  if (auto checked = config::check_overlay_config(cfg, expected); !checked) {
    return protocol::unexpected(
        refused_configuration(config_file.string() + ": " + checked.error().message));
  }
  if (cfg.root_certs.empty() && !cfg.self_signed_permitted()) {
    return protocol::unexpected(refused_configuration(
        config_file.string() + ": no root-cert and self-signed certificates not permitted"));
  }

  const crypto::overlay_params params{cfg.instance_name, cfg.node_id_length};
  auto trust = std::make_shared<crypto::trust_store>(params, certificate_cache);
  std::vector<Botan::X509_Certificate> tls_roots;
  for (const auto& root : cfg.root_certs) {
    if (auto added = trust->add_root(root); !added) {
      return protocol::unexpected(
          refused_configuration(config_file.string() + ": root-cert: " + added.error().message()));
    }
    try {
      tls_roots.emplace_back(root);
    } catch (const std::exception& e) {
      // add_root parsed the same bytes; Botan failing now would be an allocation failure.
      return protocol::unexpected(
          refused_configuration(config_file.string() + ": root-cert: " + e.what()));
    }
  }
  if (cfg.self_signed_permitted()) {
    trust->permit_self_signed(cfg.self_signed->digest == "sha256"
                                  ? crypto::self_signed_digest::sha256
                                  : crypto::self_signed_digest::sha1);
  }
  overlay_setup out{std::move(cfg), std::move(trust), std::move(tls_roots), config_file, {}};
  if (auto bytes = read_file(config_file)) out.document = std::move(*bytes);
  return out;
}

protocol::result<node_credentials, protocol::error_record> load_node_credentials(
    const overlay_setup& overlay, const fs::path& cert_file, const fs::path& key_file) {
  for (const auto* file : {&cert_file, &key_file}) {
    if (auto why = unreadable(*file); !why.empty()) {
      return protocol::unexpected(refused_credentials(why));
    }
  }
  const crypto::overlay_params params{overlay.config.instance_name, overlay.config.node_id_length};
  auto creds = crypto::load_credentials(cert_file, key_file, params, overlay.trust.get(),
                                        std::chrono::system_clock::now());
  if (!creds) return protocol::unexpected(refused_credentials(creds.error().message));
  auto tls = transport::tls_credentials::from_identity(creds->link, overlay.tls_roots, params);
  if (!tls) {
    return protocol::unexpected(
        refused_credentials(cert_file.string() + ": unusable for TLS: " + tls.error().message()));
  }
  return node_credentials{std::move(*creds), std::move(*tls)};
}

protocol::result<node_setup, protocol::error_record> load_node_setup(
    const fs::path& config_file, const fs::path& cert_file, const fs::path& key_file,
    const std::string& overlay_name, std::size_t certificate_cache) {
  // The credential files are checked for readability before the configuration is read, as
  // before the split: a missing key names the key file whatever the document says.
  if (auto why = unreadable(config_file); !why.empty()) {
    return protocol::unexpected(refused_configuration(why));
  }
  for (const auto* file : {&cert_file, &key_file}) {
    if (auto why = unreadable(*file); !why.empty()) {
      return protocol::unexpected(refused_credentials(why));
    }
  }
  auto overlay = load_overlay_setup(config_file, overlay_name, certificate_cache);
  if (!overlay) return protocol::unexpected(overlay.error());
  auto own = load_node_credentials(*overlay, cert_file, key_file);
  if (!own) return protocol::unexpected(own.error());
  return node_setup{std::move(overlay->config),      std::move(overlay->trust),
                    std::move(own->creds),           std::move(own->tls),
                    std::move(overlay->config_file), std::move(overlay->document)};
}

namespace {

config::result<config::parsed_document> checked_update(const config::overlay_config& current,
                                                       protocol::byte_view offered) {
  const std::string_view text(reinterpret_cast<const char*>(offered.data()), offered.size());
  auto doc = config::parse_document(text);
  if (!doc) return doc.error();
  if (auto ok = config::check_config_update(current, *doc, std::chrono::system_clock::now()); !ok) {
    return ok.error();
  }
  return std::move(*doc);
}

}  // namespace

protocol::result<std::uint16_t, protocol::error_record> check_update(
    const config::overlay_config& current, protocol::byte_view offered) {
  auto doc = checked_update(current, offered);
  if (!doc) return protocol::unexpected(doc.error());
  return doc->config.sequence;
}

protocol::result<std::uint16_t, protocol::error_record> node_setup::check_update(
    protocol::byte_view offered) const {
  return node::check_update(config, offered);
}

protocol::result<std::uint16_t, protocol::error_record> node_setup::take_update(
    protocol::byte_view offered, bool write_file) {
  auto doc = checked_update(config, offered);
  if (!doc) return protocol::unexpected(doc.error());
  if (write_file && !config_file.empty()) {
    const auto aside = fs::path(config_file.string() + ".new");
    {
      std::FILE* f = std::fopen(aside.c_str(), "wb");
      if (!f) return write_error(aside.string() + ": cannot be written");
      const bool written = std::fwrite(offered.data(), 1, offered.size(), f) == offered.size();
      const bool closed = std::fclose(f) == 0;
      if (!written || !closed) return write_error(aside.string() + ": write failed");
    }
    std::error_code ec;
    fs::rename(aside, config_file, ec);
    if (ec) return write_error(config_file.string() + ": " + ec.message());
  }
  config = std::move(doc->config);
  document.assign(offered.begin(), offered.end());
  return config.sequence;
}

}  // namespace p2psip::node
