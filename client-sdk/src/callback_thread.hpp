#pragma once
// The SDK's default dispatcher: one thread running callbacks in the order they were posted,
// shared by the clients of a process that have no dispatcher of their own (process_shared in
// io_thread.hpp), and each client's account of the callbacks it has queued there.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include <pthread.h>

#include "io_thread.hpp"

namespace p2psip::client::detail {

/// The default dispatcher: one thread running callbacks in order. The thread starts with the
/// first callback posted: a process whose clients are never called back has no second thread
/// (its stack pages and its malloc cache cost more than anything an idle client holds).
class callback_thread {
 public:
  callback_thread() = default;
  /// Runs what is queued, then ends the thread: joins it, unless called on it or on an I/O
  /// thread (which must not wait for a callback); then the thread runs what is still queued and
  /// ends by itself.
  ~callback_thread() { finish(); }
  callback_thread(const callback_thread&) = delete;
  callback_thread& operator=(const callback_thread&) = delete;

  void post(std::function<void()> f) {
    std::unique_lock lock(state_->mutex);
    state_->queue.push_back(std::move(f));
    if (!started_) {
      std::thread t;
      try {
        t = std::thread([s = state_] { run(*s); });
      } catch (const std::system_error&) {
        return;  // no thread to be had now: the callback waits in the queue for the next post
      }
      started_ = true;
      state_->id = t.get_id();
      // After finish(), nobody joins: the thread runs what is queued and ends by itself.
      if (state_->finishing) {
        t.detach();
      } else {
        thread_ = std::move(t);
      }
      return;
    }
    lock.unlock();
    state_->cv.notify_one();
  }
  /// Whether the calling thread is this one.
  bool is_current() const noexcept { return std::this_thread::get_id() == state_->id.load(); }

 private:
  void finish() {
    std::thread t;
    {
      std::lock_guard lock(state_->mutex);
      state_->finishing = true;
      t = std::move(thread_);
    }
    state_->cv.notify_one();
    if (!t.joinable()) return;
    if (std::this_thread::get_id() == t.get_id() || on_an_io_thread()) {
      t.detach();
    } else {
      t.join();
    }
  }

  // Shared with the thread: a callback may destroy the last client (and this object with it)
  // while the thread still has to return from that callback and drain the queue.
  struct state {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<std::function<void()>> queue;
    bool finishing = false;
    std::atomic<std::thread::id> id{};
  };
  static void run(state& s) {
    ::pthread_setname_np(::pthread_self(), "p2psip-callback");
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock lock(s.mutex);
        s.cv.wait(lock, [&s] { return s.finishing || !s.queue.empty(); });
        if (s.queue.empty()) return;
        f = std::move(s.queue.front());
        s.queue.pop_front();
      }
      f();
    }
  }
  std::shared_ptr<state> state_ = std::make_shared<state>();
  bool started_ = false;  ///< guarded by state_->mutex, like thread_
  std::thread thread_;
};

/// One client's callbacks on the shared callback thread: posted in order, and counted, so that
/// the client's destruction can wait for its own callbacks (the others' may keep coming).
class client_callbacks {
 public:
  void post(std::function<void()> f) {
    {
      std::lock_guard lock(account_->mutex);
      ++account_->queued;
    }
    thread_->post([f = std::move(f), a = account_] {
      f();
      {
        std::lock_guard lock(a->mutex);
        --a->queued;
      }
      a->cv.notify_all();
    });
  }
  /// Waits until the callbacks posted so far, and those they post in turn, have run. On the
  /// callback thread itself it returns at once: they run after the current callback returns.
  /// So it does on an I/O thread, which a callback's blocking call may be waiting for.
  void drain() {
    if (thread_->is_current() || on_an_io_thread()) return;
    std::unique_lock lock(account_->mutex);
    account_->cv.wait(lock, [this] { return account_->queued == 0; });
  }
  /// The thread, for whoever must decide where it ends (client::~client).
  const std::shared_ptr<callback_thread>& thread() const noexcept { return thread_; }

 private:
  struct account {
    std::mutex mutex;
    std::condition_variable cv;
    std::size_t queued = 0;
  };
  std::shared_ptr<callback_thread> thread_ = process_shared<callback_thread>();
  std::shared_ptr<account> account_ = std::make_shared<account>();
};

}  // namespace p2psip::client::detail
