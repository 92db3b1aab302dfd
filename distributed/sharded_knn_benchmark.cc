// Times SearchShardedKnn as one rank of a job (torchrun's variables; a
// single process without them). Every rank draws the same float32 bank and
// queries from fixed seeds, keeps its shard and searches together with the
// others. Rank 0 prints the seconds of the slowest rank.
//
//   sharded_knn_benchmark BANK_ROWS QUERY_ROWS DIMENSION K
//
// tools/measure_distributed_scaling.sh runs it at 1, 2 and 4 ranks.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "distributed/process_group.h"
#include "distributed/sharded_knn.h"
#include "torch/torch.h"

namespace panda {
namespace {

constexpr int64_t kMemoryBudgetBytes = int64_t{256} << 20;

absl::Status Time(int64_t bank_rows, int64_t query_rows, int64_t dimension,
                  int64_t k) {
  PANDA_ASSIGN_OR_RETURN(const DistributedEnvironment environment,
                         ReadDistributedEnvironment());
  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<DistributedContext> context,
                         DistributedContext::Connect(environment));
  torch::manual_seed(1);
  const torch::Tensor bank = torch::randn({bank_rows, dimension});
  const torch::Tensor queries = torch::randn({query_rows, dimension});
  PANDA_ASSIGN_OR_RETURN(
      const KnnBankShard shard,
      PrepareKnnBankShard(bank, KnnMetric::kSquaredL2, KnnPrecision::kFloat32,
                          kMemoryBudgetBytes, *context));
  PANDA_RETURN_IF_ERROR(context->Barrier("before the search"));

  const auto start = std::chrono::steady_clock::now();
  PANDA_RETURN_IF_ERROR(SearchShardedKnn(queries, shard, bank_rows, k,
                                         kMemoryBudgetBytes, *context)
                            .status());
  torch::Tensor seconds = torch::tensor(
      {std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
           .count()},
      torch::kFloat64);
  PANDA_ASSIGN_OR_RETURN(const torch::Tensor all,
                         context->AllGather(seconds, "search seconds"));
  if (context->rank() == 0) {
    std::printf("ranks %d, threads %d, bank %lld x %lld, queries %lld, k %lld: "
                "%.3f s\n",
                context->world_size(), torch::get_num_threads(),
                static_cast<long long>(bank_rows),
                static_cast<long long>(dimension),
                static_cast<long long>(query_rows), static_cast<long long>(k),
                all.max().item<double>());
  }
  return context->Barrier("at exit");
}

}  // namespace
}  // namespace panda

int main(int argc, char** argv) {
  int64_t values[4];
  bool parsed = argc == 5;
  for (int i = 0; parsed && i < 4; ++i) {
    parsed = absl::SimpleAtoi(argv[i + 1], &values[i]) && values[i] > 0;
  }
  if (!parsed) {
    std::fprintf(stderr,
                 "usage: sharded_knn_benchmark BANK_ROWS QUERY_ROWS DIMENSION K "
                 "(positive integers)\n");
    return 2;
  }
  const absl::Status status =
      panda::Time(values[0], values[1], values[2], values[3]);
  if (!status.ok()) {
    std::fprintf(stderr, "sharded_knn_benchmark: error: %s\n",
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
