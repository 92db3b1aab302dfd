#include "scorers/hnsw_index_file.h"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scorers/hnsw_index.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

// Byte offsets of header fields, from the layout in hnsw_index_file.h.
constexpr size_t kVersionOffset = 8;
constexpr size_t kDimOffset = 16;
constexpr size_t kFeaturesChecksumOffset = 48;
constexpr size_t kPayloadChecksumOffset = 56;

constexpr int64_t kDim = 6;
constexpr int64_t kCount = 120;

class HnswIndexFileTest : public testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::string(testing::TempDir()) + "/hnsw_index_file_test_" +
                 testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(directory_);
    path_ = directory_ + "/index.hnsw";

    std::mt19937 generator(5);
    std::normal_distribution<float> normal;
    rows_.resize(kCount * kDim);
    for (float& value : rows_) value = normal(generator);
    absl::StatusOr<std::unique_ptr<HnswIndex>> index = HnswIndex::Build(
        rows_.data(), kCount, kDim, HnswSpace::kSquaredL2, 8, 40, 1);
    ASSERT_TRUE(index.ok()) << index.status();
    index_ = *std::move(index);

    identity_.space = HnswSpace::kSquaredL2;
    identity_.dim = kDim;
    identity_.count = kCount;
    identity_.m = 8;
    identity_.ef_construction = 40;
    identity_.features_checksum = 0x0123456789abcdefULL;
  }

  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::string ReadBytes() const {
    std::string bytes;
    EXPECT_TRUE(ReadFile(path_, &bytes).ok());
    return bytes;
  }

  void WriteBytes(const std::string& bytes) const {
    ASSERT_TRUE(WriteFileAtomically(path_, bytes).ok());
  }

  template <typename T>
  void OverwriteField(size_t offset, T value) const {
    std::string bytes = ReadBytes();
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
    WriteBytes(bytes);
  }

  // Expects ReadHnswIndexFile() to fail with `code` and `message`.
  void ExpectReadFails(absl::StatusCode code, const std::string& message,
                       const HnswIndexIdentity& expected) const {
    absl::StatusOr<std::unique_ptr<HnswIndex>> read =
        ReadHnswIndexFile(path_, expected);
    ASSERT_EQ(read.status().code(), code) << read.status();
    EXPECT_THAT(std::string(read.status().message()), HasSubstr(message));
    ExpectNoTemporaryFiles();
  }
  void ExpectReadFails(absl::StatusCode code,
                       const std::string& message) const {
    ExpectReadFails(code, message, identity_);
  }

  // Only the index itself may remain in the folder.
  void ExpectNoTemporaryFiles() const {
    for (const auto& entry : std::filesystem::directory_iterator(directory_)) {
      EXPECT_EQ(entry.path().string(), path_) << "left behind";
    }
  }

  std::string directory_;
  std::string path_;
  std::vector<float> rows_;
  std::unique_ptr<HnswIndex> index_;
  HnswIndexIdentity identity_;
};

TEST_F(HnswIndexFileTest, RoundTripGivesSameSearchResults) {
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  EXPECT_EQ(std::filesystem::file_size(path_),
            static_cast<uintmax_t>(kHnswIndexHeaderBytes +
                                   index_->SerializedBytes()));
  ExpectNoTemporaryFiles();

  absl::StatusOr<std::unique_ptr<HnswIndex>> read =
      ReadHnswIndexFile(path_, identity_);
  ASSERT_TRUE(read.ok()) << read.status();
  ExpectNoTemporaryFiles();

  std::vector<float> before_distances(kCount * 2);
  std::vector<float> after_distances(kCount * 2);
  std::vector<int64_t> before_labels(kCount * 2);
  std::vector<int64_t> after_labels(kCount * 2);
  ASSERT_TRUE(index_
                  ->Search(rows_.data(), kCount, 2, 16, 1,
                           before_distances.data(), before_labels.data())
                  .ok());
  ASSERT_TRUE((*read)
                  ->Search(rows_.data(), kCount, 2, 16, 1,
                           after_distances.data(), after_labels.data())
                  .ok());
  EXPECT_EQ(before_labels, after_labels);
  EXPECT_EQ(before_distances, after_distances);
}

TEST_F(HnswIndexFileTest, MissingFileIsNotFound) {
  std::filesystem::create_directories(directory_);
  absl::StatusOr<std::unique_ptr<HnswIndex>> read =
      ReadHnswIndexFile(path_, identity_);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound)
      << read.status();
}

TEST_F(HnswIndexFileTest, EmptyFileIsTruncated) {
  WriteBytes("");
  ExpectReadFails(absl::StatusCode::kDataLoss, "is truncated: 0 bytes");
}

TEST_F(HnswIndexFileTest, TruncatedHeaderIsDataLoss) {
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  WriteBytes(ReadBytes().substr(0, 30));
  ExpectReadFails(absl::StatusCode::kDataLoss, "is truncated: 30 bytes");
}

