#pragma once
// Byte-vector helpers shared by the codec's unit tests.

#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "p2psip/protocol/bytes.hpp"

namespace p2psip::test {

/// Bytes from hex text (spaces and newlines allowed); fails the test on bad hex.
inline protocol::bytes hex(std::string_view h) {
  protocol::bytes out;
  REQUIRE(protocol::from_hex(h, out));
  return out;
}

/// `byte_hex` repeated n times, for long runs inside a hex vector.
inline std::string rep(std::string_view byte_hex, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += byte_hex;
  return out;
}

}  // namespace p2psip::test
