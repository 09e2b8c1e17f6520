#pragma once
// Hex and base64 for the tools, computed by Botan (constant-time, tested upstream) rather than
// by hand-written tables.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace p2psip::tool {

/// Lower-case hex of `b`.
std::string to_hex(std::span<const std::uint8_t> b);
/// The bytes of an even-length hex string (either case, no separators); nullopt if malformed.
std::optional<std::vector<std::uint8_t>> from_hex(std::string_view s);
/// Standard base64 (RFC 4648 section 4) with padding.
std::string to_base64(std::span<const std::uint8_t> b);

}  // namespace p2psip::tool
