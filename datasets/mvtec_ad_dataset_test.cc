#include <sys/time.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/logging.h"
#include "datasets/dataset.h"
#include "datasets/mvtec_ad_dataset_options.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"
#include "torch/types.h"

namespace panda {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Returns the bytes of image or mask `index` of `tensor`, row-major.
std::vector<int> Values(const torch::Tensor& tensor, int64_t index) {
  const torch::Tensor item = tensor[index].contiguous().to(torch::kInt32);
  const int* data = item.data_ptr<int>();
  return std::vector<int>(data, data + item.numel());
}

// An image whose every pixel is the grey level `level`, stored as BGR.
cv::Mat Flat(int width, int height, int level) {
  return cv::Mat(height, width, CV_8UC3, cv::Scalar(level, level, level));
}

// A grey mask of `rows` (0 or 255 in MVTec AD's files).
cv::Mat Mask(const std::vector<std::vector<uint8_t>>& rows) {
  cv::Mat mask(static_cast<int>(rows.size()), static_cast<int>(rows[0].size()),
               CV_8UC1);
  for (int y = 0; y < mask.rows; ++y) {
    for (int x = 0; x < mask.cols; ++x) mask.at<uint8_t>(y, x) = rows[y][x];
  }
  return mask;
}

class MvtecAdDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "mvtec_ad_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(std::filesystem::create_directories(root_)) << root_;
    SetMinLogLevel(LogLevel::kWarning);
  }

  void TearDown() override { SetMinLogLevel(LogLevel::kInfo); }

  // Returns the path of `relative` inside the category "widget".
  std::string Path(const std::string& relative) const {
    return root_ + "/widget/" + relative;
  }

  std::string WriteImage(const std::string& relative, const cv::Mat& image) {
    const std::string path = Path(relative);
    std::filesystem::create_directories(
        std::filesystem::path(path).parent_path());
    EXPECT_TRUE(cv::imwrite(path, image)) << path;
    return path;
  }

  std::string WriteBytes(const std::string& relative,
                         const std::string& bytes) {
    const std::string path = Path(relative);
    std::filesystem::create_directories(
        std::filesystem::path(path).parent_path());
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << bytes;
    EXPECT_TRUE(file.good()) << path;
    return path;
  }

  // Writes a category of 4x4 images in MVTec AD's layout: two training
  // images, one good test image, two "crack" and one "scratch" image. Each
  // image is a flat grey whose level names it.
  void WriteCategory() {
    WriteImage("train/good/000.png", Flat(4, 4, 10));
    WriteImage("train/good/001.png", Flat(4, 4, 11));
    WriteImage("test/good/000.png", Flat(4, 4, 20));
    WriteImage("test/crack/000.png", Flat(4, 4, 30));
    WriteImage("test/crack/001.png", Flat(4, 4, 31));
    WriteImage("test/scratch/000.png", Flat(4, 4, 40));
    WriteImage(
        "ground_truth/crack/000_mask.png",
        Mask({{255, 0, 0, 0}, {0, 255, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 255}}));
    WriteImage("ground_truth/crack/001_mask.png",
               Mask({{0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}}));
    // Any non-zero value marks a defect, 1 as well as 255.
    WriteImage("ground_truth/scratch/000_mask.png",
               Mask({{0, 0, 1, 1}, {0, 0, 1, 1}, {0, 0, 0, 0}, {0, 0, 0, 0}}));
  }

  absl::StatusOr<std::unique_ptr<Dataset>> Create(const std::string& text) {
    MvtecAdDatasetOptions options;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &options))
        << text;
    google::protobuf::Any any;
    any.PackFrom(options);
    return DatasetRegistry().Create("mvtec_ad", any);
  }

  std::string Options(const std::string& extra = "") const {
    return "root: \"" + root_ + "\" category: \"widget\" " + extra;
  }

  // Creates the dataset from the category options plus `extra` and loads
  // `split`, failing the test on any error.
  ImageSet LoadOrDie(const std::string& extra, Split split) {
    auto dataset = Create(Options(extra));
    EXPECT_TRUE(dataset.ok()) << dataset.status();
    if (!dataset.ok()) return ImageSet();
    absl::StatusOr<ImageSet> set = (*dataset)->Load(split);
    EXPECT_TRUE(set.ok()) << set.status();
    return set.ok() ? *std::move(set) : ImageSet();
  }

  // Creates the dataset, which must succeed, and returns the status of
  // loading `split`.
  absl::Status LoadStatus(const std::string& extra, Split split) {
    auto dataset = Create(Options(extra));
    EXPECT_TRUE(dataset.ok()) << dataset.status();
    if (!dataset.ok()) return dataset.status();
    return (*dataset)->Load(split).status();
  }

  std::string root_;
};

