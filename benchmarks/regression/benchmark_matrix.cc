#include "benchmarks/regression/benchmark_matrix.h"

#include <cmath>
#include <filesystem>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "benchmarks/regression/metric_lookup.h"
#include "config/results.pb.h"
#include "core/atomic_file.h"
#include "core/config_override.h"
#include "core/pipeline_config.h"
#include "core/status_macros.h"
#include "core/text_proto.h"
#include "google/protobuf/text_format.h"

namespace panda {
namespace {

// Sanity bound on a speed entry's threads, as for pipeline configs.
constexpr int kMaxThreads = 1024;

// Reads text-format file `path` into `message`; `what` names the file's
// kind in errors.
absl::Status ParseTextFile(const std::string& path, const std::string& what,
                           google::protobuf::Message& message) {
  std::string text;
  absl::Status read = ReadFile(path, &text);
  if (absl::IsNotFound(read)) {
    return absl::NotFoundError(absl::StrCat(what, " ", path, " not found"));
  }
  PANDA_RETURN_IF_ERROR(read);

  return ParseTextProto(text, path, what, message);
}

bool IsValidEntryName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

// Prefixes the message of a non-OK `status` with `context`, keeping its code.
absl::Status WithContext(const absl::Status& status,
                         const std::string& context) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(context, ": ", status.message()));
}

absl::Status ValidateChecks(const BenchmarkEntry& entry,
                            const std::string& context) {
  if (entry.check().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        context, ": no check; add check { metric: \"...\" tolerance: ... }"));
  }
  const google::protobuf::Descriptor& descriptor = EntryResultDescriptor(entry);
  std::set<std::string> seen;
  for (int i = 0; i < entry.check_size(); ++i) {
    const MetricCheck& check = entry.check(i);
    const std::string field = absl::StrCat(context, ": check[", i, "]");
    if (!check.has_metric()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".metric: missing"));
    }
    PANDA_RETURN_IF_ERROR(
        WithContext(ValidateMetricName(descriptor, check.metric()),
                    absl::StrCat(field, ".metric")));
    if (!seen.insert(check.metric()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".metric: \"", check.metric(),
                       "\" is checked twice in this entry"));
    }
    if (!check.has_tolerance()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".tolerance: missing for metric \"", check.metric(),
          "\"; give the distance from the baseline that still passes"));
    }
    if (!std::isfinite(check.tolerance()) || check.tolerance() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".tolerance: ", check.tolerance(),
          " is invalid; it must be a finite number of at least 0"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSpeedEntry(const SpeedEntry& speed,
                                const std::string& context) {
  if (speed.repeats() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        context, ": speed.repeats: ", speed.repeats(), " must be at least 1"));
  }
  if (speed.num_threads() < 0 || speed.num_threads() > kMaxThreads) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": speed.num_threads: ", speed.num_threads(),
                     " must be in [0, ", kMaxThreads, "]"));
  }
  switch (speed.kind_case()) {
    case SpeedEntry::kKnnSearch: {
      const KnnSearchSpeed& knn = speed.knn_search();
      for (const auto& [name, value] :
           {std::pair<const char*, int>{"queries", knn.queries()},
            {"bank_rows", knn.bank_rows()},
            {"dims", knn.dims()},
            {"memory_budget_mb", knn.memory_budget_mb()}}) {
        if (value < 1) {
          return absl::InvalidArgumentError(
              absl::StrCat(context, ": speed.knn_search.", name, ": ", value,
                           " must be at least 1"));
        }
      }
      if (knn.k() < 1 || knn.k() > knn.bank_rows()) {
        return absl::InvalidArgumentError(
            absl::StrCat(context, ": speed.knn_search.k: ", knn.k(),
                         " must be in [1, bank_rows = ", knn.bank_rows(), "]"));
      }
      return absl::OkStatus();
    }
    case SpeedEntry::kFeatureExtraction: {
      const FeatureExtractionSpeed& extraction = speed.feature_extraction();
      if (extraction.images() < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            context, ": speed.feature_extraction.images: ", extraction.images(),
            " must be at least 1"));
      }
      if (!extraction.has_config()) {
        return absl::InvalidArgumentError(absl::StrCat(
            context,
            ": speed.feature_extraction.config: missing; name the "
            "pipeline config whose dataset and backbone are timed"));
      }
      return BuildPipelineConfig(
                 extraction.config(), extraction.set(),
                 google::protobuf::RepeatedField<int32_t>(),
                 absl::StrCat(context, ": speed.feature_extraction"))
          .status();
    }
    case SpeedEntry::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(context,
                   ": speed: name what to time, knn_search { } or "
                   "feature_extraction { config: \"...\" }"));
}

