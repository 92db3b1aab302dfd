#include "datasets/image_size_limit.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "datasets/image_folder_decoding.h"
#include "datasets/mask_decoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"

namespace panda {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
}

// Writes a `width` x `height` image of one colour, RGB (200, 120, 90), with
// OpenCV in the format of `name`'s extension, and returns its path.
std::string WriteImage(const std::string& name, int width, int height,
                       const std::vector<int>& params = {}) {
  const std::string path = TempPath(name);
  const cv::Mat image(height, width, CV_8UC3, cv::Scalar(90, 120, 200));
  EXPECT_TRUE(cv::imwrite(path, image, params)) << path;
  return path;
}

// The sizes OpenCV wrote must be the sizes read back from the headers.
TEST(ReadImageDimensionsTest, ReadsEveryFormat) {
  for (const std::string name :
       {"wide.png", "wide.jpg", "wide.bmp", "wide.tif", "wide.webp"}) {
    const std::string path = WriteImage(name, 37, 23);
    std::optional<ImageDimensions> dimensions = ReadImageDimensions(path);
    ASSERT_TRUE(dimensions.has_value()) << name;
    EXPECT_EQ(dimensions->width, 37) << name;
    EXPECT_EQ(dimensions->height, 23) << name;
  }
}

TEST(ReadImageDimensionsTest, ReadsLosslessWebp) {
  // Quality above 100 selects lossless WebP, whose VP8L chunk stores the
  // size in 14-bit fields.
  const std::string path =
      WriteImage("lossless.webp", 301, 7, {cv::IMWRITE_WEBP_QUALITY, 101});
  std::optional<ImageDimensions> dimensions = ReadImageDimensions(path);
  ASSERT_TRUE(dimensions.has_value());
  EXPECT_EQ(dimensions->width, 301);
  EXPECT_EQ(dimensions->height, 7);
}

TEST(ReadImageDimensionsTest, ProgressiveJpeg) {
  // A progressive JPEG has SOF2 in place of SOF0.
  const std::string path = WriteImage("progressive.jpg", 64, 48,
                                      {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
  std::optional<ImageDimensions> dimensions = ReadImageDimensions(path);
  ASSERT_TRUE(dimensions.has_value());
  EXPECT_EQ(dimensions->width, 64);
  EXPECT_EQ(dimensions->height, 48);
}

TEST(ReadImageDimensionsTest, OtherFilesHaveNone) {
  const std::string text = TempPath("notes.png");
  std::ofstream(text) << "not an image";
  EXPECT_FALSE(ReadImageDimensions(text).has_value());

  // PPM is decoded by OpenCV, but its header is not read here.
  EXPECT_FALSE(ReadImageDimensions(WriteImage("plain.ppm", 5, 5)).has_value());

  // A PNG cut inside its IHDR chunk.
  const std::string png = WriteImage("cut.png", 8, 8);
  std::ifstream in(png, std::ios::binary);
  std::string head(20, '\0');
  in.read(head.data(), 20);
  const std::string cut = TempPath("cut_short.png");
  std::ofstream(cut, std::ios::binary) << head;
  EXPECT_FALSE(ReadImageDimensions(cut).has_value());

  EXPECT_FALSE(ReadImageDimensions(TempPath("missing.png")).has_value());
}

TEST(CheckImagePixelsTest, LimitIsInclusive) {
  EXPECT_TRUE(CheckImagePixels("image a.png", {100, 50}, 5000).ok());
  EXPECT_TRUE(CheckImagePixels("image a.png", {100, 50}, 0).ok());

  const absl::Status status = CheckImagePixels("image a.png", {100, 51}, 5000);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), HasSubstr("image a.png"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("100x51 = 5100 pixels"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("limit of 5000"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("`max_image_pixels`"));
}

TEST(CheckImagePixelsTest, LargestSidesDoNotOverflow) {
  // (2^32 - 1)^2 pixels fit 64 unsigned bits but not int64_t.
  const absl::Status status = CheckImagePixels(
      "image a.png", {4294967295, 4294967295}, 1000);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("4294967295x4294967295 = 18446744065119617025 pixels"));
}

// An input of image_decoding_fuzzer: a PNG whose IHDR claims 3755991007 x
// 3755991007 pixels, whose product overflowed int64_t.
TEST(DecodeImageFileTest, FuzzedHugePngHeaderIsRejected) {
  const std::string bytes(
      "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52"
      "\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf"
      "\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf"
      "\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf"
      "\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf"
      "\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf"
      "\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\xdf\x00\x00\x00\x04\x00\x00"
      "\x00\x04\x10\x00\x00\x00\x00\xdc\x0a\x1d\xe1\x00\x00\x00\x1e\x49"
      "\x44\x41\x54\x08\x1d\x63\x64\x60\xe0\x04\x03\x46\x0d\x0d\x4e\x30"
      "\x60\x0c\x08\xe0\x04\x03\xc6\x8a\x0a\x4e\x30\x00\x00\x28\x26\x02"
      "\xbd\x60\x78\xde\x6c\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60"
      "\x82",
      177);
  const std::string path = TempPath("fuzzed_ihdr.png");
  std::ofstream(path, std::ios::binary) << bytes;

  const absl::StatusOr<cv::Mat> decoded = DecodeRgbImage(path, 1 << 20);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kResourceExhausted)
      << decoded.status();
  EXPECT_THAT(std::string(decoded.status().message()),
              HasSubstr("3755991007x3755991007 = 14107468444664874049 pixels"));
}

// A 5000 x 5000 PNG of one colour is small on disk but 75 MB decoded. The
// header check rejects it before decoding.
TEST(DecodeImageFileTest, RejectsImageOverLimit) {
  const std::string path = WriteImage("large.png", 5000, 5000);
  std::vector<uint8_t> rgb(4 * 4 * 3);

  const absl::Status status =
      DecodeImageFile(path, 4, /*max_pixels=*/1'000'000, rgb.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("5000x5000 = 25000000 pixels"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("limit of 1000000"));

  EXPECT_EQ(DecodeRgbImage(path, 1'000'000).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(DecodeImageFile(path, 4, 25'000'000, rgb.data()).ok());
  EXPECT_EQ(rgb[0], 200);  // R of the BGR scalar (90, 120, 200).
}

// PPM passes the header check, so the decoded size is checked.
TEST(DecodeImageFileTest, ChecksDecodedSizeOfOtherFormats) {
  const std::string path = WriteImage("large.ppm", 300, 200);
  std::vector<uint8_t> rgb(4 * 4 * 3);

  const absl::Status status = DecodeImageFile(path, 4, 59'999, rgb.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("300x200 = 60000 pixels"));
  EXPECT_TRUE(DecodeImageFile(path, 4, 60'000, rgb.data()).ok());
}

TEST(DecodeMaskFileTest, RejectsMaskOverLimit) {
  const std::string path = WriteImage("large_mask.png", 5000, 5000);
  std::vector<uint8_t> mask(4 * 4);

  const absl::Status status =
      DecodeMaskFile(path, 4, /*max_pixels=*/1'000'000, mask.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("mask " + path));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("5000x5000 = 25000000 pixels"));
  EXPECT_TRUE(DecodeMaskFile(path, 4, 0, mask.data()).ok());
  EXPECT_EQ(mask[0], 1);
}

}  // namespace
}  // namespace panda
