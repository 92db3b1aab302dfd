// Reads the small checkpoints in backbones/testdata/, which
// tools/make_torchvision_fixtures.py wrote with Debian's PyTorch 1.13, and
// compares them with the values that script put in them.
#include "backbones/torchvision/torch_checkpoint.h"

#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backbones/torchvision/test_files.h"
#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda::torchvision {
namespace {

using testing::ReadFileBytes;
using testing::TestdataPath;
using testing::WriteTemporaryFile;

std::vector<std::string> Names(const std::vector<NamedTensor>& state) {
  std::vector<std::string> names;
  for (const NamedTensor& entry : state) names.push_back(entry.name);
  return names;
}

const torch::Tensor& Get(const std::vector<NamedTensor>& state, const std::string& name) {
  for (const NamedTensor& entry : state) {
    if (entry.name == name) return entry.tensor;
  }
  static const torch::Tensor* undefined = new torch::Tensor();
  ADD_FAILURE() << "no tensor " << name;
  return *undefined;
}

TEST(TorchCheckpointTest, ReadsOrderedDictWithViews) {
  const absl::StatusOr<std::vector<NamedTensor>> state =
      ReadStateDict(TestdataPath("checkpoint_ordered_dict.pth"));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(Names(*state), (std::vector<std::string>{"weight", "row", "column", "transposed",
                                                     "count", "half", "double", "flags",
                                                     "empty"}));

  // The script saved base = arange(24).reshape(4, 6) and views of it, which
  // share one storage at different offsets and strides.
  const torch::Tensor base = torch::arange(24, torch::kFloat32).reshape({4, 6});
  EXPECT_TRUE(torch::equal(Get(*state, "weight"), base));
  EXPECT_TRUE(torch::equal(Get(*state, "row"), torch::arange(12, 18, torch::kFloat32)));
  EXPECT_TRUE(
      torch::equal(Get(*state, "column"), torch::tensor({1.0f, 7.0f, 13.0f, 19.0f})));
  EXPECT_TRUE(torch::equal(Get(*state, "transposed"), base.t()));
  EXPECT_TRUE(Get(*state, "transposed").is_contiguous());

  const torch::Tensor& count = Get(*state, "count");
  EXPECT_EQ(count.dim(), 0);
  EXPECT_EQ(count.scalar_type(), torch::kInt64);
  EXPECT_EQ(count.item<int64_t>(), 7);
  EXPECT_EQ(Get(*state, "half").scalar_type(), torch::kFloat16);
  EXPECT_TRUE(torch::equal(Get(*state, "half").to(torch::kFloat32), torch::tensor({0.5f, -2.0f})));
  EXPECT_EQ(Get(*state, "double").scalar_type(), torch::kFloat64);
  EXPECT_EQ(Get(*state, "double").item<double>(), 1.25);
  EXPECT_TRUE(torch::equal(Get(*state, "flags"), torch::tensor({true, false})));
  EXPECT_EQ(Get(*state, "empty").sizes(), (std::vector<int64_t>{0, 3}));
}

TEST(TorchCheckpointTest, ReadsPlainDictAndWrappers) {
  for (const char* file : {"checkpoint_plain_dict.pth", "checkpoint_state_dict_wrapper.pth",
                           "checkpoint_model_wrapper.pth"}) {
    SCOPED_TRACE(file);
    const absl::StatusOr<std::vector<NamedTensor>> state = ReadStateDict(TestdataPath(file));
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ(Names(*state), (std::vector<std::string>{"a.weight", "a.bias"}));
    EXPECT_TRUE(torch::equal(Get(*state, "a.weight"), torch::tensor({{1.0f, 2.0f}, {3.0f, 4.0f}})));
    EXPECT_TRUE(torch::equal(Get(*state, "a.bias"), torch::tensor({-1.0f, 0.5f})));
  }
}

TEST(TorchCheckpointTest, MissingFileIsNotFound) {
  const absl::StatusOr<std::vector<NamedTensor>> state = ReadStateDict("no/such/file.pth");
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(state.status().message(), "no/such/file.pth"));
}

TEST(TorchCheckpointTest, LegacyFormatIsInvalidArgument) {
  const std::string path = TestdataPath("checkpoint_legacy_format.pth");
  const absl::StatusOr<std::vector<NamedTensor>> state = ReadStateDict(path);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(state.status().message(), "PyTorch before 1.6")) << state.status();
  EXPECT_TRUE(absl::StrContains(state.status().message(), path));
}

