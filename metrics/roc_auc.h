// Area under the ROC curve of anomaly scores, the metric PANDA reports.
//
//   PANDA_ASSIGN_OR_RETURN(double auc, RocAuc(scores, labels));
#ifndef PANDA_METRICS_ROC_AUC_H_
#define PANDA_METRICS_ROC_AUC_H_

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace panda {

// Computes the exact ROC-AUC of `scores` against `labels`: the probability
// that a random anomalous example scores higher than a random normal one,
// with a tied pair counting as half. This equals the Mann-Whitney U statistic
// divided by n_anomalous * n_normal.
//
//   scores: one per example; higher means more anomalous. Infinities are
//     allowed, NaN is not.
//   labels: one per example; 1 = anomalous (positive), 0 = normal.
//
// Runs in O(n log n). Returns InvalidArgument for mismatched sizes, empty
// input, a label other than 0 or 1, a NaN score, or labels of only one class.
absl::StatusOr<double> RocAuc(absl::Span<const float> scores,
                              absl::Span<const int> labels);

// Computes the same ROC-AUC from the scores of each class, each sorted in
// ascending order, in O(n). Expects both classes non-empty and no NaN, so
// only callers that validated their input (RocAuc, the pixel metrics) use it.
double RocAucOfSortedScores(absl::Span<const float> normal_scores,
                            absl::Span<const float> anomalous_scores);

}  // namespace panda

#endif  // PANDA_METRICS_ROC_AUC_H_
