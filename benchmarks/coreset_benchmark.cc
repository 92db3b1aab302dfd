// Greedy coreset selection (segmenters/coreset.h) on a patch bank the size
// of the synthetic-defect configs' (60 images of 28x28 patches), keeping 1%
// of it: time per pick, with and without the random projection and with 1
// or all LibTorch threads.
//
//   bazel run -c opt //benchmarks:coreset_benchmark -- --benchmark_format=json
#include <cstdint>
#include <string>
#include <thread>

#include "benchmark/benchmark.h"
#include "segmenters/coreset.h"
#include "torch/torch.h"

namespace panda {
namespace {

constexpr int64_t kRows = 60 * 28 * 28;

// Arguments: feature dimensions, projection dimensions (0 = none), threads.
void BM_GreedyCoreset(benchmark::State& state) {
  const int64_t dims = state.range(0);
  const int64_t projection = state.range(1);
  torch::set_num_threads(static_cast<int>(state.range(2)));
  torch::manual_seed(0);
  const torch::Tensor bank = torch::randn({kRows, dims});
  const int64_t count = kRows / 100;
  for (auto _ : state) {
    absl::StatusOr<torch::Tensor> picked =
        GreedyCoresetIndices(bank, count, projection, /*seed=*/1, "benchmark");
    if (!picked.ok()) {
      state.SkipWithError(std::string(picked.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(picked->data_ptr<int64_t>());
  }
  state.counters["picks_per_second"] =
      benchmark::Counter(static_cast<double>(count), benchmark::Counter::kIsIterationInvariantRate);
}

void Arguments(benchmark::internal::Benchmark* benchmark) {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  for (int threads : {1, cores}) {
    benchmark->Args({128, 0, threads});
    benchmark->Args({768, 0, threads});
    benchmark->Args({768, 128, threads});
  }
  benchmark->ArgNames({"dims", "projection", "threads"});
  benchmark->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_GreedyCoreset)->Apply(Arguments);

}  // namespace
}  // namespace panda

BENCHMARK_MAIN();
