// F1-max: the best F1 score over all thresholds on anomaly scores, and the
// threshold that attains it.
//
//   PANDA_ASSIGN_OR_RETURN(F1MaxResult best, F1Max(scores, labels));
//   // Flag an example as anomalous when its score >= best.threshold.
#ifndef PANDA_METRICS_F1_MAX_H_
#define PANDA_METRICS_F1_MAX_H_

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace panda {

// The best operating point of a score.
struct F1MaxResult {
  // F1 = 2 * precision * recall / (precision + recall), in (0, 1].
  double f1 = 0;
  // Examples scoring at least this value are predicted anomalous. It is one
  // of the input scores.
  float threshold = 0;
  // Precision and recall at `threshold`.
  double precision = 0;
  double recall = 0;
};

// Finds the maximum F1 over the distinct scores used as thresholds, where
// examples scoring at least the threshold are predicted anomalous. Tied
// scores form one threshold. When several thresholds reach the same F1, the
// highest of them is returned, since it raises the fewest alarms among them.
// The F1 values are the ones scikit-learn's precision_recall_curve implies.
//
//   scores: one per example; higher means more anomalous. Infinities are
//     allowed, NaN is not.
//   labels: one per example; 1 = anomalous (positive), 0 = normal.
//
// Runs in O(n log n). Returns InvalidArgument for mismatched sizes, empty
// input, a label other than 0 or 1, a NaN score, or labels of only one class.
absl::StatusOr<F1MaxResult> F1Max(absl::Span<const float> scores,
                                  absl::Span<const int> labels);

}  // namespace panda

#endif  // PANDA_METRICS_F1_MAX_H_
