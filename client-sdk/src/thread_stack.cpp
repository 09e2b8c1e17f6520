#include "thread_stack.hpp"

#include "client_testing.hpp"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace p2psip::client::detail {

std::size_t release_unused_stack(std::size_t keep_below) noexcept {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return 0;
  void* base = nullptr;
  std::size_t size = 0;
  const int got = pthread_attr_getstack(&attr, &base, &size);
  pthread_attr_destroy(&attr);
  if (got != 0 || base == nullptr || size == 0) return 0;

  // The stack grows down from base + size; everything below the current frame less the margin
  // is dead. (A local's address stands for the stack pointer: the margin covers the difference.)
  volatile char here = 0;
  const auto sp = reinterpret_cast<std::uintptr_t>(&here);
  const auto low = reinterpret_cast<std::uintptr_t>(base);
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  if (page == 0 || sp < low || sp - low <= keep_below) return 0;
  const std::uintptr_t end = (sp - keep_below) & ~(page - 1);  // page-aligned, below the margin
  const std::uintptr_t start = (low + page - 1) & ~(page - 1);
  if (end <= start) return 0;
  // MADV_DONTNEED on private anonymous memory drops the pages; the next touch maps a zero page.
  // glibc does the same to the stacks it caches for reuse after a thread ends.
  if (::madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED) != 0) return 0;
  return end - start;
}

}  // namespace p2psip::client::detail

namespace p2psip::client::testing {

std::size_t release_unused_stack() {
  return detail::release_unused_stack();
}

}  // namespace p2psip::client::testing
