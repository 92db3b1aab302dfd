// HNSW (hnswlib) against exact search on the same data: recall@2 and
// queries/s over a sweep of graph parameters (m, ef_construction) and search
// breadth ef, plus the build time of each graph.
//
//   bazel run //benchmarks:hnsw_benchmark -- --rows=1000000 --dims=128
//
// Data: synthetic features with low intrinsic dimension, as CNN features
// tend to have. Points of a 16-d Gaussian mixture (100 clusters) are mapped
// into `dims` dimensions by a fixed random linear map, plus isotropic noise
// of 1/10 the signal's per-dimension scale. `--data=gaussian` draws i.i.d.
// normal vectors instead, a harder case for graph search because it has no
// low-dimensional structure. Queries are separate draws from the same
// distribution.
//
// Built graphs are kept in --index_dir as index files (the "hnsw" scorer's
// format), so a second run with the same flags loads them instead of
// building. Only runs that built report build times.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "core/fnv1a.h"
#include "core/malloc_tuning.h"
#include "scorers/exact_knn.h"
#include "scorers/hnsw_index.h"
#include "scorers/hnsw_index_file.h"
#include "torch/torch.h"

ABSL_FLAG(int64_t, rows, 1000000, "bank vectors");
ABSL_FLAG(int64_t, dims, 128, "dimensions per vector");
ABSL_FLAG(int64_t, queries, 2000, "query vectors");
ABSL_FLAG(std::string, data, "clustered", "clustered or gaussian");
ABSL_FLAG(std::string, index_dir, "/tmp/panda_hnsw_benchmark",
          "folder for built graphs, reused by later runs");

