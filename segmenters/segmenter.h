// Segmenter plugins: per-patch anomaly scores of test images given the patch
// features of normal training images.
//
// Lifecycle: create from options. The runner extracts the patch features
// that patch_spec() describes, calls Fit() once on the normal training
// images, then Score() on test images. The runner turns the patch scores
// into anomaly maps at the image size (segmenters/anomaly_maps.h). Score()
// before Fit() is FailedPrecondition. Computation runs on the device of the
// tensors passed to Fit().
#ifndef PANDA_SEGMENTERS_SEGMENTER_H_
#define PANDA_SEGMENTERS_SEGMENTER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/registry.h"
#include "torch/types.h"

namespace panda {

// The backbone outputs that make a patch feature.
struct PatchSpec {
  // Spatial taps of the backbone, resized to the grid of the largest one
  // and concatenated along channels.
  std::vector<std::string> taps;
  // Side of the average-pooling window applied to each tap before resizing,
  // so that a patch feature also describes its neighbours; 1 disables it.
  int neighbourhood = 1;
};

// Features of a set of images.
struct PatchFeatures {
  // float32 [N, D]: the backbone's "pooled" image features.
  torch::Tensor pooled;
  // float32 [N, H, W, C]: one C-dimensional feature per grid cell.
  torch::Tensor patches;
};

class Segmenter {
 public:
  virtual ~Segmenter() = default;

  virtual const PatchSpec& patch_spec() const = 0;

  // Takes the patch features of the normal training images.
  virtual absl::Status Fit(const PatchFeatures& train) = 0;

  // Returns float32 [M, H, W] patch scores on the CPU for M test images on
  // the training grid; higher means more anomalous.
  virtual absl::StatusOr<torch::Tensor> Score(const PatchFeatures& test) = 0;

  // Patch features searched at Score(), after Fit().
  virtual int64_t memory_bank_patches() const = 0;
  virtual int64_t memory_bank_bytes() const = 0;
};

Registry<Segmenter>& SegmenterRegistry();

// Returns the PatchSpec of a segmenter's options message, which has the
// fields `taps` and `neighbourhood`.
template <typename OptionsT>
PatchSpec PatchSpecOf(const OptionsT& options) {
  PatchSpec spec;
  spec.taps.assign(options.taps().begin(), options.taps().end());
  spec.neighbourhood = options.neighbourhood();
  return spec;
}

// Returns InvalidArgument starting with `plugin` unless `train` holds the
// [N, H, W, C] patch features of at least one image.
absl::Status CheckTrainingPatches(const PatchFeatures& train, const std::string& plugin);

}  // namespace panda

#endif  // PANDA_SEGMENTERS_SEGMENTER_H_
