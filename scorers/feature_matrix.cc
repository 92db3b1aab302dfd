#include "scorers/feature_matrix.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "ATen/Parallel.h"
#include "absl/strings/str_cat.h"
#include "c10/util/StringUtil.h"
#include "scorers/row_norms.h"

namespace panda {
namespace {

constexpr int64_t kFloatBytes = sizeof(float);

// Bound on the temporary of bank norms computed with LibTorch operations
// (CUDA or strided banks). The apps set glibc to keep freed memory mapped, so
// a budget-sized temporary at Fit() would stay resident beside the search
// block.
constexpr int64_t kNormChunkBytes = int64_t{8} << 20;

// Rows of `features` (D columns) whose float32 temporaries fit the budget.
int64_t RowsPerChunk(const torch::Tensor& features,
                     int64_t memory_budget_bytes) {
  const int64_t row_bytes = std::max<int64_t>(1, features.size(1)) * kFloatBytes;
  return std::max<int64_t>(1, memory_budget_bytes / row_bytes);
}

// Rows per thread task in the plain-loop passes: about 2^20 values, so a
// small matrix, such as one chunk of queries, stays on the calling thread.
// Tiny parallel regions cost more than they save on a busy machine, because
// each one waits for its slowest thread to be scheduled.
int64_t RowsPerTask(int64_t cols) {
  return std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, cols));
}

// Whether the plain-loop passes (row_norms.h) can read `features` directly.
bool IsContiguousCpu(const torch::Tensor& features) {
  return features.is_cpu() && features.is_contiguous();
}

// FirstNonFiniteRow() over a contiguous CPU float32 matrix, in parallel.
int64_t FirstNonFiniteRowOf(const torch::Tensor& features) {
  const int64_t cols = features.size(1);
  const float* data = features.data_ptr<float>();
  std::atomic<int64_t> first{-1};
  at::parallel_for(0, features.size(0), RowsPerTask(cols),
                   [&](int64_t begin, int64_t end) {
                     const int64_t row =
                         FirstNonFiniteRow(data + begin * cols, end - begin, cols);
                     if (row < 0) return;
                     int64_t seen = first.load();
                     while ((seen < 0 || begin + row < seen) &&
                            !first.compare_exchange_weak(seen, begin + row)) {
                     }
                   });
  return first.load();
}

}  // namespace

absl::Status ValidateFeatureMatrix(const torch::Tensor& features,
                                   const std::string& name,
                                   int64_t memory_budget_bytes) {
  if (!features.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is an undefined tensor"));
  }
  if (features.dim() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be a 2-D [rows, dims] tensor, but has shape ",
                     c10::str(features.sizes())));
  }
  if (features.scalar_type() != torch::kFloat32) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be float32, but is ",
                     c10::toString(features.scalar_type())));
  }
  if (IsContiguousCpu(features) && features.size(1) > 0) {
    const int64_t first_bad_row = FirstNonFiniteRowOf(features);
    if (first_bad_row < 0) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(name, " contains NaN or infinite values, first in row ",
                     first_bad_row));
  }

  // In chunks, because isfinite() makes a temporary as large as its input.
  const int64_t rows = features.size(0);
  const int64_t chunk = RowsPerChunk(features, memory_budget_bytes);
  for (int64_t start = 0; start < rows && features.size(1) > 0;
       start += chunk) {
    const torch::Tensor part =
        features.narrow(0, start, std::min(chunk, rows - start));
    // A NaN or infinity makes the sum non-finite, so one reduction clears
    // the common case; a finite sum that overflows takes the full check.
    if (std::isfinite(part.sum().item<float>())) continue;
    if (torch::isfinite(part).all().item<bool>()) continue;
    const int64_t first_bad_row = torch::logical_not(torch::isfinite(part))
                                      .any(/*dim=*/1)
                                      .nonzero()[0][0]
                                      .item<int64_t>();
    return absl::InvalidArgumentError(
        absl::StrCat(name, " contains NaN or infinite values, first in row ",
                     start + first_bad_row));
  }
  return absl::OkStatus();
}

torch::Tensor ComputeSquaredNorms(const torch::Tensor& features,
                                  int64_t memory_budget_bytes) {
  const int64_t rows = features.size(0);
  torch::Tensor norms = torch::empty({rows}, features.options());
  if (IsContiguousCpu(features)) {
    const int64_t cols = features.size(1);
    const float* data = features.data_ptr<float>();
    float* out = norms.data_ptr<float>();
    at::parallel_for(0, rows, RowsPerTask(cols), [&](int64_t begin, int64_t end) {
      SquaredRowNorms(data + begin * cols, end - begin, cols, out + begin);
    });
    return norms;
  }
  const int64_t chunk = RowsPerChunk(
      features, std::min(memory_budget_bytes, kNormChunkBytes));
  for (int64_t start = 0; start < rows; start += chunk) {
    const int64_t count = std::min(chunk, rows - start);
    const torch::Tensor part = features.narrow(0, start, count);
    norms.narrow(0, start, count).copy_((part * part).sum(1));
  }
  return norms;
}

torch::Tensor UnitRows(const torch::Tensor& features,
                       const torch::Tensor& squared_norms) {
  if (!IsContiguousCpu(features) || !squared_norms.is_contiguous()) {
    return features / squared_norms.sqrt().unsqueeze(1);
  }
  torch::Tensor rows = torch::empty_like(features);
  const int64_t cols = features.size(1);
  const float* data = features.data_ptr<float>();
  const float* norms = squared_norms.data_ptr<float>();
  float* out = rows.data_ptr<float>();
  at::parallel_for(0, features.size(0), RowsPerTask(cols),
                   [&](int64_t begin, int64_t end) {
                     ScaleRowsToUnitNorm(data + begin * cols, norms + begin,
                                         end - begin, cols, out + begin * cols);
                   });
  return rows;
}

absl::Status RejectZeroRows(const torch::Tensor& squared_norms,
                            const std::string& name, int64_t row_offset) {
  const torch::Tensor zero_rows = (squared_norms == 0).nonzero();
  if (zero_rows.size(0) == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      name, " row ", row_offset + zero_rows[0][0].item<int64_t>(),
      " has zero L2 norm, so its cosine distance is undefined"));
}

}  // namespace panda
