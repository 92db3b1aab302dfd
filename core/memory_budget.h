// The memory a run needs for its decoded images, features, patch bank and
// anomaly maps, estimated from the shapes before anything is decoded, and
// the check of that estimate against the config's memory budget. Both the
// runner (at the start of a run) and `panda check` use it.
#ifndef PANDA_CORE_MEMORY_BUDGET_H_
#define PANDA_CORE_MEMORY_BUDGET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "config/pipeline.pb.h"

namespace panda {

// Counts and shapes of what a run keeps in memory.
struct RunMemoryShape {
  // Images decoded and held at once. Segmentation loads both whole splits
  // before it takes the subset, and an adapter that trains keeps every image
  // the subset chose. Images streamed into feature extraction are held only
  // for the batches in flight (StreamedImages).
  int64_t decoded_images = 0;
  // Images the subset keeps of each split; each has a pooled feature.
  int64_t train_images = 0;
  int64_t test_images = 0;
  // Shape of one decoded image: height, width, channels (uint8).
  std::vector<int64_t> image_shape;
  // Length of one pooled feature (float32).
  int64_t feature_dim = 0;
  // Patch grid of a segmentation run, [H, W, C] (float32); empty otherwise.
  std::vector<int64_t> patch_grid;
};

// Returns the images held at once while `kept` images are streamed in
// batches of `batch_size`: the batch in the forward pass and up to two
// batches that ImageStream decodes ahead of it.
int64_t StreamedImages(int64_t kept, int64_t batch_size);

// Estimate of a run's memory, in bytes, and what it counts.
struct MemoryEstimate {
  int64_t bytes = 0;
  // E.g. "images, features, patch bank and maps".
  std::string parts;
};

// Estimates the memory a run of `shape` needs: the decoded images, the
// pooled features of both splits and, for segmentation, the training patch
// bank and one float32 anomaly map per test image. It leaves out the
// backbone's weights and activations, and the scorer's index.
MemoryEstimate EstimateRunMemory(const RunMemoryShape& shape);

// Returns the budget in bytes of `config`: memory_budget_mib, or, when it
// is 0, the memory available now (AvailableMemoryBytes); 0 when neither is
// known.
int64_t MemoryBudgetBytes(const PipelineConfig& config);

// Checks `estimate` against `budget_bytes` (0: unknown, always passes).
// Returns ResourceExhausted giving both in MiB, where the budget came from
// (`budget_source`) and what to change: the subset limits, the data set's
// image size, or memory_budget_mib.
absl::Status CheckMemoryBudget(const MemoryEstimate& estimate,
                               int64_t budget_bytes,
                               const std::string& budget_source);

// Returns where MemoryBudgetBytes takes the budget of `config` from, for
// messages: "memory_budget_mib" or "MemAvailable".
std::string MemoryBudgetSource(const PipelineConfig& config);

// Returns the memory the system can still give, from /proc/meminfo's
// MemAvailable, in bytes; 0 when unknown.
int64_t AvailableMemoryBytes();

}  // namespace panda

#endif  // PANDA_CORE_MEMORY_BUDGET_H_
