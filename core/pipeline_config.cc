#include "core/pipeline_config.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "adapters/adapter.h"
#include "backbones/backbone.h"
#include "core/atomic_file.h"
#include "core/status_macros.h"
#include "datasets/dataset.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "scorers/scorer.h"

namespace panda {
namespace {

// Collects the parser's messages with their positions (1-based).
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    errors_.push_back(absl::StrCat("line ", line + 1, ", column ", column + 1,
                                   ": ", message));
  }
  void AddWarning(int line, int column, const std::string& message) override {
    AddError(line, column, message);
  }
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

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

}  // namespace

absl::StatusOr<PipelineConfig> ParsePipelineConfig(const std::string& text,
                                                   const std::string& source) {
  PipelineConfig config;
  ErrorCollector errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": invalid pipeline config: ",
                     absl::StrJoin(errors.errors(), "; ")));
  }

  for (const auto& [field, present] :
       {std::pair<const char*, bool>{"dataset", config.has_dataset()},
        {"backbone", config.has_backbone()},
        {"scorer", config.has_scorer()}}) {
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

  PANDA_RETURN_IF_ERROR(
      CheckPlugin(config.dataset(), "dataset", DatasetRegistry(), source));
  PANDA_RETURN_IF_ERROR(
      CheckPlugin(config.backbone(), "backbone", BackboneRegistry(), source));
  PANDA_RETURN_IF_ERROR(
      CheckPlugin(config.adapter(), "adapter", AdapterRegistry(), source));
  PANDA_RETURN_IF_ERROR(
      CheckPlugin(config.scorer(), "scorer", ScorerRegistry(), source));
  if (config.batch_size() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": batch_size must be at least 1, got ", config.batch_size()));
  }
  return config;
}

absl::StatusOr<PipelineConfig> LoadPipelineConfig(const std::string& path) {
  std::string text;
  absl::Status status = ReadFile(path, &text);
  if (absl::IsNotFound(status)) {
    return absl::NotFoundError(
        absl::StrCat("pipeline config not found: ", path));
  }
  PANDA_RETURN_IF_ERROR(status);
  return ParsePipelineConfig(text, path);
}

}  // namespace panda
