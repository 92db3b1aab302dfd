#include "core/subset.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <random>

#include "torch/torch.h"

namespace panda {

std::vector<int64_t> LimitPerClassIndices(const std::vector<int64_t>& labels,
                                          int max_per_class, bool random,
                                          int64_t seed) {
  std::vector<int64_t> keep;
  if (max_per_class <= 0) {
    keep.resize(labels.size());
    std::iota(keep.begin(), keep.end(), int64_t{0});
    return keep;
  }

  std::map<int64_t, std::vector<int64_t>> per_class;
  for (size_t i = 0; i < labels.size(); ++i) {
    per_class[labels[i]].push_back(static_cast<int64_t>(i));
  }

  // std::mt19937_64 with std::shuffle's own algorithm is fixed per standard
  // library, so a seed gives the same subset on every run of one build.
  std::mt19937_64 generator(static_cast<uint64_t>(seed));
  for (auto& [label, indices] : per_class) {
    if (random) std::shuffle(indices.begin(), indices.end(), generator);
    const size_t count =
        std::min(indices.size(), static_cast<size_t>(max_per_class));
    keep.insert(keep.end(), indices.begin(), indices.begin() + count);
  }
  std::sort(keep.begin(), keep.end());
  return keep;
}

ImageSet LimitPerClass(const ImageSet& set, int max_per_class, bool random,
                       int64_t seed) {
  if (max_per_class <= 0) return set;
  const std::vector<int64_t> keep =
      LimitPerClassIndices(set.labels, max_per_class, random, seed);

  ImageSet subset;
  for (int64_t index : keep) subset.labels.push_back(set.labels[index]);
  const torch::Tensor kept = torch::tensor(keep, torch::kInt64);
  subset.images = set.images.index_select(0, kept);
  if (set.masks.defined()) subset.masks = set.masks.index_select(0, kept);
  return subset;
}

torch::Tensor IndicesOfClass(const std::vector<int64_t>& labels,
                             int64_t label) {
  std::vector<int64_t> indices;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] == label) indices.push_back(static_cast<int64_t>(i));
  }
  return torch::tensor(indices, torch::kInt64);
}

void SplitHoldout(const torch::Tensor& indices, double fraction, int64_t seed,
                  torch::Tensor* rest, torch::Tensor* holdout) {
  const int64_t count = indices.numel();
  int64_t holdout_count = static_cast<int64_t>(std::llround(count * fraction));
  holdout_count = std::clamp<int64_t>(holdout_count, 0, count - 1);

  std::vector<int64_t> order(count);
  for (int64_t i = 0; i < count; ++i) order[i] = i;
  std::mt19937_64 generator(static_cast<uint64_t>(seed));
  std::shuffle(order.begin(), order.end(), generator);
  std::vector<bool> held(count, false);
  for (int64_t i = 0; i < holdout_count; ++i) held[order[i]] = true;

  std::vector<int64_t> kept_positions, held_positions;
  for (int64_t i = 0; i < count; ++i) {
    (held[i] ? held_positions : kept_positions).push_back(i);
  }
  *rest = indices.index_select(0, torch::tensor(kept_positions, torch::kInt64));
  *holdout = indices.index_select(0, torch::tensor(held_positions, torch::kInt64));
}

}  // namespace panda
