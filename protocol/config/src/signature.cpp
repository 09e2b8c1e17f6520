// Signing and verifying the configuration document and its kind-blocks (RFC 6940 section 11.1)
// with p2psip::crypto: the signature value is a SecurityBlock (section 6.3.4) over the exact
// element text, base64 in the document.

#include "p2psip/config/config_signature.hpp"

#include <botan/asn1_obj.h>
#include <botan/x509cert.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "config_internal.hpp"
#include "p2psip/crypto/certificate.hpp"
#include "p2psip/crypto/errors.hpp"
#include "p2psip/crypto/identity.hpp"
#include "p2psip/crypto/signatures.hpp"
#include "p2psip/crypto/trust_store.hpp"
#include "p2psip/protocol/reader.hpp"
#include "p2psip/protocol/security.hpp"
#include "p2psip/protocol/writer.hpp"

namespace p2psip::config {

namespace pr = p2psip::protocol;
namespace cr = p2psip::crypto;
using time_point = std::chrono::system_clock::time_point;
using detail::at;
using detail::fail;
using detail::indexed;

namespace {

constexpr std::string_view signature_path = "overlay/signature";
constexpr std::string_view kind_block_path = "configuration/required-kinds/kind-block";

/// A refused signature (bad_signature); the message is the reason without the element's path.
pr::error_record refused(std::string why) {
  return pr::error_record{make_error_code(config_errc::bad_signature), std::move(why)};
}
/// A document that could not be signed (signing_failed).
pr::error_record not_signed(std::string why) {
  return pr::error_record{make_error_code(config_errc::signing_failed), std::move(why)};
}

bool listed(const std::vector<pr::bytes>& ids, const pr::node_id& id) {
  return std::any_of(ids.begin(), ids.end(), [&](const pr::bytes& b) {
    return std::ranges::equal(pr::byte_view(b), id.view());
  });
}

bool certificate_problem(const std::error_code& ec) {
  using E = cr::crypto_errc;
  if (ec.category() != cr::crypto_category()) return false;
  switch (static_cast<E>(ec.value())) {
    case E::malformed_certificate:
    case E::unsupported_certificate_type:
    case E::no_node_id:
    case E::wrong_overlay:
    case E::bad_reload_uri:
    case E::multiple_user_names:
    case E::untrusted_certificate:
    case E::invalid_certificate_chain:
    case E::certificate_expired:
    case E::certificate_not_yet_valid:
    case E::self_signed_node_id_mismatch: return true;
    default: return false;
  }
}

/// A trust store holding the authority's roots (and self-signed mode when it permits it).
result<std::unique_ptr<cr::trust_store>> trust_of(const signing_authority& a) {
  auto trust =
      std::make_unique<cr::trust_store>(cr::overlay_params{a.overlay_name, a.node_id_length});
  for (std::size_t i = 0; i < a.root_certs.size(); ++i) {
    if (auto added = trust->add_root(a.root_certs[i]); !added) {
      return fail(indexed("configuration/root-cert", i), added.error().message());
    }
  }
  if (a.self_signed && a.self_signed->permitted) {
    trust->permit_self_signed(a.self_signed->digest == "sha256" ? cr::self_signed_digest::sha256
                                                                : cr::self_signed_digest::sha1);
  }
  return trust;
}

enum class signer_role { configuration, kind };

/// Verifies one <signature> or <kind-signature> over `text`; the error is the reason without the
/// element's path.
result<void> verify_one(const signature_element& element, std::string_view text,
                        const signing_authority& authority, signer_role role,
                        cr::trust_store& trust, time_point now) {
  pr::reader r(element.value);
  // The SecurityBlock's own limits: a bucket of a few certificates is all a signer needs.
  const pr::limits lim;
  const pr::security_block block = pr::decode_security_block(r, lim);
  r.expect_done("security_block");
  if (!r.ok()) return refused("not a SecurityBlock: " + r.error().message());

  const auto* data = reinterpret_cast<const std::uint8_t*>(text.data());  // NOLINT: bytes of text
  auto signer = cr::verify_signature(block.signature, pr::byte_view(data, text.size()),
                                     block.certificates, trust, now);
  if (!signer) {
    const std::error_code ec = signer.error();
    if (certificate_problem(ec)) return refused("signer's certificate: " + ec.message());
    return refused(ec.message());
  }
  const pr::node_id& node = signer->node;
  // Without this mark any enrolled node could sign a document that lists itself as signer.
  if (!signer->cert.botan_certificate().has_ex_constraint(
          Botan::OID(std::string(document_signing_usage)))) {
    return refused("signer " + node.hex() +
                   "'s certificate lacks the Document Signing extended key usage (" +
                   std::string(document_signing_usage) + ")");
  }
  if (listed(authority.bad_nodes, node)) {
    return refused("signer " + node.hex() + " is listed as a bad-node");
  }
  if (role == signer_role::configuration && !listed(authority.configuration_signers, node)) {
    return refused("signer " + node.hex() + " is not a configuration-signer");
  }
  if (role == signer_role::kind && !listed(authority.kind_signers, node)) {
    return refused("signer " + node.hex() + " is not a kind-signer");
  }
  return {};
}

/// The signature element over `text` made by `id` as its default Node-ID.
result<signature_element> sign_text(std::string_view text, const cr::node_identity& id) {
  const auto* data = reinterpret_cast<const std::uint8_t*>(text.data());  // NOLINT: bytes of text
  const pr::bytes input(data, data + text.size());
  // RFC 6940 11.1: the element text is the whole input (unlike messages, no SignerIdentity is
  // appended).
  auto sig = cr::make_signature(id, id.default_node_id(),
                                [&](const pr::signer_identity&) { return input; });
  if (!sig) return not_signed("signing failed: " + sig.error().message());
  pr::security_block block;
  cr::add_certificates(block, id);
  block.signature = std::move(*sig);
  signature_element out;
  pr::writer w(out.value);
  pr::encode_security_block(w, block);
  if (!w.ok()) return not_signed("signing failed: " + w.error().message());
  return out;
}

}  // namespace

signing_authority authority_of(const overlay_config& c) {
  signing_authority a;
  a.overlay_name = c.instance_name;
  a.node_id_length = c.node_id_length;
  a.root_certs = c.root_certs;
  a.self_signed = c.self_signed;
  a.configuration_signers = c.configuration_signers;
  a.kind_signers = c.kind_signers;
  a.bad_nodes = c.bad_nodes;
  return a;
}

result<void> verify_configuration_signature(const parsed_document& doc,
                                            const signing_authority& authority, time_point now) {
  const overlay_config& c = doc.config;
  if (c.signatures.empty()) {
    return fail(signature_path, "none (the configuration is unsigned)",
                config_errc::unsigned_document);
  }
  if (doc.configuration_text.empty()) {
    return fail("configuration", "its exact text could not be located for the signature check",
                config_errc::bad_signature);
  }
  try {
    auto trust = trust_of(authority);
    if (!trust) return trust.error();
    std::optional<pr::error_record> first_failure;
    bool verified = false;
    for (std::size_t i = 0; i < c.signatures.size() && !verified; ++i) {
      auto ok = verify_one(c.signatures[i], doc.configuration_text, authority,
                           signer_role::configuration, **trust, now);
      if (ok) {
        verified = true;
      } else if (!first_failure) {
        const std::string path =
            c.signatures.size() == 1 ? std::string(signature_path) : indexed(signature_path, i);
        first_failure = at(path, ok.error());
      }
    }
    if (!verified) return *first_failure;

    // The configuration is authentic: its own kind-signers and roots decide its kind-blocks.
    if (c.kinds.empty()) return {};
    if (doc.kind_texts.size() != c.kinds.size()) {
      return fail("configuration/required-kinds", "kind texts could not be located",
                  config_errc::bad_signature);
    }
    const signing_authority own = authority_of(c);
    auto own_trust = trust_of(own);
    if (!own_trust) return own_trust.error();
    for (std::size_t i = 0; i < c.kinds.size(); ++i) {
      const std::string path = indexed(kind_block_path, i) + "/kind-signature";
      // RFC 6940 11.1: "The kind-block element also MUST contain a kind-signature element."
      if (!c.kinds[i].signature) {
        return fail(path, "none (the kind-block is unsigned)", config_errc::unsigned_document);
      }
      if (doc.kind_texts[i].empty()) {
        return fail(path, "the kind's exact text could not be located", config_errc::bad_signature);
      }
      auto ok = verify_one(*c.kinds[i].signature, doc.kind_texts[i], own, signer_role::kind,
                           **own_trust, now);
      if (!ok) return at(path, ok.error());
    }
    return {};
  } catch (const std::exception& e) {
    return fail(signature_path, std::string("cannot be verified: ") + e.what(),
                config_errc::bad_signature);
  }
}

result<void> verify_configuration_signature(const parsed_document& doc, time_point now) {
  return verify_configuration_signature(doc, authority_of(doc.config), now);
}

result<std::string> write_signed_document(overlay_config config, const document_signer& signer,
                                          time_point now) {
  const cr::overlay_params params{config.instance_name, config.node_id_length};
  auto cert = cr::certificate::parse(signer.certificate, params);
  if (!cert) return not_signed("signer certificate: " + cert.error().message());
  const auto* key = reinterpret_cast<const std::uint8_t*>(signer.private_key.data());  // NOLINT
  auto id =
      cr::node_identity::create(*cert, pr::byte_view(key, signer.private_key.size()), signer.chain);
  if (!id) return not_signed("signer key: " + id.error().message());

  try {
    // 1. Kind-signatures over each <kind> as the writer lays it out.
    config.signatures.clear();
    for (auto& k : config.kinds) k.signature.reset();
    std::string xml = write_document(config);
    auto unsigned_doc = parse_document(xml);
    if (!unsigned_doc) return unsigned_doc.error();
    if (unsigned_doc->kind_texts.size() != config.kinds.size()) {
      return fail("configuration/required-kinds", "kind texts could not be located",
                  config_errc::signing_failed);
    }
    for (std::size_t i = 0; i < config.kinds.size(); ++i) {
      auto sig = sign_text(unsigned_doc->kind_texts[i], *id);
      if (!sig) return sig.error();
      config.kinds[i].signature = std::move(*sig);
    }
    // 2. The signature over <configuration>, kind-signatures included.
    xml = write_document(config);
    auto kinds_signed = parse_document(xml);
    if (!kinds_signed) return kinds_signed.error();
    const std::string signed_text = kinds_signed->configuration_text;
    if (signed_text.empty()) {
      return fail("configuration", "its text could not be located", config_errc::signing_failed);
    }
    auto sig = sign_text(signed_text, *id);
    if (!sig) return sig.error();
    config.signatures.push_back(std::move(*sig));
    // 3. The final document: the configuration's bytes must be those signed, and it must verify
    // as a node will verify it.
    xml = write_document(config);
    auto final_doc = parse_document(xml);
    if (!final_doc) return final_doc.error();
    if (final_doc->configuration_text != signed_text) {
      return fail("configuration", "the written text differs from the signed text",
                  config_errc::signing_failed);
    }
    if (auto ok = verify_configuration_signature(*final_doc, authority_of(config), now); !ok) {
      return ok.error();
    }
    return xml;
  } catch (const std::exception& e) {
    return fail(signature_path, std::string("signing failed: ") + e.what(),
                config_errc::signing_failed);
  }
}

bool sequence_newer(std::uint16_t a, std::uint16_t b) noexcept {
  constexpr unsigned modulus = 65535;
  const unsigned ahead = (static_cast<unsigned>(a) + modulus - b % modulus) % modulus;
  return ahead != 0 && ahead < modulus / 2 + 1;
}

result<void> check_config_update(const overlay_config& current, const parsed_document& update,
                                 time_point now) {
  const overlay_config& next = update.config;
  if (next.instance_name != current.instance_name) {
    return pr::error_record{make_error_code(config_errc::wrong_overlay),
                            "configuration: instance-name is '" + next.instance_name +
                                "', expected '" + current.instance_name + "'"};
  }
  if (!sequence_newer(next.sequence, current.sequence)) {
    return pr::error_record{make_error_code(config_errc::not_newer),
                            "configuration: sequence " + std::to_string(next.sequence) +
                                " is not newer than the current " +
                                std::to_string(current.sequence)};
  }
  return verify_configuration_signature(update, authority_of(current), now);
}

}  // namespace p2psip::config
