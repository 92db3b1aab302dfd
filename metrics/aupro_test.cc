#include "metrics/aupro.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "metrics/owned_pixels.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

// Two images of 2 x 4 pixels. Masks (regions named):
//
//   image A:  R1 R1 .  .      image B:  R3 .  .  .
//             .  .  .  R2               .  R3 .  R4
//
// R3's two pixels touch only at a corner, so they are one region under
// 8-connectivity. That gives 4 regions (R1 and R3 of 2 pixels, R2 and R4 of
// 1) and 10 normal pixels. Scores:
//
//   image A:  4  2  3  1      image B:  3  1  1  1
//             1  1  1  2                2  1  1  1
//
// R1 scores 4 and 2, R2 2, R3 3 and 1, R4 1. The normal pixels score 3 (A),
// 2 (B) and eight 1s.
OwnedPixels WorkedExample() {
  OwnedPixels pixels;
  pixels.maps = {4, 2, 3, 1, 1, 1, 1, 2,
                 3, 1, 1, 1, 2, 1, 1, 1};
  pixels.masks = {1, 1, 0, 0, 0, 0, 0, 1,
                  1, 0, 0, 0, 0, 1, 0, 1};
  pixels.images = 2;
  pixels.height = 2;
  pixels.width = 4;
  return pixels;
}

// The curve of WorkedExample, from the scores above:
//
//   threshold  flagged normals  FPR    region overlaps R1 R2 R3 R4  PRO
//   (start)                     0                                   0
//   4          0                0      1/2 0   0   0                1/8
//   3          1                1/10   1/2 0   1/2 0                1/4
//   2          2                1/5    1   1   1/2 0                5/8
//   1          10               1      1   1   1   1                1
//
// Up to the limit 0.3 the trapezoids are (the first step, from (0, 0) to
// (0, 1/8), is vertical and adds nothing):
//   0 to 1/10:    1/10 x (1/8 + 1/4) / 2 = 3/160
//   1/10 to 1/5:  1/10 x (1/4 + 5/8) / 2 = 7/160
//   1/5 to 0.3:   the PRO at 0.3 is 5/8 + (1 - 5/8) / (4/5) x 1/10 = 43/64,
//                 so 1/10 x (5/8 + 43/64) / 2 = 83/1280
// The area is 24/1280 + 56/1280 + 83/1280 = 163/1280, and divided by the
// limit 3/10 that is 163/384.
TEST(AuproTest, WorkedExample) {
  absl::StatusOr<AuproResult> result = Aupro(WorkedExample().View(), 0.3);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_DOUBLE_EQ(result->aupro, 163.0 / 384.0);
  EXPECT_EQ(result->fpr_limit, 0.3);
  EXPECT_EQ(result->regions, 4);
}

TEST(AuproTest, WorkedExampleDefaultLimitIsPointThree) {
  absl::StatusOr<AuproResult> result = Aupro(WorkedExample().View());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_DOUBLE_EQ(result->aupro, 163.0 / 384.0);
}

TEST(AuproTest, WorkedExampleWholeCurve) {
  // 3/160 + 7/160, then 1/5 to 1: 4/5 x (5/8 + 1) / 2 = 13/20, which sums to
  // 1/16 + 13/20 = 57/80. The limit 1 leaves it as it is.
  absl::StatusOr<AuproResult> result = Aupro(WorkedExample().View(), 1.0);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_DOUBLE_EQ(result->aupro, 57.0 / 80.0);
}

TEST(AuproTest, WorkedExampleLimitOnAPoint) {
  // The limit 1/5 is the third point's rate: (3/160 + 7/160) / (1/5) = 5/16.
  absl::StatusOr<AuproResult> result = Aupro(WorkedExample().View(), 0.2);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_DOUBLE_EQ(result->aupro, 5.0 / 16.0);
}

