#include "core/memory_budget.h"

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "config/pipeline.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace panda {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMebibyte = int64_t{1} << 20;

RunMemoryShape SmallRun() {
  RunMemoryShape shape;
  shape.decoded_images = 10;
  shape.train_images = 6;
  shape.test_images = 4;
  shape.image_shape = {32, 32, 3};
  shape.feature_dim = 8;
  return shape;
}

TEST(EstimateRunMemoryTest, ImagesAndFeatures) {
  // 10 images of 32 * 32 * 3 bytes, and 10 features of 8 floats.
  const MemoryEstimate estimate = EstimateRunMemory(SmallRun());
  EXPECT_EQ(estimate.bytes, 10 * 3072 + 10 * 8 * 4);
  EXPECT_EQ(estimate.parts, "images and features");
}

TEST(EstimateRunMemoryTest, SegmentationAddsPatchBankAndMaps) {
  RunMemoryShape shape = SmallRun();
  shape.patch_grid = {4, 4, 16};
  // Plus 6 training images of 4 * 4 patches of 16 floats, and one float map
  // of 32 * 32 per test image.
  const MemoryEstimate estimate = EstimateRunMemory(shape);
  EXPECT_EQ(estimate.bytes, 31040 + 6 * 4 * 4 * 16 * 4 + 4 * 32 * 32 * 4);
  EXPECT_EQ(estimate.parts, "images, features, patch bank and maps");
}

TEST(StreamedImagesTest, ThreeBatchesAtMost) {
  EXPECT_EQ(StreamedImages(1000, 64), 192);
  EXPECT_EQ(StreamedImages(100, 64), 100);
  EXPECT_EQ(StreamedImages(5, 0), 3);
}

TEST(CheckMemoryBudgetTest, OverBudgetIsResourceExhausted) {
  MemoryEstimate estimate;
  estimate.bytes = 3 * kMebibyte;
  estimate.parts = "images and features";

  const absl::Status status =
      CheckMemoryBudget(estimate, kMebibyte, "memory_budget_mib");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  const std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("about 3 MiB for images and features"));
  EXPECT_THAT(message, HasSubstr("memory budget of 1 MiB (memory_budget_mib)"));
  EXPECT_THAT(message, HasSubstr("subset.max_train_per_class"));
  EXPECT_THAT(message, HasSubstr("image_size"));
}

TEST(CheckMemoryBudgetTest, BudgetIsInclusiveAndZeroIsUnknown) {
  MemoryEstimate estimate;
  estimate.bytes = kMebibyte;
  EXPECT_TRUE(CheckMemoryBudget(estimate, kMebibyte, "MemAvailable").ok());
  EXPECT_TRUE(CheckMemoryBudget(estimate, 0, "MemAvailable").ok());
}

TEST(MemoryBudgetBytesTest, ConfigFieldOrMemAvailable) {
  PipelineConfig config;
  config.set_memory_budget_mib(3);
  EXPECT_EQ(MemoryBudgetBytes(config), 3 * kMebibyte);
  EXPECT_EQ(MemoryBudgetSource(config), "memory_budget_mib");

  config.set_memory_budget_mib(0);
  EXPECT_EQ(MemoryBudgetBytes(config), AvailableMemoryBytes());
  EXPECT_GT(AvailableMemoryBytes(), 0);  // Linux has MemAvailable.
  EXPECT_EQ(MemoryBudgetSource(config), "MemAvailable");
}

}  // namespace
}  // namespace panda
