// ImageStream over the "image_folder" reader (real files) and over a fake
// reader that counts and delays its reads. Expected images come from
// Dataset::Load, which decodes the whole split without a stream.
#include "core/image_stream.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "datasets/dataset.h"
#include "datasets/image_folder_dataset_options.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/any.pb.h"
#include "gtest/gtest.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"
#include "torch/torch.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

// A reader of `count` 1x1 grey images whose pixel is their index modulo
// 256. Each Read sleeps `delay` first and is counted. Reading index
// `failing_index` fails like an undecodable file.
class FakeReader : public SplitReader {
 public:
  FakeReader(int64_t count, std::chrono::milliseconds delay,
             int64_t failing_index = -1)
      : labels_(count, 0), delay_(delay), failing_index_(failing_index) {}

  const std::vector<int64_t>& labels() const override { return labels_; }

  absl::StatusOr<torch::Tensor> Read(
      absl::Span<const int64_t> indices) const override {
    ++reads_;
    std::this_thread::sleep_for(delay_);
    torch::Tensor images = torch::empty(
        {static_cast<int64_t>(indices.size()), 1, 1, 1}, torch::kUInt8);
    for (size_t i = 0; i < indices.size(); ++i) {
      if (indices[i] == failing_index_) {
        return absl::DataLossError(
            absl::StrCat("failed to decode image /data/", indices[i], ".png"));
      }
      images[static_cast<int64_t>(i)].fill_(indices[i] % 256);
    }
    return images;
  }

  int reads() const { return reads_.load(); }

 private:
  std::vector<int64_t> labels_;
  std::chrono::milliseconds delay_;
  int64_t failing_index_;
  mutable std::atomic<int> reads_{0};
};

std::vector<int64_t> Range(int64_t count) {
  std::vector<int64_t> indices(count);
  for (int64_t i = 0; i < count; ++i) indices[i] = i;
  return indices;
}

class ImageStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "image_stream_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(std::filesystem::create_directories(root_)) << root_;
  }

  std::string WriteImage(const std::string& relative, const cv::Mat& image) {
    const std::string path = root_ + "/" + relative;
    std::filesystem::create_directories(
        std::filesystem::path(path).parent_path());
    EXPECT_TRUE(cv::imwrite(path, image)) << path;
    return path;
  }

  std::string WriteBytes(const std::string& relative,
                         const std::string& bytes) {
    const std::string path = root_ + "/" + relative;
    std::filesystem::create_directories(
        std::filesystem::path(path).parent_path());
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << bytes;
    return path;
  }

  std::unique_ptr<Dataset> CreateDataset(int decode_threads) {
    ImageFolderDatasetOptions options;
    options.set_root(root_);
    options.set_image_size(6);
    options.set_num_decode_threads(decode_threads);
    google::protobuf::Any any;
    any.PackFrom(options);
    absl::StatusOr<std::unique_ptr<Dataset>> dataset =
        DatasetRegistry().Create("image_folder", any);
    EXPECT_TRUE(dataset.ok()) << dataset.status();
    return dataset.ok() ? *std::move(dataset) : nullptr;
  }

  std::string root_;
};

// Returns every batch of `stream` concatenated, failing the test on errors.
torch::Tensor ReadAll(ImageStream& stream) {
  std::vector<torch::Tensor> batches;
  for (int64_t b = 0; b < stream.num_batches(); ++b) {
    absl::StatusOr<torch::Tensor> batch = stream.Next();
    EXPECT_TRUE(batch.ok()) << "batch " << b << ": " << batch.status();
    if (!batch.ok()) return torch::Tensor();
    const int64_t expected =
        std::min(stream.batch_size(), stream.size() - b * stream.batch_size());
    EXPECT_EQ(batch->size(0), expected) << "batch " << b;
    batches.push_back(*batch);
  }
  return torch::cat(batches);
}

