#include "benchmarks/regression/benchmark_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <set>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "benchmarks/regression/benchmark_matrix.h"
#include "benchmarks/regression/entry_runner.h"
#include "benchmarks/regression/regression_check.h"
#include "benchmarks/regression/report_table.h"
#include "benchmarks/regression/scratch_folder.h"
#include "core/atomic_file.h"
#include "core/logging.h"
#include "core/status_macros.h"
#include "google/protobuf/util/json_util.h"

namespace panda {
namespace {

// Restores the log level it found when it goes out of scope.
class ScopedLogLevel {
 public:
  explicit ScopedLogLevel(LogLevel level) : previous_(MinLogLevel()) {
    SetMinLogLevel(level);
  }
  ~ScopedLogLevel() { SetMinLogLevel(previous_); }

 private:
  LogLevel previous_;
};

std::string UtcNow() {
  const std::time_t now = std::time(nullptr);
  std::tm utc;
  gmtime_r(&now, &utc);
  char timestamp[32];
  std::strftime(timestamp, sizeof(timestamp), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return timestamp;
}

std::string UpdateCommand(const BenchmarkCommandOptions& options,
                          const std::string& baseline_path) {
  std::string command = absl::StrCat("./panda benchmark ", options.matrix_path);
  if (baseline_path != DefaultBaselinePath(options.matrix_path)) {
    absl::StrAppend(&command, " --baseline=", baseline_path);
  }
  if (!options.entries.empty()) {
    absl::StrAppend(&command, " --entries=", absl::StrJoin(options.entries, ","));
  }
  absl::StrAppend(&command, " --update_baseline");
  return command;
}

bool IsSameFile(const std::string& a, const std::string& b) {
  std::error_code error;
  if (std::filesystem::equivalent(a, b, error)) return true;
  return std::filesystem::weakly_canonical(a, error) ==
         std::filesystem::weakly_canonical(b, error);
}

// Fails unless `path` can be written at the end of the run: not a folder,
// not one of `inputs`, and in a folder this process may write (or one it
// may create). Checked first, because a run can take many minutes.
absl::Status CheckOutputPath(const std::string& flag, const std::string& path,
                             const std::vector<std::string>& inputs) {
  for (const std::string& input : inputs) {
    if (IsSameFile(path, input)) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": ", path, " is the input file ", input,
          "; writing there would destroy it"));
    }
  }
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, " is a folder; name a file"));
  }
  std::filesystem::path folder =
      std::filesystem::absolute(path, error).parent_path();
  while (!folder.empty() && !std::filesystem::exists(folder, error) &&
         folder != folder.parent_path()) {
    folder = folder.parent_path();
  }
  if (!std::filesystem::is_directory(folder, error) ||
      access(folder.c_str(), W_OK) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        flag, ": cannot write ", path, ": folder ", folder.string(),
        " is not writable"));
  }
  return absl::OkStatus();
}

// Names of the baseline's entries that `matrix` does not have.
std::vector<std::string> EntriesMissingFromMatrix(
    const BenchmarkBaseline& baseline, const BenchmarkMatrix& matrix) {
  std::set<std::string> names;
  for (const BenchmarkEntry& entry : matrix.entry()) names.insert(entry.name());
  std::vector<std::string> missing;
  for (const BaselineEntry& entry : baseline.entry()) {
    if (names.count(entry.name()) == 0) missing.push_back(entry.name());
  }
  return missing;
}

// Warns when the baseline was recorded on another kind of machine, where
// the speed ratios and float rounding may differ.
void WarnOnOtherMachineKind(const BenchmarkBaseline& baseline,
                            const BenchmarkReport& report,
                            const std::string& baseline_path) {
  const bool other_cores = baseline.has_cores() && baseline.cores() != report.cores();
  const bool other_devices =
      baseline.has_devices() && !report.devices().empty() &&
      baseline.devices() != report.devices();
  if (!other_cores && !other_devices) return;
  std::fprintf(stderr,
               "warning: baseline %s was recorded with %d cores on %s; this "
               "run had %d cores on %s. Its values may not apply here; keep "
               "one baseline per kind of machine.\n",
               baseline_path.c_str(), baseline.cores(),
               baseline.devices().c_str(), report.cores(),
               report.devices().c_str());
}

