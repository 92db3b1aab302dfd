#include "benchmarks/regression/regression_check.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmarks/regression/benchmark_matrix.h"
#include "benchmarks/regression/report_table.h"
#include "config/results.pb.h"
#include "core/atomic_file.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace panda {
namespace {

template <typename T>
T ParseText(const std::string& text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message))
      << text;
  return message;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(JudgeMetricTest, ToleranceBandBoundsArePass) {
  // Values exact in binary, so the band's ends are hit exactly.
  EXPECT_EQ(JudgeMetric(0.5, 0.5, 0.25), CheckResult::PASS);
  EXPECT_EQ(JudgeMetric(0.25, 0.5, 0.25), CheckResult::PASS);
  EXPECT_EQ(JudgeMetric(0.75, 0.5, 0.25), CheckResult::PASS);
  EXPECT_EQ(JudgeMetric(0.5, 0.5, 0.0), CheckResult::PASS);
}

TEST(JudgeMetricTest, BelowBandIsRegression) {
  EXPECT_EQ(JudgeMetric(0.2499, 0.5, 0.25), CheckResult::REGRESSION);
  EXPECT_EQ(JudgeMetric(0.4999, 0.5, 0.0), CheckResult::REGRESSION);
  EXPECT_EQ(JudgeMetric(std::nan(""), 0.5, 0.25), CheckResult::REGRESSION);
}

TEST(JudgeMetricTest, AboveBandIsBetter) {
  EXPECT_EQ(JudgeMetric(0.7501, 0.5, 0.25), CheckResult::BETTER);
  EXPECT_EQ(JudgeMetric(0.5001, 0.5, 0.0), CheckResult::BETTER);
}

constexpr char kEntry[] = R"pb(
  name: "knn"
  pipeline { config: "c.pbtxt" }
  check { metric: "mean_roc_auc" tolerance: 0.01 }
  check { metric: "mean_average_precision" tolerance: 0.02 }
)pb";

TEST(JudgeEntryTest, JudgesEachCheckInOrder) {
  const BenchmarkEntry entry = ParseText<BenchmarkEntry>(kEntry);
  const BenchmarkBaseline baseline = ParseText<BenchmarkBaseline>(R"pb(
    entry {
      name: "knn"
      value { metric: "mean_roc_auc" expected: 0.9 }
    }
  )pb");
  RunResult result;
  result.set_mean_roc_auc(0.85);
  result.set_mean_average_precision(0.95);
  EntryReport report;
  ASSERT_TRUE(JudgeEntry(entry, result, baseline, report).ok());
  ASSERT_EQ(report.checks_size(), 2);
  EXPECT_EQ(report.checks(0).metric(), "mean_roc_auc");
  EXPECT_EQ(report.checks(0).measured(), 0.85);
  EXPECT_EQ(report.checks(0).expected(), 0.9);
  EXPECT_EQ(report.checks(0).tolerance(), 0.01);
  EXPECT_EQ(report.checks(0).verdict(), CheckResult::REGRESSION);
  EXPECT_EQ(report.checks(1).metric(), "mean_average_precision");
  EXPECT_FALSE(report.checks(1).has_expected());
  EXPECT_EQ(report.checks(1).verdict(), CheckResult::NO_BASELINE);
}

TEST(JudgeEntryTest, MissingMetricIsNotFound) {
  const BenchmarkEntry entry = ParseText<BenchmarkEntry>(kEntry);
  RunResult result;
  result.set_mean_roc_auc(0.85);
  EntryReport report;
  const absl::Status status =
      JudgeEntry(entry, result, BenchmarkBaseline(), report);
  ASSERT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(Contains(std::string(status.message()),
                       "metric \"mean_average_precision\""))
      << status;
  EXPECT_EQ(report.checks_size(), 0);
}

TEST(CheckBaselineCoversMatrixTest, NamesMissingValueAndUpdateCommand) {
  const BenchmarkMatrix matrix =
      ParseText<BenchmarkMatrix>(absl::StrCat("entry {", kEntry, "}"));
  const BenchmarkBaseline baseline = ParseText<BenchmarkBaseline>(R"pb(
    entry {
      name: "knn"
      value { metric: "mean_roc_auc" expected: 0.9 }
    }
  )pb");
  const absl::Status status =
      CheckBaselineCoversMatrix(matrix, baseline, "b.pbtxt",
                                "./panda benchmark m.pbtxt --update_baseline");
  ASSERT_EQ(status.code(), absl::StatusCode::kNotFound);
  const std::string message(status.message());
  EXPECT_TRUE(Contains(message, "b.pbtxt")) << message;
  EXPECT_TRUE(
      Contains(message, "entry \"knn\", metric \"mean_average_precision\""))
      << message;
  EXPECT_TRUE(
      Contains(message, "`./panda benchmark m.pbtxt --update_baseline`"))
      << message;

  BenchmarkBaseline complete = baseline;
  BaselineValue* value = complete.mutable_entry(0)->add_value();
  value->set_metric("mean_average_precision");
  value->set_expected(0.9);
  EXPECT_TRUE(CheckBaselineCoversMatrix(matrix, complete, "b.pbtxt", "").ok());
}

