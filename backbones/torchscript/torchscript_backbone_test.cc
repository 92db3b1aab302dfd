// The torchscript plugin on backbones/testdata/tiny_scripted.pt, a small
// scripted network whose outputs PyTorch recorded in
// tiny_scripted_outputs.pth (tools/make_torchvision_fixtures.py), and on
// torchvision's resnet18 scripted by ./setup.sh into data/fixtures/.
#include "backbones/torchscript/torchscript_backbone.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backbones/backbone.h"
#include "backbones/torchvision/test_files.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

using torchvision::testing::FixturePath;
using torchvision::testing::ReadFileBytes;
using torchvision::testing::ReadTensors;
using torchvision::testing::RelativeDifference;
using torchvision::testing::TestdataPath;
using torchvision::testing::WriteTemporaryFile;

constexpr double kTolerance = 1e-4;

const std::string& TinyModule() {
  static const auto* path = new std::string(TestdataPath("tiny_scripted.pt"));
  return *path;
}

absl::StatusOr<std::unique_ptr<Backbone>> CreateFromText(const std::string& text) {
  TorchscriptBackboneOptions options;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &options)) << text;
  google::protobuf::Any any;
  any.PackFrom(options);
  return BackboneRegistry().Create("torchscript", any);
}

std::string TinyOptions(const std::string& extra) {
  return absl::StrCat("module_file: \"", TinyModule(), "\" ", extra);
}

void ExpectError(const absl::StatusOr<std::unique_ptr<Backbone>>& backbone,
                 absl::StatusCode code, const std::string& part) {
  ASSERT_FALSE(backbone.ok()) << part;
  EXPECT_EQ(backbone.status().code(), code) << backbone.status();
  EXPECT_TRUE(absl::StrContains(backbone.status().message(), part))
      << "missing \"" << part << "\" in " << backbone.status();
}

std::map<std::string, torch::Tensor> TinyOutputs() {
  absl::StatusOr<std::map<std::string, torch::Tensor>> outputs =
      ReadTensors(TestdataPath("tiny_scripted_outputs.pth"));
  EXPECT_TRUE(outputs.ok()) << outputs.status();
  return outputs.ok() ? *outputs : std::map<std::string, torch::Tensor>();
}

TEST(TorchscriptBackboneTest, TapsMatchPyTorch) {
  const std::map<std::string, torch::Tensor> expected = TinyOutputs();
  ASSERT_FALSE(expected.empty());
  for (const char* channels_last : {"true", "false"}) {
    SCOPED_TRACE(channels_last);
    absl::StatusOr<std::unique_ptr<Backbone>> backbone = CreateFromText(TinyOptions(absl::StrCat(
        "taps { submodule: \"stem\" } taps { submodule: \"stem.1\" } "
        "taps { submodule: \"body\" } taps { submodule: \"body.bn\" } "
        "taps { name: \"embedding\" method: \"embed\" } channels_last: ",
        channels_last)));
    ASSERT_TRUE(backbone.ok()) << backbone.status();
    EXPECT_EQ((*backbone)->tap_names(),
              (std::vector<std::string>{"pooled", "output", "stem", "stem.1", "body", "body.bn",
                                        "embedding"}));
    // "pooled" is the forward output, the head's 2 logits.
    EXPECT_EQ((*backbone)->feature_dim(), 2);

    torch::NoGradGuard no_grad;
    const absl::StatusOr<TapMap> taps = (*backbone)->Forward(
        expected.at("input"),
        {"pooled", "output", "stem", "stem.1", "body", "body.bn", "embedding"});
    ASSERT_TRUE(taps.ok()) << taps.status();
    EXPECT_LE(RelativeDifference(taps->at("output"), expected.at("output")), kTolerance);
    EXPECT_LE(RelativeDifference(taps->at("pooled"), expected.at("output")), kTolerance);
    EXPECT_LE(RelativeDifference(taps->at("stem"), expected.at("stem")), kTolerance);
    EXPECT_LE(RelativeDifference(taps->at("stem.1"), expected.at("stem.1")), kTolerance);
    EXPECT_LE(RelativeDifference(taps->at("body"), expected.at("body")), kTolerance);
    // The block adds its input to bn's output in place afterwards; the tap
    // keeps bn's own output.
    EXPECT_LE(RelativeDifference(taps->at("body.bn"), expected.at("body.bn")), kTolerance);
    EXPECT_GT(RelativeDifference(taps->at("body.bn"), expected.at("body")), 0.01);
    EXPECT_LE(RelativeDifference(taps->at("embedding"), expected.at("embed")), kTolerance);

    // Only the method: forward does not run.
    const absl::StatusOr<TapMap> method_only =
        (*backbone)->Forward(expected.at("input"), {"embedding"});
    ASSERT_TRUE(method_only.ok()) << method_only.status();
    EXPECT_EQ(method_only->size(), 1u);
  }
}

