#include "metrics/roc_auc.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "metrics/binary_scores.h"

namespace panda {

absl::StatusOr<double> RocAuc(absl::Span<const float> scores,
                              absl::Span<const int> labels) {
  absl::StatusOr<ClassCounts> counts =
      CountBinaryLabels("ROC-AUC", scores, labels);
  if (!counts.ok()) return counts.status();

  std::vector<float> normal_scores;
  std::vector<float> anomalous_scores;
  normal_scores.reserve(counts->normal);
  anomalous_scores.reserve(counts->anomalous);
  for (size_t i = 0; i < scores.size(); ++i) {
    if (labels[i] == 1) {
      anomalous_scores.push_back(scores[i]);
    } else {
      normal_scores.push_back(scores[i]);
    }
  }
  std::sort(normal_scores.begin(), normal_scores.end());
  std::sort(anomalous_scores.begin(), anomalous_scores.end());
  return RocAucOfSortedScores(normal_scores, anomalous_scores);
}

double RocAucOfSortedScores(absl::Span<const float> normal_scores,
                            absl::Span<const float> anomalous_scores) {
  // Walks the distinct scores of both classes in ascending order. An
  // anomalous example beats every normal one below its score and ties with
  // the normal ones at its score. Counting in halves keeps the sum an exact
  // integer. The sum is at most n^2 / 2, so it fits in int64 for any n below
  // 2^31.
  int64_t twice_wins = 0;
  int64_t normal_below = 0;
  size_t normal = 0;
  size_t anomalous = 0;
  while (anomalous < anomalous_scores.size()) {
    float value = anomalous_scores[anomalous];
    if (normal < normal_scores.size()) {
      value = std::min(value, normal_scores[normal]);
    }

    // Compares with == so that -0.0 and 0.0 form one group.
    int64_t group_normal = 0;
    while (normal < normal_scores.size() && normal_scores[normal] == value) {
      ++group_normal;
      ++normal;
    }
    int64_t group_anomalous = 0;
    while (anomalous < anomalous_scores.size() &&
           anomalous_scores[anomalous] == value) {
      ++group_anomalous;
      ++anomalous;
    }

    twice_wins +=
        2 * group_anomalous * normal_below + group_anomalous * group_normal;
    normal_below += group_normal;
  }
  return static_cast<double>(twice_wins) /
         (2.0 * static_cast<double>(anomalous_scores.size()) *
          static_cast<double>(normal_scores.size()));
}

}  // namespace panda
