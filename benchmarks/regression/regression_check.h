// Judging measured metrics against a baseline, and the baseline an update
// writes. Pure functions of protos, apart from the file writer.
#ifndef PANDA_BENCHMARKS_REGRESSION_REGRESSION_CHECK_H_
#define PANDA_BENCHMARKS_REGRESSION_REGRESSION_CHECK_H_

#include <string>

#include "absl/status/status.h"
#include "benchmarks/regression/benchmark_matrix.pb.h"

namespace panda {

// PASS when `measured` lies in [expected - tolerance, expected + tolerance],
// REGRESSION below it, BETTER above it. A NaN measurement is a REGRESSION.
CheckResult::Verdict JudgeMetric(double measured, double expected,
                                 double tolerance);

// Fills `report.checks` from `entry`'s checks, the measured values in
// `result` (RunResult or SpeedMetrics) and `baseline`: one CheckResult per
// check, in the matrix's order. A check without a baseline value gets
// NO_BASELINE. A metric that `result` lacks is NotFound naming the metric,
// and leaves `report.checks` empty.
absl::Status JudgeEntry(const BenchmarkEntry& entry,
                        const google::protobuf::Message& result,
                        const BenchmarkBaseline& baseline, EntryReport& report);

// Returns OK when `baseline` has a value for every check of `matrix`, and
// otherwise NotFound naming the first entry and metric without one and the
// command that records it, `update_command`.
absl::Status CheckBaselineCoversMatrix(const BenchmarkMatrix& matrix,
                                       const BenchmarkBaseline& baseline,
                                       const std::string& baseline_path,
                                       const std::string& update_command);

// Returns the baseline that an update writes: for each entry of `matrix` in
// order, its measured values where `report` has the entry without an
// error, and otherwise its values in `previous` (if any). Entries that are
// no longer in the matrix are dropped. Values are rounded to 6 significant
// digits so that an update's diff shows changes, not noise in the last
// digits. `cores`, `devices` and `updated_at` come from `report`.
BenchmarkBaseline UpdatedBaseline(const BenchmarkMatrix& matrix,
                                  const BenchmarkBaseline& previous,
                                  const BenchmarkReport& report);

// Writes `baseline` to `path` atomically in text format, under a comment
// that names the command that rewrites it.
absl::Status WriteBenchmarkBaseline(const std::string& path,
                                    const BenchmarkBaseline& baseline,
                                    const std::string& update_command);

}  // namespace panda

#endif  // PANDA_BENCHMARKS_REGRESSION_REGRESSION_CHECK_H_
