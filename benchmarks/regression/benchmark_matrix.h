// Reading benchmark matrices and baselines (benchmarks/regression/
// benchmark_matrix.proto, protobuf text format).
#ifndef PANDA_BENCHMARKS_REGRESSION_BENCHMARK_MATRIX_H_
#define PANDA_BENCHMARKS_REGRESSION_BENCHMARK_MATRIX_H_

#include <string>

#include "absl/status/statusor.h"
#include "benchmarks/regression/benchmark_matrix.pb.h"
#include "config/pipeline.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/repeated_field.h"

namespace panda {

// Reads and checks the matrix at `path`, so that a bad entry fails before
// any entry runs. Errors name the file, the entry and the field at fault.
// A missing matrix or pipeline config is NotFound. InvalidArgument covers
// syntax errors and unknown fields (with line and column), missing or
// repeated entry names, entries without a kind or checks, invalid pipeline
// configs, overrides that do not apply, metrics that the entry's result
// does not have, and missing or negative tolerances.
absl::StatusOr<BenchmarkMatrix> LoadBenchmarkMatrix(const std::string& path);

// Loads pipeline config `config_path`, applies the `set` overrides in order
// and replaces normal_classes when `normal_classes` is not empty, then
// checks the result as LoadPipelineConfig checks a file. `context` starts
// every error message (the matrix file and entry).
absl::StatusOr<PipelineConfig> BuildPipelineConfig(
    const std::string& config_path,
    const google::protobuf::RepeatedPtrField<std::string>& set,
    const google::protobuf::RepeatedField<int32_t>& normal_classes,
    const std::string& context);

// The message whose fields `entry`'s checks name: RunResult for pipeline
// entries, SpeedMetrics for speed entries.
const google::protobuf::Descriptor& EntryResultDescriptor(
    const BenchmarkEntry& entry);

// The baseline that `matrix_path` is checked against unless --baseline
// names another: "x_matrix.pbtxt" maps to "x_baseline.pbtxt" and any other
// "x.pbtxt" to "x_baseline.pbtxt", in the same folder.
std::string DefaultBaselinePath(const std::string& matrix_path);

// Reads the baseline at `path`. NotFound when the file does not exist,
// InvalidArgument for a syntax error or a repeated entry or metric.
absl::StatusOr<BenchmarkBaseline> LoadBenchmarkBaseline(
    const std::string& path);

// Returns the expected value of `metric` of entry `entry`, or nullptr when
// `baseline` has none.
const BaselineValue* FindBaselineValue(const BenchmarkBaseline& baseline,
                                       const std::string& entry,
                                       const std::string& metric);

}  // namespace panda

#endif  // PANDA_BENCHMARKS_REGRESSION_BENCHMARK_MATRIX_H_