// The entries of `matrix` named in `names`, in the matrix's order; all of
// them when `names` is empty.
absl::StatusOr<BenchmarkMatrix> SelectEntries(
    const BenchmarkMatrix& matrix, const std::vector<std::string>& names,
    const std::string& matrix_path) {
  if (names.empty()) return matrix;
  std::set<std::string> wanted(names.begin(), names.end());
  std::vector<std::string> all;
  BenchmarkMatrix selected;
  for (const BenchmarkEntry& entry : matrix.entry()) {
    all.push_back(entry.name());
    if (wanted.erase(entry.name()) > 0) *selected.add_entry() = entry;
  }
  if (!wanted.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--entries: ", matrix_path, " has no entry \"", *wanted.begin(),
        "\"; entries: ", absl::StrJoin(all, ", ")));
  }
  return selected;
}

// The devices of the entries that ran, sorted and comma-separated.
std::string Devices(const BenchmarkReport& report) {
  std::set<std::string> devices;
  for (const EntryReport& entry : report.entries()) {
    if (entry.run().has_device()) devices.insert(entry.run().device());
    if (entry.timings().has_device()) devices.insert(entry.timings().device());
  }
  return absl::StrJoin(devices, ", ");
}

absl::Status WriteJsonReport(const std::string& path,
                             const BenchmarkReport& report) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  const auto status =
      google::protobuf::util::MessageToJsonString(report, &json, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat(
        "failed to format the benchmark report as JSON: ", status.ToString()));
  }
  return WriteFileAtomically(path, json);
}

BenchmarkReport RunEntries(const BenchmarkMatrix& matrix,
                           const BenchmarkBaseline& baseline,
                           const std::string& cache_dir) {
  BenchmarkReport report;
  report.set_started_at(UtcNow());
  report.set_cores(static_cast<int>(std::thread::hardware_concurrency()));
  const auto start = std::chrono::steady_clock::now();

  // The pipelines' INFO lines would bury the one progress line per entry.
  ScopedLogLevel quiet(LogLevel::kWarning);
  const int count = matrix.entry_size();
  for (int i = 0; i < count; ++i) {
    const BenchmarkEntry& entry = matrix.entry(i);
    const std::string what =
        entry.has_pipeline()
            ? absl::StrCat("pipeline ", entry.pipeline().config())
            : std::string(entry.speed().has_knn_search()
                              ? "speed of exact kNN search"
                              : "speed of feature extraction");
    std::fprintf(stderr, "benchmark [%d/%d] %s: %s\n", i + 1, count,
                 entry.name().c_str(), what.c_str());
    EntryReport* result = report.add_entries();
    *result = RunBenchmarkEntry(entry, baseline, cache_dir);
    if (result->has_error()) {
      report.set_errors(report.errors() + 1);
      std::fprintf(stderr, "benchmark [%d/%d] %s: failed after %.1f s: %s\n",
                   i + 1, count, entry.name().c_str(), result->wall_seconds(),
                   result->error().c_str());
      continue;
    }
    for (const CheckResult& check : result->checks()) {
      if (check.verdict() == CheckResult::REGRESSION) {
        report.set_regressions(report.regressions() + 1);
      }
    }
    std::fprintf(stderr, "benchmark [%d/%d] %s: done in %.1f s\n", i + 1, count,
                 entry.name().c_str(), result->wall_seconds());
  }
  report.set_devices(Devices(report));
  report.set_wall_seconds(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count());
  return report;
}

}  // namespace

