// Runs one entry of a benchmark matrix and judges its metrics.
#ifndef PANDA_BENCHMARKS_REGRESSION_ENTRY_RUNNER_H_
#define PANDA_BENCHMARKS_REGRESSION_ENTRY_RUNNER_H_

#include <string>

#include "benchmarks/regression/benchmark_matrix.pb.h"

namespace panda {

// Runs `entry` (checked by LoadBenchmarkMatrix) and returns its report with
// one CheckResult per check, judged against `baseline`. Pipeline entries
// keep features, checkpoints and indexes in `cache_dir`, which the caller
// creates empty for each benchmark run so that nothing comes from an older
// run. A failure of the entry, LibTorch exceptions included, is returned
// in the report's `error` field rather than as a status, so that the other
// entries still run.
EntryReport RunBenchmarkEntry(const BenchmarkEntry& entry,
                              const BenchmarkBaseline& baseline,
                              const std::string& cache_dir);

}  // namespace panda

#endif  // PANDA_BENCHMARKS_REGRESSION_ENTRY_RUNNER_H_
