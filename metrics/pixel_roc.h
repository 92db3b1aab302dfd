// Pixel-level ROC of anomaly maps against ground-truth masks: every pixel of
// every test image is one example, defect pixels are positive.
//
//   PANDA_ASSIGN_OR_RETURN(PixelRoc roc, ComputePixelRoc(pixels));
#ifndef PANDA_METRICS_PIXEL_ROC_H_
#define PANDA_METRICS_PIXEL_ROC_H_

#include <vector>

#include "absl/status/statusor.h"
#include "metrics/pixel_scores.h"

namespace panda {

struct PixelRoc {
  // Exact ROC-AUC over all pixels, ties counting as half (see RocAuc).
  double roc_auc = 0;
  // True positive rate at false positive rate i / kPixelCurveSteps for i = 0
  // ... kPixelCurveSteps: that of the lowest threshold whose false positive
  // rate is at most that value, as in the image-level ROC curve.
  std::vector<float> true_positive_rates;
};

// Computes the pixel ROC-AUC and ROC curve of `pixels`. Copies the scores
// once, split by class (4 bytes per pixel), and runs in O(P log P) for P
// pixels. Returns InvalidArgument as CountPixelLabels does.
absl::StatusOr<PixelRoc> ComputePixelRoc(const PixelScores& pixels);

// Returns ComputePixelRoc(pixels).roc_auc.
absl::StatusOr<double> PixelRocAuc(const PixelScores& pixels);

}  // namespace panda

#endif  // PANDA_METRICS_PIXEL_ROC_H_
