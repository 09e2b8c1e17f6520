#include "p2psip/tool/version.hpp"

namespace p2psip::tool {

std::string_view project_version() noexcept {
  return P2PSIP_VERSION_STRING;
}

std::string version_text(std::string_view program) {
  std::string out(program);
  out += " (p2psip) ";
  out += project_version();
  out += "\np2psip: peer-to-peer SIP, RELOAD (RFC 6940) and its SIP usage (RFC 7904).\n";
  return out;
}

}  // namespace p2psip::tool
