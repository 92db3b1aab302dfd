// Checks KerasGraph against a reference written with plain loops over NHWC
// arrays in double precision, following Keras's and TensorFlow's definitions
// directly rather than LibTorch's operators.
#include "backbones/keras/keras_graph.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "backbones/keras/keras_test_models.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda::keras {
namespace {

using ::panda::keras::testing::ModelBuilder;
using ::panda::keras::testing::TinyModel;

// A batch of NHWC feature maps. Vectors are maps with h = w = 1.
struct Map {
  int n = 0;
  int h = 0;
  int w = 0;
  int c = 0;
  std::vector<double> values;

  Map() = default;
  Map(int n_, int h_, int w_, int c_)
      : n(n_), h(h_), w(w_), c(c_), values(static_cast<size_t>(n_) * h_ * w_ * c_, 0.0) {}

  double& at(int b, int y, int x, int k) {
    return values[((static_cast<size_t>(b) * h + y) * w + x) * c + k];
  }
  double at(int b, int y, int x, int k) const {
    return values[((static_cast<size_t>(b) * h + y) * w + x) * c + k];
  }
};

// TensorFlow "same": ceil(size / stride) outputs, padding split with the odd
// pixel after. Returns the padding before.
int SamePaddingBefore(int size, int kernel, int stride, int dilation) {
  const int output = (size + stride - 1) / stride;
  const int needed = (output - 1) * stride + (kernel - 1) * dilation + 1;
  return std::max(needed - size, 0) / 2;
}

int OutputSize(int size, int kernel, int stride, int dilation, bool same) {
  if (same) return (size + stride - 1) / stride;
  return (size - ((kernel - 1) * dilation + 1)) / stride + 1;
}

Map Pad(const Map& in, int top, int bottom, int left, int right) {
  Map out(in.n, in.h + top + bottom, in.w + left + right, in.c);
  for (int b = 0; b < in.n; ++b)
    for (int y = 0; y < in.h; ++y)
      for (int x = 0; x < in.w; ++x)
        for (int k = 0; k < in.c; ++k) out.at(b, y + top, x + left, k) = in.at(b, y, x, k);
  return out;
}

struct ConvSettings {
  int kernel = 1;
  int stride = 1;
  int dilation = 1;
  bool same = false;
  // Depth multiplier of a depthwise convolution, or 0 for a regular one.
  int depth_multiplier = 0;
};

// `kernel` is HWIO for a regular convolution and HWCM for a depthwise one.
Map Convolve(const Map& in, const std::vector<float>& kernel,
             const std::vector<float>* bias, int out_channels,
             const ConvSettings& s) {
  const int oh = OutputSize(in.h, s.kernel, s.stride, s.dilation, s.same);
  const int ow = OutputSize(in.w, s.kernel, s.stride, s.dilation, s.same);
  const int top = s.same ? SamePaddingBefore(in.h, s.kernel, s.stride, s.dilation) : 0;
  const int left = s.same ? SamePaddingBefore(in.w, s.kernel, s.stride, s.dilation) : 0;
  Map out(in.n, oh, ow, out_channels);
  for (int b = 0; b < in.n; ++b)
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox)
        for (int oc = 0; oc < out_channels; ++oc) {
          double sum = bias != nullptr ? (*bias)[oc] : 0.0;
          for (int ky = 0; ky < s.kernel; ++ky)
            for (int kx = 0; kx < s.kernel; ++kx) {
              const int y = oy * s.stride - top + ky * s.dilation;
              const int x = ox * s.stride - left + kx * s.dilation;
              if (y < 0 || y >= in.h || x < 0 || x >= in.w) continue;
              const size_t tap = static_cast<size_t>(ky) * s.kernel + kx;
              if (s.depth_multiplier == 0) {
                for (int ic = 0; ic < in.c; ++ic) {
                  sum += in.at(b, y, x, ic) * kernel[(tap * in.c + ic) * out_channels + oc];
                }
              } else {
                const int ic = oc / s.depth_multiplier;
                const int m = oc % s.depth_multiplier;
                sum += in.at(b, y, x, ic) *
                       kernel[(tap * in.c + ic) * s.depth_multiplier + m];
              }
            }
          out.at(b, oy, ox, oc) = sum;
        }
  return out;
}

