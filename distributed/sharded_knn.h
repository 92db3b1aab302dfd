// Exact k-nearest-neighbour search over a bank split across the ranks of a
// process group. Each rank keeps one contiguous shard of the bank's rows
// (ShardRows). Rank 0's queries are broadcast in blocks, every rank finds
// each query's k nearest rows in its shard, and the ranks exchange these
// candidates and keep the k smallest distances. The result equals SearchKnn
// over the whole bank, up to float rounding of the distances and the order
// of equal distances.
#ifndef PANDA_DISTRIBUTED_SHARDED_KNN_H_
#define PANDA_DISTRIBUTED_SHARDED_KNN_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "distributed/process_group.h"
#include "scorers/exact_knn.h"
#include "torch/types.h"

namespace panda {

// One rank's part of a sharded bank.
struct KnnBankShard {
  // The shard's rows from PrepareKnnBank(); empty when the rank owns no
  // rows (fewer bank rows than ranks).
  std::optional<KnnBank> bank;
  // Row of the whole bank where the shard starts, added to the indices.
  int64_t first_row = 0;
  // Dimension of the bank's rows, also when this shard is empty.
  int64_t dimension = 0;
};

// Prepares this rank's shard of float32 [N, D] `bank`, which every rank
// passes whole: rows ShardRows(N, rank, world_size) under `metric` and
// `precision`, with PrepareKnnBank's errors. `bank` may be a view, since the
// shard keeps a view of its rows.
absl::StatusOr<KnnBankShard> PrepareKnnBankShard(const torch::Tensor& bank,
                                                 KnnMetric metric,
                                                 KnnPrecision precision,
                                                 int64_t memory_budget_bytes,
                                                 const DistributedContext& context);

// Finds the `k` nearest rows of the whole bank for every row of rank 0's
// float32 [M, D] `queries`. Other ranks' `queries` are ignored (they may be
// undefined). Every rank returns the same KnnResult: float32 [M, k]
// distances, ascending along each row, and int64 [M, k] rows of the whole
// bank, on the CPU. `k` must not exceed the whole bank's rows, which is
// InvalidArgument otherwise. `memory_budget_bytes` bounds each rank's local
// search as in SearchKnn and sets the size of the broadcast query blocks.
// A failed collective is Unavailable (see DistributedContext).
absl::StatusOr<KnnResult> SearchShardedKnn(const torch::Tensor& queries,
                                           const KnnBankShard& shard,
                                           int64_t bank_rows, int64_t k,
                                           int64_t memory_budget_bytes,
                                           DistributedContext& context);

}  // namespace panda

#endif  // PANDA_DISTRIBUTED_SHARDED_KNN_H_
