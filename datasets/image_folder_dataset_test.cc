#include <sys/stat.h>
#include <sys/time.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/logging.h"
#include "datasets/dataset.h"
#include "datasets/image_folder_dataset_options.pb.h"
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

// Returns the RGB bytes of image `index` of `images`, row-major.
std::vector<int> Pixels(const torch::Tensor& images, int64_t index) {
  const torch::Tensor image = images[index].contiguous().to(torch::kInt32);
  const int* data = image.data_ptr<int>();
  return std::vector<int>(data, data + image.numel());
}

// An image whose every pixel is the colour (r, g, b), stored as OpenCV's BGR.
cv::Mat Uniform(int side, int r, int g, int b) {
  return cv::Mat(side, side, CV_8UC3, cv::Scalar(b, g, r));
}

class ImageFolderDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "image_folder_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(std::filesystem::create_directories(root_)) << root_;
  }

  std::string Path(const std::string& relative) const {
    return root_ + "/" + relative;
  }

  // Encodes `image` with OpenCV into `relative` (the extension picks the
  // format), creating folders as needed.
  std::string WriteImage(const std::string& relative, const cv::Mat& image,
                         const std::vector<int>& params = {}) {
    const std::string path = Path(relative);
    std::filesystem::create_directories(
        std::filesystem::path(path).parent_path());
    EXPECT_TRUE(cv::imwrite(path, image, params)) << path;
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

  absl::StatusOr<std::unique_ptr<Dataset>> Create(const std::string& text) {
    ImageFolderDatasetOptions options;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &options))
        << text;
    google::protobuf::Any any;
    any.PackFrom(options);
    return DatasetRegistry().Create("image_folder", any);
  }

  std::string RootOption() const { return "root: \"" + root_ + "\"\n"; }

  // Creates the dataset from `text` plus the root and loads `split`,
  // failing the test on any error.
  ImageSet LoadOrDie(const std::string& text, Split split = Split::kTrain) {
    auto dataset = Create(RootOption() + text);
    EXPECT_TRUE(dataset.ok()) << dataset.status();
    if (!dataset.ok()) return ImageSet();
    absl::StatusOr<ImageSet> set = (*dataset)->Load(split);
    EXPECT_TRUE(set.ok()) << set.status();
    return set.ok() ? *std::move(set) : ImageSet();
  }

  std::string root_;
};

TEST_F(ImageFolderDatasetTest, PngColourAndGreyExact) {
  // 2x2 colour image, stored as BGR: pixel (0, 0) is RGB (10, 20, 30).
  cv::Mat colour(2, 2, CV_8UC3);
  colour.at<cv::Vec3b>(0, 0) = {30, 20, 10};
  colour.at<cv::Vec3b>(0, 1) = {0, 0, 255};
  colour.at<cv::Vec3b>(1, 0) = {1, 2, 3};
  colour.at<cv::Vec3b>(1, 1) = {200, 150, 100};
  WriteImage("train/cat/colour.png", colour);
  const cv::Mat grey = (cv::Mat_<uint8_t>(2, 2) << 0, 64, 128, 255);
  WriteImage("train/dog/grey.png", grey);
  WriteImage("test/cat/x.png", grey);

  auto dataset = Create(RootOption() + "image_size: 2");
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ((*dataset)->class_names(),
            (std::vector<std::string>{"cat", "dog"}));

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->images.sizes(), (std::vector<int64_t>{2, 2, 2, 3}));
  EXPECT_EQ(train->images.scalar_type(), torch::kUInt8);
  EXPECT_EQ(train->labels, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(Pixels(train->images, 0),
            (std::vector<int>{10, 20, 30, 255, 0, 0, 3, 2, 1, 100, 150, 200}));
  EXPECT_EQ(
      Pixels(train->images, 1),
      (std::vector<int>{0, 0, 0, 64, 64, 64, 128, 128, 128, 255, 255, 255}));

  absl::StatusOr<ImageSet> test = (*dataset)->Load(Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->labels, (std::vector<int64_t>{0}));
}

