#include "benchmarks/regression/entry_runner.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <thread>

#include "absl/strings/str_cat.h"
#include "benchmarks/regression/benchmark_matrix.h"
#include "benchmarks/regression/regression_check.h"
#include "benchmarks/regression/speed_checks.h"
#include "core/pipeline_runner.h"
#include "core/status_macros.h"
#include "torch/torch.h"

namespace panda {
namespace {

absl::Status RunPipelineEntry(const BenchmarkEntry& entry,
                              const BenchmarkBaseline& baseline,
                              const std::string& cache_dir,
                              EntryReport& report) {
  const PipelineEntry& pipeline = entry.pipeline();
  PANDA_ASSIGN_OR_RETURN(
      PipelineConfig config,
      BuildPipelineConfig(pipeline.config(), pipeline.set(),
                          pipeline.normal_classes(), "pipeline"));
  config.set_cache_dir(cache_dir);
  PANDA_ASSIGN_OR_RETURN(*report.mutable_run(), RunPipeline(config));
  return JudgeEntry(entry, report.run(), baseline, report);
}

absl::Status RunSpeedEntry(const BenchmarkEntry& entry,
                           const BenchmarkBaseline& baseline,
                           EntryReport& report) {
  const SpeedEntry& speed = entry.speed();
  const int threads =
      speed.num_threads() > 0
          ? speed.num_threads()
          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);

  SpeedMeasurement measurement;
  if (speed.has_knn_search()) {
    PANDA_ASSIGN_OR_RETURN(
        measurement,
        MeasureKnnSearchSpeed(speed.knn_search(), speed.repeats()));
  } else {
    const FeatureExtractionSpeed& extraction = speed.feature_extraction();
    PANDA_ASSIGN_OR_RETURN(
        PipelineConfig config,
        BuildPipelineConfig(extraction.config(), extraction.set(),
                            google::protobuf::RepeatedField<int32_t>(),
                            "speed.feature_extraction"));
    PANDA_ASSIGN_OR_RETURN(
        measurement, MeasureFeatureExtractionSpeed(config, extraction.images(),
                                                   speed.repeats()));
  }
  measurement.timings.set_threads(torch::get_num_threads());
  *report.mutable_speed() = measurement.metrics;
  *report.mutable_timings() = measurement.timings;
  return JudgeEntry(entry, report.speed(), baseline, report);
}

}  // namespace

EntryReport RunBenchmarkEntry(const BenchmarkEntry& entry,
                              const BenchmarkBaseline& baseline,
                              const std::string& cache_dir) {
  const auto start = std::chrono::steady_clock::now();
  EntryReport report;
  report.set_name(entry.name());
  report.set_kind(entry.has_speed() ? "speed" : "pipeline");

  absl::Status status;
  // LibTorch exceptions that escape the speed checks end up here;
  // RunPipeline turns its own into a status.
  try {
    status = entry.has_speed()
                 ? RunSpeedEntry(entry, baseline, report)
                 : RunPipelineEntry(entry, baseline, cache_dir, report);
  } catch (const c10::Error& error) {
    status = absl::InternalError(
        absl::StrCat("LibTorch error: ", error.what_without_backtrace()));
  } catch (const std::exception& error) {
    status =
        absl::InternalError(absl::StrCat("unexpected error: ", error.what()));
  }
  if (!status.ok()) {
    report.clear_checks();
    report.set_error(std::string(status.message()));
  }
  report.set_wall_seconds(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count());
  return report;
}

}  // namespace panda