TEST(TorchscriptBackboneTest, PooledAveragesTheNamedTap) {
  const std::map<std::string, torch::Tensor> expected = TinyOutputs();
  ASSERT_FALSE(expected.empty());
  absl::StatusOr<std::unique_ptr<Backbone>> backbone =
      CreateFromText(TinyOptions("taps { submodule: \"body\" } pooled_from: \"body\""));
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  EXPECT_EQ((*backbone)->feature_dim(), 4);
  torch::NoGradGuard no_grad;
  const absl::StatusOr<TapMap> taps = (*backbone)->Forward(expected.at("input"), {"pooled"});
  ASSERT_TRUE(taps.ok()) << taps.status();
  // The module's embed() method computes the same average.
  EXPECT_LE(RelativeDifference(taps->at("pooled"), expected.at("embed")), kTolerance);
  EXPECT_TRUE(absl::StrContains((*backbone)->Fingerprint(), "/pooled=body/"));
}

TEST(TorchscriptBackboneTest, UntappableSubmodulesAreExplained) {
  ExpectError(CreateFromText(TinyOptions("taps { submodule: \"shared\" }")),
              absl::StatusCode::kInvalidArgument,
              "submodule \"shared\" cannot be tapped: forward of the module calls it 2 times "
              "directly and 0 times inside branches or loops");
  ExpectError(CreateFromText(TinyOptions("taps { submodule: \"gate\" }")),
              absl::StatusCode::kInvalidArgument,
              "calls it 0 times directly and 1 times inside branches or loops");
  ExpectError(CreateFromText(TinyOptions("taps { submodule: \"neck\" }")),
              absl::StatusCode::kInvalidArgument,
              "no submodule \"neck\": the submodules of the module are stem, body, shared, gate, "
              "head");
  ExpectError(CreateFromText(TinyOptions("taps { submodule: \"stem.7\" }")),
              absl::StatusCode::kInvalidArgument,
              "no submodule \"stem.7\": the submodules of \"stem\" are 0, 1, 2");
  ExpectError(CreateFromText(TinyOptions("taps { submodule: \"stem..1\" }")),
              absl::StatusCode::kInvalidArgument, "invalid submodule path \"stem..1\"");
}

TEST(TorchscriptBackboneTest, InvalidOptionsAreRejected) {
  ExpectError(CreateFromText(""), absl::StatusCode::kInvalidArgument, "module_file is required");
  ExpectError(CreateFromText(TinyOptions("taps { name: \"x\" }")),
              absl::StatusCode::kInvalidArgument, "exactly one of submodule and method");
  ExpectError(CreateFromText(TinyOptions("taps { submodule: \"body\" method: \"embed\" }")),
              absl::StatusCode::kInvalidArgument, "exactly one of submodule and method");
  ExpectError(CreateFromText(TinyOptions("taps { method: \"features\" }")),
              absl::StatusCode::kInvalidArgument, "the module has no method \"features\"");
  ExpectError(CreateFromText(TinyOptions("taps { submodule: \"body\" } taps { method: \"body\" }")),
              absl::StatusCode::kInvalidArgument, "tap name \"body\" is used twice");
  ExpectError(CreateFromText(TinyOptions("taps { name: \"pooled\" submodule: \"body\" }")),
              absl::StatusCode::kInvalidArgument, "tap name \"pooled\" is reserved");
  ExpectError(CreateFromText(TinyOptions("pooled_from: \"body\"")),
              absl::StatusCode::kInvalidArgument,
              "pooled_from \"body\" names no tap; the taps are none");
  ExpectError(CreateFromText(TinyOptions("trainable_from: \"neck\"")),
              absl::StatusCode::kInvalidArgument,
              "trainable_from: unknown stage \"neck\"; the stages are the module's direct "
              "submodules: stem, body, shared, gate, head");
  ExpectError(CreateFromText(TinyOptions("preprocessing { resize: -2 }")),
              absl::StatusCode::kInvalidArgument, "preprocessing.resize must be 0");
}

TEST(TorchscriptBackboneTest, UnreadableFilesAreReported) {
  ExpectError(CreateFromText("module_file: \"no/such/module.pt\""), absl::StatusCode::kNotFound,
              "no/such/module.pt");
  ExpectError(
      CreateFromText(absl::StrCat("module_file: \"", TestdataPath("checkpoint_plain_dict.pth"),
                                  "\"")),
      absl::StatusCode::kInvalidArgument, "is not a TorchScript module");
  const std::string garbage = WriteTemporaryFile("garbage.pt", "this is not a zip archive");
  ExpectError(CreateFromText(absl::StrCat("module_file: \"", garbage, "\"")),
              absl::StatusCode::kDataLoss, garbage);
}

