#include "core/anomaly_map_picture.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"
#include "torch/torch.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

constexpr int kHeight = 20;
constexpr int kWidth = 30;
// Left edges of the three panels.
constexpr int kHeatLeft = kWidth + kPictureGap;
constexpr int kOutlineLeft = 2 * (kWidth + kPictureGap);

std::string TestPath(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) /
          "anomaly_map_picture_test" / name)
      .string();
}

// A uniform RGB image of grey 100.
torch::Tensor GreyImage() {
  return torch::full({kHeight, kWidth, 3}, 100, torch::kUInt8);
}

// 0 everywhere but rows 5 to 9, columns 10 to 14, where it is 1.
torch::Tensor HotSpotMap() {
  torch::Tensor map = torch::zeros({kHeight, kWidth}, torch::kFloat32);
  map.slice(0, 5, 10).slice(1, 10, 15).fill_(1.0f);
  return map;
}

// A defect at rows 4 to 11, columns 8 to 16.
torch::Tensor RectangleMask() {
  torch::Tensor mask = torch::zeros({kHeight, kWidth}, torch::kUInt8);
  mask.slice(0, 4, 12).slice(1, 8, 17).fill_(1);
  return mask;
}

cv::Mat Decode(const std::string& png) {
  const std::vector<uchar> bytes(png.begin(), png.end());
  return cv::imdecode(bytes, cv::IMREAD_COLOR);
}

cv::Mat RenderOrDie(const torch::Tensor& image, const torch::Tensor& map,
                    const torch::Tensor& mask, HeatRange range = {0, 1}) {
  absl::StatusOr<std::string> png =
      RenderAnomalyMapPicture(image, map, mask, range);
  EXPECT_TRUE(png.ok()) << png.status();
  return png.ok() ? Decode(*png) : cv::Mat();
}

// Red minus blue of the pixel at row `y`, column `x`, in BGR.
int Warmth(const cv::Mat& picture, int y, int x) {
  const cv::Vec3b pixel = picture.at<cv::Vec3b>(y, x);
  return pixel[2] - pixel[0];
}

TEST(AnomalyMapPictureTest, HasThreePanelsAndGaps) {
  const cv::Mat picture =
      RenderOrDie(GreyImage(), HotSpotMap(), RectangleMask());
  ASSERT_EQ(picture.rows, kHeight);
  ASSERT_EQ(picture.cols, 3 * kWidth + 2 * kPictureGap);
  EXPECT_EQ(picture.at<cv::Vec3b>(2, 2), cv::Vec3b(100, 100, 100));
  for (int x = kWidth; x < kHeatLeft; ++x) {
    EXPECT_EQ(picture.at<cv::Vec3b>(10, x), cv::Vec3b(255, 255, 255))
        << "column " << x;
  }
}

TEST(AnomalyMapPictureTest, HighScoresAreHotLowScoresCold) {
  const cv::Mat picture =
      RenderOrDie(GreyImage(), HotSpotMap(), RectangleMask());
  ASSERT_FALSE(picture.empty());
  // Jet runs from dark blue (0) to dark red (255), blended with grey 100.
  EXPECT_GT(Warmth(picture, 7, kHeatLeft + 12), 50);
  EXPECT_LT(Warmth(picture, 2, kHeatLeft + 2), -50);
  // The image panel is not tinted.
  EXPECT_EQ(Warmth(picture, 7, 12), 0);
}

TEST(AnomalyMapPictureTest, RangeClipsAndScales) {
  // With the range [1, 3], the hot spot's score 1 is the coldest colour, and
  // a score of 5 is as hot as 3.
  torch::Tensor map = HotSpotMap();
  map[0][0] = 5.0f;
  const cv::Mat picture =
      RenderOrDie(GreyImage(), map, torch::Tensor(), {1.0f, 3.0f});
  ASSERT_FALSE(picture.empty());
  EXPECT_LT(Warmth(picture, 7, kHeatLeft + 12), -50);
  EXPECT_EQ(picture.at<cv::Vec3b>(7, kHeatLeft + 12),
            picture.at<cv::Vec3b>(2, kHeatLeft + 2));
  EXPECT_GT(Warmth(picture, 0, kHeatLeft), 50);
}

