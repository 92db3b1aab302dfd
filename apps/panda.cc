// panda: runs anomaly-detection pipelines and compares their results.
//
//   panda run configs/fashion_mnist_mobilenet_v2_knn.pbtxt
//   panda run CONFIG --classes=0,3 --set scorer.knn.k=5
//   panda compare results/a/results.json results/b/results.json
//   panda plot-training results/a/results.json --output=variance.png
//   panda benchmark benchmarks/ci_matrix.pbtxt [--update_baseline]
//
// `run` prints per-class and mean metrics and writes results.json,
// results.csv, results.md, roc.png, training.png (adapters that train only)
// and the config as run to <output_dir>/<pipeline name>/. `benchmark` runs a
// regression benchmark matrix (docs/benchmarks.md). Exit status: 0 on
// success, 1 when the command fails or a benchmark finds a regression, 2 for
// a usage error.
//
// `run` also runs as several processes (ranks) configured by torchrun's
// environment variables (distributed/process_group.h, docs/distributed.md).
// The ranks share feature extraction, adaptation and kNN search, and rank 0
// alone prints and writes the results.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "benchmarks/regression/benchmark_command.h"
#include "core/compare_report.h"
#include "core/fnv1a.h"
#include "core/config_override.h"
#include "core/logging.h"
#include "core/malloc_tuning.h"
#include "core/pipeline_check.h"
#include "core/pipeline_config.h"
#include "core/pipeline_runner.h"
#include "core/run_report.h"
#include "core/status_macros.h"
#include "core/training_plot.h"
#include "distributed/process_group.h"
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

ABSL_FLAG(std::string, baseline, "",
          "benchmark: the baseline file (default: the matrix's name with "
          "_matrix replaced by _baseline)");
ABSL_FLAG(std::string, json, "",
          "benchmark: also write the report as JSON to this file");
ABSL_FLAG(bool, update_baseline, false,
          "benchmark: rewrite the baseline from this run's measurements");
ABSL_FLAG(std::string, entries, "",
          "benchmark: comma-separated names of the entries to run (default: "
          "all)");

namespace panda {
namespace {

constexpr char kUsage[] =
    "runs anomaly-detection pipelines and compares their results.\n"
    "usage: panda run CONFIG [--set FIELD.PATH=VALUE ...] [flags]\n"
    "       panda check CONFIG [--set FIELD.PATH=VALUE ...] [flags]\n"
    "       panda compare RESULTS.json RESULTS.json [...] [--output=FILE]\n"
    "       panda plot-training RESULTS.json [...] --output=FILE.png\n"
    "       panda benchmark MATRIX [--baseline=FILE] [--json=FILE]\n"
    "                              [--update_baseline] [--entries=A,B]\n"
    "  CONFIG  pipeline config in protobuf text format (see configs/)\n"
    "  --set   overrides one config field, e.g. --set scorer.knn.k=5 or\n"
    "          --set subset.max_train_per_class=100; may be repeated\n"
    "  check   validates CONFIG without running it: plugins, files, one\n"
    "          forward pass, writable folders and a memory estimate\n"
    "  plot-training  charts each run's feature variance during adaptation,\n"
    "          relative to the pretrained network and averaged over classes\n"
    "  benchmark  runs a regression benchmark matrix (docs/benchmarks.md)\n"
    "          and fails when a metric falls below its baseline";

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

// The app's flags that each command reads. Absl accepts every defined flag
// with every command, so a flag of another command would be ignored
// without a word.
const std::map<std::string, std::set<std::string>>& FlagsByCommand() {
  static const auto* flags = new std::map<std::string, std::set<std::string>>{
      {"run", {"classes", "output_dir", "cache_dir", "device", "threads"}},
      {"check", {"classes", "output_dir", "cache_dir", "device", "threads"}},
      {"compare", {"output"}},
      {"plot-training", {"output"}},
      {"benchmark", {"baseline", "json", "update_baseline", "entries"}},
  };
  return *flags;
}

// Checks the flags in `argv` (before absl parses them) against those
// `command` reads, and rejects an explicitly empty --entries, which would
// otherwise run the whole matrix. Flags of absl itself pass.
absl::Status CheckFlagsApply(const std::string& command, int argc,
                             char** argv) {
  std::set<std::string> app_flags;
  for (const auto& [name, flags] : FlagsByCommand()) {
    app_flags.insert(flags.begin(), flags.end());
  }
  const auto command_flags = FlagsByCommand().find(command);
  for (int i = 1; i < argc; ++i) {
    absl::string_view argument = argv[i];
    if (argument == "--") break;
    if (!absl::ConsumePrefix(&argument, "--") &&
        !absl::ConsumePrefix(&argument, "-")) {
      continue;
    }
    const size_t equals = argument.find('=');
    std::string name(argument.substr(0, equals));
    if (app_flags.count(name) == 0 && absl::StartsWith(name, "no") &&
        app_flags.count(name.substr(2)) > 0) {
      name = name.substr(2);
    }
    if (app_flags.count(name) == 0) continue;
    if (command_flags == FlagsByCommand().end() ||
        command_flags->second.count(name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " does not apply to `panda ", command, "`"));
    }
    if (name == "entries" && equals != absl::string_view::npos &&
        equals + 1 == argument.size()) {
      return absl::InvalidArgumentError(
          "--entries is empty; name at least one entry, or leave the flag "
          "out to run them all");
    }
  }
  return absl::OkStatus();
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

// Installs a context as the process's for the lifetime of this object.
class InstalledDistributedContext {
 public:
  explicit InstalledDistributedContext(DistributedContext* context) {
    SetProcessDistributedContext(context);
  }
  ~InstalledDistributedContext() { SetProcessDistributedContext(nullptr); }
};

// Fails unless every rank runs the same pipeline. A rank given other --set
// values or flags would shard other data, mix its features into rank 0's
// cache or stall in a collective the others never start. Fields that may
// differ per rank (threads, device, folders) are left out of the
// comparison.
absl::Status CheckSameConfigOnEveryRank(PipelineConfig config,
                                        DistributedContext& distributed) {
  if (!distributed.is_distributed()) return absl::OkStatus();
  config.clear_num_threads();
  config.clear_device();
  config.clear_output_dir();
  config.clear_cache_dir();
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);
  const uint64_t hash = Fnv1a64(text.data(), text.size());

