#include <sys/stat.h>
#include <sys/time.h>
#include <zlib.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "datasets/dataset.h"
#include "datasets/idx_dataset_options.pb.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "torch/types.h"

namespace panda {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr char kFashionMnistDirectory[] = "/usr/share/datasets/fashion-mnist";

void AppendBigEndian32(uint32_t value, Bytes& out) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<uint8_t>(value >> shift));
  }
}

Bytes ImagesIdx(uint32_t count, uint32_t rows, uint32_t cols,
                const Bytes& pixels) {
  Bytes out;
  AppendBigEndian32(0x00000803, out);
  AppendBigEndian32(count, out);
  AppendBigEndian32(rows, out);
  AppendBigEndian32(cols, out);
  out.insert(out.end(), pixels.begin(), pixels.end());
  return out;
}

Bytes LabelsIdx(const Bytes& labels) {
  Bytes out;
  AppendBigEndian32(0x00000801, out);
  AppendBigEndian32(static_cast<uint32_t>(labels.size()), out);
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

// Compresses `data` into one gzip member with zlib.
Bytes Gzip(const Bytes& data) {
  z_stream stream = {};
  EXPECT_EQ(deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY),
            Z_OK);
  Bytes out(deflateBound(&stream, data.size()) + 64);
  stream.next_in = const_cast<uint8_t*>(data.data());
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

bool Contains(const absl::Status& status, const std::string& text) {
  return std::string(status.message()).find(text) != std::string::npos;
}

// Sum of every pixel of image `index` (or of all images when `index` < 0).
int64_t PixelSum(const torch::Tensor& images, int64_t index = -1) {
  const torch::Tensor selected = index < 0 ? images : images[index];
  return selected.sum(torch::kInt64).item<int64_t>();
}

// Gives each test its own folder under the test temp dir, with two tiny
// splits: 3 training images of 2x2 pixels and 2 test images.
class IdxDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ =
        ::testing::TempDir() +
        ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(::mkdir(directory_.c_str(), 0755), 0) << directory_;
  }

  std::string Write(const std::string& name, const Bytes& bytes) {
    const std::string path = directory_ + "/" + name;
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file.write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(file.good()) << path;
    return path;
  }

  // Writes the four files under their default names, gzip'd or plain.
  void WriteSplits(bool gzip) {
    const auto encode = [gzip](const Bytes& bytes) {
      return gzip ? Gzip(bytes) : bytes;
    };
    const std::string suffix = gzip ? ".gz" : "";
    Write("train-images-idx3-ubyte" + suffix,
          encode(ImagesIdx(3, 2, 2, kTrainPixels)));
    Write("train-labels-idx1-ubyte" + suffix, encode(LabelsIdx({0, 2, 1})));
    Write("t10k-images-idx3-ubyte" + suffix,
          encode(ImagesIdx(2, 2, 2, kTestPixels)));
    Write("t10k-labels-idx1-ubyte" + suffix, encode(LabelsIdx({3, 0})));
  }

  // Creates the "idx" plugin from IdxDatasetOptions in text format.
  absl::StatusOr<std::unique_ptr<Dataset>> Create(const std::string& text) {
    IdxDatasetOptions options;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &options))
        << text;
    google::protobuf::Any any;
    any.PackFrom(options);
    return DatasetRegistry().Create("idx", any);
  }

  std::string DirectoryOption() const {
    return "directory: \"" + directory_ + "\"\n";
  }

  const Bytes kTrainPixels = {0, 1, 2, 3, 10, 20, 30, 40, 255, 254, 128, 7};
  const Bytes kTestPixels = {9, 8, 7, 6, 200, 201, 202, 203};
  std::string directory_;
};

TEST_F(IdxDatasetTest, LoadsPlainFilesExactly) {
  WriteSplits(/*gzip=*/false);
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->images.sizes(), (std::vector<int64_t>{3, 2, 2, 1}));
  EXPECT_EQ(train->images.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(train->images.device().is_cpu());
  ASSERT_TRUE(train->images.is_contiguous());
  const uint8_t* pixels = train->images.data_ptr<uint8_t>();
  EXPECT_EQ(Bytes(pixels, pixels + kTrainPixels.size()), kTrainPixels);
  EXPECT_EQ(train->labels, (std::vector<int64_t>{0, 2, 1}));

  absl::StatusOr<ImageSet> test = (*dataset)->Load(Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->images.sizes(), (std::vector<int64_t>{2, 2, 2, 1}));
  EXPECT_EQ(test->images[1][0][1][0].item<uint8_t>(), 201);
  EXPECT_EQ(test->labels, (std::vector<int64_t>{3, 0}));
}

