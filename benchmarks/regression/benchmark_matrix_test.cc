#include "benchmarks/regression/benchmark_matrix.h"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "adapters/adapter.h"
#include "backbones/backbone.h"
#include "core/atomic_file.h"
#include "datasets/dataset.h"
#include "gtest/gtest.h"
#include "scorers/knn_scorer_options.pb.h"
#include "scorers/scorer.h"

namespace panda {
namespace {

// Registered names only: loading a matrix parses configs but never
// constructs a plugin. The "knn" name comes with its real options type,
// which overrides of scorer.knn.* unpack.
template <typename T>
absl::StatusOr<std::unique_ptr<T>> Unused(const google::protobuf::Any&) {
  return absl::UnimplementedError("not constructed in this test");
}
PANDA_REGISTER_PLUGIN(DatasetRegistry, "test_dataset", Unused<Dataset>);
PANDA_REGISTER_PLUGIN(BackboneRegistry, "test_backbone", Unused<Backbone>);
PANDA_REGISTER_PLUGIN(AdapterRegistry, "none", Unused<Adapter>);
PANDA_REGISTER_PLUGIN(ScorerRegistry, "knn", Unused<Scorer>);

// A scratch folder with one valid pipeline config, config.pbtxt.
class BenchmarkMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    folder_ = std::filesystem::path(tmp != nullptr ? tmp : "/tmp") /
              ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(folder_);
    config_ = Path("config.pbtxt");
    ASSERT_TRUE(WriteFileAtomically(config_, R"pb(
                  name: "test"
                  dataset { name: "test_dataset" }
                  backbone { name: "test_backbone" }
                  scorer {
                    name: "knn"
                    options {
                      [type.googleapis.com/panda.KnnScorerOptions] { k: 2 }
                    }
                  }
                )pb")
                    .ok());
  }

  std::string Path(const std::string& name) const {
    return (folder_ / name).string();
  }

  // Writes `text` as matrix.pbtxt and loads it.
  absl::StatusOr<BenchmarkMatrix> Load(const std::string& text) {
    const std::string path = Path("matrix.pbtxt");
    EXPECT_TRUE(WriteFileAtomically(path, text).ok());
    return LoadBenchmarkMatrix(path);
  }

  // A pipeline entry on config.pbtxt with `extra` inside pipeline { }, and
  // `checks` after it.
  std::string PipelineEntry(const std::string& name, const std::string& extra,
                            const std::string& checks) const {
    return absl::StrCat("entry { name: \"", name, "\" pipeline { config: \"",
                        config_, "\" ", extra, " } ", checks, " }\n");
  }

  std::filesystem::path folder_;
  std::string config_;
};

constexpr char kAucCheck[] =
    "check { metric: \"mean_roc_auc\" tolerance: 0.01 }";

// Expects an error of `code` whose message contains every one of `parts`.
void ExpectError(const absl::StatusOr<BenchmarkMatrix>& matrix,
                 absl::StatusCode code,
                 std::initializer_list<std::string> parts) {
  ASSERT_EQ(matrix.status().code(), code) << matrix.status();
  const std::string message(matrix.status().message());
  for (const std::string& part : parts) {
    EXPECT_NE(message.find(part), std::string::npos)
        << "\"" << part << "\" missing from: " << message;
  }
}

void ExpectInvalid(const absl::StatusOr<BenchmarkMatrix>& matrix,
                   std::initializer_list<std::string> parts) {
  ExpectError(matrix, absl::StatusCode::kInvalidArgument, parts);
}

TEST_F(BenchmarkMatrixTest, LoadsPipelineAndSpeedEntries) {
  absl::StatusOr<BenchmarkMatrix> matrix = Load(absl::StrCat(
      PipelineEntry("knn", "set: \"scorer.knn.k=3\" normal_classes: [1, 3]",
                    kAucCheck),
      "entry { name: \"speed\" speed { knn_search { queries: 8 } } "
      "check { metric: \"relative_speed\" tolerance: 0.5 } }\n"));
  ASSERT_TRUE(matrix.ok()) << matrix.status();
  ASSERT_EQ(matrix->entry_size(), 2);
  EXPECT_EQ(matrix->entry(0).pipeline().set(0), "scorer.knn.k=3");
  EXPECT_EQ(matrix->entry(1).speed().knn_search().queries(), 8);
  EXPECT_EQ(matrix->entry(1).speed().knn_search().bank_rows(), 8192);
  EXPECT_EQ(matrix->entry(1).speed().repeats(), 7);
}

