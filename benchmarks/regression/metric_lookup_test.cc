#include "benchmarks/regression/metric_lookup.h"

#include <algorithm>
#include <string>
#include <vector>

#include "benchmarks/regression/benchmark_matrix.pb.h"
#include "config/results.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "gtest/gtest.h"

namespace panda {
namespace {

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

TEST(MetricLookupTest, RunResultMetricsAreItsDoubleFields) {
  const std::vector<std::string> names =
      CheckableMetricNames(*RunResult::descriptor());
  EXPECT_TRUE(Contains(names, "mean_roc_auc"));
  EXPECT_TRUE(Contains(names, "mean_average_precision"));
  EXPECT_TRUE(Contains(names, "mean_f1_max"));
  EXPECT_FALSE(Contains(names, "wall_seconds"));
  EXPECT_FALSE(Contains(names, "threads"));
  EXPECT_FALSE(Contains(names, "pipeline"));
  EXPECT_FALSE(Contains(names, "classes"));
}

TEST(MetricLookupTest, UnknownNameListsTheMetrics) {
  const absl::Status status =
      ValidateMetricName(*RunResult::descriptor(), "mean_roc_acu");
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  const std::string message(status.message());
  EXPECT_NE(message.find("\"mean_roc_acu\""), std::string::npos) << message;
  EXPECT_NE(message.find("mean_roc_auc, "), std::string::npos) << message;
}

TEST(MetricLookupTest, AbsoluteTimeIsRejected) {
  const absl::Status status =
      ValidateMetricName(*RunResult::descriptor(), "wall_seconds");
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("absolute time"), absl::string_view::npos)
      << status.message();
}

TEST(MetricLookupTest, NonNumericFieldsAreRejected) {
  for (const char* name : {"threads", "pipeline", "classes"}) {
    const absl::Status status =
        ValidateMetricName(*RunResult::descriptor(), name);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(status.message().find("is not a metric"), absl::string_view::npos)
        << status.message();
  }
}

TEST(MetricLookupTest, ReadsDoubleFields) {
  RunResult result;
  result.set_mean_roc_auc(0.875);
  result.set_mean_f1_max(0.5);
  absl::StatusOr<double> auc = MetricValue(result, "mean_roc_auc");
  ASSERT_TRUE(auc.ok()) << auc.status();
  EXPECT_EQ(*auc, 0.875);
  absl::StatusOr<double> f1 = MetricValue(result, "mean_f1_max");
  ASSERT_TRUE(f1.ok()) << f1.status();
  EXPECT_EQ(*f1, 0.5);

  SpeedMetrics speed;
  speed.set_relative_speed(0.75);
  absl::StatusOr<double> relative = MetricValue(speed, "relative_speed");
  ASSERT_TRUE(relative.ok()) << relative.status();
  EXPECT_EQ(*relative, 0.75);
}

TEST(MetricLookupTest, ReadsFloatFields) {
  google::protobuf::FloatValue value;
  value.set_value(0.25f);
  absl::StatusOr<double> read = MetricValue(value, "value");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 0.25);
}

TEST(MetricLookupTest, UnsetFieldIsNotFound) {
  RunResult result;
  result.set_mean_roc_auc(0.875);
  absl::StatusOr<double> value = MetricValue(result, "mean_average_precision");
  ASSERT_EQ(value.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(value.status().message().find("mean_average_precision"),
            absl::string_view::npos)
      << value.status().message();
}

TEST(MetricLookupTest, InvalidNameIsInvalidArgument) {
  RunResult result;
  EXPECT_EQ(MetricValue(result, "wall_seconds").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace panda
