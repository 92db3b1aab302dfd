// The alarm threshold a deployment derives from held-out normal data: the
// score above which a chosen fraction of normal images would be flagged.
//
//   // 1% of held-out normal images score above `threshold`, or fewer.
//   PANDA_ASSIGN_OR_RETURN(float threshold,
//                          ThresholdFromNormalScores(validation_scores, 0.01));
//   const bool anomalous = score > threshold;
#ifndef PANDA_METRICS_NORMAL_SCORE_THRESHOLD_H_
#define PANDA_METRICS_NORMAL_SCORE_THRESHOLD_H_

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace panda {

// Returns the (1 - `false_positive_rate`) quantile of `normal_scores`,
// without interpolation: with the n scores sorted ascending as x_1 <= ... <=
// x_n, the result is x_k for k = n - floor(false_positive_rate * n). This is
// the inverse of the empirical distribution function (numpy.quantile's
// method="inverted_cdf"), so the result is always one of the inputs, and at
// most floor(false_positive_rate * n) of the held-out normal scores lie
// strictly above it. The rate therefore resolves in steps of 1 / n, and a
// rate below 1 / n returns the highest normal score.
//
// The product false_positive_rate * n is rounded down with a tolerance of
// 1e-9, so that 0.1 * 30 counts as 3 despite binary rounding.
//
//   normal_scores: anomaly scores of normal examples the detector was not
//     fitted on; higher means more anomalous. Infinities are allowed.
//   false_positive_rate: the fraction of normal examples that may score above
//     the threshold, in [0, 1).
//
// Runs in O(n). Returns InvalidArgument for empty scores, a NaN score, or a
// rate outside [0, 1) or NaN.
absl::StatusOr<float> ThresholdFromNormalScores(
    absl::Span<const float> normal_scores, double false_positive_rate);

}  // namespace panda

#endif  // PANDA_METRICS_NORMAL_SCORE_THRESHOLD_H_