TEST(AuproTest, WorkedExampleCurveSamples) {
  // The grid spans 0 to 0.3 in steps of 0.003:
  //   step 0, FPR 0: the highest PRO at rate 0, 1/8
  //   step 20, FPR 0.06: 1/8 + (1/4 - 1/8) x 0.6 = 1/5
  //   step 50, FPR 0.15: 1/4 + (5/8 - 1/4) x 0.5 = 7/16
  //   step 100, FPR 0.3: 43/64
  absl::StatusOr<AuproResult> result = Aupro(WorkedExample().View(), 0.3);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->pro_curve.size(), kPixelCurveSteps + 1);
  EXPECT_DOUBLE_EQ(result->pro_curve[0], 1.0 / 8.0);
  EXPECT_DOUBLE_EQ(result->pro_curve[20], 1.0 / 5.0);
  EXPECT_DOUBLE_EQ(result->pro_curve[50], 7.0 / 16.0);
  EXPECT_DOUBLE_EQ(result->pro_curve[100], 43.0 / 64.0);
}

TEST(AuproTest, AllScoresTiedGivesDiagonal) {
  // One threshold flags everything: the curve runs straight from (0, 0) to
  // (1, 1), and the area up to 0.3 is 0.3^2 / 2, so AUPRO = 0.3 / 2 = 3/20.
  OwnedPixels pixels = WorkedExample();
  pixels.maps.assign(pixels.maps.size(), 0.5f);
  absl::StatusOr<AuproResult> result = Aupro(pixels.View(), 0.3);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_DOUBLE_EQ(result->aupro, 3.0 / 20.0);
}

TEST(AuproTest, TieAcrossClassesIsOneThreshold) {
  // Every defect pixel and the normal pixel of image A that scored 3 now
  // score 5, the other normals 1. Threshold 5 flags all regions and 1 of 10
  // normals: (0, 0) to (1/10, 1) to (1, 1). Up to 0.3 the area is
  // 1/10 x 1/2 + 2/10 x 1 = 1/4, so AUPRO = (1/4) / (3/10) = 5/6. Were the
  // tied pixels split into two thresholds with the defects first, it would
  // be 1.
  OwnedPixels pixels = WorkedExample();
  for (size_t i = 0; i < pixels.maps.size(); ++i) {
    pixels.maps[i] = pixels.masks[i] != 0 ? 5.0f : 1.0f;
  }
  pixels.maps[2] = 5.0f;
  absl::StatusOr<AuproResult> result = Aupro(pixels.View(), 0.3);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_DOUBLE_EQ(result->aupro, 5.0 / 6.0);
}

TEST(AuproTest, SignedZerosAreOneThreshold) {
  // A defect at -0.0 and a normal at 0.0 tie: (0, 0) to (1, 1), AUPRO 1/2
  // up to the limit 1.
  OwnedPixels pixels;
  pixels.maps = {-0.0f, 0.0f};
  pixels.masks = {1, 0};
  pixels.images = 1;
  pixels.height = 1;
  pixels.width = 2;
  absl::StatusOr<AuproResult> result = Aupro(pixels.View(), 1.0);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_DOUBLE_EQ(result->aupro, 0.5);
}

TEST(AuproTest, PerfectMapIsOne) {
  // Every defect pixel above every normal one: (0, 0) to (0, 1) to (1, 1).
  OwnedPixels pixels = WorkedExample();
  for (size_t i = 0; i < pixels.maps.size(); ++i) {
    pixels.maps[i] = pixels.masks[i] != 0 ? 1.0f + i : -1.0f * i;
  }
  absl::StatusOr<AuproResult> result = Aupro(pixels.View(), 0.3);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_DOUBLE_EQ(result->aupro, 1.0);
  EXPECT_EQ(result->pro_curve.front(), 1.0);
}

// Second implementation, written for clarity rather than speed.

// Labels each image's 8-connected regions by repeatedly giving every defect
// pixel the smallest index among itself and its neighbours, so a region ends
// with the index of its first pixel. Returns a region number per pixel over
// all images, or -1.
std::vector<int> RegionsByPropagation(const OwnedPixels& pixels) {
  const int height = static_cast<int>(pixels.height);
  const int width = static_cast<int>(pixels.width);
  std::vector<int> smallest(pixels.masks.size(), -1);
  for (size_t i = 0; i < smallest.size(); ++i) {
    if (pixels.masks[i] != 0) smallest[i] = static_cast<int>(i);
  }
  bool changed = true;
  while (changed) {
    changed = false;
    for (int image = 0; image < pixels.images; ++image) {
      for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
          const int pixel = (image * height + y) * width + x;
          if (smallest[pixel] < 0) continue;
          for (int ny = std::max(y - 1, 0); ny <= std::min(y + 1, height - 1);
               ++ny) {
            for (int nx = std::max(x - 1, 0);
                 nx <= std::min(x + 1, width - 1); ++nx) {
              const int other = smallest[(image * height + ny) * width + nx];
              if (other >= 0 && other < smallest[pixel]) {
                smallest[pixel] = other;
                changed = true;
              }
            }
          }
        }
      }
    }
  }
  std::map<int, int> number;
  std::vector<int> regions(smallest.size(), -1);
  for (size_t i = 0; i < smallest.size(); ++i) {
    if (smallest[i] < 0) continue;
    regions[i] = number.emplace(smallest[i], number.size()).first->second;
  }
  return regions;
}

