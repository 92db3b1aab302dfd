#include "metrics/normal_score_threshold.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace panda {

absl::StatusOr<float> ThresholdFromNormalScores(
    absl::Span<const float> normal_scores, double false_positive_rate) {
  if (!(false_positive_rate >= 0.0 && false_positive_rate < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("false positive rate is ", false_positive_rate,
                     ", but it must be at least 0 and below 1"));
  }
  if (normal_scores.empty()) {
    return absl::InvalidArgumentError(
        "a threshold needs at least one normal score, but none were given");
  }
  for (size_t i = 0; i < normal_scores.size(); ++i) {
    if (std::isnan(normal_scores[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("normal score ", i, " is NaN"));
    }
  }

  const int64_t n = static_cast<int64_t>(normal_scores.size());
  const int64_t allowed_above = static_cast<int64_t>(
      std::floor(false_positive_rate * static_cast<double>(n) + 1e-9));
  // A rate just below 1 can round up to allowed_above = n: the clamp then
  // returns the lowest score, above which n - 1 scores lie.
  const int64_t rank = std::max<int64_t>(0, n - 1 - allowed_above);

  std::vector<float> sorted(normal_scores.begin(), normal_scores.end());
  std::nth_element(sorted.begin(), sorted.begin() + rank, sorted.end());
  return sorted[static_cast<size_t>(rank)];
}

}  // namespace panda
