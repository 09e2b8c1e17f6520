// The overlay CA: key generation, the CA certificate and node certificates, with Botan 2.
// Every Botan call is wrapped: its exceptions become admin_error values at this boundary.

#include "issuance.hpp"

#include <botan/auto_rng.h>
#include <botan/data_src.h>
#include <botan/ec_group.h>
#include <botan/ecc_key.h>
#include <botan/ecdsa.h>
#include <botan/ed25519.h>
#include <botan/hash.h>
#include <botan/pem.h>
#include <botan/pk_keys.h>
#include <botan/pkcs8.h>
#include <botan/pubkey.h>
#include <botan/x509_ca.h>
#include <botan/x509_ext.h>
#include <botan/x509cert.h>
#include <botan/x509self.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>

#include "p2psip/config/config_signature.hpp"
#include "p2psip/config/overlay_config.hpp"
#include "p2psip/protocol/bytes.hpp"

namespace p2psip::admin {

namespace pr = p2psip::protocol;
using clock = std::chrono::system_clock;

namespace {

// Certificates start an hour early so that a node whose clock is slightly behind accepts them.
constexpr std::chrono::hours backdate{1};

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::vector<std::string> pem_blocks(std::string_view text, std::string_view label) {
  const std::string begin = "-----BEGIN " + std::string(label) + "-----";
  const std::string end = "-----END " + std::string(label) + "-----";
  std::vector<std::string> out;
  std::size_t at = text.find(begin);
  while (at != std::string_view::npos) {
    const std::size_t stop = text.find(end, at);
    if (stop == std::string_view::npos) break;
    out.emplace_back(text.substr(at, stop + end.size() - at));
    at = text.find(begin, stop);
  }
  return out;
}

// Every certificate of a PEM text (or the single certificate of a DER one).
std::vector<Botan::X509_Certificate> load_certificates(std::string_view text) {
  std::vector<Botan::X509_Certificate> out;
  const auto blocks = pem_blocks(text, "CERTIFICATE");
  if (blocks.empty()) {
    Botan::DataSource_Memory src(reinterpret_cast<const std::uint8_t*>(text.data()),  // NOLINT
                                 text.size());
    out.emplace_back(src);
    return out;
  }
  for (const auto& b : blocks) {
    Botan::DataSource_Memory src(b);
    out.emplace_back(src);
  }
  return out;
}

std::string time_text(const Botan::X509_Time& t) {
  return config::format_date_time(std::chrono::floor<std::chrono::seconds>(t.to_std_timepoint()));
}

std::string dn_text(const Botan::X509_DN& dn) {
  if (dn.empty()) return "(empty)";
  std::ostringstream os;
  os << dn;
  return os.str();
}

std::string key_text(const Botan::X509_Certificate& cert) {
  const auto key = cert.load_subject_public_key();
  const std::string algo = key->algo_name();
  if (const auto* ec = dynamic_cast<const Botan::EC_PublicKey*>(key.get())) {
    const std::string curve = ec->domain().get_curve_oid().to_formatted_string();
    if (curve == "secp256r1") return algo + " P-256";
    if (curve == "secp384r1") return algo + " P-384";
    if (curve == "secp521r1") return algo + " P-521";
    return algo + " " + curve;
  }
  if (algo == "RSA") return "RSA " + std::to_string(key->key_length()) + " bits";
  return algo;
}

// The Node-ID and overlay of a reload:// URI, in either form of the brief: the RFC's Destination
// encoding or bare hex. nullopt when it is not a reload:// URI with a readable Node-ID.
std::optional<std::pair<pr::node_id, std::string>> parse_reload_uri(std::string_view uri) {
  constexpr std::string_view scheme = "reload://";
  if (!uri.starts_with(scheme)) return std::nullopt;
  std::string_view rest = uri.substr(scheme.size());
  const std::size_t at = rest.find('@');
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view hex = rest.substr(0, at);
  std::string_view overlay = rest.substr(at + 1);
  if (const std::size_t slash = overlay.find('/'); slash != std::string_view::npos) {
    overlay = overlay.substr(0, slash);
  }
  pr::bytes b;
  std::optional<pr::node_id> id;
  if (pr::from_hex(hex, b)) {
    if (b.size() >= 2 && b[0] == 0x01 && b[1] == b.size() - 2) {
      id = pr::node_id::from_bytes(pr::byte_view(b).subspan(2));
    } else {
      id = pr::node_id::from_bytes(b);
    }
  }
  if (!id) return std::nullopt;
  return std::pair{*id, std::string(overlay)};
}

// A reload:// URI of a certificate, for show: the Node-ID and the overlay.
std::string describe_reload_uri(std::string_view uri) {
  const auto parsed = parse_reload_uri(uri);
  if (!parsed) return std::string(uri) + " (unreadable)";
  return parsed->first.hex() + " in overlay " + parsed->second;
}

admin_error botan_error(std::string_view what, const std::exception& e) {
  return admin_error{std::string(what) + ": " + e.what()};
}

}  // namespace

bool valid_overlay_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label = 0;
  char prev = '.';
  for (const char c : name) {
    if (c == '.') {
      if (label == 0 || prev == '-') return false;
      label = 0;
    } else if (is_alnum(c) || c == '-') {
      if (label == 0 && c == '-') return false;
      if (++label > 63) return false;
    } else {
      return false;
    }
    prev = c;
  }
  return label != 0 && prev != '-';
}

