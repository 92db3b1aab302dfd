#include "core/feature_cache.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "torch/torch.h"

namespace panda {
namespace {

class FeatureCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = (std::filesystem::path(::testing::TempDir()) /
                  ::testing::UnitTest::GetInstance()->current_test_info()->name())
                     .string();
    std::filesystem::remove_all(directory_);
    key_.dataset = "name: \"idx\"";
    key_.split = "train";
    key_.subset = "";
    key_.backbone = "name: \"keras\"";
    key_.data_fingerprint = "train-images 100 bytes";
    key_.backbone_fingerprint = "mobilenet_v2 checksum 1";
    features_ = torch::arange(12, torch::kFloat32).reshape({3, 4});
  }

  std::string directory_;
  FeatureCacheKey key_;
  torch::Tensor features_;
};

TEST_F(FeatureCacheTest, RoundTripsFeatures) {
  FeatureCache cache(directory_);
  ASSERT_TRUE(cache.Store(key_, features_).ok());
  auto loaded = cache.Load(key_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(torch::equal(*loaded, features_));
}

TEST_F(FeatureCacheTest, MissingFileIsNotFound) {
  FeatureCache cache(directory_);
  EXPECT_TRUE(absl::IsNotFound(cache.Load(key_).status()));
}

TEST_F(FeatureCacheTest, ChangedWeightsMakeCacheStale) {
  FeatureCache cache(directory_);
  ASSERT_TRUE(cache.Store(key_, features_).ok());
  key_.backbone_fingerprint = "mobilenet_v2 checksum 2";
  absl::Status status = cache.Load(key_).status();
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_NE(status.message().find("stale"), std::string::npos) << status;
}

TEST_F(FeatureCacheTest, FileOfAnotherBackboneIsAnError) {
  FeatureCache cache(directory_);
  FeatureCacheKey other = key_;
  other.backbone = "name: \"resnet\"";
  ASSERT_TRUE(cache.Store(other, features_).ok());
  // Simulate a file copied over this configuration's name.
  std::filesystem::rename(cache.PathFor(other), cache.PathFor(key_));
  absl::Status status = cache.Load(key_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find(cache.PathFor(key_)), std::string::npos);
  EXPECT_NE(status.message().find("another backbone"), std::string::npos);
}

TEST_F(FeatureCacheTest, TruncatedOrFlippedFilesAreRejected) {
  FeatureCache cache(directory_);
  ASSERT_TRUE(cache.Store(key_, features_).ok());
  const std::string path = cache.PathFor(key_);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }

  for (size_t length = 0; length < bytes.size(); length += 7) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), static_cast<std::streamsize>(length));
    absl::Status status = cache.Load(key_).status();
    EXPECT_TRUE(absl::IsNotFound(status)) << "length " << length << ": " << status;
  }

  // A flipped feature byte fails the checksum.
  std::string flipped = bytes;
  flipped[flipped.size() - 12] ^= 0x40;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(flipped.data(), static_cast<std::streamsize>(flipped.size()));
  absl::Status status = cache.Load(key_).status();
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_NE(status.message().find("checksum"), std::string::npos) << status;
}

}  // namespace
}  // namespace panda
