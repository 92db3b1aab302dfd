// Exact k-nearest-neighbour search, the kernel behind the "knn" scorer. It
// is brute force, chunked so that memory stays bounded for any number of
// queries and training features. A bank is prepared once and searched any
// number of times:
//
//   PANDA_ASSIGN_OR_RETURN(
//       KnnBank bank, PrepareKnnBank(train_features, KnnMetric::kSquaredL2,
//                                    KnnPrecision::kFloat32, 256 << 20));
//   PANDA_ASSIGN_OR_RETURN(KnnResult nearest,
//                          SearchKnn(test_features, bank, /*k=*/2, 256 << 20));
//   torch::Tensor scores = nearest.distances.sum(/*dim=*/1);
#ifndef PANDA_SCORERS_EXACT_KNN_H_
#define PANDA_SCORERS_EXACT_KNN_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "torch/types.h"

namespace panda {

// Distance between a query q and a bank row b.
enum class KnnMetric {
  // |q - b|^2.
  kSquaredL2,
  // 1 - q.b / (|q| |b|), in [0, 2]; rows of zero norm are rejected.
  kCosine,
};

// Element type of the query-by-bank matrix products. Distances, norms and
// results stay float32 in every case. Float16 and bfloat16 run on CUDA only.
enum class KnnPrecision { kFloat32, kFloat16, kBFloat16 };

// The k nearest training features of each query.
struct KnnResult {
  // float32 [M, k] distances under the bank's metric, ascending along each
  // row.
  torch::Tensor distances;
  // int64 [M, k] rows of the bank that the distances belong to.
  torch::Tensor indices;
};

// A bank laid out for repeated searches; made by PrepareKnnBank().
struct KnnBank {
  KnnMetric metric = KnnMetric::kSquaredL2;
  KnnPrecision precision = KnnPrecision::kFloat32;
  // [N, D] rows that enter the matrix products, on the bank's device. For
  // squared L2 in float32 they are the input tensor itself (no copy). Cosine
  // scales them to unit norm, and float16/bfloat16 divides them by
  // `row_scale` and converts them.
  torch::Tensor rows;
  // float32 [N] squared L2 norms of the input rows; only for kSquaredL2.
  torch::Tensor squared_norms;
  // Largest row norm of `rows` before the division, for float16/bfloat16 (1
  // otherwise). Products of divided rows lie in [-1, 1], so float16 cannot
  // overflow (its largest finite value is 65504).
  double row_scale = 1.0;
};

// Checks that `bank` can serve k-nearest-neighbour queries: a defined,
// non-empty float32 [N, D] tensor with D > 0, finite values and k in [1, N].
// Returns InvalidArgument naming the offending value otherwise.
absl::Status ValidateKnnBank(const torch::Tensor& bank, int64_t k);

// Prepares float32 [N, D] `bank` (N, D >= 1, finite) for SearchKnn() on its
// own device. `memory_budget_bytes` bounds the temporaries of the norm and
// validity computations (the prepared rows come on top; for squared L2 in
// float32 they share the bank's storage). Invalid input, float16/bfloat16 on
// a CPU bank, and a zero row under kCosine are InvalidArgument.
absl::StatusOr<KnnBank> PrepareKnnBank(const torch::Tensor& bank,
                                       KnnMetric metric, KnnPrecision precision,
                                       int64_t memory_budget_bytes);

// Finds the `k` nearest rows of `bank` for every row of `queries`.
//
//   queries: float32 [M, D], finite, on the bank's device. M may be 0, which
//     yields [0, k] results.
//   bank: from PrepareKnnBank(), with N >= k rows of D dimensions.
//   k: number of neighbours, in [1, N].
//   memory_budget_bytes: bound on the [m_chunk, n_chunk] block of products
//     held at once (4 bytes per product, 6 with float16/bfloat16), at least
//     one product. The [M, k] results, the [m_chunk, D] converted queries,
//     the merge buffers and topk's own workspace come on top.
//
// Computes on the bank's device (CPU or CUDA) and returns tensors there.
// Squared L2 distances are |q|^2 + |b|^2 - 2 q.b and cosine distances
// 1 - q.b on unit rows. Float rounding can push either slightly below 0, so
// both are clamped to 0 (cosine also to at most 2). Invalid shapes, dtypes,
// devices, non-finite values or arguments are InvalidArgument. Running out of
// memory is ResourceExhausted, and any other LibTorch failure is Internal.
//
// NOTE: Among equal distances, which indices are returned and in what order
// is unspecified. The distances, and so their sums, do not depend on it.
// NOTE: Debian's LibTorch is CPU-only, so its build tests only the CPU path.
// The CUDA tests run with a CUDA LibTorch (PANDA_LIBTORCH_ROOT) on a GPU.
absl::StatusOr<KnnResult> SearchKnn(const torch::Tensor& queries,
                                    const KnnBank& bank, int64_t k,
                                    int64_t memory_budget_bytes);

// Squared L2 search in float32 in one call: PrepareKnnBank() then
// SearchKnn(), with the arguments and errors of both.
absl::StatusOr<KnnResult> ExactKnn(const torch::Tensor& queries,
                                   const torch::Tensor& bank, int64_t k,
                                   int64_t memory_budget_bytes);

}  // namespace panda

#endif  // PANDA_SCORERS_EXACT_KNN_H_