bool valid_user_name(std::string_view user) {
  const std::size_t at = user.find('@');
  if (at == std::string_view::npos || at == 0 || at > 64) return false;
  const std::string_view local = user.substr(0, at);
  if (!valid_overlay_name(user.substr(at + 1))) return false;
  constexpr std::string_view specials = ".!#$%&'*+/=?^_`{|}~-";
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(local.begin(), local.end(), [&](char c) {
    return is_alnum(c) || specials.find(c) != std::string_view::npos;
  });
}

std::string reload_uri(const pr::node_id& id, std::string_view overlay) {
  const pr::bytes prefix{0x01, static_cast<std::uint8_t>(id.size())};
  return "reload://" + pr::to_hex(prefix) + id.hex() + "@" + std::string(overlay) + "/";
}

std::vector<pr::node_id> random_node_ids(std::size_t count, std::size_t length,
                                         const std::vector<pr::node_id>& taken) {
  Botan::AutoSeeded_RNG rng;
  std::vector<pr::node_id> out;
  while (out.size() < count) {
    pr::bytes b(length);
    rng.randomize(b.data(), b.size());
    const auto id = pr::node_id::from_bytes(b);
    if (!id || id->is_zero() || id->is_wildcard()) continue;
    if (std::find(taken.begin(), taken.end(), *id) != taken.end()) continue;
    if (std::find(out.begin(), out.end(), *id) != out.end()) continue;
    out.push_back(*id);
  }
  return out;
}

result<pem_pair> create_overlay_ca(std::string_view overlay, std::chrono::hours validity) {
  try {
    Botan::AutoSeeded_RNG rng;
    const Botan::ECDSA_PrivateKey key(rng, Botan::EC_Group("secp256r1"));
    Botan::X509_Cert_Options opts;
    opts.common_name = std::string(overlay) + " overlay CA";
    opts.organization = "p2psip";
    const auto now = clock::now();
    opts.start = Botan::X509_Time(now - backdate);
    opts.end = Botan::X509_Time(now + validity);
    // Path length 0: this CA issues node certificates only. With CA_key and no explicit key
    // usage, Botan sets keyCertSign and cRLSign.
    opts.CA_key(0);
    const Botan::X509_Certificate cert =
        Botan::X509::create_self_signed_cert(opts, key, "SHA-256", rng);
    return pem_pair{cert.PEM_encode(), Botan::PKCS8::PEM_encode(key)};
  } catch (const std::exception& e) {
    return botan_error("creating the overlay CA", e);
  }
}

result<std::vector<std::uint8_t>> certificate_der(std::string_view pem_or_der) {
  try {
    const auto certs = load_certificates(pem_or_der);
    if (certs.empty()) return admin_error{"no certificate"};
    return certs.front().BER_encode();
  } catch (const std::exception& e) {
    return botan_error("not a certificate", e);
  }
}