TEST_F(ImageFolderDatasetTest, SixteenBitKeepsHighByte) {
  const cv::Mat grey =
      (cv::Mat_<uint16_t>(2, 2) << 0x1234, 0xFFFF, 0x00FF, 0x8001);
  WriteImage("train/a/grey16.png", grey);
  cv::Mat colour(2, 2, CV_16UC3, cv::Scalar(0x0101, 0x7FFF, 0xABCD));
  WriteImage("train/a/rgb16.png", colour);
  WriteImage("test/a/x.png", grey);

  ImageSet set = LoadOrDie("image_size: 2");
  ASSERT_EQ(set.labels.size(), 2u);
  EXPECT_EQ(Pixels(set.images, 0),
            (std::vector<int>{0x12, 0x12, 0x12, 0xFF, 0xFF, 0xFF, 0x00, 0x00,
                              0x00, 0x80, 0x80, 0x80}));
  // BGR (0x0101, 0x7FFF, 0xABCD) is RGB (0xAB, 0x7F, 0x01).
  for (int pixel = 0; pixel < 4; ++pixel) {
    const std::vector<int> rgb = Pixels(set.images, 1);
    EXPECT_EQ(rgb[pixel * 3 + 0], 0xAB) << pixel;
    EXPECT_EQ(rgb[pixel * 3 + 1], 0x7F) << pixel;
    EXPECT_EQ(rgb[pixel * 3 + 2], 0x01) << pixel;
  }
}

TEST_F(ImageFolderDatasetTest, AlphaIsDropped) {
  // Stored as BGRA. The colour comes back as stored, whatever the alpha.
  cv::Mat rgba(2, 2, CV_8UC4);
  rgba.at<cv::Vec4b>(0, 0) = {30, 20, 10, 0};
  rgba.at<cv::Vec4b>(0, 1) = {30, 20, 10, 128};
  rgba.at<cv::Vec4b>(1, 0) = {30, 20, 10, 255};
  rgba.at<cv::Vec4b>(1, 1) = {255, 255, 255, 0};
  WriteImage("train/a/rgba.png", rgba);
  WriteImage("test/a/x.png", rgba);

  ImageSet set = LoadOrDie("image_size: 2");
  ASSERT_EQ(set.labels.size(), 1u);
  EXPECT_EQ(Pixels(set.images, 0), (std::vector<int>{10, 20, 30, 10, 20, 30, 10,
                                                     20, 30, 255, 255, 255}));
}

TEST_F(ImageFolderDatasetTest, JpegWithinTolerance) {
  WriteImage("train/a/photo.jpg", Uniform(16, 200, 100, 50),
             {cv::IMWRITE_JPEG_QUALITY, 95});
  WriteImage("test/a/x.png", Uniform(16, 0, 0, 0));

  ImageSet set = LoadOrDie("image_size: 16");
  ASSERT_EQ(set.labels.size(), 1u);
  // JPEG is lossy: a flat colour comes back within a few levels.
  const torch::Tensor image = set.images[0].to(torch::kInt32);
  const torch::Tensor expected =
      torch::tensor({200, 100, 50}, torch::kInt32).view({1, 1, 3});
  EXPECT_LE((image - expected).abs().max().item<int>(), 3);
}

TEST_F(ImageFolderDatasetTest, ReadsEveryListedFormat) {
  const cv::Mat colour = Uniform(2, 11, 22, 33);
  WriteImage("train/a/1.bmp", colour);
  WriteImage("train/a/2.tif", colour);
  WriteImage("train/a/3.tiff", colour);
  WriteImage("train/a/4.PNG", colour);
  WriteImage("train/a/5.JPEG", colour, {cv::IMWRITE_JPEG_QUALITY, 100});
  WriteImage("test/a/x.png", colour);
  int expected_count = 5;
  if (cv::haveImageWriter(".webp")) {
    // Quality above 100 selects lossless WebP.
    WriteImage("train/a/6.webp", colour, {cv::IMWRITE_WEBP_QUALITY, 101});
    ++expected_count;
  }

  ImageSet set = LoadOrDie("image_size: 2");
  ASSERT_EQ(static_cast<int>(set.labels.size()), expected_count);
  for (int i = 0; i < expected_count; ++i) {
    const std::vector<int> pixels = Pixels(set.images, i);
    const int tolerance = i == 4 ? 3 : 0;  // 5.JPEG is lossy
    for (size_t p = 0; p < pixels.size(); ++p) {
      EXPECT_NEAR(pixels[p], 11 * (1 + static_cast<int>(p % 3)), tolerance)
          << "image " << i << " byte " << p;
    }
  }
}

