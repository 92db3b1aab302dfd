// The shared training loop, its checkpoints and the compactness and Deep
// SVDD adapters, on the small "lenet" backbone so that training takes
// seconds.
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "adapters/adapter.h"
#include "adapters/compactness.h"
#include "adapters/deep_svdd_options.pb.h"
#include "adapters/early_stopping_options.pb.h"
#include "adapters/feature_trainer.h"
#include "adapters/training_checkpoint.h"
#include "backbones/lenet/lenet_backbone.h"
#include "core/adapted_scoring.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

std::unique_ptr<Backbone> MakeLenet() {
  LenetBackboneOptions options;
  options.set_seed(7);
  absl::StatusOr<std::unique_ptr<LenetBackbone>> backbone = LenetBackbone::Create(options);
  EXPECT_TRUE(backbone.ok()) << backbone.status();
  return backbone.ok() ? std::unique_ptr<Backbone>(*std::move(backbone)) : nullptr;
}

ImageSet NoiseImages(int64_t count, int64_t seed) {
  torch::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  ImageSet set;
  set.images = torch::randint(0, 256, {count, 28, 28, 1}, generator, torch::kByte);
  set.labels.assign(count, 0);
  return set;
}

template <typename Options>
std::unique_ptr<Adapter> MakeAdapter(const std::string& name, const std::string& text) {
  Options options;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &options)) << text;
  google::protobuf::Any any;
  any.PackFrom(options);
  absl::StatusOr<std::unique_ptr<Adapter>> adapter = AdapterRegistry().Create(name, any);
  EXPECT_TRUE(adapter.ok()) << adapter.status();
  return adapter.ok() ? *std::move(adapter) : nullptr;
}

std::string FreshFolder(const std::string& name) {
  const std::string path = std::string(testing::TempDir()) + "/" + name;
  std::filesystem::remove_all(path);
  return path;
}

constexpr char kShortTraining[] =
    "training { epochs: 3 batch_size: 16 clip_grad_norm: 0 trainable_from: \"conv1\" "
    "freeze_batchnorm: true optimizer { learning_rate: 0.001 } }";

TEST(CompactnessTest, LossMatchesHandValue) {
  const torch::Tensor features = torch::tensor({{1.0, 2.0}, {3.0, 4.0}});
  const torch::Tensor center = torch::tensor({1.0, 1.0});
  // Rows: 0 + 1 = 1 and 4 + 9 = 13; mean 7.
  EXPECT_DOUBLE_EQ(CompactnessLoss(features, center).item<double>(), 7.0);
}

TEST(CompactnessTest, FeatureStatsMatchHandValues) {
  const torch::Tensor features = torch::tensor({{0.0, 2.0}, {2.0, 6.0}});
  const EpochStats stats = FeatureStats(features, torch::tensor({1.0, 4.0}));
  // Distances 1 + 4 and 1 + 4; unbiased variances 2 and 8, mean 5.
  EXPECT_DOUBLE_EQ(stats.center_distance, 5.0);
  EXPECT_DOUBLE_EQ(stats.feature_variance, 5.0);
}

TEST(SampleWiseTest, EachImageKeepsItsLargestNormalisedScore) {
  const std::vector<torch::Tensor> scores = {torch::tensor({2.0f, 4.0f, 6.0f}),
                                             torch::tensor({9.0f, 3.0f, 3.0f})};
  // Ratios [1, 2, 3] and [3, 1, 1].
  absl::StatusOr<torch::Tensor> combined = CombineSampleWise(scores, {2.0, 3.0});
  ASSERT_TRUE(combined.ok()) << combined.status();
  EXPECT_TRUE(torch::equal(*combined, torch::tensor({3.0f, 2.0f, 3.0f})));
}