namespace {

struct loaded_ca {
  std::unique_ptr<Botan::X509_Certificate> cert;
  std::unique_ptr<Botan::Private_Key> key;
};

// The CA's certificate and key, checked to be a CA certificate with its own key.
result<loaded_ca> load_ca(const pem_pair& ca) {
  loaded_ca out;
  try {
    Botan::DataSource_Memory src(ca.certificate);
    out.cert = std::make_unique<Botan::X509_Certificate>(src);
  } catch (const std::exception& e) {
    return botan_error("CA certificate", e);
  }
  try {
    Botan::DataSource_Memory src(ca.private_key);
    out.key = Botan::PKCS8::load_key(src);
  } catch (const std::exception& e) {
    return botan_error("CA key is not an unencrypted PKCS#8 private key", e);
  }
  if (!out.cert->is_CA_cert()) return admin_error{"CA certificate: basicConstraints CA is not set"};
  if (out.cert->subject_public_key_bitstring() != out.key->public_key_bits()) {
    return admin_error{"CA key does not belong to the CA certificate"};
  }
  return out;
}

// Issues end-entity certificates under one CA, valid from an hour ago to `not_after` (clamped to
// the CA's own notAfter). Botan throws; callers catch.
class issuer {
 public:
  issuer(const loaded_ca& ca, Botan::RandomNumberGenerator& rng, std::chrono::hours validity)
      : ca_(ca), rng_(rng) {
    signer_.reset(Botan::choose_sig_format(*ca_.key, rng_, "SHA-256", sig_algo_));
    const auto now = clock::now();
    const auto ca_end = ca_.cert->not_after().to_std_timepoint();
    not_after_ = now + validity;
    if (not_after_ > ca_end) not_after_ = ca_end;
    start_ = Botan::X509_Time(now - backdate);
    end_ = Botan::X509_Time(not_after_);
  }

  clock::time_point not_after() const { return not_after_; }

  // RFC 6940 11.3: an empty subject and a critical subjectAltName (RFC 5280 4.2.1.6).
  // `usages`: the extended key usages (none: no extension).
  pem_pair issue(const Botan::Private_Key& key, const Botan::AlternativeName& alt,
                 const std::vector<Botan::OID>& usages) {
    Botan::Extensions ext;
    ext.add(new Botan::Cert_Extension::Basic_Constraints(false), true);
    ext.add(new Botan::Cert_Extension::Key_Usage(Botan::DIGITAL_SIGNATURE), true);
    if (!usages.empty()) ext.add(new Botan::Cert_Extension::Extended_Key_Usage(usages));
    ext.add(new Botan::Cert_Extension::Subject_Key_ID(key.public_key_bits(), "SHA-256"));
    ext.add(new Botan::Cert_Extension::Authority_Key_ID(ca_.cert->subject_key_id()));
    ext.add(new Botan::Cert_Extension::Subject_Alternative_Name(alt), true);
    const Botan::X509_Certificate cert =
        Botan::X509_CA::make_cert(signer_.get(), rng_, sig_algo_, key.subject_public_key(), start_,
                                  end_, ca_.cert->subject_dn(), Botan::X509_DN(), ext);
    return pem_pair{cert.PEM_encode(), Botan::PKCS8::PEM_encode(key)};
  }

 private:
  const loaded_ca& ca_;
  Botan::RandomNumberGenerator& rng_;
  Botan::AlgorithmIdentifier sig_algo_;
  std::unique_ptr<Botan::PK_Signer> signer_;
  clock::time_point not_after_;
  Botan::X509_Time start_;
  Botan::X509_Time end_;
};

}  // namespace

result<issued_node> issue_node(const pem_pair& ca, const node_request& request) {
  auto loaded = load_ca(ca);
  if (!loaded) return loaded.error();
  if (request.node_ids.empty()) return admin_error{"no Node-IDs to certify"};

  try {
    Botan::AutoSeeded_RNG rng;
    issuer is(*loaded, rng, request.validity);
    // RFC 6940 11.3: one URI per Node-ID, one rfc822Name, nothing else.
    Botan::AlternativeName alt;
    for (const auto& id : request.node_ids)
      alt.add_attribute("URI", reload_uri(id, request.overlay));
    alt.add_attribute("RFC822", request.user);

    // The link key is ECDSA P-256: Botan 2's TLS refuses Ed25519. The signing key is Ed25519,
    // p2psip::crypto's default_signing_key.
    const Botan::ECDSA_PrivateKey link_key(rng, Botan::EC_Group("secp256r1"));
    const Botan::Ed25519_PrivateKey signing_key(rng);
    issued_node out;
    out.link = is.issue(
        link_key, alt,
        {Botan::OID::from_string("PKIX.ServerAuth"), Botan::OID::from_string("PKIX.ClientAuth")});
    out.signing = is.issue(signing_key, alt, {});
    out.not_after = is.not_after();
    return out;
  } catch (const std::exception& e) {
    return botan_error("issuing the node certificates", e);
  }
}

