// Runs a loop body over indices on a few std::thread workers.
//
//   std::vector<absl::Status> errors(paths.size());
//   ParallelFor(paths.size(), /*num_threads=*/4, [&](int64_t i) {
//     errors[i] = Decode(paths[i], out + i * image_bytes);
//     return errors[i].ok();
//   });
#ifndef PANDA_DATASETS_PARALLEL_FOR_H_
#define PANDA_DATASETS_PARALLEL_FOR_H_

#include <cstdint>
#include <functional>

namespace panda {

// Calls `body(i)` for i in [0, count) on min(num_threads, count) threads,
// the calling thread among them, and returns when every call has returned.
// Workers take indices in increasing order. A `body` that writes its
// results by index therefore gives the same results for any thread count.
// `body` runs concurrently with itself and must be thread-safe.
//
// When `body` returns false, no index not yet taken is started. Every index
// below the one that returned false has then run to completion, which lets
// a caller report the lowest failing index deterministically.
// `num_threads` below 1 counts as 1.
void ParallelFor(int64_t count, int num_threads,
                 const std::function<bool(int64_t)>& body);

}  // namespace panda

#endif  // PANDA_DATASETS_PARALLEL_FOR_H_