TEST(AnomalyMapPictureTest, OutlinesMaskBorder) {
  const cv::Mat picture =
      RenderOrDie(GreyImage(), HotSpotMap(), RectangleMask());
  ASSERT_FALSE(picture.empty());
  const cv::Vec3b green(0, 255, 0);
  // Corners and edges of the rectangle at rows 4 to 11, columns 8 to 16.
  EXPECT_EQ(picture.at<cv::Vec3b>(4, kOutlineLeft + 8), green);
  EXPECT_EQ(picture.at<cv::Vec3b>(4, kOutlineLeft + 12), green);
  EXPECT_EQ(picture.at<cv::Vec3b>(11, kOutlineLeft + 16), green);
  EXPECT_EQ(picture.at<cv::Vec3b>(8, kOutlineLeft + 8), green);
  // Inside and outside the defect the image shows unchanged.
  EXPECT_EQ(picture.at<cv::Vec3b>(8, kOutlineLeft + 12),
            cv::Vec3b(100, 100, 100));
  EXPECT_EQ(picture.at<cv::Vec3b>(2, kOutlineLeft + 2),
            cv::Vec3b(100, 100, 100));
  EXPECT_EQ(picture.at<cv::Vec3b>(8, kOutlineLeft + 7),
            cv::Vec3b(100, 100, 100));
}

TEST(AnomalyMapPictureTest, OutlinesHoleOfDefect) {
  // A 7 x 7 square at rows 3 to 9, columns 3 to 9 with a 3 x 3 hole at rows
  // 5 to 7, columns 5 to 7: the ring's inner border is drawn as well.
  torch::Tensor mask = torch::zeros({kHeight, kWidth}, torch::kUInt8);
  mask.slice(0, 3, 10).slice(1, 3, 10).fill_(1);
  mask.slice(0, 5, 8).slice(1, 5, 8).fill_(0);
  const cv::Mat picture = RenderOrDie(GreyImage(), HotSpotMap(), mask);
  ASSERT_FALSE(picture.empty());
  const cv::Vec3b green(0, 255, 0);
  EXPECT_EQ(picture.at<cv::Vec3b>(3, kOutlineLeft + 6), green);
  EXPECT_EQ(picture.at<cv::Vec3b>(4, kOutlineLeft + 6), green);
  EXPECT_EQ(picture.at<cv::Vec3b>(6, kOutlineLeft + 6),
            cv::Vec3b(100, 100, 100));
}

TEST(AnomalyMapPictureTest, NoOutlineWithoutDefects) {
  const cv::Mat without_mask =
      RenderOrDie(GreyImage(), HotSpotMap(), torch::Tensor());
  const cv::Mat empty_mask =
      RenderOrDie(GreyImage(), HotSpotMap(),
                  torch::zeros({kHeight, kWidth}, torch::kUInt8));
  ASSERT_FALSE(without_mask.empty());
  ASSERT_FALSE(empty_mask.empty());
  const cv::Rect image_panel(0, 0, kWidth, kHeight);
  const cv::Rect outline_panel(kOutlineLeft, 0, kWidth, kHeight);
  EXPECT_EQ(cv::norm(without_mask(image_panel), without_mask(outline_panel),
                     cv::NORM_INF),
            0);
  EXPECT_EQ(cv::norm(empty_mask(image_panel), empty_mask(outline_panel),
                     cv::NORM_INF),
            0);
}

TEST(AnomalyMapPictureTest, ReadsRgbAndGreyImages) {
  torch::Tensor rgb = GreyImage();
  rgb[0][0][0] = 255;  // red
  rgb[0][0][1] = 0;
  rgb[0][0][2] = 0;
  const cv::Mat from_rgb = RenderOrDie(rgb, HotSpotMap(), torch::Tensor());
  ASSERT_FALSE(from_rgb.empty());
  EXPECT_EQ(from_rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 255));

  torch::Tensor grey = torch::full({kHeight, kWidth, 1}, 60, torch::kUInt8);
  const cv::Mat from_grey = RenderOrDie(grey, HotSpotMap(), torch::Tensor());
  ASSERT_FALSE(from_grey.empty());
  EXPECT_EQ(from_grey.at<cv::Vec3b>(3, 3), cv::Vec3b(60, 60, 60));
}