result<pem_pair> issue_configuration_signer(const pem_pair& ca, std::string_view overlay,
                                            const protocol::node_id& id,
                                            std::chrono::hours validity) {
  auto loaded = load_ca(ca);
  if (!loaded) return loaded.error();
  try {
    Botan::AutoSeeded_RNG rng;
    issuer is(*loaded, rng, validity);
    Botan::AlternativeName alt;
    alt.add_attribute("URI", reload_uri(id, overlay));
    alt.add_attribute("RFC822",
                      std::string(configuration_signer_user) + "@" + std::string(overlay));
    const Botan::Ed25519_PrivateKey key(rng);
    // The mark a node's configuration check requires of a document signer.
    return is.issue(key, alt, {Botan::OID(std::string(config::document_signing_usage))});
  } catch (const std::exception& e) {
    return botan_error("issuing the configuration signer's certificate", e);
  }
}

result<std::vector<pr::node_id>> certificate_node_ids(std::string_view pem_or_der,
                                                      std::string_view overlay) {
  try {
    const auto certs = load_certificates(pem_or_der);
    if (certs.empty()) return admin_error{"no certificate"};
    std::vector<pr::node_id> out;
    for (const auto& [type, value] : certs.front().subject_alt_name().contents()) {
      if (type != "URI") continue;
      const auto parsed = parse_reload_uri(value);
      if (parsed && parsed->second == overlay) out.push_back(parsed->first);
    }
    return out;
  } catch (const std::exception& e) {
    return botan_error("not a certificate", e);
  }
}

result<std::string> describe_certificates(std::string_view pem_or_der) {
  std::vector<Botan::X509_Certificate> certs;
  try {
    certs = load_certificates(pem_or_der);
  } catch (const std::exception& e) {
    return botan_error("not a certificate", e);
  }
  const auto now = clock::now();
  std::string out;
  for (std::size_t i = 0; i < certs.size(); ++i) {
    const auto& c = certs[i];
    try {
      out += "certificate " + std::to_string(i + 1) + " of " + std::to_string(certs.size()) + "\n";
      out += "  subject:   " + dn_text(c.subject_dn()) + "\n";
      out += "  issuer:    " + dn_text(c.issuer_dn()) + "\n";
      const auto alt = c.subject_alt_name().contents();
      for (const auto& [type, value] : alt) {
        if (type == "RFC822") out += "  user:      " + value + "\n";
      }
      for (const auto& [type, value] : alt) {
        if (type == "URI" && value.starts_with("reload://")) {
          out += "  node-id:   " + describe_reload_uri(value) + "\n";
        }
      }
      for (const auto& [type, value] : alt) {
        if (type != "RFC822" && !(type == "URI" && value.starts_with("reload://"))) {
          out += "  other SAN: " + type + ":" + value + "\n";
        }
      }
      std::string state;
      if (c.not_after().to_std_timepoint() < now) state = " (expired)";
      if (c.not_before().to_std_timepoint() > now) state = " (not yet valid)";
      out += "  valid:     " + time_text(c.not_before()) + " to " + time_text(c.not_after()) +
             state + "\n";
      out += "  key:       " + key_text(c) + "\n";
      out += std::string("  CA:        ") + (c.is_CA_cert() ? "yes" : "no") + "\n";
      out += "  sha256:    " + c.fingerprint("SHA-256") + "\n";
    } catch (const std::exception& e) {
      return botan_error("certificate " + std::to_string(i + 1), e);
    }
  }
  return out;
}

std::string certificate_summary(const std::vector<std::uint8_t>& der) {
  try {
    const Botan::X509_Certificate cert(der);
    return dn_text(cert.subject_dn()) + ", until " + time_text(cert.not_after()) + ", sha256 " +
           cert.fingerprint("SHA-256");
  } catch (const std::exception& e) {
    return std::string("unreadable: ") + e.what();
  }
}

}  // namespace p2psip::admin
