// Human- and machine-readable reports of a pipeline run.
#ifndef PANDA_CORE_RUN_REPORT_H_
#define PANDA_CORE_RUN_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "config/pipeline.pb.h"
#include "config/results.pb.h"
#include "core/run_file.h"

namespace panda {

// Returns a fixed-width table: one row per normal class with ROC-AUC (mean
// and standard deviation across seeds), average precision and F1-max in
// percent (segmentation runs add pixel ROC-AUC and AUPRO), then the means
// and extraction throughput.
std::string FormatResultsTable(const RunResult& result);

// Returns the same table in Markdown.
std::string FormatResultsMarkdown(const RunResult& result);

// Returns the CSV table, one row per class and seed: normal_class,
// class_name,seed,roc_auc,average_precision,f1_max,f1_threshold,
// train_images,test_images,test_anomalies,seconds,pixel_roc_auc,aupro (the
// last two empty outside segmentation runs).
std::string FormatResultsCsv(const RunResult& result);

// Writes results.json, results.csv, results.md, roc.png (ROC curves of the
// first seed), pixel_roc.png (their pixel-level counterparts, segmentation
// runs only), training.png (relative feature variance per class of the
// first seed, only when the run has training records), config.pbtxt (the
// config as run, overrides applied) and `files` (such as segmentation
// pictures) into a fresh folder that then replaces `directory`.
absl::Status WriteRunResults(const PipelineConfig& config,
                             const RunResult& result,
                             const std::string& directory,
                             const std::vector<RunFile>& files = {});

}  // namespace panda

#endif  // PANDA_CORE_RUN_REPORT_H_
