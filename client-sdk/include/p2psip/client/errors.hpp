#pragma once
// Errors of the p2psip client SDK. Every operation reports one of these codes (category
// "p2psip.client") with a one-line message saying what failed and where.

#include <string>
#include <system_error>
#include <utility>
#include <variant>

/// Marks what libp2psip-client exports (everything else in it is hidden).
#if defined(__GNUC__) || defined(__clang__)
#define P2PSIP_CLIENT_API __attribute__((visibility("default")))
#else
#define P2PSIP_CLIENT_API
#endif

namespace p2psip::client {

enum class errc {
  invalid_argument = 1,  ///< bad name, kind, value or selection (nothing was sent)
  bad_configuration,     ///< overlay configuration unreadable, invalid, expired or another overlay
  bad_credentials,       ///< certificate or key unreadable, mismatched, or not from the overlay CA
  no_peer,               ///< no peer could be attached to within the time allowed
  timeout,               ///< no answer within the operation's time (after retries)
  not_found,             ///< the overlay has nothing there (Error_Not_Found)
  forbidden,             ///< refused by the access policy or signature checks (Error_Forbidden)
  unknown_kind,          ///< the kind is not in the overlay configuration (Error_Unknown_Kind)
  too_large,             ///< value or message over the overlay's limits (Error_Data_Too_Large ...)
  generation_conflict,   ///< the stored generation moved on (Error_Generation_Counter_Too_Low)
  invalid_answer,        ///< the answer was malformed or its values' signatures did not verify
  overlay_error,         ///< another RELOAD error response; the message carries its code and text
  stopped,               ///< the client was stopped (or destroyed) before the operation finished
  would_deadlock,        ///< a blocking call from the client's own I/O thread (use the callback)
};

P2PSIP_CLIENT_API const std::error_category& client_category() noexcept;
P2PSIP_CLIENT_API std::error_code make_error_code(errc e) noexcept;

/// An error code and a one-line message with the details ("node.key: no PRIVATE KEY block ...",
/// "Error_Forbidden from 4f2a...: value not signed by the entry's owner").
struct error {
  std::error_code code;
  std::string message;
};

/// A value or an error (the SDK's std::expected). Accessing the wrong side is a programming error
/// and throws std::bad_variant_access.
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit on purpose
  result(struct error e) : v_(std::in_place_index<1>, std::move(e)) {}  // NOLINT
  result(errc code, std::string message)
      : v_(std::in_place_index<1>,
           p2psip::client::error{make_error_code(code), std::move(message)}) {}

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const struct error& error() const { return std::get<1>(v_); }
  std::error_code code() const noexcept {
    return has_value() ? std::error_code{} : std::get<1>(v_).code;
  }

 private:
  std::variant<T, struct error> v_;
};

/// result<void>: success, or an error.
struct ok {};
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(ok) {}                                                // NOLINT
  result(struct error e) : e_(std::move(e)), failed_(true) {}  // NOLINT
  result(errc code, std::string message)
      : e_{make_error_code(code), std::move(message)}, failed_(true) {}

  bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return !failed_; }
  const struct error& error() const noexcept { return e_; }
  std::error_code code() const noexcept { return failed_ ? e_.code : std::error_code{}; }

 private:
  struct error e_;
  bool failed_ = false;
};

}  // namespace p2psip::client

template <>
struct std::is_error_code_enum<p2psip::client::errc> : std::true_type {};
