#pragma once
// A bounded reader in RELOAD's presentation language (RFC 6940 section 6.3.1): it records the first
// failure with the field name and offset, never reads past its end, and yields zeros once failed so
// that decoders can read straight through and check ok() once.

#include <cstddef>
#include <cstdint>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/errors.hpp"

namespace p2psip::protocol {

/// Largest value a length prefix of `prefix_bytes` bytes can hold.
constexpr std::size_t max_for_prefix(int prefix_bytes) noexcept {
  return prefix_bytes >= 8 ? SIZE_MAX : (std::size_t{1} << (8 * prefix_bytes)) - 1;
}

class reader {
 public:
  /// A root reader over `data`; offsets in errors count from data's first byte.
  explicit reader(byte_view data) noexcept;
  reader(const reader&) = delete;
  reader& operator=(const reader&) = delete;

  std::uint8_t u8(const char* field) noexcept;
  std::uint16_t u16(const char* field) noexcept;
  std::uint32_t u24(const char* field) noexcept;
  std::uint32_t u32(const char* field) noexcept;
  std::uint64_t u64(const char* field) noexcept;
  /// Boolean: one byte, 0 or 1; anything else is invalid_value.
  bool boolean(const char* field) noexcept;

  /// `n` bytes as they stand (a fixed-size array, `T x[n]`).
  byte_view fixed(std::size_t n, const char* field) noexcept;
  /// `opaque x<min..max>` with a `prefix_bytes`-byte length prefix counting bytes.
  byte_view opaque(int prefix_bytes, std::size_t min, std::size_t max, const char* field) noexcept;
  /// A reader over the bytes of a length-prefixed vector (`T x<0..max>`), sharing this error state.
  reader sub(int prefix_bytes, std::size_t max, const char* field) noexcept;
  /// A reader over the next `n` bytes, sharing this error state.
  reader fixed_sub(std::size_t n, const char* field) noexcept;

  /// Records a failure at the current offset (only the first failure is kept).
  void fail(codec_errc code, const char* field) noexcept;
  /// Records a failure at an absolute offset.
  void fail_at(std::size_t offset, codec_errc code, const char* field) noexcept;
  /// Fails with trailing_bytes unless every byte was consumed.
  void expect_done(const char* field) noexcept;

  bool ok() const noexcept { return error_->code == codec_errc::ok; }
  bool at_end() const noexcept { return pos_ == end_; }
  std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - pos_); }
  /// Absolute offset of the next byte to be read.
  std::size_t offset() const noexcept { return static_cast<std::size_t>(pos_ - origin_); }
  /// Bytes not yet read (does not consume them).
  byte_view rest() const noexcept { return {pos_, end_}; }
  /// Consumes and returns everything left.
  byte_view take_rest() noexcept;
  const decode_error& error() const noexcept { return *error_; }

 private:
  reader(const std::uint8_t* origin, const std::uint8_t* begin, const std::uint8_t* end,
         decode_error* shared) noexcept;
  bool need(std::size_t n, const char* field) noexcept;

  const std::uint8_t* origin_;
  const std::uint8_t* pos_;
  const std::uint8_t* end_;
  decode_error own_error_{};
  decode_error* error_;
};

}  // namespace p2psip::protocol
