#pragma once
// The exit statuses of every p2psip program, one table for all of them: a script that calls
// p2psip-peer, p2psip-client and p2psip-admin reads the same number for the same cause (a
// missing configuration file is 6 everywhere).

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace p2psip::tool {

/// An exit status and what it means; each tool uses the subset that can happen to it.
enum class exit_code : int {
  ok = 0,             ///< success
  failure = 1,        ///< any other error (I/O, malformed input, conflict, invalid answer)
  usage = 2,          ///< unknown command or option, missing or malformed argument
  not_found = 3,      ///< nothing stored / registered there
  forbidden = 4,      ///< refused by the overlay's access policy
  network = 5,        ///< no peer reached, no answer in time
  configuration = 6,  ///< configuration or credentials unreadable or invalid (another overlay)
  invalid = 7,        ///< too large, unknown kind, or an argument the overlay refuses
  sip_error = 8,      ///< a SIP final response of 300 or more
};

/// The status as the int main returns.
constexpr int status(exit_code c) noexcept {
  return static_cast<int>(c);
}

/// The table's one-line meaning of `c`.
std::string_view meaning(exit_code c) noexcept;

/// An "Exit status:" help section listing `codes` with their meanings, each followed by a
/// tool's own detail when given (its lines indented below the meaning; empty: none).
std::string exit_codes_help(std::initializer_list<std::pair<exit_code, std::string_view>> codes);

}  // namespace p2psip::tool
