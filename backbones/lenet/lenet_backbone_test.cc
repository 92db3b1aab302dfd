// The plugin through the registry. Reference outputs come from PyTorch 1.13
// running Ruff et al.'s MNIST_LeNet (the Deep-SVDD-PyTorch network) with the
// patterned weights and input of PatternTensor.
#include "backbones/lenet/lenet_backbone.h"

#include <cmath>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backbones/backbone.h"
#include "backbones/lenet/lenet_backbone_options.pb.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "torch/serialize/output-archive.h"
#include "torch/torch.h"

namespace panda {
namespace {

google::protobuf::Any PackOptions(const std::string& text) {
  LenetBackboneOptions options;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &options)) << text;
  google::protobuf::Any any;
  any.PackFrom(options);
  return any;
}

absl::StatusOr<std::unique_ptr<Backbone>> CreateFromText(const std::string& text) {
  return BackboneRegistry().Create("lenet", PackOptions(text));
}

std::unique_ptr<Backbone> CreateOrDie(const std::string& text) {
  absl::StatusOr<std::unique_ptr<Backbone>> backbone = CreateFromText(text);
  EXPECT_TRUE(backbone.ok()) << backbone.status();
  return backbone.ok() ? std::move(*backbone) : nullptr;
}

lenet::LeNet& Network(Backbone& backbone) {
  return static_cast<LenetBackbone&>(backbone).network();
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

torch::Tensor Parameter(lenet::LeNet& network, const std::string& name) {
  return network.named_parameters()[name];
}

// sin(i * frequency + phase) * scale over the flat index i, reshaped: the
// same pattern the PyTorch reference used.
torch::Tensor PatternTensor(const std::vector<int64_t>& shape, double frequency, double phase,
                            double scale) {
  int64_t count = 1;
  for (int64_t size : shape) count *= size;
  return (torch::sin(torch::arange(count, torch::kFloat32) * frequency + phase) * scale)
      .reshape(shape);
}

void SetPatternWeights(lenet::LeNet& network) {
  torch::NoGradGuard no_grad;
  Parameter(network, "conv1.weight").copy_(PatternTensor({8, 1, 5, 5}, 0.37, 0.0, 0.3));
  Parameter(network, "conv2.weight").copy_(PatternTensor({4, 8, 5, 5}, 0.11, 0.5, 0.1));
  Parameter(network, "fc1.weight").copy_(PatternTensor({32, 196}, 0.05, 1.0, 0.1));
}

torch::Tensor PatternInput() { return PatternTensor({2, 1, 28, 28}, 0.013, 0.2, 0.5) + 0.5; }

torch::Tensor Pooled(Backbone& backbone, const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  absl::StatusOr<TapMap> taps = backbone.Forward(input, {"pooled"});
  EXPECT_TRUE(taps.ok()) << taps.status();
  return taps.ok() ? taps->at("pooled") : torch::Tensor();
}

std::string TemporaryPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/", name);
}

void SaveModule(torch::nn::Module& module, const std::string& path) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  archive.save_to(path);
}

TEST(LenetBackboneTest, CreatesFromRegistryWithDefaults) {
  const absl::StatusOr<std::unique_ptr<Backbone>> backbone =
      BackboneRegistry().Create("lenet", google::protobuf::Any());
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  EXPECT_EQ((*backbone)->feature_dim(), 32);
  EXPECT_EQ((*backbone)->tap_names(), (std::vector<std::string>{"pooled", "conv1", "conv2"}));
  EXPECT_EQ((*backbone)->stage_names(), (std::vector<std::string>{"conv1", "conv2", "fc"}));
  const std::string fingerprint = (*backbone)->Fingerprint();
  EXPECT_TRUE(absl::StartsWith(fingerprint, "lenet/conv8-conv4-fc32/seed=0/input=28x28/fnv1a64="))
      << fingerprint;
  EXPECT_TRUE(absl::EndsWith(fingerprint, "/grey=mean/scale=unit/resize=bilinear"))
      << fingerprint;
  EXPECT_FALSE((*backbone)->module().is_training());
}

