#include "metrics/binary_scores.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace panda {

absl::StatusOr<ClassCounts> CountBinaryLabels(absl::string_view metric,
                                              absl::Span<const float> scores,
                                              absl::Span<const int> labels) {
  if (scores.size() != labels.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(metric, " needs one label per score, but got ",
                     scores.size(), " scores and ", labels.size(), " labels"));
  }
  if (scores.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        metric, " needs at least one score, but the test set is empty"));
  }

  ClassCounts counts;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0 && labels[i] != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(metric, ": label ", i, " is ", labels[i],
                       ", but labels must be 0 (normal) or 1 (anomalous)"));
    }
    if (std::isnan(scores[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(metric, ": score ", i, " is NaN"));
    }
    if (labels[i] == 1) {
      ++counts.anomalous;
    } else {
      ++counts.normal;
    }
  }

  if (counts.anomalous == 0 || counts.normal == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        metric, " needs both classes, but the test set has ", counts.normal,
        " normal (0) and ", counts.anomalous, " anomalous (1) examples"));
  }
  return counts;
}

std::vector<ThresholdCounts> SweepThresholds(absl::Span<const float> scores,
                                             absl::Span<const int> labels) {
  std::vector<std::pair<float, int>> ranked(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) ranked[i] = {scores[i], labels[i]};
  std::sort(ranked.begin(), ranked.end(),
            std::greater<std::pair<float, int>>());

  std::vector<ThresholdCounts> sweep;
  ThresholdCounts counts;
  for (size_t begin = 0; begin < ranked.size();) {
    counts.threshold = ranked[begin].first;
    size_t end = begin;
    while (end < ranked.size() && ranked[end].first == ranked[begin].first) {
      if (ranked[end].second == 1) {
        ++counts.true_positives;
      } else {
        ++counts.false_positives;
      }
      ++end;
    }
    sweep.push_back(counts);
    begin = end;
  }
  return sweep;
}

}  // namespace panda
