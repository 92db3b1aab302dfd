#include "backbones/keras/keras_graph_spec.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "backbones/keras/keras_shape_inference.h"
#include "backbones/keras/keras_test_models.h"
#include "gtest/gtest.h"

namespace panda::keras {
namespace {

using ::panda::keras::testing::ModelBuilder;
using ::panda::keras::testing::TinyModel;

absl::StatusOr<GraphSpec> BuildFromBuilder(const ModelBuilder& builder,
                                           const std::string& path) {
  const std::string bytes = builder.Encode();
  std::istringstream stream(bytes);
  absl::StatusOr<ModelFile> file = ParseModelFile(stream, bytes.size(), path);
  if (!file.ok()) return file.status();
  return BuildGraphSpec(*file);
}

// Expects InvalidArgument naming the file and containing every string in
// `expected`.
void ExpectInvalid(const ModelBuilder& builder,
                   const std::vector<std::string>& expected) {
  const std::string path = "memory/invalid.pkm";
  const absl::StatusOr<GraphSpec> spec = BuildFromBuilder(builder, path);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << spec.status();
  EXPECT_TRUE(absl::StrContains(spec.status().message(), path)) << spec.status();
  for (const std::string& part : expected) {
    EXPECT_TRUE(absl::StrContains(spec.status().message(), part))
        << "missing \"" << part << "\" in: " << spec.status();
  }
}

Layer* FindLayer(ModelBuilder& builder, const std::string& name) {
  for (Layer& layer : *builder.mutable_model().mutable_layers()) {
    if (layer.name() == name) return &layer;
  }
  return nullptr;
}

TEST(KerasGraphSpecTest, BuildsTinyModel) {
  const absl::StatusOr<GraphSpec> spec = BuildFromBuilder(TinyModel(), "tiny.pkm");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "tiny");
  EXPECT_EQ(spec->input_height, 7);
  EXPECT_EQ(spec->input_width, 6);
  EXPECT_EQ(spec->input_channels, 3);

  auto shape_of = [&](const std::string& name) {
    return spec->native_shapes[spec->layer_index.at(name)];
  };
  EXPECT_EQ(shape_of("pad"), (Shape{3, 8, 7}));
  EXPECT_EQ(shape_of("conv_a"), (Shape{4, 4, 4}));
  EXPECT_EQ(shape_of("dw"), (Shape{8, 4, 4}));
  EXPECT_EQ(shape_of("max"), (Shape{8, 2, 2}));
  EXPECT_EQ(shape_of("sub"), (Shape{4, 2, 2}));
  EXPECT_EQ(shape_of("cat"), (Shape{20, 2, 2}));
  EXPECT_EQ(shape_of("head_pool"), (Shape{20, 2, 1}));
  EXPECT_EQ(shape_of("flat"), (Shape{40}));
  EXPECT_EQ(shape_of("out"), (Shape{3}));