TEST_F(ImageFolderDatasetTest, IgnoresOtherAndHiddenFiles) {
  WriteImage("train/a/real.png", Uniform(2, 1, 1, 1));
  WriteBytes("train/a/notes.txt", "not an image");
  WriteBytes("train/a/README", "not an image");
  WriteBytes("train/a/.hidden.png", "not an image");
  WriteBytes("train/a/.cache/x.png", "not an image");
  WriteBytes("train/stray.png", "not an image");
  WriteImage("test/a/x.png", Uniform(2, 1, 1, 1));

  ImageSet set = LoadOrDie("image_size: 2");
  EXPECT_EQ(set.labels, (std::vector<int64_t>{0}));
}

TEST_F(ImageFolderDatasetTest, OrderIsSortedPaths) {
  // Each file is a flat grey whose level names it.
  WriteImage("train/b/b.png", Uniform(2, 4, 4, 4));
  WriteImage("train/b/a.png", Uniform(2, 3, 3, 3));
  WriteImage("train/b/2.png", Uniform(2, 2, 2, 2));
  WriteImage("train/b/10.png", Uniform(2, 1, 1, 1));
  WriteImage("train/b/sub/0.png", Uniform(2, 5, 5, 5));
  WriteImage("train/a/z.png", Uniform(2, 0, 0, 0));
  WriteImage("test/a/x.png", Uniform(2, 0, 0, 0));

  ImageSet set = LoadOrDie("image_size: 2");
  // Class a first, then b's files in bytewise order: "10.png" < "2.png" <
  // "a.png" < "b.png" < "sub/0.png".
  ASSERT_EQ(set.labels, (std::vector<int64_t>{0, 1, 1, 1, 1, 1}));
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(set.images[i][0][0][0].item<uint8_t>(), i) << "image " << i;
  }
}

TEST_F(ImageFolderDatasetTest, ShrinkAveragesAreas) {
  // 4x4 grey made of 2x2 blocks whose means are 25, 1, 100 and 253.
  const cv::Mat grey = (cv::Mat_<uint8_t>(4, 4) << 10, 20, 0, 0,  //
                        30, 40, 0, 4,                             //
                        100, 100, 255, 255,                       //
                        100, 100, 251, 251);
  WriteImage("train/a/grey.png", grey);
  // 4 wide, 2 high: only the width shrinks, so pairs of columns average.
  const cv::Mat wide = (cv::Mat_<uint8_t>(2, 4) << 0, 10, 20, 40,  //
                        100, 200, 7, 9);
  WriteImage("train/a/wide.png", wide);
  WriteImage("test/a/x.png", grey);

  ImageSet set = LoadOrDie("image_size: 2");
  ASSERT_EQ(set.labels.size(), 2u);
  EXPECT_EQ(Pixels(set.images, 0), (std::vector<int>{25, 25, 25, 1, 1, 1, 100,
                                                     100, 100, 253, 253, 253}));
  EXPECT_EQ(Pixels(set.images, 1),
            (std::vector<int>{5, 5, 5, 30, 30, 30, 150, 150, 150, 8, 8, 8}));
}

TEST_F(ImageFolderDatasetTest, EnlargeIsBilinear) {
  // Rows [0, 100] enlarged to 4 pixels: with pixel centres aligned, the new
  // centres fall at source positions -0.25, 0.25, 0.75 and 1.25, which give
  // 0, 25, 75 and 100 (the ends clamp to the edge).
  const cv::Mat grey = (cv::Mat_<uint8_t>(2, 2) << 0, 100, 0, 100);
  WriteImage("train/a/grey.png", grey);
  WriteImage("test/a/x.png", grey);

  ImageSet set = LoadOrDie("image_size: 4");
  ASSERT_EQ(set.labels.size(), 1u);
  for (int row = 0; row < 4; ++row) {
    for (int col = 0; col < 4; ++col) {
      EXPECT_EQ(set.images[0][row][col][1].item<uint8_t>(),
                std::vector<int>({0, 25, 75, 100})[col])
          << "row " << row << " col " << col;
    }
  }
}