namespace panda {
namespace {

constexpr int64_t kNeighbours = 2;
constexpr int64_t kBudgetBytes = int64_t{256} << 20;
constexpr int64_t kLatentDims = 16;
constexpr int64_t kClusters = 100;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

int Threads() {
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

// float32 [count, dims] rows of the chosen distribution. `seed` draws the
// points, while the clusters and the linear map always come from seed 7.
torch::Tensor MakeRows(int64_t count, int64_t dims, const std::string& data,
                       uint64_t seed) {
  if (data == "gaussian") {
    torch::manual_seed(seed);
    return torch::randn({count, dims});
  }
  torch::manual_seed(7);
  const torch::Tensor centres = torch::randn({kClusters, kLatentDims}) * 3;
  const torch::Tensor map = torch::randn({kLatentDims, dims});
  torch::manual_seed(seed);
  const torch::Tensor cluster = torch::randint(kClusters, {count});
  const torch::Tensor latent =
      centres.index_select(0, cluster) + torch::randn({count, kLatentDims});
  torch::Tensor rows = latent.mm(map);
  // The signal's per-dimension standard deviation, estimated on the rows.
  const double scale = rows.std().item<double>();
  rows.add_(torch::randn({count, dims}) * (0.1 * scale));
  return rows.contiguous();
}

struct Data {
  torch::Tensor bank;
  torch::Tensor queries;
  uint64_t bank_checksum = 0;
  // int64 [queries, 2] exact neighbours.
  torch::Tensor truth;
  double exact_queries_per_second = 0;
};

Data& SharedData() {
  static Data* data = [] {
    auto* made = new Data;
    const int64_t rows = absl::GetFlag(FLAGS_rows);
    const int64_t dims = absl::GetFlag(FLAGS_dims);
    made->bank = MakeRows(rows, dims, absl::GetFlag(FLAGS_data), 1);
    made->queries = MakeRows(absl::GetFlag(FLAGS_queries), dims,
                             absl::GetFlag(FLAGS_data), 2);
    made->bank_checksum = Fnv1a64(made->bank.data_ptr<float>(),
                                  made->bank.numel() * sizeof(float));
    return made;
  }();
  return *data;
}

// Exact neighbours of every query by this project's kernel, timed.
void BM_ExactKnn(benchmark::State& state) {
  Data& data = SharedData();
  absl::StatusOr<KnnBank> bank = PrepareKnnBank(
      data.bank, KnnMetric::kSquaredL2, KnnPrecision::kFloat32, kBudgetBytes);
  if (!bank.ok()) {
    state.SkipWithError(std::string(bank.status().message()).c_str());
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    absl::StatusOr<KnnResult> result =
        SearchKnn(data.queries, *bank, kNeighbours, kBudgetBytes);
    if (!result.ok()) {
      state.SkipWithError(std::string(result.status().message()).c_str());
      return;
    }
    data.truth = result->indices;
  }
  const double queries =
      static_cast<double>(data.queries.size(0)) * state.iterations();
  data.exact_queries_per_second = queries / SecondsSince(start);
  state.counters["queries_per_s"] =
      benchmark::Counter(queries, benchmark::Counter::kIsRate);
}

// Graphs of this run, by (m, ef_construction).
std::map<std::pair<int64_t, int64_t>, std::unique_ptr<HnswIndex>>& Graphs() {
  static auto* graphs =
      new std::map<std::pair<int64_t, int64_t>, std::unique_ptr<HnswIndex>>;
  return *graphs;
}

HnswIndexIdentity IdentityFor(int64_t m, int64_t ef_construction) {
  const Data& data = SharedData();
  HnswIndexIdentity identity;
  identity.space = HnswSpace::kSquaredL2;
  identity.dim = data.bank.size(1);
  identity.count = data.bank.size(0);
  identity.m = m;
  identity.ef_construction = ef_construction;
  identity.features_checksum = data.bank_checksum;
  return identity;
}

std::string IndexPath(int64_t m, int64_t ef_construction) {
  return absl::StrCat(absl::GetFlag(FLAGS_index_dir), "/",
                      absl::GetFlag(FLAGS_data), "-", absl::GetFlag(FLAGS_rows),
                      "x", absl::GetFlag(FLAGS_dims), "-m", m, "-efc",
                      ef_construction, ".hnsw");
}

// Loads the graph from --index_dir, or builds and stores it; returns the
// build time in seconds, or 0 when loaded.
absl::StatusOr<double> EnsureGraph(int64_t m, int64_t ef_construction) {
  auto& graph = Graphs()[{m, ef_construction}];
  if (graph != nullptr) return 0.0;
  const HnswIndexIdentity identity = IdentityFor(m, ef_construction);
  const std::string path = IndexPath(m, ef_construction);
  absl::StatusOr<std::unique_ptr<HnswIndex>> loaded =
      ReadHnswIndexFile(path, identity);
  if (loaded.ok()) {
    graph = *std::move(loaded);
    return 0.0;
  }
  const Data& data = SharedData();
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<HnswIndex>> built = HnswIndex::Build(
      data.bank.data_ptr<float>(), identity.count, identity.dim,
      HnswSpace::kSquaredL2, m, ef_construction, Threads());
  if (!built.ok()) return built.status();
  const double seconds = SecondsSince(start);
  graph = *std::move(built);
  const absl::Status written = WriteHnswIndexFile(path, identity, *graph);
  if (!written.ok()) {
    std::fprintf(stderr, "could not store %s: %s\n", path.c_str(),
                 std::string(written.message()).c_str());
  }
  return seconds;
}

// Builds (or loads) the graph of (m, ef_construction); one iteration.
void BM_HnswBuild(benchmark::State& state) {
  double seconds = 0;
  for (auto _ : state) {
    absl::StatusOr<double> built = EnsureGraph(state.range(0), state.range(1));
    if (!built.ok()) {
      state.SkipWithError(std::string(built.status().message()).c_str());
      return;
    }
    seconds = *built;
  }
  state.counters["build_s"] = seconds;
  state.counters["loaded"] = seconds == 0 ? 1 : 0;
}

void BM_HnswSearch(benchmark::State& state) {
  Data& data = SharedData();
  const int64_t m = state.range(0);
  const int64_t ef_construction = state.range(1);
  const int64_t ef = state.range(2);
  absl::StatusOr<double> ready = EnsureGraph(m, ef_construction);
  if (!ready.ok() || !data.truth.defined()) {
    state.SkipWithError(ready.ok() ? "run BM_ExactKnn first for the truth"
                                   : std::string(ready.status().message())
                                         .c_str());
    return;
  }
  const HnswIndex& graph = *Graphs()[{m, ef_construction}];
  const int64_t queries = data.queries.size(0);
  std::vector<float> distances(queries * kNeighbours);
  std::vector<int64_t> labels(queries * kNeighbours);
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const absl::Status searched =
        graph.Search(data.queries.data_ptr<float>(), queries, kNeighbours, ef,
                     Threads(), distances.data(), labels.data());
    if (!searched.ok()) {
      state.SkipWithError(std::string(searched.message()).c_str());
      return;
    }
  }

  const torch::Tensor truth = data.truth.contiguous();
  const int64_t* true_labels = truth.data_ptr<int64_t>();
  int64_t found = 0;
  for (int64_t q = 0; q < queries; ++q) {
    const std::set<int64_t> expected(true_labels + q * kNeighbours,
                                     true_labels + (q + 1) * kNeighbours);
    for (int64_t j = 0; j < kNeighbours; ++j) {
      found += expected.count(labels[q * kNeighbours + j]);
    }
  }
  state.counters["recall_at_2"] =
      static_cast<double>(found) / (queries * kNeighbours);
  const double queries_per_second =
      static_cast<double>(queries) * state.iterations() / SecondsSince(start);
  state.counters["queries_per_s"] = queries_per_second;
  state.counters["speedup_vs_exact"] =
      queries_per_second / data.exact_queries_per_second;
}

void RegisterCases() {
  benchmark::RegisterBenchmark("BM_ExactKnn", &BM_ExactKnn)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->MinTime(2.0);
  const std::vector<std::pair<int64_t, int64_t>> graphs = {
      {8, 100}, {16, 200}, {32, 200}};
  for (const auto& [m, ef_construction] : graphs) {
    benchmark::RegisterBenchmark("BM_HnswBuild", &BM_HnswBuild)
        ->Args({m, ef_construction})
        ->Unit(benchmark::kSecond)
        ->UseRealTime()
        ->Iterations(1);
    for (int64_t ef : {16, 32, 64, 128, 256}) {
      benchmark::RegisterBenchmark("BM_HnswSearch", &BM_HnswSearch)
          ->Args({m, ef_construction, ef})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(1.0);
    }
  }
}

}  // namespace
}  // namespace panda

int main(int argc, char** argv) {
  panda::RestartWithMallocTuning(argv);
  benchmark::Initialize(&argc, argv);
  absl::ParseCommandLine(argc, argv);
  const std::string data = absl::GetFlag(FLAGS_data);
  if (data != "clustered" && data != "gaussian") {
    std::fprintf(stderr, "--data=%s is invalid; use clustered or gaussian\n",
                 data.c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_rows) < 2 || absl::GetFlag(FLAGS_dims) < 1 ||
      absl::GetFlag(FLAGS_queries) < 1) {
    std::fprintf(stderr,
                 "--rows must be at least 2, --dims and --queries at least 1\n");
    return 2;
  }
  torch::set_num_threads(panda::Threads());
  panda::RegisterCases();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
