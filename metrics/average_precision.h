// Average precision (AP): the area under the precision-recall curve of
// anomaly scores, as scikit-learn's average_precision_score defines it.
//
//   PANDA_ASSIGN_OR_RETURN(double ap, AveragePrecision(scores, labels));
#ifndef PANDA_METRICS_AVERAGE_PRECISION_H_
#define PANDA_METRICS_AVERAGE_PRECISION_H_

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace panda {

// Computes AP = sum_n (R_n - R_{n-1}) * P_n over the distinct scores in
// descending order, where P_n and R_n are the precision and recall when every
// example scoring at least the n-th highest distinct score is predicted
// anomalous, and R_0 = 0. Tied scores form one threshold. The sum is a step
// function (no trapezoids), so AP equals the mean of the precisions at each
// anomalous example's rank when no scores tie.
//
//   scores: one per example; higher means more anomalous. Infinities are
//     allowed, NaN is not.
//   labels: one per example; 1 = anomalous (positive), 0 = normal.
//
// Runs in O(n log n). Returns InvalidArgument for mismatched sizes, empty
// input, a label other than 0 or 1, a NaN score, or labels of only one class.
absl::StatusOr<double> AveragePrecision(absl::Span<const float> scores,
                                        absl::Span<const int> labels);

}  // namespace panda

#endif  // PANDA_METRICS_AVERAGE_PRECISION_H_
