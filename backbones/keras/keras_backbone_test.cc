#include "backbones/keras/keras_backbone.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backbones/backbone.h"
#include "backbones/keras/keras_backbone_options.pb.h"
#include "backbones/keras/keras_test_models.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

using ::panda::keras::testing::TinyModel;
using ::panda::keras::testing::WriteTestFile;

std::string TinyModelPath() {
  static const std::string* path =
      new std::string(WriteTestFile("tiny_backbone.pkm", TinyModel().Encode()));
  return *path;
}

google::protobuf::Any PackOptions(const std::string& text) {
  KerasBackboneOptions options;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &options)) << text;
  google::protobuf::Any any;
  any.PackFrom(options);
  return any;
}

std::unique_ptr<KerasBackbone> CreateTiny(const std::string& extra_options = "") {
  KerasBackboneOptions options;
  options.set_weights_file(TinyModelPath());
  EXPECT_TRUE(google::protobuf::TextFormat::MergeFromString(extra_options, &options));
  absl::StatusOr<std::unique_ptr<KerasBackbone>> backbone = KerasBackbone::Create(options);
  EXPECT_TRUE(backbone.ok()) << backbone.status();
  return backbone.ok() ? *std::move(backbone) : nullptr;
}

torch::Tensor RandomImages(int64_t n, int64_t height, int64_t width, int64_t channels) {
  return torch::randint(0, 256, {n, height, width, channels}, torch::kByte);
}

TEST(KerasBackboneTest, CreatesFromRegistryWithTextOptions) {
  const absl::StatusOr<std::unique_ptr<Backbone>> backbone = BackboneRegistry().Create(
      "keras", PackOptions(absl::StrCat("weights_file: \"", TinyModelPath(),
                                        "\" input_scaling: SYMMETRIC")));
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  EXPECT_EQ((*backbone)->feature_dim(), 20);

  const std::vector<std::string> taps = (*backbone)->tap_names();
  ASSERT_GE(taps.size(), 3u);
  EXPECT_EQ(taps[0], "pooled");
  EXPECT_EQ(taps[1], "probabilities");
  EXPECT_EQ(taps[2], "input");
  EXPECT_NE(std::find(taps.begin(), taps.end(), "conv_a"), taps.end());

  const std::string fingerprint = (*backbone)->Fingerprint();
  EXPECT_TRUE(absl::StartsWith(fingerprint, "keras/tiny/fnv1a64=")) << fingerprint;
  EXPECT_TRUE(absl::EndsWith(fingerprint, "/input=7x6/scaling=symmetric")) << fingerprint;
}

TEST(KerasBackboneTest, FingerprintTracksSizeAndScaling) {
  const std::unique_ptr<KerasBackbone> native = CreateTiny();
  const std::unique_ptr<KerasBackbone> larger = CreateTiny("input_size: 15");
  const std::unique_ptr<KerasBackbone> symmetric = CreateTiny("input_scaling: SYMMETRIC");
  ASSERT_NE(native, nullptr);
  ASSERT_NE(larger, nullptr);
  ASSERT_NE(symmetric, nullptr);
  EXPECT_NE(native->Fingerprint(), larger->Fingerprint());
  EXPECT_NE(native->Fingerprint(), symmetric->Fingerprint());
  EXPECT_TRUE(absl::StrContains(larger->Fingerprint(), "/input=15x15/")) << larger->Fingerprint();
}

TEST(KerasBackboneTest, InvalidOptionsAreRejected) {
  KerasBackboneOptions options;
  absl::StatusOr<std::unique_ptr<KerasBackbone>> backbone = KerasBackbone::Create(options);
  ASSERT_FALSE(backbone.ok());
  EXPECT_EQ(backbone.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(backbone.status().message(), "weights_file is required"));

  options.set_weights_file(TinyModelPath());
  options.set_input_size(-3);
  backbone = KerasBackbone::Create(options);
  ASSERT_FALSE(backbone.ok());
  EXPECT_EQ(backbone.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(backbone.status().message(), "got -3")) << backbone.status();

  // At 1x1 the 2x2 max pooling "sub" has nothing to pool.
  options.set_input_size(1);
  backbone = KerasBackbone::Create(options);
  ASSERT_FALSE(backbone.ok());
  EXPECT_EQ(backbone.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(backbone.status().message(), "input_size 1 is too small"))
      << backbone.status();
  EXPECT_TRUE(absl::StrContains(backbone.status().message(), "layer 'sub'")) << backbone.status();
}

