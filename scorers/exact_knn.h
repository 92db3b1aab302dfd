// Exact k-nearest-neighbour search by squared L2 distance, the kernel behind
// the "knn" scorer. It is brute force, chunked so that memory stays bounded
// for any number of queries and training features:
//
//   PANDA_ASSIGN_OR_RETURN(KnnResult nearest,
//                          ExactKnn(test_features, train_features, /*k=*/2,
//                                   /*memory_budget_bytes=*/256 << 20));
//   torch::Tensor scores = nearest.distances.sum(/*dim=*/1);
#ifndef PANDA_SCORERS_EXACT_KNN_H_
#define PANDA_SCORERS_EXACT_KNN_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "torch/types.h"

namespace panda {

// The k nearest training features of each query.
struct KnnResult {
  // float32 [M, k] squared L2 distances, ascending along each row.
  torch::Tensor distances;
  // int64 [M, k] rows of the bank that the distances belong to.
  torch::Tensor indices;
};

// Checks that `bank` can serve k-nearest-neighbour queries: a defined,
// non-empty float32 [N, D] tensor with D > 0, finite values and k in [1, N].
// Returns InvalidArgument naming the offending value otherwise.
absl::Status ValidateKnnBank(const torch::Tensor& bank, int64_t k);

// Finds the `k` nearest rows of `bank` for every row of `queries`.
//
//   queries: float32 [M, D]. M may be 0, which yields [0, k] results.
//   bank: float32 [N, D] with N >= k, on the same device as `queries`.
//   k: number of neighbours, in [1, N].
//   memory_budget_bytes: bound on the float32 [m_chunk, n_chunk] block of
//     distances held at once, at least 4 (one distance). The [M, k] results,
//     the [N] bank norms, the [m_chunk, 2k] merge buffers and topk's own
//     workspace come on top.
//
// Computes on the device of the inputs (CPU or CUDA) and returns tensors on
// that device. Distances are computed as |q|^2 + |b|^2 - 2 q.b, whose
// float32 rounding can make them slightly negative, so they are clamped to 0.
// Invalid shapes, dtypes, devices, non-finite values or arguments are
// InvalidArgument. Running out of memory is ResourceExhausted, and any other
// LibTorch failure is Internal.
//
// NOTE: Among equal distances, which indices are returned and in what order
// is unspecified. The distances, and so their sums, do not depend on it.
// NOTE: Debian's LibTorch is CPU-only, so its build tests only the CPU path.
// The CUDA test runs with a CUDA LibTorch (PANDA_LIBTORCH_ROOT) on a GPU.
absl::StatusOr<KnnResult> ExactKnn(const torch::Tensor& queries,
                                   const torch::Tensor& bank, int64_t k,
                                   int64_t memory_budget_bytes);

}  // namespace panda

#endif  // PANDA_SCORERS_EXACT_KNN_H_
