// Running selection of the k smallest values of long rows, for the CPU path
// of exact kNN. torch::topk copies each row into a buffer of (value, index)
// pairs before selecting. For small k this single pass is several times
// faster, and it adds the bias of each bank row on the way.
#ifndef PANDA_SCORERS_SMALLEST_K_H_
#define PANDA_SCORERS_SMALLEST_K_H_

#include <cstdint>

namespace panda {

// Merges one row of candidates into a running list of the k smallest.
//
// Candidate j is `bias[j] - factor * products[j]` for j in [0, cols), or
// `-factor * products[j]` when `bias` is null, and is known by index
// `column_offset + j`. `best_values` and `best_indices` (k entries each) are
// the running list in ascending order. Empty slots sit at the end with index
// -1 and value +infinity, and a new list starts with every slot empty. A NaN
// candidate counts as +infinity. Among equal values the earlier candidate
// stays first.
void MergeSmallestK(const float* products, const float* bias, float factor,
                    int64_t cols, int64_t column_offset, int64_t k,
                    float* best_values, int64_t* best_indices);

}  // namespace panda

#endif  // PANDA_SCORERS_SMALLEST_K_H_
