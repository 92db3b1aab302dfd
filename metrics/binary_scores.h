// Input checks and the threshold sweep shared by the metrics of binary
// anomaly scores (ROC-AUC, average precision, F1-max).
//
// Every metric takes one score per example (higher means more anomalous) and
// one label per example: 1 = anomalous (the positive class), 0 = normal.
#ifndef PANDA_METRICS_BINARY_SCORES_H_
#define PANDA_METRICS_BINARY_SCORES_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace panda {

// Number of examples of each class.
struct ClassCounts {
  int64_t normal = 0;
  int64_t anomalous = 0;
};

// Validates `scores` and `labels` for `metric` (the name used in messages,
// e.g. "ROC-AUC") and counts the examples of each class. Returns
// InvalidArgument for mismatched sizes, empty input, a label other than 0 or
// 1, a NaN score, or labels of only one class.
absl::StatusOr<ClassCounts> CountBinaryLabels(absl::string_view metric,
                                              absl::Span<const float> scores,
                                              absl::Span<const int> labels);

// Confusion counts when every example scoring at least `threshold` is
// predicted anomalous.
struct ThresholdCounts {
  float threshold = 0;
  int64_t true_positives = 0;
  int64_t false_positives = 0;
};

// Returns the counts at every distinct score, highest threshold first, so
// tied scores form one threshold. Scores compare with ==, so -0.0 and 0.0
// are one threshold. Expects input that CountBinaryLabels accepted.
std::vector<ThresholdCounts> SweepThresholds(absl::Span<const float> scores,
                                             absl::Span<const int> labels);

}  // namespace panda

#endif  // PANDA_METRICS_BINARY_SCORES_H_