struct CurvePoint {
  double fpr;
  double pro;
};

// Counts the flagged pixels directly at every distinct score.
std::vector<CurvePoint> BruteForceCurve(const OwnedPixels& pixels) {
  const std::vector<int> regions = RegionsByPropagation(pixels);
  const int region_count = 1 + *std::max_element(regions.begin(),
                                                 regions.end());
  std::set<float, std::greater<float>> thresholds(pixels.maps.begin(),
                                                  pixels.maps.end());
  std::vector<CurvePoint> curve = {{0, 0}};
  for (float threshold : thresholds) {
    double normal = 0;
    double flagged_normal = 0;
    std::vector<double> size(region_count, 0);
    std::vector<double> flagged(region_count, 0);
    for (size_t i = 0; i < pixels.maps.size(); ++i) {
      const bool is_flagged = pixels.maps[i] >= threshold;
      if (regions[i] < 0) {
        normal += 1;
        flagged_normal += is_flagged;
      } else {
        size[regions[i]] += 1;
        flagged[regions[i]] += is_flagged;
      }
    }
    double overlap = 0;
    for (int r = 0; r < region_count; ++r) overlap += flagged[r] / size[r];
    curve.push_back({flagged_normal / normal, overlap / region_count});
  }
  return curve;
}

double BruteForceAupro(const std::vector<CurvePoint>& curve, double limit) {
  double area = 0;
  for (size_t i = 1; i < curve.size(); ++i) {
    const CurvePoint& a = curve[i - 1];
    const CurvePoint& b = curve[i];
    if (b.fpr <= limit) {
      area += (b.fpr - a.fpr) * (a.pro + b.pro) / 2;
      continue;
    }
    const double at_limit =
        a.pro + (b.pro - a.pro) * (limit - a.fpr) / (b.fpr - a.fpr);
    area += (limit - a.fpr) * (a.pro + at_limit) / 2;
    break;
  }
  return area / limit;
}

// The PRO at `fpr`: that of the last point at or below it, moved along the
// segment to the next point.
double BruteForceSample(const std::vector<CurvePoint>& curve, double fpr) {
  size_t last = 0;
  while (last + 1 < curve.size() && curve[last + 1].fpr <= fpr) ++last;
  if (curve[last].fpr == fpr || last + 1 == curve.size()) {
    return curve[last].pro;
  }
  const CurvePoint& a = curve[last];
  const CurvePoint& b = curve[last + 1];
  return a.pro + (b.pro - a.pro) * (fpr - a.fpr) / (b.fpr - a.fpr);
}

// Random masks of a few rectangles and scattered pixels per image, so some
// regions touch at corners or merge. Defect pixels score higher on average,
// and odd trials use few score levels, so ties cross the classes.
OwnedPixels RandomPixels(std::mt19937& generator, int trial) {
  OwnedPixels pixels;
  pixels.images = 1 + trial % 3;
  pixels.height = 3 + trial % 6;
  pixels.width = 4 + trial % 7;
  const int per_image = static_cast<int>(pixels.height * pixels.width);
  pixels.masks.assign(pixels.images * per_image, 0);

  std::uniform_int_distribution<int> row(0, pixels.height - 1);
  std::uniform_int_distribution<int> column(0, pixels.width - 1);
  std::uniform_int_distribution<int> extent(1, 3);
  std::uniform_int_distribution<int> count(0, 3);
  for (int image = 0; image < pixels.images; ++image) {
    uint8_t* mask = &pixels.masks[image * per_image];
    for (int rectangle = count(generator); rectangle > 0; --rectangle) {
      const int top = row(generator);
      const int left = column(generator);
      const int bottom = std::min<int>(top + extent(generator), pixels.height);
      const int right = std::min<int>(left + extent(generator), pixels.width);
      for (int y = top; y < bottom; ++y) {
        for (int x = left; x < right; ++x) mask[y * pixels.width + x] = 255;
      }
    }
    for (int dot = count(generator); dot > 0; --dot) {
      mask[row(generator) * pixels.width + column(generator)] = 1;
    }
  }
  // At least one pixel of each kind.
  pixels.masks[0] = 1;
  pixels.masks.back() = 0;

  const int levels = trial % 2 == 1 ? 4 : 1000000;
  std::uniform_int_distribution<int> level(0, levels);
  for (uint8_t label : pixels.masks) {
    const int shift = label != 0 ? levels / 3 : 0;
    pixels.maps.push_back(static_cast<float>(level(generator) + shift));
  }
  return pixels;
}

