// `panda benchmark MATRIX`: runs every entry of a benchmark matrix, prints
// expected against measured values, and fails on a regression.
//
//   panda benchmark benchmarks/ci_matrix.pbtxt
//   panda benchmark benchmarks/ci_matrix.pbtxt --update_baseline
#ifndef PANDA_BENCHMARKS_REGRESSION_BENCHMARK_COMMAND_H_
#define PANDA_BENCHMARKS_REGRESSION_BENCHMARK_COMMAND_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace panda {

struct BenchmarkCommandOptions {
  std::string matrix_path;
  // Empty: DefaultBaselinePath(matrix_path).
  std::string baseline_path;
  // JSON report file; empty writes none.
  std::string json_path;
  // Rewrite the baseline from this run's measurements instead of failing on
  // regressions.
  bool update_baseline = false;
  // Names of the entries to run, in the matrix's order; empty runs all.
  std::vector<std::string> entries;
};

// Loads and checks the matrix and its baseline before running anything, then
// runs the entries in a fresh feature cache folder (removed afterwards),
// with one progress line per entry on stderr. Prints the table of
// FormatBenchmarkTable to stdout, writes the JSON report, and with
// update_baseline rewrites the baseline atomically. An update keeps the
// values of entries it did not run.
//
// Errors: a bad matrix or baseline file fails as LoadBenchmarkMatrix and
// LoadBenchmarkBaseline report it. A baseline without a value that a check
// needs is NotFound naming the update command. An unknown name in `entries`
// is InvalidArgument. When an entry fails or a metric falls below its
// tolerance band, the status is OutOfRange, after the table and JSON are
// written, and its message names each such entry and metric. With
// update_baseline, regressions do not fail the command, but a failed entry
// does and leaves the baseline as it was.
absl::Status RunBenchmarkCommand(const BenchmarkCommandOptions& options);

}  // namespace panda

#endif  // PANDA_BENCHMARKS_REGRESSION_BENCHMARK_COMMAND_H_
