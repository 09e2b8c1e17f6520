#include "p2psip/protocol/ids.hpp"

#include <botan/hash.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace p2psip::protocol {

std::optional<node_id> node_id::from_bytes(byte_view v) noexcept {
  if (v.size() < min_node_id_length || v.size() > max_node_id_length) return std::nullopt;
  node_id id;
  std::copy(v.begin(), v.end(), id.bytes_.begin());
  id.size_ = static_cast<std::uint8_t>(v.size());
  return id;
}

std::optional<node_id> node_id::from_hex(std::string_view hex) noexcept {
  bytes raw;
  if (!protocol::from_hex(hex, raw)) return std::nullopt;
  return from_bytes(raw);
}

node_id node_id::wildcard(std::size_t length) noexcept {
  node_id id;
  id.size_ = static_cast<std::uint8_t>(std::clamp(length, min_node_id_length, max_node_id_length));
  std::fill_n(id.bytes_.begin(), id.size_, std::uint8_t{0xFF});
  return id;
}

node_id node_id::power_of_two(unsigned bit, std::size_t length) noexcept {
  node_id id;
  id.size_ = static_cast<std::uint8_t>(std::clamp(length, min_node_id_length, max_node_id_length));
  if (bit < 8u * id.size_) {
    const std::size_t byte_from_end = bit / 8;
    id.bytes_[id.size_ - 1 - byte_from_end] = static_cast<std::uint8_t>(1u << (bit % 8));
  }
  return id;
}

int node_id::highest_bit() const noexcept {
  for (std::size_t i = 0; i < size_; ++i) {
    const unsigned byte = bytes_[i];
    if (byte == 0) continue;
    int bit = 7;
    while (((byte >> bit) & 1u) == 0) --bit;
    return static_cast<int>((size_ - 1 - i) * 8) + bit;
  }
  return -1;
}

bool node_id::is_wildcard() const noexcept {
  return std::all_of(bytes_.begin(), bytes_.begin() + size_,
                     [](std::uint8_t b) { return b == 0xFF; });
}

bool node_id::is_zero() const noexcept {
  return std::all_of(bytes_.begin(), bytes_.begin() + size_, [](std::uint8_t b) { return b == 0; });
}

node_id node_id::operator+(const node_id& other) const noexcept {
  node_id out = *this;
  unsigned carry = 0;
  for (std::size_t i = size_; i-- > 0;) {
    const unsigned sum = unsigned{bytes_[i]} + unsigned{other.bytes_[i]} + carry;
    out.bytes_[i] = static_cast<std::uint8_t>(sum & 0xFF);
    carry = sum >> 8;
  }
  return out;
}

node_id node_id::operator-(const node_id& other) const noexcept {
  node_id out = *this;
  int borrow = 0;
  for (std::size_t i = size_; i-- > 0;) {
    int diff = int{bytes_[i]} - int{other.bytes_[i]} - borrow;
    borrow = diff < 0 ? 1 : 0;
    if (diff < 0) diff += 256;
    out.bytes_[i] = static_cast<std::uint8_t>(diff);
  }
  return out;
}

node_id node_id::next() const noexcept {
  return *this + power_of_two(0, size_);
}

std::strong_ordering operator<=>(const node_id& a, const node_id& b) noexcept {
  if (a.size_ != b.size_) return a.size_ <=> b.size_;
  const int c = std::memcmp(a.bytes_.data(), b.bytes_.data(), a.size_);
  return c < 0 ? std::strong_ordering::less
               : (c > 0 ? std::strong_ordering::greater : std::strong_ordering::equal);
}

node_id ring_distance(const node_id& from, const node_id& to) noexcept {
  return to - from;
}

bool in_open_interval(const node_id& x, const node_id& a, const node_id& b) noexcept {
  if (a == b) return x != a;
  const node_id dx = ring_distance(a, x);
  const node_id db = ring_distance(a, b);
  return !dx.is_zero() && dx < db;
}

bool in_half_open_interval(const node_id& x, const node_id& a, const node_id& b) noexcept {
  if (a == b) return true;  // a lone peer owns the whole ring
  const node_id dx = ring_distance(a, x);
  const node_id db = ring_distance(a, b);
  return !dx.is_zero() && dx <= db;
}

node_id finger_target(const node_id& self, unsigned i) noexcept {
  const unsigned bits = 8u * static_cast<unsigned>(self.size());
  if (i == 0 || i > bits) return self;
  return self + node_id::power_of_two(bits - i, self.size());
}

namespace {
bytes sha1(byte_view data) {
  // One object per thread, reused (final() resets it): creating a Botan hash looks its name up
  // and allocates, which cost more than hashing an AOR (a share of every SIP REGISTER's profile).
  thread_local const std::unique_ptr<Botan::HashFunction> hash =
      Botan::HashFunction::create_or_throw("SHA-1");
  hash->update(data.data(), data.size());
  bytes digest(hash->output_length());
  hash->final(digest.data());
  return digest;
}
}  // namespace

resource_id hash_resource_name(byte_view name, std::size_t length) {
  bytes digest = sha1(name);
  // SHA-1 gives 20 bytes, which covers every allowed NodeIdLength (16..20).
  digest.resize(std::clamp(length, min_node_id_length, max_node_id_length));
  return resource_id{std::move(digest)};
}

std::uint32_t overlay_hash(std::string_view overlay_name) {
  const bytes digest =
      sha1(byte_view(reinterpret_cast<const std::uint8_t*>(overlay_name.data()),  // NOLINT
                     overlay_name.size()));
  return (std::uint32_t{digest[16]} << 24) | (std::uint32_t{digest[17]} << 16) |
         (std::uint32_t{digest[18]} << 8) | digest[19];
}

}  // namespace p2psip::protocol

std::size_t std::hash<p2psip::protocol::node_id>::operator()(
    const p2psip::protocol::node_id& id) const noexcept {
  // Node-IDs are random, so their low bytes are already a good hash.
  std::size_t h = 0;
  const auto v = id.view();
  for (std::size_t i = v.size() >= 8 ? v.size() - 8 : 0; i < v.size(); ++i) h = (h << 8) | v[i];
  return h;
}
