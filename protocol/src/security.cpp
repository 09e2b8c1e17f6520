#include "p2psip/protocol/security.hpp"

namespace p2psip::protocol {

signer_identity decode_signer_identity(reader& r) {
  signer_identity id;
  const std::size_t type_at = r.offset();
  id.type = r.u8("signer_identity.identity_type");
  reader value = r.sub(2, 0xFFFF, "signer_identity.length");
  if (!r.ok()) return id;
  switch (id.type) {
    case static_cast<std::uint8_t>(signer_identity_type::cert_hash):
    case static_cast<std::uint8_t>(signer_identity_type::cert_hash_node_id):
      id.hash.hash_alg = value.u8("signer_identity.hash_alg");
      id.hash.hash = to_bytes(value.opaque(1, 0, 255, "signer_identity.certificate_hash"));
      value.expect_done("signer_identity");
      break;
    case static_cast<std::uint8_t>(signer_identity_type::none):
      value.expect_done("signer_identity");
      break;
    case 0: r.fail_at(type_at, codec_errc::invalid_value, "signer_identity.identity_type"); break;
    default: id.unknown_value = to_bytes(value.take_rest()); break;
  }
  return id;
}

void encode_signer_identity(writer& w, const signer_identity& id) {
  w.u8(id.type);
  w.vector(2, 0xFFFF, "signer_identity.length", [&] {
    switch (id.type) {
      case static_cast<std::uint8_t>(signer_identity_type::cert_hash):
      case static_cast<std::uint8_t>(signer_identity_type::cert_hash_node_id):
        w.u8(id.hash.hash_alg);
        w.opaque(1, 255, id.hash.hash, "signer_identity.certificate_hash");
        break;
      case static_cast<std::uint8_t>(signer_identity_type::none): break;
      default: w.raw(id.unknown_value); break;
    }
  });
}

signature decode_signature(reader& r) {
  signature s;
  s.algorithm.hash = r.u8("signature.algorithm.hash");
  s.algorithm.signature = r.u8("signature.algorithm.signature");
  s.identity = decode_signer_identity(r);
  s.value = to_bytes(r.opaque(2, 0, 0xFFFF, "signature.signature_value"));
  return s;
}

void encode_signature(writer& w, const signature& s) {
  w.u8(s.algorithm.hash);
  w.u8(s.algorithm.signature);
  encode_signer_identity(w, s.identity);
  w.opaque(2, 0xFFFF, s.value, "signature.signature_value");
}

security_block decode_security_block(reader& r, const limits& lim) {
  security_block b;
  reader certs = r.sub(2, 0xFFFF, "security_block.certificates");
  while (certs.ok() && !certs.at_end()) {
    if (b.certificates.size() == lim.max_certificates) {
      certs.fail(codec_errc::limit_exceeded, "security_block.certificates");
      break;
    }
    generic_certificate c;
    c.type = certs.u8("generic_certificate.type");
    c.certificate = to_bytes(certs.opaque(2, 0, 0xFFFF, "generic_certificate.certificate"));
    b.certificates.push_back(std::move(c));
  }
  b.signature = decode_signature(r);
  return b;
}

void encode_security_block(writer& w, const security_block& b) {
  w.vector(2, 0xFFFF, "security_block.certificates", [&] {
    for (const auto& c : b.certificates) {
      w.u8(c.type);
      w.opaque(2, 0xFFFF, c.certificate, "generic_certificate.certificate");
    }
  });
  encode_signature(w, b.signature);
}

}  // namespace p2psip::protocol
