// ExtractPooledFeatures with the "lenet" backbone, with and without
// prefetching, over an in-memory tensor and over an ImageStream. The
// reference features come from one Forward call on all images at once,
// outside the extractor.
#include "core/feature_extractor.h"

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backbones/backbone.h"
#include "backbones/lenet/lenet_backbone.h"
#include "backbones/lenet/lenet_backbone_options.pb.h"
#include "core/image_stream.h"
#include "datasets/dataset.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

const torch::Device kCpu(torch::kCPU);

std::unique_ptr<LenetBackbone> MakeLenet() {
  LenetBackboneOptions options;
  options.set_seed(7);
  absl::StatusOr<std::unique_ptr<LenetBackbone>> backbone = LenetBackbone::Create(options);
  EXPECT_TRUE(backbone.ok()) << backbone.status();
  return backbone.ok() ? std::move(*backbone) : nullptr;
}

// uint8 [count, 32, 32, 3]: colour images of another size than lenet's 28 px
// input, so that Preprocess averages the channels and resizes.
torch::Tensor RandomImages(int64_t count) {
  torch::manual_seed(11);
  return torch::randint(0, 256, {count, 32, 32, 3}, torch::kByte);
}

FeatureExtractionOptions Prefetch(bool on) {
  FeatureExtractionOptions options;
  options.prefetch = on;
  return options;
}

// Features of all `images` from a single batch, without the extractor.
torch::Tensor ReferenceFeatures(Backbone& backbone, const torch::Tensor& images) {
  torch::NoGradGuard no_grad;
  backbone.module().eval();
  absl::StatusOr<TapMap> outputs = backbone.Forward(backbone.Preprocess(images), {"pooled"});
  EXPECT_TRUE(outputs.ok()) << outputs.status();
  return outputs.ok() ? outputs->at("pooled") : torch::Tensor();
}

// Wraps a backbone and fails on request: Preprocess throws c10::Error for a
// batch that contains an image whose top-left pixel is kMarkedPixel, and the
// `failing_forward_call`-th Forward call (counting from 1) returns an
// Internal error.
class FaultyBackbone : public Backbone {
 public:
  static constexpr uint8_t kMarkedPixel = 13;

  FaultyBackbone(std::unique_ptr<Backbone> inner, int failing_forward_call)
      : inner_(std::move(inner)), failing_forward_call_(failing_forward_call) {}

  torch::nn::Module& module() override { return inner_->module(); }

  torch::Tensor Preprocess(const torch::Tensor& images) const override {
    const torch::Tensor top_left = images.index({torch::indexing::Slice(), 0, 0, 0});
    TORCH_CHECK(!top_left.eq(kMarkedPixel).any().item<bool>(), "marked image in the batch");
    return inner_->Preprocess(images);
  }

  absl::StatusOr<TapMap> Forward(const torch::Tensor& input,
                                 const std::vector<std::string>& taps) override {
    if (++forward_calls_ == failing_forward_call_) {
      return absl::InternalError("forward pass failed on purpose");
    }
    return inner_->Forward(input, taps);
  }

  std::vector<std::string> tap_names() const override { return inner_->tap_names(); }
  int64_t feature_dim() const override { return inner_->feature_dim(); }
  std::string Fingerprint() const override { return inner_->Fingerprint(); }

 private:
  std::unique_ptr<Backbone> inner_;
  int failing_forward_call_;
  int forward_calls_ = 0;
};

