#include "metrics/roc_auc.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace panda {
namespace {

absl::Status ValidateInputs(absl::Span<const float> scores,
                            absl::Span<const int> labels) {
  if (scores.size() != labels.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ROC-AUC needs one label per score, but got ",
                     scores.size(), " scores and ", labels.size(), " labels"));
  }
  if (scores.empty()) {
    return absl::InvalidArgumentError(
        "ROC-AUC needs at least one score, but the test set is empty");
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0 && labels[i] != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label ", i, " is ", labels[i],
          ", but labels must be 0 (normal) or 1 (anomalous)"));
    }
    if (std::isnan(scores[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("score ", i, " is NaN"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<double> RocAuc(absl::Span<const float> scores,
                              absl::Span<const int> labels) {
  if (absl::Status status = ValidateInputs(scores, labels); !status.ok()) {
    return status;
  }

  const int64_t num_examples = static_cast<int64_t>(scores.size());
  int64_t num_anomalous = 0;
  for (int label : labels) num_anomalous += label;
  const int64_t num_normal = num_examples - num_anomalous;
  if (num_anomalous == 0 || num_normal == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ROC-AUC needs both classes, but the test set has ", num_normal,
        " normal (0) and ", num_anomalous, " anomalous (1) examples"));
  }

  std::vector<std::pair<float, int>> ranked(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) ranked[i] = {scores[i], labels[i]};
  std::sort(ranked.begin(), ranked.end());

  // Walks groups of equal scores in ascending order. An anomalous example
  // beats every normal one in earlier groups and ties with the normal ones in
  // its own group. Counting in halves keeps the sum an exact integer. The sum
  // is at most n^2 / 2, so it fits in int64 for any n below 2^31.
  int64_t twice_wins = 0;
  int64_t normal_below = 0;
  for (size_t begin = 0; begin < ranked.size();) {
    size_t end = begin;
    int64_t group_anomalous = 0;
    // Compares with == so that -0.0 and 0.0 form one group.
    while (end < ranked.size() && ranked[end].first == ranked[begin].first) {
      group_anomalous += ranked[end].second;
      ++end;
    }
    const int64_t group_normal =
        static_cast<int64_t>(end - begin) - group_anomalous;
    twice_wins += 2 * group_anomalous * normal_below +
                  group_anomalous * group_normal;
    normal_below += group_normal;
    begin = end;
  }
  return static_cast<double>(twice_wins) /
         (2.0 * static_cast<double>(num_anomalous) *
          static_cast<double>(num_normal));
}

}  // namespace panda
