// panda: runs anomaly-detection pipelines.
//
//   panda run configs/fashion_mnist_mobilenet_v2_knn.pbtxt
//   panda run CONFIG --classes=0,3 --output_dir=/tmp/results
//
// Prints per-class and mean ROC-AUC and writes results.json, results.csv and
// the config as run to <output_dir>/<pipeline name>/. Exit status: 0 on
// success, 1 when the run fails, 2 for a usage error.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/logging.h"
#include "core/malloc_tuning.h"
#include "core/pipeline_config.h"
#include "core/pipeline_runner.h"
#include "core/run_report.h"
#include "core/status_macros.h"

ABSL_FLAG(std::string, classes, "",
          "comma-separated normal classes to run (default: the config's "
          "normal_classes, or every class)");
ABSL_FLAG(std::string, output_dir, "",
          "folder for results (default: the config's output_dir)");
ABSL_FLAG(std::string, cache_dir, "",
          "folder for cached features (default: the config's cache_dir)");
ABSL_FLAG(std::string, device, "",
          "auto, cpu or cuda (default: the config's device)");
ABSL_FLAG(int, threads, 0,
          "LibTorch threads; 0 keeps the config's num_threads");

namespace panda {
namespace {

constexpr char kUsage[] =
    "runs anomaly-detection pipelines.\n"
    "usage: panda run CONFIG [flags]\n"
    "  CONFIG  pipeline config in protobuf text format (see configs/)";

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
  if (!absl::GetFlag(FLAGS_cache_dir).empty()) {
    config.set_cache_dir(absl::GetFlag(FLAGS_cache_dir));
  }
  if (!absl::GetFlag(FLAGS_device).empty()) {
    config.set_device(absl::GetFlag(FLAGS_device));
  }
  if (absl::GetFlag(FLAGS_threads) > 0) {
    config.set_num_threads(absl::GetFlag(FLAGS_threads));
  }
  return absl::OkStatus();
}

absl::Status Run(const std::string& config_path) {
  PANDA_ASSIGN_OR_RETURN(PipelineConfig config,
                         LoadPipelineConfig(config_path));
  PANDA_RETURN_IF_ERROR(ApplyFlags(config));

  PANDA_ASSIGN_OR_RETURN(RunResult result, RunPipeline(config));
  std::printf("%s", FormatResultsTable(result).c_str());

  const std::string directory =
      (std::filesystem::path(config.output_dir()) / config.name()).string();
  PANDA_RETURN_IF_ERROR(WriteRunResults(config, result, directory));
  std::printf("results written to %s/\n", directory.c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace panda

int main(int argc, char** argv) {
  panda::RestartWithMallocTuning(argv);
  absl::SetProgramUsageMessage(panda::kUsage);
  std::vector<char*> arguments = absl::ParseCommandLine(argc, argv);

  // Under `bazel run`, relative paths mean the folder the user ran it from.
  if (const char* working_directory = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(working_directory) != 0) {
      std::fprintf(stderr, "panda: cannot enter %s\n", working_directory);
      return 1;
    }
  }

  if (arguments.size() != 3 || std::string(arguments[1]) != "run") {
    std::fprintf(stderr, "panda %s\n", panda::kUsage);
    return 2;
  }
  absl::Status status = panda::Run(arguments[2]);
  if (!status.ok()) {
    std::fprintf(stderr, "panda: error: %s\n",
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
