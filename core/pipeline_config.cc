#include "core/pipeline_config.h"

#include <cstdint>
#include <filesystem>
#include <set>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "adapters/adapter.h"
#include "backbones/backbone.h"
#include "core/atomic_file.h"
#include "core/status_macros.h"
#include "core/text_proto.h"
#include "datasets/dataset.h"
#include "google/protobuf/text_format.h"
#include "scorers/scorer.h"
#include "segmenters/segmenter.h"

namespace panda {
namespace {

// Sanity bounds: far above any useful value, low enough that a typo cannot
// start thousands of threads or allocate a batch of millions of images.
constexpr int kMaxBatchSize = 65536;
constexpr int kMaxThreads = 1024;
constexpr double kMaxSmoothingSigma = 256;

template <typename T>
absl::Status CheckPlugin(const PluginConfig& plugin, const char* field,
                         const Registry<T>& registry, const std::string& source) {
  if (!registry.Contains(plugin.name())) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": ", field, ".name: unknown ", registry.family(), " \"",
        plugin.name(), "\"; registered: ", absl::StrJoin(registry.Names(), ", ")));
  }
  return absl::OkStatus();
}

absl::Status CheckSegmentation(const PipelineConfig& config,
                               const std::string& source) {
  const SegmentationConfig& segmentation = config.segmentation();
  if (!segmentation.has_segmenter()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": segmentation.segmenter is missing; name a segmenter plugin (",
        absl::StrJoin(SegmenterRegistry().Names(), ", "), ")"));
  }
  PANDA_RETURN_IF_ERROR(CheckPlugin(segmentation.segmenter(), "segmentation.segmenter",
                                    SegmenterRegistry(), source));
  // Segmenters read the pretrained backbone's feature maps; an adapter
  // would train a copy that they never see.
  if (config.adapter().name() != "none") {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": segmentation works on pretrained features only; adapter \"",
        config.adapter().name(), "\" must be \"none\""));
  }
  // Beyond a few hundred pixels the Gaussian flattens any map, and its
  // kernel grows with sigma until the convolution cannot be set up.
  if (!(segmentation.smoothing_sigma() >= 0 &&
        segmentation.smoothing_sigma() <= kMaxSmoothingSigma)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": segmentation.smoothing_sigma must be in [0, ",
        kMaxSmoothingSigma, "] pixels, got ", segmentation.smoothing_sigma()));
  }
  if (segmentation.pictures() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": segmentation.pictures must be 0 or more, got ",
        segmentation.pictures()));
  }
  if (!(segmentation.pro_fpr_limit() > 0 && segmentation.pro_fpr_limit() <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": segmentation.pro_fpr_limit must lie in (0, 1], got ",
        segmentation.pro_fpr_limit()));
  }
  return absl::OkStatus();
}

}  // namespace

std::string SingleLineText(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.SetSingleLineMode(true);
  printer.SetExpandAny(true);
  printer.PrintToString(message, &text);
  return text;
}

absl::StatusOr<PipelineConfig> ParsePipelineConfig(const std::string& text,
                                                   const std::string& source) {
  PipelineConfig config;
  PANDA_RETURN_IF_ERROR(
      ParseTextProto(text, source, "pipeline config", config));

  // A segmentation run that scores images by their maps needs no scorer.
  const bool scorer_needed =
      !config.has_segmentation() ||
      config.segmentation().image_score() == SegmentationConfig::SCORER;
  for (const auto& [field, present] :
       {std::pair<const char*, bool>{"dataset", config.has_dataset()},
        {"backbone", config.has_backbone()},
        {"scorer", config.has_scorer() || !scorer_needed}}) {
    if (!present) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": the field \"", field, "\" is missing"));
    }
  }
  if (!config.has_adapter()) config.mutable_adapter()->set_name("none");
  if (config.name().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": the field \"name\" is missing; results go to "
                             "<output_dir>/<name>/"));
  }

  // The name becomes a folder under output_dir, so it may not leave it.
  const std::string& name = config.name();
  if (name == "." || name == ".." ||
      name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                             "0123456789._-") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": name \"", absl::CEscape(name),
        "\" is invalid; use letters, digits, '.', '_' and '-' only"));
  }
  std::set<int> seen_classes;
  for (int normal_class : config.normal_classes()) {
    if (!seen_classes.insert(normal_class).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": normal_classes lists class ", normal_class, " twice"));
    }
  }

  PANDA_RETURN_IF_ERROR(
      CheckPlugin(config.dataset(), "dataset", DatasetRegistry(), source));
  PANDA_RETURN_IF_ERROR(
      CheckPlugin(config.backbone(), "backbone", BackboneRegistry(), source));
  PANDA_RETURN_IF_ERROR(
      CheckPlugin(config.adapter(), "adapter", AdapterRegistry(), source));
  if (config.has_scorer()) {
    PANDA_RETURN_IF_ERROR(
        CheckPlugin(config.scorer(), "scorer", ScorerRegistry(), source));
  }
  if (config.has_segmentation()) {
    PANDA_RETURN_IF_ERROR(CheckSegmentation(config, source));
  }
  if (config.batch_size() < 1 || config.batch_size() > kMaxBatchSize) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": batch_size must be in [1, ", kMaxBatchSize,
                     "], got ", config.batch_size()));
  }
  if (config.num_threads() < 0 || config.num_threads() > kMaxThreads) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": num_threads must be in [0, ", kMaxThreads,
        "] (0 uses every core), got ", config.num_threads()));
  }
  const DeploymentConfig& deployment = config.deployment();
  if (!(deployment.holdout_fraction() >= 0 &&
        deployment.holdout_fraction() < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": deployment.holdout_fraction must be in [0, 1), got ",
        deployment.holdout_fraction()));
  }
  if (!(deployment.false_positive_rate() >= 0 &&
        deployment.false_positive_rate() < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": deployment.false_positive_rate must be in [0, 1), got ",
        deployment.false_positive_rate()));
  }
  if (config.subset().max_train_per_class() < 0 ||
      config.subset().max_test_per_class() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": subset limits must be 0 (keep all) or positive"));
  }
  // Bytes must fit int64 (2^43 MiB); a budget of 8 EiB is no limit.
  if (config.memory_budget_mib() < 0 ||
      config.memory_budget_mib() > (int64_t{1} << 43) - 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": memory_budget_mib must be 0 (the memory available) or a "
        "positive number of MiB below 2^43, got ",
        config.memory_budget_mib()));
  }
  return config;
}

absl::StatusOr<PipelineConfig> LoadPipelineConfig(const std::string& path) {
  std::string text;
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("pipeline config ", path, " is a directory, not a file"));
  }
  absl::Status status = ReadFile(path, &text);
  if (absl::IsNotFound(status)) {
    return absl::NotFoundError(
        absl::StrCat("pipeline config not found: ", path));
  }
  PANDA_RETURN_IF_ERROR(status);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("pipeline config ", path, " is empty"));
  }
  return ParsePipelineConfig(text, path);
}

}  // namespace panda
