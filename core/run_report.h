// Human- and machine-readable reports of a pipeline run.
#ifndef PANDA_CORE_RUN_REPORT_H_
#define PANDA_CORE_RUN_REPORT_H_

#include <string>

#include "absl/status/status.h"
#include "config/pipeline.pb.h"
#include "config/results.pb.h"

namespace panda {

// Returns a fixed-width table: one row per normal class, then the mean,
// then extraction throughput.
std::string FormatResultsTable(const RunResult& result);

// Returns the CSV table: normal_class,class_name,roc_auc,train_images,
// test_images,test_anomalies,seconds; the last row is the mean.
std::string FormatResultsCsv(const RunResult& result);

// Writes results.json, results.csv and config.pbtxt (the config as run)
// into `directory`, each atomically.
absl::Status WriteRunResults(const PipelineConfig& config,
                             const RunResult& result,
                             const std::string& directory);

}  // namespace panda

#endif  // PANDA_CORE_RUN_REPORT_H_
