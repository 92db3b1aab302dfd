// Selections of images: per-class subsets and the images of one class.
#ifndef PANDA_CORE_SUBSET_H_
#define PANDA_CORE_SUBSET_H_

#include <cstdint>
#include <vector>

#include "datasets/dataset.h"
#include "torch/types.h"

namespace panda {

// Returns the indices of the images to keep, increasing: at most
// `max_per_class` of each class, the first ones in data set order, or, with
// `random`, ones drawn with `seed`. 0 keeps all. Needs only the labels, so
// a subset can be chosen before any image is decoded.
std::vector<int64_t> LimitPerClassIndices(const std::vector<int64_t>& labels,
                                          int max_per_class, bool random,
                                          int64_t seed);

// Keeps the images, labels and masks that LimitPerClassIndices chooses.
ImageSet LimitPerClass(const ImageSet& set, int max_per_class, bool random,
                       int64_t seed);

// Returns the int64 indices of the images labelled `label`, in order.
torch::Tensor IndicesOfClass(const std::vector<int64_t>& labels, int64_t label);

// Splits `indices` (int64 [N]) into a held-out part of round(N * fraction)
// entries drawn with `seed` and the rest, both in their original order.
// Keeps at least one index in the rest.
void SplitHoldout(const torch::Tensor& indices, double fraction, int64_t seed,
                  torch::Tensor* rest, torch::Tensor* holdout);

}  // namespace panda

#endif  // PANDA_CORE_SUBSET_H_
