#include "p2psip/transport/credentials.hpp"

#include <botan/certstor_system.h>
#include <botan/data_src.h>
#include <botan/pkcs8.h>

#include <algorithm>
#include <exception>
#include <string>

#include "credentials_state.hpp"
#include "p2psip/transport/errors.hpp"

namespace p2psip::transport {

namespace pr = p2psip::protocol;

namespace detail {

std::vector<std::string> link_policy::allowed_ciphers() const {
  // AES-GCM first: hardware-accelerated on the machines we run on; all three decrypt in Wireshark.
  return {"AES-128/GCM", "AES-256/GCM", "ChaCha20Poly1305"};
}
std::vector<std::string> link_policy::allowed_signature_hashes() const {
  return {"SHA-256", "SHA-384", "SHA-512"};
}
std::vector<std::string> link_policy::allowed_macs() const {
  return {"AEAD"};
}
std::vector<std::string> link_policy::allowed_key_exchange_methods() const {
  return {"ECDH"};
}
std::vector<std::string> link_policy::allowed_signature_methods() const {
  return {"ECDSA", "RSA"};
}
bool link_policy::acceptable_protocol_version(Botan::TLS::Protocol_Version version) const {
  return version == Botan::TLS::Protocol_Version::TLS_V12;
}

link_credentials_manager::link_credentials_manager(
    const std::vector<Botan::X509_Certificate>& chain, std::shared_ptr<Botan::Private_Key> key,
    Botan::Certificate_Store& roots, bool client_certificates)
    : chain_(chain),
      key_(std::move(key)),
      roots_(roots),
      client_certificates_(client_certificates) {}

std::vector<Botan::Certificate_Store*> link_credentials_manager::trusted_certificate_authorities(
    const std::string& type, const std::string&) {
  // Non-empty for "tls-server" also makes the server send a CertificateRequest naming the roots.
  if (type == "tls-server" && !client_certificates_) return {};
  return {&roots_};
}

std::vector<Botan::X509_Certificate> link_credentials_manager::cert_chain(
    const std::vector<std::string>& cert_key_types, const std::string&, const std::string&) {
  if (!key_ || chain_.empty()) return {};  // named-server credentials without client certificate
  const std::string algo = key_->algo_name();
  if (std::find(cert_key_types.begin(), cert_key_types.end(), algo) == cert_key_types.end()) {
    return {};
  }
  return chain_;
}

Botan::Private_Key* link_credentials_manager::private_key_for(const Botan::X509_Certificate& cert,
                                                              const std::string&,
                                                              const std::string&) {
  return !chain_.empty() && cert == chain_.front() ? key_.get() : nullptr;
}

credentials_state::credentials_state(std::vector<Botan::X509_Certificate> c,
                                     std::shared_ptr<Botan::Private_Key> k,
                                     std::vector<Botan::X509_Certificate> r,
                                     crypto::overlay_params o)
    : chain(std::move(c)),
      key(std::move(k)),
      roots(std::move(r)),
      overlay(std::move(o)),
      manager(chain, key, root_store),
      anonymous_client_manager(chain, key, root_store, false) {
  for (const auto& root : roots) root_store.add_certificate(root);
}

credentials_state::credentials_state(std::vector<Botan::X509_Certificate> c,
                                     std::shared_ptr<Botan::Private_Key> k,
                                     std::vector<Botan::X509_Certificate> r,
                                     std::unique_ptr<Botan::Certificate_Store> system)
    : chain(std::move(c)),
      key(std::move(k)),
      roots(std::move(r)),
      named_servers(true),
      system_store(std::move(system)),
      manager(chain, key, system_store ? *system_store : root_store),
      anonymous_client_manager(chain, key, system_store ? *system_store : root_store, false) {
  for (const auto& root : roots) root_store.add_certificate(root);
}

}  // namespace detail

tls_credentials::tls_credentials(std::unique_ptr<detail::credentials_state> s) noexcept
    : state_(std::move(s)) {}
tls_credentials::~tls_credentials() = default;

const std::vector<Botan::X509_Certificate>& tls_credentials::chain() const noexcept {
  return state_->chain;
}
const std::vector<Botan::X509_Certificate>& tls_credentials::roots() const noexcept {
  return state_->roots;
}
const crypto::overlay_params& tls_credentials::overlay() const noexcept {
  return state_->overlay;
}
bool tls_credentials::verifies_server_names() const noexcept {
  return state_->named_servers;
}

pr::result<std::shared_ptr<const tls_credentials>> tls_credentials::create(
    std::vector<Botan::X509_Certificate> chain, std::shared_ptr<Botan::Private_Key> key,
    std::vector<Botan::X509_Certificate> roots, crypto::overlay_params overlay) {
  const std::error_code invalid = make_error_code(transport_errc::invalid_credentials);
  if (chain.empty() || roots.empty() || !key || overlay.name.empty()) return invalid;
  const std::string algo = key->algo_name();
  if (algo != "ECDSA" && algo != "RSA") return invalid;
  try {
    // The key must be the one the first certificate certifies: compare re-encoded public keys.
    const auto cert_key = chain.front().load_subject_public_key();
    if (!cert_key || cert_key->algo_name() != algo ||
        cert_key->public_key_bits() != key->public_key_bits()) {
      return invalid;
    }
    auto state = std::make_unique<detail::credentials_state>(std::move(chain), std::move(key),
                                                             std::move(roots), std::move(overlay));
    return std::shared_ptr<const tls_credentials>(
        std::make_shared<const tls_credentials>(std::move(state)));
  } catch (const std::exception&) {
    return invalid;
  }
}

namespace {

/// Every "-----BEGIN CERTIFICATE-----" block of `pem`, parsed; an error if any fails or none.
pr::result<std::vector<Botan::X509_Certificate>> parse_pem_certificates(std::string_view pem) {
  static constexpr std::string_view begin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view end = "-----END CERTIFICATE-----";
  std::vector<Botan::X509_Certificate> out;
  std::size_t pos = 0;
  while ((pos = pem.find(begin, pos)) != std::string_view::npos) {
    const std::size_t stop = pem.find(end, pos);
    if (stop == std::string_view::npos) return make_error_code(transport_errc::invalid_credentials);
    const std::string block(pem.substr(pos, stop + end.size() - pos));
    try {
      Botan::DataSource_Memory src(block);
      out.emplace_back(src);
    } catch (const std::exception&) {
      return make_error_code(transport_errc::invalid_credentials);
    }
    pos = stop + end.size();
  }
  if (out.empty()) return make_error_code(transport_errc::invalid_credentials);
  return out;
}

}  // namespace

pr::result<std::shared_ptr<const tls_credentials>> tls_credentials::from_pem(
    std::string_view chain_pem, std::string_view key_pem, std::string_view roots_pem,
    crypto::overlay_params overlay) {
  auto chain = parse_pem_certificates(chain_pem);
  if (!chain) return chain.error();
  auto roots = parse_pem_certificates(roots_pem);
  if (!roots) return roots.error();
  std::shared_ptr<Botan::Private_Key> key;
  try {
    Botan::DataSource_Memory src{std::string(key_pem)};
    key = Botan::PKCS8::load_key(src);
  } catch (const std::exception&) {
    return make_error_code(transport_errc::invalid_credentials);
  }
  return create(std::move(*chain), std::move(key), std::move(*roots), std::move(overlay));
}

pr::result<std::shared_ptr<const tls_credentials>, pr::error_record>
tls_credentials::for_named_servers(std::vector<Botan::X509_Certificate> trusted,
                                   std::vector<Botan::X509_Certificate> chain,
                                   std::shared_ptr<Botan::Private_Key> key) {
  const std::error_code invalid = make_error_code(transport_errc::invalid_credentials);
  if (chain.empty() != (key == nullptr)) {
    return pr::error_record{invalid,
                            "a client certificate needs its key, and a key its certificate"};
  }
  if (key) {
    const std::string algo = key->algo_name();
    if (algo != "ECDSA" && algo != "RSA") {
      return pr::error_record{
          invalid, "the client key is " + algo + "; TLS 1.2 client certificates need ECDSA or RSA"};
    }
    try {
      const auto cert_key = chain.front().load_subject_public_key();
      if (!cert_key || cert_key->algo_name() != algo ||
          cert_key->public_key_bits() != key->public_key_bits()) {
        return pr::error_record{invalid, "the client key does not match the client certificate"};
      }
    } catch (const std::exception& e) {
      return pr::error_record{invalid, std::string("the client certificate: ") + e.what()};
    }
  }
  std::unique_ptr<Botan::Certificate_Store> system;
  if (trusted.empty()) {
    // Loaded once here: a missing or unreadable bundle is an error at start, not at each call.
    try {
      system = std::make_unique<Botan::System_Certificate_Store>();
    } catch (const std::exception& e) {
      return pr::error_record{
          invalid, std::string("the system certificate store cannot be read: ") + e.what()};
    }
  }
  try {
    auto state = std::make_unique<detail::credentials_state>(std::move(chain), std::move(key),
                                                             std::move(trusted), std::move(system));
    return std::shared_ptr<const tls_credentials>(
        std::make_shared<const tls_credentials>(std::move(state)));
  } catch (const std::exception& e) {
    return pr::error_record{invalid, e.what()};
  }
}

pr::result<std::shared_ptr<const tls_credentials>, pr::error_record>
tls_credentials::for_named_servers_pem(std::string_view trusted_pem, std::string_view chain_pem,
                                       std::string_view key_pem) {
  const std::error_code invalid = make_error_code(transport_errc::invalid_credentials);
  std::vector<Botan::X509_Certificate> trusted;
  if (!trusted_pem.empty()) {
    auto parsed = parse_pem_certificates(trusted_pem);
    if (!parsed) {
      return pr::error_record{invalid,
                              "the trusted CA certificates: no PEM certificate, or one "
                              "that does not parse"};
    }
    trusted = std::move(*parsed);
  }
  std::vector<Botan::X509_Certificate> chain;
  std::shared_ptr<Botan::Private_Key> key;
  if (!chain_pem.empty()) {
    auto parsed = parse_pem_certificates(chain_pem);
    if (!parsed) {
      return pr::error_record{invalid,
                              "the client certificate: no PEM certificate, or one that "
                              "does not parse"};
    }
    chain = std::move(*parsed);
  }
  if (!key_pem.empty()) {
    try {
      Botan::DataSource_Memory src{std::string(key_pem)};
      key = Botan::PKCS8::load_key(src);
    } catch (const std::exception& e) {
      return pr::error_record{
          invalid, std::string("the client key is not an unencrypted PKCS #8 key: ") + e.what()};
    }
  }
  return for_named_servers(std::move(trusted), std::move(chain), std::move(key));
}

pr::result<std::shared_ptr<const tls_credentials>> tls_credentials::from_identity(
    const crypto::node_identity& link_identity, std::span<const pr::bytes> roots_der,
    crypto::overlay_params overlay) {
  try {
    std::vector<Botan::X509_Certificate> roots;
    for (const auto& der : roots_der) roots.emplace_back(der);
    return from_identity(link_identity, std::move(roots), std::move(overlay));
  } catch (const std::exception&) {
    return make_error_code(transport_errc::invalid_credentials);
  }
}

pr::result<std::shared_ptr<const tls_credentials>> tls_credentials::from_identity(
    const crypto::node_identity& link_identity, std::vector<Botan::X509_Certificate> roots,
    crypto::overlay_params overlay) {
  try {
    std::vector<Botan::X509_Certificate> chain;
    chain.push_back(link_identity.cert().botan_certificate());
    for (const auto& der : link_identity.chain()) chain.emplace_back(der);
    // The identity's own key, not a copy (a second ECDSA key per node). Botan's credentials
    // manager hands out a non-const pointer, but TLS only signs with it (const members).
    std::shared_ptr<Botan::Private_Key> key =
        std::const_pointer_cast<Botan::Private_Key>(link_identity.shared_private_key());
    return create(std::move(chain), std::move(key), std::move(roots), std::move(overlay));
  } catch (const std::exception&) {
    return make_error_code(transport_errc::invalid_credentials);
  }
}

}  // namespace p2psip::transport
