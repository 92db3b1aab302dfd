#include "datasets/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace panda {

void ParallelFor(int64_t count, int num_threads,
                 const std::function<bool(int64_t)>& body) {
  std::atomic<int64_t> next{0};
  std::atomic<bool> stopped{false};
  const auto work = [&] {
    while (!stopped.load(std::memory_order_relaxed)) {
      const int64_t index = next.fetch_add(1);
      if (index >= count) return;
      if (!body(index)) stopped.store(true);
    }
  };

  const int64_t workers =
      std::max<int64_t>(1, std::min<int64_t>(num_threads, count));
  std::vector<std::thread> threads;
  for (int64_t t = 1; t < workers; ++t) threads.emplace_back(work);
  work();
  for (std::thread& thread : threads) thread.join();
}

}  // namespace panda
