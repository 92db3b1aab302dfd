// Runs one pipeline config end to end under the one-class protocol: each
// normal class in turn trains on its own training images and is tested on
// the whole test split, where every other class is anomalous.
//
//   dataset -> backbone features (cached) -> adapter -> scorer -> ROC-AUC
//
// With a segmenter, each class also gets anomaly maps from patch features
// (core/segmented_scoring.h): pixel metrics, and image scores from the maps.
#ifndef PANDA_CORE_PIPELINE_RUNNER_H_
#define PANDA_CORE_PIPELINE_RUNNER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "config/pipeline.pb.h"
#include "config/results.pb.h"
#include "core/run_file.h"

namespace panda {

// Runs `config` and returns per-class and mean ROC-AUC with timings. Writes
// nothing but feature caches; see WriteRunResults for the result files.
// Segmentation runs add their pictures to `files` when it is not null.
absl::StatusOr<RunResult> RunPipeline(const PipelineConfig& config,
                                      std::vector<RunFile>* files = nullptr);

}  // namespace panda

#endif  // PANDA_CORE_PIPELINE_RUNNER_H_
