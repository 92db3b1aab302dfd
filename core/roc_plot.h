// ROC curves drawn as a PNG image.
#ifndef PANDA_CORE_ROC_PLOT_H_
#define PANDA_CORE_ROC_PLOT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/results.pb.h"

namespace panda {

// One curve of a ROC chart.
struct RocCurve {
  // Legend text.
  std::string label;
  // True positive rates at false positive rates 0, 1/n, ..., 1 (n + 1
  // values, n >= 1), such as ClassResult.roc_true_positive_rates or
  // PixelRoc.true_positive_rates.
  std::vector<float> true_positive_rates;
};

// Returns the PNG bytes of a 720x560 chart with the chance diagonal, each
// curve of `curves` that has at least two values, and a legend entry for
// each curve drawn.
absl::StatusOr<std::string> RenderRocCurvesPng(
    const std::vector<RocCurve>& curves);

// Returns the PNG bytes of a chart with one ROC curve per normal class of
// the run's first seed (from ClassResult.roc_true_positive_rates), labelled
// with the class and its ROC-AUC.
absl::StatusOr<std::string> RenderRocCurvesPng(const RunResult& result);

// The same chart of the pixel ROC curves of a segmentation run, from
// SegmentationResult.pixel_roc_true_positive_rates.
absl::StatusOr<std::string> RenderPixelRocCurvesPng(const RunResult& result);

}  // namespace panda

#endif  // PANDA_CORE_ROC_PLOT_H_
