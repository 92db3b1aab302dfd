#include "core/compare_report.h"

#include <string>

#include "core/run_summary.h"
#include "gtest/gtest.h"

namespace panda {
namespace {

RunResult MakeRun(const std::string& name, std::vector<std::vector<double>> aucs) {
  // aucs[seed][class]
  RunResult result;
  result.set_pipeline(name);
  for (size_t seed = 0; seed < aucs.size(); ++seed) {
    for (size_t c = 0; c < aucs[seed].size(); ++c) {
      ClassResult* row = result.add_classes();
      row->set_normal_class(static_cast<int>(c));
      row->set_class_name(c == 0 ? "cat" : "dog");
      row->set_seed(static_cast<int>(seed));
      row->set_roc_auc(aucs[seed][c]);
    }
  }
  SummarizeRun(result);
  return result;
}

TEST(CompareReportTest, MarksDifferencesBeyondSeedSpread) {
  // Class 0: base 0.80/0.82 (mean 0.81, std 0.01414), other 0.90/0.92
  // (mean 0.91): a 10-point gain against a standard error of 0.01, so `*`.
  // Class 1: base 0.70/0.80, other 0.71/0.81: +1 point against a standard
  // error of sqrt(0.005 / 2 * 2) = 0.0707, so no mark.
  const RunResult base = MakeRun("base", {{0.80, 0.70}, {0.82, 0.80}});
  const RunResult other = MakeRun("other", {{0.90, 0.71}, {0.92, 0.81}});
  auto table = FormatComparison({base, other});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_NE(table->find("| 0 cat | 81.00 ± 1.41 | 91.00 ± 1.41 | +10.00* |"),
            std::string::npos)
      << *table;
  EXPECT_NE(table->find("| 1 dog | 75.00 ± 7.07 | 76.00 ± 7.07 | +1.00 |"),
            std::string::npos)
      << *table;
}

TEST(CompareReportTest, SingleSeedDifferencesAreUnjudged) {
  auto table = FormatComparison({MakeRun("a", {{0.5, 0.6}}), MakeRun("b", {{0.6, 0.6}})});
  ASSERT_TRUE(table.ok());
  EXPECT_NE(table->find("+10.00?"), std::string::npos) << *table;
  EXPECT_NE(table->find("+0.00?"), std::string::npos) << *table;
}

TEST(CompareReportTest, MismatchedClassesAreRejected) {
  auto table = FormatComparison({MakeRun("a", {{0.5, 0.6}}), MakeRun("b", {{0.6}})});
  EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(FormatComparison({MakeRun("a", {{0.5}})}).ok());
}

TEST(CompareReportTest, MissingOrMalformedFile) {
  EXPECT_TRUE(absl::IsNotFound(LoadRunResult("/nonexistent/results.json").status()));
  const std::string path = ::testing::TempDir() + "/bad.json";
  FILE* file = fopen(path.c_str(), "w");
  fputs("{\"pipeline\": 3", file);
  fclose(file);
  absl::Status status = LoadRunResult(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_NE(status.message().find("bad.json"), std::string::npos);
}

}  // namespace
}  // namespace panda
