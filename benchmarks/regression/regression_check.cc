#include "benchmarks/regression/regression_check.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "benchmarks/regression/benchmark_matrix.h"
#include "benchmarks/regression/metric_lookup.h"
#include "core/atomic_file.h"
#include "core/status_macros.h"
#include "google/protobuf/text_format.h"

namespace panda {
namespace {

double RoundToSignificantDigits(double value, int digits) {
  if (!std::isfinite(value) || value == 0) return value;
  char text[64];
  std::snprintf(text, sizeof(text), "%.*g", digits, value);
  return std::strtod(text, nullptr);
}

const EntryReport* FindEntryReport(const BenchmarkReport& report,
                                   const std::string& name) {
  for (const EntryReport& entry : report.entries()) {
    if (entry.name() == name) return &entry;
  }
  return nullptr;
}

const BaselineEntry* FindBaselineEntry(const BenchmarkBaseline& baseline,
                                       const std::string& name) {
  for (const BaselineEntry& entry : baseline.entry()) {
    if (entry.name() == name) return &entry;
  }
  return nullptr;
}

}  // namespace

CheckResult::Verdict JudgeMetric(double measured, double expected,
                                 double tolerance) {
  if (std::isnan(measured) || measured < expected - tolerance) {
    return CheckResult::REGRESSION;
  }
  if (measured > expected + tolerance) return CheckResult::BETTER;
  return CheckResult::PASS;
}

absl::Status JudgeEntry(const BenchmarkEntry& entry,
                        const google::protobuf::Message& result,
                        const BenchmarkBaseline& baseline,
                        EntryReport& report) {
  report.clear_checks();
  google::protobuf::RepeatedPtrField<CheckResult> checks;
  for (const MetricCheck& check : entry.check()) {
    absl::StatusOr<double> measured = MetricValue(result, check.metric());
    if (!measured.ok()) {
      return absl::Status(measured.status().code(),
                          absl::StrCat("metric \"", check.metric(),
                                       "\": ", measured.status().message()));
    }
    CheckResult* outcome = checks.Add();
    outcome->set_metric(check.metric());
    outcome->set_measured(*measured);
    outcome->set_tolerance(check.tolerance());
    const BaselineValue* expected =
        FindBaselineValue(baseline, entry.name(), check.metric());
    if (expected == nullptr) {
      outcome->set_verdict(CheckResult::NO_BASELINE);
      continue;
    }
    outcome->set_expected(expected->expected());
    outcome->set_verdict(
        JudgeMetric(*measured, expected->expected(), check.tolerance()));
  }
  report.mutable_checks()->Swap(&checks);
  return absl::OkStatus();
}

absl::Status CheckBaselineCoversMatrix(const BenchmarkMatrix& matrix,
                                       const BenchmarkBaseline& baseline,
                                       const std::string& baseline_path,
                                       const std::string& update_command) {
  for (const BenchmarkEntry& entry : matrix.entry()) {
    for (const MetricCheck& check : entry.check()) {
      if (FindBaselineValue(baseline, entry.name(), check.metric()) !=
          nullptr) {
        continue;
      }
      return absl::NotFoundError(absl::StrCat(
          "baseline ", baseline_path, " has no expected value for entry \"",
          entry.name(), "\", metric \"", check.metric(),
          "\"; record one with `", update_command, "`"));
    }
  }
  return absl::OkStatus();
}

BenchmarkBaseline UpdatedBaseline(const BenchmarkMatrix& matrix,
                                  const BenchmarkBaseline& previous,
                                  const BenchmarkReport& report) {
  BenchmarkBaseline baseline;
  for (const BenchmarkEntry& entry : matrix.entry()) {
    const EntryReport* measured = FindEntryReport(report, entry.name());
    if (measured == nullptr || measured->has_error()) {
      const BaselineEntry* kept = FindBaselineEntry(previous, entry.name());
      if (kept != nullptr) *baseline.add_entry() = *kept;
      continue;
    }
    BaselineEntry* updated = baseline.add_entry();
    updated->set_name(entry.name());
    for (const CheckResult& check : measured->checks()) {
      BaselineValue* value = updated->add_value();
      value->set_metric(check.metric());
      value->set_expected(RoundToSignificantDigits(check.measured(), 6));
    }
  }
  baseline.set_cores(report.cores());
  baseline.set_devices(report.devices());
  baseline.set_updated_at(report.started_at());
  return baseline;
}

absl::Status WriteBenchmarkBaseline(const std::string& path,
                                    const BenchmarkBaseline& baseline,
                                    const std::string& update_command) {
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(baseline, &text)) {
    return absl::InternalError(
        absl::StrCat("could not format the baseline for ", path));
  }
  return WriteFileAtomically(
      path, absl::StrCat("# Expected values of the benchmark matrix, written "
                         "by\n#   ",
                         update_command,
                         "\n# Rerun that command to update them; the diff "
                         "of this file is the review.\n",
                         text));
}

}  // namespace panda
