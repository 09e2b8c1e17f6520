#pragma once
// The SDK's default dispatcher: one thread running callbacks in the order they were posted.

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace p2psip::client::detail {

/// The default dispatcher: one thread running callbacks in order.
class callback_thread {
 public:
  void start() {
    thread_ = std::thread([s = state_] { run(*s); });
  }
  void post(std::function<void()> f) {
    {
      std::lock_guard lock(state_->mutex);
      state_->queue.push_back(std::move(f));
    }
    state_->cv.notify_one();
  }
  /// Runs what is queued, then ends the thread; joins it unless called on it (then detaches:
  /// once the current callback returns, the thread runs what is still queued and ends by
  /// itself). Call once.
  void finish() {
    {
      std::lock_guard lock(state_->mutex);
      state_->finishing = true;
    }
    state_->cv.notify_one();
    if (!thread_.joinable()) return;
    if (std::this_thread::get_id() == thread_.get_id()) {
      thread_.detach();
    } else {
      thread_.join();
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
  std::thread thread_;
};

}  // namespace p2psip::client::detail
