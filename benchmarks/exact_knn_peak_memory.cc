// Peak resident memory of the "knn" scorer: builds a random float32 bank of
// --rows x --dims and --queries queries, records the process's peak
// resident set (VmHWM in /proc/self/status) before Fit() and after Score(),
// and prints one table row. Run one process per case, since the peak of a
// process never goes down:
//
//   for rows in 100000 300000 1000000; do
//     bazel-bin/benchmarks/exact_knn_peak_memory --rows=$rows --budget_mb=256
//   done
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "core/malloc_tuning.h"
#include "google/protobuf/any.pb.h"
#include "scorers/knn_scorer_options.pb.h"
#include "scorers/scorer.h"
#include "torch/torch.h"

ABSL_FLAG(int64_t, rows, 100000, "training (bank) vectors");
ABSL_FLAG(int64_t, dims, 1280, "dimensions per vector");
ABSL_FLAG(int64_t, queries, 10000, "test vectors");
ABSL_FLAG(int32_t, budget_mb, 256, "KnnScorerOptions.memory_budget_mb");

namespace {

// VmHWM, the peak resident set of this process, in MiB; -1 if unreadable.
double PeakResidentMib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::stod(line.substr(6)) / 1024.0;  // the value is in kB
    }
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  panda::RestartWithMallocTuning(argv);
  absl::ParseCommandLine(argc, argv);
  const int64_t rows = absl::GetFlag(FLAGS_rows);
  const int64_t dims = absl::GetFlag(FLAGS_dims);
  const int64_t num_queries = absl::GetFlag(FLAGS_queries);
  if (rows < 2 || dims < 1 || num_queries < 0) {
    std::fprintf(stderr,
                 "--rows must be at least 2 (the scorer's k), --dims at least "
                 "1 and --queries at least 0\n");
    return 2;
  }

  panda::KnnScorerOptions options;
  options.set_memory_budget_mb(absl::GetFlag(FLAGS_budget_mb));
  google::protobuf::Any any;
  any.PackFrom(options);
  auto scorer = panda::ScorerRegistry().Create("knn", any);
  if (!scorer.ok()) {
    std::fprintf(stderr, "%s\n", scorer.status().ToString().c_str());
    return 1;
  }

  torch::manual_seed(1);
  const torch::Tensor bank = torch::randn({rows, dims});
  const torch::Tensor queries = torch::randn({num_queries, dims});
  const double before = PeakResidentMib();

  const absl::Status fitted = (*scorer)->Fit(bank);
  if (!fitted.ok()) {
    std::fprintf(stderr, "%s\n", fitted.ToString().c_str());
    return 1;
  }
  const double after_fit = PeakResidentMib();
  const absl::StatusOr<torch::Tensor> scores = (*scorer)->Score(queries);
  if (!scores.ok()) {
    std::fprintf(stderr, "%s\n", scores.status().ToString().c_str());
    return 1;
  }
  const double after = PeakResidentMib();
  const double data_mib =
      static_cast<double>(rows + num_queries) * dims * sizeof(float) / (1 << 20);
  std::printf(
      "rows %ld dims %ld queries %ld budget_mb %d | bank+queries %.0f MiB | "
      "peak before Fit %.0f MiB | after Fit %.0f MiB | after Score %.0f MiB | "
      "growth %.0f MiB\n",
      rows, dims, num_queries, options.memory_budget_mb(), data_mib, before,
      after_fit, after, after - before);
  return 0;
}
