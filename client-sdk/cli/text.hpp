#pragma once
// Text helpers of p2psip-client: number and range parsing, hex/base64 (Botan's, through
// p2psip::tool_support), UTF-8 checks, how values are shown, times.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace p2psip::client_cli {

using bytes = std::vector<std::uint8_t>;

/// A decimal or 0x-hexadecimal unsigned number that fits `max`; nullopt otherwise.
std::optional<std::uint64_t> parse_unsigned(std::string_view s, std::uint64_t max);

/// "A" or "A-B" (A <= B), each a decimal or 0x-hex uint32.
std::optional<std::pair<std::uint32_t, std::uint32_t>> parse_range(std::string_view s);

/// Lower-case hex of `b`.
std::string hex(const bytes& b);
/// Bytes of an even-length hex string (either case); nullopt if malformed.
std::optional<bytes> unhex(std::string_view s);

/// Standard base64 (RFC 4648 section 4) with padding.
std::string base64(const bytes& b);

/// Whether `b` is well-formed UTF-8 (no overlong forms, surrogates or code points > U+10FFFF).
bool valid_utf8(const bytes& b);
/// Valid UTF-8 without control characters other than tab: safe to print on one line.
bool printable_utf8(const bytes& b);

/// Whether `b` is text: well-formed UTF-8 without NUL (what --json gives as "value").
bool is_text(const bytes& b);

/// A value as one line: itself when printable (and not starting with '"' or "base64:"); other
/// text in double quotes with C escapes (\n, \r, \t, \\, \", \xNN for other control
/// characters); binary (not text) as "base64:" and its base64.
std::string display_value(const bytes& b);
/// A dictionary key as text: itself when printable, else "hex:" and its hex (what --dict-key
/// accepts back).
std::string display_key(const bytes& b);

/// Milliseconds since the Unix epoch as "2026-01-02T03:04:05.678Z".
std::string iso_time(std::uint64_t ms);

/// `s` with line breaks turned into spaces and trailing spaces dropped.
std::string one_line(std::string_view s);

}  // namespace p2psip::client_cli
