#pragma once
// The overlay's trust anchors (the <root-cert> elements of the configuration) and a bounded cache
// of parsed node certificates and of their chain checks. Signatures are never cached; the one
// exception is a short record of signatures this process made itself (note_own_signature), which
// only a caller that knows the signed data never left the process may consult.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "p2psip/crypto/certificate.hpp"

namespace p2psip::crypto {

/// Digest for self-signed mode (RFC 6940 section 11.3.1, <self-signed-permitted digest=...>).
enum class self_signed_digest : std::uint8_t { sha1, sha256 };

/// Holds the root certificates of one overlay and decides whether a node certificate chains to
/// one of them at a given time (Botan's x509_path_validate with that reference time).
///
/// Results are cached per certificate, keyed by SHA-256 of its DER: a chain that validated gives
/// the window in which every certificate of the chain is valid, so later checks at any `now` are
/// answered from the cache (ok, expired, or not yet valid); a chain refused for another reason
/// (unknown issuer, bad CA signature) stays refused. Adding a root empties the cache. The cache
/// holds at most `cache_capacity` certificates and evicts the least recently used.
///
/// Thread safety: every member may be called from several threads at once.
class trust_store {
 public:
  struct statistics {
    std::uint64_t path_validations = 0;  ///< calls into Botan's path validation
    std::uint64_t chain_cache_hits = 0;  ///< chain checks answered from the cache
    std::uint64_t parse_cache_hits = 0;  ///< parse() answered from the cache
    std::size_t cached_certificates = 0;
    std::uint64_t own_signatures_taken = 0;  ///< verifications skipped by take_own_signature
  };

  /// How many of its own signatures the store remembers (the oldest are forgotten first).
  static constexpr std::size_t own_signature_capacity = 256;

  explicit trust_store(overlay_params overlay, std::size_t cache_capacity = 4096);
  ~trust_store();
  trust_store(const trust_store&) = delete;
  trust_store& operator=(const trust_store&) = delete;

  const overlay_params& overlay() const noexcept;

  /// Adds a trust anchor (DER). malformed_certificate if unreadable, not_a_ca unless it is a CA
  /// certificate (basicConstraints cA, RFC 6940 section 11.3 "including PKIX BasicConstraints").
  result<void> add_root(protocol::byte_view der);
  /// Adds every certificate of a PEM text (e.g. a CA file) as a root.
  result<void> add_roots_pem(std::string_view pem);
  std::size_t root_count() const;

  /// Self-signed mode: a self-signed node certificate is accepted (instead of a chain to a root)
  /// when its Node-IDs are the digest of its subjectPublicKeyInfo: a single Node-ID is the
  /// high-order bytes of digest(SPKI), several are digest(uint32 index || SPKI) for the indices
  /// 1..n. Off unless enabled; enabling empties the cache.
  void permit_self_signed(self_signed_digest digest);

  /// Parses a node certificate of this overlay, from the cache when its DER was seen before.
  result<certificate> parse(protocol::byte_view der);

  /// Checks that `cert` chains to a root (or passes self-signed mode) and that every certificate
  /// of the chain is valid at `now`. `extra` may hold intermediate CA certificates (a security
  /// block's bucket; node certificates in it are skipped). Errors: untrusted_certificate,
  /// invalid_certificate_chain, certificate_expired, certificate_not_yet_valid,
  /// self_signed_node_id_mismatch.
  result<void> check(const certificate& cert, std::span<const protocol::generic_certificate> extra,
                     time_point now);
  /// The same, given Botan's parse of `cert`'s DER: a compact certificate is then not parsed
  /// again for the check (loading credentials parsed it already, and keeps the compact form).
  result<void> check(const certificate& cert, const Botan::X509_Certificate& parsed,
                     std::span<const protocol::generic_certificate> extra, time_point now);

  /// Records that this process made `signature` (algorithm `alg`) over `input` with `cert`'s
  /// private key (the key of a node_identity, which create() checked against the certificate). Kept
  /// by digest, at most own_signature_capacity, oldest forgotten first.
  void note_own_signature(const certificate& cert, protocol::signature_and_hash_algorithm alg,
                          protocol::byte_view input, protocol::byte_view signature);
  /// Whether exactly this (certificate, algorithm, input, signature) was noted and not taken yet; a
  /// match is forgotten (each noted signature is taken once). A match means the signature verifies
  /// with `cert` under `alg` over `input`, so it need not be verified again. Only for data that
  /// never left this process (a Store this node sent itself and delivered locally): data from
  /// another node is always verified (RFC 6940 7.4.1.1).
  bool take_own_signature(const certificate& cert, protocol::signature_and_hash_algorithm alg,
                          protocol::byte_view input, protocol::byte_view signature);

  statistics stats() const;
  void clear_cache();

 private:
  result<void> check_parsed(const certificate& cert, const Botan::X509_Certificate* given,
                            std::span<const protocol::generic_certificate> extra, time_point now);
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace p2psip::crypto
