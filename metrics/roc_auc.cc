#include "metrics/roc_auc.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "metrics/binary_scores.h"

namespace panda {

absl::StatusOr<double> RocAuc(absl::Span<const float> scores,
                              absl::Span<const int> labels) {
  absl::StatusOr<ClassCounts> counts =
      CountBinaryLabels("ROC-AUC", scores, labels);
  if (!counts.ok()) return counts.status();
  const int64_t num_anomalous = counts->anomalous;
  const int64_t num_normal = counts->normal;

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
