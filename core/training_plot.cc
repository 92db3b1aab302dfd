#include "core/training_plot.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/chart.h"

namespace panda {
namespace {

constexpr char kNoTraining[] = "(no training)";
constexpr char kNoBaseline[] = "(no epoch 0)";

// One legend entry: a line through `points` (epoch to relative variance),
// or, with no points, a grey entry saying why.
struct Series {
  std::string name;
  std::map<int, double> points;
  std::string missing_reason;
};

// Bounds of the log10 y axis.
struct LogAxis {
  double low = 0;
  double high = 0;
};

ChartLayout TrainingChartLayout() {
  ChartLayout layout;
  layout.width = kTrainingChartWidth;
  layout.height = kTrainingChartHeight;
  layout.left = kTrainingChartLeft;
  layout.top = kTrainingChartTop;
  layout.plot_width = kTrainingChartPlotWidth;
  layout.plot_height = kTrainingChartPlotHeight;
  return layout;
}

std::vector<const ClassResult*> FirstSeedClasses(const RunResult& result) {
  std::vector<const ClassResult*> rows;
  if (result.classes_size() == 0) return rows;
  const int first_seed = result.classes(0).seed();
  for (const ClassResult& row : result.classes()) {
    if (row.seed() == first_seed) rows.push_back(&row);
  }
  return rows;
}

// Returns the relative variance at each epoch of `row`, empty when its
// records have no finite, positive variance at epoch 0 to divide by.
std::map<int, double> RelativeVariances(const ClassResult& row) {
  std::map<int, double> relative;
  double baseline = 0;
  for (const EpochRecord& record : row.training()) {
    if (record.epoch() == 0) baseline = record.feature_variance();
  }
  if (!(baseline > 0) || !std::isfinite(baseline)) return relative;
  for (const EpochRecord& record : row.training()) {
    const double value = record.feature_variance() / baseline;
    if (!std::isfinite(value)) continue;
    relative[record.epoch()] = std::max(value, kMinRelativeVariance);
  }
  return relative;
}

// Returns a series of `points`, or one that gives the reason it has none.
Series MakeSeries(std::string name, std::map<int, double> points,
                  bool has_records) {
  Series series;
  series.name = std::move(name);
  series.points = std::move(points);
  if (series.points.empty()) {
    series.missing_reason = has_records ? kNoBaseline : kNoTraining;
  }
  return series;
}

LogAxis FitLogAxis(double min_value, double max_value) {
  LogAxis axis{std::log10(min_value) - 0.1, std::log10(max_value) + 0.1};
  if (axis.high - axis.low < 1) {
    const double centre = (axis.low + axis.high) / 2;
    axis = {centre - 0.5, centre + 0.5};
  }
  return axis;
}

// Returns the values to label on a log axis: 1, 2 and 5 times each power
// of ten when it spans at most 2.5 decades, else powers of ten, thinned to
// at most about ten labels. The value 1 is labelled whenever it is in range.
std::vector<double> LogTicks(const LogAxis& axis) {
  const double span = axis.high - axis.low;
  const bool fine = span <= 2.5;
  const std::vector<double> mantissas =
      fine ? std::vector<double>{1, 2, 5} : std::vector<double>{1};
  const int step = fine ? 1 : static_cast<int>(std::ceil(span / 10));
  std::vector<double> ticks;
  for (int exponent = static_cast<int>(std::floor(axis.low));
       exponent <= static_cast<int>(std::ceil(axis.high)); ++exponent) {
    if (exponent % step != 0) continue;
    for (double mantissa : mantissas) {
      const double value = mantissa * std::pow(10.0, exponent);
      const double position = std::log10(value);
      if (position >= axis.low && position <= axis.high) {
        ticks.push_back(value);
      }
    }
  }
  return ticks;
}

// Returns the smallest of 1, 2, 5, 10, 20, 50, ... epochs that puts at most
// ten steps between epoch 0 and `last_epoch`.
int EpochTickStep(int last_epoch) {
  for (int power = 1;; power *= 10) {
    for (int multiple : {1, 2, 5}) {
      if (last_epoch <= 10 * multiple * power) return multiple * power;
    }
  }
}

absl::StatusOr<std::string> DrawTrainingChart(const std::vector<Series>& lines,
                                              const std::string& y_title,
                                              const std::string& chart_name) {
  int last_epoch = 1;
  double min_value = 1;
  double max_value = 1;
  for (const Series& series : lines) {
    for (const auto& [epoch, value] : series.points) {
      last_epoch = std::max(last_epoch, epoch);
      min_value = std::min(min_value, value);
      max_value = std::max(max_value, value);
    }
  }
  const LogAxis y_axis = FitLogAxis(min_value, max_value);
  LineChart chart(TrainingChartLayout());
  auto to_pixel = [&](double epoch, double value) {
    return chart.ToPixel(epoch / last_epoch, (std::log10(value) - y_axis.low) /
                                                 (y_axis.high - y_axis.low));
  };

  // Grid and tick labels: epochs below the plot, variances left of it,
  // right-aligned.
  const int step = EpochTickStep(last_epoch);
  for (int epoch = 0; epoch <= last_epoch; epoch += step) {
    const std::string label = absl::StrCat(epoch);
    chart.DrawVerticalGridLine(static_cast<double>(epoch) / last_epoch);
    chart.DrawText(label, to_pixel(epoch, std::pow(10.0, y_axis.low)) +
                              cv::Point(-LineChart::TextWidth(label) / 2, 18));
  }
  for (double value : LogTicks(y_axis)) {
    const std::string label = absl::StrFormat("%g", value);
    const cv::Point at = to_pixel(0, value);
    chart.DrawHorizontalGridLine((std::log10(value) - y_axis.low) /
                                 (y_axis.high - y_axis.low));
    chart.DrawText(label, at + cv::Point(-8 - LineChart::TextWidth(label), 5));
  }
  chart.DrawFrame();
  // The pretrained network's variance, where every line starts.
  chart.DrawReferenceLine(to_pixel(0, 1), to_pixel(last_epoch, 1));
  const ChartLayout& layout = chart.layout();
  chart.DrawText("epoch",
                 {layout.left + layout.plot_width / 2 -
                      LineChart::TextWidth("epoch") / 2,
                  layout.height - 12});
  chart.DrawText(y_title, {4, layout.top - 10});

  // The lines, in order, with colours going to drawn lines only.
  int colour_index = 0;
  for (const Series& series : lines) {
    if (series.points.empty()) {
      const std::string suffix = absl::StrCat(" ", series.missing_reason);
      chart.AddLegendEntry(
          LineChart::FitText(series.name, chart.LegendTextWidth() -
                                              LineChart::TextWidth(suffix)) +
              suffix,
          std::nullopt);
      continue;
    }
    const cv::Scalar colour = ChartColour(colour_index++);
    std::vector<cv::Point> points;
    for (const auto& [epoch, value] : series.points) {
      points.push_back(to_pixel(epoch, value));
    }
    chart.DrawSeries(points, colour);
    const std::string suffix =
        absl::StrFormat(" %.3g", series.points.rbegin()->second);
    chart.AddLegendEntry(
        LineChart::FitText(series.name, chart.LegendTextWidth() -
                                            LineChart::TextWidth(suffix)) +
            suffix,
        colour);
  }
  return chart.EncodePng(chart_name);
}

}  // namespace

bool HasTrainingRecords(const RunResult& result) {
  for (const ClassResult* row : FirstSeedClasses(result)) {
    if (row->training_size() > 0) return true;
  }
  return false;
}

absl::StatusOr<std::string> RenderFeatureVarianceByClassPng(
    const RunResult& result) {
  if (!HasTrainingRecords(result)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "run \"", result.pipeline(),
        "\" has no training records to plot: only adapters that train "
        "record feature variance"));
  }
  std::vector<Series> lines;
  for (const ClassResult* row : FirstSeedClasses(result)) {
    lines.push_back(MakeSeries(
        absl::StrCat(row->normal_class(), " ", row->class_name()),
        RelativeVariances(*row), row->training_size() > 0));
  }
  return DrawTrainingChart(lines, "relative feature variance (log10 scale)",
                           "feature variance chart");
}