TEST_F(ImageStreamTest, OrderIsFixedForAnyDecodeThreadCount) {
  cv::RNG rng(5);
  for (int i = 0; i < 23; ++i) {
    cv::Mat image(5 + i % 3, 7, CV_8UC3);
    rng.fill(image, cv::RNG::UNIFORM, 0, 256);
    WriteImage(
        absl::StrCat("train/", i % 3 == 0 ? "x" : "y", "/", 100 + i, ".png"),
        image);
  }
  WriteImage("test/x/0.png", cv::Mat(2, 2, CV_8UC3, cv::Scalar(1, 2, 3)));
  // Any order, with a repeat.
  const std::vector<int64_t> order = {22, 0, 5, 5, 13, 1, 21, 8,  2,  19, 3,
                                      17, 4, 9, 6, 20, 7, 10, 11, 12, 14};

  std::unique_ptr<Dataset> reference_dataset = CreateDataset(1);
  ASSERT_NE(reference_dataset, nullptr);
  absl::StatusOr<ImageSet> loaded = reference_dataset->Load(Split::kTrain);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const torch::Tensor expected =
      loaded->images.index_select(0, torch::tensor(order, torch::kInt64));

  for (int threads = 1; threads <= 4; ++threads) {
    std::unique_ptr<Dataset> dataset = CreateDataset(threads);
    ASSERT_NE(dataset, nullptr);
    absl::StatusOr<std::unique_ptr<SplitReader>> reader =
        dataset->Open(Split::kTrain);
    ASSERT_TRUE(reader.ok()) << reader.status();
    EXPECT_EQ((*reader)->labels(), loaded->labels);
    for (int64_t batch_size : {1, 4, 7, 30}) {
      SCOPED_TRACE(testing::Message()
                   << threads << " decode threads, batch size " << batch_size);
      absl::StatusOr<std::unique_ptr<ImageStream>> stream =
          ImageStream::Start(**reader, order, batch_size);
      ASSERT_TRUE(stream.ok()) << stream.status();
      EXPECT_EQ((*stream)->size(), 21);
      EXPECT_TRUE(torch::equal(ReadAll(**stream), expected));
    }
  }
}

TEST_F(ImageStreamTest, UnreadableFileFailsAtItsBatch) {
  std::string broken;
  for (int i = 0; i < 10; ++i) {
    const std::string name = absl::StrCat("train/a/", i, ".png");
    if (i == 6) {
      broken = WriteBytes(name, "not an image");
    } else {
      WriteImage(name, cv::Mat(2, 2, CV_8UC3, cv::Scalar(i, i, i)));
    }
  }
  WriteImage("test/a/0.png", cv::Mat(2, 2, CV_8UC3));
  std::unique_ptr<Dataset> dataset = CreateDataset(2);
  ASSERT_NE(dataset, nullptr);
  absl::StatusOr<std::unique_ptr<SplitReader>> reader =
      dataset->Open(Split::kTrain);
  ASSERT_TRUE(reader.ok()) << reader.status();

  // Batches {0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9}: the third fails.
  absl::StatusOr<std::unique_ptr<ImageStream>> stream =
      ImageStream::Start(**reader, Range(10), /*batch_size=*/3);
  ASSERT_TRUE(stream.ok()) << stream.status();
  for (int b = 0; b < 2; ++b) {
    absl::StatusOr<torch::Tensor> batch = (*stream)->Next();
    ASSERT_TRUE(batch.ok()) << "batch " << b << ": " << batch.status();
    EXPECT_EQ((*batch)[0][0][0][0].item<uint8_t>(), 3 * b);
  }
  absl::StatusOr<torch::Tensor> failed = (*stream)->Next();
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(failed.status().message()),
              HasSubstr("failed to decode image " + broken));
  EXPECT_EQ((*stream)->Next().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ImageStreamFakeTest, ErrorStopsReading) {
  FakeReader reader(40, std::chrono::milliseconds(0), /*failing_index=*/5);
  absl::StatusOr<std::unique_ptr<ImageStream>> stream =
      ImageStream::Start(reader, Range(40), /*batch_size=*/2);
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_TRUE((*stream)->Next().ok());
  EXPECT_TRUE((*stream)->Next().ok());
  absl::StatusOr<torch::Tensor> failed = (*stream)->Next();
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("/data/5.png"));
  // The batch with index 5 is the third read, and nothing follows it.
  stream->reset();
  EXPECT_EQ(reader.reads(), 3);
}

