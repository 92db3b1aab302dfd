#include "metrics/pixel_roc.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "metrics/roc_auc.h"

namespace panda {

absl::StatusOr<PixelRoc> ComputePixelRoc(const PixelScores& pixels) {
  absl::StatusOr<PixelCounts> counts = CountPixelLabels("pixel ROC", pixels);
  if (!counts.ok()) return counts.status();

  std::vector<float> normal_scores;
  std::vector<float> defect_scores;
  normal_scores.reserve(counts->normal);
  defect_scores.reserve(counts->defect);
  for (size_t i = 0; i < pixels.maps.size(); ++i) {
    if (pixels.masks[i] != 0) {
      defect_scores.push_back(pixels.maps[i]);
    } else {
      normal_scores.push_back(pixels.maps[i]);
    }
  }
  std::sort(normal_scores.begin(), normal_scores.end());
  std::sort(defect_scores.begin(), defect_scores.end());

  PixelRoc roc;
  roc.roc_auc = RocAucOfSortedScores(normal_scores, defect_scores);

  // At most `allowed` normal pixels may be flagged. The lowest threshold that
  // flags no more than that lies just above the normal score `allowed` places
  // from the top, so it flags exactly the defect pixels scoring above it.
  const int64_t normal = counts->normal;
  const int64_t defect = counts->defect;
  for (int step = 0; step <= kPixelCurveSteps; ++step) {
    const double false_positive_rate =
        static_cast<double>(step) / kPixelCurveSteps;
    const int64_t allowed =
        static_cast<int64_t>(std::floor(false_positive_rate * normal + 1e-9));
    if (allowed >= normal) {
      roc.true_positive_rates.push_back(1.0f);
      continue;
    }
    const float highest_unflagged = normal_scores[normal - 1 - allowed];
    const int64_t flagged =
        defect_scores.end() - std::upper_bound(defect_scores.begin(),
                                               defect_scores.end(),
                                               highest_unflagged);
    roc.true_positive_rates.push_back(static_cast<float>(
        static_cast<double>(flagged) / static_cast<double>(defect)));
  }
  return roc;
}

absl::StatusOr<double> PixelRocAuc(const PixelScores& pixels) {
  absl::StatusOr<PixelRoc> roc = ComputePixelRoc(pixels);
  if (!roc.ok()) return roc.status();
  return roc->roc_auc;
}

}  // namespace panda