TEST_F(HnswIndexFileTest, TruncatedPayloadIsDataLoss) {
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  const std::string bytes = ReadBytes();
  WriteBytes(bytes.substr(0, bytes.size() - 100));
  ExpectReadFails(absl::StatusCode::kDataLoss, "(truncated)");
}

TEST_F(HnswIndexFileTest, TrailingBytesAreDataLoss) {
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  WriteBytes(ReadBytes() + "extra");
  ExpectReadFails(absl::StatusCode::kDataLoss, "payload bytes, but its header");
}

TEST_F(HnswIndexFileTest, FlippedPayloadBitIsDataLoss) {
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  // Bits in the payload's fields, its vectors and its link lists.
  const size_t size = ReadBytes().size();
  for (size_t offset :
       {size_t{kHnswIndexHeaderBytes} + 3, size_t{kHnswIndexHeaderBytes} + 200,
        size / 2, size - 1}) {
    SCOPED_TRACE(testing::Message() << "byte " << offset);
    ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
    std::string bytes = ReadBytes();
    bytes[offset] ^= 0x10;
    WriteBytes(bytes);
    ExpectReadFails(absl::StatusCode::kDataLoss, "payload checksum");
  }
}

TEST_F(HnswIndexFileTest, WrongMagicIsDataLoss) {
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  std::string bytes = ReadBytes();
  bytes[0] = 'X';
  WriteBytes(bytes);
  ExpectReadFails(absl::StatusCode::kDataLoss, "wrong magic");
}

TEST_F(HnswIndexFileTest, GarbageFileIsDataLoss) {
  WriteBytes(std::string(500, 'z'));
  ExpectReadFails(absl::StatusCode::kDataLoss, "wrong magic");
}

TEST_F(HnswIndexFileTest, OtherVersionIsDataLoss) {
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  OverwriteField<uint32_t>(kVersionOffset, 7);
  ExpectReadFails(absl::StatusCode::kDataLoss,
                  "has format version 7, but this program reads version 1");
}

TEST_F(HnswIndexFileTest, WrongPayloadChecksumIsDataLoss) {
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  OverwriteField<uint64_t>(kPayloadChecksumOffset, 42);
  ExpectReadFails(absl::StatusCode::kDataLoss,
                  "but its header says 000000000000002a");
}

TEST_F(HnswIndexFileTest, OtherFeaturesAreFailedPrecondition) {
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  HnswIndexIdentity other = identity_;
  other.features_checksum = 0xfeedULL;
  ExpectReadFails(absl::StatusCode::kFailedPrecondition,
                  "training features of checksum 0123456789abcdef, but this "
                  "bank needs 000000000000feed",
                  other);
}

TEST_F(HnswIndexFileTest, OtherParametersAreFailedPrecondition) {
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  HnswIndexIdentity other = identity_;
  other.m = 16;
  ExpectReadFails(absl::StatusCode::kFailedPrecondition,
                  "built with m = 8, but this bank needs 16", other);
  other = identity_;
  other.ef_construction = 41;
  ExpectReadFails(absl::StatusCode::kFailedPrecondition,
                  "ef_construction = 40, but this bank needs 41", other);
  other = identity_;
  other.space = HnswSpace::kInnerProduct;
  ExpectReadFails(absl::StatusCode::kFailedPrecondition,
                  "space squared L2, but this bank needs inner product", other);
  other = identity_;
  other.count = kCount + 1;
  ExpectReadFails(absl::StatusCode::kFailedPrecondition,
                  "count = 120, but this bank needs 121", other);
}

TEST_F(HnswIndexFileTest, WrongDimensionIsFailedPrecondition) {
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  HnswIndexIdentity other = identity_;
  other.dim = 3;
  ExpectReadFails(absl::StatusCode::kFailedPrecondition,
                  "dim = 6, but this bank needs 3", other);
}

TEST_F(HnswIndexFileTest, HeaderDimensionThatLiesIsDataLoss) {
  // A header edited to claim 3 dimensions matches a 3-d request and its
  // payload checksum still verifies, so hnswlib's record size must catch it.
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  OverwriteField<int64_t>(kDimOffset, 3);
  HnswIndexIdentity other = identity_;
  other.dim = 3;
  ExpectReadFails(absl::StatusCode::kDataLoss,
                  "vectors of 3 dimensions need", other);
}

TEST_F(HnswIndexFileTest, FeaturesChecksumFieldIsAtDocumentedOffset) {
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  uint64_t stored = 0;
  std::memcpy(&stored, ReadBytes().data() + kFeaturesChecksumOffset, 8);
  EXPECT_EQ(stored, identity_.features_checksum);
  EXPECT_EQ(ReadBytes().substr(0, 8), "PANDAHNS");
}

TEST_F(HnswIndexFileTest, RewriteReplacesFile) {
  WriteBytes("not an index");
  ASSERT_TRUE(WriteHnswIndexFile(path_, identity_, *index_).ok());
  EXPECT_TRUE(ReadHnswIndexFile(path_, identity_).ok());
  ExpectNoTemporaryFiles();
}

}  // namespace
}  // namespace panda