TEST(SampleWiseTest, NonPositiveTypicalScoreIsAnError) {
  absl::StatusOr<torch::Tensor> combined =
      CombineSampleWise({torch::tensor({1.0f})}, {0.0});
  EXPECT_EQ(combined.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TrainingTest, CompactnessTrainingPullsFeaturesTogether) {
  std::unique_ptr<Backbone> backbone = MakeLenet();
  std::unique_ptr<Adapter> adapter =
      MakeAdapter<EarlyStoppingOptions>("early_stopping", kShortTraining);
  std::vector<EpochStats> epochs;
  AdaptationContext context;
  context.batch_size = 16;
  context.on_epoch_end = [&](const EpochStats& stats) {
    epochs.push_back(stats);
    return absl::OkStatus();
  };
  ASSERT_TRUE(adapter->Adapt(*backbone, NoiseImages(48, 1), context).ok());

  ASSERT_EQ(epochs.size(), 4u);
  EXPECT_EQ(epochs[0].epoch, 0);
  EXPECT_EQ(epochs[3].iterations, 9);
  EXPECT_LT(epochs[3].center_distance, epochs[0].center_distance);
  EXPECT_LT(epochs[3].feature_variance, epochs[0].feature_variance);
}

TEST(TrainingTest, ResumedRunEndsWhereAnUninterruptedRunEnds) {
  const ImageSet images = NoiseImages(48, 2);
  AdaptationContext context;
  context.batch_size = 16;
  context.seed = 3;

  std::unique_ptr<Backbone> uninterrupted = MakeLenet();
  std::vector<double> losses;
  context.on_epoch_end = [&](const EpochStats& stats) {
    losses.push_back(stats.loss);
    return absl::OkStatus();
  };
  ASSERT_TRUE(MakeAdapter<EarlyStoppingOptions>("early_stopping", kShortTraining)
                  ->Adapt(*uninterrupted, images, context)
                  .ok());

  // Killed during epoch 2: epoch 1's checkpoint is the last one written.
  context.checkpoint_dir = FreshFolder("resume");
  std::unique_ptr<Backbone> killed = MakeLenet();
  context.on_epoch_end = [](const EpochStats& stats) {
    return stats.epoch == 2 ? absl::CancelledError("killed") : absl::OkStatus();
  };
  EXPECT_EQ(MakeAdapter<EarlyStoppingOptions>("early_stopping", kShortTraining)
                ->Adapt(*killed, images, context)
                .code(),
            absl::StatusCode::kCancelled);
  ASSERT_TRUE(std::filesystem::exists(CheckpointPath(context.checkpoint_dir)));

  std::unique_ptr<Backbone> resumed = MakeLenet();
  std::vector<EpochStats> seen;
  context.on_epoch_end = [&](const EpochStats& stats) {
    seen.push_back(stats);
    return absl::OkStatus();
  };
  ASSERT_TRUE(MakeAdapter<EarlyStoppingOptions>("early_stopping", kShortTraining)
                  ->Adapt(*resumed, images, context)
                  .ok());

  // Epochs 0 and 1 are replayed from the checkpoint, 2 and 3 trained.
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_TRUE(seen[0].resumed);
  EXPECT_TRUE(seen[1].resumed);
  EXPECT_FALSE(seen[2].resumed);
  EXPECT_FALSE(seen[3].resumed);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_DOUBLE_EQ(seen[i].loss, losses[i]) << i;

  const auto expected = uninterrupted->module().named_parameters();
  const auto actual = resumed->module().named_parameters();
  for (const auto& item : expected) {
    EXPECT_TRUE(torch::equal(item.value(), actual[item.key()])) << item.key();
  }
  const auto expected_buffers = uninterrupted->module().named_buffers();
  const auto actual_buffers = resumed->module().named_buffers();
  for (const auto& item : expected_buffers) {
    EXPECT_TRUE(torch::equal(item.value(), actual_buffers[item.key()])) << item.key();
  }
}

TEST(TrainingTest, CheckpointOfAnotherRunIsRejected) {
  const ImageSet images = NoiseImages(32, 4);
  AdaptationContext context;
  context.checkpoint_dir = FreshFolder("other_run");
  std::unique_ptr<Backbone> first = MakeLenet();
  ASSERT_TRUE(MakeAdapter<EarlyStoppingOptions>("early_stopping", kShortTraining)
                  ->Adapt(*first, images, context)
                  .ok());

  // Same folder, other learning rate: another run.
  std::unique_ptr<Backbone> second = MakeLenet();
  const absl::Status status =
      MakeAdapter<EarlyStoppingOptions>(
          "early_stopping",
          "training { epochs: 3 batch_size: 16 trainable_from: \"conv1\" optimizer { "
          "learning_rate: 0.5 } }")
          ->Adapt(*second, images, context);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(status.message(), "another training run")) << status;
}

