#include "backbones/torchvision/state_dict.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda::torchvision {
namespace {

// A Linear layer and a BatchNorm layer: parameters "fc.weight", "fc.bias",
// "bn.weight", "bn.bias" and buffers "bn.running_mean", "bn.running_var",
// "bn.num_batches_tracked".
struct SmallNet : torch::nn::Module {
  SmallNet()
      : fc(register_module("fc", torch::nn::Linear(2, 3))),
        bn(register_module("bn", torch::nn::BatchNorm1d(3))) {}
  torch::nn::Linear fc;
  torch::nn::BatchNorm1d bn;
};

std::vector<NamedTensor> FullState() {
  return {
      {"fc.weight", torch::arange(6, torch::kFloat64).reshape({3, 2})},
      {"fc.bias", torch::tensor({1.0f, 2.0f, 3.0f})},
      {"bn.weight", torch::full({3}, 2.0f)},
      {"bn.bias", torch::full({3}, -1.0f)},
      {"bn.running_mean", torch::tensor({0.5f, 0.25f, 0.125f})},
      {"bn.running_var", torch::full({3}, 4.0f)},
      {"bn.num_batches_tracked", torch::tensor(17, torch::kInt64)},
  };
}

TEST(StateDictTest, CopiesEveryTensorByName) {
  SmallNet net;
  ASSERT_TRUE(LoadStateDict(FullState(), net, "full.pth", "small net").ok());
  EXPECT_TRUE(torch::equal(net.fc->weight, torch::arange(6, torch::kFloat32).reshape({3, 2})));
  EXPECT_EQ(net.fc->weight.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(net.fc->bias, torch::tensor({1.0f, 2.0f, 3.0f})));
  EXPECT_TRUE(torch::equal(net.bn->running_mean, torch::tensor({0.5f, 0.25f, 0.125f})));
  EXPECT_EQ(net.bn->num_batches_tracked.item<int64_t>(), 17);
  // Loading keeps parameters trainable.
  EXPECT_TRUE(net.fc->weight.requires_grad());
}

TEST(StateDictTest, ListsMissingUnexpectedAndMisshapedEntries) {
  std::vector<NamedTensor> state = FullState();
  state.erase(state.begin() + 1);  // fc.bias
  state[0].tensor = torch::zeros({2, 3});  // fc.weight transposed
  state.push_back({"extra.weight", torch::zeros({4})});
  state[5].tensor = torch::tensor({true});  // bn.num_batches_tracked as bool

  SmallNet net;
  const torch::Tensor before = net.fc->weight.clone();
  const absl::Status status = LoadStateDict(state, net, "bad.pth", "small net");
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  for (const char* part :
       {"bad.pth: the checkpoint does not match small net",
        "1 missing (fc.bias [3])", "1 unexpected (extra.weight [4])",
        "2 with another shape or type (fc.weight: checkpoint [2, 3] Float, model [3, 2] Float, "
        "bn.num_batches_tracked: checkpoint [1] Bool, model [] Long)"}) {
    EXPECT_TRUE(absl::StrContains(status.message(), part)) << part << "\n" << status;
  }
  EXPECT_TRUE(torch::equal(net.fc->weight, before)) << "a failed load must change nothing";
}

TEST(StateDictTest, ListsAtMostFiveNamesPerKind) {
  SmallNet net;
  const absl::Status status = LoadStateDict({}, net, "empty.pth", "small net");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(
      status.message(),
      "7 missing (fc.weight [3, 2], fc.bias [3], bn.weight [3], bn.bias [3], "
      "bn.running_mean [3], ...)"))
      << status;
}

}  // namespace
}  // namespace panda::torchvision
