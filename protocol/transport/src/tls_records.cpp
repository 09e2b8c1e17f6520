#include "tls_records.hpp"

#include <botan/kdf.h>
#include <botan/loadstor.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <string_view>

#include "p2psip/transport/errors.hpp"
#include "p2psip/transport/link.hpp"

namespace p2psip::transport::detail {

namespace {

constexpr std::size_t tag_length = 16;  // GCM and Poly1305 as TLS uses them
constexpr std::size_t explicit_nonce_length = 8;
constexpr std::uint8_t tls12_major = 3, tls12_minor = 3;

/// RFC 5246 6.2.3.3: seq_num + type + version + length of the plaintext.
std::array<std::uint8_t, 13> additional_data(std::uint64_t seq, record_type type,
                                             std::size_t length) {
  std::array<std::uint8_t, 13> ad{};
  Botan::store_be(seq, ad.data());
  ad[8] = static_cast<std::uint8_t>(type);
  ad[9] = tls12_major;
  ad[10] = tls12_minor;
  ad[11] = static_cast<std::uint8_t>(length >> 8);
  ad[12] = static_cast<std::uint8_t>(length);
  return ad;
}

/// Cipher objects alive in every record layer of the process, and how many may stay between
/// records (transport::set_cipher_budget). Atomics: an SDK process runs a link per client
/// thread.
std::atomic<std::size_t> ciphers_alive{0};
std::atomic<std::size_t> cipher_budget{0};

bool over_cipher_budget() noexcept {
  return ciphers_alive.load(std::memory_order_relaxed) >
         cipher_budget.load(std::memory_order_relaxed);
}

}  // namespace

std::unique_ptr<record_layer> record_layer::create(const session_secrets& s, bool server,
                                                   std::error_code& error) {
  error = {};
  try {
    auto prf = Botan::KDF::create("TLS-12-PRF(" + s.prf_hash + ")");
    auto client_writer = Botan::AEAD_Mode::create(s.cipher, Botan::ENCRYPTION);
    if (!prf || !client_writer || (s.fixed_iv_length != 4 && s.fixed_iv_length != 12) ||
        s.key_length == 0 || s.client_random.size() != 32 || s.server_random.size() != 32) {
      error = make_error_code(transport_errc::tls_error);
      return nullptr;
    }
    // RFC 5246 6.3: key_block = PRF(master_secret, "key expansion", server_random +
    // client_random); an AEAD suite has no MAC keys, so it is client key, server key, client
    // IV, server IV.
    std::vector<std::uint8_t> seed(s.server_random);
    seed.insert(seed.end(), s.client_random.begin(), s.client_random.end());
    constexpr std::string_view label = "key expansion";
    const std::size_t block_length = 2 * (s.key_length + s.fixed_iv_length);
    const auto block = prf->derive_key(
        block_length, s.master_secret.data(), s.master_secret.size(), seed.data(), seed.size(),
        reinterpret_cast<const std::uint8_t*>(label.data()), label.size());
    const std::uint8_t* p = block.data();
    const std::uint8_t* client_key = p;
    const std::uint8_t* server_key = p + s.key_length;
    const std::uint8_t* client_iv = p + 2 * s.key_length;
    const std::uint8_t* server_iv = client_iv + s.fixed_iv_length;

    std::unique_ptr<record_layer> r(new record_layer());
    r->cipher_ = s.cipher;
    r->write_key_.assign(server ? server_key : client_key,
                         (server ? server_key : client_key) + s.key_length);
    r->read_key_.assign(server ? client_key : server_key,
                        (server ? client_key : server_key) + s.key_length);
    (void)r->writer();  // both keys usable now, not at the first record
    (void)r->reader();
    r->write_iv_.assign(server ? server_iv : client_iv,
                        (server ? server_iv : client_iv) + s.fixed_iv_length);
    r->read_iv_.assign(server ? client_iv : server_iv,
                       (server ? client_iv : server_iv) + s.fixed_iv_length);
    r->explicit_nonce_ = s.fixed_iv_length == 4;
    r->write_seq_ = s.next_write_sequence;
    r->read_seq_ = s.next_read_sequence;
    return r;
  } catch (const std::exception&) {
    error = make_error_code(transport_errc::tls_error);
    return nullptr;
  }
}

record_layer::~record_layer() {
  drop(writer_);
  drop(reader_);
}

void record_layer::drop(std::unique_ptr<Botan::AEAD_Mode>& cipher) noexcept {
  if (!cipher) return;
  cipher.reset();
  ciphers_alive.fetch_sub(1, std::memory_order_relaxed);
}

Botan::AEAD_Mode& record_layer::writer() {
  if (!writer_) {
    writer_ = Botan::AEAD_Mode::create_or_throw(cipher_, Botan::ENCRYPTION);
    writer_->set_key(write_key_);
    ciphers_alive.fetch_add(1, std::memory_order_relaxed);
  }
  return *writer_;
}

Botan::AEAD_Mode& record_layer::reader() {
  if (!reader_) {
    reader_ = Botan::AEAD_Mode::create_or_throw(cipher_, Botan::DECRYPTION);
    reader_->set_key(read_key_);
    ciphers_alive.fetch_add(1, std::memory_order_relaxed);
  }
  return *reader_;
}

void record_layer::release_ciphers() noexcept {
  if (!over_cipher_budget()) return;
  drop(writer_);
  drop(reader_);
}

void record_layer::release_reader() noexcept {
  if (over_cipher_budget()) drop(reader_);
}

std::vector<std::uint8_t> record_layer::nonce(const std::vector<std::uint8_t>& fixed,
                                              std::uint64_t seq,
                                              const std::uint8_t* explicit_part) const {
  std::vector<std::uint8_t> n(12, 0);
  if (explicit_nonce_) {
    // RFC 5288 3: the 4-byte salt, then the 8 bytes sent before the record (our sequence
    // number when we write it, as Botan and OpenSSL do).
    std::copy(fixed.begin(), fixed.end(), n.begin());
    std::copy(explicit_part, explicit_part + explicit_nonce_length, n.begin() + 4);
  } else {
    // RFC 7905 2: the 12-byte IV XOR the sequence number, left-padded.
    std::copy(fixed.begin(), fixed.end(), n.begin());
    std::array<std::uint8_t, 8> s{};
    Botan::store_be(seq, s.data());
    for (std::size_t i = 0; i < 8; ++i) n[4 + i] ^= s[i];
  }
  return n;
}

void record_layer::protect(record_type type, const std::uint8_t* data, std::size_t size,
                           std::vector<std::uint8_t>& out) {
  std::size_t done = 0;
  do {
    const std::size_t length = std::min(size - done, max_record_plaintext);
    const std::uint64_t seq = write_seq_++;
    std::array<std::uint8_t, explicit_nonce_length> explicit_part{};
    Botan::store_be(seq, explicit_part.data());
    const auto n = nonce(write_iv_, seq, explicit_part.data());
    const auto ad = additional_data(seq, type, length);
    Botan::secure_vector<std::uint8_t> sealed(data + done, data + done + length);
    auto& w = writer();
    w.set_associated_data(ad.data(), ad.size());
    w.start(n.data(), n.size());
    w.finish(sealed);
    const std::size_t fragment = (explicit_nonce_ ? explicit_nonce_length : 0) + sealed.size();
    out.push_back(static_cast<std::uint8_t>(type));
    out.push_back(tls12_major);
    out.push_back(tls12_minor);
    out.push_back(static_cast<std::uint8_t>(fragment >> 8));
    out.push_back(static_cast<std::uint8_t>(fragment));
    if (explicit_nonce_) out.insert(out.end(), explicit_part.begin(), explicit_part.end());
    out.insert(out.end(), sealed.begin(), sealed.end());
    done += length;
  } while (done < size);
}

std::error_code record_layer::open(const std::uint8_t* data, std::size_t size, opened_record& out) {
  const auto bad = make_error_code(transport_errc::tls_error);
  if (size < record_header_size) return bad;
  const std::size_t fragment = (std::size_t{data[3]} << 8) | data[4];
  const std::size_t overhead = (explicit_nonce_ ? explicit_nonce_length : 0) + tag_length;
  if (data[1] != tls12_major || data[2] != tls12_minor || fragment + record_header_size != size ||
      fragment < overhead || fragment > max_record_plaintext + max_record_expansion) {
    return bad;
  }
  const auto type = static_cast<record_type>(data[0]);
  const std::uint8_t* body = data + record_header_size;
  const std::uint64_t seq = read_seq_;
  const auto n = nonce(read_iv_, seq, body);
  const std::size_t plain_length = fragment - overhead;
  const auto ad = additional_data(seq, type, plain_length);
  const std::uint8_t* sealed = body + (explicit_nonce_ ? explicit_nonce_length : 0);
  Botan::secure_vector<std::uint8_t> opened(sealed, sealed + plain_length + tag_length);
  try {
    auto& r = reader();
    r.set_associated_data(ad.data(), ad.size());
    r.start(n.data(), n.size());
    r.finish(opened);
  } catch (const std::exception&) {
    return bad;  // bad_record_mac (RFC 5246 7.2.2)
  }
  ++read_seq_;
  out.type = type;
  out.plaintext.assign(opened.begin(), opened.end());
  return {};
}

}  // namespace p2psip::transport::detail

namespace p2psip::transport {

void set_cipher_budget(std::size_t cipher_objects) noexcept {
  detail::cipher_budget.store(cipher_objects, std::memory_order_relaxed);
}

std::size_t ciphers_held() noexcept {
  return detail::ciphers_alive.load(std::memory_order_relaxed);
}

}  // namespace p2psip::transport