// Found by fuzz/torchscript_fuzzer: tiny_scripted.pt with 13 bytes changed,
// in data.pkl, in the code record functional.py and in two deflated
// .debug_pkl records.
// torch::jit::load failed to compile the code, and the what() of its
// exception unpickled the corrupt debug record, threw from a noexcept
// function and so ended the process. The CRC-32 checks now reject the file
// before LibTorch reads it.
TEST(TorchscriptBackboneTest, CorruptDebugRecordIsDataLoss) {
  std::string bytes = ReadFileBytes(TinyModule());
  const struct {
    size_t offset;
    uint8_t value;
  } changes[] = {{4017, 0x5f}, {4018, 0x5f}, {4019, 0x70}, {4020, 0x61},  {4021, 0x72},
                 {4022, 0x61}, {4023, 0x6d}, {4024, 0x65}, {4025, 0x74},  {4026, 0x65},
                 {6090, 0x32}, {15928, 0x6b}, {17846, 0xe0}};
  ASSERT_EQ(bytes.size(), 21707u);
  for (const auto& change : changes) bytes[change.offset] = static_cast<char>(change.value);
  const std::string path = WriteTemporaryFile("corrupt_debug_record.pt", bytes);

  // Records are verified in name order, so the first corrupt one is the
  // debug record of tiny_net.py.
  ExpectError(CreateFromText(absl::StrCat("module_file: \"", path, "\"")),
              absl::StatusCode::kDataLoss,
              absl::StrCat("invalid module file: ", path,
                           ": record code/__torch__/tiny_net.py.debug_pkl "));
}

TEST(TorchscriptBackboneTest, ModuleSharesTheScriptModulesTensors) {
  absl::StatusOr<std::unique_ptr<Backbone>> backbone =
      CreateFromText(TinyOptions("trainable_from: \"body\""));
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  torch::nn::Module& module = (*backbone)->module();
  auto parameters = module.named_parameters();
  for (const char* name : {"stem.0.weight", "stem.0.bias", "stem.1.weight", "body.conv.weight",
                           "body.bn.weight", "shared.weight", "head.weight", "head.bias"}) {
    EXPECT_TRUE(parameters.contains(name)) << name;
  }
  EXPECT_TRUE(module.named_buffers().contains("body.bn.running_mean"));
  EXPECT_EQ((*backbone)->stage_names(),
            (std::vector<std::string>{"stem", "body", "shared", "gate", "head"}));
  EXPECT_FALSE(parameters["stem.0.weight"].requires_grad());
  EXPECT_TRUE(parameters["body.conv.weight"].requires_grad());
  EXPECT_TRUE(parameters["head.bias"].requires_grad());

  // BatchNorm stays in eval mode while training (freeze_batchnorm defaults
  // to true), so the running statistics do not move.
  module.train();
  const torch::Tensor mean_before = module.named_buffers()["body.bn.running_mean"].clone();
  const absl::StatusOr<TapMap> taps =
      (*backbone)->Forward(torch::randn({2, 3, 8, 8}), {"output"});
  ASSERT_TRUE(taps.ok()) << taps.status();
  EXPECT_TRUE(torch::equal(module.named_buffers()["body.bn.running_mean"], mean_before));

  // Gradients of the script module's forward reach the holder's tensors.
  taps->at("output").sum().backward();
  EXPECT_TRUE(parameters["body.conv.weight"].grad().defined());
  EXPECT_FALSE(parameters["stem.0.weight"].grad().defined());

  ASSERT_TRUE((*backbone)->SetBatchNormFrozen(false).ok());
  (*backbone)->Forward(torch::randn({2, 3, 8, 8}), {"output"}).IgnoreError();
  EXPECT_FALSE(torch::equal(module.named_buffers()["body.bn.running_mean"], mean_before));
}

TEST(TorchscriptBackboneTest, ScriptedResnet18MatchesPyTorch) {
  const absl::StatusOr<std::map<std::string, torch::Tensor>> expected =
      ReadTensors(FixturePath("resnet18_outputs.pth"));
  ASSERT_TRUE(expected.ok()) << expected.status();
  absl::StatusOr<std::unique_ptr<Backbone>> backbone = CreateFromText(absl::StrCat(
      "module_file: \"", FixturePath("resnet18_scripted.pt"), "\" ",
      "taps { submodule: \"layer1\" } taps { submodule: \"layer2\" } "
      "taps { submodule: \"layer3\" } taps { submodule: \"layer4\" } "
      "taps { name: \"block\" submodule: \"layer4.1\" } pooled_from: \"layer4\""));
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  EXPECT_EQ((*backbone)->feature_dim(), 512);

  torch::InferenceMode inference_mode;
  const std::vector<std::string> taps = {"layer1", "layer2", "layer3", "layer4", "pooled"};
  std::vector<std::string> requested = taps;
  requested.push_back("output");
  requested.push_back("block");
  const absl::StatusOr<TapMap> outputs = (*backbone)->Forward(expected->at("input"), requested);
  ASSERT_TRUE(outputs.ok()) << outputs.status();
  for (const std::string& tap : taps) {
    EXPECT_LE(RelativeDifference(outputs->at(tap), expected->at(tap)), kTolerance) << tap;
  }
  EXPECT_LE(RelativeDifference(outputs->at("output"), expected->at("logits")), kTolerance);
  // layer4.1 is layer4's last block.
  EXPECT_TRUE(torch::equal(outputs->at("block"), outputs->at("layer4")));
}

}  // namespace
}  // namespace panda
