// Test helper: anomaly maps and masks owned by a test, with the view that
// the pixel metrics take.
#ifndef PANDA_METRICS_OWNED_PIXELS_H_
#define PANDA_METRICS_OWNED_PIXELS_H_

#include <cstdint>
#include <vector>

#include "metrics/pixel_scores.h"

namespace panda {

struct OwnedPixels {
  std::vector<float> maps;
  std::vector<uint8_t> masks;
  int64_t images = 0;
  int64_t height = 0;
  int64_t width = 0;

  PixelScores View() const { return {maps, masks, images, height, width}; }
};

}  // namespace panda

#endif  // PANDA_METRICS_OWNED_PIXELS_H_