TEST(KerasBackboneTest, WrongOptionsTypeIsInvalidArgument) {
  keras::Layer not_options;
  google::protobuf::Any any;
  any.PackFrom(not_options);
  const absl::StatusOr<std::unique_ptr<Backbone>> backbone =
      BackboneRegistry().Create("keras", any);
  ASSERT_FALSE(backbone.ok());
  EXPECT_EQ(backbone.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KerasBackboneTest, MissingWeightsFileIsNotFound) {
  KerasBackboneOptions options;
  options.set_weights_file(TinyModelPath() + ".missing");
  const absl::StatusOr<std::unique_ptr<KerasBackbone>> backbone = KerasBackbone::Create(options);
  ASSERT_FALSE(backbone.ok());
  EXPECT_EQ(backbone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(backbone.status().message(), options.weights_file()));
}

TEST(KerasBackboneTest, CorruptWeightsFileIsDataLoss) {
  std::string bytes = keras::testing::TinyModel().Encode();
  bytes[bytes.size() - 20] ^= 0x10;
  KerasBackboneOptions options;
  options.set_weights_file(WriteTestFile("tiny_corrupt.pkm", bytes));
  const absl::StatusOr<std::unique_ptr<KerasBackbone>> backbone = KerasBackbone::Create(options);
  ASSERT_FALSE(backbone.ok());
  EXPECT_EQ(backbone.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(absl::StrContains(backbone.status().message(), options.weights_file()));
}

TEST(KerasBackboneTest, ForwardReturnsRequestedTaps) {
  const std::unique_ptr<KerasBackbone> backbone = CreateTiny();
  ASSERT_NE(backbone, nullptr);
  torch::NoGradGuard no_grad;
  const torch::Tensor input = backbone->Preprocess(RandomImages(2, 9, 11, 3));
  ASSERT_EQ(input.sizes(), (std::vector<int64_t>{2, 3, 7, 6}));

  const absl::StatusOr<TapMap> taps =
      backbone->Forward(input, {"pooled", "probabilities", "conv_a", "act", "flat"});
  ASSERT_TRUE(taps.ok()) << taps.status();
  ASSERT_EQ(taps->size(), 5u);
  const torch::Tensor& pooled = taps->at("pooled");
  EXPECT_EQ(pooled.sizes(), (std::vector<int64_t>{2, 20}));
  EXPECT_TRUE(torch::allclose(pooled, taps->at("act").mean({2, 3})));
  EXPECT_EQ(taps->at("probabilities").sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(torch::allclose(taps->at("probabilities").sum(1), torch::ones({2})));
  EXPECT_EQ(taps->at("conv_a").sizes(), (std::vector<int64_t>{2, 4, 4, 4}));
  EXPECT_TRUE(taps->at("conv_a").is_contiguous());
  EXPECT_EQ(taps->at("flat").sizes(), (std::vector<int64_t>{2, 40}));

  const absl::StatusOr<TapMap> none = backbone->Forward(input, {});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST(KerasBackboneTest, UnknownTapListsValidNames) {
  const std::unique_ptr<KerasBackbone> backbone = CreateTiny();
  ASSERT_NE(backbone, nullptr);
  const absl::StatusOr<TapMap> taps =
      backbone->Forward(torch::zeros({1, 3, 7, 6}), {"pooled", "nope"});
  ASSERT_FALSE(taps.ok());
  EXPECT_EQ(taps.status().code(), absl::StatusCode::kInvalidArgument);
  for (const char* part : {"unknown tap \"nope\"", "pooled, probabilities, input, pad",
                           "every layer name"}) {
    EXPECT_TRUE(absl::StrContains(taps.status().message(), part)) << taps.status();
  }
}

TEST(KerasBackboneTest, HeadTapsNeedNativeSize) {
  const std::unique_ptr<KerasBackbone> backbone = CreateTiny("input_size: 15");
  ASSERT_NE(backbone, nullptr);
  torch::NoGradGuard no_grad;
  const torch::Tensor input = backbone->Preprocess(RandomImages(1, 7, 6, 1));
  ASSERT_EQ(input.sizes(), (std::vector<int64_t>{1, 3, 15, 15}));

  const absl::StatusOr<TapMap> features = backbone->Forward(input, {"pooled", "act"});
  ASSERT_TRUE(features.ok()) << features.status();
  EXPECT_EQ(features->at("pooled").sizes(), (std::vector<int64_t>{1, 20}));
  EXPECT_EQ(features->at("act").sizes(), (std::vector<int64_t>{1, 20, 4, 4}));

  for (const char* tap : {"probabilities", "head_pool", "hidden"}) {
    const absl::StatusOr<TapMap> head = backbone->Forward(input, {tap});
    ASSERT_FALSE(head.ok()) << tap;
    EXPECT_EQ(head.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(head.status().message(), "defined only for 7x6 input"))
        << head.status();
  }
}

TEST(KerasBackboneTest, PreprocessScalesResizesAndExpandsGrey) {
  const std::unique_ptr<KerasBackbone> unit = CreateTiny("input_size: 3");
  const std::unique_ptr<KerasBackbone> symmetric =
      CreateTiny("input_size: 3 input_scaling: SYMMETRIC");
  ASSERT_NE(unit, nullptr);
  ASSERT_NE(symmetric, nullptr);

  // A 2x2 grey image: aligned corners keep the corner pixels, and the centre
  // of the 3x3 output is the mean of all four.
  const torch::Tensor grey =
      torch::tensor({0, 255, 51, 102}, torch::kByte).reshape({1, 2, 2, 1});
  const torch::Tensor scaled = unit->Preprocess(grey);
  ASSERT_EQ(scaled.sizes(), (std::vector<int64_t>{1, 3, 3, 3}));
  EXPECT_EQ(scaled.scalar_type(), torch::kFloat);
  EXPECT_FLOAT_EQ(scaled[0][0][0][0].item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(scaled[0][0][0][2].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(scaled[0][0][2][0].item<float>(), 0.2f);
  EXPECT_FLOAT_EQ(scaled[0][0][2][2].item<float>(), 0.4f);
  EXPECT_NEAR(scaled[0][0][1][1].item<float>(), (0 + 255 + 51 + 102) / 4.0 / 255.0, 1e-6);
  EXPECT_TRUE(torch::equal(scaled[0][0], scaled[0][1]));
  EXPECT_TRUE(torch::equal(scaled[0][0], scaled[0][2]));

  const torch::Tensor centred = symmetric->Preprocess(grey);
  EXPECT_FLOAT_EQ(centred[0][0][0][0].item<float>(), -1.0f);
  EXPECT_FLOAT_EQ(centred[0][0][0][2].item<float>(), 1.0f);

  // Colour channels stay in order, and an image at the target size is only
  // scaled.
  const torch::Tensor colour = RandomImages(2, 3, 3, 3);
  const torch::Tensor same_size = unit->Preprocess(colour);
  EXPECT_TRUE(torch::equal(same_size, colour.permute({0, 3, 1, 2}).to(torch::kFloat) / 255));
}

TEST(KerasBackboneTest, PreprocessRejectsInvalidImages) {
  const std::unique_ptr<KerasBackbone> backbone = CreateTiny();
  ASSERT_NE(backbone, nullptr);
  EXPECT_THROW(backbone->Preprocess(torch::zeros({1, 7, 6, 3})), c10::Error);
  EXPECT_THROW(backbone->Preprocess(torch::zeros({1, 7, 6, 2}, torch::kByte)), c10::Error);
  EXPECT_THROW(backbone->Preprocess(torch::zeros({7, 6, 3}, torch::kByte)), c10::Error);
}

}  // namespace
}  // namespace panda