TEST_F(ImageFolderDatasetTest, CorruptFileIsDataLossNamingPath) {
  WriteImage("train/a/good.png", Uniform(2, 1, 1, 1));
  const std::string broken = WriteBytes("train/a/broken.png", "not an image");
  WriteImage("test/a/x.png", Uniform(2, 1, 1, 1));
  auto dataset = Create(RootOption() + "image_size: 2");
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_EQ(train.status().code(), absl::StatusCode::kDataLoss)
      << train.status();
  EXPECT_THAT(std::string(train.status().message()),
              HasSubstr("failed to decode image " + broken));
}

TEST_F(ImageFolderDatasetTest, BrokenLinksAreNamedNotDropped) {
  WriteImage("train/a/good.png", Uniform(2, 1, 1, 1));
  WriteImage("test/a/x.png", Uniform(2, 1, 1, 1));
  const std::string dangling = Path("train/a/dangling.png");
  std::filesystem::create_symlink(Path("train/a/absent.png"), dangling);
  const std::string loop = Path("train/a/loop.png");
  std::filesystem::create_symlink(loop, loop);

  auto dataset = Create(RootOption() + "image_size: 2");
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  EXPECT_FALSE(train.ok());
  EXPECT_THAT(std::string(train.status().message()), HasSubstr(dangling));

  auto skipping =
      Create(RootOption() + "image_size: 2 skip_unreadable: true");
  ASSERT_TRUE(skipping.ok()) << skipping.status();
  absl::StatusOr<ImageSet> kept = (*skipping)->Load(Split::kTrain);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->images.size(0), 1);
}

TEST_F(ImageFolderDatasetTest, FirstErrorIsLowestPath) {
  for (int i = 0; i < 40; ++i) {
    const std::string name = "train/a/" + std::to_string(100 + i) + ".png";
    if (i == 17 || i == 18 || i == 33) {
      WriteBytes(name, "not an image");
    } else {
      WriteImage(name, Uniform(2, i, i, i));
    }
  }
  WriteImage("test/a/x.png", Uniform(2, 1, 1, 1));
  auto dataset = Create(RootOption() + "image_size: 2 num_decode_threads: 4");
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  for (int run = 0; run < 5; ++run) {
    absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
    ASSERT_EQ(train.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(train.status().message()),
                HasSubstr(Path("train/a/117.png")))
        << "run " << run;
  }
}

