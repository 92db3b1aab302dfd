// From patch scores on a coarse grid to anomaly maps at the image size.
#ifndef PANDA_SEGMENTERS_ANOMALY_MAPS_H_
#define PANDA_SEGMENTERS_ANOMALY_MAPS_H_

#include <cstdint>

#include "torch/types.h"

namespace panda {

// Returns the 1-D Gaussian kernel of standard deviation `sigma` (> 0),
// truncated at 4 sigma as scipy.ndimage.gaussian_filter does, normalised to
// sum 1: float32 [2r + 1] with r = round(4 sigma).
torch::Tensor GaussianKernel(double sigma);

// Upsamples float32 [M, h, w] `patch_scores` bilinearly (half-pixel centres)
// to [M, height, width], then smooths each map with a Gaussian of `sigma`
// pixels, separably, mirroring the map at its borders (scipy's "reflect"
// mode). `sigma` 0 skips smoothing. Runs on the scores' device.
torch::Tensor PatchScoresToAnomalyMaps(const torch::Tensor& patch_scores,
                                       int64_t height, int64_t width,
                                       double sigma);

}  // namespace panda

#endif  // PANDA_SEGMENTERS_ANOMALY_MAPS_H_
