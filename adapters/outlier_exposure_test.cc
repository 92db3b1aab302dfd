// Outlier exposure on the small "lenet" backbone: dark noise images are
// normal, bright ones the outliers, from a test-only dataset plugin.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "adapters/adapter.h"
#include "adapters/outlier_exposure_options.pb.h"
#include "backbones/lenet/lenet_backbone.h"
#include "core/registry.h"
#include "datasets/dataset.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

torch::Tensor Noise(int64_t count, int64_t size, int low, int high, uint64_t seed) {
  torch::Generator generator = at::detail::createCPUGenerator(seed);
  return torch::randint(low, high, {count, size, size, 1}, generator, torch::kByte);
}

// Bright noise images; option "size" is not supported, so two plugins give
// the two sizes the tests need.
class BrightNoiseDataset : public Dataset {
 public:
  explicit BrightNoiseDataset(int64_t size) : size_(size) {}
  const std::vector<std::string>& class_names() const override { return names_; }
  absl::StatusOr<ImageSet> Load(Split split) const override {
    ImageSet set;
    set.images = Noise(64, size_, 180, 256, split == Split::kTrain ? 1 : 2);
    set.labels.assign(64, 0);
    return set;
  }
  absl::StatusOr<std::string> Fingerprint(Split) const override { return "bright"; }

 private:
  int64_t size_;
  std::vector<std::string> names_ = {"bright"};
};

PANDA_REGISTER_PLUGIN(DatasetRegistry, "test_bright_noise_28",
                      [](const google::protobuf::Any&) -> absl::StatusOr<std::unique_ptr<Dataset>> {
                        return std::make_unique<BrightNoiseDataset>(28);
                      });
PANDA_REGISTER_PLUGIN(DatasetRegistry, "test_bright_noise_32",
                      [](const google::protobuf::Any&) -> absl::StatusOr<std::unique_ptr<Dataset>> {
                        return std::make_unique<BrightNoiseDataset>(32);
                      });

std::unique_ptr<Adapter> MakeAdapter(const std::string& dataset) {
  OutlierExposureOptions options;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "training { epochs: 12 batch_size: 16 trainable_from: \"conv1\" freeze_batchnorm: true "
      "optimizer { learning_rate: 0.01 } } outlier_dataset { name: \"" + dataset + "\" }",
      &options));
  google::protobuf::Any any;
  any.PackFrom(options);
  absl::StatusOr<std::unique_ptr<Adapter>> adapter = AdapterRegistry().Create("outlier_exposure", any);
  EXPECT_TRUE(adapter.ok()) << adapter.status();
  return adapter.ok() ? *std::move(adapter) : nullptr;
}

std::unique_ptr<Backbone> MakeLenet() {
  LenetBackboneOptions options;
  absl::StatusOr<std::unique_ptr<LenetBackbone>> backbone = LenetBackbone::Create(options);
  EXPECT_TRUE(backbone.ok()) << backbone.status();
  return backbone.ok() ? std::unique_ptr<Backbone>(*std::move(backbone)) : nullptr;
}

TEST(OutlierExposureTest, HeadSeparatesNewNormalImagesFromNewOutliers) {
  std::unique_ptr<Backbone> backbone = MakeLenet();
  std::unique_ptr<Adapter> adapter = MakeAdapter("test_bright_noise_28");
  EXPECT_EQ(adapter->score_head(), nullptr);
  ImageSet normal;
  normal.images = Noise(64, 28, 0, 60, 3);
  normal.labels.assign(64, 0);
  AdaptationContext context;
  ASSERT_TRUE(adapter->Adapt(*backbone, normal, context).ok());

  // Images the training never saw.
  torch::NoGradGuard no_grad;
  backbone->module().eval();
  auto features = [&](const torch::Tensor& images) {
    return backbone->Forward(backbone->Preprocess(images), {"pooled"})->at("pooled");
  };
  const ScoreHead head = adapter->score_head();
  ASSERT_NE(head, nullptr);
  const torch::Tensor normal_scores = head(features(Noise(32, 28, 0, 60, 4)));
  const torch::Tensor outlier_scores = head(features(Noise(32, 28, 180, 256, 5)));
  // Every outlier scores above every normal image, and the probabilities
  // sit on the right sides of one half.
  EXPECT_GT(outlier_scores.min().item<float>(), normal_scores.max().item<float>());
  EXPECT_LT(normal_scores.mean().item<float>(), 0.5f);
  EXPECT_GT(outlier_scores.mean().item<float>(), 0.5f);
}

TEST(OutlierExposureTest, OutliersOfAnotherSizeAreRejected) {
  std::unique_ptr<Backbone> backbone = MakeLenet();
  std::unique_ptr<Adapter> adapter = MakeAdapter("test_bright_noise_32");
  ImageSet normal;
  normal.images = Noise(16, 28, 0, 60, 3);
  normal.labels.assign(16, 0);
  const absl::Status status = adapter->Adapt(*backbone, normal, AdaptationContext());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "outlier_exposure.outlier_dataset")) << status;
}

TEST(OutlierExposureTest, MissingOutlierDatasetIsAnError) {
  google::protobuf::Any any;
  any.PackFrom(OutlierExposureOptions());
  const auto adapter = AdapterRegistry().Create("outlier_exposure", any);
  EXPECT_EQ(adapter.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(adapter.status().message(), "outlier_dataset is required"));
}

}  // namespace
}  // namespace panda