TEST(UpdatedBaselineTest, ReplacesRunEntriesAndKeepsOthers) {
  const BenchmarkMatrix matrix = ParseText<BenchmarkMatrix>(R"pb(
    entry { name: "a" }
    entry { name: "b" }
    entry { name: "c" }
    entry { name: "never_run" }
  )pb");
  const BenchmarkBaseline previous = ParseText<BenchmarkBaseline>(R"pb(
    entry {
      name: "a"
      value { metric: "mean_roc_auc" expected: 0.1 }
    }
    entry {
      name: "b"
      value { metric: "mean_roc_auc" expected: 0.2 }
    }
    entry {
      name: "gone"
      value { metric: "mean_roc_auc" expected: 0.3 }
    }
  )pb");
  const BenchmarkReport report = ParseText<BenchmarkReport>(R"pb(
    started_at: "2026-01-02T03:04:05Z"
    cores: 2
    devices: "cpu"
    entries {
      name: "a"
      checks { metric: "mean_roc_auc" measured: 0.123456789 }
      checks { metric: "mean_f1_max" measured: 0.5 }
    }
    entries { name: "b" error: "it failed" }
    entries {
      name: "c"
      checks { metric: "relative_speed" measured: 1234.56789 }
    }
  )pb");
  const BenchmarkBaseline expected = ParseText<BenchmarkBaseline>(R"pb(
    entry {
      name: "a"
      value { metric: "mean_roc_auc" expected: 0.123457 }
      value { metric: "mean_f1_max" expected: 0.5 }
    }
    entry {
      name: "b"
      value { metric: "mean_roc_auc" expected: 0.2 }
    }
    entry {
      name: "c"
      value { metric: "relative_speed" expected: 1234.57 }
    }
    cores: 2
    devices: "cpu"
    updated_at: "2026-01-02T03:04:05Z"
  )pb");
  const BenchmarkBaseline updated = UpdatedBaseline(matrix, previous, report);
  EXPECT_EQ(updated.DebugString(), expected.DebugString());
}

TEST(WriteBenchmarkBaselineTest, WritesCommentedTextThatLoadsBack) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path =
      (std::filesystem::path(tmp != nullptr ? tmp : "/tmp") / "written.pbtxt")
          .string();
  const BenchmarkBaseline baseline = ParseText<BenchmarkBaseline>(R"pb(
    entry {
      name: "a"
      value { metric: "mean_roc_auc" expected: 0.75 }
    }
    cores: 4
  )pb");
  ASSERT_TRUE(WriteBenchmarkBaseline(path, baseline,
                                     "./panda benchmark m --update_baseline")
                  .ok());
  std::string text;
  ASSERT_TRUE(ReadFile(path, &text).ok());
  EXPECT_EQ(text.rfind("# ", 0), 0u) << text;
  EXPECT_TRUE(Contains(text, "#   ./panda benchmark m --update_baseline\n"))
      << text;
  absl::StatusOr<BenchmarkBaseline> loaded = LoadBenchmarkBaseline(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->DebugString(), baseline.DebugString());
}

BenchmarkReport MixedReport() {
  return ParseText<BenchmarkReport>(R"pb(
    wall_seconds: 12.5
    entries {
      name: "dn2_knn"
      wall_seconds: 10
      checks {
        metric: "mean_roc_auc"
        measured: 0.5
        expected: 0.75
        tolerance: 0.125
        verdict: REGRESSION
      }
      checks {
        metric: "mean_f1_max"
        measured: 0.75
        expected: 0.5
        tolerance: 0.125
        verdict: BETTER
      }
    }
    entries { name: "broken" error: "config not found" wall_seconds: 0.5 }
    entries {
      name: "knn_speed"
      wall_seconds: 2
      checks {
        metric: "relative_speed"
        measured: 0.875
        expected: 0.875
        tolerance: 0.25
        verdict: PASS
      }
      timings {
        measured_work: "SearchKnn"
        reference_work: "torch::mm"
        seconds: 0.25
        reference_seconds: 0.125
        samples: [ 0.25 ]
        threads: 2
        device: "cpu"
      }
    }
  )pb");
}

TEST(ReportTableTest, ShowsEachCheckWithItsVerdict) {
  const std::string table = FormatBenchmarkTable(MixedReport());
  EXPECT_TRUE(Contains(table, "dn2_knn")) << table;
  EXPECT_TRUE(Contains(table, "REGRESSION")) << table;
  EXPECT_TRUE(Contains(table, "better")) << table;
  EXPECT_TRUE(Contains(table, "ERROR")) << table;
  EXPECT_TRUE(Contains(table, "pass")) << table;
  EXPECT_TRUE(Contains(table, "0.7500")) << table;
  EXPECT_TRUE(Contains(table, "3 entries in 12.5 s")) << table;
  EXPECT_TRUE(Contains(table, "0.2500 s  SearchKnn")) << table;
  EXPECT_TRUE(Contains(table, "0.1250 s  torch::mm (reference)")) << table;
}

TEST(ReportTableTest, FailuresNameEntryAndMetric) {
  const std::vector<std::string> failures = DescribeFailures(MixedReport());
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0],
            "REGRESSION in entry \"dn2_knn\", metric \"mean_roc_auc\": "
            "measured 0.5000, below the expected 0.7500 - tolerance 0.1250 = "
            "0.6250");
  EXPECT_EQ(failures[1], "entry \"broken\" failed: config not found");
}

TEST(ReportTableTest, ImprovementsAskForAnUpdate) {
  const std::vector<std::string> lines =
      DescribeImprovements(MixedReport(), "UPDATE");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(Contains(lines[0], "entry \"dn2_knn\", metric \"mean_f1_max\""))
      << lines[0];
  EXPECT_TRUE(Contains(lines[0], "update it with `UPDATE`")) << lines[0];
}

}  // namespace
}  // namespace panda
