#include <sys/time.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/logging.h"
#include "datasets/dataset.h"
#include "datasets/synthetic_defects.h"
#include "datasets/synthetic_defects_options.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"
#include "opencv2/imgproc.hpp"
#include "torch/types.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

// Returns image or mask `index` of `tensor` as a cv::Mat of `type`.
cv::Mat ToMat(const torch::Tensor& tensor, int64_t index, int type) {
  const torch::Tensor item = tensor[index].contiguous();
  return cv::Mat(static_cast<int>(item.size(0)), static_cast<int>(item.size(1)),
                 type, item.data_ptr())
      .clone();
}

bool Equal(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() &&
         cv::countNonZero(a.reshape(1) != b.reshape(1)) == 0;
}

class SyntheticDefectsDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ =
        ::testing::TempDir() + "synthetic_defects_" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(std::filesystem::create_directories(directory_));

    // A 24x20 RGB texture of random levels. It is stored as BGR, the order
    // cv::imwrite expects, so that the dataset decodes it back to `texture_`.
    texture_ = cv::Mat(20, 24, CV_8UC3);
    cv::RNG rng(11);
    rng.fill(texture_, cv::RNG::UNIFORM, 0, 256);
    texture_path_ = directory_ + "/texture.png";
    cv::Mat bgr;
    cv::cvtColor(texture_, bgr, cv::COLOR_RGB2BGR);
    ASSERT_TRUE(cv::imwrite(texture_path_, bgr));
    SetMinLogLevel(LogLevel::kWarning);
  }

  void TearDown() override { SetMinLogLevel(LogLevel::kInfo); }

  absl::StatusOr<std::unique_ptr<Dataset>> Create(const std::string& text) {
    SyntheticDefectsOptions options;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &options))
        << text;
    google::protobuf::Any any;
    any.PackFrom(options);
    return DatasetRegistry().Create("synthetic_defects", any);
  }

  std::string Options(const std::string& extra = "") const {
    return "texture: \"" + texture_path_ + "\" " + extra;
  }

  ImageSet LoadOrDie(const std::string& extra, Split split) {
    auto dataset = Create(Options(extra));
    EXPECT_TRUE(dataset.ok()) << dataset.status();
    if (!dataset.ok()) return ImageSet();
    absl::StatusOr<ImageSet> set = (*dataset)->Load(split);
    EXPECT_TRUE(set.ok()) << set.status();
    return set.ok() ? *std::move(set) : ImageSet();
  }

  std::string directory_;
  cv::Mat texture_;
  std::string texture_path_;
};

constexpr char kSmall[] =
    "image_size: 32 train_images: 5 test_good_images: 3 "
    "test_images_per_defect: 2 ";

TEST_F(SyntheticDefectsDatasetTest, ClassesAndNormalClass) {
  auto dataset = Create(Options());
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ(
      (*dataset)->class_names(),
      (std::vector<std::string>{"good", "scratch", "blob", "colour_spot"}));
  EXPECT_EQ((*dataset)->normal_classes(), (std::vector<int64_t>{0}));
}

TEST_F(SyntheticDefectsDatasetTest, CountsLabelsAndShapes) {
  const ImageSet train = LoadOrDie(kSmall, Split::kTrain);
  EXPECT_EQ(train.labels, std::vector<int64_t>(5, 0));
  EXPECT_EQ(train.images.sizes(), (std::vector<int64_t>{5, 32, 32, 3}));
  EXPECT_EQ(train.images.scalar_type(), torch::kUInt8);
  EXPECT_EQ(train.masks.sizes(), (std::vector<int64_t>{5, 32, 32}));
  EXPECT_EQ(train.masks.scalar_type(), torch::kUInt8);
  EXPECT_EQ(train.masks.sum().item<int64_t>(), 0);

  const ImageSet test = LoadOrDie(kSmall, Split::kTest);
  EXPECT_EQ(test.labels, (std::vector<int64_t>{0, 0, 0, 1, 1, 2, 2, 3, 3}));
  EXPECT_EQ(test.images.sizes(), (std::vector<int64_t>{9, 32, 32, 3}));
  EXPECT_EQ(test.masks.sizes(), (std::vector<int64_t>{9, 32, 32}));
  for (int64_t i = 0; i < 9; ++i) {
    const int64_t defect_pixels = test.masks[i].sum().item<int64_t>();
    if (test.labels[i] == 0) {
      EXPECT_EQ(defect_pixels, 0) << "image " << i;
    } else {
      EXPECT_GT(defect_pixels, 0) << "image " << i;
    }
  }
  EXPECT_LE(test.masks.max().item<uint8_t>(), 1);
}

TEST_F(SyntheticDefectsDatasetTest, DefaultCounts) {
  const ImageSet train = LoadOrDie("image_size: 8", Split::kTrain);
  EXPECT_EQ(train.labels.size(), 60u);
  const ImageSet test = LoadOrDie("image_size: 8", Split::kTest);
  ASSERT_EQ(test.labels.size(), 30u + 3 * 30u);
  for (int label = 0; label < 4; ++label) {
    EXPECT_EQ(std::count(test.labels.begin(), test.labels.end(), label), 30)
        << "label " << label;
  }
}

