#pragma once
// Appends RELOAD's presentation language to a byte vector. Length prefixes are back-patched, so the
// same code computes sizes and writes bytes (signature input is built with this writer too).

#include <cstddef>
#include <cstdint>
#include <system_error>

#include "p2psip/protocol/bytes.hpp"
#include "p2psip/protocol/errors.hpp"
#include "p2psip/protocol/reader.hpp"

namespace p2psip::protocol {

class writer {
 public:
  /// Appends to `out` (which may already hold bytes).
  explicit writer(bytes& out) noexcept : out_(&out) {}

  void u8(std::uint8_t v);
  void u16(std::uint16_t v);
  void u24(std::uint32_t v);  ///< fails with value_too_long above 2^24-1
  void u32(std::uint32_t v);
  void u64(std::uint64_t v);
  void boolean(bool v) { u8(v ? 1 : 0); }
  void raw(byte_view v);
  /// `opaque x<0..max>`: prefix then bytes; fails when v is longer than max.
  void opaque(int prefix_bytes, std::size_t max, byte_view v, const char* field);

  /// A length-prefixed vector whose contents `body` writes; the prefix is patched afterwards.
  template <class F>
  void vector(int prefix_bytes, std::size_t max, const char* field, F&& body) {
    const std::size_t mark = begin_vector(prefix_bytes);
    body();
    end_vector(mark, prefix_bytes, max, field);
  }

  std::size_t begin_vector(int prefix_bytes);
  void end_vector(std::size_t mark, int prefix_bytes, std::size_t max, const char* field);

  /// Records a failure (only the first is kept).
  void fail(codec_errc code, const char* field) noexcept;
  bool ok() const noexcept { return code_ == codec_errc::ok; }
  std::error_code error() const noexcept { return make_error_code(code_); }
  const char* error_field() const noexcept { return field_; }
  std::size_t size() const noexcept { return out_->size(); }
  bytes& buffer() noexcept { return *out_; }

 private:
  bytes* out_;
  codec_errc code_ = codec_errc::ok;
  const char* field_ = "";
};

}  // namespace p2psip::protocol