TEST(TorchCheckpointTest, PickledModuleIsInvalidArgument) {
  const std::string path = TestdataPath("checkpoint_whole_module.pth");
  const absl::StatusOr<std::vector<NamedTensor>> state = ReadStateDict(path);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(state.status().message(),
                                "an object made by torch.nn.modules.linear.Linear"))
      << state.status();
  EXPECT_TRUE(absl::StrContains(state.status().message(), "Save model.state_dict()"));
}

TEST(TorchCheckpointTest, TorchScriptFileIsInvalidArgument) {
  const absl::StatusOr<std::vector<NamedTensor>> state =
      ReadStateDict(TestdataPath("tiny_scripted.pt"));
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), absl::StatusCode::kInvalidArgument) << state.status();
}

TEST(TorchCheckpointTest, OtherFilesAreDataLoss) {
  for (const std::string& bytes : {std::string(), std::string("P"), std::string("PK\x03\x04"),
                                   std::string("hello, world")}) {
    const std::string path = WriteTemporaryFile("not_a_checkpoint.pth", bytes);
    const absl::StatusOr<std::vector<NamedTensor>> state = ReadStateDict(path);
    ASSERT_FALSE(state.ok());
    EXPECT_EQ(state.status().code(), absl::StatusCode::kDataLoss) << state.status();
    EXPECT_TRUE(absl::StrContains(state.status().message(), path)) << state.status();
  }
}

TEST(TorchCheckpointTest, EveryTruncationIsDataLoss) {
  const std::string original = ReadFileBytes(TestdataPath("checkpoint_ordered_dict.pth"));
  ASSERT_GT(original.size(), 1000u);
  const std::string path = WriteTemporaryFile("truncated.pth", "");
  for (size_t size = 0; size < original.size(); size += 7) {
    WriteTemporaryFile("truncated.pth", original.substr(0, size));
    const absl::StatusOr<std::vector<NamedTensor>> state = ReadStateDict(path);
    ASSERT_FALSE(state.ok()) << "truncated to " << size << " bytes";
    EXPECT_EQ(state.status().code(), absl::StatusCode::kDataLoss)
        << "truncated to " << size << " bytes: " << state.status();
    EXPECT_TRUE(absl::StrContains(state.status().message(), path)) << state.status();
  }
}

// Flips random bytes. The zip CRC-32 of every record catches changes to
// data.pkl and the storages, so a file that still loads must give the
// original tensors (the flip hit bytes nothing reads, such as the local
// headers' copies of names).
TEST(TorchCheckpointTest, RandomCorruptionIsCaught) {
  const std::string original = ReadFileBytes(TestdataPath("checkpoint_ordered_dict.pth"));
  const absl::StatusOr<std::vector<NamedTensor>> expected =
      ReadStateDict(TestdataPath("checkpoint_ordered_dict.pth"));
  ASSERT_TRUE(expected.ok()) << expected.status();

  std::mt19937 random(11);
  const std::string path = WriteTemporaryFile("corrupt.pth", "");
  int loaded = 0;
  for (int trial = 0; trial < 1500; ++trial) {
    std::string bytes = original;
    const int flips = 1 + trial % 3;
    for (int i = 0; i < flips; ++i) {
      bytes[random() % bytes.size()] ^= static_cast<char>(1 + random() % 255);
    }
    WriteTemporaryFile("corrupt.pth", bytes);
    const absl::StatusOr<std::vector<NamedTensor>> state = ReadStateDict(path);
    if (!state.ok()) {
      EXPECT_TRUE(state.status().code() == absl::StatusCode::kDataLoss ||
                  state.status().code() == absl::StatusCode::kInvalidArgument)
          << state.status();
      EXPECT_TRUE(absl::StrContains(state.status().message(), path)) << state.status();
      continue;
    }
    ++loaded;
    ASSERT_EQ(Names(*state), Names(*expected)) << "trial " << trial;
    for (size_t i = 0; i < state->size(); ++i) {
      EXPECT_TRUE(torch::equal((*state)[i].tensor, (*expected)[i].tensor))
          << "trial " << trial << ": " << (*state)[i].name;
    }
  }
  std::cout << loaded << " of 1500 corrupted files still loaded, all unchanged\n";
}

}  // namespace
}  // namespace panda::torchvision