TEST_F(IdxDatasetTest, DefaultClassNamesCoverBothSplits) {
  WriteSplits(/*gzip=*/false);
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  // Train labels reach 2 and test labels 3.
  EXPECT_EQ((*dataset)->class_names(),
            (std::vector<std::string>{"0", "1", "2", "3"}));
}

TEST_F(IdxDatasetTest, FallsBackToGzipFiles) {
  WriteSplits(/*gzip=*/true);
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  const uint8_t* pixels = train->images.data_ptr<uint8_t>();
  EXPECT_EQ(Bytes(pixels, pixels + kTrainPixels.size()), kTrainPixels);
  EXPECT_EQ(train->labels, (std::vector<int64_t>{0, 2, 1}));
}

TEST_F(IdxDatasetTest, UsesCustomFileAndClassNames) {
  Write("a-images", ImagesIdx(3, 2, 2, kTrainPixels));
  Write("a-labels.gz", Gzip(LabelsIdx({1, 0, 1})));
  Write("b-images", ImagesIdx(2, 2, 2, kTestPixels));
  Write("b-labels", LabelsIdx({0, 0}));
  auto dataset = Create(DirectoryOption() + R"pb(
    train_images: "a-images"
    train_labels: "a-labels"
    test_images: "b-images"
    test_labels: "b-labels"
    class_names: [ "cat", "dog" ]
  )pb");
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ((*dataset)->class_names(),
            (std::vector<std::string>{"cat", "dog"}));

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->labels, (std::vector<int64_t>{1, 0, 1}));
}

