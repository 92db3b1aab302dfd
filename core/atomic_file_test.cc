#include "core/atomic_file.h"

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace panda {
namespace {

std::string TestPath(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / "atomic_file_test" /
          name)
      .string();
}

TEST(AtomicFileTest, WritesAndReadsBack) {
  const std::string path = TestPath("nested/folder/file.txt");
  ASSERT_TRUE(WriteFileAtomically(path, "first").ok());
  std::string contents;
  ASSERT_TRUE(ReadFile(path, &contents).ok());
  EXPECT_EQ(contents, "first");
}

TEST(AtomicFileTest, UncommittedWriterKeepsOldFile) {
  const std::string path = TestPath("kept.txt");
  ASSERT_TRUE(WriteFileAtomically(path, "old").ok());
  {
    AtomicFileWriter writer;
    ASSERT_TRUE(writer.Open(path).ok());
    ASSERT_TRUE(writer.Write("new but unfinished").ok());
  }
  std::string contents;
  ASSERT_TRUE(ReadFile(path, &contents).ok());
  EXPECT_EQ(contents, "old");

  // The abandoned temporary file is gone too.
  for (const auto& entry : std::filesystem::directory_iterator(
           std::filesystem::path(path).parent_path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"),
              std::string::npos)
        << entry.path();
  }
}

TEST(AtomicFileTest, MissingFileIsNotFound) {
  std::string contents;
  absl::Status status = ReadFile(TestPath("absent.txt"), &contents);
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_NE(status.message().find("absent.txt"), std::string::npos);
}

}  // namespace
}  // namespace panda
