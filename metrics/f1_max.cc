#include "metrics/f1_max.h"

#include <cstdint>
#include <vector>

#include "absl/numeric/int128.h"
#include "metrics/binary_scores.h"

namespace panda {

absl::StatusOr<F1MaxResult> F1Max(absl::Span<const float> scores,
                                  absl::Span<const int> labels) {
  absl::StatusOr<ClassCounts> counts =
      CountBinaryLabels("F1-max", scores, labels);
  if (!counts.ok()) return counts.status();

  // F1 = 2 TP / (2 TP + FP + FN) with FN = anomalous - TP. Comparing the
  // fractions by cross-multiplying the integer counts in 128 bits keeps
  // exact ties exact at any input size.
  F1MaxResult best;
  int64_t best_numerator = 0;
  int64_t best_denominator = 1;
  for (const ThresholdCounts& point : SweepThresholds(scores, labels)) {
    const int64_t numerator = 2 * point.true_positives;
    const int64_t denominator =
        point.true_positives + point.false_positives + counts->anomalous;
    if (absl::int128(numerator) * best_denominator <=
        absl::int128(best_numerator) * denominator) {
      continue;
    }

    best_numerator = numerator;
    best_denominator = denominator;
    best.threshold = point.threshold;
    best.precision =
        static_cast<double>(point.true_positives) /
        static_cast<double>(point.true_positives + point.false_positives);
    best.recall = static_cast<double>(point.true_positives) /
                  static_cast<double>(counts->anomalous);
  }
  best.f1 = static_cast<double>(best_numerator) /
            static_cast<double>(best_denominator);
  return best;
}

}  // namespace panda
