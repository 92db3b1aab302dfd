// Stages and trainable-stage switches on the real nsfwjs models, whose block
// layout is known from the MobileNetV2 and InceptionV3 papers.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backbones/keras/keras_backbone.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

std::unique_ptr<KerasBackbone> LoadModel(const std::string& model) {
  const std::string path = absl::StrCat("data/weights/", model, ".pkm");
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << path << " is missing; run ./setup.sh";
    return nullptr;
  }
  KerasBackboneOptions options;
  options.set_weights_file(path);
  absl::StatusOr<std::unique_ptr<KerasBackbone>> backbone = KerasBackbone::Create(options);
  EXPECT_TRUE(backbone.ok()) << backbone.status();
  return backbone.ok() ? *std::move(backbone) : nullptr;
}

// Name of the layer just before stage `stage`'s first layer.
std::string LayerBefore(KerasBackbone& backbone, const std::string& stage) {
  const keras::GraphSpec& spec = backbone.graph().spec();
  return spec.layers[spec.layer_index.at(stage) - 1].name;
}

TEST(KerasStagesTest, MobileNetV2StageBoundaries) {
  std::unique_ptr<KerasBackbone> backbone = LoadModel("mobilenet_v2");
  ASSERT_NE(backbone, nullptr);
  const std::vector<std::string> stages = backbone->stage_names();

  // Stride 4, 8, 16 and 32 begin in blocks 1, 3, 6 and 13; blocks 3, 6 and
  // 13 follow a residual Add.
  ASSERT_EQ(stages.size(), 5u) << ::testing::PrintToString(stages);
  EXPECT_EQ(stages[2], "block_3_expand");
  EXPECT_EQ(stages[3], "block_6_expand");
  EXPECT_EQ(stages[4], "block_13_expand");
  EXPECT_EQ(LayerBefore(*backbone, "block_6_expand"), "block_5_add");
}

TEST(KerasStagesTest, InceptionV3StagesFollowTheGridReductions) {
  std::unique_ptr<KerasBackbone> backbone = LoadModel("inception_v3");
  ASSERT_NE(backbone, nullptr);
  const std::vector<std::string> stages = backbone->stage_names();

  // The 35x35 modules end in mixed2 and the 17x17 ones in mixed7.
  ASSERT_GE(stages.size(), 3u) << ::testing::PrintToString(stages);
  EXPECT_EQ(LayerBefore(*backbone, stages[stages.size() - 2]), "mixed2");
  EXPECT_EQ(LayerBefore(*backbone, stages.back()), "mixed7");
}

TEST(KerasStagesTest, TrainableFromFreezesEarlierLayersAndTheHead) {
  std::unique_ptr<KerasBackbone> backbone = LoadModel("mobilenet_v2");
  ASSERT_NE(backbone, nullptr);
  ASSERT_TRUE(backbone->SetTrainableFrom("block_13_expand").ok());

  for (const auto& item : backbone->graph().named_parameters()) {
    const std::string& name = item.key();
    const bool in_trainable_part = name.rfind("block_13", 0) == 0 ||
                                   name.rfind("block_14", 0) == 0 ||
                                   name.rfind("block_15", 0) == 0 ||
                                   name.rfind("block_16", 0) == 0 ||
                                   name.rfind("Conv_1", 0) == 0;
    EXPECT_EQ(item.value().requires_grad(), in_trainable_part) << name;
  }
}

TEST(KerasStagesTest, UnknownStageListsTheStages) {
  std::unique_ptr<KerasBackbone> backbone = LoadModel("mobilenet_v2");
  ASSERT_NE(backbone, nullptr);
  const absl::Status status = backbone->SetTrainableFrom("layer3");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("block_6_expand"), std::string::npos) << status;
}

TEST(KerasStagesTest, FrozenBatchNormMatchesEval) {
  std::unique_ptr<KerasBackbone> backbone = LoadModel("mobilenet_v2");
  ASSERT_NE(backbone, nullptr);
  torch::manual_seed(0);
  const torch::Tensor input = torch::rand({2, 3, 96, 96});
  torch::NoGradGuard no_grad;

  backbone->module().eval();
  const torch::Tensor eval_features = backbone->Forward(input, {"pooled"})->at("pooled");
  ASSERT_TRUE(backbone->SetBatchNormFrozen(true).ok());
  backbone->module().train();
  const torch::Tensor frozen_features = backbone->Forward(input, {"pooled"})->at("pooled");
  ASSERT_TRUE(backbone->SetBatchNormFrozen(false).ok());
  const torch::Tensor batch_statistics = backbone->Forward(input, {"pooled"})->at("pooled");

  EXPECT_TRUE(torch::allclose(frozen_features, eval_features, 1e-5, 1e-6));
  // Batch statistics of two images give other features; the check above
  // would pass vacuously if training mode changed nothing.
  EXPECT_FALSE(torch::allclose(batch_statistics, eval_features, 1e-3, 1e-3));
}

}  // namespace
}  // namespace panda
