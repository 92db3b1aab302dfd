#include "metrics/connected_regions.h"

#include <algorithm>
#include <vector>

namespace panda {

int32_t LabelConnectedRegions(absl::Span<const uint8_t> mask, int64_t height,
                              int64_t width, absl::Span<int32_t> labels) {
  std::fill(labels.begin(), labels.end(), kNoRegion);

  // Flood-fills each region from its first unlabelled pixel. An explicit
  // stack, unlike recursion, cannot overflow on a region of millions of
  // pixels.
  int32_t regions = 0;
  std::vector<int64_t> stack;
  for (int64_t seed = 0; seed < height * width; ++seed) {
    if (mask[seed] == 0 || labels[seed] != kNoRegion) continue;
    labels[seed] = regions;
    stack.push_back(seed);
    while (!stack.empty()) {
      const int64_t pixel = stack.back();
      stack.pop_back();
      const int64_t row = pixel / width;
      const int64_t column = pixel % width;
      for (int64_t y = std::max<int64_t>(row - 1, 0);
           y <= std::min(row + 1, height - 1); ++y) {
        for (int64_t x = std::max<int64_t>(column - 1, 0);
             x <= std::min(column + 1, width - 1); ++x) {
          const int64_t neighbour = y * width + x;
          if (mask[neighbour] != 0 && labels[neighbour] == kNoRegion) {
            labels[neighbour] = regions;
            stack.push_back(neighbour);
          }
        }
      }
    }
    ++regions;
  }
  return regions;
}

}  // namespace panda
