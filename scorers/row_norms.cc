#include "scorers/row_norms.h"

#include <cmath>

namespace panda {

void SquaredRowNorms(const float* data, int64_t rows, int64_t cols,
                     float* norms) {
  for (int64_t row = 0; row < rows; ++row) {
    const float* values = data + row * cols;
    double sum = 0;
    for (int64_t c = 0; c < cols; ++c) {
      sum += static_cast<double>(values[c]) * values[c];
    }
    norms[row] = static_cast<float>(sum);
  }
}

int64_t FirstNonFiniteRow(const float* data, int64_t rows, int64_t cols) {
  for (int64_t row = 0; row < rows; ++row) {
    const float* values = data + row * cols;
    for (int64_t c = 0; c < cols; ++c) {
      if (!std::isfinite(values[c])) return row;
    }
  }
  return -1;
}

void ScaleRowsToUnitNorm(const float* data, const float* squared_norms,
                         int64_t rows, int64_t cols, float* out) {
  for (int64_t row = 0; row < rows; ++row) {
    const float norm = std::sqrt(squared_norms[row]);
    for (int64_t c = 0; c < cols; ++c) {
      out[row * cols + c] = data[row * cols + c] / norm;
    }
  }
}

}  // namespace panda