TEST_F(MvtecAdDatasetTest, ClassesGoodFirstThenDefects) {
  WriteCategory();
  auto dataset = Create(Options());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  EXPECT_EQ((*dataset)->class_names(),
            (std::vector<std::string>{"good", "crack", "scratch"}));
  EXPECT_EQ((*dataset)->normal_classes(), (std::vector<int64_t>{0}));
}

TEST_F(MvtecAdDatasetTest, TrainSplitIsGoodOnly) {
  WriteCategory();
  const ImageSet train = LoadOrDie("image_size: 4", Split::kTrain);

  EXPECT_EQ(train.labels, (std::vector<int64_t>{0, 0}));
  ASSERT_EQ(train.images.sizes(), (std::vector<int64_t>{2, 4, 4, 3}));
  EXPECT_EQ(train.images[0][0][0][0].item<uint8_t>(), 10);
  EXPECT_EQ(train.images[1][3][3][2].item<uint8_t>(), 11);
  ASSERT_EQ(train.masks.sizes(), (std::vector<int64_t>{2, 4, 4}));
  EXPECT_EQ(train.masks.scalar_type(), torch::kUInt8);
  EXPECT_EQ(train.masks.sum().item<int64_t>(), 0);
}

TEST_F(MvtecAdDatasetTest, TestSplitImagesLabelsAndMasks) {
  WriteCategory();
  const ImageSet test = LoadOrDie("image_size: 4", Split::kTest);

  // Class by class in label order: good, crack (000, 001), scratch.
  EXPECT_EQ(test.labels, (std::vector<int64_t>{0, 1, 1, 2}));
  ASSERT_EQ(test.images.sizes(), (std::vector<int64_t>{4, 4, 4, 3}));
  const int levels[] = {20, 30, 31, 40};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(Values(test.images, i), std::vector<int>(48, levels[i]))
        << "image " << i;
  }

  ASSERT_EQ(test.masks.sizes(), (std::vector<int64_t>{4, 4, 4}));
  EXPECT_EQ(test.masks.scalar_type(), torch::kUInt8);
  EXPECT_EQ(Values(test.masks, 0), std::vector<int>(16, 0));
  EXPECT_EQ(Values(test.masks, 1),
            (std::vector<int>{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(Values(test.masks, 2), std::vector<int>(16, 0));
  EXPECT_EQ(Values(test.masks, 3),
            (std::vector<int>{0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST_F(MvtecAdDatasetTest, ShrunkMaskKeepsHalfCoveredPixels) {
  WriteImage("train/good/000.png", Flat(4, 4, 1));
  WriteImage("test/hole/000.png", Flat(4, 4, 1));
  // The 2x2 blocks contain 1, 2, 3 and 0 defect pixels of 4: a quarter (0),
  // exactly half (1), three quarters (1) and none (0).
  WriteImage("ground_truth/hole/000_mask.png", Mask({{255, 0, 255, 255},
                                                     {0, 0, 0, 0},
                                                     {255, 255, 0, 0},
                                                     {255, 0, 0, 0}}));

  const ImageSet test = LoadOrDie("image_size: 2", Split::kTest);
  ASSERT_EQ(test.masks.sizes(), (std::vector<int64_t>{1, 2, 2}));
  EXPECT_EQ(Values(test.masks, 0), (std::vector<int>{0, 1, 1, 0}));
}

TEST_F(MvtecAdDatasetTest, EnlargedMaskIsBilinearThenThresholded) {
  WriteImage("train/good/000.png", Flat(2, 2, 1));
  WriteImage("test/hole/000.png", Flat(2, 2, 1));
  WriteImage("ground_truth/hole/000_mask.png", Mask({{255, 0}, {0, 0}}));

  // Along each axis, the centres of the 4 new pixels fall at source
  // positions -0.25, 0.25, 0.75 and 1.25, so the defect fraction there is
  // 1, 0.75, 0.25 and 0. Products of two factors of at least 0.75 reach
  // 0.5 (0.5625); 0.25 does not.
  const ImageSet test = LoadOrDie("image_size: 4", Split::kTest);
  ASSERT_EQ(test.masks.sizes(), (std::vector<int64_t>{1, 4, 4}));
  EXPECT_EQ(Values(test.masks, 0),
            (std::vector<int>{1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST_F(MvtecAdDatasetTest, MaskOfSubfolderImage) {
  WriteImage("train/good/000.png", Flat(2, 2, 1));
  WriteImage("test/hole/part/7.png", Flat(2, 2, 1));
  WriteImage("ground_truth/hole/part/7_mask.png", Mask({{0, 9}, {0, 0}}));

  const ImageSet test = LoadOrDie("image_size: 2", Split::kTest);
  EXPECT_EQ(test.labels, (std::vector<int64_t>{1}));
  EXPECT_EQ(Values(test.masks, 0), (std::vector<int>{0, 1, 0, 0}));
}

TEST_F(MvtecAdDatasetTest, MissingMaskIsNotFound) {
  WriteCategory();
  std::filesystem::remove(Path("ground_truth/crack/001_mask.png"));

  auto dataset = Create(Options("skip_unreadable: true"));
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  for (const absl::Status& status :
       {(*dataset)->Load(Split::kTest).status(),
        (*dataset)->Fingerprint(Split::kTest).status()}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("defect image " + Path("test/crack/001.png") +
                          " has no ground-truth mask: " +
                          Path("ground_truth/crack/001_mask.png")));
  }
  // The training split needs no masks.
  EXPECT_TRUE((*dataset)->Load(Split::kTrain).ok());
}

TEST_F(MvtecAdDatasetTest, MaskSizeMismatchIsDataLoss) {
  WriteCategory();
  const std::string mask = WriteImage("ground_truth/scratch/000_mask.png",
                                      Mask({{0, 0, 0}, {0, 255, 0}}));

  // Skipping unreadable files does not skip a mismatch.
  for (const char* extra : {"", "skip_unreadable: true"}) {
    const absl::Status status = LoadStatus(extra, Split::kTest);
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("mask " + mask + " is 3x2 pixels, but its image " +
                          Path("test/scratch/000.png") + " is 4x4"))
        << extra;
  }
}

TEST_F(MvtecAdDatasetTest, UnreadableImageIsDataLoss) {
  WriteCategory();
  const std::string broken = WriteBytes("test/good/000.png", "not an image");

  const absl::Status status = LoadStatus("", Split::kTest);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("failed to decode image " + broken));
}

TEST_F(MvtecAdDatasetTest, UnreadableMaskIsDataLoss) {
  WriteCategory();
  const std::string broken =
      WriteBytes("ground_truth/crack/000_mask.png", "not an image");

  const absl::Status status = LoadStatus("", Split::kTest);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("failed to decode mask " + broken));
}

// The category's images are 4x4 = 16 pixels; a limit of 15 rejects each
// image before decoding, and the first in path order is reported.
TEST_F(MvtecAdDatasetTest, ImageOverPixelLimitIsResourceExhausted) {
  WriteCategory();

  const absl::Status status =
      LoadStatus("image_size: 4 max_image_pixels: 15", Split::kTrain);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("image " + Path("train/good/000.png") +
                        " is 4x4 = 16 pixels, more than the limit of 15"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("`max_image_pixels`"));
  EXPECT_TRUE(LoadStatus("image_size: 4 max_image_pixels: 16", Split::kTest)
                  .ok());
}

// A mask larger than its 4x4 image is rejected by the limit before the
// size mismatch is found.
TEST_F(MvtecAdDatasetTest, MaskOverPixelLimitIsResourceExhausted) {
  WriteCategory();
  const std::string mask =
      WriteImage("ground_truth/crack/000_mask.png", Flat(8, 8, 255));

  const absl::Status status =
      LoadStatus("image_size: 4 max_image_pixels: 16", Split::kTest);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("mask " + mask + " is 8x8 = 64 pixels"));
}

TEST_F(MvtecAdDatasetTest, SkipUnreadableDropsImageAndMask) {
  WriteCategory();
  WriteBytes("test/good/000.png", "not an image");
  WriteBytes("ground_truth/crack/000_mask.png", "not an image");

  ::testing::internal::CaptureStderr();
  const ImageSet test =
      LoadOrDie("image_size: 4 skip_unreadable: true", Split::kTest);
  const std::string log = ::testing::internal::GetCapturedStderr();

  // crack/001 and scratch/000 remain, each with its own mask.
  EXPECT_EQ(test.labels, (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(test.images.size(0), 2);
  ASSERT_EQ(test.masks.size(0), 2);
  EXPECT_EQ(test.images[0][0][0][0].item<uint8_t>(), 31);
  EXPECT_EQ(test.images[1][0][0][0].item<uint8_t>(), 40);
  EXPECT_EQ(test.masks[0].sum().item<int64_t>(), 0);
  EXPECT_EQ(test.masks[1].sum().item<int64_t>(), 4);
  EXPECT_THAT(log, HasSubstr("skipped 2 of 4 images of the test split"));
}

TEST_F(MvtecAdDatasetTest, ReaderMatchesLoadWithoutMasks) {
  WriteCategory();
  auto dataset = Create(Options("image_size: 4 num_decode_threads: 2"));
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  for (Split split : {Split::kTrain, Split::kTest}) {
    SCOPED_TRACE(SplitName(split));
    absl::StatusOr<std::unique_ptr<SplitReader>> reader =
        (*dataset)->Open(split);
    ASSERT_TRUE(reader.ok()) << reader.status();
    absl::StatusOr<ImageSet> loaded = (*dataset)->Load(split);
    ASSERT_TRUE(loaded.ok()) << loaded.status();

    EXPECT_EQ((*reader)->labels(), loaded->labels);
    std::vector<int64_t> backwards;
    for (int64_t i = (*reader)->size() - 1; i >= 0; --i) backwards.push_back(i);
    absl::StatusOr<torch::Tensor> images = (*reader)->Read(backwards);
    ASSERT_TRUE(images.ok()) << images.status();
    EXPECT_TRUE(torch::equal(*images, loaded->images.flip({0})));
  }
}

TEST_F(MvtecAdDatasetTest, ReaderChecksMasksOfReadImages) {
  WriteCategory();
  const std::string mask = WriteImage("ground_truth/scratch/000_mask.png",
                                      Mask({{0, 0, 0}, {0, 255, 0}}));
  auto dataset = Create(Options("image_size: 4"));
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  absl::StatusOr<std::unique_ptr<SplitReader>> reader =
      (*dataset)->Open(Split::kTest);
  ASSERT_TRUE(reader.ok()) << reader.status();

  // Test images: good/000, crack/000, crack/001, scratch/000.
  absl::StatusOr<torch::Tensor> good = (*reader)->Read({0, 1, 2});
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ((*good)[2][0][0][0].item<uint8_t>(), 31);
  absl::StatusOr<torch::Tensor> mismatch = (*reader)->Read({3});
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(mismatch.status().message()),
              HasSubstr("mask " + mask + " is 3x2 pixels"));
}

TEST_F(MvtecAdDatasetTest, MissingFoldersAreNotFound) {
  const std::string absent = root_ + "/absent";
  auto no_root = Create("root: \"" + absent + "\" category: \"widget\"");
  EXPECT_EQ(no_root.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_root.status().message()),
              HasSubstr("root folder " + absent + " does not exist"));

  auto no_category = Create(Options());
  EXPECT_EQ(no_category.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_category.status().message()),
              HasSubstr("category folder " + root_ + "/widget does not exist"));

  std::filesystem::create_directories(Path("train"));
  auto no_train = Create(Options());
  EXPECT_EQ(no_train.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_train.status().message()),
              HasSubstr(Path("train/good") + " does not exist"));

  std::filesystem::create_directories(Path("train/good"));
  auto no_test = Create(Options());
  EXPECT_EQ(no_test.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_test.status().message()),
              HasSubstr(Path("test") + " does not exist"));
}

TEST_F(MvtecAdDatasetTest, NoTestImagesIsNotFound) {
  WriteImage("train/good/000.png", Flat(2, 2, 1));
  std::filesystem::create_directories(Path("test"));
  auto no_folders = Create(Options());
  EXPECT_EQ(no_folders.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_folders.status().message()),
              HasSubstr("no class folders in " + Path("test")));

  std::filesystem::create_directories(Path("test/good"));
  const absl::Status empty_folder = LoadStatus("", Split::kTest);
  EXPECT_EQ(empty_folder.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(
      std::string(empty_folder.message()),
      HasSubstr("class folder " + Path("test/good") + " contains no images"));
}

TEST_F(MvtecAdDatasetTest, FingerprintTracksImagesAndMasks) {
  WriteCategory();
  auto dataset = Create(Options());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<std::string> train = (*dataset)->Fingerprint(Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_THAT(*train, HasSubstr(Path("train") + ": 2 files"));
  absl::StatusOr<std::string> before = (*dataset)->Fingerprint(Split::kTest);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_THAT(*before, HasSubstr(Path("test") + ": 4 files"));
  EXPECT_THAT(*before, Not(HasSubstr(Path("train"))));
  EXPECT_EQ(*(*dataset)->Fingerprint(Split::kTest), *before);

  const std::string mask = Path("ground_truth/crack/000_mask.png");
  const struct timeval times[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(::utimes(mask.c_str(), times), 0);
  absl::StatusOr<std::string> touched = (*dataset)->Fingerprint(Split::kTest);
  ASSERT_TRUE(touched.ok()) << touched.status();
  EXPECT_NE(*touched, *before);
  // The training split has no masks, so it does not change.
  EXPECT_EQ(*(*dataset)->Fingerprint(Split::kTrain), *train);
}

TEST_F(MvtecAdDatasetTest, BadOptionsAreInvalidArgument) {
  WriteCategory();
  const struct {
    std::string text;
    std::string field;
  } cases[] = {
      {"category: \"widget\"", "`root`"},
      {"root: \"" + root_ + "\"", "`category`"},
      {Options("image_size: 0"), "`image_size` is 0"},
      {Options("image_size: 65536"), "`image_size` is 65536"},
      {Options("num_decode_threads: -1"), "`num_decode_threads` is -1"},
      {Options("max_image_pixels: -1"), "`max_image_pixels` is -1"},
  };
  for (const auto& c : cases) {
    auto dataset = Create(c.text);
    EXPECT_EQ(dataset.status().code(), absl::StatusCode::kInvalidArgument)
        << c.text;
    EXPECT_THAT(std::string(dataset.status().message()), HasSubstr(c.field));
  }
}

}  // namespace
}  // namespace panda
