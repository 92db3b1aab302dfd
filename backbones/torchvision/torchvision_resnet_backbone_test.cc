// The plugin through the registry, on the checkpoints that ./setup.sh
// writes into data/fixtures/ (randomly initialised torchvision models).
#include "backbones/torchvision/torchvision_resnet_backbone.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backbones/backbone.h"
#include "backbones/torchvision/test_files.h"
#include "backbones/torchvision/torchvision_resnet_options.pb.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

using torchvision::testing::FixturePath;
using torchvision::testing::ReadFileBytes;
using torchvision::testing::TestdataPath;
using torchvision::testing::WriteTemporaryFile;

google::protobuf::Any PackOptions(const std::string& text) {
  TorchvisionResnetOptions options;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &options)) << text;
  google::protobuf::Any any;
  any.PackFrom(options);
  return any;
}

absl::StatusOr<std::unique_ptr<Backbone>> CreateFromText(const std::string& text) {
  return BackboneRegistry().Create("torchvision_resnet", PackOptions(text));
}

std::string Options(const std::string& arch, const std::string& file,
                    const std::string& extra = "") {
  return absl::StrCat("arch: \"", arch, "\" weights_file: \"", file, "\" ", extra);
}

void ExpectError(const absl::StatusOr<std::unique_ptr<Backbone>>& backbone,
                 absl::StatusCode code, const std::vector<std::string>& parts) {
  ASSERT_FALSE(backbone.ok());
  EXPECT_EQ(backbone.status().code(), code) << backbone.status();
  for (const std::string& part : parts) {
    EXPECT_TRUE(absl::StrContains(backbone.status().message(), part))
        << "missing \"" << part << "\" in " << backbone.status();
  }
}

TEST(TorchvisionResnetBackboneTest, CreatesFromRegistry) {
  const absl::StatusOr<std::unique_ptr<Backbone>> backbone =
      CreateFromText(Options("resnet18", FixturePath("resnet18.pth")));
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  EXPECT_EQ((*backbone)->feature_dim(), 512);
  EXPECT_EQ((*backbone)->tap_names(),
            (std::vector<std::string>{"pooled", "stem", "layer1", "layer2", "layer3", "layer4",
                                      "logits"}));
  EXPECT_EQ((*backbone)->stage_names(),
            (std::vector<std::string>{"stem", "layer1", "layer2", "layer3", "layer4"}));
  const std::string fingerprint = (*backbone)->Fingerprint();
  EXPECT_TRUE(absl::StartsWith(fingerprint, "torchvision_resnet/resnet18/fnv1a64=")) << fingerprint;
  EXPECT_TRUE(absl::EndsWith(
      fingerprint,
      "/resize=256/crop=224/mean=0.485,0.456,0.406/std=0.229,0.224,0.225/antialias=1"))
      << fingerprint;
  EXPECT_FALSE((*backbone)->module().is_training());
}

