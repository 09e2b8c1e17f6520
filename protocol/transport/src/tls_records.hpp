#pragma once
// TLS 1.2 record protection for an established session, without Botan's TLS channel: the AEAD
// cipher suites our link policy allows (AES-128/256-GCM, RFC 5288; ChaCha20-Poly1305, RFC 7905).
//
// Why: Botan 2's TLS::Channel keeps the whole handshake state (both certificate messages and the
// peer's parsed certificate, the handshake transcript, the ephemeral key exchange: about 20 KiB)
// for the life of the connection and has no call to release it. tls_engine runs the handshake on
// Botan, then derives the same traffic keys from the master secret and the two hello randoms
// (RFC 5246 6.3), continues both sequence numbers where Botan left them, and drops Botan's
// channel. What a link keeps per session after that is two AEAD states and 16-byte counters.
//
// Sans-I/O: ciphertext in, plaintext and alerts out; protect() appends whole records.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <botan/aead.h>
#include <botan/secmem.h>

#include "io_util.hpp"

namespace p2psip::transport::detail {

/// TLS record content types (RFC 5246 6.2.1).
enum class record_type : std::uint8_t {
  change_cipher_spec = 20,
  alert = 21,
  handshake = 22,
  application_data = 23,
};

/// The most a record may add to its plaintext (at most max_record_plaintext, io_util.hpp):
/// RFC 5246 6.2.3 allows 2048 for any cipher; an AEAD adds an 8-byte explicit nonce and a tag.
inline constexpr std::size_t max_record_expansion = 2048;
inline constexpr std::size_t record_header_size = 5;

/// What a session's keys are derived from, as the handshake left them.
struct session_secrets {
  std::string cipher;    ///< Botan's AEAD name: "AES-128/GCM", "AES-256/GCM", "ChaCha20Poly1305"
  std::string prf_hash;  ///< "SHA-256" or "SHA-384"
  std::size_t key_length = 0;
  /// Nonce bytes from the key block: 4 (GCM: salt, 8 explicit bytes per record) or 12
  /// (ChaCha20-Poly1305: XORed with the sequence number, nothing explicit).
  std::size_t fixed_iv_length = 0;
  Botan::secure_vector<std::uint8_t> master_secret;
  std::vector<std::uint8_t> client_random;
  std::vector<std::uint8_t> server_random;
  /// The sequence numbers of the next record each way (the Finished messages were 0).
  std::uint64_t next_write_sequence = 0;
  std::uint64_t next_read_sequence = 0;
};

/// One protected record taken out of the stream.
struct opened_record {
  record_type type = record_type::application_data;
  std::vector<std::uint8_t> plaintext;
};

class record_layer {
 public:
  /// Derives the key block (RFC 5246 6.3) for the `server` or client side. Errors: an unknown
  /// cipher or PRF (transport_errc::tls_error); Botan's exceptions are caught.
  static std::unique_ptr<record_layer> create(const session_secrets& s, bool server,
                                              std::error_code& error);

  /// Appends `size` bytes of `type` as records of at most 2^14 bytes each to `out`.
  void protect(record_type type, const std::uint8_t* data, std::size_t size,
               std::vector<std::uint8_t>& out);

  /// Opens the record at the start of `data` (header and fragment, exactly `size` bytes: the
  /// caller cuts records at their length fields). Errors: a version other than TLS 1.2, a
  /// fragment too long or too short for the cipher, or an authentication failure (the record
  /// was changed or is not ours): transport_errc::tls_error.
  std::error_code open(const std::uint8_t* data, std::size_t size, opened_record& out);

  ~record_layer();
  record_layer(const record_layer&) = delete;
  record_layer& operator=(const record_layer&) = delete;

  /// Drops the cipher objects (AES and GCM's GHASH tables: over 2 KiB each way), keeping the
  /// keys, when the process holds more than its cipher budget (transport::set_cipher_budget):
  /// the next record makes them again (a few microseconds). For links that go idle.
  void release_ciphers() noexcept;
  /// The same for the reading side's cipher object only (after the records received were opened).
  void release_reader() noexcept;

 private:
  record_layer() = default;
  Botan::AEAD_Mode& writer();
  Botan::AEAD_Mode& reader();
  /// Destroys `cipher` (if any) and counts it out of the process's held ciphers.
  static void drop(std::unique_ptr<Botan::AEAD_Mode>& cipher) noexcept;
  std::vector<std::uint8_t> nonce(const std::vector<std::uint8_t>& fixed, std::uint64_t seq,
                                  const std::uint8_t* explicit_part) const;

  std::string cipher_;
  Botan::secure_vector<std::uint8_t> write_key_;
  Botan::secure_vector<std::uint8_t> read_key_;
  std::unique_ptr<Botan::AEAD_Mode> writer_;  ///< made from write_key_ when needed
  std::unique_ptr<Botan::AEAD_Mode> reader_;
  std::vector<std::uint8_t> write_iv_;
  std::vector<std::uint8_t> read_iv_;
  bool explicit_nonce_ = true;  ///< GCM: 8 explicit nonce bytes lead each record
  std::uint64_t write_seq_ = 0;
  std::uint64_t read_seq_ = 0;
};

}  // namespace p2psip::transport::detail
