#include "metrics/pixel_roc.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
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

// The pixels of the AUPRO worked example in aupro_test.cc, as one 1 x 16
// image, because pixel ROC ignores the layout:
//
//   defect scores: 4 2 2 3 1 1
//   normal scores: 3 2 1 1 1 1 1 1 1 1
OwnedPixels WorkedExample() {
  OwnedPixels pixels;
  pixels.maps = {4, 2, 2, 3, 1, 1, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1};
  pixels.masks = {1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  pixels.images = 1;
  pixels.height = 1;
  pixels.width = 16;
  return pixels;
}

// Second implementation: counts every (defect, normal) pixel pair.
double PairCountingAuc(const OwnedPixels& pixels) {
  double wins = 0;
  double pairs = 0;
  for (size_t i = 0; i < pixels.maps.size(); ++i) {
    if (pixels.masks[i] == 0) continue;
    for (size_t j = 0; j < pixels.maps.size(); ++j) {
      if (pixels.masks[j] != 0) continue;
      pairs += 1;
      if (pixels.maps[i] > pixels.maps[j]) wins += 1;
      if (pixels.maps[i] == pixels.maps[j]) wins += 0.5;
    }
  }
  return wins / pairs;
}

// Second implementation of the curve: tries every distinct score as the
// threshold (and one above all scores), counts the flagged pixels directly
// and keeps the highest true positive rate whose false positive count fits
// each grid value.
std::vector<float> BruteForceCurve(const OwnedPixels& pixels) {
  std::set<float> thresholds(pixels.maps.begin(), pixels.maps.end());
  thresholds.insert(std::numeric_limits<float>::infinity());
  int64_t normal = 0;
  int64_t defect = 0;
  for (uint8_t label : pixels.masks) (label != 0 ? defect : normal) += 1;

  std::vector<float> curve;
  for (int step = 0; step <= kPixelCurveSteps; ++step) {
    const double allowed = static_cast<double>(step) / kPixelCurveSteps *
                               static_cast<double>(normal) +
                           1e-9;
    double best = 0;
    for (float threshold : thresholds) {
      int64_t false_positives = 0;
      int64_t true_positives = 0;
      for (size_t i = 0; i < pixels.maps.size(); ++i) {
        if (pixels.maps[i] < threshold) continue;
        (pixels.masks[i] != 0 ? true_positives : false_positives) += 1;
      }
      if (false_positives <= allowed) {
        best = std::max(best, static_cast<double>(true_positives) / defect);
      }
    }
    curve.push_back(static_cast<float>(best));
  }
  return curve;
}

TEST(PixelRocTest, WorkedExample) {
  // Pairs: 6 defect x 10 normal = 60.
  //   defect 4 beats all 10 normals:                 10
  //   defect 3 beats 2 and eight 1s, ties the 3:      9.5
  //   defects 2 each beat eight 1s, tie the 2:       2 x 8.5 = 17
  //   defects 1 each tie eight 1s:                   2 x 4 = 8
  // 44.5 / 60 = 89 / 120.
  absl::StatusOr<PixelRoc> roc = ComputePixelRoc(WorkedExample().View());
  ASSERT_TRUE(roc.ok()) << roc.status();
  EXPECT_DOUBLE_EQ(roc->roc_auc, 89.0 / 120.0);
}

TEST(PixelRocTest, WorkedExampleCurve) {
  // 10 normal pixels, so a false positive rate f allows floor(10 f) of them.
  //   f < 0.1: none, the threshold is above 3 and flags the 4:   1/6
  //   0.1 <= f < 0.2: the normal 3, threshold 3 flags 4 and 3:   2/6
  //   0.2 <= f < 1: threshold 2 flags every defect but the 1s:   4/6
  //   f = 1: threshold 1 flags everything:                        1
  absl::StatusOr<PixelRoc> roc = ComputePixelRoc(WorkedExample().View());
  ASSERT_TRUE(roc.ok()) << roc.status();
  ASSERT_EQ(roc->true_positive_rates.size(), kPixelCurveSteps + 1);
  for (int step = 0; step <= kPixelCurveSteps; ++step) {
    float expected = 4.0f / 6.0f;
    if (step < 10) {
      expected = 1.0f / 6.0f;
    } else if (step < 20) {
      expected = 2.0f / 6.0f;
    } else if (step == 100) {
      expected = 1.0f;
    }
    EXPECT_FLOAT_EQ(roc->true_positive_rates[step], expected)
        << "step " << step;
  }
}

TEST(PixelRocTest, PixelRocAucMatchesCompute) {
  absl::StatusOr<double> auc = PixelRocAuc(WorkedExample().View());
  ASSERT_TRUE(auc.ok()) << auc.status();
  EXPECT_DOUBLE_EQ(*auc, 89.0 / 120.0);
}

TEST(PixelRocTest, MatchesBruteForceOnRandomMaps) {
  std::mt19937 generator(20240602);
  for (int trial = 0; trial < 60; ++trial) {
    OwnedPixels pixels;
    pixels.images = 1 + trial % 3;
    pixels.height = 2 + trial % 4;
    pixels.width = 3 + trial % 5;
    const size_t size = pixels.images * pixels.height * pixels.width;
    // Few distinct levels on odd trials, so many ties cross the classes.
    std::uniform_int_distribution<int> level(0, trial % 2 == 1 ? 3 : 100000);
    std::bernoulli_distribution defect(0.3);
    for (size_t i = 0; i < size; ++i) {
      pixels.maps.push_back(static_cast<float>(level(generator)) / 3.0f);
      // Any nonzero mask value marks a defect.
      pixels.masks.push_back(defect(generator) ? 1 + i % 255 : 0);
    }
    pixels.masks[0] = 0;
    pixels.masks[1] = 200;

    absl::StatusOr<PixelRoc> roc = ComputePixelRoc(pixels.View());
    ASSERT_TRUE(roc.ok()) << roc.status();
    EXPECT_NEAR(roc->roc_auc, PairCountingAuc(pixels), 1e-12)
        << "trial " << trial;
    EXPECT_EQ(roc->true_positive_rates, BruteForceCurve(pixels))
        << "trial " << trial;
  }
}

TEST(PixelRocTest, RejectsMapsOfWrongSize) {
  OwnedPixels pixels = WorkedExample();
  pixels.maps.pop_back();
  absl::StatusOr<PixelRoc> roc = ComputePixelRoc(pixels.View());
  ASSERT_EQ(roc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(roc.status().message()),
              HasSubstr("1 images of 1 x 16 pixels need 16 scores, but got "
                        "15"));
}

TEST(PixelRocTest, RejectsMasksOfWrongSize) {
  OwnedPixels pixels = WorkedExample();
  pixels.masks.push_back(0);
  absl::StatusOr<PixelRoc> roc = ComputePixelRoc(pixels.View());
  ASSERT_EQ(roc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(roc.status().message()),
              HasSubstr("need 16 labels, one per score, but got 17"));
}

TEST(PixelRocTest, RejectsNegativeSize) {
  OwnedPixels pixels = WorkedExample();
  pixels.height = -1;
  pixels.width = -16;
  absl::StatusOr<PixelRoc> roc = ComputePixelRoc(pixels.View());
  ASSERT_EQ(roc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(roc.status().message()),
              HasSubstr("must not be negative"));
}

TEST(PixelRocTest, RejectsNanScore) {
  OwnedPixels pixels;
  pixels.images = 2;
  pixels.height = 2;
  pixels.width = 3;
  pixels.maps.assign(12, 0.5f);
  pixels.masks.assign(12, 0);
  pixels.masks[0] = 1;
  // Image 1, row 1, column 2 is index 6 + 3 + 2.
  pixels.maps[11] = std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<PixelRoc> roc = ComputePixelRoc(pixels.View());
  ASSERT_EQ(roc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(roc.status().message()),
              HasSubstr("score of image 1, row 1, column 2 is NaN"));
}

TEST(PixelRocTest, RejectsMasksWithoutDefects) {
  OwnedPixels pixels = WorkedExample();
  pixels.masks.assign(16, 0);
  absl::StatusOr<PixelRoc> roc = ComputePixelRoc(pixels.View());
  ASSERT_EQ(roc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(roc.status().message()),
              HasSubstr("needs defect pixels"));
}

TEST(PixelRocTest, RejectsMasksWithoutNormalPixels) {
  OwnedPixels pixels = WorkedExample();
  pixels.masks.assign(16, 1);
  absl::StatusOr<PixelRoc> roc = ComputePixelRoc(pixels.View());
  ASSERT_EQ(roc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(roc.status().message()),
              HasSubstr("needs normal pixels"));
}

TEST(PixelRocTest, RejectsEmptyInput) {
  OwnedPixels pixels;
  absl::StatusOr<PixelRoc> roc = ComputePixelRoc(pixels.View());
  ASSERT_EQ(roc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(roc.status().message()),
              HasSubstr("needs defect pixels"));
}

}  // namespace
}  // namespace panda
