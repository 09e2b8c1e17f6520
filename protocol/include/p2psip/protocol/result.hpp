#pragma once
// A small stand-in for std::expected (not in g++ 12): a value or an error, with expected's member
// names.

#include <cassert>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace p2psip::protocol {

/// Wraps an error so that result<T, E> can be built from it even when T and E could convert.
template <class E>
struct unexpected {
  // A constructor, not an aggregate: clang 14 has no parenthesized aggregate initialization.
  explicit unexpected(E e) : error(std::move(e)) {}
  E error;
};
template <class E>
unexpected(E) -> unexpected<E>;

/// A value of type T or an error of type E; never both, never neither.
template <class T, class E = std::error_code>
class [[nodiscard]] result {
 public:
  using value_type = T;
  using error_type = E;

  result(const T& value)
      : state_(std::in_place_index<0>, value) {}  // NOLINT: implicit like expected
  result(T&& value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  template <class G>
  result(unexpected<G> error) : state_(std::in_place_index<1>, std::move(error.error)) {}  // NOLINT
  template <class G>
  requires(std::is_constructible_v<E, G> && !std::is_constructible_v<T, G> &&
           !std::is_same_v<std::remove_cvref_t<G>, result>) result(G&& error)
      : state_(std::in_place_index<1>, std::forward<G>(error)) {}  // NOLINT

  bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(state_));
  }
  const E& error() const {
    assert(!has_value());
    return std::get<1>(state_);
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(state_) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, E> state_;
};

/// result<void, E>: success or an error.
template <class E>
class [[nodiscard]] result<void, E> {
 public:
  result() = default;
  template <class G>
  result(unexpected<G> error) : error_(std::move(error.error)), failed_(true) {}  // NOLINT
  template <class G>
  requires(std::is_constructible_v<E, G> && !std::is_same_v<std::remove_cvref_t<G>, result>)
      result(G&& error)
      : error_(std::forward<G>(error)), failed_(true) {}  // NOLINT

  bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return !failed_; }
  void value() const { assert(!failed_); }
  const E& error() const {
    assert(failed_);
    return error_;
  }

 private:
  E error_{};
  bool failed_ = false;
};

}  // namespace p2psip::protocol
