#include "metrics/average_precision.h"

#include <cstdint>
#include <vector>

#include "metrics/binary_scores.h"

namespace panda {

absl::StatusOr<double> AveragePrecision(absl::Span<const float> scores,
                                        absl::Span<const int> labels) {
  absl::StatusOr<ClassCounts> counts =
      CountBinaryLabels("average precision", scores, labels);
  if (!counts.ok()) return counts.status();
  const double num_anomalous = static_cast<double>(counts->anomalous);

  double sum = 0;
  int64_t previous_true_positives = 0;
  for (const ThresholdCounts& point : SweepThresholds(scores, labels)) {
    const int64_t new_true_positives =
        point.true_positives - previous_true_positives;
    if (new_true_positives > 0) {
      const double recall_step =
          static_cast<double>(new_true_positives) / num_anomalous;
      const double precision =
          static_cast<double>(point.true_positives) /
          static_cast<double>(point.true_positives + point.false_positives);
      sum += recall_step * precision;
    }
    previous_true_positives = point.true_positives;
  }
  return sum;
}

}  // namespace panda
