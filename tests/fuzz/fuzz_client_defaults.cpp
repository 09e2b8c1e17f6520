// Fuzz target: p2psip-client's per-user defaults file (client-sdk/cli/defaults.cpp, what
// `p2psip-client setup` writes and every later call reads) on arbitrary text. Invariants: nothing
// crashes; a refusal names the file and its line; defaults that parse, written out again by
// format_defaults, parse back to the same defaults.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "defaults.hpp"

namespace cli = p2psip::client_cli;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string file = "/home/u/.config/p2psip/client.conf";
  auto parsed = cli::parse_defaults(text, file);
  if (const auto* error = std::get_if<std::string>(&parsed)) {
    if (error->rfind(file + ":", 0) != 0) std::abort();
    return 0;
  }
  const auto& d = std::get<cli::client_defaults>(parsed);
  auto again = cli::parse_defaults(cli::format_defaults(d), file);
  const auto* same = std::get_if<cli::client_defaults>(&again);
  if (same == nullptr || *same != d) std::abort();
  return 0;
}