TEST_F(SyntheticDefectsDatasetTest, ImagesMatchGenerator) {
  const ImageSet test =
      LoadOrDie(std::string(kSmall) + "seed: 9", Split::kTest);
  ASSERT_EQ(test.labels.size(), 9u);
  // Image 1 is the second good image, image 5 the first blob and image 8
  // the second colour spot.
  const struct {
    int64_t position;
    DefectKind kind;
    int64_t index;
  } cases[] = {{1, DefectKind::kNone, 1},
               {5, DefectKind::kBlob, 0},
               {8, DefectKind::kColourSpot, 1}};
  for (const auto& c : cases) {
    std::mt19937_64 engine =
        DefectSampleEngine(9, /*stream=*/1, c.kind, c.index);
    const DefectSample expected =
        DrawDefectSample(texture_, 32, c.kind, engine);
    EXPECT_TRUE(Equal(ToMat(test.images, c.position, CV_8UC3), expected.image))
        << "image " << c.position;
    EXPECT_TRUE(Equal(ToMat(test.masks, c.position, CV_8UC1), expected.mask))
        << "mask " << c.position;
  }
}

TEST_F(SyntheticDefectsDatasetTest, SameOptionsSameImages) {
  for (Split split : {Split::kTrain, Split::kTest}) {
    const ImageSet a = LoadOrDie(kSmall, split);
    const ImageSet b = LoadOrDie(kSmall, split);
    EXPECT_TRUE(torch::equal(a.images, b.images)) << SplitName(split);
    EXPECT_TRUE(torch::equal(a.masks, b.masks)) << SplitName(split);
  }
}

TEST_F(SyntheticDefectsDatasetTest, SeedsAndSplitsDiffer) {
  const ImageSet seed0 = LoadOrDie(kSmall, Split::kTest);
  const ImageSet seed1 =
      LoadOrDie(std::string(kSmall) + "seed: 1", Split::kTest);
  EXPECT_FALSE(torch::equal(seed0.images, seed1.images));
  EXPECT_FALSE(torch::equal(seed0.masks, seed1.masks));

  // The first good image of each split comes from a different stream.
  const ImageSet train = LoadOrDie(kSmall, Split::kTrain);
  EXPECT_FALSE(torch::equal(train.images[0], seed0.images[0]));
}

TEST_F(SyntheticDefectsDatasetTest, CountOfOneClassLeavesOthers) {
  const ImageSet few = LoadOrDie(kSmall, Split::kTest);
  const ImageSet more =
      LoadOrDie("image_size: 32 test_good_images: 6 test_images_per_defect: 2",
                Split::kTest);
  ASSERT_EQ(more.labels.size(), 12u);
  // The defect images follow 3 good images in one and 6 in the other.
  EXPECT_TRUE(
      torch::equal(few.images.narrow(0, 3, 6), more.images.narrow(0, 6, 6)));
  EXPECT_TRUE(
      torch::equal(few.images.narrow(0, 0, 3), more.images.narrow(0, 0, 3)));
}

TEST_F(SyntheticDefectsDatasetTest, TextureErrorsNamePath) {
  auto empty = Create("");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("`texture`"));

  const std::string absent = directory_ + "/absent.png";
  auto missing = Create("texture: \"" + absent + "\"");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("`texture`: file not found: " + absent));

  const std::string broken = directory_ + "/broken.png";
  std::ofstream(broken) << "not an image";
  auto unreadable = Create("texture: \"" + broken + "\"");
  EXPECT_EQ(unreadable.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(unreadable.status().message()),
              HasSubstr("failed to decode image " + broken));
}

TEST_F(SyntheticDefectsDatasetTest, BadOptionsAreInvalidArgument) {
  const struct {
    std::string extra;
    std::string field;
  } cases[] = {
      {"train_images: 0", "`train_images` is 0"},
      {"test_good_images: 0", "`test_good_images` is 0"},
      {"test_images_per_defect: 0", "`test_images_per_defect` is 0"},
      {"test_images_per_defect: -3", "`test_images_per_defect` is -3"},
      {"image_size: 7", "`image_size` is 7"},
      {"image_size: 65536", "`image_size` is 65536"},
  };
  for (const auto& c : cases) {
    auto dataset = Create(Options(c.extra));
    EXPECT_EQ(dataset.status().code(), absl::StatusCode::kInvalidArgument)
        << c.extra;
    EXPECT_THAT(std::string(dataset.status().message()), HasSubstr(c.field));
  }
}

TEST_F(SyntheticDefectsDatasetTest, FingerprintTracksTextureAndOptions) {
  auto dataset = Create(Options(kSmall));
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  const std::string train = *(*dataset)->Fingerprint(Split::kTrain);
  const std::string test = *(*dataset)->Fingerprint(Split::kTest);
  EXPECT_NE(train, test);
  EXPECT_THAT(train, HasSubstr(texture_path_));
  EXPECT_EQ(*(*dataset)->Fingerprint(Split::kTrain), train);

  auto other_seed = Create(Options(std::string(kSmall) + "seed: 4"));
  ASSERT_TRUE(other_seed.ok()) << other_seed.status();
  EXPECT_NE(*(*other_seed)->Fingerprint(Split::kTrain), train);

  const struct timeval times[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(::utimes(texture_path_.c_str(), times), 0);
  auto touched = Create(Options(kSmall));
  ASSERT_TRUE(touched.ok()) << touched.status();
  EXPECT_NE(*(*touched)->Fingerprint(Split::kTrain), train);
}

}  // namespace
}  // namespace panda
