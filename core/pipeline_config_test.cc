#include "core/pipeline_config.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "adapters/adapter.h"
#include "backbones/backbone.h"
#include "datasets/dataset.h"
#include "gtest/gtest.h"
#include "scorers/scorer.h"
#include "segmenters/segmenter.h"

namespace panda {
namespace {

// Registered names only: parsing never constructs a plugin.
template <typename T>
absl::StatusOr<std::unique_ptr<T>> Unused(const google::protobuf::Any&) {
  return absl::UnimplementedError("not constructed in this test");
}
PANDA_REGISTER_PLUGIN(DatasetRegistry, "test_dataset", Unused<Dataset>);
PANDA_REGISTER_PLUGIN(BackboneRegistry, "test_backbone", Unused<Backbone>);
PANDA_REGISTER_PLUGIN(AdapterRegistry, "none", Unused<Adapter>);
PANDA_REGISTER_PLUGIN(ScorerRegistry, "test_scorer", Unused<Scorer>);
PANDA_REGISTER_PLUGIN(AdapterRegistry, "test_adapter", Unused<Adapter>);
PANDA_REGISTER_PLUGIN(SegmenterRegistry, "test_segmenter", Unused<Segmenter>);

constexpr char kValid[] = R"pb(
  name: "valid"
  dataset { name: "test_dataset" }
  backbone { name: "test_backbone" }
  scorer { name: "test_scorer" }
)pb";

TEST(PipelineConfigTest, ParsesValidConfigWithDefaults) {
  auto config = ParsePipelineConfig(kValid, "valid.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->adapter().name(), "none");
  EXPECT_EQ(config->batch_size(), 64);
  EXPECT_EQ(config->device(), "auto");
}

TEST(PipelineConfigTest, UnknownFieldNamesFileLineAndField) {
  std::string text = std::string(kValid) + "\nbatch_sise: 3\n";
  auto config = ParsePipelineConfig(text, "typo.pbtxt");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  EXPECT_NE(message.find("typo.pbtxt"), std::string::npos) << message;
  EXPECT_NE(message.find("batch_sise"), std::string::npos) << message;
  EXPECT_NE(message.find("line 7"), std::string::npos) << message;
}

TEST(PipelineConfigTest, UnknownPluginListsRegisteredNames) {
  std::string text = kValid;
  text.replace(text.find("test_scorer"), 11, "tset_scorer");
  auto config = ParsePipelineConfig(text, "plugin.pbtxt");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  EXPECT_NE(message.find("scorer.name"), std::string::npos) << message;
  EXPECT_NE(message.find("\"tset_scorer\""), std::string::npos) << message;
  EXPECT_NE(message.find("registered: test_scorer"), std::string::npos)
      << message;
}

TEST(PipelineConfigTest, UnknownOptionsTypeIsRejected) {
  std::string text = R"pb(
    name: "x"
    dataset { name: "test_dataset" }
    backbone { name: "test_backbone" }
    scorer {
      name: "test_scorer"
      options { [type.googleapis.com/panda.NoSuchOptions] { k: 2 } }
    }
  )pb";
  auto config = ParsePipelineConfig(text, "options.pbtxt");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find("panda.NoSuchOptions"),
            std::string::npos)
      << config.status();
}

TEST(PipelineConfigTest, MissingSectionIsNamed) {
  auto config = ParsePipelineConfig(
      "name: \"x\" dataset { name: \"test_dataset\" } scorer { name: "
      "\"test_scorer\" }",
      "partial.pbtxt");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find("\"backbone\" is missing"),
            std::string::npos)
      << config.status();
}

TEST(PipelineConfigTest, MissingFileIsNotFound) {
  auto config = LoadPipelineConfig("/nonexistent/pipeline.pbtxt");
  EXPECT_TRUE(absl::IsNotFound(config.status())) << config.status();
  EXPECT_NE(config.status().message().find("/nonexistent/pipeline.pbtxt"),
            std::string::npos);
}

// A segmentation config with `segmentation_fields` inside its segmentation
// block and `extra` at the top level.
std::string SegmentationText(const std::string& segmentation_fields,
                             const std::string& extra = "") {
  return absl::StrCat(R"pb(
    name: "segmentation"
    dataset { name: "test_dataset" }
    backbone { name: "test_backbone" }
    segmentation {)pb", segmentation_fields, "}\n", extra);
}

std::string SegmentationError(const std::string& segmentation_fields,
                              const std::string& extra = "") {
  return std::string(
      ParsePipelineConfig(SegmentationText(segmentation_fields, extra), "seg.pbtxt")
          .status()
          .message());
}

constexpr char kSegmenter[] = "segmenter { name: \"test_segmenter\" } ";

TEST(PipelineConfigTest, SegmentationScoringByMapsNeedsNoScorer) {
  auto config = ParsePipelineConfig(SegmentationText(kSegmenter), "seg.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->segmentation().smoothing_sigma(), 4.0);
  EXPECT_EQ(config->segmentation().pro_fpr_limit(), 0.3);

  EXPECT_NE(SegmentationError(absl::StrCat(kSegmenter, "image_score: SCORER"))
                .find("\"scorer\" is missing"),
            std::string::npos);
}

TEST(PipelineConfigTest, BadSegmentationFieldsAreNamed) {
  EXPECT_NE(SegmentationError("segmenter { name: \"spade\" }")
                .find("segmentation.segmenter.name: unknown segmenter \"spade\""),
            std::string::npos);
  EXPECT_NE(SegmentationError("").find("segmentation.segmenter is missing"),
            std::string::npos);
  EXPECT_NE(SegmentationError(kSegmenter, "adapter { name: \"test_adapter\" }")
                .find("must be \"none\""),
            std::string::npos);
  for (const char* field : {"smoothing_sigma: -1", "smoothing_sigma: inf", "smoothing_sigma: 1e6",
                            "pictures: -2", "pro_fpr_limit: 0"}) {
    const std::string name(field, std::string(field).find(':'));
    EXPECT_NE(SegmentationError(absl::StrCat(kSegmenter, field)).find("segmentation." + name),
              std::string::npos)
        << field;
  }
}

}  // namespace
}  // namespace panda