absl::StatusOr<std::string> RenderFeatureVarianceByRunPng(
    const std::vector<std::pair<std::string, RunResult>>& runs) {
  if (runs.empty()) {
    return absl::InvalidArgumentError(
        "no runs to plot: pass at least one run's results");
  }
  std::vector<Series> lines;
  bool any_line = false;
  for (const auto& [name, run] : runs) {
    // Sum and count of relative variances at each epoch, over classes.
    std::map<int, std::pair<double, int>> sums;
    for (const ClassResult* row : FirstSeedClasses(run)) {
      for (const auto& [epoch, value] : RelativeVariances(*row)) {
        sums[epoch].first += value;
        ++sums[epoch].second;
      }
    }
    std::map<int, double> means;
    for (const auto& [epoch, sum] : sums) {
      means[epoch] = sum.first / sum.second;
    }
    any_line = any_line || !means.empty();
    lines.push_back(MakeSeries(name, std::move(means), HasTrainingRecords(run)));
  }
  if (!any_line) {
    std::vector<std::string> names;
    for (const auto& run : runs) names.push_back(run.first);
    return absl::InvalidArgumentError(absl::StrCat(
        "none of the runs (", absl::StrJoin(names, ", "),
        ") has training records with an epoch-0 feature variance to plot; "
        "only adapters that train record them"));
  }
  return DrawTrainingChart(
      lines, "mean relative feature variance over classes (log10 scale)",
      "feature variance chart");
}

}  // namespace panda
