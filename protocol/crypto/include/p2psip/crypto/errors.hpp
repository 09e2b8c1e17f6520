#pragma once
// Why a certificate, a signature, a key or a credential file was refused, and the RELOAD
// Error-Code each reason is answered with (to_reload_errc).

#include <string>
#include <system_error>

#include "p2psip/protocol/errors.hpp"

namespace p2psip::crypto {

/// Reasons of the crypto library. Every verification failure answers Error_Forbidden.
enum class crypto_errc {
  ok = 0,
  malformed_certificate = 1,     ///< not a DER X.509 certificate Botan can read
  unsupported_certificate_type,  ///< GenericCertificate.type other than X.509 (0)
  no_node_id,                    ///< no reload:// URI with a Node-ID for this overlay in the SAN
  wrong_overlay,                 ///< the reload:// URIs name another overlay
  bad_reload_uri,                ///< a reload:// URI this overlay cannot read (bad hex, length)
  multiple_user_names,           ///< more than one rfc822Name
  not_a_ca,                      ///< a root given to the trust store is not a CA certificate
  untrusted_certificate,         ///< no chain from the certificate to a root of the overlay
  invalid_certificate_chain,     ///< a chain exists but is broken (signature, CA flags, weak key)
  certificate_expired,           ///< a certificate of the chain is past notAfter at `now`
  certificate_not_yet_valid,     ///< a certificate of the chain is before notBefore at `now`
  self_signed_node_id_mismatch,  ///< self-signed mode: a Node-ID is not the digest of the key
  unsigned_signature,            ///< algorithm {0,0} or identity none: only for synthetic values
  unsupported_signer_identity,   ///< a SignerIdentity type or hash algorithm we do not verify
  signer_not_found,              ///< no certificate matches the SignerIdentity
  wrong_signer_identity_type,    ///< cert_hash used with a certificate holding several Node-IDs
  unsupported_algorithm,         ///< SignatureAndHashAlgorithm unknown or not matching the key
  bad_signature,                 ///< the signature value does not verify
  node_id_not_in_certificate,    ///< signing as a Node-ID the certificate does not hold
  signing_failed,                ///< the crypto library failed while signing
  bad_private_key,               ///< a private key that cannot be read (PKCS#8 expected)
  key_mismatch,                  ///< a private key that belongs to no given certificate
  file_unreadable,               ///< a credential file could not be opened or read
  no_certificate_in_file,        ///< a certificate file without a CERTIFICATE PEM block
  no_key_in_file,                ///< a key file without a PRIVATE KEY PEM block
  bad_pem,                       ///< a PEM file that does not decode
  credentials_mismatch,          ///< link and signing certificates differ in Node-IDs or user
  unusable_link_key,             ///< the link certificate's key cannot do TLS (Ed25519 in Botan 2)
};

const std::error_category& crypto_category() noexcept;
std::error_code make_error_code(crypto_errc e) noexcept;

/// The RELOAD Error-Code to answer a failure with (RFC 6940 sections 6.3.4, 7.4.1.1, 7.3):
///   - every crypto_errc (bad or missing signature, untrusted, expired or not yet valid
///     certificate, wrong Node-ID, unsigned value, unsupported algorithm) -> forbidden;
///   - a reload_errc -> itself;
///   - a codec error -> invalid_message;
///   - anything else -> forbidden.
protocol::reload_errc to_reload_errc(const std::error_code& ec) noexcept;

}  // namespace p2psip::crypto

template <>
struct std::is_error_code_enum<p2psip::crypto::crypto_errc> : std::true_type {};
