#pragma once
// A first-in first-out queue that holds no memory while empty.
//
// Why not std::deque: libstdc++'s deque allocates its map and a first 512-byte block when it is
// constructed, empty or not. A link has several queues that are empty nearly all the time (its
// send queue, its inbox, the frame decoder's finished frames), and a peer holds a link per
// attached client: those empty deques were about 1.5 KiB of every idle client's cost. This queue
// is a vector and the index of its front; it gives its storage back when it becomes empty, and
// compacts when the taken front outgrows what is left, so it holds at most twice its items.

#include <cstddef>
#include <utility>
#include <vector>

namespace p2psip::protocol {

/// A FIFO queue of movable values, empty without allocation. Not thread-safe.
template <class T>
class fifo {
 public:
  bool empty() const noexcept { return head_ == items_.size(); }
  std::size_t size() const noexcept { return items_.size() - head_; }

  /// The oldest item; the queue must not be empty.
  T& front() noexcept { return items_[head_]; }
  const T& front() const noexcept { return items_[head_]; }

  void push_back(T value) {
    // Before the vector would grow: drop the taken front if it is at least half of it.
    if (head_ != 0 && items_.size() == items_.capacity() && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    items_.push_back(std::move(value));
  }

  /// Removes the oldest item; the queue must not be empty. The last one gives the storage back.
  void pop_front() {
    items_[head_] = T{};  // what it owns goes now, not at the next compaction
    ++head_;
    if (head_ == items_.size()) clear();
  }

  void clear() noexcept {
    items_ = {};
    head_ = 0;
  }

 private:
  std::vector<T> items_;
  std::size_t head_ = 0;  ///< index of the oldest item; items before it were taken
};

}  // namespace p2psip::protocol
