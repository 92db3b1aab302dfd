#include "core/roc_plot.h"

#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/chart.h"

namespace panda {

absl::StatusOr<std::string> RenderRocCurvesPng(
    const std::vector<RocCurve>& curves) {
  LineChart chart(ChartLayout{});

  // Axes, grid and the chance diagonal.
  for (int tick = 0; tick <= 10; ++tick) {
    const double value = tick / 10.0;
    chart.DrawVerticalGridLine(value);
    chart.DrawHorizontalGridLine(value);
    if (tick % 2 == 0) {
      chart.DrawText(absl::StrFormat("%.1f", value),
                     chart.ToPixel(value, 0) + cv::Point(-10, 18));
      chart.DrawText(absl::StrFormat("%.1f", value),
                     chart.ToPixel(0, value) + cv::Point(-32, 5));
    }
  }
  chart.DrawFrame();
  chart.DrawReferenceLine(chart.ToPixel(0, 0), chart.ToPixel(1, 1));
  const ChartLayout& layout = chart.layout();
  chart.DrawText("false positive rate",
                 {layout.left + layout.plot_width / 2 - 70, layout.height - 12});
  chart.DrawText("true positive rate", {4, layout.top - 10});

  // One curve per entry, with a legend entry.
  int series = 0;
  for (const RocCurve& curve : curves) {
    const int steps = static_cast<int>(curve.true_positive_rates.size()) - 1;
    if (steps < 1) continue;
    const cv::Scalar colour = ChartColour(series);
    std::vector<cv::Point> points;
    for (int i = 0; i <= steps; ++i) {
      points.push_back(chart.ToPixel(static_cast<double>(i) / steps,
                                     curve.true_positive_rates[i]));
    }
    chart.DrawSeries(points, colour);
    chart.AddLegendEntry(curve.label, colour);
    ++series;
  }

  return chart.EncodePng("ROC chart");
}

namespace {

// One curve per normal class of the run's first seed, from the rates and
// ROC-AUC that `pick` returns for a class; classes without rates are left
// out.
template <typename Pick>
std::vector<RocCurve> FirstSeedCurves(const RunResult& result, Pick pick) {
  std::vector<RocCurve> curves;
  const int first_seed = result.classes_size() > 0 ? result.classes(0).seed() : 0;
  for (const ClassResult& row : result.classes()) {
    if (row.seed() != first_seed) continue;
    const auto [rates, auc] = pick(row);
    if (rates->empty()) continue;
    curves.push_back({absl::StrFormat("%d %.12s %.1f", row.normal_class(),
                                      row.class_name(), 100 * auc),
                      {rates->begin(), rates->end()}});
  }
  return curves;
}

}  // namespace

absl::StatusOr<std::string> RenderRocCurvesPng(const RunResult& result) {
  return RenderRocCurvesPng(FirstSeedCurves(result, [](const ClassResult& row) {
    return std::make_pair(&row.roc_true_positive_rates(), row.roc_auc());
  }));
}

absl::StatusOr<std::string> RenderPixelRocCurvesPng(const RunResult& result) {
  return RenderRocCurvesPng(FirstSeedCurves(result, [](const ClassResult& row) {
    const SegmentationResult& segmentation = row.segmentation();
    return std::make_pair(&segmentation.pixel_roc_true_positive_rates(),
                          segmentation.pixel_roc_auc());
  }));
}

}  // namespace panda