// Pools over the real pixels of each window: padding takes no part in the
// maximum or the mean, as in TensorFlow.
Map Pool(const Map& in, int pool_h, int pool_w, int stride_h, int stride_w,
         bool same, bool max) {
  const int oh = same ? (in.h + stride_h - 1) / stride_h : (in.h - pool_h) / stride_h + 1;
  const int ow = same ? (in.w + stride_w - 1) / stride_w : (in.w - pool_w) / stride_w + 1;
  const int top = same ? SamePaddingBefore(in.h, pool_h, stride_h, 1) : 0;
  const int left = same ? SamePaddingBefore(in.w, pool_w, stride_w, 1) : 0;
  Map out(in.n, oh, ow, in.c);
  for (int b = 0; b < in.n; ++b)
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox)
        for (int k = 0; k < in.c; ++k) {
          double result = max ? -std::numeric_limits<double>::infinity() : 0.0;
          int count = 0;
          for (int py = 0; py < pool_h; ++py)
            for (int px = 0; px < pool_w; ++px) {
              const int y = oy * stride_h - top + py;
              const int x = ox * stride_w - left + px;
              if (y < 0 || y >= in.h || x < 0 || x >= in.w) continue;
              const double value = in.at(b, y, x, k);
              result = max ? std::max(result, value) : result + value;
              ++count;
            }
          out.at(b, oy, ox, k) = max ? result : result / count;
        }
  return out;
}

Map BatchNormalize(const Map& in, const std::vector<float>* gamma,
                   const std::vector<float>& beta, const std::vector<float>& mean,
                   const std::vector<float>& variance, double epsilon) {
  Map out = in;
  for (size_t i = 0; i < out.values.size(); ++i) {
    const int k = static_cast<int>(i % in.c);
    const double scale = gamma != nullptr ? (*gamma)[k] : 1.0;
    out.values[i] = (in.values[i] - mean[k]) / std::sqrt(variance[k] + epsilon) * scale + beta[k];
  }
  return out;
}

template <typename Function>
Map Elementwise(const Map& in, Function function) {
  Map out = in;
  for (double& value : out.values) value = function(value);
  return out;
}

Map Add(const Map& a, const Map& b) {
  Map out = a;
  for (size_t i = 0; i < out.values.size(); ++i) out.values[i] += b.values[i];
  return out;
}

Map ConcatenateChannels(const std::vector<const Map*>& inputs) {
  int channels = 0;
  for (const Map* input : inputs) channels += input->c;
  const Map& first = *inputs[0];
  Map out(first.n, first.h, first.w, channels);
  for (int b = 0; b < first.n; ++b)
    for (int y = 0; y < first.h; ++y)
      for (int x = 0; x < first.w; ++x) {
        int offset = 0;
        for (const Map* input : inputs) {
          for (int k = 0; k < input->c; ++k) out.at(b, y, x, offset + k) = input->at(b, y, x, k);
          offset += input->c;
        }
      }
  return out;
}

// Keras Flatten: the NHWC order of the values is the flattened order.
Map Flatten(const Map& in) {
  Map out = in;
  out.c = in.h * in.w * in.c;
  out.h = 1;
  out.w = 1;
  return out;
}

Map Dense(const Map& in, const std::vector<float>& kernel, const std::vector<float>& bias) {
  const int units = static_cast<int>(bias.size());
  Map out(in.n, 1, 1, units);
  for (int b = 0; b < in.n; ++b)
    for (int j = 0; j < units; ++j) {
      double sum = bias[j];
      for (int i = 0; i < in.c; ++i) sum += in.at(b, 0, 0, i) * kernel[static_cast<size_t>(i) * units + j];
      out.at(b, 0, 0, j) = sum;
    }
  return out;
}

Map Softmax(const Map& in) {
  Map out = in;
  for (int b = 0; b < in.n; ++b) {
    double largest = -std::numeric_limits<double>::infinity();
    for (int k = 0; k < in.c; ++k) largest = std::max(largest, in.at(b, 0, 0, k));
    double total = 0;
    for (int k = 0; k < in.c; ++k) total += std::exp(in.at(b, 0, 0, k) - largest);
    for (int k = 0; k < in.c; ++k) out.at(b, 0, 0, k) = std::exp(in.at(b, 0, 0, k) - largest) / total;
  }
  return out;
}

