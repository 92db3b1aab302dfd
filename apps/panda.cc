// panda: runs anomaly-detection pipelines and compares their results.
//
//   panda run configs/fashion_mnist_mobilenet_v2_knn.pbtxt
//   panda run CONFIG --classes=0,3 --set scorer.knn.k=5
//   panda compare results/a/results.json results/b/results.json
//   panda plot-training results/a/results.json --output=variance.png
//
// `run` prints per-class and mean metrics and writes results.json,
// results.csv, results.md, roc.png, training.png (adapters that train only)
// and the config as run to <output_dir>/<pipeline name>/. Exit status: 0 on
// success, 1 when the command fails, 2 for a usage error.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/compare_report.h"
#include "core/config_override.h"
#include "core/logging.h"
#include "core/malloc_tuning.h"
#include "core/pipeline_check.h"
#include "core/pipeline_config.h"
#include "core/pipeline_runner.h"
#include "core/run_report.h"
#include "core/status_macros.h"
#include "core/training_plot.h"
#include "core/atomic_file.h"
#include "google/protobuf/text_format.h"

ABSL_FLAG(std::string, classes, "",
          "comma-separated normal classes to run (default: the config's "
          "normal_classes, or every class)");
ABSL_FLAG(std::string, output_dir, "",
          "folder for results (default: the config's output_dir)");
// The default of --cache_dir, which keeps the config's cache_dir.
constexpr char kCacheDirFromConfig[] = "(from the config)";

ABSL_FLAG(std::string, cache_dir, kCacheDirFromConfig,
          "folder for cached features and training checkpoints (default: the "
          "config's cache_dir; empty disables them)");
ABSL_FLAG(std::string, device, "",
          "auto, cpu or cuda (default: the config's device)");
ABSL_FLAG(int, threads, 0,
          "LibTorch threads; 0 keeps the config's num_threads");
ABSL_FLAG(std::string, output, "",
          "compare: also write the Markdown table to this file; "
          "plot-training: the PNG file to write (required)");

