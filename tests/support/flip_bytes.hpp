#pragma once
// Damages a file the way a bad disk sector would, for tests of what reads it back: the last byte
// of every copy of a known byte string (a stored value's bytes inside its SQLite row) flipped.

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

namespace p2psip::test {

/// Flips the lowest bit of the last byte of every copy of `needle` in `file`; returns how many.
inline std::size_t flip_bytes(const std::filesystem::path& file, std::string_view needle) {
  std::string content;
  {
    std::ifstream in(file, std::ios::binary);
    content.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::size_t flipped = 0;
  for (auto at = content.find(needle); at != std::string::npos; at = content.find(needle, at + 1)) {
    content[at + needle.size() - 1] ^= 0x01;
    ++flipped;
  }
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  return flipped;
}

}  // namespace p2psip::test
