#include "core/roc_plot.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"

namespace panda {
namespace {

// The first two series colours (BGR) of the chart palette.
const cv::Vec3b kFirstColour(180, 119, 31);
const cv::Vec3b kSecondColour(14, 127, 255);

cv::Mat Decode(const std::string& png) {
  const std::vector<uchar> bytes(png.begin(), png.end());
  return cv::imdecode(bytes, cv::IMREAD_COLOR);
}

// The pixel of (false positive rate, true positive rate) in the default
// ChartLayout: the plot area is 480 x 480 pixels with its top-left corner at
// (60, 30).
cv::Point RocPixel(double false_positive_rate, double true_positive_rate) {
  return {60 + static_cast<int>(false_positive_rate * 480 + 0.5),
          30 + 480 - static_cast<int>(true_positive_rate * 480 + 0.5)};
}

// Whether the pixel at `at` is within 12 per channel of `colour`: the
// centre of an anti-aliased line 2 pixels wide keeps its colour.
bool HasColour(const cv::Mat& image, cv::Point at, const cv::Vec3b& colour) {
  const cv::Vec3b pixel = image.at<cv::Vec3b>(at);
  for (int channel = 0; channel < 3; ++channel) {
    if (std::abs(pixel[channel] - colour[channel]) > 12) return false;
  }
  return true;
}

TEST(RocPlotTest, DrawsEachCurveAtItsRates) {
  // Flat curves at true positive rates 0.5 and 0.25. The curve with one
  // value has no step to draw, so the next curve takes the second colour.
  const std::vector<RocCurve> curves = {{"image 90.0", {0.5f, 0.5f, 0.5f}},
                                        {"too short", {0.9f}},
                                        {"pixel 80.0", {0.25f, 0.25f}}};
  absl::StatusOr<std::string> png = RenderRocCurvesPng(curves);
  ASSERT_TRUE(png.ok()) << png.status();
  const cv::Mat image = Decode(*png);
  ASSERT_EQ(image.cols, 720);
  ASSERT_EQ(image.rows, 560);

  EXPECT_TRUE(HasColour(image, RocPixel(0.35, 0.5), kFirstColour));
  EXPECT_TRUE(HasColour(image, RocPixel(0.35, 0.25), kSecondColour));
  EXPECT_FALSE(HasColour(image, RocPixel(0.35, 0.9), kSecondColour));
}

TEST(RocPlotTest, RunResultDrawsFirstSeedOnly) {
  RunResult run;
  ClassResult* first = run.add_classes();
  first->set_seed(3);
  for (int i = 0; i <= 10; ++i) first->add_roc_true_positive_rates(0.5f);
  ClassResult* other_seed = run.add_classes();
  other_seed->set_seed(4);
  for (int i = 0; i <= 10; ++i) other_seed->add_roc_true_positive_rates(0.25f);

  absl::StatusOr<std::string> png = RenderRocCurvesPng(run);
  ASSERT_TRUE(png.ok()) << png.status();
  const cv::Mat image = Decode(*png);
  EXPECT_TRUE(HasColour(image, RocPixel(0.35, 0.5), kFirstColour));
  EXPECT_FALSE(HasColour(image, RocPixel(0.35, 0.25), kSecondColour));
}

}  // namespace
}  // namespace panda
