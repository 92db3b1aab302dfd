#include "core/compare_report.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/atomic_file.h"
#include "core/status_macros.h"
#include "google/protobuf/util/json_util.h"

namespace panda {
namespace {

// Mean, sample standard deviation and seed count of one row of a run.
struct Cell {
  double mean = 0;
  double std = 0;
  int seeds = 0;
};

std::string FormatCell(const Cell& cell) {
  if (cell.seeds < 2) return absl::StrFormat("%.2f", 100 * cell.mean);
  return absl::StrFormat("%.2f ± %.2f", 100 * cell.mean, 100 * cell.std);
}

std::string FormatDelta(const Cell& base, const Cell& other) {
  const double delta = other.mean - base.mean;
  std::string mark = "?";
  if (base.seeds >= 2 && other.seeds >= 2) {
    const double standard_error =
        std::sqrt(base.std * base.std / base.seeds +
                  other.std * other.std / other.seeds);
    mark = std::fabs(delta) > 2 * standard_error ? "*" : "";
  }
  return absl::StrFormat("%+.2f%s", 100 * delta, mark);
}

}  // namespace

absl::StatusOr<RunResult> LoadRunResult(const std::string& path) {
  std::string json;
  PANDA_RETURN_IF_ERROR(ReadFile(path, &json));
  RunResult result;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status =
      google::protobuf::util::JsonStringToMessage(json, &result, options);
  if (!status.ok()) {
    return absl::DataLossError(absl::StrCat(
        path, " is not a panda results.json: ", status.ToString()));
  }
  if (result.summaries_size() == 0) {
    return absl::DataLossError(
        absl::StrCat(path, " holds no per-class summaries"));
  }
  return result;
}

absl::StatusOr<std::string> FormatComparison(
    const std::vector<RunResult>& runs) {
  if (runs.size() < 2) {
    return absl::InvalidArgumentError("compare needs at least two results");
  }

  // Rows keyed by normal class, taken from the first run.
  std::vector<std::map<int, Cell>> cells(runs.size());
  std::map<int, std::string> names;
  for (size_t r = 0; r < runs.size(); ++r) {
    const int seeds = runs[r].seeds_size();
    for (const ClassSummary& row : runs[r].summaries()) {
      cells[r][row.normal_class()] = {row.roc_auc_mean(), row.roc_auc_std(),
                                      seeds};
      if (r == 0) names[row.normal_class()] = row.class_name();
    }
    if (cells[r].size() != cells[0].size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "run ", runs[r].pipeline(), " covers ", cells[r].size(),
          " classes but ", runs[0].pipeline(), " covers ", cells[0].size()));
    }
    for (const auto& [normal_class, cell] : cells[0]) {
      if (cells[r].count(normal_class) == 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "run ", runs[r].pipeline(), " has no result for class ",
            normal_class));
      }
    }
  }

  std::string header = "| class |";
  std::string rule = "|---|";
  for (size_t r = 0; r < runs.size(); ++r) {
    absl::StrAppend(&header, " ", runs[r].pipeline(), " |");
    absl::StrAppend(&rule, "---|");
    if (r > 0) {
      absl::StrAppend(&header, " Δ |");
      absl::StrAppend(&rule, "---|");
    }
  }
  std::string table = absl::StrCat(header, "\n", rule, "\n");

  auto append_row = [&](const std::string& label,
                        const std::vector<Cell>& row) {
    absl::StrAppend(&table, "| ", label, " |");
    for (size_t r = 0; r < row.size(); ++r) {
      absl::StrAppend(&table, " ", FormatCell(row[r]), " |");
      if (r > 0) absl::StrAppend(&table, " ", FormatDelta(row[0], row[r]), " |");
    }
    absl::StrAppend(&table, "\n");
  };
  for (const auto& [normal_class, name] : names) {
    std::vector<Cell> row;
    for (size_t r = 0; r < runs.size(); ++r) row.push_back(cells[r][normal_class]);
    append_row(absl::StrCat(normal_class, " ", name), row);
  }
  std::vector<Cell> means;
  for (const RunResult& run : runs) {
    means.push_back({run.mean_roc_auc(), run.mean_roc_auc_std(),
                     run.seeds_size()});
  }
  append_row("**mean**", means);

  absl::StrAppend(
      &table,
      "\nROC-AUC in percent, mean ± sample standard deviation across seeds. "
      "Δ is the difference from the first run: `*` marks a difference larger "
      "than twice its standard error across seeds, `?` one that cannot be "
      "judged because a run has a single seed.\n");
  return table;
}

}  // namespace panda