TEST(AnomalyMapPictureTest, WritesPngFile) {
  const std::string path = TestPath("maps/0001.png");
  ASSERT_TRUE(WriteAnomalyMapPicture(path, GreyImage(), HotSpotMap(),
                                     RectangleMask(), {0, 1})
                  .ok());
  const cv::Mat picture = cv::imread(path, cv::IMREAD_COLOR);
  ASSERT_FALSE(picture.empty());
  EXPECT_EQ(picture.cols, 3 * kWidth + 2 * kPictureGap);
  EXPECT_EQ(picture.at<cv::Vec3b>(4, kOutlineLeft + 8), cv::Vec3b(0, 255, 0));
}

TEST(AnomalyMapPictureTest, UnwritableFolderNamesPath) {
  // A regular file where the folder should be cannot hold the picture.
  const std::string blocker = TestPath("not_a_folder");
  std::filesystem::create_directories(
      std::filesystem::path(blocker).parent_path());
  std::ofstream(blocker) << "file";
  const std::string path = blocker + "/0001.png";

  const absl::Status status = WriteAnomalyMapPicture(
      path, GreyImage(), HotSpotMap(), RectangleMask(), {0, 1});
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("failed to write the anomaly map picture " + path));
  EXPECT_TRUE(std::filesystem::is_regular_file(blocker));
}

TEST(AnomalyMapPictureTest, RejectsMapOfOtherShape) {
  absl::StatusOr<std::string> png =
      RenderAnomalyMapPicture(GreyImage(), torch::zeros({kHeight, kWidth + 1}),
                              torch::Tensor(), {0, 1});
  ASSERT_EQ(png.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(png.status().message()),
              HasSubstr("map must be float32 [20, 30] like the image, but got "
                        "Float [20, 31]"));
}

TEST(AnomalyMapPictureTest, RejectsMaskOfOtherType) {
  absl::StatusOr<std::string> png = RenderAnomalyMapPicture(
      GreyImage(), HotSpotMap(), torch::zeros({kHeight, kWidth}), {0, 1});
  ASSERT_EQ(png.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(png.status().message()),
              HasSubstr("mask must be uint8 [20, 30]"));
}

TEST(AnomalyMapPictureTest, RejectsImageWithFourChannels) {
  absl::StatusOr<std::string> png =
      RenderAnomalyMapPicture(torch::zeros({kHeight, kWidth, 4}, torch::kUInt8),
                              HotSpotMap(), torch::Tensor(), {0, 1});
  ASSERT_EQ(png.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(png.status().message()),
              HasSubstr("but got Byte [20, 30, 4]"));
}

TEST(AnomalyMapPictureTest, RejectsEmptyOrReversedRange) {
  const float infinity = std::numeric_limits<float>::infinity();
  for (HeatRange range :
       {HeatRange{1, 1}, HeatRange{2, 1}, HeatRange{0, infinity}}) {
    absl::StatusOr<std::string> png = RenderAnomalyMapPicture(
        GreyImage(), HotSpotMap(), torch::Tensor(), range);
    ASSERT_EQ(png.status().code(), absl::StatusCode::kInvalidArgument)
        << range.low << " to " << range.high;
    EXPECT_THAT(std::string(png.status().message()),
                HasSubstr("heat range must be finite with low below high"));
  }
}

TEST(AnomalyMapPictureTest, RejectsNanInMap) {
  torch::Tensor map = HotSpotMap();
  map[3][4] = std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<std::string> png =
      RenderAnomalyMapPicture(GreyImage(), map, torch::Tensor(), {0, 1});
  ASSERT_EQ(png.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(png.status().message()), HasSubstr("NaN"));
}

}  // namespace
}  // namespace panda
