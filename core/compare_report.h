// Side-by-side comparison of several runs' results.json files.
#ifndef PANDA_CORE_COMPARE_REPORT_H_
#define PANDA_CORE_COMPARE_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/results.pb.h"

namespace panda {

// Reads a results.json written by `panda run`. Missing files are NotFound;
// malformed JSON is DataLoss naming the file.
absl::StatusOr<RunResult> LoadRunResult(const std::string& path);

// Returns a Markdown table of per-class and mean ROC-AUC (percent) of each
// run, with the difference of every later run from the first. A difference
// is marked `*` when it exceeds twice its standard error across seeds,
// sqrt(s1^2 / n1 + s2^2 / n2), and `?` when either run has a single seed,
// because then the spread is unknown. Runs must cover the same classes.
absl::StatusOr<std::string> FormatComparison(
    const std::vector<RunResult>& runs);

}  // namespace panda

#endif  // PANDA_CORE_COMPARE_REPORT_H_
