// Checks ZipArchive on the archives in backbones/testdata/: torch.save
// checkpoints, whose records are stored, and a torch.jit.save module, whose
// code/ records are deflated.
#include "backbones/torchvision/zip_archive.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "backbones/torchvision/test_files.h"
#include "gtest/gtest.h"

namespace panda::torchvision {
namespace {

using testing::ReadFileBytes;
using testing::TestdataPath;
using testing::WriteTemporaryFile;

// Offset of the data of record `name` (its full name, with the top folder)
// in the archive `bytes`. The first occurrence of the name is in the
// record's local header, which ends with the name and an extra field. The
// extra field's length is the 2 bytes before the name.
size_t RecordDataOffset(const std::string& bytes, const std::string& name) {
  const size_t name_offset = bytes.find(name);
  EXPECT_NE(name_offset, std::string::npos) << name;
  const size_t extra_size = static_cast<uint8_t>(bytes[name_offset - 2]) |
                            static_cast<uint8_t>(bytes[name_offset - 1]) << 8;
  return name_offset + name.size() + extra_size;
}

absl::Status Verify(const std::string& path) {
  absl::StatusOr<ZipArchive> archive = ZipArchive::Open(path);
  if (!archive.ok()) return archive.status();
  return archive->VerifyRecords();
}

TEST(ZipArchiveTest, VerifiesStoredAndDeflatedRecords) {
  EXPECT_TRUE(Verify(TestdataPath("checkpoint_ordered_dict.pth")).ok());
  EXPECT_TRUE(Verify(TestdataPath("tiny_scripted.pt")).ok());
}

TEST(ZipArchiveTest, CorruptDeflatedRecordIsDataLoss) {
  const std::string original = ReadFileBytes(TestdataPath("tiny_scripted.pt"));
  const std::string record = "tiny_scripted/code/__torch__/tiny_net.py";
  // The record's 494 compressed bytes inflate to 1518.
  const size_t data = RecordDataOffset(original, record);

  // A changed byte in the middle of the deflate stream: it either breaks the
  // stream or inflates to other bytes.
  std::string bytes = original;
  bytes[data + 200] ^= 0x10;
  const std::string path = WriteTemporaryFile("flipped.pt", bytes);
  absl::Status status = Verify(path);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), path)) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "record code/__torch__/tiny_net.py "))
      << status;

  // The first block header with the reserved block type 3 (0x07: final
  // block, type bits 11), which zlib rejects.
  bytes = original;
  bytes[data] = static_cast<char>(0x07);
  status = Verify(WriteTemporaryFile("bad_block.pt", bytes));
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "corrupt deflate stream")) << status;
}

TEST(ZipArchiveTest, CorruptStoredRecordFailsCrc) {
  std::string bytes = ReadFileBytes(TestdataPath("tiny_scripted.pt"));
  bytes[RecordDataOffset(bytes, "tiny_scripted/constants.pkl")] ^= 0x01;
  const absl::Status status = Verify(WriteTemporaryFile("constants.pt", bytes));
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "record constants.pkl fails its CRC-32 check"))
      << status;
}

}  // namespace
}  // namespace panda::torchvision
