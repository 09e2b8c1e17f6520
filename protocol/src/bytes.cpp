#include "p2psip/protocol/bytes.hpp"

#include <botan/exceptn.h>
#include <botan/hex.h>

#include <algorithm>
#include <iterator>

namespace p2psip::protocol {

// Botan's hex codec rather than a table of our own (one less copy to keep right).
std::string to_hex(byte_view v) {
  return Botan::hex_encode(v.data(), v.size(), false);
}

bool from_hex(std::string_view text, bytes& out) {
  // Botan skips ASCII whitespace itself; ':' separators (as tshark prints bytes) go first.
  std::string digits;
  digits.reserve(text.size());
  std::copy_if(text.begin(), text.end(), std::back_inserter(digits),
               [](char c) { return c != ':'; });
  const auto significant = std::count_if(digits.begin(), digits.end(), [](char c) {
    return c != ' ' && c != '\n' && c != '\r' && c != '\t';
  });
  if (significant % 2 != 0) return false;
  bytes result(digits.size() / 2);
  try {
    result.resize(Botan::hex_decode(result.data(), digits.data(), digits.size(), true));
  } catch (const Botan::Exception&) {
    return false;
  }
  out = std::move(result);
  return true;
}

}  // namespace p2psip::protocol
