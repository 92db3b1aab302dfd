#include "benchmarks/regression/speed_checks.h"

#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "torch/cuda.h"

namespace panda {
namespace {

TEST(MedianTest, OddAndEvenCounts) {
  EXPECT_EQ(Median({5.0}), 5.0);
  EXPECT_EQ(Median({3.0, 1.0, 2.0}), 2.0);
  EXPECT_EQ(Median({4.0, 1.0, 3.0, 2.0}), 2.5);
  EXPECT_EQ(Median({1.0, 100.0, 2.0}), 2.0);
}

TEST(TimeSideBySideTest, AlternatesOrderAfterWarmUp) {
  std::string calls;
  auto measured = [&] {
    calls += 'm';
    return absl::OkStatus();
  };
  auto reference = [&] {
    calls += 'r';
    return absl::OkStatus();
  };
  absl::StatusOr<SpeedMeasurement> result =
      TimeSideBySide(measured, reference, 3);
  ASSERT_TRUE(result.ok()) << result.status();
  // Warm-up, then rounds with the reference first, second, first.
  EXPECT_EQ(calls,
            "rm"
            "rm"
            "mr"
            "rm");
  EXPECT_EQ(result->timings.samples_size(), 3);
  EXPECT_EQ(result->timings.reference_samples_size(), 3);
}

TEST(TimeSideBySideTest, RatioOfMediansOfSleeps) {
  auto sleep_for = [](int milliseconds) {
    return [milliseconds] {
      std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
      return absl::OkStatus();
    };
  };
  absl::StatusOr<SpeedMeasurement> result =
      TimeSideBySide(sleep_for(40), sleep_for(10), 5);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GE(result->timings.seconds(), 0.040);
  EXPECT_GE(result->timings.reference_seconds(), 0.010);
  EXPECT_DOUBLE_EQ(
      result->metrics.relative_speed(),
      result->timings.reference_seconds() / result->timings.seconds());
  // 10 / 40 = 0.25; a sleep can overrun on a busy machine, hence the range.
  EXPECT_GT(result->metrics.relative_speed(), 0.1);
  EXPECT_LT(result->metrics.relative_speed(), 0.6);
}

TEST(TimeSideBySideTest, ErrorsPassThrough) {
  auto fine = [] { return absl::OkStatus(); };
  auto broken = [] { return absl::DataLossError("broken"); };
  EXPECT_EQ(TimeSideBySide(broken, fine, 2).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(TimeSideBySide(fine, broken, 2).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(TimeSideBySide(fine, fine, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MeasureKnnSearchSpeedTest, SmallSearch) {
  KnnSearchSpeed options;
  options.set_queries(64);
  options.set_bank_rows(256);
  options.set_dims(16);
  options.set_k(3);
  absl::StatusOr<SpeedMeasurement> result = MeasureKnnSearchSpeed(options, 3);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->timings.samples_size(), 3);
  EXPECT_GT(result->timings.seconds(), 0);
  EXPECT_GT(result->timings.reference_seconds(), 0);
  EXPECT_TRUE(std::isfinite(result->metrics.relative_speed()));
  EXPECT_GT(result->metrics.relative_speed(), 0);
  EXPECT_EQ(result->timings.measured_work(),
            "SearchKnn of [64, 16] queries in [256, 16] bank rows, k = 3");
  EXPECT_EQ(result->timings.reference_work(), "torch::mm [64, 16] x [16, 256]");
  EXPECT_EQ(result->timings.device(),
            torch::cuda::is_available() ? "cuda" : "cpu");
}

}  // namespace
}  // namespace panda
