// A blocking first-in, first-out queue of bounded capacity, for handing work
// from a producer thread to a consumer thread, for example batches that one
// thread prepares while another runs the forward pass.
//
//   BoundedQueue<torch::Tensor> queue(/*capacity=*/1);
//   std::thread producer([&] {
//     for (...) {
//       if (!queue.Push(NextBatch())) break;  // The consumer has stopped.
//     }
//     queue.Close();
//   });
//   while (std::optional<torch::Tensor> batch = queue.Pop()) Use(*batch);
//   queue.Close();  // Also on early exit, to wake a producer blocked in Push.
//   producer.join();
//
// Every member function is safe to call from any thread.
#ifndef PANDA_CORE_BOUNDED_QUEUE_H_
#define PANDA_CORE_BOUNDED_QUEUE_H_

#include <cassert>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

namespace panda {

template <typename T>
class BoundedQueue {
 public:
  // Creates an open queue that stores at most `capacity` items (at least 1).
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) { assert(capacity >= 1); }

  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  // Appends `item`, blocking while the queue is full. Returns false and
  // drops `item` when the queue is closed, before or during the wait.
  bool Push(T item) {
    std::unique_lock<std::mutex> lock(mutex_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }

  // Removes and returns the oldest item, blocking while the queue is empty
  // and open. A closed queue still returns the items pushed before Close(),
  // and std::nullopt once they are gone.
  std::optional<T> Pop() {
    std::unique_lock<std::mutex> lock(mutex_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  // Rejects further pushes and wakes every thread blocked in Push or Pop.
  // Calling it again has no effect.
  void Close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace panda

#endif  // PANDA_CORE_BOUNDED_QUEUE_H_
