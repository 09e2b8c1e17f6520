// Fuzz target: a configuration document as a ConfigUpdate delivers it from the network (RFC 6940
// 6.5.4): parsed, its signatures checked, and weighed as an update. Invariants: nothing crashes,
// every refusal has a message, and no document is ever newer than itself.

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "p2psip/config/config_document.hpp"
#include "p2psip/config/config_signature.hpp"

namespace cfg = p2psip::config;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // A fixed instant, so that a replay behaves the same on any day.
  const auto now = std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 365 * 56);
  auto doc = cfg::parse_document(text);
  if (!doc) {
    if (doc.error().message.empty()) std::abort();
    return 0;
  }
  if (auto v = cfg::verify_configuration_signature(*doc, now); !v && v.error().message.empty()) {
    std::abort();
  }
  if (cfg::check_config_update(doc->config, *doc, now)) std::abort();
  return 0;
}
