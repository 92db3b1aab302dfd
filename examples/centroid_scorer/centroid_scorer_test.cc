// Shows that a plugin registered from a package outside the core folders is
// found by name, configured from a pipeline config, and runs.
#include <string>

#include "core/pipeline_config.h"
#include "gtest/gtest.h"
#include "scorers/scorer.h"
#include "torch/torch.h"

namespace panda {
namespace {

constexpr char kConfig[] = R"pb(
  name: "centroid_example"
  dataset { name: "idx" }
  backbone { name: "keras" }
  scorer {
    name: "centroid_distance"
    options {
      [type.googleapis.com/panda.examples.CentroidScorerOptions] {
        squared: false
      }
    }
  }
)pb";

TEST(CentroidScorerTest, RegisteredOutsideCore) {
  const std::vector<std::string> names = ScorerRegistry().Names();
  EXPECT_NE(std::find(names.begin(), names.end(), "centroid_distance"),
            names.end());
}

TEST(CentroidScorerTest, ConfiguredFromPipelineText) {
  auto config = ParsePipelineConfig(kConfig, "inline config");
  ASSERT_TRUE(config.ok()) << config.status();
  auto scorer = ScorerRegistry().Create(config->scorer().name(),
                                        config->scorer().options());
  ASSERT_TRUE(scorer.ok()) << scorer.status();

  // Training features (0,0) and (2,0) have the centroid (1,0); the test
  // point (1,3) is 3 away from it and (4,4) is 5 away.
  ASSERT_TRUE((*scorer)->Fit(torch::tensor({0.f, 0.f, 2.f, 0.f}).reshape({2, 2})).ok());
  auto scores = (*scorer)->Score(torch::tensor({1.f, 3.f, 4.f, 4.f}).reshape({2, 2}));
  ASSERT_TRUE(scores.ok()) << scores.status();
  EXPECT_FLOAT_EQ((*scores)[0].item<float>(), 3.f);
  EXPECT_FLOAT_EQ((*scores)[1].item<float>(), 5.f);
}

TEST(CentroidScorerTest, UnknownScorerNameListsThisPlugin) {
  std::string config = kConfig;
  config.replace(config.find("\"centroid_distance\""), 19, "\"centroid\"");
  auto parsed = ParsePipelineConfig(config, "inline config");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("centroid_distance"),
            std::string::npos)
      << parsed.status();
}

}  // namespace
}  // namespace panda