namespace panda {
namespace {

constexpr char kUsage[] =
    "runs anomaly-detection pipelines and compares their results.\n"
    "usage: panda run CONFIG [--set FIELD.PATH=VALUE ...] [flags]\n"
    "       panda check CONFIG [--set FIELD.PATH=VALUE ...] [flags]\n"
    "       panda compare RESULTS.json RESULTS.json [...] [--output=FILE]\n"
    "       panda plot-training RESULTS.json [...] --output=FILE.png\n"
    "  CONFIG  pipeline config in protobuf text format (see configs/)\n"
    "  --set   overrides one config field, e.g. --set scorer.knn.k=5 or\n"
    "          --set subset.max_train_per_class=100; may be repeated\n"
    "  check   validates CONFIG without running it: plugins, files, one\n"
    "          forward pass, writable folders and a memory estimate\n"
    "  plot-training  charts each run's feature variance during adaptation,\n"
    "          relative to the pretrained network and averaged over classes";

// Removes every `--set X` and `--set=X` from `argv` and returns the Xs, in
// order: absl flags keep only the last value of a repeated flag.
std::vector<std::string> TakeSetArguments(int& argc, char** argv) {
  std::vector<std::string> assignments;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string argument = argv[i];
    if (argument == "--set" && i + 1 < argc) {
      assignments.push_back(argv[++i]);
    } else if (argument.rfind("--set=", 0) == 0) {
      assignments.push_back(argument.substr(6));
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  return assignments;
}

absl::Status ApplyFlags(PipelineConfig& config) {
  const std::string classes = absl::GetFlag(FLAGS_classes);
  if (!classes.empty()) {
    config.clear_normal_classes();
    for (absl::string_view item : absl::StrSplit(classes, ',')) {
      int value = 0;
      if (!absl::SimpleAtoi(item, &value)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--classes: \"", item, "\" is not a class index"));
      }
      config.add_normal_classes(value);
    }
  }
  if (!absl::GetFlag(FLAGS_output_dir).empty()) {
    config.set_output_dir(absl::GetFlag(FLAGS_output_dir));
  }
  // An empty --cache_dir= disables the cache, as an empty cache_dir in a
  // config does, so only the default value defers to the config.
  if (absl::GetFlag(FLAGS_cache_dir) != kCacheDirFromConfig) {
    config.set_cache_dir(absl::GetFlag(FLAGS_cache_dir));
  }
  if (!absl::GetFlag(FLAGS_device).empty()) {
    config.set_device(absl::GetFlag(FLAGS_device));
  }
  if (absl::GetFlag(FLAGS_threads) != 0) {
    config.set_num_threads(absl::GetFlag(FLAGS_threads));
  }
  return absl::OkStatus();
}

// Loads the config at `config_path` with the flags and `--set` overrides
// applied, and checks the result as a file's.
absl::StatusOr<PipelineConfig> LoadRunConfig(const std::string& config_path,
                                             const std::vector<std::string>& assignments) {
  PANDA_ASSIGN_OR_RETURN(PipelineConfig config,
                         LoadPipelineConfig(config_path));
  PANDA_RETURN_IF_ERROR(ApplyFlags(config));
  for (const std::string& assignment : assignments) {
    PANDA_RETURN_IF_ERROR(ApplyConfigOverride(assignment, config));
  }
  {
    // Flags and overrides may set bad values: check the result as a file's.
    std::string text;
    google::protobuf::TextFormat::PrintToString(config, &text);
    PANDA_ASSIGN_OR_RETURN(
        config, ParsePipelineConfig(text, absl::StrCat(config_path,
                                                       " with flags")));
  }
  return config;
}

absl::Status Run(const std::string& config_path,
                 const std::vector<std::string>& assignments) {
  PANDA_ASSIGN_OR_RETURN(const PipelineConfig config, LoadRunConfig(config_path, assignments));

  // A folder that cannot be written should fail now, not after the run.
  const std::string probe =
      (std::filesystem::path(config.output_dir()) / ".panda-write-check").string();
  PANDA_RETURN_IF_ERROR(WriteFileAtomically(probe, ""));
  std::remove(probe.c_str());

  std::vector<RunFile> pictures;
  PANDA_ASSIGN_OR_RETURN(RunResult result, RunPipeline(config, &pictures));
  std::printf("%s", FormatResultsTable(result).c_str());

  const std::string directory =
      (std::filesystem::path(config.output_dir()) / config.name()).string();
  PANDA_RETURN_IF_ERROR(WriteRunResults(config, result, directory, pictures));
  std::printf("results written to %s/\n", directory.c_str());
  return absl::OkStatus();
}

absl::Status Check(const std::string& config_path,
                   const std::vector<std::string>& assignments) {
  PANDA_ASSIGN_OR_RETURN(const PipelineConfig config, LoadRunConfig(config_path, assignments));
  const std::vector<CheckFinding> findings = CheckPipeline(config);
  std::printf("%s", FormatCheckReport(findings).c_str());
  for (const CheckFinding& finding : findings) {
    if (!finding.status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(config_path, ": ", finding.subject, ": ", finding.status.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status Compare(const std::vector<std::string>& paths) {
  std::vector<RunResult> runs;
  for (const std::string& path : paths) {
    PANDA_ASSIGN_OR_RETURN(RunResult run, LoadRunResult(path));
    runs.push_back(std::move(run));
  }
  PANDA_ASSIGN_OR_RETURN(std::string table, FormatComparison(runs));
  std::printf("%s", table.c_str());
  if (!absl::GetFlag(FLAGS_output).empty()) {
    PANDA_RETURN_IF_ERROR(
        WriteFileAtomically(absl::GetFlag(FLAGS_output), table));
  }
  return absl::OkStatus();
}

// Writes one chart of the runs' mean relative feature variance per epoch.
// Each line is labelled with its run's pipeline name, or with the file's
// path where that name is empty or shared by several of the files.
absl::Status PlotTraining(const std::vector<std::string>& paths,
                          const std::string& output) {
  std::vector<RunResult> runs;
  std::map<std::string, int> name_counts;
  for (const std::string& path : paths) {
    PANDA_ASSIGN_OR_RETURN(RunResult run, LoadRunResult(path));
    ++name_counts[run.pipeline()];
    runs.push_back(std::move(run));
  }
  std::vector<std::pair<std::string, RunResult>> labelled;
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string& name = runs[i].pipeline();
    const bool unique = !name.empty() && name_counts[name] == 1;
    labelled.emplace_back(unique ? name : paths[i], std::move(runs[i]));
  }
  PANDA_ASSIGN_OR_RETURN(std::string png,
                         RenderFeatureVarianceByRunPng(labelled));
  PANDA_RETURN_IF_ERROR(WriteFileAtomically(output, png));
  std::printf("feature variance chart of %zu runs written to %s\n",
              labelled.size(), output.c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace panda

int main(int argc, char** argv) {
  panda::RestartWithMallocTuning(argv);
  absl::SetProgramUsageMessage(panda::kUsage);
  const std::vector<std::string> assignments =
      panda::TakeSetArguments(argc, argv);
  std::vector<char*> arguments = absl::ParseCommandLine(argc, argv);

  // Under `bazel run`, relative paths mean the folder the user ran it from.
  if (const char* working_directory = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(working_directory) != 0) {
      std::fprintf(stderr, "panda: cannot enter %s\n", working_directory);
      return 1;
    }
  }

  const std::string command = arguments.size() > 1 ? arguments[1] : "";
  absl::Status status;
  if (command == "run" && arguments.size() == 3) {
    status = panda::Run(arguments[2], assignments);
  } else if (command == "check" && arguments.size() == 3) {
    status = panda::Check(arguments[2], assignments);
  } else if (command == "compare" && arguments.size() >= 4 &&
             assignments.empty()) {
    status = panda::Compare(
        std::vector<std::string>(arguments.begin() + 2, arguments.end()));
  } else if (command == "plot-training" && arguments.size() >= 3 &&
             assignments.empty()) {
    const std::string output = absl::GetFlag(FLAGS_output);
    if (output.empty()) {
      std::fprintf(stderr,
                   "panda: error: plot-training needs --output=FILE.png, the "
                   "chart to write\n");
      return 2;
    }
    status = panda::PlotTraining(
        std::vector<std::string>(arguments.begin() + 2, arguments.end()),
        output);
  } else {
    std::fprintf(stderr, "panda %s\n", panda::kUsage);
    return 2;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "panda: error: %s\n",
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
