#include "core/run_report.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "core/atomic_file.h"
#include "core/roc_plot.h"
#include "core/status_macros.h"
#include "core/training_plot.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"

namespace panda {
namespace {

// Quotes a CSV field when it contains a separator or a quote (RFC 4180).
std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\n") == std::string::npos) return value;
  return absl::StrCat("\"", absl::StrReplaceAll(value, {{"\"", "\"\""}}), "\"");
}

std::string RocAucCell(double mean, double std, int seeds) {
  if (seeds < 2) return absl::StrFormat("%.2f", 100 * mean);
  return absl::StrFormat("%.2f ± %.2f", 100 * mean, 100 * std);
}

std::string ExtractionLines(const RunResult& result) {
  std::string lines;
  for (const ExtractionStats& stats : result.extraction()) {
    if (stats.extracted()) {
      absl::StrAppendFormat(
          &lines, "%s features: %d images in %.1f s, %.1f images/s\n",
          stats.split(), stats.images(), stats.seconds(),
          stats.images_per_second());
    } else {
      absl::StrAppendFormat(&lines, "%s features: %d images from the cache\n",
                            stats.split(), stats.images());
    }
  }
  absl::StrAppendFormat(&lines, "device %s, %d threads, wall time %.1f s\n",
                        result.device(), result.threads(),
                        result.wall_seconds());
  return lines;
}

// Moves `source` to `target`, replacing an existing `target`. A crash
// between the two renames leaves the old results in `<target>.old-<pid>`.
absl::Status ReplaceFolder(const std::filesystem::path& source,
                           const std::filesystem::path& target) {
  std::error_code error;
  const std::filesystem::path old(
      absl::StrCat(target.string(), ".old-", getpid()));
  const bool had_target = std::filesystem::exists(target, error);
  if (had_target) {
    std::filesystem::rename(target, old, error);
    if (error) {
      std::filesystem::remove_all(source, error);
      return absl::InternalError(absl::StrCat(
          "failed to move the earlier results ", target.string(), " aside"));
    }
  }
  std::filesystem::rename(source, target, error);
  if (error) {
    const std::string message = error.message();
    if (had_target) std::filesystem::rename(old, target, error);
    return absl::InternalError(absl::StrCat(
        "failed to rename ", source.string(), " to ", target.string(), ": ",
        message));
  }
  std::filesystem::remove_all(old, error);
  return absl::OkStatus();
}

}  // namespace

std::string FormatResultsTable(const RunResult& result) {
  const int seeds = result.seeds_size();
  const bool segmented = result.has_mean_pixel_roc_auc();
  std::string table = absl::StrFormat("%-6s %-16s %15s %8s %8s", "class", "name",
                                      "ROC-AUC", "AP", "F1-max");
  if (segmented) absl::StrAppendFormat(&table, " %9s %8s", "pixel-AUC", "AUPRO");
  table += "\n";
  for (const ClassSummary& row : result.summaries()) {
    absl::StrAppendFormat(
        &table, "%-6d %-16s %15s %8.2f %8.2f", row.normal_class(),
        row.class_name(),
        RocAucCell(row.roc_auc_mean(), row.roc_auc_std(), seeds),
        100 * row.average_precision_mean(), 100 * row.f1_max_mean());
    if (segmented) {
      absl::StrAppendFormat(&table, " %9.2f %8.2f", 100 * row.pixel_roc_auc_mean(),
                            100 * row.aupro_mean());
    }
    table += "\n";
  }
  absl::StrAppendFormat(
      &table, "%-6s %-16s %15s %8.2f %8.2f", "mean",
      seeds > 1 ? absl::StrCat(seeds, " seeds") : "",
      RocAucCell(result.mean_roc_auc(), result.mean_roc_auc_std(), seeds),
      100 * result.mean_average_precision(), 100 * result.mean_f1_max());
  if (segmented) {
    absl::StrAppendFormat(&table, " %9.2f %8.2f", 100 * result.mean_pixel_roc_auc(),
                          100 * result.mean_aupro());
  }
  table += "\n";
  absl::StrAppend(&table, ExtractionLines(result));
  return table;
}

