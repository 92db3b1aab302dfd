// Human- and machine-readable reports of a pipeline run.
#ifndef PANDA_CORE_RUN_REPORT_H_
#define PANDA_CORE_RUN_REPORT_H_

#include <string>

#include "absl/status/status.h"
#include "config/pipeline.pb.h"
#include "config/results.pb.h"

namespace panda {

// Returns a fixed-width table: one row per normal class with ROC-AUC (mean
// and standard deviation across seeds), average precision and F1-max in
// percent, then the means and extraction throughput.
std::string FormatResultsTable(const RunResult& result);

// Returns the same table in Markdown.
std::string FormatResultsMarkdown(const RunResult& result);

// Returns the CSV table, one row per class and seed: normal_class,
// class_name,seed,roc_auc,average_precision,f1_max,f1_threshold,
// train_images,test_images,test_anomalies,seconds.
std::string FormatResultsCsv(const RunResult& result);

// Writes results.json, results.csv, results.md, roc.png (ROC curves of the
// first seed), training.png (relative feature variance per class of the
// first seed, only when the run has training records) and config.pbtxt (the
// config as run, overrides applied) into a fresh folder that then replaces
// `directory`.
absl::Status WriteRunResults(const PipelineConfig& config,
                             const RunResult& result,
                             const std::string& directory);

}  // namespace panda

#endif  // PANDA_CORE_RUN_REPORT_H_
