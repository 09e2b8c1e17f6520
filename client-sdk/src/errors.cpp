#include "p2psip/client/errors.hpp"

namespace p2psip::client {

namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "p2psip.client"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::invalid_argument: return "invalid argument";
      case errc::bad_configuration: return "bad overlay configuration";
      case errc::bad_credentials: return "bad credentials";
      case errc::no_peer: return "no peer could be attached to";
      case errc::timeout: return "no answer in time";
      case errc::not_found: return "not found";
      case errc::forbidden: return "forbidden";
      case errc::unknown_kind: return "unknown kind";
      case errc::too_large: return "too large";
      case errc::generation_conflict: return "generation counter conflict";
      case errc::invalid_answer: return "invalid answer from the overlay";
      case errc::overlay_error: return "error from the overlay";
      case errc::stopped: return "client stopped";
      case errc::would_deadlock: return "blocking call on the SDK's I/O thread";
    }
    return "unknown p2psip client error";
  }
};

}  // namespace

const std::error_category& client_category() noexcept {
  static const category c;
  return c;
}

std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), client_category()};
}

}  // namespace p2psip::client