std::string FormatResultsMarkdown(const RunResult& result) {
  const int seeds = result.seeds_size();
  const bool segmented = result.has_mean_pixel_roc_auc();
  std::string table = absl::StrFormat("# %s\n\n| class | name | ROC-AUC | AP | F1-max |",
                                      result.pipeline());
  if (segmented) table += " pixel ROC-AUC | AUPRO |";
  table += segmented ? "\n|---|---|---|---|---|---|---|\n" : "\n|---|---|---|---|---|\n";
  for (const ClassSummary& row : result.summaries()) {
    absl::StrAppendFormat(
        &table, "| %d | %s | %s | %.2f | %.2f |", row.normal_class(),
        absl::StrReplaceAll(row.class_name(), {{"|", "\\|"}}),
        RocAucCell(row.roc_auc_mean(), row.roc_auc_std(), seeds),
        100 * row.average_precision_mean(), 100 * row.f1_max_mean());
    if (segmented) {
      absl::StrAppendFormat(&table, " %.2f | %.2f |", 100 * row.pixel_roc_auc_mean(),
                            100 * row.aupro_mean());
    }
    table += "\n";
  }
  absl::StrAppendFormat(
      &table, "| **mean** | %s | **%s** | %.2f | %.2f |",
      seeds > 1 ? absl::StrCat(seeds, " seeds") : "",
      RocAucCell(result.mean_roc_auc(), result.mean_roc_auc_std(), seeds),
      100 * result.mean_average_precision(), 100 * result.mean_f1_max());
  if (segmented) {
    absl::StrAppendFormat(&table, " **%.2f** | **%.2f** |", 100 * result.mean_pixel_roc_auc(),
                          100 * result.mean_aupro());
  }
  table += "\n\n";
  absl::StrAppend(&table, "Metrics in percent. Started ", result.started_at(),
                  ".\n\n```\n", ExtractionLines(result), "```\n");
  return table;
}

std::string FormatResultsCsv(const RunResult& result) {
  std::string csv =
      "normal_class,class_name,seed,roc_auc,average_precision,f1_max,"
      "f1_threshold,train_images,test_images,test_anomalies,seconds,"
      "pixel_roc_auc,aupro\n";
  for (const ClassResult& row : result.classes()) {
    absl::StrAppendFormat(&csv, "%d,%s,%d,%.6f,%.6f,%.6f,%.6g,%d,%d,%d,%.3f,",
                          row.normal_class(), CsvField(row.class_name()),
                          row.seed(), row.roc_auc(), row.average_precision(),
                          row.f1_max(), row.f1_threshold(), row.train_images(),
                          row.test_images(), row.test_anomalies(),
                          row.seconds());
    // Empty cells outside segmentation runs.
    if (row.has_segmentation()) {
      absl::StrAppendFormat(&csv, "%.6f,%.6f", row.segmentation().pixel_roc_auc(),
                            row.segmentation().aupro());
    } else {
      csv += ",";
    }
    csv += "\n";
  }
  return csv;
}

absl::Status WriteRunResults(const PipelineConfig& config,
                             const RunResult& result,
                             const std::string& directory,
                             const std::vector<RunFile>& files) {
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
  google::protobuf::TextFormat::Printer printer;
  printer.SetExpandAny(true);
  printer.PrintToString(config, &config_text);
  PANDA_ASSIGN_OR_RETURN(std::string roc_png, RenderRocCurvesPng(result));
  std::string pixel_roc_png;
  if (result.has_mean_pixel_roc_auc()) {
    PANDA_ASSIGN_OR_RETURN(pixel_roc_png, RenderPixelRocCurvesPng(result));
  }
  std::string training_png;
  if (HasTrainingRecords(result)) {
    PANDA_ASSIGN_OR_RETURN(training_png,
                           RenderFeatureVarianceByClassPng(result));
  }

  // The files go to a fresh folder that then replaces the old one, so the
  // folder never mixes files of two runs.
  const std::filesystem::path final_folder(directory);
  const std::filesystem::path folder(absl::StrCat(directory, ".tmp-", getpid()));
  std::error_code error;
  std::filesystem::remove_all(folder, error);
  absl::Status status =
      WriteFileAtomically((folder / "results.json").string(), json);
  if (status.ok()) {
    status = WriteFileAtomically((folder / "results.csv").string(),
                                 FormatResultsCsv(result));
  }
  if (status.ok()) {
    status = WriteFileAtomically((folder / "results.md").string(),
                                 FormatResultsMarkdown(result));
  }
  if (status.ok()) {
    status = WriteFileAtomically((folder / "roc.png").string(), roc_png);
  }
  if (status.ok() && !pixel_roc_png.empty()) {
    status = WriteFileAtomically((folder / "pixel_roc.png").string(), pixel_roc_png);
  }
  if (status.ok() && !training_png.empty()) {
    status = WriteFileAtomically((folder / "training.png").string(),
                                 training_png);
  }
  if (status.ok()) {
    status = WriteFileAtomically((folder / "config.pbtxt").string(), config_text);
  }
  for (const RunFile& file : files) {
    if (!status.ok()) break;
    const std::filesystem::path path = folder / file.path;
    std::filesystem::create_directories(path.parent_path(), error);
    status = WriteFileAtomically(path.string(), file.bytes);
  }
  if (!status.ok()) {
    std::filesystem::remove_all(folder, error);
    return status;
  }
  return ReplaceFolder(folder, final_folder);
}

}  // namespace panda
