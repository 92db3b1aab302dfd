// The printed form of a benchmark report.
#ifndef PANDA_BENCHMARKS_REGRESSION_REPORT_TABLE_H_
#define PANDA_BENCHMARKS_REGRESSION_REPORT_TABLE_H_

#include <string>
#include <vector>

#include "benchmarks/regression/benchmark_matrix.pb.h"

namespace panda {

// Formats `report` as a plain-text table, one row per entry and metric:
// expected value, tolerance, measured value, the verdict ("pass",
// "REGRESSION", "better", "new" without a baseline value, "ERROR" for an
// entry that failed) and the entry's wall time. The absolute times of
// speed entries follow the table.
std::string FormatBenchmarkTable(const BenchmarkReport& report);

// One line per regression and per failed entry, naming the entry and the
// metric, for the error message of a failed benchmark.
std::vector<std::string> DescribeFailures(const BenchmarkReport& report);

// One line per metric above its tolerance band, naming the entry and the
// metric and asking for a baseline update with `update_command`.
std::vector<std::string> DescribeImprovements(
    const BenchmarkReport& report, const std::string& update_command);

}  // namespace panda

#endif  // PANDA_BENCHMARKS_REGRESSION_REPORT_TABLE_H_