absl::Status ValidateEntry(const BenchmarkEntry& entry,
                           const std::string& context) {
  switch (entry.kind_case()) {
    case BenchmarkEntry::kPipeline: {
      if (!entry.pipeline().has_config()) {
        return absl::InvalidArgumentError(absl::StrCat(
            context,
            ": pipeline.config: missing; name a pipeline config "
            "file, e.g. configs/fashion_mnist_mobilenet_v2_knn.pbtxt"));
      }
      PANDA_RETURN_IF_ERROR(
          BuildPipelineConfig(entry.pipeline().config(), entry.pipeline().set(),
                              entry.pipeline().normal_classes(),
                              absl::StrCat(context, ": pipeline"))
              .status());
      break;
    }
    case BenchmarkEntry::kSpeed:
      PANDA_RETURN_IF_ERROR(ValidateSpeedEntry(entry.speed(), context));
      break;
    case BenchmarkEntry::KIND_NOT_SET:
      return absl::InvalidArgumentError(absl::StrCat(
          context, ": the entry has neither pipeline { } nor speed { }"));
  }
  return ValidateChecks(entry, context);
}

}  // namespace

absl::StatusOr<PipelineConfig> BuildPipelineConfig(
    const std::string& config_path,
    const google::protobuf::RepeatedPtrField<std::string>& set,
    const google::protobuf::RepeatedField<int32_t>& normal_classes,
    const std::string& context) {
  absl::StatusOr<PipelineConfig> config = LoadPipelineConfig(config_path);
  if (!config.ok()) {
    return WithContext(config.status(), absl::StrCat(context, ".config"));
  }
  for (int i = 0; i < set.size(); ++i) {
    PANDA_RETURN_IF_ERROR(WithContext(ApplyConfigOverride(set.Get(i), *config),
                                      absl::StrCat(context, ".set[", i, "]")));
  }
  if (!normal_classes.empty()) {
    config->clear_normal_classes();
    for (int32_t c : normal_classes) config->add_normal_classes(c);
  }

  // Overrides may set bad values: check the result as a file's.
  std::string text;
  google::protobuf::TextFormat::PrintToString(*config, &text);
  absl::StatusOr<PipelineConfig> checked =
      ParsePipelineConfig(text, absl::StrCat(config_path, " with overrides"));
  if (!checked.ok()) return WithContext(checked.status(), context);
  return checked;
}

const google::protobuf::Descriptor& EntryResultDescriptor(
    const BenchmarkEntry& entry) {
  if (entry.has_speed()) return *SpeedMetrics::descriptor();
  return *RunResult::descriptor();
}

absl::StatusOr<BenchmarkMatrix> LoadBenchmarkMatrix(const std::string& path) {
  BenchmarkMatrix matrix;
  PANDA_RETURN_IF_ERROR(ParseTextFile(path, "benchmark matrix", matrix));
  if (matrix.entry().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the benchmark matrix has no entry"));
  }

  std::set<std::string> names;
  for (int i = 0; i < matrix.entry_size(); ++i) {
    const BenchmarkEntry& entry = matrix.entry(i);
    if (!IsValidEntryName(entry.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": entry[", i, "].name: \"", entry.name(),
                       "\" is invalid; use letters, digits, '_', '-' and '.'"));
    }
    if (!names.insert(entry.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": entry[", i, "].name: \"", entry.name(),
                       "\" names an earlier entry too; names must be unique"));
    }
    PANDA_RETURN_IF_ERROR(ValidateEntry(
        entry, absl::StrCat(path, ": entry \"", entry.name(), "\"")));
  }
  return matrix;
}

std::string DefaultBaselinePath(const std::string& matrix_path) {
  const std::filesystem::path path(matrix_path);
  const std::string file_stem = path.stem().string();
  absl::string_view stem = file_stem;
  absl::ConsumeSuffix(&stem, "_matrix");
  const std::string extension =
      path.has_extension() ? path.extension().string() : ".pbtxt";
  return (path.parent_path() / absl::StrCat(stem, "_baseline", extension))
      .string();
}

absl::StatusOr<BenchmarkBaseline> LoadBenchmarkBaseline(
    const std::string& path) {
  BenchmarkBaseline baseline;
  PANDA_RETURN_IF_ERROR(ParseTextFile(path, "benchmark baseline", baseline));
  std::set<std::string> names;
  for (const BaselineEntry& entry : baseline.entry()) {
    if (!names.insert(entry.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": entry \"", entry.name(), "\" appears twice"));
    }
    std::set<std::string> metrics;
    for (const BaselineValue& value : entry.value()) {
      if (!metrics.insert(value.metric()).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": entry \"", entry.name(), "\": metric \"",
                         value.metric(), "\" appears twice"));
      }
      if (!value.has_expected()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": entry \"", entry.name(), "\": metric \"",
                         value.metric(), "\" has no expected value"));
      }
      if (!std::isfinite(value.expected())) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": entry \"", entry.name(), "\": metric \"", value.metric(),
            "\": expected value ", value.expected(),
            " is not a finite number; record it again with --update_baseline"));
      }
    }
  }
  return baseline;
}

const BaselineValue* FindBaselineValue(const BenchmarkBaseline& baseline,
                                       const std::string& entry,
                                       const std::string& metric) {
  for (const BaselineEntry& candidate : baseline.entry()) {
    if (candidate.name() != entry) continue;
    for (const BaselineValue& value : candidate.value()) {
      if (value.metric() == metric) return &value;
    }
  }
  return nullptr;
}

}  // namespace panda
