#pragma once
// A token bucket for received messages (nghttp2's lesson: floods of cheap valid messages need a
// rate limit and a misbehaviour count from the start). Sans-I/O: time is a parameter. Integer
// arithmetic in micro-tokens, 64-bit and saturating.

#include <chrono>
#include <cstdint>

namespace p2psip::transport {

/// `rate` tokens per second refill a bucket of at most `burst` tokens; a message takes one.
class token_bucket {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  /// A full bucket at `now`. rate == 0 disables the limit (take() always succeeds).
  token_bucket(std::uint32_t rate, std::uint32_t burst, time_point now) noexcept;

  /// Takes one token if one is available at `now`. Time going backwards adds nothing.
  bool take(time_point now) noexcept;
  /// Whole tokens available at `now` (refills, does not take).
  std::uint64_t available(time_point now) noexcept;

  std::uint32_t rate() const noexcept { return rate_; }
  std::uint32_t burst() const noexcept { return burst_; }

 private:
  void refill(time_point now) noexcept;

  static constexpr std::uint64_t scale = 1'000'000;  ///< micro-tokens per token
  std::uint32_t rate_;
  std::uint32_t burst_;
  std::uint64_t level_;  ///< micro-tokens
  time_point last_;
};

}  // namespace p2psip::transport