double Relu(double x) { return std::max(x, 0.0); }
double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Runs TinyModel() with the loops above and returns the output of every layer.
std::map<std::string, Map> ReferenceOutputs(const ModelBuilder& model, const Map& input) {
  auto weight = [&](const std::string& name) -> const std::vector<float>& {
    return model.values(name);
  };

  std::map<std::string, Map> out;
  out["input"] = input;
  out["pad"] = Pad(input, 0, 1, 1, 0);
  out["conv_a"] = Convolve(out["pad"], weight("conv_a/kernel"), &weight("conv_a/bias"), 4,
                           {/*kernel=*/3, /*stride=*/2, /*dilation=*/1, /*same=*/true, 0});
  out["bn_a"] = BatchNormalize(out["conv_a"], &weight("bn_a/gamma"), weight("bn_a/beta"),
                               weight("bn_a/moving_mean"), weight("bn_a/moving_variance"),
                               static_cast<double>(0.01f));
  out["relu6"] = Elementwise(out["bn_a"], [](double x) { return std::min(std::max(x, 0.0), 6.0); });

  out["dw"] = Convolve(out["relu6"], weight("dw/depthwise_kernel"), &weight("dw/bias"), 8,
                       {3, 1, 1, true, /*depth_multiplier=*/2});
  out["bn_b"] = BatchNormalize(out["dw"], nullptr, weight("bn_b/beta"), weight("bn_b/moving_mean"),
                               weight("bn_b/moving_variance"), static_cast<double>(0.001f));
  out["proj"] = Elementwise(Convolve(out["relu6"], weight("proj/kernel"), nullptr, 8, {1, 1, 1, false, 0}),
                            Relu);
  out["sum"] = Add(out["bn_b"], out["proj"]);

  const double slope = static_cast<double>(0.1f);
  const double threshold = static_cast<double>(0.5f);
  out["leaky"] = Elementwise(out["sum"], [&](double x) {
    return x >= threshold ? x : slope * (x - threshold);
  });

  out["max"] = Pool(out["leaky"], 3, 3, 2, 2, /*same=*/true, /*max=*/true);
  out["avg"] = Pool(out["leaky"], 3, 3, 2, 2, /*same=*/true, /*max=*/false);
  out["avg3"] = Pool(out["leaky"], 3, 3, 1, 1, /*same=*/true, /*max=*/false);
  out["dil"] = Elementwise(Convolve(out["avg3"], weight("dil/kernel"), &weight("dil/bias"), 4,
                                    {3, 1, /*dilation=*/2, true, 0}),
                           Sigmoid);
  out["sub"] = Pool(out["dil"], 2, 2, 2, 2, /*same=*/false, /*max=*/true);
  out["cat"] = ConcatenateChannels({&out["max"], &out["avg"], &out["sub"]});
  out["act"] = Elementwise(out["cat"], [](double x) { return std::tanh(x); });

  out["head_pool"] = Pool(out["act"], 1, 2, 1, 2, /*same=*/false, /*max=*/false);
  out["flat"] = Flatten(out["head_pool"]);
  out["hidden"] = Elementwise(Dense(out["flat"], weight("hidden/kernel"), weight("hidden/bias")), Relu);
  out["drop"] = out["hidden"];
  out["out"] = Softmax(Dense(out["drop"], weight("out/kernel"), weight("out/bias")));
  return out;
}

Map MapFromTensor(const torch::Tensor& tensor) {
  torch::Tensor nhwc = tensor.dim() == 4 ? tensor.permute({0, 2, 3, 1}) : tensor.unsqueeze(1).unsqueeze(1);
  nhwc = nhwc.to(torch::kDouble).contiguous();
  Map map(nhwc.size(0), nhwc.size(1), nhwc.size(2), nhwc.size(3));
  std::copy(nhwc.data_ptr<double>(), nhwc.data_ptr<double>() + nhwc.numel(), map.values.begin());
  return map;
}

std::shared_ptr<KerasGraph> CreateGraph(const ModelBuilder& builder) {
  const std::string bytes = builder.Encode();
  std::istringstream stream(bytes);
  absl::StatusOr<ModelFile> file = ParseModelFile(stream, bytes.size(), "tiny.pkm");
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  absl::StatusOr<std::shared_ptr<KerasGraph>> graph = KerasGraph::Create(*file);
  EXPECT_TRUE(graph.ok()) << graph.status();
  if (!graph.ok()) return nullptr;
  (*graph)->eval();
  return *graph;
}

