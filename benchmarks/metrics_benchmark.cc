// Throughput of the threshold-free metrics on a million scores, the size of
// a pixel-level evaluation or a large test split:
//
//   bazel run //benchmarks:metrics_benchmark -- --benchmark_format=json
//
// Scores are uniform random floats, with every tenth example anomalous and
// shifted up by 0.5, so that the curves are neither trivial nor random.
// Each case reports scores/s.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "benchmark/benchmark.h"
#include "metrics/average_precision.h"
#include "metrics/f1_max.h"
#include "metrics/roc_auc.h"

namespace panda {
namespace {

struct Examples {
  std::vector<float> scores;
  std::vector<int> labels;
};

// The examples of size `count`, made once per size.
const Examples& ExamplesOfSize(int64_t count) {
  static Examples examples;
  if (static_cast<int64_t>(examples.scores.size()) == count) return examples;
  std::mt19937 generator(0);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  examples.scores.resize(count);
  examples.labels.resize(count);
  for (int64_t i = 0; i < count; ++i) {
    examples.labels[i] = i % 10 == 0 ? 1 : 0;
    examples.scores[i] = uniform(generator) + 0.5f * examples.labels[i];
  }
  return examples;
}

void SetScoreRate(benchmark::State& state) {
  state.counters["scores_per_s"] = benchmark::Counter(
      static_cast<double>(state.range(0) * state.iterations()),
      benchmark::Counter::kIsRate);
}

void BM_RocAuc(benchmark::State& state) {
  const Examples& examples = ExamplesOfSize(state.range(0));
  for (auto _ : state) {
    absl::StatusOr<double> auc = RocAuc(examples.scores, examples.labels);
    if (!auc.ok()) {
      state.SkipWithError(std::string(auc.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(*auc);
  }
  SetScoreRate(state);
}

void BM_AveragePrecision(benchmark::State& state) {
  const Examples& examples = ExamplesOfSize(state.range(0));
  for (auto _ : state) {
    absl::StatusOr<double> precision =
        AveragePrecision(examples.scores, examples.labels);
    if (!precision.ok()) {
      state.SkipWithError(std::string(precision.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(*precision);
  }
  SetScoreRate(state);
}

void BM_F1Max(benchmark::State& state) {
  const Examples& examples = ExamplesOfSize(state.range(0));
  for (auto _ : state) {
    absl::StatusOr<F1MaxResult> best = F1Max(examples.scores, examples.labels);
    if (!best.ok()) {
      state.SkipWithError(std::string(best.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(best->f1);
  }
  SetScoreRate(state);
}

BENCHMARK(BM_RocAuc)->Arg(1 << 20)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AveragePrecision)->Arg(1 << 20)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_F1Max)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace panda

BENCHMARK_MAIN();
