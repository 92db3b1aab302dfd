// Area under the per-region overlap (PRO) curve, the segmentation metric of
// MVTec AD (Bergmann et al., "The MVTec Anomaly Detection Dataset", IJCV
// 2021). Unlike pixel ROC-AUC, it weighs a small defect as much as a large
// one.
//
//   PANDA_ASSIGN_OR_RETURN(AuproResult result, Aupro(pixels, 0.3));
#ifndef PANDA_METRICS_AUPRO_H_
#define PANDA_METRICS_AUPRO_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "metrics/pixel_scores.h"

namespace panda {

struct AuproResult {
  // Area under the PRO curve from false positive rate 0 to `fpr_limit`,
  // divided by `fpr_limit`, so in [0, 1].
  double aupro = 0;
  double fpr_limit = 0;
  // Number of defect regions the PRO averages over.
  int64_t regions = 0;
  // PRO at false positive rate fpr_limit * i / kPixelCurveSteps for i = 0
  // ... kPixelCurveSteps, linearly interpolated between the curve's points as
  // the area is. Where several points share that rate, the highest PRO.
  std::vector<double> pro_curve;
};

// Computes the AUPRO of `pixels` up to `fpr_limit`.
//
// Regions are the 8-connected components of each image's mask. A threshold
// t flags every pixel scoring at least t. At t, the false positive rate is
// the fraction of normal pixels flagged, over all images (defect images
// included), and the PRO is the mean over all regions of the fraction of
// the region's pixels flagged. The curve has one point per distinct score,
// starts at (0, 0) and is integrated with the trapezoidal rule, interpolating
// linearly at `fpr_limit`.
//
// Exact over all thresholds: sorts the pixels once, O(P log P) for P pixels,
// and uses 8 bytes of memory per pixel. Returns InvalidArgument as
// CountPixelLabels does, or for a limit outside (0, 1].
absl::StatusOr<AuproResult> Aupro(const PixelScores& pixels,
                                  double fpr_limit = 0.3);

}  // namespace panda

#endif  // PANDA_METRICS_AUPRO_H_