TEST(LenetBackboneTest, ForwardReturnsTapsAtTheirShapes) {
  std::unique_ptr<Backbone> backbone = CreateOrDie("");
  ASSERT_NE(backbone, nullptr);
  torch::NoGradGuard no_grad;
  const torch::Tensor input =
      backbone->Preprocess(torch::randint(0, 256, {2, 28, 28, 1}, torch::kByte));
  ASSERT_EQ(input.sizes(), (std::vector<int64_t>{2, 1, 28, 28}));
  const absl::StatusOr<TapMap> taps = backbone->Forward(input, backbone->tap_names());
  ASSERT_TRUE(taps.ok()) << taps.status();
  EXPECT_EQ(taps->at("pooled").sizes(), (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(taps->at("conv1").sizes(), (std::vector<int64_t>{2, 8, 14, 14}));
  EXPECT_EQ(taps->at("conv2").sizes(), (std::vector<int64_t>{2, 4, 7, 7}));

  const absl::StatusOr<TapMap> none = backbone->Forward(input, {});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST(LenetBackboneTest, OtherSizesChangeTapShapes) {
  std::unique_ptr<Backbone> backbone = CreateOrDie("input_size: 30 rep_dim: 16");
  ASSERT_NE(backbone, nullptr);
  EXPECT_EQ(backbone->feature_dim(), 16);
  // 30 -> 15 -> 7 after the two poolings, so fc reads 4 * 7 * 7 values.
  EXPECT_EQ(Parameter(Network(*backbone), "fc1.weight").sizes(),
            (std::vector<int64_t>{16, 196}));
  torch::NoGradGuard no_grad;
  const torch::Tensor input =
      backbone->Preprocess(torch::randint(0, 256, {3, 28, 28, 3}, torch::kByte));
  ASSERT_EQ(input.sizes(), (std::vector<int64_t>{3, 1, 30, 30}));
  const absl::StatusOr<TapMap> taps = backbone->Forward(input, {"conv2", "conv1", "pooled"});
  ASSERT_TRUE(taps.ok()) << taps.status();
  EXPECT_EQ(taps->at("pooled").sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(taps->at("conv1").sizes(), (std::vector<int64_t>{3, 8, 15, 15}));
  EXPECT_EQ(taps->at("conv2").sizes(), (std::vector<int64_t>{3, 4, 7, 7}));
}

TEST(LenetBackboneTest, HasNoBiasParameters) {
  std::unique_ptr<Backbone> backbone = CreateOrDie("");
  ASSERT_NE(backbone, nullptr);
  std::set<std::string> parameters;
  for (const auto& entry : backbone->module().named_parameters()) {
    EXPECT_FALSE(absl::EndsWith(entry.key(), "bias")) << entry.key();
    parameters.insert(entry.key());
  }
  EXPECT_EQ(parameters, (std::set<std::string>{"conv1.weight", "conv2.weight", "fc1.weight"}));
  std::set<std::string> buffers;
  for (const auto& entry : backbone->module().named_buffers()) buffers.insert(entry.key());
  EXPECT_EQ(buffers, (std::set<std::string>{"bn1.running_mean", "bn1.running_var",
                                            "bn1.num_batches_tracked", "bn2.running_mean",
                                            "bn2.running_var", "bn2.num_batches_tracked"}));
}

TEST(LenetBackboneTest, SeedDeterminesWeights) {
  torch::manual_seed(11);
  std::unique_ptr<Backbone> first = CreateOrDie("seed: 7");
  torch::manual_seed(12);
  std::unique_ptr<Backbone> second = CreateOrDie("seed: 7");
  std::unique_ptr<Backbone> other = CreateOrDie("seed: 8");
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  ASSERT_NE(other, nullptr);
  for (const std::string name : {"conv1.weight", "conv2.weight", "fc1.weight"}) {
    EXPECT_TRUE(torch::equal(Parameter(Network(*first), name), Parameter(Network(*second), name)))
        << name;
    EXPECT_FALSE(torch::equal(Parameter(Network(*first), name), Parameter(Network(*other), name)))
        << name;
  }
  EXPECT_EQ(first->Fingerprint(), second->Fingerprint());
  EXPECT_NE(first->Fingerprint(), other->Fingerprint());
}

TEST(LenetBackboneTest, InitialWeightsSpanDefaultBounds) {
  std::unique_ptr<Backbone> backbone = CreateOrDie("");
  ASSERT_NE(backbone, nullptr);
  // LibTorch's default bound 1/sqrt(fan_in), with fan_in = 1 * 5 * 5,
  // 8 * 5 * 5 and 4 * 7 * 7.
  const std::vector<std::pair<std::string, double>> bounds = {
      {"conv1.weight", 1 / std::sqrt(25.0)},
      {"conv2.weight", 1 / std::sqrt(200.0)},
      {"fc1.weight", 1 / std::sqrt(196.0)},
  };
  for (const auto& [name, bound] : bounds) {
    const double largest = Parameter(Network(*backbone), name).abs().max().item<double>();
    EXPECT_LE(largest, bound) << name;
    EXPECT_GT(largest, 0.9 * bound) << name;
  }
}

TEST(LenetBackboneTest, MatchesPytorchReference) {
  std::unique_ptr<Backbone> backbone = CreateOrDie("");
  ASSERT_NE(backbone, nullptr);
  lenet::LeNet& network = Network(*backbone);
  SetPatternWeights(network);
  const torch::Tensor input = PatternInput();

  // Eval mode normalises with the initial statistics (mean 0, variance 1).
  const torch::Tensor eval = Pooled(*backbone, input);
  ASSERT_TRUE(eval.defined());
  const torch::Tensor expected_eval_first = torch::tensor(
      {15.544940948486328, -15.121444702148438, 12.593840599060059, -8.313838005065918});
  const torch::Tensor expected_eval_last = torch::tensor(
      {-8.914566040039062, 4.276825904846191, 0.9560211896896362, -6.055843830108643});
  EXPECT_TRUE(torch::allclose(eval[0].slice(0, 0, 4), expected_eval_first, 1e-4, 1e-4))
      << eval[0].slice(0, 0, 4);
  EXPECT_TRUE(torch::allclose(eval[1].slice(0, 28, 32), expected_eval_last, 1e-4, 1e-4))
      << eval[1].slice(0, 28, 32);

  // Training mode normalises with the batch statistics, where eps = 1e-4
  // matters, and updates the running statistics with momentum 0.1.
  backbone->module().train();
  const torch::Tensor train = Pooled(*backbone, input);
  ASSERT_TRUE(train.defined());
  const torch::Tensor expected_train_first = torch::tensor(
      {2.9075427055358887, -2.247903347015381, 1.275474190711975, -0.12556485831737518});
  const torch::Tensor expected_train_last = torch::tensor(
      {1.580536127090454, -1.4399175643920898, 1.0989350080490112, -0.6050409078598022});
  EXPECT_TRUE(torch::allclose(train[0].slice(0, 0, 4), expected_train_first, 1e-4, 1e-4))
      << train[0].slice(0, 0, 4);
  EXPECT_TRUE(torch::allclose(train[1].slice(0, 28, 32), expected_train_last, 1e-4, 1e-4))
      << train[1].slice(0, 28, 32);

  const torch::Tensor expected_bn1_mean =
      torch::tensor({0.07099596410989761, -0.0664859339594841, 0.0599500946700573,
                     -0.05158761888742447, 0.041653238236904144, -0.03044973313808441,
                     0.018318485468626022, -0.005629053805023432});
  const torch::Tensor expected_bn2_variance = torch::tensor(
      {1.4347556829452515, 1.4353606700897217, 1.435975193977356, 1.436598300933838});
  auto buffers = network.named_buffers();
  EXPECT_TRUE(torch::allclose(buffers["bn1.running_mean"], expected_bn1_mean, 1e-4, 1e-5))
      << buffers["bn1.running_mean"];
  EXPECT_TRUE(torch::allclose(buffers["bn2.running_var"], expected_bn2_variance, 1e-4, 1e-5))
      << buffers["bn2.running_var"];
}

TEST(LenetBackboneTest, PreprocessAveragesRgbChannels) {
  std::unique_ptr<Backbone> backbone = CreateOrDie("input_size: 4");
  ASSERT_NE(backbone, nullptr);
  // A 4x4 image needs no resizing, so each output is the channel mean / 255.
  torch::Tensor images = torch::zeros({1, 4, 4, 3}, torch::kByte);
  images[0][0][0] = torch::tensor({255, 255, 255}, torch::kByte);
  images[0][0][1] = torch::tensor({255, 0, 0}, torch::kByte);
  images[0][3][2] = torch::tensor({0, 51, 102}, torch::kByte);
  const torch::Tensor input = backbone->Preprocess(images);
  ASSERT_EQ(input.sizes(), (std::vector<int64_t>{1, 1, 4, 4}));
  EXPECT_EQ(input.scalar_type(), torch::kFloat32);
  EXPECT_FLOAT_EQ(input[0][0][0][0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(input[0][0][0][1].item<float>(), 1.0f / 3);
  EXPECT_FLOAT_EQ(input[0][0][3][2].item<float>(), 0.2f);
  EXPECT_FLOAT_EQ(input[0][0][2][2].item<float>(), 0.0f);

  const torch::Tensor grey = torch::full({1, 4, 4, 1}, 51, torch::kByte);
  EXPECT_TRUE(torch::allclose(backbone->Preprocess(grey), torch::full({1, 1, 4, 4}, 0.2f)));
}

TEST(LenetBackboneTest, PreprocessResizesTwoByTwoRgbImage) {
  std::unique_ptr<Backbone> backbone = CreateOrDie("input_size: 4");
  ASSERT_NE(backbone, nullptr);
  // Grey values: black 0, white 1, red 1/3, (0, 51, 102) 0.2.
  torch::Tensor images = torch::zeros({1, 2, 2, 3}, torch::kByte);
  images[0][0][1] = torch::tensor({255, 255, 255}, torch::kByte);
  images[0][1][0] = torch::tensor({255, 0, 0}, torch::kByte);
  images[0][1][1] = torch::tensor({0, 51, 102}, torch::kByte);
  const torch::Tensor input = backbone->Preprocess(images);
  ASSERT_EQ(input.sizes(), (std::vector<int64_t>{1, 1, 4, 4}));

  // Bilinear 2 -> 4 without aligned corners samples source positions
  // -0.25 (clamped to 0), 0.25, 0.75 and 1.25 (clamped to 1), so each axis
  // weights the two pixels (1, 0), (3/4, 1/4), (1/4, 3/4) and (0, 1).
  const double top[4] = {0, 0.25, 0.75, 1};
  const double bottom[4] = {1.0 / 3, 0.75 / 3 + 0.25 * 0.2, 0.25 / 3 + 0.75 * 0.2, 0.2};
  const double row_weight[4] = {0, 0.25, 0.75, 1};
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) {
      const double expected = (1 - row_weight[y]) * top[x] + row_weight[y] * bottom[x];
      EXPECT_NEAR(input[0][0][y][x].item<float>(), expected, 1e-6) << "at " << y << ", " << x;
    }
  }
}

TEST(LenetBackboneTest, SetTrainableFromFreezesEarlierStages) {
  std::unique_ptr<Backbone> backbone = CreateOrDie("");
  ASSERT_NE(backbone, nullptr);
  lenet::LeNet& network = Network(*backbone);
  const struct {
    std::string stage;
    bool conv1;
    bool conv2;
    bool fc1;
  } cases[] = {
      {"conv2", false, true, true},
      {"fc", false, false, true},
      {"conv1", true, true, true},
  };
  for (const auto& c : cases) {
    ASSERT_TRUE(backbone->SetTrainableFrom(c.stage).ok()) << c.stage;
    EXPECT_EQ(Parameter(network, "conv1.weight").requires_grad(), c.conv1) << c.stage;
    EXPECT_EQ(Parameter(network, "conv2.weight").requires_grad(), c.conv2) << c.stage;
    EXPECT_EQ(Parameter(network, "fc1.weight").requires_grad(), c.fc1) << c.stage;
  }

  const absl::Status status = backbone->SetTrainableFrom("bn1");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE(absl::StrContains(status.message(),
                                "unknown LeNet stage \"bn1\"; valid stages are conv1, conv2, fc"))
      << status;
}

TEST(LenetBackboneTest, FrozenBatchNormUsesRunningStatistics) {
  std::unique_ptr<Backbone> backbone = CreateOrDie("");
  ASSERT_NE(backbone, nullptr);
  lenet::LeNet& network = Network(*backbone);
  SetPatternWeights(network);
  const torch::Tensor input = PatternInput();
  const torch::Tensor eval = Pooled(*backbone, input);

  ASSERT_TRUE(backbone->SetBatchNormFrozen(true).ok());
  backbone->module().train();
  EXPECT_TRUE(backbone->module().is_training());
  const torch::Tensor frozen = Pooled(*backbone, input);
  EXPECT_TRUE(torch::equal(frozen, eval));
  auto buffers = network.named_buffers();
  EXPECT_TRUE(torch::equal(buffers["bn1.running_mean"], torch::zeros({8})));
  EXPECT_TRUE(torch::equal(buffers["bn2.running_var"], torch::ones({4})));
  EXPECT_EQ(buffers["bn1.num_batches_tracked"].item<int64_t>(), 0);

  ASSERT_TRUE(backbone->SetBatchNormFrozen(false).ok());
  const torch::Tensor unfrozen = Pooled(*backbone, input);
  EXPECT_FALSE(torch::allclose(unfrozen, eval, 1e-3, 1e-3));
  EXPECT_FALSE(torch::equal(buffers["bn1.running_mean"], torch::zeros({8})));
  EXPECT_EQ(buffers["bn1.num_batches_tracked"].item<int64_t>(), 1);
}

TEST(LenetBackboneTest, InvalidOptionsAreRejected) {
  ExpectError(CreateFromText("input_size: -28"), absl::StatusCode::kInvalidArgument,
              {"lenet backbone: input_size must be at least 4", "got -28"});
  ExpectError(CreateFromText("input_size: 3"), absl::StatusCode::kInvalidArgument,
              {"input_size must be at least 4", "got 3"});
  ExpectError(CreateFromText("rep_dim: 0"), absl::StatusCode::kInvalidArgument,
              {"rep_dim must be positive, got 0"});

  google::protobuf::Any wrong_type;
  wrong_type.set_type_url("type.googleapis.com/panda.KerasBackboneOptions");
  ExpectError(BackboneRegistry().Create("lenet", wrong_type), absl::StatusCode::kInvalidArgument,
              {"plugin \"lenet\" takes options of type panda.LenetBackboneOptions",
               "panda.KerasBackboneOptions"});
}

TEST(LenetBackboneTest, BadForwardArgumentsAreInvalidArgument) {
  std::unique_ptr<Backbone> backbone = CreateOrDie("");
  ASSERT_NE(backbone, nullptr);
  absl::StatusOr<TapMap> taps = backbone->Forward(torch::zeros({1, 1, 28, 28}), {"fc1"});
  ASSERT_FALSE(taps.ok());
  EXPECT_EQ(taps.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(taps.status().message(),
                                "unknown tap \"fc1\"; valid taps are pooled, conv1, conv2"))
      << taps.status();

  for (const torch::Tensor& input :
       {torch::zeros({1, 3, 28, 28}), torch::zeros({1, 1, 32, 32}), torch::zeros({1, 28, 28}),
        torch::zeros({1, 1, 28, 28}, torch::kFloat64), torch::Tensor()}) {
    taps = backbone->Forward(input, {"pooled"});
    ASSERT_FALSE(taps.ok());
    EXPECT_EQ(taps.status().code(), absl::StatusCode::kInvalidArgument) << taps.status();
  }
}

TEST(LenetBackboneTest, LoadsWeightsFileSavedFromModule) {
  std::unique_ptr<Backbone> source = CreateOrDie("seed: 5");
  ASSERT_NE(source, nullptr);
  // Moved running statistics show that buffers load too.
  source->module().train();
  Pooled(*source, PatternInput());
  source->module().eval();
  const std::string path = TemporaryPath("lenet_seed5.pt");
  SaveModule(source->module(), path);

  std::unique_ptr<Backbone> loaded = CreateOrDie(absl::StrCat("weights_file: \"", path, "\""));
  ASSERT_NE(loaded, nullptr);
  auto expected = source->module().named_parameters();
  for (const auto& entry : loaded->module().named_parameters()) {
    EXPECT_TRUE(torch::equal(entry.value(), expected[entry.key()])) << entry.key();
  }
  auto expected_buffers = source->module().named_buffers();
  for (const auto& entry : loaded->module().named_buffers()) {
    EXPECT_TRUE(torch::equal(entry.value(), expected_buffers[entry.key()])) << entry.key();
  }
  EXPECT_TRUE(torch::equal(Pooled(*loaded, PatternInput()), Pooled(*source, PatternInput())));

  const std::string fingerprint = loaded->Fingerprint();
  EXPECT_TRUE(absl::StartsWith(fingerprint, "lenet/conv8-conv4-fc32/weights_file/input=28x28/"))
      << fingerprint;
  std::unique_ptr<Backbone> reloaded = CreateOrDie(absl::StrCat("weights_file: \"", path, "\""));
  ASSERT_NE(reloaded, nullptr);
  EXPECT_EQ(reloaded->Fingerprint(), fingerprint);
  // The file holds seed 5's weights with other BatchNorm statistics, so only
  // the checksum tells the two apart.
  const std::string checksum = fingerprint.substr(fingerprint.find("/fnv1a64="));
  EXPECT_FALSE(absl::StrContains(source->Fingerprint(), checksum)) << source->Fingerprint();
}

TEST(LenetBackboneTest, BadWeightsFilesAreRejected) {
  ExpectError(CreateFromText("weights_file: \"no/such/lenet.pt\""), absl::StatusCode::kNotFound,
              {"lenet backbone: weights_file not found: no/such/lenet.pt"});

  const std::string garbage = TemporaryPath("lenet_garbage.pt");
  {
    std::ofstream stream(garbage, std::ios::binary);
    stream << "not a torch::save archive";
  }
  ExpectError(CreateFromText(absl::StrCat("weights_file: \"", garbage, "\"")),
              absl::StatusCode::kDataLoss,
              {"cannot read", garbage, "as a module saved by torch::save"});

  lenet::LeNet smaller(28, 16, 0);
  const std::string smaller_path = TemporaryPath("lenet_rep16.pt");
  SaveModule(smaller, smaller_path);
  ExpectError(CreateFromText(absl::StrCat("weights_file: \"", smaller_path, "\"")),
              absl::StatusCode::kInvalidArgument,
              {"does not hold a LeNet for input_size 28 and rep_dim 32",
               "fc1.weight is Float [16, 196] in the file but Float [32, 196] in the network"});

  lenet::LeNet with_extra(28, 32, 0);
  with_extra.register_parameter("fc1_bias", torch::zeros({32}));
  const std::string extra_path = TemporaryPath("lenet_extra.pt");
  SaveModule(with_extra, extra_path);
  ExpectError(CreateFromText(absl::StrCat("weights_file: \"", extra_path, "\"")),
              absl::StatusCode::kInvalidArgument, {"unexpected fc1_bias"});

  torch::nn::Linear unrelated(3, 2);
  const std::string unrelated_path = TemporaryPath("lenet_unrelated.pt");
  SaveModule(*unrelated, unrelated_path);
  ExpectError(CreateFromText(absl::StrCat("weights_file: \"", unrelated_path, "\"")),
              absl::StatusCode::kInvalidArgument,
              {"missing bn1.num_batches_tracked", "unexpected bias, weight"});
}

}  // namespace
}  // namespace panda
