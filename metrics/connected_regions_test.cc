#include "metrics/connected_regions.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace panda {
namespace {

// Second implementation: every defect pixel starts with its own index and
// repeatedly takes the smallest index among its 8 neighbours until nothing
// changes, so each region ends with the index of its first pixel. Regions are
// then numbered in the order of those first pixels.
std::vector<int32_t> LabelByPropagation(const std::vector<uint8_t>& mask,
                                        int height, int width) {
  std::vector<int> smallest(mask.size(), -1);
  for (size_t i = 0; i < mask.size(); ++i) {
    if (mask[i] != 0) smallest[i] = static_cast<int>(i);
  }
  bool changed = true;
  while (changed) {
    changed = false;
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const int pixel = y * width + x;
        if (smallest[pixel] < 0) continue;
        for (int dy = -1; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) {
            const int ny = y + dy;
            const int nx = x + dx;
            if (ny < 0 || ny >= height || nx < 0 || nx >= width) continue;
            const int neighbour = smallest[ny * width + nx];
            if (neighbour >= 0 && neighbour < smallest[pixel]) {
              smallest[pixel] = neighbour;
              changed = true;
            }
          }
        }
      }
    }
  }

  std::map<int, int32_t> number_of_first_pixel;
  std::vector<int32_t> labels(mask.size(), kNoRegion);
  for (size_t i = 0; i < mask.size(); ++i) {
    if (smallest[i] < 0) continue;
    auto [entry, inserted] = number_of_first_pixel.emplace(
        smallest[i], static_cast<int32_t>(number_of_first_pixel.size()));
    labels[i] = entry->second;
  }
  return labels;
}

std::vector<int32_t> Label(const std::vector<uint8_t>& mask, int height,
                           int width, int32_t& regions) {
  std::vector<int32_t> labels(mask.size(), 12345);
  regions = LabelConnectedRegions(mask, height, width, absl::MakeSpan(labels));
  return labels;
}

TEST(ConnectedRegionsTest, DiagonalNeighboursShareRegion) {
  // Pixels touching only at a corner are one region under 8-connectivity.
  const std::vector<uint8_t> mask = {1, 0, 0,
                                     0, 1, 0,
                                     0, 0, 1};
  int32_t regions = 0;
  const std::vector<int32_t> labels = Label(mask, 3, 3, regions);
  EXPECT_EQ(regions, 1);
  EXPECT_EQ(labels, (std::vector<int32_t>{0, -1, -1,
                                          -1, 0, -1,
                                          -1, -1, 0}));
}

TEST(ConnectedRegionsTest, NumbersRegionsInRowMajorOrder) {
  // The region whose first pixel comes first is region 0, even though the
  // other region reaches further up on the right. Any nonzero value is a
  // defect.
  const std::vector<uint8_t> mask = {0, 0, 0, 7,
                                     5, 0, 0, 7,
                                     5, 0, 0, 0,
                                     0, 0, 255, 255};
  int32_t regions = 0;
  const std::vector<int32_t> labels = Label(mask, 4, 4, regions);
  EXPECT_EQ(regions, 3);
  EXPECT_EQ(labels, (std::vector<int32_t>{-1, -1, -1, 0,
                                          1, -1, -1, 0,
                                          1, -1, -1, -1,
                                          -1, -1, 2, 2}));
}

TEST(ConnectedRegionsTest, FollowsWindingShape) {
  // A U whose arms meet only through the bottom row, and a separate dot.
  const std::vector<uint8_t> mask = {1, 0, 1, 0, 0,
                                     1, 0, 1, 0, 1,
                                     1, 1, 1, 0, 0};
  int32_t regions = 0;
  const std::vector<int32_t> labels = Label(mask, 3, 5, regions);
  EXPECT_EQ(regions, 2);
  EXPECT_EQ(labels, (std::vector<int32_t>{0, -1, 0, -1, -1,
                                          0, -1, 0, -1, 1,
                                          0, 0, 0, -1, -1}));
}

TEST(ConnectedRegionsTest, EmptyMaskHasNoRegions) {
  int32_t regions = 0;
  const std::vector<int32_t> labels =
      Label(std::vector<uint8_t>(6, 0), 2, 3, regions);
  EXPECT_EQ(regions, 0);
  EXPECT_EQ(labels, std::vector<int32_t>(6, kNoRegion));
}

TEST(ConnectedRegionsTest, MatchesPropagationOnRandomMasks) {
  std::mt19937 generator(7);
  for (int trial = 0; trial < 100; ++trial) {
    const int height = 1 + trial % 9;
    const int width = 1 + (trial * 7) % 13;
    std::bernoulli_distribution defect(0.2 + 0.1 * (trial % 5));
    std::vector<uint8_t> mask(height * width);
    for (uint8_t& value : mask) value = defect(generator) ? 1 : 0;

    int32_t regions = 0;
    const std::vector<int32_t> labels = Label(mask, height, width, regions);
    const std::vector<int32_t> expected =
        LabelByPropagation(mask, height, width);
    EXPECT_EQ(labels, expected) << "trial " << trial;
    EXPECT_EQ(regions, 1 + *std::max_element(expected.begin(), expected.end()))
        << "trial " << trial;
  }
}

}  // namespace
}  // namespace panda
