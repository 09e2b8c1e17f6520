#include "p2psip/tool/exit_codes.hpp"

#include <algorithm>

namespace p2psip::tool {

std::string_view meaning(exit_code c) noexcept {
  switch (c) {
    case exit_code::ok: return "success";
    case exit_code::failure: return "any other error";
    case exit_code::usage:
      return "usage error (unknown command or option, missing or malformed argument)";
    case exit_code::not_found: return "not found";
    case exit_code::forbidden: return "forbidden (refused by the overlay's access policy)";
    case exit_code::network: return "network (no peer reached, no answer in time)";
    case exit_code::configuration:
      return "bad configuration or credentials (missing, unreadable or invalid)";
    case exit_code::invalid: return "too large, unknown kind, or an argument the overlay refuses";
    case exit_code::sip_error: return "a SIP final response of 300 or more";
  }
  return "unknown";
}

std::string exit_codes_help(std::initializer_list<std::pair<exit_code, std::string_view>> codes) {
  std::string out = "\nExit status:\n";
  for (const auto& [code, detail] : codes) {
    out += "  " + std::to_string(status(code)) + "  ";
    out += meaning(code);
    out += '\n';
    // The tool's own detail below, each of its lines indented under the meaning.
    std::size_t start = 0;
    while (start < detail.size()) {
      const auto end = std::min(detail.find('\n', start), detail.size());
      out += "     ";
      out += detail.substr(start, end - start);
      out += '\n';
      start = end + 1;
    }
  }
  return out;
}

}  // namespace p2psip::tool