  int64_t signed_hash = 0;
  std::memcpy(&signed_hash, &hash, sizeof(hash));
  PANDA_ASSIGN_OR_RETURN(
      const torch::Tensor hashes,
      distributed.AllGather(torch::tensor({signed_hash}, torch::kInt64),
                            "config fingerprints"));
  for (int rank = 1; rank < distributed.world_size(); ++rank) {
    if (hashes[rank].item<int64_t>() != hashes[0].item<int64_t>()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rank ", rank, "'s config differs from rank 0's after --set and "
          "flags; every rank must run the same config (only --threads, "
          "--device, --output_dir and --cache_dir may differ)"));
    }
  }
  return absl::OkStatus();
}

absl::Status Run(const std::string& config_path,
                 const std::vector<std::string>& assignments) {
  PANDA_ASSIGN_OR_RETURN(const PipelineConfig config, LoadRunConfig(config_path, assignments));
  PANDA_ASSIGN_OR_RETURN(const DistributedEnvironment environment,
                         ReadDistributedEnvironment());
  if (environment.world_size > 1) {
    SetLogPrefix(absl::StrCat("rank ", environment.rank, "/",
                              environment.world_size, ": "));
  }
  const bool writes_results = environment.rank == 0;

  // A folder that cannot be written should fail now, not after the run.
  if (writes_results) {
    const std::string probe =
        (std::filesystem::path(config.output_dir()) / ".panda-write-check").string();
    PANDA_RETURN_IF_ERROR(WriteFileAtomically(probe, ""));
    std::remove(probe.c_str());
  }

  PANDA_ASSIGN_OR_RETURN(std::unique_ptr<DistributedContext> distributed,
                         DistributedContext::Connect(environment));
  InstalledDistributedContext installed(distributed.get());
  PANDA_RETURN_IF_ERROR(CheckSameConfigOnEveryRank(config, *distributed));
  std::vector<RunFile> pictures;
  PANDA_ASSIGN_OR_RETURN(RunResult result, RunPipeline(config, &pictures));

  if (writes_results) {
    std::printf("%s", FormatResultsTable(result).c_str());
    const std::string directory =
        (std::filesystem::path(config.output_dir()) / config.name()).string();
    PANDA_RETURN_IF_ERROR(WriteRunResults(config, result, directory, pictures));
    std::printf("results written to %s/\n", directory.c_str());
  }
  // Every rank waits for rank 0's files, so that all of them exit non-zero
  // when rank 0 could not write its files.
  return distributed->Barrier("after writing the results");
}

absl::Status Check(const std::string& config_path,
                   const std::vector<std::string>& assignments) {
  PANDA_ASSIGN_OR_RETURN(const PipelineConfig config, LoadRunConfig(config_path, assignments));
  // The variables are read as `run` reads them. Joining the job is left to
  // `run`, because the other ranks would have to join a check too.
  PANDA_ASSIGN_OR_RETURN(const DistributedEnvironment environment,
                         ReadDistributedEnvironment());
  if (environment.world_size > 1) {
    std::printf("distributed: rank %d of %d, TCP store at %s:%d\n",
                environment.rank, environment.world_size,
                environment.master_address.c_str(), environment.master_port);
  }
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

absl::Status Benchmark(const std::string& matrix_path) {
  BenchmarkCommandOptions options;
  options.matrix_path = matrix_path;
  options.baseline_path = absl::GetFlag(FLAGS_baseline);
  options.json_path = absl::GetFlag(FLAGS_json);
  options.update_baseline = absl::GetFlag(FLAGS_update_baseline);
  const std::string entries = absl::GetFlag(FLAGS_entries);
  if (!entries.empty()) {
    options.entries = absl::StrSplit(entries, ',', absl::SkipEmpty());
  }
  return RunBenchmarkCommand(options);
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
  if (panda::FlagsByCommand().count(command) > 0) {
    const absl::Status flags = panda::CheckFlagsApply(command, argc, argv);
    if (!flags.ok()) {
      std::fprintf(stderr, "panda: error: %s\n",
                   std::string(flags.message()).c_str());
      return 2;
    }
  }
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
  } else if (command == "benchmark" && arguments.size() == 3 &&
             assignments.empty()) {
    status = panda::Benchmark(arguments[2]);
  } else {
    std::fprintf(stderr, "panda %s\n", panda::kUsage);
    if (panda::FlagsByCommand().count(command) == 0) {
      std::fprintf(stderr, "panda: error: %s\n",
                   command.empty() ? "no command given"
                                   : ("unknown command \"" + command + "\"")
                                         .c_str());
    } else if (!assignments.empty() && command != "run" && command != "check") {
      std::fprintf(stderr, "panda: error: --set applies to run and check only\n");
    } else {
      std::fprintf(stderr,
                   "panda: error: wrong number of arguments for `panda %s`\n",
                   command.c_str());
    }
    return 2;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "panda: error: %s\n",
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
