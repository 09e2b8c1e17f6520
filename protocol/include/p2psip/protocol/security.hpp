#pragma once
// The security block structures (RFC 6940 section 6.3.4). Signing and verifying are done elsewhere;
// these are the bytes on the wire.

#include <cstdint>
#include <variant>
#include <vector>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/limits.hpp"
#include "p2psip/protocol/reader.hpp"
#include "p2psip/protocol/writer.hpp"

namespace p2psip::protocol {

/// TLS HashAlgorithm registry values.
namespace hash_algorithm {
inline constexpr std::uint8_t none = 0, md5 = 1, sha1 = 2, sha224 = 3, sha256 = 4, sha384 = 5,
                              sha512 = 6, intrinsic = 8;
}
/// TLS SignatureAlgorithm registry values (7 = ed25519, RFC 8422).
namespace signature_algorithm {
inline constexpr std::uint8_t anonymous = 0, rsa = 1, dsa = 2, ecdsa = 3, ed25519 = 7;
}

struct signature_and_hash_algorithm {
  std::uint8_t hash = hash_algorithm::none;
  std::uint8_t signature = signature_algorithm::anonymous;
  friend bool operator==(const signature_and_hash_algorithm&,
                         const signature_and_hash_algorithm&) = default;
};

enum class signer_identity_type : std::uint8_t { cert_hash = 1, cert_hash_node_id = 2, none = 3 };

/// cert_hash (H(cert DER)) or cert_hash_node_id (H(Node-ID || cert DER)).
struct signer_identity_hash {
  std::uint8_t hash_alg = hash_algorithm::sha256;
  bytes hash;
  friend bool operator==(const signer_identity_hash&, const signer_identity_hash&) = default;
};

/// SignerIdentity: type, uint16 length, value. Unknown types keep their raw value.
struct signer_identity {
  std::uint8_t type = static_cast<std::uint8_t>(signer_identity_type::none);
  signer_identity_hash hash;  ///< meaningful for cert_hash and cert_hash_node_id
  bytes unknown_value;        ///< the raw value of a type this code does not know

  bool is_none() const noexcept {
    return type == static_cast<std::uint8_t>(signer_identity_type::none);
  }
  friend bool operator==(const signer_identity&, const signer_identity&) = default;
};

/// Signature: algorithm, identity, `opaque signature_value<0..2^16-1>`.
struct signature {
  signature_and_hash_algorithm algorithm;
  signer_identity identity;
  bytes value;

  /// The "unsigned" signature of synthetic non-existent values: {0,0}, identity none, empty.
  bool is_unsigned() const noexcept {
    return algorithm == signature_and_hash_algorithm{} && identity.is_none() && value.empty();
  }
  friend bool operator==(const signature&, const signature&) = default;
};

/// GenericCertificate: type (0 = X.509) and DER bytes.
struct generic_certificate {
  std::uint8_t type = 0;
  bytes certificate;
  friend bool operator==(const generic_certificate&, const generic_certificate&) = default;
};

struct security_block {
  std::vector<generic_certificate> certificates;
  struct signature signature;
  friend bool operator==(const security_block&, const security_block&) = default;
};

signer_identity decode_signer_identity(reader& r);
void encode_signer_identity(writer& w, const signer_identity& id);
signature decode_signature(reader& r);
void encode_signature(writer& w, const signature& s);
security_block decode_security_block(reader& r, const limits& lim);
void encode_security_block(writer& w, const security_block& b);

}  // namespace p2psip::protocol
