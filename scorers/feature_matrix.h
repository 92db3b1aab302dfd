// Checks and row norms of float32 [rows, dims] feature matrices for exact
// kNN, in bounded memory. On contiguous CPU matrices they are plain loops
// (row_norms.h) split across threads; elsewhere LibTorch operations in
// chunks.
#ifndef PANDA_SCORERS_FEATURE_MATRIX_H_
#define PANDA_SCORERS_FEATURE_MATRIX_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "torch/types.h"

namespace panda {

// Checks that `features` is a defined 2-D float32 tensor with finite values.
// InvalidArgument names the matrix by `name` and gives the first bad row.
// Temporaries stay within `memory_budget_bytes` (at least one row).
absl::Status ValidateFeatureMatrix(const torch::Tensor& features,
                                   const std::string& name,
                                   int64_t memory_budget_bytes);

// Returns the float32 [rows] squared L2 norms of the rows of float32
// `features`, on their device.
torch::Tensor ComputeSquaredNorms(const torch::Tensor& features,
                                  int64_t memory_budget_bytes);

// Returns a copy of float32 [rows, dims] `features` with each row divided by
// its L2 norm, the square root of float32 [rows] `squared_norms` (all
// positive), on the device of `features`.
torch::Tensor UnitRows(const torch::Tensor& features,
                       const torch::Tensor& squared_norms);

// Returns InvalidArgument naming the first zero entry of `squared_norms` as
// row `row_offset` + its index of `name`: a row without a direction, so
// without a cosine distance.
absl::Status RejectZeroRows(const torch::Tensor& squared_norms,
                            const std::string& name, int64_t row_offset);

}  // namespace panda

#endif  // PANDA_SCORERS_FEATURE_MATRIX_H_
