#include "p2psip/transport/rate_limit.hpp"

#include <algorithm>

namespace p2psip::transport {

token_bucket::token_bucket(std::uint32_t rate, std::uint32_t burst, time_point now) noexcept
    : rate_(rate),
      burst_(std::max<std::uint32_t>(burst, 1)),
      level_(static_cast<std::uint64_t>(burst_) * scale),
      last_(now) {}

void token_bucket::refill(time_point now) noexcept {
  if (now <= last_) return;
  const std::uint64_t cap = static_cast<std::uint64_t>(burst_) * scale;  // <= 4.3e15
  const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(now - last_).count();
  // Microseconds after which the bucket is full anyway: clamping here keeps elapsed * rate below
  // cap + rate, far from overflow.
  const std::uint64_t full_after = cap / std::max<std::uint64_t>(rate_, 1) + 1;
  const std::uint64_t us = std::min(static_cast<std::uint64_t>(elapsed), full_after);
  level_ = std::min(cap, level_ + us * rate_);
  // Keep the sub-microsecond remainder for the next refill so frequent calls lose nothing.
  last_ += std::chrono::microseconds(elapsed);
}

bool token_bucket::take(time_point now) noexcept {
  if (rate_ == 0) return true;
  refill(now);
  if (level_ < scale) return false;
  level_ -= scale;
  return true;
}

std::uint64_t token_bucket::available(time_point now) noexcept {
  if (rate_ == 0) return burst_;
  refill(now);
  return level_ / scale;
}

}  // namespace p2psip::transport