TEST(AuproTest, MatchesBruteForceOnRandomMaps) {
  std::mt19937 generator(20240603);
  std::uniform_real_distribution<double> random_limit(0.01, 1.0);
  for (int trial = 0; trial < 120; ++trial) {
    const OwnedPixels pixels = RandomPixels(generator, trial);
    const std::vector<CurvePoint> curve = BruteForceCurve(pixels);
    const std::vector<int> regions = RegionsByPropagation(pixels);
    const int expected_regions =
        1 + *std::max_element(regions.begin(), regions.end());

    for (double limit : {0.3, 1.0, random_limit(generator)}) {
      absl::StatusOr<AuproResult> result = Aupro(pixels.View(), limit);
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_NEAR(result->aupro, BruteForceAupro(curve, limit), 1e-12)
          << "trial " << trial << ", limit " << limit;
      EXPECT_EQ(result->regions, expected_regions) << "trial " << trial;
      ASSERT_EQ(result->pro_curve.size(), kPixelCurveSteps + 1);
      for (int step = 0; step <= kPixelCurveSteps; ++step) {
        const double fpr =
            limit * (static_cast<double>(step) / kPixelCurveSteps);
        EXPECT_NEAR(result->pro_curve[step], BruteForceSample(curve, fpr),
                    1e-12)
            << "trial " << trial << ", limit " << limit << ", step " << step;
      }
    }
  }
}

TEST(AuproTest, RejectsLimitOutsideZeroToOne) {
  const OwnedPixels pixels = WorkedExample();
  for (double limit : {0.0, -0.3, 1.5,
                       std::numeric_limits<double>::quiet_NaN()}) {
    absl::StatusOr<AuproResult> result = Aupro(pixels.View(), limit);
    ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument)
        << "limit " << limit;
    EXPECT_THAT(std::string(result.status().message()),
                HasSubstr("limit must be in (0, 1]"));
  }
}

TEST(AuproTest, RejectsMapsOfWrongSize) {
  OwnedPixels pixels = WorkedExample();
  pixels.maps.push_back(0);
  absl::StatusOr<AuproResult> result = Aupro(pixels.View());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("AUPRO: anomaly maps of 2 images of 2 x 4 pixels need "
                        "16 scores, but got 17"));
}

TEST(AuproTest, RejectsMasksOfWrongSize) {
  OwnedPixels pixels = WorkedExample();
  pixels.masks.pop_back();
  absl::StatusOr<AuproResult> result = Aupro(pixels.View());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("need 16 labels, one per score, but got 15"));
}

TEST(AuproTest, RejectsNanScore) {
  OwnedPixels pixels = WorkedExample();
  // Image 1, row 0, column 3.
  pixels.maps[11] = std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<AuproResult> result = Aupro(pixels.View());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("score of image 1, row 0, column 3 is NaN"));
}

TEST(AuproTest, RejectsMasksWithoutDefects) {
  OwnedPixels pixels = WorkedExample();
  pixels.masks.assign(pixels.masks.size(), 0);
  absl::StatusOr<AuproResult> result = Aupro(pixels.View());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("AUPRO needs defect pixels, but the masks of 2 images "
                        "of 2 x 4 pixels are 0 everywhere"));
}

TEST(AuproTest, RejectsMasksWithoutNormalPixels) {
  OwnedPixels pixels = WorkedExample();
  pixels.masks.assign(pixels.masks.size(), 3);
  absl::StatusOr<AuproResult> result = Aupro(pixels.View());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("AUPRO needs normal pixels"));
}

}  // namespace
}  // namespace panda
