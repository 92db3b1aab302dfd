#include "core/run_report.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "core/atomic_file.h"
#include "core/status_macros.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"

namespace panda {
namespace {

// Quotes a CSV field when it contains a separator or a quote (RFC 4180).
std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\n") == std::string::npos) return value;
  return absl::StrCat("\"", absl::StrReplaceAll(value, {{"\"", "\"\""}}), "\"");
}

}  // namespace

std::string FormatResultsTable(const RunResult& result) {
  std::string table = absl::StrFormat("%-6s %-16s %8s %7s %7s\n", "class",
                                      "name", "ROC-AUC", "train", "test");
  for (const ClassResult& row : result.classes()) {
    absl::StrAppendFormat(&table, "%-6d %-16s %8.2f %7d %7d\n",
                          row.normal_class(), row.class_name(),
                          100 * row.roc_auc(), row.train_images(),
                          row.test_images());
  }
  absl::StrAppendFormat(&table, "%-6s %-16s %8.2f\n", "mean", "",
                        100 * result.mean_roc_auc());
  for (const ExtractionStats& stats : result.extraction()) {
    if (stats.extracted()) {
      absl::StrAppendFormat(
          &table, "%s features: %d images in %.1f s, %.1f images/s\n",
          stats.split(), stats.images(), stats.seconds(),
          stats.images_per_second());
    } else {
      absl::StrAppendFormat(&table, "%s features: %d images from the cache\n",
                            stats.split(), stats.images());
    }
  }
  absl::StrAppendFormat(&table, "device %s, %d threads, wall time %.1f s\n",
                        result.device(), result.threads(),
                        result.wall_seconds());
  return table;
}

std::string FormatResultsCsv(const RunResult& result) {
  std::string csv =
      "normal_class,class_name,roc_auc,train_images,test_images,"
      "test_anomalies,seconds\n";
  for (const ClassResult& row : result.classes()) {
    absl::StrAppendFormat(&csv, "%d,%s,%.6f,%d,%d,%d,%.3f\n",
                          row.normal_class(), CsvField(row.class_name()),
                          row.roc_auc(), row.train_images(), row.test_images(),
                          row.test_anomalies(), row.seconds());
  }
  absl::StrAppendFormat(&csv, "mean,,%.6f,,,,%.3f\n", result.mean_roc_auc(),
                        result.wall_seconds());
  return csv;
}

absl::Status WriteRunResults(const PipelineConfig& config,
                             const RunResult& result,
                             const std::string& directory) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  const auto json_status =
      google::protobuf::util::MessageToJsonString(result, &json, options);
  if (!json_status.ok()) {
    return absl::InternalError(
        absl::StrCat("failed to format results as JSON: ",
                     json_status.ToString()));
  }
  std::string config_text;
  google::protobuf::TextFormat::PrintToString(config, &config_text);

  const std::filesystem::path folder(directory);
  PANDA_RETURN_IF_ERROR(
      WriteFileAtomically((folder / "results.json").string(), json));
  PANDA_RETURN_IF_ERROR(WriteFileAtomically((folder / "results.csv").string(),
                                            FormatResultsCsv(result)));
  return WriteFileAtomically((folder / "config.pbtxt").string(), config_text);
}

}  // namespace panda
