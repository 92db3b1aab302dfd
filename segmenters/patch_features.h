// Patch features for segmentation: several spatial backbone outputs brought
// to one grid and concatenated, so that each grid cell of an image has one
// feature vector that mixes fine and coarse layers.
#ifndef PANDA_SEGMENTERS_PATCH_FEATURES_H_
#define PANDA_SEGMENTERS_PATCH_FEATURES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "backbones/backbone.h"
#include "segmenters/segmenter.h"
#include "torch/types.h"

namespace panda {

// Runs `backbone` over uint8 [N, H, W, C] CPU `images` in batches and
// returns their pooled features and patch features on the CPU. Each tap of
// `spec` is average-pooled over spec.neighbourhood cells (stride 1, so its
// size is kept), resized bilinearly to the largest tap's grid and
// concatenated along channels in the order of spec.taps.
//
// Errors: an empty tap list, the "pooled" tap, and a neighbourhood that is
// even or below 1 are InvalidArgument. An unknown tap keeps the backbone's
// error. A tap that is not a [N, C, H, W] map is InvalidArgument naming it,
// and NaN or infinite features are InvalidArgument naming the first image. `label`
// starts messages and titles the progress bar.
absl::StatusOr<PatchFeatures> ExtractPatchFeatures(Backbone& backbone,
                                                   const torch::Tensor& images,
                                                   const PatchSpec& spec,
                                                   int64_t batch_size,
                                                   const torch::Device& device,
                                                   const std::string& label);

}  // namespace panda

#endif  // PANDA_SEGMENTERS_PATCH_FEATURES_H_
