#include "backbones/torchvision/resnet.h"

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "backbones/torchvision/test_files.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda::torchvision {
namespace {

using Shapes = std::map<std::string, std::vector<int64_t>>;

std::shared_ptr<ResNet> Build(const std::string& arch, int64_t num_classes = 1000) {
  absl::StatusOr<ResNetSpec> spec = FindResNetSpec(arch);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return std::make_shared<ResNet>(*spec, num_classes);
}

Shapes ModuleShapes(ResNet& network) {
  Shapes shapes;
  for (const auto& item : network.named_parameters()) shapes[item.key()] = item.value().sizes().vec();
  for (const auto& item : network.named_buffers()) shapes[item.key()] = item.value().sizes().vec();
  return shapes;
}

// data/fixtures/state_dict_keys.txt: "arch name d0,d1,..." per line, as
// torchvision's state_dict() lists them.
std::map<std::string, Shapes> ReadTorchvisionKeys() {
  const std::string path = testing::FixturePath("state_dict_keys.txt");
  std::ifstream stream(path);
  if (!stream) {
    ADD_FAILURE() << path << " is missing. Run ./setup.sh, which writes it with "
                  << "tools/make_torchvision_fixtures.py";
    return {};
  }
  std::map<std::string, Shapes> keys;
  std::string line;
  while (std::getline(stream, line)) {
    const std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() != 3) {
      ADD_FAILURE() << "malformed line in " << path << ": " << line;
      continue;
    }
    std::vector<int64_t> shape;
    for (absl::string_view dimension : absl::StrSplit(fields[2], ',', absl::SkipEmpty())) {
      shape.push_back(std::stoll(std::string(dimension)));
    }
    keys[fields[0]][fields[1]] = shape;
  }
  return keys;
}

TEST(ResNetTest, NamesAndShapesMatchTorchvision) {
  const std::map<std::string, Shapes> torchvision_keys = ReadTorchvisionKeys();
  ASSERT_EQ(torchvision_keys.size(), ResNetNames().size());
  for (const std::string& arch : ResNetNames()) {
    SCOPED_TRACE(arch);
    ASSERT_EQ(torchvision_keys.count(arch), 1u);
    const Shapes& expected = torchvision_keys.at(arch);
    const Shapes actual = ModuleShapes(*Build(arch));
    std::vector<std::string> differences;
    for (const auto& [name, shape] : expected) {
      auto found = actual.find(name);
      if (found == actual.end()) {
        differences.push_back("missing " + name);
      } else if (found->second != shape) {
        differences.push_back("shape of " + name);
      }
    }
    for (const auto& entry : actual) {
      if (expected.count(entry.first) == 0) differences.push_back("unexpected " + entry.first);
    }
    EXPECT_TRUE(differences.empty()) << absl::StrJoin(differences, "\n");
    EXPECT_EQ(actual.size(), expected.size());
  }
}

TEST(ResNetTest, ParameterCountsMatchPublishedFigures) {
  // torchvision 0.14's model documentation lists these parameter counts.
  const std::map<std::string, int64_t> published = {
      {"resnet18", 11689512},        {"resnet34", 21797672},
      {"resnet50", 25557032},        {"resnet101", 44549160},
      {"resnet152", 60192808},       {"wide_resnet50_2", 68883240},
      {"wide_resnet101_2", 126886696},
  };
  for (const auto& [arch, count] : published) {
    int64_t parameters = 0;
    for (const torch::Tensor& parameter : Build(arch)->parameters()) {
      parameters += parameter.numel();
    }
    EXPECT_EQ(parameters, count) << arch;
  }
}

TEST(ResNetTest, UnknownArchitectureListsValidOnes) {
  const absl::StatusOr<ResNetSpec> spec = FindResNetSpec("resnet51");
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(spec.status().message(),
                                "unknown ResNet architecture \"resnet51\"; valid architectures "
                                "are resnet18, resnet34, resnet50, resnet101, resnet152, "
                                "wide_resnet50_2, wide_resnet101_2"))
      << spec.status();
}