TEST_F(BenchmarkMatrixTest, BuildPipelineConfigAppliesOverrides) {
  google::protobuf::RepeatedPtrField<std::string> set;
  set.Add("scorer.knn.k=5");
  set.Add("batch_size=16");
  google::protobuf::RepeatedField<int32_t> classes;
  classes.Add(1);
  classes.Add(3);
  absl::StatusOr<PipelineConfig> config =
      BuildPipelineConfig(config_, set, classes, "context");
  ASSERT_TRUE(config.ok()) << config.status();
  KnnScorerOptions options;
  ASSERT_TRUE(config->scorer().options().UnpackTo(&options));
  EXPECT_EQ(options.k(), 5);
  EXPECT_EQ(config->batch_size(), 16);
  ASSERT_EQ(config->normal_classes_size(), 2);
  EXPECT_EQ(config->normal_classes(0), 1);
  EXPECT_EQ(config->normal_classes(1), 3);
}

TEST_F(BenchmarkMatrixTest, MissingMatrixIsNotFound) {
  absl::StatusOr<BenchmarkMatrix> matrix =
      LoadBenchmarkMatrix(Path("absent.pbtxt"));
  ASSERT_EQ(matrix.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(matrix.status().message().find("absent.pbtxt"),
            absl::string_view::npos);
}

TEST_F(BenchmarkMatrixTest, TypoNamesFileLineAndField) {
  ExpectInvalid(Load("entry {\n  name: \"a\"\n  chek { }\n}\n"),
                {"matrix.pbtxt", "line 3", "\"chek\""});
}

TEST_F(BenchmarkMatrixTest, EmptyMatrixIsRejected) {
  ExpectInvalid(Load(""), {"matrix.pbtxt", "no entry"});
}

TEST_F(BenchmarkMatrixTest, MissingConfigNamesEntryAndFile) {
  ExpectError(
      Load("entry { name: \"lost\" pipeline { config: \"no/such.pbtxt\" } " +
           std::string(kAucCheck) + " }"),
      absl::StatusCode::kNotFound,
      {"matrix.pbtxt", "entry \"lost\"", "pipeline.config", "no/such.pbtxt"});
}

TEST_F(BenchmarkMatrixTest, UnknownMetricNamesEntryAndCheck) {
  ExpectInvalid(
      Load(PipelineEntry("knn", "",
                         "check { metric: \"mean_roc_acu\" tolerance: 0.01 }")),
      {"matrix.pbtxt", "entry \"knn\"", "check[0].metric", "\"mean_roc_acu\"",
       "mean_roc_auc"});
}

TEST_F(BenchmarkMatrixTest, SpeedEntryCannotCheckRunMetrics) {
  ExpectInvalid(
      Load("entry { name: \"speed\" speed { knn_search { } } " +
           std::string(kAucCheck) + " }"),
      {"entry \"speed\"", "check[0].metric", "SpeedMetrics", "relative_speed"});
}

TEST_F(BenchmarkMatrixTest, AbsoluteTimeCannotBeChecked) {
  ExpectInvalid(
      Load(PipelineEntry("knn", "",
                         "check { metric: \"wall_seconds\" tolerance: 1 }")),
      {"entry \"knn\"", "check[0].metric", "absolute time"});
}

TEST_F(BenchmarkMatrixTest, BadOverrideNamesEntryAndField) {
  ExpectInvalid(
      Load(PipelineEntry("knn", "set: \"scorer.knn.kk=3\"", kAucCheck)),
      {"entry \"knn\"", "pipeline.set[0]", "\"kk\""});
}

TEST_F(BenchmarkMatrixTest, OverrideToInvalidValueIsRejected) {
  ExpectInvalid(Load(PipelineEntry("knn", "set: \"batch_size=0\"", kAucCheck)),
                {"entry \"knn\"", "with overrides", "batch_size"});
}

TEST_F(BenchmarkMatrixTest, DuplicateNameIsRejected) {
  ExpectInvalid(Load(PipelineEntry("twice", "", kAucCheck) +
                     PipelineEntry("twice", "", kAucCheck)),
                {"entry[1].name", "\"twice\"", "unique"});
}

TEST_F(BenchmarkMatrixTest, InvalidNameIsRejected) {
  ExpectInvalid(Load(PipelineEntry("two words", "", kAucCheck)),
                {"entry[0].name", "\"two words\""});
  ExpectInvalid(Load(PipelineEntry("", "", kAucCheck)), {"entry[0].name"});
}

TEST_F(BenchmarkMatrixTest, EntryNeedsKindAndChecks) {
  ExpectInvalid(Load("entry { name: \"bare\" " + std::string(kAucCheck) + " }"),
                {"entry \"bare\"", "neither pipeline"});
  ExpectInvalid(Load(PipelineEntry("unchecked", "", "")),
                {"entry \"unchecked\"", "no check"});
}

TEST_F(BenchmarkMatrixTest, ToleranceMustBeGivenAndNonNegative) {
  ExpectInvalid(
      Load(PipelineEntry("knn", "", "check { metric: \"mean_roc_auc\" }")),
      {"entry \"knn\"", "check[0].tolerance", "missing"});
  ExpectInvalid(
      Load(PipelineEntry("knn", "",
                         "check { metric: \"mean_roc_auc\" tolerance: -0.1 }")),
      {"entry \"knn\"", "check[0].tolerance", "-0.1"});
}

TEST_F(BenchmarkMatrixTest, RepeatedMetricIsRejected) {
  ExpectInvalid(
      Load(PipelineEntry("knn", "", absl::StrCat(kAucCheck, " ", kAucCheck))),
      {"entry \"knn\"", "check[1].metric", "twice"});
}

TEST_F(BenchmarkMatrixTest, SpeedEntryLimitsAreChecked) {
  const std::string check =
      "check { metric: \"relative_speed\" tolerance: 0.5 }";
  ExpectInvalid(Load("entry { name: \"s\" speed { knn_search { bank_rows: 4 "
                     "k: 5 } } " +
                     check + " }"),
                {"entry \"s\"", "speed.knn_search.k", "bank_rows = 4"});
  ExpectInvalid(Load("entry { name: \"s\" speed { knn_search { dims: 0 } } " +
                     check + " }"),
                {"speed.knn_search.dims"});
  ExpectInvalid(
      Load("entry { name: \"s\" speed { knn_search { } repeats: 0 } " + check +
           " }"),
      {"speed.repeats"});
  ExpectInvalid(
      Load("entry { name: \"s\" speed { repeats: 3 } " + check + " }"),
      {"entry \"s\"", "knn_search { }"});
  ExpectInvalid(Load("entry { name: \"s\" speed { feature_extraction { } } " +
                     check + " }"),
                {"speed.feature_extraction.config", "missing"});
  ExpectInvalid(Load("entry { name: \"s\" speed { feature_extraction { "
                     "config: \"" +
                     config_ + "\" set: \"batch_sise=2\" } } " + check + " }"),
                {"speed.feature_extraction.set[0]", "batch_sise"});
}

TEST(DefaultBaselinePathTest, ReplacesMatrixSuffix) {
  EXPECT_EQ(DefaultBaselinePath("benchmarks/ci_matrix.pbtxt"),
            "benchmarks/ci_baseline.pbtxt");
  EXPECT_EQ(DefaultBaselinePath("mine.pbtxt"), "mine_baseline.pbtxt");
  EXPECT_EQ(DefaultBaselinePath("dir/nightly.txt"), "dir/nightly_baseline.txt");
  EXPECT_EQ(DefaultBaselinePath("matrix"), "matrix_baseline.pbtxt");
}

TEST_F(BenchmarkMatrixTest, BaselineLoadsAndFindsValues) {
  const std::string path = Path("baseline.pbtxt");
  ASSERT_TRUE(WriteFileAtomically(path, R"pb(
                entry {
                  name: "a"
                  value { metric: "mean_roc_auc" expected: 0.9 }
                }
                entry {
                  name: "b"
                  value { metric: "relative_speed" expected: 0.5 }
                }
              )pb")
                  .ok());
  absl::StatusOr<BenchmarkBaseline> baseline = LoadBenchmarkBaseline(path);
  ASSERT_TRUE(baseline.ok()) << baseline.status();
  const BaselineValue* value =
      FindBaselineValue(*baseline, "b", "relative_speed");
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(value->expected(), 0.5);
  EXPECT_EQ(FindBaselineValue(*baseline, "a", "relative_speed"), nullptr);
  EXPECT_EQ(FindBaselineValue(*baseline, "c", "mean_roc_auc"), nullptr);
}

TEST_F(BenchmarkMatrixTest, BaselineWithRepeatsIsRejected) {
  const std::string path = Path("baseline.pbtxt");
  ASSERT_TRUE(WriteFileAtomically(path, R"pb(
                entry {
                  name: "a"
                  value { metric: "mean_roc_auc" expected: 0.9 }
                }
                entry {
                  name: "a"
                  value { metric: "mean_roc_auc" expected: 0.8 }
                }
              )pb")
                  .ok());
  absl::StatusOr<BenchmarkBaseline> baseline = LoadBenchmarkBaseline(path);
  ASSERT_EQ(baseline.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(baseline.status().message().find("entry \"a\" appears twice"),
            absl::string_view::npos)
      << baseline.status();
  EXPECT_EQ(LoadBenchmarkBaseline(Path("absent.pbtxt")).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace panda
