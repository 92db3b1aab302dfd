// ROC curves drawn as a PNG image.
#ifndef PANDA_CORE_ROC_PLOT_H_
#define PANDA_CORE_ROC_PLOT_H_

#include <string>

#include "absl/status/statusor.h"
#include "config/results.pb.h"

namespace panda {

// Returns the PNG bytes of a 720x560 chart with one ROC curve per normal
// class of the run's first seed (from ClassResult.roc_true_positive_rates),
// the chance diagonal, and a legend with each class's ROC-AUC.
absl::StatusOr<std::string> RenderRocCurvesPng(const RunResult& result);

}  // namespace panda

#endif  // PANDA_CORE_ROC_PLOT_H_