TEST(FeatureExtractorTest, PrefetchMatchesSerialForEveryBatchSize) {
  std::unique_ptr<LenetBackbone> backbone = MakeLenet();
  ASSERT_NE(backbone, nullptr);
  const torch::Tensor images = RandomImages(10);
  const torch::Tensor reference = ReferenceFeatures(*backbone, images);
  ASSERT_TRUE(reference.defined());

  // 3, 4 and 7 leave a short last batch, and 16 exceeds the image count.
  for (int64_t batch_size : {1, 3, 4, 7, 10, 16}) {
    SCOPED_TRACE(testing::Message() << "batch size " << batch_size);
    absl::StatusOr<torch::Tensor> serial =
        ExtractPooledFeatures(*backbone, images, batch_size, kCpu, "serial", Prefetch(false));
    absl::StatusOr<torch::Tensor> prefetched =
        ExtractPooledFeatures(*backbone, images, batch_size, kCpu, "prefetched", Prefetch(true));
    ASSERT_TRUE(serial.ok()) << serial.status();
    ASSERT_TRUE(prefetched.ok()) << prefetched.status();

    EXPECT_EQ(prefetched->sizes(), torch::IntArrayRef({10, backbone->feature_dim()}));
    EXPECT_EQ(prefetched->scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::equal(*prefetched, *serial));
    // Batches of another size may round differently, but rows must not move.
    EXPECT_TRUE(torch::allclose(*prefetched, reference, /*rtol=*/1e-5, /*atol=*/1e-6));
  }
}

TEST(FeatureExtractorTest, DefaultPrefetchNeedsASpareCore) {
  std::unique_ptr<LenetBackbone> backbone = MakeLenet();
  ASSERT_NE(backbone, nullptr);
  const torch::Tensor images = RandomImages(5);

  absl::StatusOr<torch::Tensor> by_default =
      ExtractPooledFeatures(*backbone, images, 2, kCpu, "default");
  absl::StatusOr<torch::Tensor> serial =
      ExtractPooledFeatures(*backbone, images, 2, kCpu, "serial", Prefetch(false));
  ASSERT_TRUE(by_default.ok()) << by_default.status();
  ASSERT_TRUE(serial.ok()) << serial.status();
  EXPECT_TRUE(torch::equal(*by_default, *serial));
  EXPECT_EQ(FeatureExtractionOptions().prefetch,
            static_cast<int>(std::thread::hardware_concurrency()) > torch::get_num_threads());
}

TEST(FeatureExtractorTest, NoImagesGiveEmptyFeatures) {
  std::unique_ptr<LenetBackbone> backbone = MakeLenet();
  ASSERT_NE(backbone, nullptr);
  const torch::Tensor images = torch::zeros({0, 28, 28, 1}, torch::kByte);

  for (bool prefetch : {false, true}) {
    SCOPED_TRACE(testing::Message() << "prefetch " << prefetch);
    absl::StatusOr<torch::Tensor> features =
        ExtractPooledFeatures(*backbone, images, 4, kCpu, "empty", Prefetch(prefetch));
    ASSERT_TRUE(features.ok()) << features.status();
    EXPECT_EQ(features->sizes(), torch::IntArrayRef({0, backbone->feature_dim()}));
  }
}