absl::Status RunBenchmarkCommand(const BenchmarkCommandOptions& options) {
  PANDA_ASSIGN_OR_RETURN(const BenchmarkMatrix matrix,
                         LoadBenchmarkMatrix(options.matrix_path));
  PANDA_ASSIGN_OR_RETURN(
      const BenchmarkMatrix selected,
      SelectEntries(matrix, options.entries, options.matrix_path));
  const std::string baseline_path =
      options.baseline_path.empty() ? DefaultBaselinePath(options.matrix_path)
                                    : options.baseline_path;
  const std::string update_command = UpdateCommand(options, baseline_path);

  // Checked before any entry runs, so that a missing value fails at once
  // rather than after minutes of work.
  BenchmarkBaseline baseline;
  absl::StatusOr<BenchmarkBaseline> loaded =
      LoadBenchmarkBaseline(baseline_path);
  if (loaded.ok()) {
    baseline = *std::move(loaded);
  } else if (!(options.update_baseline && absl::IsNotFound(loaded.status()))) {
    if (absl::IsNotFound(loaded.status())) {
      return absl::NotFoundError(absl::StrCat(loaded.status().message(),
                                              "; record one with `",
                                              update_command, "`"));
    }
    return loaded.status();
  }
  if (!options.update_baseline) {
    PANDA_RETURN_IF_ERROR(CheckBaselineCoversMatrix(
        selected, baseline, baseline_path, update_command));
  }

  // An update drops the entries the matrix no longer has. When it has none
  // of them, the baseline most likely belongs to another matrix.
  const std::vector<std::string> dropped =
      EntriesMissingFromMatrix(baseline, matrix);
  if (options.update_baseline && !dropped.empty() &&
      static_cast<int>(dropped.size()) == baseline.entry_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--update_baseline: baseline ", baseline_path,
        " has none of the entries of ", options.matrix_path,
        " and would lose all of its own (", absl::StrJoin(dropped, ", "),
        "); name the matrix's own baseline with --baseline, or remove the "
        "file to start a new one"));
  }
  if (options.update_baseline) {
    PANDA_RETURN_IF_ERROR(CheckOutputPath("--baseline", baseline_path,
                                          {options.matrix_path}));
  }
  if (!options.json_path.empty()) {
    PANDA_RETURN_IF_ERROR(CheckOutputPath(
        "--json", options.json_path, {options.matrix_path, baseline_path}));
  }

  ScratchFolder cache;
  PANDA_RETURN_IF_ERROR(cache.Create());
  BenchmarkReport report = RunEntries(selected, baseline, cache.path());
  report.set_matrix(options.matrix_path);
  report.set_baseline(baseline_path);

  std::printf("%s", FormatBenchmarkTable(report).c_str());
  WarnOnOtherMachineKind(baseline, report, baseline_path);
  if (!options.update_baseline) {
    for (const std::string& line :
         DescribeImprovements(report, update_command)) {
      std::printf("better than the baseline: %s\n", line.c_str());
    }
  }
  if (!options.json_path.empty()) {
    PANDA_RETURN_IF_ERROR(WriteJsonReport(options.json_path, report));
    std::printf("report written to %s\n", options.json_path.c_str());
  }

  const std::vector<std::string> failures = DescribeFailures(report);
  if (options.update_baseline) {
    if (report.errors() > 0) {
      return absl::OutOfRangeError(absl::StrCat(
          "baseline ", baseline_path, " left unchanged (failed entries: ",
          report.errors(), "):\n  ", absl::StrJoin(failures, "\n  ")));
    }
    PANDA_RETURN_IF_ERROR(WriteBenchmarkBaseline(
        baseline_path, UpdatedBaseline(matrix, baseline, report),
        update_command));
    std::printf("baseline written to %s\n", baseline_path.c_str());
    if (!dropped.empty()) {
      std::printf("dropped from the baseline, no longer in the matrix: %s\n",
                  absl::StrJoin(dropped, ", ").c_str());
    }
    return absl::OkStatus();
  }
  if (!failures.empty()) {
    return absl::OutOfRangeError(absl::StrCat(
        "the benchmark failed (regressions: ", report.regressions(),
        ", failed entries: ", report.errors(), "):\n  ",
        absl::StrJoin(failures, "\n  ")));
  }
  return absl::OkStatus();
}

}  // namespace panda
