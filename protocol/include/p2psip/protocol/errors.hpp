#pragma once
// Error categories of the codec, the RELOAD Error-Code registry (RFC 6940 section 14.9), and
// error_record: a code plus a message, the error value of the libraries above the codec.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace p2psip::protocol {

/// Why bytes could not be decoded (or a value could not be encoded).
enum class codec_errc {
  ok = 0,
  truncated = 1,        ///< input ended inside a field
  trailing_bytes,       ///< bytes left after a structure that must fill its container
  bad_length,           ///< a length field disagrees with the bytes present or with its bounds
  bad_token,            ///< forwarding header does not start with 0xD2454C4F
  unsupported_version,  ///< forwarding header version is not 0x0A (RFC 6940)
  invalid_value,        ///< a field holds a value its type forbids (enum 0, boolean 2, ...)
  unknown_type,         ///< a select tag this implementation does not know
  limit_exceeded,       ///< a configured limit (message size, list entries, ...) was exceeded
  fragmented,           ///< a fragment was given where a whole message is needed
  value_too_long,       ///< encode: a value does not fit its length prefix
  unknown_data_model,   ///< a kind's data model is needed but not known
  duplicate_entry,      ///< a list holds the same entry twice where the RFC forbids it
  wrong_id_length,      ///< a Node-ID with a length other than the overlay's
};

const std::error_category& codec_category() noexcept;
std::error_code make_error_code(codec_errc e) noexcept;

/// RELOAD Error-Codes carried in an ErrorResponse (RFC 6940 section 14.9; 101-106 from RFC 7851).
enum class reload_errc : std::uint16_t {
  invalid = 0,
  forbidden = 2,                           ///< Error_Forbidden
  not_found = 3,                           ///< Error_Not_Found
  request_timeout = 4,                     ///< Error_Request_Timeout
  generation_counter_too_low = 5,          ///< Error_Generation_Counter_Too_Low
  incompatible_with_overlay = 6,           ///< Error_Incompatible_with_Overlay
  unsupported_forwarding_option = 7,       ///< Error_Unsupported_Forwarding_Option
  data_too_large = 8,                      ///< Error_Data_Too_Large
  data_too_old = 9,                        ///< Error_Data_Too_Old
  ttl_exceeded = 10,                       ///< Error_TTL_Exceeded
  message_too_large = 11,                  ///< Error_Message_Too_Large
  unknown_kind = 12,                       ///< Error_Unknown_Kind
  unknown_extension = 13,                  ///< Error_Unknown_Extension
  response_too_large = 14,                 ///< Error_Response_Too_Large
  config_too_old = 15,                     ///< Error_Config_Too_Old
  config_too_new = 16,                     ///< Error_Config_Too_New
  in_progress = 17,                        ///< Error_In_Progress
  exp_a = 18,                              ///< Error_Exp_A (experimental)
  exp_b = 19,                              ///< Error_Exp_B (experimental)
  invalid_message = 20,                    ///< Error_Invalid_Message
  underlay_destination_unreachable = 101,  ///< RFC 7851
  underlay_time_exceeded = 102,            ///< RFC 7851
  message_expired = 103,                   ///< RFC 7851
  upstream_misrouting = 104,               ///< RFC 7851
  loop_detected = 105,                     ///< RFC 7851
  ttl_hops_exceeded = 106,                 ///< RFC 7851
};

/// What a peer answers when the response would exceed the request's max_response_length. RFC 6940
/// section 6.3.2 says Error_Incompatible_with_Overlay, its registry has Error_Response_Too_Large
/// "for exactly this"; we send the specific one and accept either (docs/conformance.md).
inline constexpr reload_errc response_too_large_error = reload_errc::response_too_large;
/// What a peer answers when a Store would exceed a kind's max-count. The RFC names an error only
/// for max-size (Error_Data_Too_Large); we use the same one for count (docs/conformance.md).
inline constexpr reload_errc max_count_exceeded_error = reload_errc::data_too_large;

const std::error_category& reload_category() noexcept;
std::error_code make_error_code(reload_errc e) noexcept;

/// The registry name of an Error-Code ("Error_Forbidden"), or empty for an unassigned one.
std::string_view reload_error_name(std::uint16_t code) noexcept;

/// A failure reported to a person and to a program, the one shape used by config, crypto
/// (credentials), storage and the node runtime. Decoding keeps its own decode_error (offset and
/// field, no allocation).
struct error_record {
  /// What programs branch on: an enumerator of the reporting library's category (config_errc,
  /// crypto_errc, storage_errc, node::setup_errc, ...), never a parsed message.
  std::error_code code;
  /// The one line shown to people, naming the file, element or field and the cause:
  /// "overlay.xml: configuration/node-id-length: 12 is outside 16..20". Tests, the CLI and the
  /// daemon print it as it is.
  std::string message;
};

/// Where and why decoding stopped: the first failure the reader met.
struct decode_error {
  codec_errc code = codec_errc::ok;
  const char* field = "";  ///< RFC name of the field being read ("forwarding_header.length")
  std::size_t offset = 0;  ///< byte offset into the whole input where the failing field starts

  std::error_code error_code() const noexcept { return make_error_code(code); }
  /// One line: "truncated at offset 12 in forwarding_header.length".
  std::string message() const;
  operator std::error_code() const noexcept { return error_code(); }  // NOLINT: convenience
};

}  // namespace p2psip::protocol

template <>
struct std::is_error_code_enum<p2psip::protocol::codec_errc> : std::true_type {};
template <>
struct std::is_error_code_enum<p2psip::protocol::reload_errc> : std::true_type {};