TEST(ImageStreamFakeTest, ReadsAtMostDepthAhead) {
  FakeReader reader(100, std::chrono::milliseconds(0));
  absl::StatusOr<std::unique_ptr<ImageStream>> stream =
      ImageStream::Start(reader, Range(100), /*batch_size=*/10, /*depth=*/2);
  ASSERT_TRUE(stream.ok()) << stream.status();

  // Two batches fill the queue and a third waits to enter it.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (reader.reads() < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(reader.reads(), 3);

  absl::StatusOr<torch::Tensor> first = (*stream)->Next();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)[9].item<uint8_t>(), 9);
  while (reader.reads() < 4 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(reader.reads(), 4);
}

TEST(ImageStreamFakeTest, EarlyDestructionReturnsPromptly) {
  // Reading all 100 batches would take 5 s.
  FakeReader reader(100, std::chrono::milliseconds(50));
  for (int consumed : {0, 1, 3}) {
    SCOPED_TRACE(testing::Message() << consumed << " batches consumed");
    const int reads_before = reader.reads();
    absl::StatusOr<std::unique_ptr<ImageStream>> stream =
        ImageStream::Start(reader, Range(100), /*batch_size=*/1, /*depth=*/2);
    ASSERT_TRUE(stream.ok()) << stream.status();
    for (int b = 0; b < consumed; ++b) ASSERT_TRUE((*stream)->Next().ok());
    // Lets the producer fill the queue and block in Push.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));

    const auto start = std::chrono::steady_clock::now();
    stream->reset();
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_LT(elapsed, std::chrono::seconds(2));
    // Consumed batches, two in the queue and one waiting to enter it.
    EXPECT_LE(reader.reads() - reads_before, consumed + 3);
  }
}

TEST(ImageStreamFakeTest, EndAndEmptyStreams) {
  FakeReader reader(5, std::chrono::milliseconds(0));
  absl::StatusOr<std::unique_ptr<ImageStream>> stream =
      ImageStream::Start(reader, {4, 3, 2, 1, 0}, /*batch_size=*/2);
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ((*stream)->num_batches(), 3);
  const torch::Tensor all = ReadAll(**stream);
  ASSERT_TRUE(all.defined());
  EXPECT_TRUE(torch::equal(all.flatten(),
                           torch::tensor({4, 3, 2, 1, 0}, torch::kUInt8)));
  EXPECT_EQ((*stream)->Next().status().code(), absl::StatusCode::kOutOfRange);

  absl::StatusOr<std::unique_ptr<ImageStream>> empty =
      ImageStream::Start(reader, {}, /*batch_size=*/2);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ((*empty)->num_batches(), 0);
  EXPECT_EQ((*empty)->Next().status().code(), absl::StatusCode::kOutOfRange);
}

TEST(ImageStreamFakeTest, BadArgumentsAreRejected) {
  FakeReader reader(5, std::chrono::milliseconds(0));
  absl::StatusOr<std::unique_ptr<ImageStream>> no_batch =
      ImageStream::Start(reader, Range(5), /*batch_size=*/0);
  EXPECT_EQ(no_batch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_batch.status().message()),
              HasSubstr("batch size must be at least 1, got 0"));

  absl::StatusOr<std::unique_ptr<ImageStream>> no_depth =
      ImageStream::Start(reader, Range(5), /*batch_size=*/2, /*depth=*/0);
  EXPECT_EQ(no_depth.status().code(), absl::StatusCode::kInvalidArgument);

  absl::StatusOr<std::unique_ptr<ImageStream>> outside =
      ImageStream::Start(reader, {0, 5}, /*batch_size=*/2);
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(outside.status().message()),
              HasSubstr("image index 5 at position 1"));
  EXPECT_EQ(reader.reads(), 0);
}

}  // namespace
}  // namespace panda
