#include "scorers/smallest_k.h"

#include <cmath>
#include <limits>

namespace panda {
namespace {

// Candidates tested together for "any smaller than the current k-th": the
// test vectorises, and most groups contain no new neighbour.
constexpr int64_t kGroup = 16;

// Inserts `value` with `index` into the sorted list, whose first `*filled`
// slots are in use.
inline void Insert(float value, int64_t index, int64_t k, int64_t* filled,
                   float* values, int64_t* indices) {
  int64_t position = *filled < k ? (*filled)++ : k - 1;
  while (position > 0 && value < values[position - 1]) {
    values[position] = values[position - 1];
    indices[position] = indices[position - 1];
    --position;
  }
  values[position] = value;
  indices[position] = index;
}

template <bool kHasBias>
inline float Candidate(const float* products, const float* bias, float factor,
                       int64_t j) {
  if constexpr (kHasBias) {
    return bias[j] - factor * products[j];
  } else {
    return -factor * products[j];
  }
}

template <bool kHasBias>
void Merge(const float* products, const float* bias, float factor,
           int64_t cols, int64_t column_offset, int64_t k, float* values,
           int64_t* indices) {
  int64_t filled = 0;
  while (filled < k && indices[filled] >= 0) ++filled;

  int64_t j = 0;
  // Until the list is full every candidate enters. A NaN enters as
  // +infinity, so the list stays sorted; later it fails every comparison.
  for (; j < cols && filled < k; ++j) {
    float value = Candidate<kHasBias>(products, bias, factor, j);
    if (std::isnan(value)) value = std::numeric_limits<float>::infinity();
    Insert(value, column_offset + j, k, &filled, values, indices);
  }

  for (; j + kGroup <= cols; j += kGroup) {
    // An OR of comparisons vectorises without fast-math, unlike a minimum.
    const float threshold = values[k - 1];
    int below = 0;
    for (int64_t t = 0; t < kGroup; ++t) {
      below |= Candidate<kHasBias>(products, bias, factor, j + t) < threshold;
    }
    if (below == 0) continue;
    for (int64_t t = 0; t < kGroup; ++t) {
      const float value = Candidate<kHasBias>(products, bias, factor, j + t);
      if (value < values[k - 1]) {
        Insert(value, column_offset + j + t, k, &filled, values, indices);
      }
    }
  }

  for (; j < cols; ++j) {
    const float value = Candidate<kHasBias>(products, bias, factor, j);
    if (value < values[k - 1]) {
      Insert(value, column_offset + j, k, &filled, values, indices);
    }
  }
}

}  // namespace

void MergeSmallestK(const float* products, const float* bias, float factor,
                    int64_t cols, int64_t column_offset, int64_t k,
                    float* best_values, int64_t* best_indices) {
  if (bias != nullptr) {
    Merge<true>(products, bias, factor, cols, column_offset, k, best_values,
                best_indices);
  } else {
    Merge<false>(products, bias, factor, cols, column_offset, k, best_values,
                 best_indices);
  }
}

}  // namespace panda
