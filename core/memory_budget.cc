#include "core/memory_budget.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace panda {
namespace {

constexpr double kMebibyte = 1 << 20;

}  // namespace

int64_t StreamedImages(int64_t kept, int64_t batch_size) {
  return std::min(kept, 3 * std::max<int64_t>(batch_size, 1));
}

MemoryEstimate EstimateRunMemory(const RunMemoryShape& shape) {
  int64_t pixels = 1;
  for (int64_t extent : shape.image_shape) pixels *= extent;

  MemoryEstimate estimate;
  estimate.bytes = shape.decoded_images * pixels +
                   (shape.train_images + shape.test_images) *
                       shape.feature_dim * 4;
  estimate.parts = "images and features";
  if (shape.patch_grid.size() == 3 && shape.image_shape.size() >= 2) {
    estimate.bytes += shape.train_images * shape.patch_grid[0] *
                          shape.patch_grid[1] * shape.patch_grid[2] * 4 +
                      shape.test_images * shape.image_shape[0] *
                          shape.image_shape[1] * 4;
    estimate.parts = "images, features, patch bank and maps";
  }
  return estimate;
}

int64_t AvailableMemoryBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    long long kibibytes = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %lld kB", &kibibytes) == 1) {
      return static_cast<int64_t>(kibibytes) * 1024;
    }
  }
  return 0;
}

int64_t MemoryBudgetBytes(const PipelineConfig& config) {
  if (config.memory_budget_mib() > 0) {
    return config.memory_budget_mib() * (int64_t{1} << 20);
  }
  return AvailableMemoryBytes();
}

std::string MemoryBudgetSource(const PipelineConfig& config) {
  return config.memory_budget_mib() > 0 ? "memory_budget_mib" : "MemAvailable";
}

absl::Status CheckMemoryBudget(const MemoryEstimate& estimate,
                               int64_t budget_bytes,
                               const std::string& budget_source) {
  if (budget_bytes <= 0 || estimate.bytes <= budget_bytes) {
    return absl::OkStatus();
  }
  return absl::ResourceExhaustedError(absl::StrFormat(
      "the run needs about %.0f MiB for %s, more than the memory budget of "
      "%.0f MiB (%s); lower subset.max_train_per_class and "
      "subset.max_test_per_class, or the data set's image_size, or set "
      "memory_budget_mib if more memory is free",
      estimate.bytes / kMebibyte, estimate.parts, budget_bytes / kMebibyte,
      budget_source));
}

}  // namespace panda
