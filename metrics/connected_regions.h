// Connected regions of a binary mask, the defect regions that AUPRO averages
// over.
#ifndef PANDA_METRICS_CONNECTED_REGIONS_H_
#define PANDA_METRICS_CONNECTED_REGIONS_H_

#include <cstdint>

#include "absl/types/span.h"

namespace panda {

// Label of a pixel outside every region in LabelConnectedRegions.
inline constexpr int32_t kNoRegion = -1;

// Labels the 8-connected regions of the nonzero pixels of `mask`, one image
// of `height` x `width` pixels in row-major order: pixels that touch at an
// edge or a corner share a region. Writes each pixel's region, numbered
// 0, 1, ... in the order of the region's first pixel in row-major order,
// or kNoRegion for a zero pixel, to `labels`, and returns the number of
// regions. Expects both spans to hold height * width elements.
int32_t LabelConnectedRegions(absl::Span<const uint8_t> mask, int64_t height,
                              int64_t width, absl::Span<int32_t> labels);

}  // namespace panda

#endif  // PANDA_METRICS_CONNECTED_REGIONS_H_