TEST(ResNetTest, RunReturnsRequestedOutputs) {
  const std::shared_ptr<ResNet> network = Build("resnet18", 10);
  network->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor input = torch::randn({2, 3, 64, 64});
  const std::vector<torch::Tensor> outputs = network->Run(
      input, {ResNetOutput::kLogits, ResNetOutput::kStem, ResNetOutput::kLayer1,
              ResNetOutput::kLayer2, ResNetOutput::kLayer3, ResNetOutput::kLayer4,
              ResNetOutput::kPooled});
  ASSERT_EQ(outputs.size(), 7u);
  EXPECT_EQ(outputs[0].sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(outputs[1].sizes(), (std::vector<int64_t>{2, 64, 16, 16}));
  EXPECT_EQ(outputs[2].sizes(), (std::vector<int64_t>{2, 64, 16, 16}));
  EXPECT_EQ(outputs[3].sizes(), (std::vector<int64_t>{2, 128, 8, 8}));
  EXPECT_EQ(outputs[4].sizes(), (std::vector<int64_t>{2, 256, 4, 4}));
  EXPECT_EQ(outputs[5].sizes(), (std::vector<int64_t>{2, 512, 2, 2}));
  EXPECT_EQ(outputs[6].sizes(), (std::vector<int64_t>{2, 512}));
  EXPECT_TRUE(torch::allclose(outputs[6], outputs[5].mean({2, 3}), 1e-5, 1e-6));
  auto parameters = network->named_parameters();
  EXPECT_TRUE(torch::allclose(
      outputs[0], torch::addmm(parameters["fc.bias"], outputs[6], parameters["fc.weight"].t()),
      1e-5, 1e-6));

  // Asking only for layer2 stops there, with the same result.
  const std::vector<torch::Tensor> shallow = network->Run(input, {ResNetOutput::kLayer2});
  EXPECT_TRUE(torch::equal(shallow[0], outputs[3]));
}

TEST(ResNetTest, ChannelsLastAgreesWithContiguous) {
  const std::shared_ptr<ResNet> network = Build("resnet50");
  network->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor input = torch::randn({2, 3, 64, 64});
  network->SetChannelsLast(false);
  const torch::Tensor contiguous = network->Run(input, {ResNetOutput::kLayer4})[0];
  network->SetChannelsLast(true);
  EXPECT_TRUE(network->named_parameters()["conv1.weight"].is_contiguous(
      torch::MemoryFormat::ChannelsLast));
  const torch::Tensor channels_last = network->Run(input, {ResNetOutput::kLayer4})[0];
  EXPECT_LT(testing::RelativeDifference(channels_last, contiguous), 1e-5);
}

TEST(ResNetTest, FrozenBatchNormKeepsStatisticsWhileTraining) {
  const std::shared_ptr<ResNet> network = Build("resnet18");
  const torch::Tensor input = torch::randn({4, 3, 32, 32});
  network->eval();
  torch::Tensor eval_output;
  {
    torch::NoGradGuard no_grad;
    eval_output = network->Run(input, {ResNetOutput::kPooled})[0];
  }
  const torch::Tensor mean_before = network->named_buffers()["bn1.running_mean"].clone();

  network->SetBatchNormFrozen(true);
  network->train();
  EXPECT_TRUE(network->is_training());
  EXPECT_FALSE(network->named_modules()["layer2.0.bn1"]->is_training());
  const torch::Tensor frozen_output = network->Run(input, {ResNetOutput::kPooled})[0];
  EXPECT_TRUE(torch::equal(network->named_buffers()["bn1.running_mean"], mean_before));
  EXPECT_TRUE(torch::allclose(frozen_output, eval_output, 1e-5, 1e-6));
  // Gradients still flow to the frozen BatchNorm's affine parameters.
  frozen_output.sum().backward();
  EXPECT_TRUE(network->named_parameters()["bn1.weight"].grad().defined());

  network->SetBatchNormFrozen(false);
  EXPECT_TRUE(network->named_modules()["layer2.0.bn1"]->is_training());
  network->Run(input, {ResNetOutput::kPooled});
  EXPECT_FALSE(torch::equal(network->named_buffers()["bn1.running_mean"], mean_before));
}

TEST(ResNetTest, TrainableFromFreezesEarlierStages) {
  const std::shared_ptr<ResNet> network = Build("resnet50");
  ASSERT_TRUE(network->SetTrainableFrom("layer3").ok());
  for (const auto& item : network->named_parameters()) {
    const bool trainable = absl::StartsWith(item.key(), "layer3.") ||
                           absl::StartsWith(item.key(), "layer4.") ||
                           absl::StartsWith(item.key(), "fc.");
    EXPECT_EQ(item.value().requires_grad(), trainable) << item.key();
  }
  ASSERT_TRUE(network->SetTrainableFrom("stem").ok());
  for (const torch::Tensor& parameter : network->parameters()) {
    EXPECT_TRUE(parameter.requires_grad());
  }

  const absl::Status status = network->SetTrainableFrom("layer5");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "unknown ResNet stage \"layer5\"; valid stages are stem, layer1, layer2, layer3, "
            "layer4");
}

}  // namespace
}  // namespace panda::torchvision
