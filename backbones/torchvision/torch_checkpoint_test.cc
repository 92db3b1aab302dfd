// Reads the small checkpoints in backbones/testdata/, which
// tools/make_torchvision_fixtures.py wrote with Debian's PyTorch 1.13, and
// compares them with the values that script put in them.
#include "backbones/torchvision/torch_checkpoint.h"

#include <cstdint>
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

// CRC-32 as zip stores it (reflected polynomial 0xEDB88320).
uint32_t Crc32(const std::string& bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (const unsigned char byte : bytes) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint32_t GetLittleEndian(const std::string& bytes, size_t at, int width) {
  uint32_t value = 0;
  for (int i = width - 1; i >= 0; --i) {
    value = (value << 8) | static_cast<unsigned char>(bytes.at(at + i));
  }
  return value;
}

void PutLittleEndian32(std::string& bytes, size_t at, uint32_t value) {
  for (int i = 0; i < 4; ++i) bytes.at(at + i) = static_cast<char>(value >> (8 * i));
}

// Replaces the one occurrence of `from` in the data.pkl of `archive`, a
// torch.save zip file of stored records, with `to` of the same length.
// Updates both copies of that record's CRC-32, in its local header and its
// central directory entry, so only the pickle's meaning changes.
std::string PatchPickle(std::string archive, const std::string& from, const std::string& to) {
  EXPECT_EQ(from.size(), to.size());
  const size_t end_record = archive.rfind(std::string("PK\x05\x06", 4));
  if (end_record == std::string::npos) {
    ADD_FAILURE() << "no end of central directory record";
    return archive;
  }
  const uint32_t entries = GetLittleEndian(archive, end_record + 10, 2);
  size_t entry = GetLittleEndian(archive, end_record + 16, 4);
  for (uint32_t i = 0; i < entries; ++i) {
    const size_t name_length = GetLittleEndian(archive, entry + 28, 2);
    const size_t next = entry + 46 + name_length + GetLittleEndian(archive, entry + 30, 2) +
                        GetLittleEndian(archive, entry + 32, 2);
    if (!absl::EndsWith(archive.substr(entry + 46, name_length), "/data.pkl")) {
      entry = next;
      continue;
    }
    const size_t local = GetLittleEndian(archive, entry + 42, 4);
    const size_t data = local + 30 + GetLittleEndian(archive, local + 26, 2) +
                        GetLittleEndian(archive, local + 28, 2);
    std::string pickle = archive.substr(data, GetLittleEndian(archive, entry + 24, 4));
    const size_t found = pickle.find(from);
    EXPECT_NE(found, std::string::npos) << "pattern not in data.pkl";
    EXPECT_EQ(pickle.find(from, found + 1), std::string::npos) << "pattern not unique";
    if (found == std::string::npos) return archive;
    pickle.replace(found, from.size(), to);
    archive.replace(data, pickle.size(), pickle);
    PutLittleEndian32(archive, local + 14, Crc32(pickle));
    PutLittleEndian32(archive, entry + 16, Crc32(pickle));
    return archive;
  }
  ADD_FAILURE() << "no data.pkl record";
  return archive;
}

// checkpoint_plain_dict.pth stores a.weight as a view of a 4-element
// storage with offset 0, sizes (2, 2) and strides (2, 1), pickled as these
// BININT1 opcodes followed by TUPLE2.
TEST(TorchCheckpointTest, ViewOutsideItsStorageIsDataLoss) {
  const std::string original = ReadFileBytes(TestdataPath("checkpoint_plain_dict.pth"));
  const std::string view = std::string("K\0K\x02K\x02\x86", 7);

  // The patched file still loads when the view is unchanged, so the errors
  // below come from the new views alone.
  const std::string same_path =
      WriteTemporaryFile("same_view.pth", PatchPickle(original, view, view));
  const absl::StatusOr<std::vector<NamedTensor>> same = ReadStateDict(same_path);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_TRUE(torch::equal(Get(*same, "a.weight"), torch::tensor({{1.0f, 2.0f}, {3.0f, 4.0f}})));

  struct Case {
    std::string view;
    std::string message;
  };
  // The last element read is offset + (sizes[0] - 1) * 2 + (sizes[1] - 1) * 1,
  // which is 4 in both cases, one past the storage.
  const std::vector<Case> cases = {
      {std::string("K\0K\x02K\x03\x86", 7),
       "tensor \"a.weight\": invalid view: offset 0, sizes [2, 3], strides [2, 1] do not fit "
       "its storage of 4 elements"},
      {std::string("K\x01K\x02K\x02\x86", 7),
       "tensor \"a.weight\": invalid view: offset 1, sizes [2, 2], strides [2, 1] do not fit "
       "its storage of 4 elements"},
  };
  for (const Case& test_case : cases) {
    SCOPED_TRACE(test_case.message);
    const std::string path =
        WriteTemporaryFile("bad_view.pth", PatchPickle(original, view, test_case.view));
    const absl::StatusOr<std::vector<NamedTensor>> state = ReadStateDict(path);
    ASSERT_FALSE(state.ok());
    EXPECT_EQ(state.status().code(), absl::StatusCode::kDataLoss) << state.status();
    EXPECT_EQ(state.status().message(), absl::StrCat(path, ": ", test_case.message));
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
