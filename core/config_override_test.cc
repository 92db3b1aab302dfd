#include "core/config_override.h"

#include <string>

#include "config/pipeline.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace panda {
namespace {

// Options types from config/pipeline.proto stand in for a plugin's own, so
// the test needs no plugin.
PipelineConfig Config() {
  PipelineConfig config;
  const bool parsed = google::protobuf::TextFormat::ParseFromString(
      R"pb(
        name: "base"
        scorer {
          name: "knn"
          options {
            [type.googleapis.com/panda.SubsetConfig] { max_train_per_class: 7 }
          }
        }
      )pb",
      &config);
  EXPECT_TRUE(parsed);
  return config;
}

SubsetConfig ScorerOptions(const PipelineConfig& config) {
  SubsetConfig options;
  EXPECT_TRUE(config.scorer().options().UnpackTo(&options));
  return options;
}

TEST(ConfigOverrideTest, SetsTopLevelAndNestedFields) {
  PipelineConfig config = Config();
  ASSERT_TRUE(ApplyConfigOverride("batch_size=32", config).ok());
  ASSERT_TRUE(ApplyConfigOverride("subset.max_test_per_class=5", config).ok());
  ASSERT_TRUE(ApplyConfigOverride("name=other run", config).ok());
  EXPECT_EQ(config.batch_size(), 32);
  EXPECT_EQ(config.subset().max_test_per_class(), 5);
  EXPECT_EQ(config.name(), "other run");
}

TEST(ConfigOverrideTest, SetsPluginOptionThroughAny) {
  PipelineConfig config = Config();
  ASSERT_TRUE(
      ApplyConfigOverride("scorer.knn.max_test_per_class=3", config).ok());
  EXPECT_EQ(ScorerOptions(config).max_test_per_class(), 3);
  // The field already set survives the round trip through the Any.
  EXPECT_EQ(ScorerOptions(config).max_train_per_class(), 7);
}

TEST(ConfigOverrideTest, WrongPluginNameIsRejected) {
  PipelineConfig config = Config();
  absl::Status status = ApplyConfigOverride("scorer.hnsw.k=3", config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("configured plugin \"knn\""),
            std::string::npos)
      << status;
}

TEST(ConfigOverrideTest, UnknownFieldListsFields) {
  PipelineConfig config = Config();
  absl::Status status = ApplyConfigOverride("batch_sise=3", config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("no field \"batch_sise\""), std::string::npos)
      << status;
  EXPECT_NE(status.message().find("batch_size"), std::string::npos) << status;

  status = ApplyConfigOverride("scorer.knn.k=3", config);
  EXPECT_NE(status.message().find("panda.SubsetConfig has no field \"k\""),
            std::string::npos)
      << status;
}

TEST(ConfigOverrideTest, BadValueAndSyntaxAreRejected) {
  PipelineConfig config = Config();
  EXPECT_FALSE(ApplyConfigOverride("batch_size=many", config).ok());
  EXPECT_FALSE(ApplyConfigOverride("batch_size", config).ok());
  EXPECT_FALSE(ApplyConfigOverride("=3", config).ok());
  EXPECT_FALSE(ApplyConfigOverride("subset..max_test_per_class=3", config).ok());
  EXPECT_FALSE(ApplyConfigOverride("subset=3", config).ok());
  EXPECT_FALSE(ApplyConfigOverride("normal_classes=3", config).ok());
  EXPECT_EQ(config.batch_size(), 64);
}

}  // namespace
}  // namespace panda
