#include "benchmarks/regression/report_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace panda {
namespace {

const char* VerdictText(CheckResult::Verdict verdict) {
  switch (verdict) {
    case CheckResult::PASS:
      return "pass";
    case CheckResult::REGRESSION:
      return "REGRESSION";
    case CheckResult::BETTER:
      return "better";
    case CheckResult::NO_BASELINE:
      return "new";
  }
  return "?";
}

std::string Number(double value) { return absl::StrFormat("%.4f", value); }

}  // namespace

std::string FormatBenchmarkTable(const BenchmarkReport& report) {
  size_t entry_width = 5;
  size_t metric_width = 6;
  for (const EntryReport& entry : report.entries()) {
    entry_width = std::max(entry_width, entry.name().size());
    for (const CheckResult& check : entry.checks()) {
      metric_width = std::max(metric_width, check.metric().size());
    }
  }
  const int entry_columns = static_cast<int>(entry_width);
  const int metric_columns = static_cast<int>(metric_width);

  std::string table =
      absl::StrFormat("%-*s  %-*s  %9s  %9s  %9s  %-10s  %8s\n", entry_columns,
                      "entry", metric_columns, "metric", "expected",
                      "tolerance", "measured", "result", "wall s");
  for (const EntryReport& entry : report.entries()) {
    const std::string wall = absl::StrFormat("%.1f", entry.wall_seconds());
    if (entry.has_error()) {
      absl::StrAppendFormat(&table, "%-*s  %-*s  %9s  %9s  %9s  %-10s  %8s\n",
                            entry_columns, entry.name(), metric_columns, "-",
                            "", "", "", "ERROR", wall);
      continue;
    }
    for (int i = 0; i < entry.checks_size(); ++i) {
      const CheckResult& check = entry.checks(i);
      absl::StrAppendFormat(
          &table, "%-*s  %-*s  %9s  %9s  %9s  %-10s  %8s\n", entry_columns,
          i == 0 ? entry.name() : "", metric_columns, check.metric(),
          check.has_expected() ? Number(check.expected()) : "-",
          Number(check.tolerance()), Number(check.measured()),
          VerdictText(check.verdict()), i == 0 ? wall : "");
    }
  }
  absl::StrAppendFormat(&table, "%d %s in %.1f s\n", report.entries_size(),
                        report.entries_size() == 1 ? "entry" : "entries",
                        report.wall_seconds());

  bool speed_header = false;
  for (const EntryReport& entry : report.entries()) {
    if (!entry.has_timings()) continue;
    if (!speed_header) {
      absl::StrAppend(&table,
                      "\nspeed entries, median seconds (reported, not "
                      "checked):\n");
      speed_header = true;
    }
    const SpeedTimings& timings = entry.timings();
    absl::StrAppendFormat(
        &table,
        "%s (%s, %d threads, %d repeats):\n  %.4f s  %s\n  %.4f s  %s "
        "(reference)\n",
        entry.name(), timings.device(), timings.threads(),
        timings.samples_size(), timings.seconds(), timings.measured_work(),
        timings.reference_seconds(), timings.reference_work());
  }
  return table;
}

std::vector<std::string> DescribeFailures(const BenchmarkReport& report) {
  std::vector<std::string> lines;
  for (const EntryReport& entry : report.entries()) {
    if (entry.has_error()) {
      lines.push_back(
          absl::StrCat("entry \"", entry.name(), "\" failed: ", entry.error()));
      continue;
    }
    for (const CheckResult& check : entry.checks()) {
      if (check.verdict() != CheckResult::REGRESSION) continue;
      lines.push_back(absl::StrFormat(
          "REGRESSION in entry \"%s\", metric \"%s\": measured %.4f, below "
          "the expected %.4f - tolerance %.4f = %.4f",
          entry.name(), check.metric(), check.measured(), check.expected(),
          check.tolerance(), check.expected() - check.tolerance()));
    }
  }
  return lines;
}

std::vector<std::string> DescribeImprovements(
    const BenchmarkReport& report, const std::string& update_command) {
  std::vector<std::string> lines;
  for (const EntryReport& entry : report.entries()) {
    for (const CheckResult& check : entry.checks()) {
      if (check.verdict() != CheckResult::BETTER) continue;
      lines.push_back(absl::StrFormat(
          "entry \"%s\", metric \"%s\": measured %.4f is better than the "
          "baseline (%.4f + tolerance %.4f): update it with `%s`",
          entry.name(), check.metric(), check.measured(), check.expected(),
          check.tolerance(), update_command));
    }
  }
  return lines;
}

}  // namespace panda