  const LayerSpec& sub = spec->layers[spec->layer_index.at("sub")];
  EXPECT_EQ(sub.strides, (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(sub.padding, Padding::kValid);
  const LayerSpec& bn_b = spec->layers[spec->layer_index.at("bn_b")];
  EXPECT_FALSE(bn_b.scale);
  EXPECT_EQ(bn_b.weights.count("gamma"), 0u);
  EXPECT_EQ(bn_b.input_channels, 8);
  const LayerSpec& leaky = spec->layers[spec->layer_index.at("leaky")];
  EXPECT_FALSE(leaky.max_value.has_value());
  EXPECT_FLOAT_EQ(leaky.threshold, 0.5);
}

TEST(KerasGraphSpecTest, SamePaddingFollowsTensorFlow) {
  // {before, after}: the odd pixel goes after.
  EXPECT_EQ(SamePadding(8, 3, 2, 1), (std::array<int64_t, 2>{0, 1}));
  EXPECT_EQ(SamePadding(7, 3, 2, 1), (std::array<int64_t, 2>{1, 1}));
  EXPECT_EQ(SamePadding(4, 3, 1, 1), (std::array<int64_t, 2>{1, 1}));
  EXPECT_EQ(SamePadding(4, 3, 1, 2), (std::array<int64_t, 2>{2, 2}));
  EXPECT_EQ(SamePadding(5, 1, 1, 1), (std::array<int64_t, 2>{0, 0}));
  EXPECT_EQ(SamePadding(4, 2, 2, 1), (std::array<int64_t, 2>{0, 0}));
  EXPECT_EQ(SamePadding(17, 8, 8, 1), (std::array<int64_t, 2>{3, 4}));
}

TEST(KerasGraphSpecTest, InfersShapesAtOtherSizes) {
  const absl::StatusOr<GraphSpec> spec = BuildFromBuilder(TinyModel(), "tiny.pkm");
  ASSERT_TRUE(spec.ok()) << spec.status();
  std::vector<bool> needed(spec->layers.size(), false);
  for (int i = 0; i <= spec->layer_index.at("act"); ++i) needed[i] = true;

  const absl::StatusOr<std::vector<Shape>> shapes = InferShapes(*spec, 15, 15, needed);
  ASSERT_TRUE(shapes.ok()) << shapes.status();
  EXPECT_EQ((*shapes)[spec->layer_index.at("conv_a")], (Shape{4, 8, 8}));
  EXPECT_EQ((*shapes)[spec->layer_index.at("act")], (Shape{20, 4, 4}));
  EXPECT_TRUE((*shapes)[spec->layer_index.at("out")].empty());
}

TEST(KerasGraphSpecTest, HeadAtOtherSizeIsInvalidArgument) {
  const absl::StatusOr<GraphSpec> spec = BuildFromBuilder(TinyModel(), "tiny.pkm");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::vector<bool> needed(spec->layers.size(), true);
  const absl::StatusOr<std::vector<Shape>> shapes = InferShapes(*spec, 15, 15, needed);
  ASSERT_FALSE(shapes.ok());
  EXPECT_EQ(shapes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(shapes.status().message(), "layer 'hidden' (Dense)"))
      << shapes.status();
  EXPECT_TRUE(absl::StrContains(shapes.status().message(), "expects 40 input units, but its input has 160"))
      << shapes.status();
}

TEST(KerasGraphSpecTest, TooSmallInputNamesLayer) {
  const absl::StatusOr<GraphSpec> spec = BuildFromBuilder(TinyModel(), "tiny.pkm");
  ASSERT_TRUE(spec.ok()) << spec.status();
  std::vector<bool> needed(spec->layers.size(), false);
  for (int i = 0; i <= spec->layer_index.at("sub"); ++i) needed[i] = true;
  // 1x1 input: conv_a gives 1x1, "sub" pools 2x2 windows.
  const absl::StatusOr<std::vector<Shape>> shapes = InferShapes(*spec, 1, 1, needed);
  ASSERT_FALSE(shapes.ok());
  EXPECT_TRUE(absl::StrContains(shapes.status().message(), "layer 'sub' (MaxPooling2D)"))
      << shapes.status();
  EXPECT_TRUE(absl::StrContains(shapes.status().message(), "network input 1x1"))
      << shapes.status();

  EXPECT_FALSE(InferShapes(*spec, 0, 5, needed).ok());
  EXPECT_FALSE(InferShapes(*spec, 5, 5, std::vector<bool>(3, true)).ok());
}

TEST(KerasGraphSpecTest, UnknownLayerClassIsInvalidArgument) {
  ModelBuilder builder = TinyModel();
  FindLayer(builder, "leaky")->set_class_name("LeakyReLU");
  ExpectInvalid(builder, {"layer 'leaky' (LeakyReLU)", "not supported", "Conv2D"});
}

TEST(KerasGraphSpecTest, MisShapedWeightIsInvalidArgument) {
  ModelBuilder builder = TinyModel();
  // Same element count as the right shape, so the file stays consistent.
  Weight* kernel = builder.mutable_model().mutable_weights(0);
  ASSERT_EQ(kernel->name(), "conv_a/kernel");
  kernel->set_shape(0, 4);
  kernel->set_shape(3, 3);
  ExpectInvalid(builder, {"layer 'conv_a' (Conv2D)",
                          "weight \"conv_a/kernel\" has shape [4, 3, 3, 3]",
                          "expected [3, 3, 3, 4]", "input shape [3, 8, 7]"});
}

TEST(KerasGraphSpecTest, MissingWeightIsInvalidArgument) {
  ModelBuilder builder = TinyModel();
  Layer* proj = FindLayer(builder, "proj");
  proj->set_use_bias(true);
  ExpectInvalid(builder, {"layer 'proj' (Conv2D)", "weight \"proj/bias\" of shape [8] is missing"});
}

TEST(KerasGraphSpecTest, UnusedWeightIsInvalidArgument) {
  ModelBuilder builder = TinyModel();
  builder.AddWeight("act", "kernel", {2});
  ExpectInvalid(builder, {"weight \"act/kernel\" is not a variable of any layer"});
}

TEST(KerasGraphSpecTest, ScaleWithoutGammaIsInvalidArgument) {
  ModelBuilder builder = TinyModel();
  FindLayer(builder, "bn_b")->set_scale(true);
  ExpectInvalid(builder, {"layer 'bn_b' (BatchNormalization)", "\"bn_b/gamma\""});
}

TEST(KerasGraphSpecTest, InputMustBeEarlierLayer) {
  ModelBuilder builder = TinyModel();
  FindLayer(builder, "conv_a")->set_inbound(0, "sum");
  ExpectInvalid(builder, {"layer 'conv_a'", "input 'sum' is not an earlier layer"});
}

TEST(KerasGraphSpecTest, DuplicateLayerNameIsInvalidArgument) {
  ModelBuilder builder = TinyModel();
  FindLayer(builder, "avg3")->set_name("avg");
  ExpectInvalid(builder, {"layer 'avg'", "occurs twice"});
}

TEST(KerasGraphSpecTest, InvalidSettingsAreInvalidArgument) {
  {
    ModelBuilder builder = TinyModel();
    FindLayer(builder, "conv_a")->set_padding("causal");
    ExpectInvalid(builder, {"layer 'conv_a'", "padding \"causal\""});
  }
  {
    ModelBuilder builder = TinyModel();
    FindLayer(builder, "act")->set_activation("gelu");
    ExpectInvalid(builder, {"layer 'act'", "activation \"gelu\""});
  }
  {
    ModelBuilder builder = TinyModel();
    FindLayer(builder, "cat")->set_axis(1);
    ExpectInvalid(builder, {"layer 'cat'", "axis 1 is not supported"});
  }
  {
    ModelBuilder builder = TinyModel();
    FindLayer(builder, "sum")->clear_inbound();
    FindLayer(builder, "sum")->add_inbound("bn_b");
    ExpectInvalid(builder, {"layer 'sum' (Add)", "needs at least 2 inputs"});
  }
  {
    ModelBuilder builder = TinyModel();
    FindLayer(builder, "sum")->set_inbound(1, "conv_a");
    ExpectInvalid(builder, {"layer 'sum' (Add)", "different shapes [8, 4, 4] and [4, 4, 4]"});
  }
  {
    ModelBuilder builder = TinyModel();
    FindLayer(builder, "dil")->clear_kernel_size();
    ExpectInvalid(builder, {"layer 'dil'", "kernel_size is missing"});
  }
  {
    ModelBuilder builder = TinyModel();
    FindLayer(builder, "max")->set_pool_size(0, 0);
    ExpectInvalid(builder, {"layer 'max'", "pool_size must be two positive integers"});
  }
  {
    ModelBuilder builder = TinyModel();
    FindLayer(builder, "pad")->set_zero_padding(2, -1);
    ExpectInvalid(builder, {"layer 'pad'", "zero_padding must not be negative"});
  }
  {
    ModelBuilder builder = TinyModel();
    builder.mutable_model().set_input_shape(2, 0);
    ExpectInvalid(builder, {"input_shape must be three positive integers"});
  }
  {
    ModelBuilder builder = TinyModel();
    builder.mutable_model().mutable_layers()->SwapElements(0, 1);
    ExpectInvalid(builder, {"must be the InputLayer"});
  }
}

TEST(KerasGraphSpecTest, DenseOnImageMapIsInvalidArgument) {
  ModelBuilder builder = TinyModel();
  FindLayer(builder, "hidden")->set_inbound(0, "head_pool");
  ExpectInvalid(builder, {"layer 'hidden' (Dense)", "needs a vector input [D]", "[20, 2, 1]"});
}

}  // namespace
}  // namespace panda::keras