TEST_F(IdxDatasetTest, MissingDirectoryOptionIsInvalidArgument) {
  for (const std::string& text :
       {std::string(""), std::string("directory: \"\"")}) {
    auto dataset = Create(text);
    EXPECT_EQ(dataset.status().code(), absl::StatusCode::kInvalidArgument)
        << dataset.status();
    EXPECT_TRUE(Contains(dataset.status(), "`directory`")) << dataset.status();
  }

  // No options at all: the plugin gets IdxDatasetOptions' defaults.
  auto dataset = DatasetRegistry().Create("idx", google::protobuf::Any());
  EXPECT_EQ(dataset.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(IdxDatasetTest, EmptyFileNameIsInvalidArgument) {
  WriteSplits(/*gzip=*/false);
  auto dataset = Create(DirectoryOption() + "test_labels: \"\"");
  EXPECT_EQ(dataset.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(dataset.status(), "`test_labels`")) << dataset.status();
}

TEST_F(IdxDatasetTest, MissingDirectoryIsNotFound) {
  const std::string missing = directory_ + "/absent";
  auto dataset = Create("directory: \"" + missing + "\"");
  EXPECT_EQ(dataset.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Contains(dataset.status(), missing)) << dataset.status();
}

TEST_F(IdxDatasetTest, MissingFileIsNotFoundAtLoad) {
  Write("train-labels-idx1-ubyte", LabelsIdx({0, 1, 0}));
  // Explicit class names keep creation from reading the label files.
  auto dataset = Create(DirectoryOption() + "class_names: [\"a\", \"b\"]");
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  EXPECT_EQ(train.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(
      Contains(train.status(), directory_ + "/train-images-idx3-ubyte.gz"))
      << train.status();
}

TEST_F(IdxDatasetTest, MissingLabelFileIsNotFoundAtCreation) {
  Write("train-images-idx3-ubyte", ImagesIdx(3, 2, 2, kTrainPixels));
  auto dataset = Create(DirectoryOption());
  EXPECT_EQ(dataset.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(
      Contains(dataset.status(), directory_ + "/train-labels-idx1-ubyte"))
      << dataset.status();
}

TEST_F(IdxDatasetTest, CountMismatchNamesBothFiles) {
  WriteSplits(/*gzip=*/false);
  const std::string labels =
      Write("t10k-labels-idx1-ubyte", LabelsIdx({0, 1, 2}));
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> test = (*dataset)->Load(Split::kTest);
  EXPECT_EQ(test.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(
      test.status(), directory_ + "/t10k-images-idx3-ubyte contains 2 images"))
      << test.status();
  EXPECT_TRUE(Contains(test.status(), labels + " contains 3 labels"))
      << test.status();
}

TEST_F(IdxDatasetTest, LabelWithoutClassNameIsDataLoss) {
  WriteSplits(/*gzip=*/false);
  auto dataset = Create(DirectoryOption() + "class_names: [\"a\", \"b\"]");
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  EXPECT_EQ(train.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(train.status(), "label 2 of image 1 in " + directory_ +
                                           "/train-labels-idx1-ubyte"))
      << train.status();
}

TEST_F(IdxDatasetTest, CorruptGzipIsDataLossAtLoad) {
  WriteSplits(/*gzip=*/true);
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  Bytes images = Gzip(ImagesIdx(2, 2, 2, kTestPixels));
  images[images.size() - 6] ^= 0xff;  // inside the CRC-32
  const std::string path = Write("t10k-images-idx3-ubyte.gz", images);

  absl::StatusOr<ImageSet> test = (*dataset)->Load(Split::kTest);
  EXPECT_EQ(test.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(test.status(), path)) << test.status();
}

TEST_F(IdxDatasetTest, FingerprintTracksPathSizeAndTime) {
  WriteSplits(/*gzip=*/false);
  const std::string images = directory_ + "/train-images-idx3-ubyte";
  const struct timeval times[2] = {{1000000000, 0}, {1000000000, 250000}};
  ASSERT_EQ(::utimes(images.c_str(), times), 0);
  auto dataset = Create(DirectoryOption());
  ASSERT_TRUE(dataset.ok()) << dataset.status();

  absl::StatusOr<std::string> before = (*dataset)->Fingerprint(Split::kTrain);
  ASSERT_TRUE(before.ok()) << before.status();
  // 16 header bytes and 12 pixels; the mtime carries nanoseconds.
  EXPECT_NE(before->find(images + " size=28 mtime=1000000000.250000000"),
            std::string::npos)
      << *before;
  EXPECT_NE(before->find(directory_ + "/train-labels-idx1-ubyte size=11"),
            std::string::npos)
      << *before;

  const struct timeval later[2] = {{1000000001, 0}, {1000000001, 0}};
  ASSERT_EQ(::utimes(images.c_str(), later), 0);
  absl::StatusOr<std::string> touched = (*dataset)->Fingerprint(Split::kTrain);
  ASSERT_TRUE(touched.ok()) << touched.status();
  EXPECT_NE(*touched, *before);

  absl::StatusOr<std::string> test = (*dataset)->Fingerprint(Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_NE(test->find("t10k-images-idx3-ubyte size=24"), std::string::npos)
      << *test;
}

// Expected numbers come from Python 3's gzip and struct modules, reading the
// same files independently of this code:
//
//   data = gzip.open(path).read()
//   n, rows, cols = struct.unpack(">III", data[4:16])
//   pixels = data[16:]
//   sum(pixels[k * 784:(k + 1) * 784])   # per-image sums
//   sum(pixels)                          # all pixels of the split
TEST(IdxDatasetFashionMnistTest, ReadsDebianFiles) {
  struct stat info;
  if (::stat(kFashionMnistDirectory, &info) != 0) {
    GTEST_SKIP() << kFashionMnistDirectory << " is absent";
  }
  IdxDatasetOptions options;
  options.set_directory(kFashionMnistDirectory);
  google::protobuf::Any any;
  any.PackFrom(options);
  auto dataset = DatasetRegistry().Create("idx", any);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  EXPECT_EQ((*dataset)->class_names().size(), 10u);

  absl::StatusOr<ImageSet> train = (*dataset)->Load(Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->images.sizes(), (std::vector<int64_t>{60000, 28, 28, 1}));
  ASSERT_EQ(train->labels.size(), 60000u);
  EXPECT_EQ(
      std::vector<int64_t>(train->labels.begin(), train->labels.begin() + 5),
      (std::vector<int64_t>{9, 0, 0, 3, 0}));
  EXPECT_EQ(train->labels.back(), 5);
  EXPECT_EQ(PixelSum(train->images, 0), 76247);
  EXPECT_EQ(PixelSum(train->images, 1), 84598);
  EXPECT_EQ(PixelSum(train->images, 59999), 16684);
  EXPECT_EQ(train->images[0][14][14][0].item<uint8_t>(), 217);
  EXPECT_EQ(PixelSum(train->images), 3431114169);

  absl::StatusOr<ImageSet> test = (*dataset)->Load(Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->images.sizes(), (std::vector<int64_t>{10000, 28, 28, 1}));
  ASSERT_EQ(test->labels.size(), 10000u);
  EXPECT_EQ(
      std::vector<int64_t>(test->labels.begin(), test->labels.begin() + 5),
      (std::vector<int64_t>{9, 2, 1, 1, 6}));
  EXPECT_EQ(test->labels.back(), 5);
  EXPECT_EQ(PixelSum(test->images, 0), 33456);
  EXPECT_EQ(PixelSum(test->images, 1), 100994);
  EXPECT_EQ(PixelSum(test->images, 9999), 24390);
  EXPECT_EQ(test->images[9999][14][14][0].item<uint8_t>(), 132);
  EXPECT_EQ(PixelSum(test->images), 573469082);
}

}  // namespace
}  // namespace panda
