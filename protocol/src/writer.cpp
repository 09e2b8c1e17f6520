#include "p2psip/protocol/writer.hpp"

namespace p2psip::protocol {

void writer::fail(codec_errc code, const char* field) noexcept {
  if (code_ == codec_errc::ok) {
    code_ = code;
    field_ = field;
  }
}

void writer::u8(std::uint8_t v) {
  out_->push_back(v);
}

void writer::u16(std::uint16_t v) {
  out_->push_back(static_cast<std::uint8_t>(v >> 8));
  out_->push_back(static_cast<std::uint8_t>(v));
}

void writer::u24(std::uint32_t v) {
  if (v > 0xFFFFFFu) fail(codec_errc::value_too_long, "uint24");
  out_->push_back(static_cast<std::uint8_t>(v >> 16));
  out_->push_back(static_cast<std::uint8_t>(v >> 8));
  out_->push_back(static_cast<std::uint8_t>(v));
}

void writer::u32(std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out_->push_back(static_cast<std::uint8_t>(v >> shift));
}

void writer::u64(std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out_->push_back(static_cast<std::uint8_t>(v >> shift));
}

void writer::raw(byte_view v) {
  out_->insert(out_->end(), v.begin(), v.end());
}

void writer::opaque(int prefix_bytes, std::size_t max, byte_view v, const char* field) {
  vector(prefix_bytes, max, field, [&] { raw(v); });
}

std::size_t writer::begin_vector(int prefix_bytes) {
  const std::size_t mark = out_->size();
  out_->insert(out_->end(), static_cast<std::size_t>(prefix_bytes), std::uint8_t{0});
  return mark;
}

void writer::end_vector(std::size_t mark, int prefix_bytes, std::size_t max, const char* field) {
  const std::size_t len = out_->size() - mark - static_cast<std::size_t>(prefix_bytes);
  if (len > max || len > max_for_prefix(prefix_bytes)) {
    fail(codec_errc::value_too_long, field);
    return;
  }
  std::uint64_t v = len;
  for (int i = prefix_bytes - 1; i >= 0; --i) {
    (*out_)[mark + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v & 0xFF);
    v >>= 8;
  }
}

}  // namespace p2psip::protocol
