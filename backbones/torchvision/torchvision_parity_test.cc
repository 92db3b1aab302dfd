// Compares the torchvision_resnet backbone with PyTorch 1.13 and
// torchvision 0.14 (Debian's python3-torch and python3-torchvision).
// tools/make_torchvision_fixtures.py writes the reference files into
// data/fixtures/: checkpoints of randomly initialised models, their outputs
// at every tap on a fixed input, and torchvision's preprocessing of a few
// images.
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backbones/backbone.h"
#include "backbones/torchvision/image_preprocessing.h"
#include "backbones/torchvision/test_files.h"
#include "backbones/torchvision/torchvision_resnet_backbone.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

using torchvision::testing::FixturePath;
using torchvision::testing::ReadTensors;
using torchvision::testing::RelativeDifference;

// Relative tolerance of every comparison: max |difference| / max |value|.
// Measured differences are about 1e-6.
constexpr double kTolerance = 1e-4;

std::unique_ptr<TorchvisionResnetBackbone> Load(const std::string& arch, bool channels_last) {
  TorchvisionResnetOptions options;
  options.set_arch(arch);
  options.set_weights_file(FixturePath(arch + ".pth"));
  options.set_channels_last(channels_last);
  absl::StatusOr<std::unique_ptr<TorchvisionResnetBackbone>> backbone =
      TorchvisionResnetBackbone::Create(options);
  EXPECT_TRUE(backbone.ok()) << backbone.status();
  return backbone.ok() ? *std::move(backbone) : nullptr;
}

void ExpectEveryTapMatches(const std::string& arch) {
  const absl::StatusOr<std::map<std::string, torch::Tensor>> expected =
      ReadTensors(FixturePath(arch + "_outputs.pth"));
  ASSERT_TRUE(expected.ok()) << expected.status();
  const std::vector<std::string> taps = {"stem",   "layer1", "layer2", "layer3",
                                         "layer4", "pooled", "logits"};
  for (bool channels_last : {true, false}) {
    SCOPED_TRACE(channels_last ? "channels-last" : "contiguous");
    const std::unique_ptr<TorchvisionResnetBackbone> backbone = Load(arch, channels_last);
    ASSERT_NE(backbone, nullptr);
    torch::InferenceMode inference_mode;
    const absl::StatusOr<TapMap> outputs = backbone->Forward(expected->at("input"), taps);
    ASSERT_TRUE(outputs.ok()) << outputs.status();
    for (const std::string& tap : taps) {
      const double difference = RelativeDifference(outputs->at(tap), expected->at(tap));
      std::cout << arch << (channels_last ? " channels-last " : " contiguous ") << tap
                << ": relative difference " << difference << "\n";
      EXPECT_LE(difference, kTolerance) << tap;
    }
  }
}

TEST(TorchvisionParityTest, Resnet18MatchesPyTorch) { ExpectEveryTapMatches("resnet18"); }

TEST(TorchvisionParityTest, Resnet50MatchesPyTorch) { ExpectEveryTapMatches("resnet50"); }

TEST(TorchvisionParityTest, WideResnet50MatchesPyTorch) {
  ExpectEveryTapMatches("wide_resnet50_2");
}

TEST(TorchvisionParityTest, PreprocessingMatchesTorchvision) {
  const absl::StatusOr<std::map<std::string, torch::Tensor>> cases =
      ReadTensors(FixturePath("preprocessing.pth"));
  ASSERT_TRUE(cases.ok()) << cases.status();
  for (const char* name : {"grey", "portrait", "landscape", "padded"}) {
    SCOPED_TRACE(name);
    const std::string prefix = absl::StrCat(name, "/");
    ImagePreprocessing options;
    options.set_resize(cases->at(prefix + "resize").item<int64_t>());
    options.set_center_crop(cases->at(prefix + "crop").item<int64_t>());
    const absl::StatusOr<torchvision::PreprocessSettings> settings =
        torchvision::ResolvePreprocessing(options, "preprocessing");
    ASSERT_TRUE(settings.ok()) << settings.status();
    const torch::Tensor output =
        torchvision::PreprocessImages(cases->at(prefix + "images"), *settings);
    const torch::Tensor& expected = cases->at(prefix + "expected");
    ASSERT_EQ(output.sizes(), expected.sizes());
    // Absolute: values are normalised pixels of order 1.
    const double difference = (output - expected).abs().max().item<double>();
    std::cout << name << ": max |difference| " << difference << "\n";
    EXPECT_LE(difference, 1e-4);
  }
}

TEST(TorchvisionParityTest, GreyImagesEndToEnd) {
  const absl::StatusOr<std::map<std::string, torch::Tensor>> cases =
      ReadTensors(FixturePath("preprocessing.pth"));
  ASSERT_TRUE(cases.ok()) << cases.status();
  const std::unique_ptr<TorchvisionResnetBackbone> backbone = Load("resnet18", true);
  ASSERT_NE(backbone, nullptr);
  torch::InferenceMode inference_mode;
  const torch::Tensor input = backbone->Preprocess(cases->at("grey/images"));
  const absl::StatusOr<TapMap> outputs = backbone->Forward(input, {"pooled"});
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  const double difference =
      RelativeDifference(outputs->at("pooled"), cases->at("grey/resnet18_pooled"));
  std::cout << "resnet18 pooled from 28x28 grey images: relative difference " << difference
            << "\n";
  EXPECT_LE(difference, kTolerance);
}

}  // namespace
}  // namespace panda