void ExpectMatchesReference(bool channels_last) {
  const ModelBuilder builder = TinyModel();
  const std::shared_ptr<KerasGraph> graph = CreateGraph(builder);
  ASSERT_NE(graph, nullptr);
  graph->SetChannelsLast(channels_last);

  torch::manual_seed(7);
  const torch::Tensor input = torch::rand({2, 3, 7, 6}) * 4 - 2;
  const std::map<std::string, Map> expected = ReferenceOutputs(builder, MapFromTensor(input));

  std::vector<int> indices;
  std::vector<std::string> names;
  for (const auto& [name, unused] : expected) {
    names.push_back(name);
    indices.push_back(graph->spec().layer_index.at(name));
  }
  torch::NoGradGuard no_grad;
  const absl::StatusOr<std::vector<torch::Tensor>> outputs = graph->Run(input, indices);
  ASSERT_TRUE(outputs.ok()) << outputs.status();

  for (size_t i = 0; i < names.size(); ++i) {
    SCOPED_TRACE("layer " + names[i]);
    const Map actual = MapFromTensor((*outputs)[i]);
    const Map& reference = expected.at(names[i]);
    ASSERT_EQ(actual.n, reference.n);
    ASSERT_EQ(actual.h, reference.h);
    ASSERT_EQ(actual.w, reference.w);
    ASSERT_EQ(actual.c, reference.c);
    double max_difference = 0;
    for (size_t j = 0; j < actual.values.size(); ++j) {
      max_difference = std::max(max_difference, std::abs(actual.values[j] - reference.values[j]));
    }
    EXPECT_LT(max_difference, 1e-5);
  }

  // The ReLU6 and leaky ReLU cases are exercised only if values reach them.
  const Map& bn_a = expected.at("bn_a");
  EXPECT_GT(*std::max_element(bn_a.values.begin(), bn_a.values.end()), 6.0);
  EXPECT_LT(*std::min_element(bn_a.values.begin(), bn_a.values.end()), 0.0);
  const Map& sum = expected.at("sum");
  EXPECT_LT(*std::min_element(sum.values.begin(), sum.values.end()), 0.5);
}

TEST(KerasGraphTest, MatchesLoopReferenceChannelsLast) { ExpectMatchesReference(true); }

TEST(KerasGraphTest, MatchesLoopReferenceContiguous) { ExpectMatchesReference(false); }

TEST(KerasGraphTest, NamesModulesAndParametersAfterKerasLayers) {
  const std::shared_ptr<KerasGraph> graph = CreateGraph(TinyModel());
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(graph->named_children().size(), graph->spec().layers.size());
  EXPECT_TRUE(graph->named_children().contains("drop"));

  const auto parameters = graph->named_parameters();
  ASSERT_TRUE(parameters.contains("conv_a.kernel"));
  EXPECT_EQ(parameters["conv_a.kernel"].sizes(), (std::vector<int64_t>{4, 3, 3, 3}));
  ASSERT_TRUE(parameters.contains("dw.depthwise_kernel"));
  EXPECT_EQ(parameters["dw.depthwise_kernel"].sizes(), (std::vector<int64_t>{8, 1, 3, 3}));
  ASSERT_TRUE(parameters.contains("hidden.kernel"));
  EXPECT_EQ(parameters["hidden.kernel"].sizes(), (std::vector<int64_t>{6, 40}));
  EXPECT_TRUE(parameters.contains("bn_a.gamma"));
  EXPECT_TRUE(parameters.contains("bn_b.beta"));
  EXPECT_FALSE(parameters.contains("bn_b.gamma"));
  EXPECT_FALSE(parameters.contains("proj.bias"));
  EXPECT_EQ(parameters.size(), 14u);

  const auto buffers = graph->named_buffers();
  EXPECT_TRUE(buffers.contains("bn_a.moving_mean"));
  EXPECT_TRUE(buffers.contains("bn_b.moving_variance"));
  EXPECT_EQ(buffers.size(), 4u);

  const KerasLayer& bn = graph->layer(graph->spec().layer_index.at("bn_a"));
  EXPECT_EQ(bn.spec().kind, LayerKind::kBatchNormalization);
}