// A 5000x5000 PNG of one colour is small on disk; its header gives its
// size, so it is rejected without being decoded, by Load and by a reader.
TEST_F(ImageFolderDatasetTest, ImageOverPixelLimitIsResourceExhausted) {
  WriteImage("train/cat/small.png", Uniform(4, 1, 2, 3));
  const std::string large =
      WriteImage("train/cat/large.png", Uniform(5000, 1, 2, 3));
  WriteImage("test/cat/small.png", Uniform(4, 1, 2, 3));

  auto dataset =
      Create(RootOption() + "image_size: 4 max_image_pixels: 1000000");
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  const absl::Status loaded = (*dataset)->Load(Split::kTrain).status();
  EXPECT_EQ(loaded.code(), absl::StatusCode::kResourceExhausted) << loaded;
  EXPECT_THAT(std::string(loaded.message()),
              HasSubstr("image " + large +
                        " is 5000x5000 = 25000000 pixels, more than the "
                        "limit of 1000000 pixels"));
  EXPECT_THAT(std::string(loaded.message()), HasSubstr("`max_image_pixels`"));

  absl::StatusOr<std::unique_ptr<SplitReader>> reader =
      (*dataset)->Open(Split::kTrain);
  ASSERT_TRUE(reader.ok()) << reader.status();
  // Sorted paths: large.png is image 0.
  EXPECT_EQ((*reader)->Read({0}).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE((*reader)->Read({1}).ok());

  // With skip_unreadable, the large image is skipped like a corrupt one.
  ::testing::internal::CaptureStderr();
  const ImageSet kept = LoadOrDie(
      "image_size: 4 max_image_pixels: 1000000 skip_unreadable: true");
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(kept.labels, (std::vector<int64_t>{0}));
}

TEST_F(ImageFolderDatasetTest, SkipUnreadableCountsAndWarns) {
  WriteImage("train/a/1.png", Uniform(2, 1, 1, 1));
  const std::string first = WriteBytes("train/a/2.png", "not an image");
  WriteImage("train/b/3.png", Uniform(2, 3, 3, 3));
  const std::string second = WriteBytes("train/b/4.jpg", "");
  WriteImage("train/b/5.png", Uniform(2, 5, 5, 5));
  WriteImage("test/a/x.png", Uniform(2, 1, 1, 1));

  const LogLevel level = MinLogLevel();
  SetMinLogLevel(LogLevel::kWarning);
  ::testing::internal::CaptureStderr();
  ImageSet set = LoadOrDie("image_size: 2 skip_unreadable: true");
  const std::string log = ::testing::internal::GetCapturedStderr();
  SetMinLogLevel(level);

  EXPECT_EQ(set.labels, (std::vector<int64_t>{0, 1, 1}));
  ASSERT_EQ(set.images.size(0), 3);
  EXPECT_EQ(set.images[0][0][0][0].item<uint8_t>(), 1);
  EXPECT_EQ(set.images[1][0][0][0].item<uint8_t>(), 3);
  EXPECT_EQ(set.images[2][0][0][0].item<uint8_t>(), 5);
  EXPECT_THAT(log, HasSubstr("skipped 2 of 5 images of the train split"));
  EXPECT_THAT(log, HasSubstr(first));
  EXPECT_THAT(log, HasSubstr(second));
}

TEST_F(ImageFolderDatasetTest, AllUnreadableIsDataLoss) {
  WriteBytes("train/a/1.png", "not an image");
  WriteImage("test/a/x.png", Uniform(2, 1, 1, 1));
  SetMinLogLevel(LogLevel::kError);
  auto dataset = Create(RootOption() + "skip_unreadable: true");
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  SetMinLogLevel(LogLevel::kInfo);
  ASSERT_EQ(train.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(train.status().message()),
              HasSubstr("none of the 1 images"));
}

TEST_F(ImageFolderDatasetTest, UnsupportedSampleTypeIsRejected) {
  const std::string path = WriteImage("train/a/float.tiff",
                                      cv::Mat(2, 2, CV_32FC1, cv::Scalar(0.5)));
  WriteImage("test/a/x.png", Uniform(2, 1, 1, 1));
  auto dataset = Create(RootOption() + "image_size: 2");
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_EQ(train.status().code(), absl::StatusCode::kUnimplemented)
      << train.status();
  EXPECT_THAT(std::string(train.status().message()),
              HasSubstr("image " + path + " has OpenCV type CV_32FC1"));
}

TEST_F(ImageFolderDatasetTest, EmptyClassFolderIsNotFound) {
  WriteImage("train/a/1.png", Uniform(2, 1, 1, 1));
  WriteBytes("train/b/notes.txt", "no images here");
  WriteImage("test/a/x.png", Uniform(2, 1, 1, 1));
  auto dataset = Create(RootOption() + "image_size: 2");
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_EQ(train.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(
      std::string(train.status().message()),
      HasSubstr("class folder " + Path("train/b") + " contains no images"));
}

TEST_F(ImageFolderDatasetTest, MissingFoldersAreNotFound) {
  const std::string missing_root = Path("absent");
  auto no_root = Create("root: \"" + missing_root + "\"");
  EXPECT_EQ(no_root.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_root.status().message()), HasSubstr(missing_root));

  WriteImage("train/a/1.png", Uniform(2, 1, 1, 1));
  auto no_test = Create(RootOption());
  EXPECT_EQ(no_test.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(no_test.status().message()),
              HasSubstr(Path("test") + " does not exist"));

  WriteImage("test/1.png", Uniform(2, 1, 1, 1));
  auto flat_test = Create(RootOption());
  EXPECT_EQ(flat_test.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(flat_test.status().message()),
              HasSubstr("no class folders in " + Path("test")));
}

TEST_F(ImageFolderDatasetTest, CustomSplitFolders) {
  WriteImage("good/ok/1.png", Uniform(2, 1, 1, 1));
  WriteImage("eval/ok/1.png", Uniform(2, 2, 2, 2));
  WriteImage("eval/defect/1.png", Uniform(2, 3, 3, 3));
  const std::string options =
      "image_size: 2 train_folder: \"good\" test_folder: \"eval\"";
  auto dataset = Create(RootOption() + options);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  // The union of both splits' classes, sorted.
  EXPECT_EQ((*dataset)->class_names(),
            (std::vector<std::string>{"defect", "ok"}));

  EXPECT_EQ(LoadOrDie(options, Split::kTrain).labels,
            (std::vector<int64_t>{1}));
  EXPECT_EQ(LoadOrDie(options, Split::kTest).labels,
            (std::vector<int64_t>{0, 1}));
}

TEST_F(ImageFolderDatasetTest, ThreadCountDoesNotChangeResult) {
  for (int i = 0; i < 23; ++i) {
    cv::Mat image(5, 7, CV_8UC3);
    cv::randu(image, 0, 256);
    WriteImage("train/" + std::string(i % 3 == 0 ? "x" : "y") + "/" +
                   std::to_string(i) + ".png",
               image);
  }
  WriteImage("test/x/0.png", Uniform(2, 1, 1, 1));

  const ImageSet one = LoadOrDie("image_size: 6 num_decode_threads: 1");
  const ImageSet many = LoadOrDie("image_size: 6 num_decode_threads: 5");
  const ImageSet all_cores = LoadOrDie("image_size: 6");
  ASSERT_EQ(one.labels.size(), 23u);
  EXPECT_EQ(one.labels, many.labels);
  EXPECT_EQ(one.labels, all_cores.labels);
  EXPECT_TRUE(torch::equal(one.images, many.images));
  EXPECT_TRUE(torch::equal(one.images, all_cores.images));
}

TEST_F(ImageFolderDatasetTest, FingerprintTracksFiles) {
  WriteImage("train/a/1.png", Uniform(2, 1, 1, 1));
  const std::string second = WriteImage("train/b/2.png", Uniform(2, 2, 2, 2));
  WriteImage("test/a/x.png", Uniform(2, 1, 1, 1));
  auto dataset = Create(RootOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<std::string> before = (*dataset)->Fingerprint(Split::kTrain);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_THAT(*before, HasSubstr(Path("train") + ": 2 files"));
  EXPECT_EQ(*(*dataset)->Fingerprint(Split::kTrain), *before);

  const struct timeval times[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_EQ(::utimes(second.c_str(), times), 0);
  absl::StatusOr<std::string> touched = (*dataset)->Fingerprint(Split::kTrain);
  ASSERT_TRUE(touched.ok()) << touched.status();
  EXPECT_NE(*touched, *before);

  WriteImage("train/a/3.png", Uniform(2, 3, 3, 3));
  absl::StatusOr<std::string> added = (*dataset)->Fingerprint(Split::kTrain);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_THAT(*added, HasSubstr(": 3 files"));

  absl::StatusOr<std::string> test = (*dataset)->Fingerprint(Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_THAT(*test, Not(HasSubstr(Path("train"))));
}

// Opens `split` of `dataset`, failing the test on an error.
std::unique_ptr<SplitReader> OpenOrDie(const Dataset& dataset, Split split) {
  absl::StatusOr<std::unique_ptr<SplitReader>> reader = dataset.Open(split);
  EXPECT_TRUE(reader.ok()) << reader.status();
  return reader.ok() ? *std::move(reader) : nullptr;
}

// Reads `indices` from `reader`, failing the test on an error.
torch::Tensor ReadOrDie(const SplitReader& reader,
                        const std::vector<int64_t>& indices) {
  absl::StatusOr<torch::Tensor> images = reader.Read(indices);
  EXPECT_TRUE(images.ok()) << images.status();
  return images.ok() ? *std::move(images) : torch::Tensor();
}

TEST_F(ImageFolderDatasetTest, ReaderMatchesDefaultReader) {
  // Colour, grey, 16-bit, alpha and JPEG files of several sizes, shrunk and
  // enlarged to 4x4, in two classes and both splits.
  cv::RNG rng(3);
  cv::Mat colour(5, 7, CV_8UC3);
  rng.fill(colour, cv::RNG::UNIFORM, 0, 256);
  cv::Mat grey(3, 6, CV_8UC1);
  rng.fill(grey, cv::RNG::UNIFORM, 0, 256);
  cv::Mat grey16(4, 4, CV_16UC1);
  rng.fill(grey16, cv::RNG::UNIFORM, 0, 65536);
  cv::Mat colour16(2, 3, CV_16UC3);
  rng.fill(colour16, cv::RNG::UNIFORM, 0, 65536);
  cv::Mat rgba(3, 3, CV_8UC4);
  rng.fill(rgba, cv::RNG::UNIFORM, 0, 256);
  cv::Mat photo(9, 9, CV_8UC3);
  rng.fill(photo, cv::RNG::UNIFORM, 0, 256);
  WriteImage("train/a/colour.png", colour);
  WriteImage("train/a/grey.png", grey);
  WriteImage("train/a/sub/grey16.png", grey16);
  WriteImage("train/b/colour16.png", colour16);
  WriteImage("train/b/rgba.png", rgba);
  WriteImage("train/b/photo.jpg", photo, {cv::IMWRITE_JPEG_QUALITY, 80});
  WriteImage("test/a/rgba.png", rgba);
  WriteImage("test/b/grey16.png", grey16);
  WriteImage("test/b/photo.jpg", photo);

  auto dataset = Create(RootOption() + "image_size: 4 num_decode_threads: 3");
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  for (Split split : {Split::kTrain, Split::kTest}) {
    SCOPED_TRACE(SplitName(split));
    std::unique_ptr<SplitReader> own = OpenOrDie(**dataset, split);
    // The base class's Open, which serves Load()'s images from memory.
    absl::StatusOr<std::unique_ptr<SplitReader>> fallback =
        (*dataset)->Dataset::Open(split);
    ASSERT_NE(own, nullptr);
    ASSERT_TRUE(fallback.ok()) << fallback.status();
    absl::StatusOr<ImageSet> loaded = (*dataset)->Load(split);
    ASSERT_TRUE(loaded.ok()) << loaded.status();

    EXPECT_EQ(own->labels(), loaded->labels);
    EXPECT_EQ((*fallback)->labels(), loaded->labels);
    std::vector<int64_t> all(loaded->labels.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
    std::vector<int64_t> backwards(all.rbegin(), all.rend());
    backwards.push_back(0);
    for (const std::vector<int64_t>& indices : {all, backwards}) {
      const torch::Tensor expected = loaded->images.index_select(
          0, torch::tensor(indices, torch::kInt64));
      const torch::Tensor own_images = ReadOrDie(*own, indices);
      const torch::Tensor fallback_images = ReadOrDie(**fallback, indices);
      ASSERT_TRUE(own_images.defined());
      ASSERT_TRUE(fallback_images.defined());
      EXPECT_EQ(own_images.scalar_type(), torch::kUInt8);
      EXPECT_TRUE(torch::equal(own_images, expected));
      EXPECT_TRUE(torch::equal(fallback_images, expected));
    }
  }
}

TEST_F(ImageFolderDatasetTest, ReaderDecodesOnlyRequestedFiles) {
  WriteImage("train/a/0.png", Uniform(2, 10, 10, 10));
  WriteImage("train/a/1.png", Uniform(2, 11, 11, 11));
  const std::string broken = WriteBytes("train/a/2.png", "not an image");
  WriteImage("train/b/3.png", Uniform(2, 13, 13, 13));
  WriteImage("test/a/x.png", Uniform(2, 1, 1, 1));
  auto dataset = Create(RootOption() + "image_size: 2");
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  // Opening lists the files without decoding, so the corrupt one is no
  // error yet.
  std::unique_ptr<SplitReader> reader = OpenOrDie(**dataset, Split::kTrain);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->labels(), (std::vector<int64_t>{0, 0, 0, 1}));
  const torch::Tensor images = ReadOrDie(*reader, {3, 0});
  ASSERT_TRUE(images.defined());
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{2, 2, 2, 3}));
  EXPECT_EQ(images[0][1][1][2].item<uint8_t>(), 13);
  EXPECT_EQ(images[1][0][0][0].item<uint8_t>(), 10);
  EXPECT_EQ(ReadOrDie(*reader, {}).size(0), 0);

  absl::StatusOr<torch::Tensor> failed = reader->Read({1, 2, 3});
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kDataLoss)
      << failed.status();
  EXPECT_THAT(std::string(failed.status().message()),
              HasSubstr("failed to decode image " + broken));

  absl::StatusOr<torch::Tensor> outside = reader->Read({0, 4});
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(outside.status().message()),
              HasSubstr("image index 4 at position 1"));
}