TEST(TorchvisionResnetBackboneTest, ForwardReturnsTapsAtTheirShapes) {
  absl::StatusOr<std::unique_ptr<Backbone>> backbone =
      CreateFromText(Options("resnet18", FixturePath("resnet18.pth"),
                             "preprocessing { resize: 72 center_crop: 64 }"));
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  torch::NoGradGuard no_grad;
  const torch::Tensor input =
      (*backbone)->Preprocess(torch::randint(0, 256, {2, 28, 28, 1}, torch::kByte));
  ASSERT_EQ(input.sizes(), (std::vector<int64_t>{2, 3, 64, 64}));
  const absl::StatusOr<TapMap> taps = (*backbone)->Forward(input, (*backbone)->tap_names());
  ASSERT_TRUE(taps.ok()) << taps.status();
  EXPECT_EQ(taps->at("pooled").sizes(), (std::vector<int64_t>{2, 512}));
  EXPECT_EQ(taps->at("stem").sizes(), (std::vector<int64_t>{2, 64, 16, 16}));
  EXPECT_EQ(taps->at("layer1").sizes(), (std::vector<int64_t>{2, 64, 16, 16}));
  EXPECT_EQ(taps->at("layer4").sizes(), (std::vector<int64_t>{2, 512, 2, 2}));
  EXPECT_EQ(taps->at("logits").sizes(), (std::vector<int64_t>{2, 1000}));
  EXPECT_TRUE(taps->at("layer4").is_contiguous());
  EXPECT_TRUE(torch::allclose(taps->at("pooled"), taps->at("layer4").mean({2, 3}), 1e-5, 1e-6));

  const absl::StatusOr<TapMap> none = (*backbone)->Forward(input, {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(TorchvisionResnetBackboneTest, BadForwardArgumentsAreInvalidArgument) {
  absl::StatusOr<std::unique_ptr<Backbone>> backbone =
      CreateFromText(Options("resnet18", FixturePath("resnet18.pth")));
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  absl::StatusOr<TapMap> taps = (*backbone)->Forward(torch::zeros({1, 3, 32, 32}), {"layer5"});
  ASSERT_FALSE(taps.ok());
  EXPECT_EQ(taps.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(taps.status().message(),
                                "unknown tap \"layer5\"; valid taps are pooled, stem, layer1, "
                                "layer2, layer3, layer4, logits"))
      << taps.status();

  for (const torch::Tensor& input :
       {torch::zeros({1, 1, 32, 32}), torch::zeros({3, 32, 32}),
        torch::zeros({1, 3, 32, 32}, torch::kFloat64), torch::Tensor()}) {
    taps = (*backbone)->Forward(input, {"pooled"});
    ASSERT_FALSE(taps.ok());
    EXPECT_EQ(taps.status().code(), absl::StatusCode::kInvalidArgument) << taps.status();
  }
}

TEST(TorchvisionResnetBackboneTest, InvalidOptionsAreRejected) {
  ExpectError(CreateFromText("weights_file: \"x.pth\""), absl::StatusCode::kInvalidArgument,
              {"arch is required, one of resnet18, resnet34"});
  ExpectError(CreateFromText(Options("resnet19", "x.pth")), absl::StatusCode::kInvalidArgument,
              {"arch: unknown ResNet architecture \"resnet19\""});
  ExpectError(CreateFromText("arch: \"resnet18\""), absl::StatusCode::kInvalidArgument,
              {"weights_file is required"});
  ExpectError(CreateFromText(Options("resnet18", FixturePath("resnet18.pth"),
                                     "preprocessing { std: [1, 1] }")),
              absl::StatusCode::kInvalidArgument, {"preprocessing.std needs 3 values"});
  ExpectError(CreateFromText(Options("resnet18", FixturePath("resnet18.pth"),
                                     "trainable_from: \"layer9\"")),
              absl::StatusCode::kInvalidArgument,
              {"trainable_from: unknown ResNet stage \"layer9\"; valid stages are stem"});
  // The fc head is no stage.
  ExpectError(CreateFromText(Options("resnet18", FixturePath("resnet18.pth"),
                                     "trainable_from: \"fc\"")),
              absl::StatusCode::kInvalidArgument,
              {"trainable_from: unknown ResNet stage \"fc\"; valid stages are stem, layer1, "
               "layer2, layer3, layer4"});
}

TEST(TorchvisionResnetBackboneTest, WrongOptionsTypeIsInvalidArgument) {
  ImagePreprocessing not_options;
  google::protobuf::Any any;
  any.PackFrom(not_options);
  const absl::StatusOr<std::unique_ptr<Backbone>> backbone =
      BackboneRegistry().Create("torchvision_resnet", any);
  ExpectError(backbone, absl::StatusCode::kInvalidArgument,
              {"panda.TorchvisionResnetOptions", "panda.ImagePreprocessing"});
}

TEST(TorchvisionResnetBackboneTest, MissingFileIsNotFound) {
  ExpectError(CreateFromText(Options("resnet18", "no/such/resnet18.pth")),
              absl::StatusCode::kNotFound, {"no/such/resnet18.pth"});
}

TEST(TorchvisionResnetBackboneTest, CheckpointOfAnotherArchitectureIsRejected) {
  // resnet18 has two blocks per stage, resnet34 three or more.
  ExpectError(CreateFromText(Options("resnet34", FixturePath("resnet18.pth"))),
              absl::StatusCode::kInvalidArgument,
              {"resnet18.pth: the checkpoint does not match resnet34",
               "96 missing (layer1.2.conv1.weight [64, 64, 3, 3], layer1.2.bn1.weight [64]"});
  // resnet50 and wide_resnet50_2 share every name; the inner widths differ.
  ExpectError(CreateFromText(Options("wide_resnet50_2", FixturePath("resnet50.pth"))),
              absl::StatusCode::kInvalidArgument,
              {"with another shape or type (layer1.0.conv1.weight: checkpoint [64, 64, 1, 1] "
               "Float, model [128, 64, 1, 1] Float"});
  // resnet50's Bottleneck blocks have conv3 and bn3, which resnet18 lacks.
  ExpectError(CreateFromText(Options("resnet18", FixturePath("resnet50.pth"))),
              absl::StatusCode::kInvalidArgument,
              {"unexpected (layer1.0.conv3.weight [256, 64, 1, 1]"});
  // A state dict of other tensors entirely.
  ExpectError(CreateFromText(Options("resnet18", TestdataPath("checkpoint_plain_dict.pth"))),
              absl::StatusCode::kInvalidArgument,
              {"122 missing (conv1.weight [64, 3, 7, 7]", "2 unexpected (a.weight [2, 2], "});
  // The same saved from nn.DataParallel: the "module." prefix is removed.
  ExpectError(
      CreateFromText(Options("resnet18", TestdataPath("checkpoint_data_parallel.pth"))),
      absl::StatusCode::kInvalidArgument, {"2 unexpected (a.weight [2, 2], a.bias [2])"});
}

TEST(TorchvisionResnetBackboneTest, CorruptCheckpointIsDataLoss) {
  const std::string original = ReadFileBytes(FixturePath("resnet18.pth"));
  ASSERT_GT(original.size(), 40000000u);
  std::string flipped = original;
  flipped[original.size() / 2] ^= 0x40;  // Inside a weight storage.
  ExpectError(CreateFromText(Options("resnet18", WriteTemporaryFile("flipped.pth", flipped))),
              absl::StatusCode::kDataLoss, {"flipped.pth", "fails its CRC-32 check"});
  ExpectError(CreateFromText(Options(
                  "resnet18", WriteTemporaryFile("cut.pth", original.substr(0, 1000000)))),
              absl::StatusCode::kDataLoss, {"cut.pth"});
}

TEST(TorchvisionResnetBackboneTest, FingerprintTracksWeightsAndPreprocessing) {
  const absl::StatusOr<std::unique_ptr<Backbone>> plain =
      CreateFromText(Options("resnet50", FixturePath("resnet50.pth")));
  const absl::StatusOr<std::unique_ptr<Backbone>> small = CreateFromText(
      Options("resnet50", FixturePath("resnet50.pth"), "preprocessing { center_crop: 112 }"));
  const absl::StatusOr<std::unique_ptr<Backbone>> other =
      CreateFromText(Options("resnet18", FixturePath("resnet18.pth")));
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(small.ok()) << small.status();
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE((*plain)->Fingerprint(), (*small)->Fingerprint());
  EXPECT_TRUE(absl::StrContains((*small)->Fingerprint(), "/crop=112/"));
  EXPECT_NE((*plain)->Fingerprint().substr(0, 45), (*other)->Fingerprint().substr(0, 45));
}

TEST(TorchvisionResnetBackboneTest, TrainingSwitchesReachTheNetwork) {
  absl::StatusOr<std::unique_ptr<Backbone>> backbone = CreateFromText(
      Options("resnet18", FixturePath("resnet18.pth"), "trainable_from: \"layer3\""));
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  torch::nn::Module& module = (*backbone)->module();
  EXPECT_FALSE(module.named_parameters()["layer2.1.conv2.weight"].requires_grad());
  EXPECT_TRUE(module.named_parameters()["layer3.0.conv1.weight"].requires_grad());

  // freeze_batchnorm defaults to true: BatchNorm stays in eval mode.
  module.train();
  EXPECT_FALSE(module.named_modules()["layer3.0.bn1"]->is_training());
  ASSERT_TRUE((*backbone)->SetBatchNormFrozen(false).ok());
  EXPECT_TRUE(module.named_modules()["layer3.0.bn1"]->is_training());

  ASSERT_TRUE((*backbone)->SetTrainableFrom("stem").ok());
  EXPECT_TRUE(module.named_parameters()["conv1.weight"].requires_grad());
}

TEST(TorchvisionResnetBackboneTest, TrainableFromLayer3ByParameterName) {
  absl::StatusOr<std::unique_ptr<Backbone>> backbone =
      CreateFromText(Options("resnet50", FixturePath("resnet50.pth")));
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  ASSERT_TRUE((*backbone)->SetTrainableFrom("layer3").ok());

  const auto parameters = (*backbone)->module().named_parameters();
  // The stem has 3 tensors. layer1 to layer4 have 3, 4, 6 and 3 Bottlenecks
  // of 9 tensors and a 3-tensor downsample each, and fc has 2.
  ASSERT_EQ(parameters.size(), 3u + 30 + 39 + 57 + 30 + 2);
  int trainable = 0;
  for (const auto& item : parameters) {
    const std::string& name = item.key();
    // fc is no stage, so it keeps the requires_grad it was built with.
    const bool expected = absl::StartsWith(name, "layer3.") ||
                          absl::StartsWith(name, "layer4.") || absl::StartsWith(name, "fc.");
    EXPECT_EQ(item.value().requires_grad(), expected) << name;
    if (item.value().requires_grad()) ++trainable;
  }
  EXPECT_EQ(trainable, 57 + 30 + 2);
}

TEST(TorchvisionResnetBackboneTest, TrainableFromLeavesFcAlone) {
  absl::StatusOr<std::unique_ptr<Backbone>> backbone =
      CreateFromText(Options("resnet18", FixturePath("resnet18.pth")));
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  auto parameters = (*backbone)->module().named_parameters();
  parameters["fc.weight"].set_requires_grad(false);

  ASSERT_TRUE((*backbone)->SetTrainableFrom("stem").ok());
  EXPECT_FALSE(parameters["fc.weight"].requires_grad());
  EXPECT_TRUE(parameters["fc.bias"].requires_grad());
  EXPECT_TRUE(parameters["layer4.1.bn2.bias"].requires_grad());
}

TEST(TorchvisionResnetBackboneTest, UnknownStageIsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<Backbone>> backbone = CreateFromText(
      Options("resnet18", FixturePath("resnet18.pth"), "trainable_from: \"layer2\""));
  ASSERT_TRUE(backbone.ok()) << backbone.status();

  const absl::Status status = (*backbone)->SetTrainableFrom("head");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "torchvision_resnet backbone: unknown ResNet stage \"head\"; valid stages are "
            "stem, layer1, layer2, layer3, layer4");
  // A rejected name changes nothing.
  auto parameters = (*backbone)->module().named_parameters();
  EXPECT_FALSE(parameters["layer1.0.conv1.weight"].requires_grad());
  EXPECT_TRUE(parameters["layer2.0.conv1.weight"].requires_grad());
}

// Copies of every buffer of the module by name. In a ResNet these are the
// running_mean, running_var and num_batches_tracked of its BatchNorm layers.
std::map<std::string, torch::Tensor> CopyBuffers(torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> buffers;
  for (const auto& item : module.named_buffers()) buffers[item.key()] = item.value().clone();
  return buffers;
}

TEST(TorchvisionResnetBackboneTest, FrozenBatchNormTrainsLikeEval) {
  absl::StatusOr<std::unique_ptr<Backbone>> backbone = CreateFromText(Options(
      "resnet18", FixturePath("resnet18.pth"),
      "freeze_batchnorm: true preprocessing { resize: 72 center_crop: 64 }"));
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  torch::nn::Module& module = (*backbone)->module();
  torch::manual_seed(3);
  const torch::Tensor input =
      (*backbone)->Preprocess(torch::randint(0, 256, {4, 64, 64, 3}, torch::kByte));
  const std::vector<std::string> taps = {"stem", "layer2", "pooled"};

  module.eval();
  const absl::StatusOr<TapMap> eval_taps = (*backbone)->Forward(input, taps);
  ASSERT_TRUE(eval_taps.ok()) << eval_taps.status();
  const std::map<std::string, torch::Tensor> buffers_before = CopyBuffers(module);
  // 20 BatchNorm layers of resnet18 with three buffers each.
  ASSERT_EQ(buffers_before.size(), 60u);

  module.train();
  EXPECT_TRUE(module.is_training());
  const absl::StatusOr<TapMap> frozen_taps = (*backbone)->Forward(input, taps);
  ASSERT_TRUE(frozen_taps.ok()) << frozen_taps.status();
  for (const std::string& tap : taps) {
    EXPECT_TRUE(torch::allclose(frozen_taps->at(tap), eval_taps->at(tap), 1e-5, 1e-6)) << tap;
  }
  for (const auto& [name, after] : CopyBuffers(module)) {
    EXPECT_TRUE(torch::equal(after, buffers_before.at(name))) << name;
  }

  // Released, the same train-mode forward normalises with batch statistics
  // and updates the running ones, so the checks above can fail.
  ASSERT_TRUE((*backbone)->SetBatchNormFrozen(false).ok());
  const absl::StatusOr<TapMap> training_taps = (*backbone)->Forward(input, taps);
  ASSERT_TRUE(training_taps.ok()) << training_taps.status();
  for (const std::string& tap : taps) {
    EXPECT_FALSE(torch::allclose(training_taps->at(tap), eval_taps->at(tap), 1e-3, 1e-3))
        << tap;
  }
  const std::map<std::string, torch::Tensor> buffers_after = CopyBuffers(module);
  EXPECT_FALSE(torch::equal(buffers_after.at("bn1.running_mean"),
                            buffers_before.at("bn1.running_mean")));
  EXPECT_FALSE(torch::equal(buffers_after.at("layer4.1.bn2.running_mean"),
                            buffers_before.at("layer4.1.bn2.running_mean")));
}

}  // namespace
}  // namespace panda