TEST(FeatureExtractorTest, NonPositiveBatchSizeIsInvalid) {
  std::unique_ptr<LenetBackbone> backbone = MakeLenet();
  ASSERT_NE(backbone, nullptr);
  const torch::Tensor images = RandomImages(3);

  for (int64_t batch_size : {0, -2}) {
    absl::StatusOr<torch::Tensor> features =
        ExtractPooledFeatures(*backbone, images, batch_size, kCpu, "train features");
    ASSERT_FALSE(features.ok());
    EXPECT_EQ(features.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(features.status().message(),
                HasSubstr(absl::StrCat("train features: batch size must be at least 1, got ",
                                       batch_size)));
  }
}

TEST(FeatureExtractorTest, NonFiniteFeaturesNameTheFirstImage) {
  std::unique_ptr<LenetBackbone> backbone = MakeLenet();
  ASSERT_NE(backbone, nullptr);
  {
    // Weights near the float32 maximum overflow to infinity on any bright
    // 5x5 window, while a black image still gives exactly zero. Infinities
    // of both signs then meet in conv2 and make NaN.
    torch::NoGradGuard no_grad;
    backbone->network().named_parameters()["conv1.weight"].fill_(3e38);
  }
  torch::Tensor images = torch::zeros({12, 28, 28, 1}, torch::kByte);
  images[5].fill_(255);
  images[8].fill_(255);

  // Batch size 1 leaves many batches after the failing one, so the
  // prefetch thread is blocked on a full queue when the extractor returns.
  for (int64_t batch_size : {1, 3, 4, 5}) {
    for (bool prefetch : {false, true}) {
      SCOPED_TRACE(testing::Message() << "batch size " << batch_size << ", prefetch "
                                      << prefetch);
      absl::StatusOr<torch::Tensor> features = ExtractPooledFeatures(
          *backbone, images, batch_size, kCpu, "test features", Prefetch(prefetch));
      ASSERT_FALSE(features.ok());
      EXPECT_EQ(features.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(features.status().message(),
                  HasSubstr("test features: the backbone produced NaN or infinite features "
                            "for image 5;"));
    }
  }
}

TEST(FeatureExtractorTest, PreprocessExceptionBecomesStatus) {
  std::unique_ptr<LenetBackbone> backbone = MakeLenet();
  ASSERT_NE(backbone, nullptr);
  // Lenet's Preprocess rejects float images with a c10::Error.
  const torch::Tensor images = torch::zeros({5, 28, 28, 1}, torch::kFloat32);

  for (bool prefetch : {false, true}) {
    SCOPED_TRACE(testing::Message() << "prefetch " << prefetch);
    absl::StatusOr<torch::Tensor> features =
        ExtractPooledFeatures(*backbone, images, 3, kCpu, "test features", Prefetch(prefetch));
    ASSERT_FALSE(features.ok());
    EXPECT_EQ(features.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(features.status().message(),
                HasSubstr("test features: preprocessing images 0 to 2 failed: "));
    EXPECT_THAT(features.status().message(), HasSubstr("expected uint8 images"));
  }
}

TEST(FeatureExtractorTest, PreprocessErrorNamesLaterBatch) {
  torch::Tensor images = torch::zeros({11, 28, 28, 1}, torch::kByte);
  images.index_put_({7, 0, 0, 0}, FaultyBackbone::kMarkedPixel);

  for (bool prefetch : {false, true}) {
    SCOPED_TRACE(testing::Message() << "prefetch " << prefetch);
    FaultyBackbone backbone(MakeLenet(), /*failing_forward_call=*/0);
    absl::StatusOr<torch::Tensor> features =
        ExtractPooledFeatures(backbone, images, 3, kCpu, "test features", Prefetch(prefetch));
    ASSERT_FALSE(features.ok());
    EXPECT_EQ(features.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(features.status().message(),
                HasSubstr("test features: preprocessing images 6 to 8 failed: "));
    EXPECT_THAT(features.status().message(), HasSubstr("marked image in the batch"));
  }
}

TEST(FeatureExtractorTest, ForwardErrorKeepsCodeAndNamesBatch) {
  const torch::Tensor images = RandomImages(11);

  for (bool prefetch : {false, true}) {
    SCOPED_TRACE(testing::Message() << "prefetch " << prefetch);
    FaultyBackbone backbone(MakeLenet(), /*failing_forward_call=*/2);
    absl::StatusOr<torch::Tensor> features =
        ExtractPooledFeatures(backbone, images, 3, kCpu, "test features", Prefetch(prefetch));
    ASSERT_FALSE(features.ok());
    EXPECT_EQ(features.status().code(), absl::StatusCode::kInternal);
    EXPECT_EQ(features.status().message(),
              "test features: images 3 to 5: forward pass failed on purpose");
  }
}

// A reader of the images of `images` whose Read fails like an undecodable
// file when it reaches `failing_index`.
class FailingReader : public SplitReader {
 public:
  FailingReader(torch::Tensor images, int64_t failing_index)
      : inner_(ImageSet{images, std::vector<int64_t>(images.size(0), 0), {}}),
        failing_index_(failing_index) {}

  const std::vector<int64_t>& labels() const override { return inner_.labels(); }

  absl::StatusOr<torch::Tensor> Read(absl::Span<const int64_t> indices) const override {
    for (int64_t index : indices) {
      if (index == failing_index_) {
        return absl::DataLossError(absl::StrCat("failed to decode image /data/", index, ".png"));
      }
    }
    return inner_.Read(indices);
  }

 private:
  InMemorySplitReader inner_;
  int64_t failing_index_;
};

TEST(FeatureExtractorTest, StreamedMatchesInMemoryBitForBit) {
  std::unique_ptr<LenetBackbone> backbone = MakeLenet();
  ASSERT_NE(backbone, nullptr);
  const torch::Tensor images = RandomImages(12);
  const InMemorySplitReader reader(ImageSet{images, std::vector<int64_t>(12, 0), {}});
  // A subset in another order, as a reader would be asked for it.
  const std::vector<int64_t> indices = {11, 0, 3, 4, 7, 2, 9, 10, 1, 5};
  const torch::Tensor chosen = images.index_select(0, torch::tensor(indices, torch::kInt64));

  for (int64_t batch_size : {1, 3, 4, 10, 16}) {
    for (bool prefetch : {false, true}) {
      SCOPED_TRACE(testing::Message() << "batch size " << batch_size << ", prefetch "
                                      << prefetch);
      absl::StatusOr<torch::Tensor> in_memory = ExtractPooledFeatures(
          *backbone, chosen, batch_size, kCpu, "in memory", Prefetch(prefetch));
      absl::StatusOr<std::unique_ptr<ImageStream>> stream =
          ImageStream::Start(reader, indices, batch_size);
      ASSERT_TRUE(stream.ok()) << stream.status();
      absl::StatusOr<torch::Tensor> streamed =
          ExtractPooledFeatures(*backbone, **stream, kCpu, "streamed", Prefetch(prefetch));
      ASSERT_TRUE(in_memory.ok()) << in_memory.status();
      ASSERT_TRUE(streamed.ok()) << streamed.status();

      EXPECT_EQ(streamed->sizes(), torch::IntArrayRef({10, backbone->feature_dim()}));
      EXPECT_TRUE(torch::equal(*streamed, *in_memory));
    }
  }
}

TEST(FeatureExtractorTest, StreamReadErrorNamesBatchAndFile) {
  std::unique_ptr<LenetBackbone> backbone = MakeLenet();
  ASSERT_NE(backbone, nullptr);
  const FailingReader reader(RandomImages(11), /*failing_index=*/7);
  std::vector<int64_t> indices(11);
  for (int64_t i = 0; i < 11; ++i) indices[i] = i;

  for (bool prefetch : {false, true}) {
    SCOPED_TRACE(testing::Message() << "prefetch " << prefetch);
    absl::StatusOr<std::unique_ptr<ImageStream>> stream =
        ImageStream::Start(reader, indices, /*batch_size=*/3);
    ASSERT_TRUE(stream.ok()) << stream.status();
    absl::StatusOr<torch::Tensor> features =
        ExtractPooledFeatures(*backbone, **stream, kCpu, "train features", Prefetch(prefetch));
    ASSERT_FALSE(features.ok());
    EXPECT_EQ(features.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_EQ(features.status().message(),
              "train features: reading images 6 to 8: failed to decode image /data/7.png");
  }
}

TEST(FeatureExtractorTest, CallerKeepsItsIntraOpThreads) {
  std::unique_ptr<LenetBackbone> backbone = MakeLenet();
  ASSERT_NE(backbone, nullptr);
  const torch::Tensor images = RandomImages(6);
  torch::set_num_threads(2);

  // A fresh thread has not yet sized its OpenMP team, which LibTorch does on
  // a thread's first parallel operation, so a lowered process-wide count
  // during extraction would stick to it.
  int threads_after = 0;
  absl::Status status;
  std::thread caller([&] {
    absl::StatusOr<torch::Tensor> features =
        ExtractPooledFeatures(*backbone, images, 1, kCpu, "test features", Prefetch(true));
    status = features.status();
    threads_after = torch::get_num_threads();
  });
  caller.join();

  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(threads_after, 2);
  EXPECT_EQ(torch::get_num_threads(), 2);
}

}  // namespace
}  // namespace panda
