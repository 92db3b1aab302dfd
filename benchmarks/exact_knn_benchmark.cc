// Exact kNN throughput: this project's kernel (SearchKnn, squared L2, k = 2,
// the "knn" scorer's default 256 MiB budget) side by side with faiss's
// brute-force search and with a plain LibTorch matrix product of the same
// size, on one shared random bank per (N, D).
//
//   bazel run -c opt //benchmarks:exact_knn_benchmark -- \
//       --benchmark_filter='/100000/1280/'
//
// Each case reports queries/s and GFLOP/s, counting 2 * M * N * D floating
// point operations for the M x N products of D terms (norms, selection and
// merging come on top but are not counted). Cases run in the order
// kernel, faiss IndexFlatL2::search, faiss knn_L2sqr with precomputed norms,
// torch::mm for each (N, D), so ratios come from neighbouring runs.
// IndexFlatL2::search recomputes the bank's norms in every call (faiss
// 1.7.3); knn_L2sqr given the norms matches what PrepareKnnBank() caches.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/malloc_tuning.h"
#include "faiss/IndexFlat.h"
#include "faiss/utils/distances.h"
#include "scorers/exact_knn.h"
#include "torch/torch.h"

namespace panda {
namespace {

constexpr int64_t kNeighbours = 2;
constexpr int64_t kBudgetBytes = int64_t{256} << 20;
// Rows added to faiss at a time, so the bank is never held twice.
constexpr int64_t kFillRows = 16384;

// Queries per case: enough for full-speed matrix products, few enough that
// one iteration on 1M x 2048 (1 TFLOP at M = 256) takes seconds.
int64_t QueryCount(int64_t bank_rows) {
  return bank_rows >= 1000000 ? 256 : 1024;
}

// The bank of the current (N, D): stored once, inside a faiss index, and
// seen by LibTorch through a view of the same memory. A case for another
// shape replaces it, so at most one bank is alive.
struct SharedData {
  int64_t rows = 0;
  int64_t dims = 0;
  std::unique_ptr<faiss::IndexFlatL2> index;
  torch::Tensor bank;     // float32 [N, D], a view of index->codes
  torch::Tensor queries;  // float32 [M, D]
  std::vector<float> bank_norms;
};

SharedData& DataFor(int64_t rows, int64_t dims) {
  static SharedData data;
  if (data.rows == rows && data.dims == dims) return data;
  data = SharedData();
  torch::manual_seed(1);
  data.index = std::make_unique<faiss::IndexFlatL2>(dims);
  data.index->codes.reserve(static_cast<size_t>(rows * dims) * sizeof(float));
  for (int64_t start = 0; start < rows; start += kFillRows) {
    const int64_t count = std::min(kFillRows, rows - start);
    const torch::Tensor part = torch::randn({count, dims});
    data.index->add(count, part.data_ptr<float>());
  }
  data.bank = torch::from_blob(data.index->get_xb(), {rows, dims},
                               torch::kFloat32);
  data.queries = torch::randn({QueryCount(rows), dims});
  data.bank_norms.resize(rows);
  faiss::fvec_norms_L2sqr(data.bank_norms.data(), data.index->get_xb(), dims,
                          rows);
  data.rows = rows;
  data.dims = dims;
  return data;
}

void SetCounters(benchmark::State& state, const SharedData& data) {
  const double queries = static_cast<double>(data.queries.size(0));
  state.counters["queries_per_s"] = benchmark::Counter(
      queries * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["GFLOP_per_s"] = benchmark::Counter(
      2.0 * queries * data.rows * data.dims * state.iterations() / 1e9,
      benchmark::Counter::kIsRate);
}

void BM_PandaExactKnn(benchmark::State& state) {
  SharedData& data = DataFor(state.range(0), state.range(1));
  absl::StatusOr<KnnBank> bank = PrepareKnnBank(
      data.bank, KnnMetric::kSquaredL2, KnnPrecision::kFloat32, kBudgetBytes);
  if (!bank.ok()) {
    state.SkipWithError(std::string(bank.status().message()).c_str());
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<KnnResult> result =
        SearchKnn(data.queries, *bank, kNeighbours, kBudgetBytes);
    if (!result.ok()) {
      state.SkipWithError(std::string(result.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(result->distances.data_ptr<float>());
  }
  SetCounters(state, data);
}

void BM_FaissIndexFlatL2(benchmark::State& state) {
  SharedData& data = DataFor(state.range(0), state.range(1));
  const int64_t queries = data.queries.size(0);
  std::vector<float> distances(queries * kNeighbours);
  std::vector<faiss::Index::idx_t> labels(queries * kNeighbours);
  for (auto _ : state) {
    data.index->search(queries, data.queries.data_ptr<float>(), kNeighbours,
                       distances.data(), labels.data());
    benchmark::DoNotOptimize(distances.data());
  }
  SetCounters(state, data);
}

void BM_FaissKnnL2sqrCachedNorms(benchmark::State& state) {
  SharedData& data = DataFor(state.range(0), state.range(1));
  const int64_t queries = data.queries.size(0);
  std::vector<float> distances(queries * kNeighbours);
  std::vector<int64_t> labels(queries * kNeighbours);
  for (auto _ : state) {
    faiss::knn_L2sqr(data.queries.data_ptr<float>(), data.index->get_xb(),
                     data.dims, queries, data.rows, kNeighbours,
                     distances.data(), labels.data(), data.bank_norms.data());
    benchmark::DoNotOptimize(distances.data());
  }
  SetCounters(state, data);
}

// The machine's matrix-product throughput at this size: [M, D] x [D, N]
// into a preallocated [M, N] float32 buffer, no selection.
void BM_TorchMm(benchmark::State& state) {
  SharedData& data = DataFor(state.range(0), state.range(1));
  torch::Tensor products =
      torch::empty({data.queries.size(0), data.rows}, torch::kFloat32);
  for (auto _ : state) {
    torch::mm_out(products, data.queries, data.bank.t());
    benchmark::DoNotOptimize(products.data_ptr<float>());
  }
  SetCounters(state, data);
}

void RegisterCases() {
  struct Case {
    const char* name;
    void (*function)(benchmark::State&);
  };
  const Case cases[] = {
      {"BM_PandaExactKnn", &BM_PandaExactKnn},
      {"BM_FaissIndexFlatL2", &BM_FaissIndexFlatL2},
      {"BM_FaissKnnL2sqrCachedNorms", &BM_FaissKnnL2sqrCachedNorms},
      {"BM_TorchMm", &BM_TorchMm},
  };
  for (int64_t rows : {10000, 100000, 1000000}) {
    for (int64_t dims : {512, 1280, 2048}) {
      for (const Case& c : cases) {
        benchmark::RegisterBenchmark(c.name, c.function)
            ->Args({rows, dims})
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->MinTime(1.0);
      }
    }
  }
}

}  // namespace
}  // namespace panda

int main(int argc, char** argv) {
  panda::RestartWithMallocTuning(argv);
  torch::set_num_threads(
      std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  panda::RegisterCases();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
