#pragma once
// The threads an SDK process runs for its clients: one I/O thread (and its io_context) shared by
// every client, made with the first client and ended after the last one goes. A thread costs an
// idle client more than anything it holds itself: its stack pages, a read buffer per thread
// (io_util.hpp) and glibc's per-thread cache of freed chunks, which the TLS handshake fills
// (docs/benchmarks.md, "An idle SDK client"). Internal to the SDK.

#include <memory>
#include <mutex>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

namespace p2psip::client::detail {

/// A thread running an io_context until the object goes. Clients share one (shared_io_thread);
/// everything of a client (its node, links, timers, SIP agent) runs on it, so one client's
/// handler delays every other client's.
class io_thread {
 public:
  /// Starts the thread ("p2psip-io" in ps/top). Throws std::system_error when no thread can be
  /// had, as std::thread does.
  io_thread();
  /// Ends the thread: stops the io_context (every client of it is gone by then: each holds the
  /// object) and joins it; on the thread itself (the last client let go by one of its own
  /// handlers) it detaches instead, and the thread ends once that handler returns.
  ~io_thread();
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;

  asio::io_context& context() noexcept { return core_->io; }
  /// Whether the calling thread is this one.
  bool is_current() const noexcept { return std::this_thread::get_id() == id_; }

 private:
  /// What the thread uses, shared with it: a detached thread outlives this object.
  struct core {
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  };
  std::shared_ptr<core> core_ = std::make_shared<core>();
  std::thread thread_;
  std::thread::id id_;
};

/// Whether the calling thread is an SDK I/O thread (of any io_thread). Such a thread must never
/// wait for another SDK thread: every client's I/O waits on it.
bool on_an_io_thread() noexcept;

/// The process's live one of `T` (default-constructed), or a new one when no client holds one.
/// The registry keeps a weak reference only, so it ends with its last holder, like the overlay
/// setups (shared_overlay.hpp). Thread-safe. Throws what T's constructor throws.
template <class T>
std::shared_ptr<T> process_shared() {
  static std::mutex mutex;
  static std::weak_ptr<T> current;  // never destroyed before a client: clients hold it
  std::lock_guard lock(mutex);
  if (auto held = current.lock()) return held;
  auto made = std::make_shared<T>();
  current = made;
  return made;
}

}  // namespace p2psip::client::detail
