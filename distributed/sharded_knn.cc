#include "distributed/sharded_knn.h"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "distributed/sharding.h"
#include "torch/torch.h"

namespace panda {
namespace {

// Rows of queries per broadcast block: the block of candidates that all
// ranks exchange ([rows, world_size * k] distances and indices) stays
// within the budget, and so does the block of queries.
int64_t QueryBlockRows(int64_t dimension, int64_t k, int world_size,
                       int64_t memory_budget_bytes) {
  const int64_t bytes_per_row =
      std::max<int64_t>(4 * dimension, 12 * k * world_size);
  return std::max<int64_t>(1, memory_budget_bytes / bytes_per_row);
}

}  // namespace

absl::StatusOr<KnnBankShard> PrepareKnnBankShard(
    const torch::Tensor& bank, KnnMetric metric, KnnPrecision precision,
    int64_t memory_budget_bytes, const DistributedContext& context) {
  if (!bank.defined() || bank.dim() != 2) {
    return absl::InvalidArgumentError(
        "sharded knn: the bank must be a defined [N, D] tensor");
  }
  const RowRange rows =
      ShardRows(bank.size(0), context.rank(), context.world_size());
  KnnBankShard shard;
  shard.first_row = rows.begin;
  shard.dimension = bank.size(1);
  if (rows.size() == 0) return shard;
  PANDA_ASSIGN_OR_RETURN(
      KnnBank prepared,
      PrepareKnnBank(bank.slice(0, rows.begin, rows.end), metric, precision,
                     memory_budget_bytes));
  shard.bank = std::move(prepared);
  return shard;
}

absl::StatusOr<KnnResult> SearchShardedKnn(const torch::Tensor& queries,
                                           const KnnBankShard& shard,
                                           int64_t bank_rows, int64_t k,
                                           int64_t memory_budget_bytes,
                                           DistributedContext& context) {
  if (k < 1 || k > bank_rows) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sharded knn: k = ", k, " must lie in [1, ", bank_rows,
        "], the bank's rows"));
  }

  // Every rank learns the query count from rank 0 and checks the dimension.
  torch::Tensor shape = torch::zeros({2}, torch::kLong);
  if (context.rank() == 0) {
    if (!queries.defined() || queries.dim() != 2) {
      return absl::InvalidArgumentError(
          "sharded knn: rank 0's queries must be a defined [M, D] tensor");
    }
    shape[0] = queries.size(0);
    shape[1] = queries.size(1);
  }
  PANDA_RETURN_IF_ERROR(context.Broadcast(shape, 0, "knn query shape"));
  const int64_t count = shape[0].item<int64_t>();
  const int64_t dimension = shape[1].item<int64_t>();
  if (dimension != shard.dimension) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sharded knn: queries have ", dimension, " dimensions but the bank ",
        shard.dimension));
  }

  const int64_t local_k =
      shard.bank ? std::min<int64_t>(k, shard.bank->rows.size(0)) : 0;
  const int64_t block_rows = QueryBlockRows(dimension, k, context.world_size(),
                                            memory_budget_bytes);
  std::vector<torch::Tensor> distance_blocks, index_blocks;
  for (int64_t begin = 0; begin < count; begin += block_rows) {
    const int64_t end = std::min(count, begin + block_rows);
    torch::Tensor block;
    if (context.rank() == 0) {
      block = queries.slice(0, begin, end).to(torch::kCPU, torch::kFloat32)
                  .contiguous();
    } else {
      block = torch::empty({end - begin, dimension}, torch::kFloat32);
    }
    const std::string what = absl::StrCat("knn queries ", begin, "-", end);
    PANDA_RETURN_IF_ERROR(context.Broadcast(block, 0, what));

    // This shard's candidates, padded to k columns with infinite distances
    // where the shard has fewer than k rows.
    torch::Tensor distances = torch::full(
        {end - begin, k}, std::numeric_limits<float>::infinity(),
        torch::kFloat32);
    torch::Tensor indices = torch::full({end - begin, k}, -1, torch::kLong);
    if (local_k > 0) {
      PANDA_ASSIGN_OR_RETURN(
          KnnResult local,
          SearchKnn(block.to(shard.bank->rows.device()), *shard.bank, local_k,
                    memory_budget_bytes));
      distances.slice(1, 0, local_k).copy_(local.distances.to(torch::kCPU));
      indices.slice(1, 0, local_k)
          .copy_(local.indices.to(torch::kCPU) + shard.first_row);
    }

    // [world_size, m, k] candidates become [m, world_size * k], and the k
    // smallest of each row win.
    PANDA_ASSIGN_OR_RETURN(torch::Tensor all_distances,
                           context.AllGather(distances, what + " distances"));
    PANDA_ASSIGN_OR_RETURN(torch::Tensor all_indices,
                           context.AllGather(indices, what + " indices"));
    all_distances = all_distances.permute({1, 0, 2}).reshape({end - begin, -1});
    all_indices = all_indices.permute({1, 0, 2}).reshape({end - begin, -1});
    auto [best, positions] = all_distances.topk(k, /*dim=*/1, /*largest=*/false,
                                                /*sorted=*/true);
    distance_blocks.push_back(best);
    index_blocks.push_back(all_indices.gather(1, positions));
  }

  KnnResult result;
  if (distance_blocks.empty()) {
    result.distances = torch::empty({0, k}, torch::kFloat32);
    result.indices = torch::empty({0, k}, torch::kLong);
    return result;
  }
  result.distances = torch::cat(distance_blocks);
  result.indices = torch::cat(index_blocks);
  return result;
}

}  // namespace panda
