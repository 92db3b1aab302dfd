// Speed checks of the benchmark matrix: the code under test and a reference
// that does the core of the same work, timed alternately in one process.
// Their ratio, unlike an absolute time, carries over between machines of
// one kind, so a baseline can hold it with a loose tolerance.
#ifndef PANDA_BENCHMARKS_REGRESSION_SPEED_CHECKS_H_
#define PANDA_BENCHMARKS_REGRESSION_SPEED_CHECKS_H_

#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "benchmarks/regression/benchmark_matrix.pb.h"
#include "config/pipeline.pb.h"

namespace panda {

struct SpeedMeasurement {
  SpeedMetrics metrics;
  // Medians and samples in seconds; `measured_work`, `reference_work`,
  // `threads` and `device` are left for the caller.
  SpeedTimings timings;
};

// Returns the median of `values`, the mean of the middle two for an even
// count. `values` must not be empty.
double Median(std::vector<double> values);

// Runs `measured` and `reference` once each untimed, then `repeats` (>= 1)
// timed rounds of one run each. The order alternates between rounds, so
// neither side always runs on caches the other has warmed. Returns the
// medians, every sample and relative_speed = median reference seconds /
// median measured seconds. The first error of either callable is returned
// as it is.
absl::StatusOr<SpeedMeasurement> TimeSideBySide(
    const std::function<absl::Status()>& measured,
    const std::function<absl::Status()>& reference, int repeats);

// Times SearchKnn (squared L2, float32) against torch::mm of the same size
// on random float32 data (seed 0), on CUDA when LibTorch finds a GPU and on
// the CPU otherwise. Invalid sizes are InvalidArgument.
absl::StatusOr<SpeedMeasurement> MeasureKnnSearchSpeed(
    const KnnSearchSpeed& options, int repeats);

// Times ExtractPooledFeatures on the first `images` images of the test
// split of `config`'s dataset against Backbone::Forward on the same images,
// preprocessed beforehand, in batches of config.batch_size() on
// config.device(). Plugin, data and device errors are returned as they are.
absl::StatusOr<SpeedMeasurement> MeasureFeatureExtractionSpeed(
    const PipelineConfig& config, int images, int repeats);

}  // namespace panda

#endif  // PANDA_BENCHMARKS_REGRESSION_SPEED_CHECKS_H_
