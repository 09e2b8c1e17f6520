#pragma once
// The SDK's default dispatcher: one thread running callbacks in the order they were posted.

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

namespace p2psip::client::detail {

/// The default dispatcher: one thread running callbacks in order. The thread starts with the
/// first callback posted: an idle client that is never called back has no second thread (its
/// stack pages and its malloc arena cost more than anything else it holds).
class callback_thread {
 public:
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
  /// Runs what is queued, then ends the thread; joins it unless called on it (then detaches:
  /// once the current callback returns, the thread runs what is still queued and ends by
  /// itself). Call once.
  void finish() {
    std::thread t;
    {
      std::lock_guard lock(state_->mutex);
      state_->finishing = true;
      t = std::move(thread_);
    }
    state_->cv.notify_one();
    if (!t.joinable()) return;
    if (std::this_thread::get_id() == t.get_id()) {
      t.detach();
    } else {
      t.join();
    }
  }

 private:
  // Shared with the thread: a callback may destroy the client (and this object with it) while
  // the thread still has to return from that callback and drain the queue.
  struct state {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<std::function<void()>> queue;
    bool finishing = false;
  };
  static void run(state& s) {
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

}  // namespace p2psip::client::detail