TEST_F(ImageFolderDatasetTest, ReaderErrorIsFirstInReadOrder) {
  for (int i = 0; i < 40; ++i) {
    const std::string name = "train/a/" + std::to_string(100 + i) + ".png";
    if (i == 17 || i == 18 || i == 33) {
      WriteBytes(name, "not an image");
    } else {
      WriteImage(name, Uniform(2, i, i, i));
    }
  }
  WriteImage("test/a/x.png", Uniform(2, 1, 1, 1));
  auto dataset = Create(RootOption() + "image_size: 2 num_decode_threads: 4");
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  std::unique_ptr<SplitReader> reader = OpenOrDie(**dataset, Split::kTrain);
  ASSERT_NE(reader, nullptr);

  std::vector<int64_t> backwards(40);
  for (int i = 0; i < 40; ++i) backwards[i] = 39 - i;
  for (int run = 0; run < 5; ++run) {
    absl::StatusOr<torch::Tensor> failed = reader->Read(backwards);
    ASSERT_EQ(failed.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(failed.status().message()),
                HasSubstr(Path("train/a/133.png")))
        << "run " << run;
  }
}

TEST_F(ImageFolderDatasetTest, ReaderListingErrorsAtOpen) {
  WriteImage("train/a/1.png", Uniform(2, 1, 1, 1));
  WriteBytes("train/b/notes.txt", "no images here");
  WriteImage("test/a/1.png", Uniform(2, 1, 1, 1));
  auto dataset = Create(RootOption() + "image_size: 2");
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<std::unique_ptr<SplitReader>> reader =
      (*dataset)->Open(Split::kTrain);
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(
      std::string(reader.status().message()),
      HasSubstr("class folder " + Path("train/b") + " contains no images"));

  std::filesystem::remove_all(Path("test/a"));
  reader = (*dataset)->Open(Split::kTest);
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(reader.status().message()), HasSubstr(Path("test")));
}

