#pragma once
// The process-wide counts behind crypto::signature_totals() (signatures.hpp): bumped where a
// signature value is made (node_identity::sign) and checked (certificate::verify), whatever the
// algorithm. Relaxed atomics: a peer's I/O thread and an SDK's callers may sign at once, and the
// counts only need to add up, not to order anything.

#include <atomic>
#include <cstdint>

namespace p2psip::crypto::detail {

inline std::atomic<std::uint64_t> signatures_made{0};
inline std::atomic<std::uint64_t> signatures_verified{0};

inline void count_signature_made() noexcept {
  signatures_made.fetch_add(1, std::memory_order_relaxed);
}
inline void count_signature_verified() noexcept {
  signatures_verified.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace p2psip::crypto::detail
