// Runs one pipeline config end to end under the one-class protocol: each
// normal class in turn trains on its own training images and is tested on
// the whole test split, where every other class is anomalous.
//
//   dataset -> backbone features (cached) -> adapter -> scorer -> ROC-AUC
#ifndef PANDA_CORE_PIPELINE_RUNNER_H_
#define PANDA_CORE_PIPELINE_RUNNER_H_

#include "absl/status/statusor.h"
#include "config/pipeline.pb.h"
#include "config/results.pb.h"

namespace panda {

// Runs `config` and returns per-class and mean ROC-AUC with timings. Writes
// nothing but feature caches; see WriteRunResults for the result files.
absl::StatusOr<RunResult> RunPipeline(const PipelineConfig& config);

}  // namespace panda

#endif  // PANDA_CORE_PIPELINE_RUNNER_H_