TEST_F(ImageFolderDatasetTest, SkipUnreadableReaderKeepsReadableFiles) {
  WriteImage("train/a/1.png", Uniform(2, 1, 1, 1));
  WriteBytes("train/a/2.png", "not an image");
  WriteImage("train/b/3.png", Uniform(2, 3, 3, 3));
  WriteImage("test/a/x.png", Uniform(2, 1, 1, 1));
  SetMinLogLevel(LogLevel::kError);
  auto dataset = Create(RootOption() + "image_size: 2 skip_unreadable: true");
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  std::unique_ptr<SplitReader> reader = OpenOrDie(**dataset, Split::kTrain);
  SetMinLogLevel(LogLevel::kInfo);
  ASSERT_NE(reader, nullptr);

  // The labels are those of the files that decode, as Load() gives them.
  EXPECT_EQ(reader->labels(), (std::vector<int64_t>{0, 1}));
  const torch::Tensor images = ReadOrDie(*reader, {1, 0});
  ASSERT_TRUE(images.defined());
  EXPECT_EQ(images[0][0][0][0].item<uint8_t>(), 3);
  EXPECT_EQ(images[1][0][0][0].item<uint8_t>(), 1);
}

TEST_F(ImageFolderDatasetTest, BadOptionsAreInvalidArgument) {
  WriteImage("train/a/1.png", Uniform(2, 1, 1, 1));
  WriteImage("test/a/1.png", Uniform(2, 1, 1, 1));
  const struct {
    std::string text;
    std::string field;
  } cases[] = {
      {"", "`root`"},
      {RootOption() + "image_size: 0", "`image_size` is 0"},
      {RootOption() + "image_size: 65536", "`image_size` is 65536"},
      {RootOption() + "num_decode_threads: -1", "`num_decode_threads` is -1"},
      {RootOption() + "max_image_pixels: -1", "`max_image_pixels` is -1"},
      {RootOption() + "train_folder: \"\"", "`train_folder`"},
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
