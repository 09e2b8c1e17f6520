#include "p2psip/protocol/errors.hpp"

#include <string>

namespace p2psip::protocol {
namespace {

class codec_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "p2psip.codec"; }
  std::string message(int value) const override {
    switch (static_cast<codec_errc>(value)) {
      case codec_errc::ok: return "ok";
      case codec_errc::truncated: return "truncated";
      case codec_errc::trailing_bytes: return "trailing bytes";
      case codec_errc::bad_length: return "bad length";
      case codec_errc::bad_token: return "bad RELOAD token";
      case codec_errc::unsupported_version: return "unsupported RELOAD version";
      case codec_errc::invalid_value: return "invalid value";
      case codec_errc::unknown_type: return "unknown type";
      case codec_errc::limit_exceeded: return "limit exceeded";
      case codec_errc::fragmented: return "message is a fragment";
      case codec_errc::value_too_long: return "value too long for its field";
      case codec_errc::unknown_data_model: return "unknown data model for kind";
      case codec_errc::duplicate_entry: return "duplicate entry";
      case codec_errc::wrong_id_length: return "Node-ID length differs from the overlay's";
    }
    return "unknown codec error";
  }
};

class reload_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "reload"; }
  std::string message(int value) const override {
    const auto name = reload_error_name(static_cast<std::uint16_t>(value));
    return name.empty() ? "RELOAD error " + std::to_string(value) : std::string(name);
  }
};

}  // namespace

const std::error_category& codec_category() noexcept {
  static const codec_category_impl instance;
  return instance;
}
std::error_code make_error_code(codec_errc e) noexcept {
  return {static_cast<int>(e), codec_category()};
}
const std::error_category& reload_category() noexcept {
  static const reload_category_impl instance;
  return instance;
}
std::error_code make_error_code(reload_errc e) noexcept {
  return {static_cast<int>(e), reload_category()};
}

std::string_view reload_error_name(std::uint16_t code) noexcept {
  switch (code) {
    case 0: return "invalid";
    case 2: return "Error_Forbidden";
    case 3: return "Error_Not_Found";
    case 4: return "Error_Request_Timeout";
    case 5: return "Error_Generation_Counter_Too_Low";
    case 6: return "Error_Incompatible_with_Overlay";
    case 7: return "Error_Unsupported_Forwarding_Option";
    case 8: return "Error_Data_Too_Large";
    case 9: return "Error_Data_Too_Old";
    case 10: return "Error_TTL_Exceeded";
    case 11: return "Error_Message_Too_Large";
    case 12: return "Error_Unknown_Kind";
    case 13: return "Error_Unknown_Extension";
    case 14: return "Error_Response_Too_Large";
    case 15: return "Error_Config_Too_Old";
    case 16: return "Error_Config_Too_New";
    case 17: return "Error_In_Progress";
    case 18: return "Error_Exp_A";
    case 19: return "Error_Exp_B";
    case 20: return "Error_Invalid_Message";
    case 101: return "Error_Underlay_Destination_Unreachable";
    case 102: return "Error_Underlay_Time_Exceeded";
    case 103: return "Error_Message_Expired";
    case 104: return "Error_Upstream_Misrouting";
    case 105: return "Error_Loop_Detected";
    case 106: return "Error_TTL_Hops_Exceeded";
    default: return {};
  }
}

std::string decode_error::message() const {
  std::string out = make_error_code(code).message();
  out += " at offset ";
  out += std::to_string(offset);
  if (field != nullptr && *field != '\0') {
    out += " in ";
    out += field;
  }
  return out;
}

}  // namespace p2psip::protocol
