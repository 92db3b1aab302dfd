// Compares the keras backbone on the converted nsfwjs models with outputs
// that TF.js recorded for the same images (backbones/testdata/
// tfjs_<model>_reference.json, written by tools/record_tfjs_reference.js).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backbones/keras/keras_backbone.h"
#include "backbones/keras/keras_model.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

// Tolerances of the comparison. The differences measured with TF.js 4.22.0
// are about 1e-6 or smaller.
constexpr double kProbabilityTolerance = 1e-4;
constexpr double kPooledRelativeTolerance = 1e-4;

std::string WeightsPath(const std::string& model) {
  return absl::StrCat("data/weights/", model, ".pkm");
}

std::string ReferencePath(const std::string& model) {
  return absl::StrCat("backbones/testdata/tfjs_", model, "_reference.json");
}

absl::StatusOr<keras::ReferenceOutputs> ReadReference(const std::string& path) {
  std::ifstream stream(path);
  if (!stream) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream json;
  json << stream.rdbuf();
  keras::ReferenceOutputs reference;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(json.str(), &reference, options);
  if (!status.ok()) {
    return absl::DataLossError(absl::StrCat(path, ": ", status.ToString()));
  }
  return reference;
}

std::unique_ptr<KerasBackbone> LoadBackbone(const std::string& model, int input_size = 0) {
  const std::string path = WeightsPath(model);
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << path << " is missing. Run ./setup.sh, which converts the nsfwjs "
                  << "models with tools/convert_tfjs_layers_model.js";
    return nullptr;
  }
  KerasBackboneOptions options;
  options.set_weights_file(path);
  options.set_input_size(input_size);
  absl::StatusOr<std::unique_ptr<KerasBackbone>> backbone = KerasBackbone::Create(options);
  EXPECT_TRUE(backbone.ok()) << backbone.status();
  return backbone.ok() ? *std::move(backbone) : nullptr;
}

torch::Tensor CaseImage(const keras::ReferenceCase& reference_case) {
  std::vector<uint8_t> pixels(reference_case.pixels().begin(), reference_case.pixels().end());
  return torch::from_blob(pixels.data(),
                          {1, reference_case.height(), reference_case.width(),
                           reference_case.channels()},
                          torch::kByte)
      .clone();
}

void ExpectMatchesTfjs(const std::string& model, int64_t native_size, int64_t feature_dim) {
  const std::unique_ptr<KerasBackbone> backbone = LoadBackbone(model);
  ASSERT_NE(backbone, nullptr);
  EXPECT_EQ(backbone->feature_dim(), feature_dim);
  EXPECT_EQ(backbone->input_size(), (std::array<int64_t, 2>{native_size, native_size}));
  const absl::StatusOr<keras::ReferenceOutputs> reference = ReadReference(ReferencePath(model));
  ASSERT_TRUE(reference.ok()) << reference.status();
  ASSERT_FALSE(reference->cases().empty());

  torch::InferenceMode inference_mode;
  double worst_probability = 0;
  double worst_pooled = 0;
  for (const keras::ReferenceCase& reference_case : reference->cases()) {
    SCOPED_TRACE(reference_case.name());
    ASSERT_EQ(reference_case.pixels_size(),
              reference_case.height() * reference_case.width() * reference_case.channels());
    const torch::Tensor input = backbone->Preprocess(CaseImage(reference_case));
    const absl::StatusOr<TapMap> taps = backbone->Forward(input, {"pooled", "probabilities"});
    ASSERT_TRUE(taps.ok()) << taps.status();

    const torch::Tensor probabilities = taps->at("probabilities")[0];
    ASSERT_EQ(probabilities.numel(), reference_case.probabilities_size());
    const torch::Tensor expected_probabilities = torch::tensor(
        std::vector<float>(reference_case.probabilities().begin(),
                           reference_case.probabilities().end()));
    const double probability_difference =
        (probabilities - expected_probabilities).abs().max().item<double>();

    const torch::Tensor pooled = taps->at("pooled")[0];
    ASSERT_EQ(pooled.numel(), reference_case.pooled_size());
    const torch::Tensor expected_pooled = torch::tensor(
        std::vector<float>(reference_case.pooled().begin(), reference_case.pooled().end()));
    const double pooled_difference = (pooled - expected_pooled).abs().max().item<double>() /
                                     expected_pooled.abs().max().item<double>();

    std::cout << model << " " << reference_case.name()
              << ": max |probability difference| = " << probability_difference
              << ", pooled max |difference| / max |value| = " << pooled_difference << "\n";
    EXPECT_LE(probability_difference, kProbabilityTolerance);
    EXPECT_LE(pooled_difference, kPooledRelativeTolerance);
    worst_probability = std::max(worst_probability, probability_difference);
    worst_pooled = std::max(worst_pooled, pooled_difference);
  }
  ::testing::Test::RecordProperty("max_probability_difference", std::to_string(worst_probability));
  ::testing::Test::RecordProperty("max_pooled_relative_difference", std::to_string(worst_pooled));
}

TEST(KerasParityTest, MobileNetV2MatchesTfjs) {
  ExpectMatchesTfjs("mobilenet_v2", 224, 1280);
}

TEST(KerasParityTest, InceptionV3MatchesTfjs) {
  if (!std::filesystem::exists(ReferencePath("inception_v3"))) {
    GTEST_SKIP() << ReferencePath("inception_v3") << " has not been recorded";
  }
  ExpectMatchesTfjs("inception_v3", 299, 2048);
}

TEST(KerasParityTest, MobileNetV2PooledAtOtherSizes) {
  const std::unique_ptr<KerasBackbone> backbone = LoadBackbone("mobilenet_v2", 112);
  ASSERT_NE(backbone, nullptr);
  torch::InferenceMode inference_mode;
  const torch::Tensor input =
      backbone->Preprocess(torch::randint(0, 256, {2, 28, 28, 1}, torch::kByte));
  ASSERT_EQ(input.sizes(), (std::vector<int64_t>{2, 3, 112, 112}));

  const absl::StatusOr<TapMap> taps = backbone->Forward(input, {"pooled", "block_16_project_BN"});
  ASSERT_TRUE(taps.ok()) << taps.status();
  EXPECT_EQ(taps->at("pooled").sizes(), (std::vector<int64_t>{2, 1280}));
  // 112 -> 56 -> 28 -> 14 -> 7, then the fixed (0, 1) ZeroPadding2D made for
  // 224 input and a 3x3 "valid" stride-2 convolution give 3x3, not 4x4.
  EXPECT_EQ(taps->at("block_16_project_BN").sizes(), (std::vector<int64_t>{2, 320, 3, 3}));

  const absl::StatusOr<TapMap> head = backbone->Forward(input, {"probabilities"});
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(head.status().message(), "defined only for 224x224 input"))
      << head.status();
}

}  // namespace
}  // namespace panda
