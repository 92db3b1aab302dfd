// Validation of a pipeline config without running it: every plugin is
// created, every image of both splits is decoded, one test image is passed
// through the backbone (and the segmenter's taps), the output folders are
// probed, and the memory the run needs is estimated against the memory
// available.
#ifndef PANDA_CORE_PIPELINE_CHECK_H_
#define PANDA_CORE_PIPELINE_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/memory_budget.h"
#include "config/pipeline.pb.h"

namespace panda {

// One line of a check report.
struct CheckFinding {
  // What was checked, e.g. "dataset idx, test split".
  std::string subject;
  // OK, or what is wrong.
  absl::Status status;
  // What was found when OK, e.g. "10000 images of 28x28x1".
  std::string detail;
};

// Checks `config` step by step. A failed step does not stop the steps that
// do not depend on it, so one call reports every independent problem.
std::vector<CheckFinding> CheckPipeline(const PipelineConfig& config);

// Returns one line per finding ("ok" or "FAILED") and a closing verdict.
std::string FormatCheckReport(const std::vector<CheckFinding>& findings);

}  // namespace panda

#endif  // PANDA_CORE_PIPELINE_CHECK_H_
