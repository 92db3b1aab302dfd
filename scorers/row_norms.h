// Row-wise passes over contiguous row-major float32 matrices, for the CPU
// path of exact kNN. They run on the calling thread; the caller splits rows
// across threads.
#ifndef PANDA_SCORERS_ROW_NORMS_H_
#define PANDA_SCORERS_ROW_NORMS_H_

#include <cstdint>

namespace panda {

// Writes the squared L2 norm of each of `rows` rows of `cols` values at
// `data` to `norms[row]`, summed in double precision and rounded to float.
// A row with a NaN or infinite value gets a NaN or infinite norm.
void SquaredRowNorms(const float* data, int64_t rows, int64_t cols,
                     float* norms);

// Returns the first of `rows` rows of `cols` values at `data` that contains
// a NaN or an infinity, or -1 if every value is finite.
int64_t FirstNonFiniteRow(const float* data, int64_t rows, int64_t cols);

// Writes each row divided by the square root of its entry in
// `squared_norms` (all positive) to `out`, which may equal `data`.
void ScaleRowsToUnitNorm(const float* data, const float* squared_norms,
                         int64_t rows, int64_t cols, float* out);

}  // namespace panda

#endif  // PANDA_SCORERS_ROW_NORMS_H_