TEST(KerasGraphTest, DotInLayerNameBecomesUnderscore) {
  ModelBuilder builder = TinyModel();
  for (Layer& layer : *builder.mutable_model().mutable_layers()) {
    if (layer.name() == "act") layer.set_name("act.1");
    if (layer.name() == "head_pool") layer.set_inbound(0, "act.1");
  }
  const std::shared_ptr<KerasGraph> graph = CreateGraph(builder);
  ASSERT_NE(graph, nullptr);
  EXPECT_TRUE(graph->named_children().contains("act_1"));
}

TEST(KerasGraphTest, ModuleNameCollisionIsInvalidArgument) {
  ModelBuilder builder = TinyModel();
  for (Layer& layer : *builder.mutable_model().mutable_layers()) {
    if (layer.name() == "act") layer.set_name("drop.x");
    if (layer.name() == "head_pool") layer.set_inbound(0, "drop.x");
    if (layer.name() == "drop") layer.set_name("drop_x");
    if (layer.name() == "out") layer.set_inbound(0, "drop_x");
  }
  const std::string bytes = builder.Encode();
  std::istringstream stream(bytes);
  const absl::StatusOr<ModelFile> file = ParseModelFile(stream, bytes.size(), "tiny.pkm");
  ASSERT_TRUE(file.ok()) << file.status();
  const absl::StatusOr<std::shared_ptr<KerasGraph>> graph = KerasGraph::Create(*file);
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(graph.status().message(), "'drop.x' and 'drop_x'"))
      << graph.status();
}

TEST(KerasGraphTest, RunRejectsInvalidInput) {
  const std::shared_ptr<KerasGraph> graph = CreateGraph(TinyModel());
  ASSERT_NE(graph, nullptr);
  const int last = static_cast<int>(graph->spec().layers.size()) - 1;
  torch::NoGradGuard no_grad;

  const std::vector<torch::Tensor> invalid_inputs = {
      torch::Tensor(), torch::zeros({1, 2, 7, 6}), torch::zeros({3, 7, 6}),
      torch::zeros({1, 3, 7, 6}, torch::kDouble)};
  for (const torch::Tensor& input : invalid_inputs) {
    const absl::StatusOr<std::vector<torch::Tensor>> outputs = graph->Run(input, {last});
    ASSERT_FALSE(outputs.ok());
    EXPECT_EQ(outputs.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(outputs.status().message(), "network input must be float32 [N, 3, H, W]"))
        << outputs.status();
  }

  const absl::StatusOr<std::vector<torch::Tensor>> outputs =
      graph->Run(torch::zeros({1, 3, 7, 6}), {last + 1});
  ASSERT_FALSE(outputs.ok());
  EXPECT_EQ(outputs.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KerasGraphTest, RunsOnlyLayersTheOutputsNeed) {
  const std::shared_ptr<KerasGraph> graph = CreateGraph(TinyModel());
  ASSERT_NE(graph, nullptr);
  torch::NoGradGuard no_grad;
  const torch::Tensor input = torch::rand({1, 3, 15, 15});

  // At 15x15 the Dense head cannot run, but the maps before it can.
  const absl::StatusOr<std::vector<torch::Tensor>> maps =
      graph->Run(input, {graph->spec().layer_index.at("act")});
  ASSERT_TRUE(maps.ok()) << maps.status();
  EXPECT_EQ((*maps)[0].sizes(), (std::vector<int64_t>{1, 20, 4, 4}));

  const absl::StatusOr<std::vector<torch::Tensor>> head =
      graph->Run(input, {graph->spec().layer_index.at("out")});
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(head.status().message(), "layer 'hidden' (Dense)")) << head.status();
}

TEST(KerasGraphTest, EvalKeepsMovingStatisticsAndTrainingUpdatesThem) {
  const std::shared_ptr<KerasGraph> graph = CreateGraph(TinyModel());
  ASSERT_NE(graph, nullptr);
  const int bn = graph->spec().layer_index.at("bn_a");
  const torch::Tensor before = graph->named_buffers()["bn_a.moving_mean"].clone();
  const torch::Tensor input = torch::rand({4, 3, 7, 6});

  ASSERT_TRUE(graph->Run(input, {bn}).ok());
  EXPECT_TRUE(torch::equal(graph->named_buffers()["bn_a.moving_mean"], before));

  graph->train();
  ASSERT_TRUE(graph->Run(input, {bn}).ok());
  EXPECT_FALSE(torch::equal(graph->named_buffers()["bn_a.moving_mean"], before));
}

}  // namespace
}  // namespace panda::keras
