#include "p2psip/protocol/reader.hpp"

namespace p2psip::protocol {

reader::reader(byte_view data) noexcept
    : origin_(data.data()),
      pos_(data.data()),
      end_(data.data() + data.size()),
      error_(&own_error_) {}

reader::reader(const std::uint8_t* origin, const std::uint8_t* begin, const std::uint8_t* end,
               decode_error* shared) noexcept
    : origin_(origin), pos_(begin), end_(end), error_(shared) {}

void reader::fail_at(std::size_t offset, codec_errc code, const char* field) noexcept {
  if (error_->code == codec_errc::ok) {
    error_->code = code;
    error_->field = field;
    error_->offset = offset;
  }
  pos_ = end_;  // nothing more is read once the input is known to be bad
}

void reader::fail(codec_errc code, const char* field) noexcept {
  fail_at(offset(), code, field);
}

bool reader::need(std::size_t n, const char* field) noexcept {
  if (!ok()) return false;
  if (remaining() < n) {
    fail(codec_errc::truncated, field);
    return false;
  }
  return true;
}

std::uint8_t reader::u8(const char* field) noexcept {
  if (!need(1, field)) return 0;
  return *pos_++;
}

std::uint16_t reader::u16(const char* field) noexcept {
  if (!need(2, field)) return 0;
  const auto v = static_cast<std::uint16_t>((pos_[0] << 8) | pos_[1]);
  pos_ += 2;
  return v;
}

std::uint32_t reader::u24(const char* field) noexcept {
  if (!need(3, field)) return 0;
  const std::uint32_t v = (std::uint32_t{pos_[0]} << 16) | (std::uint32_t{pos_[1]} << 8) | pos_[2];
  pos_ += 3;
  return v;
}

std::uint32_t reader::u32(const char* field) noexcept {
  if (!need(4, field)) return 0;
  const std::uint32_t v = (std::uint32_t{pos_[0]} << 24) | (std::uint32_t{pos_[1]} << 16) |
                          (std::uint32_t{pos_[2]} << 8) | pos_[3];
  pos_ += 4;
  return v;
}

std::uint64_t reader::u64(const char* field) noexcept {
  if (!need(8, field)) return 0;
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | pos_[i];
  pos_ += 8;
  return v;
}

bool reader::boolean(const char* field) noexcept {
  const std::size_t at = offset();
  const auto v = u8(field);
  if (v > 1) fail_at(at, codec_errc::invalid_value, field);
  return v == 1;
}

byte_view reader::fixed(std::size_t n, const char* field) noexcept {
  if (!need(n, field)) return {};
  byte_view out(pos_, n);
  pos_ += n;
  return out;
}

namespace {
std::uint64_t read_prefix(reader& r, int prefix_bytes, const char* field) noexcept {
  switch (prefix_bytes) {
    case 1: return r.u8(field);
    case 2: return r.u16(field);
    case 3: return r.u24(field);
    case 4: return r.u32(field);
    default: return r.u64(field);
  }
}
}  // namespace

byte_view reader::opaque(int prefix_bytes, std::size_t min, std::size_t max,
                         const char* field) noexcept {
  const std::size_t at = offset();
  const std::uint64_t len = read_prefix(*this, prefix_bytes, field);
  if (!ok()) return {};
  if (len < min || len > max) {
    fail_at(at, codec_errc::bad_length, field);
    return {};
  }
  if (remaining() < len) {
    fail_at(at, codec_errc::bad_length, field);
    return {};
  }
  byte_view out(pos_, static_cast<std::size_t>(len));
  pos_ += len;
  return out;
}

reader reader::sub(int prefix_bytes, std::size_t max, const char* field) noexcept {
  const byte_view v = opaque(prefix_bytes, 0, max, field);
  return reader(origin_, v.data() != nullptr ? v.data() : pos_,
                v.data() != nullptr ? v.data() + v.size() : pos_, error_);
}

reader reader::fixed_sub(std::size_t n, const char* field) noexcept {
  const byte_view v = fixed(n, field);
  return reader(origin_, v.data() != nullptr ? v.data() : pos_,
                v.data() != nullptr ? v.data() + v.size() : pos_, error_);
}

void reader::expect_done(const char* field) noexcept {
  if (ok() && pos_ != end_) fail(codec_errc::trailing_bytes, field);
}

byte_view reader::take_rest() noexcept {
  byte_view out(pos_, remaining());
  pos_ = end_;
  return out;
}

}  // namespace p2psip::protocol
