// Fuzz target: the SIP users file's parser (peer/sip/users, what p2psip-peer --sip-users reads)
// on arbitrary text. Invariants: nothing crashes; a refusal names the file and says why; users
// that pass are each valid (validate_sip_user) and written out again by format_sip_users they
// parse back to the same users.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "p2psip/peer/sip_users.hpp"

namespace pe = p2psip::peer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto users = pe::parse_sip_users(text, "users.json");
  if (!users) {
    const auto& message = users.error().message;
    if (message.rfind("users.json", 0) != 0 || message.size() <= 10) std::abort();
    return 0;
  }
  for (const auto& u : *users) {
    if (!pe::validate_sip_user(u)) std::abort();
  }
  auto again = pe::parse_sip_users(pe::format_sip_users(*users), "again.json");
  if (!again || *again != *users) std::abort();
  return 0;
}
