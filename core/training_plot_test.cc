#include "core/training_plot.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"

namespace panda {
namespace {

// The first two series colours (BGR) of the chart palette.
const cv::Vec3b kFirstColour(180, 119, 31);
const cv::Vec3b kSecondColour(14, 127, 255);
const cv::Vec3b kGridColour(230, 230, 230);

// Adds a class whose feature variance at epoch e is variances[e].
void AddClass(RunResult& run, int normal_class, const std::string& name,
              int seed, const std::vector<double>& variances) {
  ClassResult* row = run.add_classes();
  row->set_normal_class(normal_class);
  row->set_class_name(name);
  row->set_seed(seed);
  for (size_t epoch = 0; epoch < variances.size(); ++epoch) {
    EpochRecord* record = row->add_training();
    record->set_epoch(static_cast<int>(epoch));
    record->set_feature_variance(variances[epoch]);
  }
}

cv::Mat Decode(const std::string& png) {
  const std::vector<uchar> bytes(png.begin(), png.end());
  return cv::imdecode(bytes, cv::IMREAD_COLOR);
}

// The pixel of (epoch, relative variance) on a chart whose x axis ends at
// `last_epoch` and whose y axis spans log10 values [low, high], computed
// from the geometry in training_plot.h.
cv::Point ExpectedPixel(double epoch, double value, int last_epoch,
                        double low, double high) {
  const double x_fraction = epoch / last_epoch;
  const double y_fraction = (std::log10(value) - low) / (high - low);
  return {kTrainingChartLeft +
              static_cast<int>(x_fraction * kTrainingChartPlotWidth + 0.5),
          kTrainingChartTop + kTrainingChartPlotHeight -
              static_cast<int>(y_fraction * kTrainingChartPlotHeight + 0.5)};
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

std::string Describe(const cv::Mat& image, cv::Point at) {
  const cv::Vec3b pixel = image.at<cv::Vec3b>(at);
  return "pixel (" + std::to_string(at.x) + ", " + std::to_string(at.y) +
         ") is BGR " + std::to_string(pixel[0]) + " " +
         std::to_string(pixel[1]) + " " + std::to_string(pixel[2]);
}

// Two classes of seed 0 with relative variances cat 1, 0.5, 0.1, 0.01 and
// dog 1, 1, 0.5, 0.25, and a seed-1 cat that must not be drawn. The y axis
// then spans log10 0.01 - 0.1 = -2.1 to log10 1 + 0.1 = 0.1.
RunResult TwoClassRun() {
  RunResult run;
  run.set_pipeline("svdd");
  AddClass(run, 0, "cat", 0, {4.0, 2.0, 0.4, 0.04});
  AddClass(run, 1, "dog", 0, {2.0, 2.0, 1.0, 0.5});
  AddClass(run, 0, "cat", 1, {4.0, 2.0, 0.12, 0.04});
  return run;
}

TEST(TrainingPlotTest, ByClassImageSize) {
  absl::StatusOr<std::string> png = RenderFeatureVarianceByClassPng(TwoClassRun());
  ASSERT_TRUE(png.ok()) << png.status();
  const cv::Mat image = Decode(*png);
  ASSERT_FALSE(image.empty());
  EXPECT_EQ(image.cols, kTrainingChartWidth);
  EXPECT_EQ(image.rows, kTrainingChartHeight);
  EXPECT_EQ(image.channels(), 3);
}

TEST(TrainingPlotTest, ByClassDrawsRelativeVariance) {
  absl::StatusOr<std::string> png = RenderFeatureVarianceByClassPng(TwoClassRun());
  ASSERT_TRUE(png.ok()) << png.status();
  const cv::Mat image = Decode(*png);
  ASSERT_FALSE(image.empty());

  const cv::Point cat = ExpectedPixel(2, 0.1, 3, -2.1, 0.1);
  EXPECT_EQ(cat, cv::Point(390, 270));
  EXPECT_TRUE(HasColour(image, cat, kFirstColour)) << Describe(image, cat);
  const cv::Point dog = ExpectedPixel(2, 0.5, 3, -2.1, 0.1);
  EXPECT_TRUE(HasColour(image, dog, kSecondColour)) << Describe(image, dog);
  const cv::Point dog_last = ExpectedPixel(3, 0.25, 3, -2.1, 0.1);
  EXPECT_TRUE(HasColour(image, dog_last, kSecondColour))
      << Describe(image, dog_last);
}

TEST(TrainingPlotTest, ByClassIgnoresLaterSeeds) {
  absl::StatusOr<std::string> png = RenderFeatureVarianceByClassPng(TwoClassRun());
  ASSERT_TRUE(png.ok()) << png.status();
  const cv::Mat image = Decode(*png);
  ASSERT_FALSE(image.empty());

  // Seed 1's cat is at 0.03 at epoch 2, where nothing else is drawn.
  const cv::Point seed_one = ExpectedPixel(2, 0.03, 3, -2.1, 0.1);
  const cv::Vec3b pixel = image.at<cv::Vec3b>(seed_one);
  EXPECT_GE(pixel[0], 200) << Describe(image, seed_one);
  EXPECT_GE(pixel[1], 200) << Describe(image, seed_one);
  EXPECT_GE(pixel[2], 200) << Describe(image, seed_one);
}

TEST(TrainingPlotTest, ByClassDrawsDecadeGridLine) {
  absl::StatusOr<std::string> png = RenderFeatureVarianceByClassPng(TwoClassRun());
  ASSERT_TRUE(png.ok()) << png.status();
  const cv::Mat image = Decode(*png);
  ASSERT_FALSE(image.empty());

  // Near the left edge, at 0.01 and at 0.02: 1, 2 and 5 times powers of ten
  // are labelled on an axis of 2.2 decades.
  for (double value : {0.01, 0.02}) {
    const cv::Point grid = ExpectedPixel(0.1, value, 3, -2.1, 0.1);
    EXPECT_TRUE(HasColour(image, grid, kGridColour)) << Describe(image, grid);
  }
}

TEST(TrainingPlotTest, ByClassClampsZeroVariance) {
  RunResult run;
  run.set_pipeline("collapsed");
  AddClass(run, 0, "cat", 0, {2.0, 0.0});
  absl::StatusOr<std::string> png = RenderFeatureVarianceByClassPng(run);
  ASSERT_TRUE(png.ok()) << png.status();
  const cv::Mat image = Decode(*png);
  ASSERT_FALSE(image.empty());

  // 0 is drawn at 1e-12: the axis spans -12.1 to 0.1.
  const cv::Point floor = ExpectedPixel(1, 1e-12, 1, -12.1, 0.1);
  EXPECT_TRUE(HasColour(image, floor, kFirstColour)) << Describe(image, floor);
}

TEST(TrainingPlotTest, ByClassSkipsClassWithoutEpochZero) {
  RunResult run;
  run.set_pipeline("svdd");
  AddClass(run, 0, "cat", 0, {4.0, 2.0, 0.4, 0.04});
  run.mutable_classes(0)->mutable_training()->DeleteSubrange(0, 1);
  AddClass(run, 1, "dog", 0, {2.0, 2.0, 1.0, 0.5});
  absl::StatusOr<std::string> png = RenderFeatureVarianceByClassPng(run);
  ASSERT_TRUE(png.ok()) << png.status();
  const cv::Mat image = Decode(*png);
  ASSERT_FALSE(image.empty());

  // The dog alone is drawn, so it gets the first colour. The y axis spans
  // log10 0.25 - 0.1 to 0.1, widened to one decade around its centre.
  const double centre = (std::log10(0.25) - 0.1 + 0.1) / 2;
  const cv::Point dog =
      ExpectedPixel(2, 0.5, 3, centre - 0.5, centre + 0.5);
  EXPECT_TRUE(HasColour(image, dog, kFirstColour)) << Describe(image, dog);
}

TEST(TrainingPlotTest, ByClassWithoutRecordsIsInvalid) {
  RunResult run;
  run.set_pipeline("knn");
  run.add_classes()->set_normal_class(0);
  EXPECT_FALSE(HasTrainingRecords(run));
  const absl::StatusOr<std::string> png = RenderFeatureVarianceByClassPng(run);
  EXPECT_EQ(png.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(png.status().message().find("knn"), absl::string_view::npos)
      << png.status();
}

TEST(TrainingPlotTest, ByRunDrawsMeanOverClasses) {
  RunResult plain;
  plain.set_pipeline("plain");
  plain.add_classes()->set_normal_class(0);
  // Relative variances 1, 0.5, 0.01 and 1, 0.1, 0.01: means 1, 0.3, 0.01.
  RunResult svdd;
  AddClass(svdd, 0, "cat", 0, {2.0, 1.0, 0.02});
  AddClass(svdd, 1, "dog", 0, {10.0, 1.0, 0.1});
  RunResult ewc;
  AddClass(ewc, 0, "cat", 0, {1.0, 0.5, 0.2});

  absl::StatusOr<std::string> png = RenderFeatureVarianceByRunPng(
      {{"plain", plain}, {"svdd", svdd}, {"ewc", ewc}});
  ASSERT_TRUE(png.ok()) << png.status();
  const cv::Mat image = Decode(*png);
  ASSERT_FALSE(image.empty());
  EXPECT_EQ(image.cols, kTrainingChartWidth);
  EXPECT_EQ(image.rows, kTrainingChartHeight);

  // The run without training takes no colour, so svdd gets the first.
  const cv::Point svdd_mean = ExpectedPixel(1, 0.3, 2, -2.1, 0.1);
  EXPECT_TRUE(HasColour(image, svdd_mean, kFirstColour))
      << Describe(image, svdd_mean);
  const cv::Point ewc_mean = ExpectedPixel(1, 0.5, 2, -2.1, 0.1);
  EXPECT_TRUE(HasColour(image, ewc_mean, kSecondColour))
      << Describe(image, ewc_mean);
}

TEST(TrainingPlotTest, ByRunWithoutRecordsIsInvalid) {
  RunResult plain;
  plain.add_classes()->set_normal_class(0);
  const absl::StatusOr<std::string> png =
      RenderFeatureVarianceByRunPng({{"plain", plain}, {"knn", plain}});
  EXPECT_EQ(png.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(png.status().message().find("plain, knn"), absl::string_view::npos)
      << png.status();
}

TEST(TrainingPlotTest, ByRunWithoutRunsIsInvalid) {
  EXPECT_EQ(RenderFeatureVarianceByRunPng({}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace panda