TEST(TrainingTest, CheckpointOfOtherImagesIsRejected) {
  AdaptationContext context;
  context.checkpoint_dir = FreshFolder("other_images");
  std::unique_ptr<Backbone> first = MakeLenet();
  ASSERT_TRUE(MakeAdapter<EarlyStoppingOptions>("early_stopping", kShortTraining)
                  ->Adapt(*first, NoiseImages(32, 7), context)
                  .ok());

  // As many images, other pixels: a checkpoint copied from another class.
  std::unique_ptr<Backbone> second = MakeLenet();
  const absl::Status status = MakeAdapter<EarlyStoppingOptions>("early_stopping", kShortTraining)
                                  ->Adapt(*second, NoiseImages(32, 8), context);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(TrainingTest, DivergingLossIsAnErrorNamingTheStep) {
  std::unique_ptr<Backbone> backbone = MakeLenet();
  std::unique_ptr<Adapter> adapter = MakeAdapter<EarlyStoppingOptions>(
      "early_stopping",
      "training { epochs: 5 batch_size: 16 clip_grad_norm: 0 trainable_from: \"conv1\" "
      "optimizer { learning_rate: 1e30 } }");
  AdaptationContext context;
  const absl::Status status = adapter->Adapt(*backbone, NoiseImages(32, 5), context);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(status.message(), "training loss became")) << status;
}

TEST(EarlyStoppingTest, SampleWiseScoresEveryEpochByDefault) {
  std::unique_ptr<Adapter> adapter = MakeAdapter<EarlyStoppingOptions>(
      "early_stopping", "training { epochs: 3 } sample_wise: true");
  EXPECT_EQ(adapter->scoring_epochs(), (std::vector<int>{0, 1, 2, 3}));
}

TEST(EarlyStoppingTest, ScoringEpochPastTheEndIsAnError) {
  EarlyStoppingOptions options;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "training { epochs: 3 } sample_wise: true scoring_epochs: [1, 4]", &options));
  google::protobuf::Any any;
  any.PackFrom(options);
  const auto adapter = AdapterRegistry().Create("early_stopping", any);
  EXPECT_EQ(adapter.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(adapter.status().message(), "scoring_epochs contains 4"));
}

TEST(EarlyStoppingTest, InvalidTrainingValuesNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"training { optimizer { learning_rate: -1 } }", "training.optimizer.learning_rate is -1"},
      {"training { max_iterations: -3 }", "training.max_iterations is -3"},
      {"training { clip_grad_norm: -1 }", "training.clip_grad_norm is -1"},
      {"training { clip_grad_norm: inf }", "training.clip_grad_norm is inf"},
      {"training { optimizer { weight_decay: inf } }",
       "training.optimizer.weight_decay is inf"},
      {"training { collapse_warning_fraction: 2 }", "training.collapse_warning_fraction is 2"},
      {"training { batch_size: 0 }", "training.batch_size is 0"},
  };
  for (const auto& [text, message] : cases) {
    EarlyStoppingOptions options;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &options)) << text;
    google::protobuf::Any any;
    any.PackFrom(options);
    const auto adapter = AdapterRegistry().Create("early_stopping", any);
    EXPECT_EQ(adapter.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_TRUE(absl::StrContains(adapter.status().message(), message)) << adapter.status();
  }
}

TEST(DeepSvddTest, ScoreIsSquaredDistanceToCentre) {
  std::unique_ptr<Backbone> backbone = MakeLenet();
  std::unique_ptr<Adapter> adapter = MakeAdapter<DeepSvddOptions>(
      "deep_svdd", "training { epochs: 0 } center_epsilon: 0.1");
  const ImageSet images = NoiseImages(40, 6);
  AdaptationContext context;
  context.batch_size = 40;
  ASSERT_TRUE(adapter->Adapt(*backbone, images, context).ok());

  // The centre by hand: BatchNorm trains in Deep SVDD, so the initial pass
  // of an untrained twin normalises the one batch by its own statistics.
  std::unique_ptr<Backbone> twin = MakeLenet();
  torch::NoGradGuard no_grad;
  twin->module().train();
  const torch::Tensor features =
      twin->Forward(twin->Preprocess(images.images), {"pooled"})->at("pooled");
  torch::Tensor center = features.mean(0);
  for (int64_t i = 0; i < center.size(0); ++i) {
    const float value = center[i].item<float>();
    if (std::abs(value) < 0.1f) center[i] = value < 0 ? -0.1f : 0.1f;
  }
  const torch::Tensor expected = (features - center).pow(2).sum(1);
  EXPECT_TRUE(torch::allclose(adapter->score_head()(features), expected, 1e-5, 1e-6));
}

}  // namespace
}  // namespace panda
