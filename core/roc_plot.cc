#include "core/roc_plot.h"

#include <vector>

#include "absl/strings/str_format.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"
#include "opencv2/imgproc.hpp"

namespace panda {
namespace {

constexpr int kWidth = 720;
constexpr int kHeight = 560;
constexpr int kLeft = 60;
constexpr int kTop = 30;
constexpr int kPlotSize = 480;

// Ten distinguishable colours (BGR), repeated beyond ten classes.
const cv::Scalar kColours[] = {
    {180, 119, 31}, {14, 127, 255}, {44, 160, 44},  {40, 39, 214},
    {189, 103, 148}, {75, 86, 140}, {194, 119, 227}, {127, 127, 127},
    {34, 189, 188}, {207, 190, 23}};

cv::Point ToPixel(double false_positive_rate, double true_positive_rate) {
  return {kLeft + static_cast<int>(false_positive_rate * kPlotSize + 0.5),
          kTop + kPlotSize -
              static_cast<int>(true_positive_rate * kPlotSize + 0.5)};
}

void DrawText(cv::Mat& image, const std::string& text, cv::Point origin,
              const cv::Scalar& colour = {0, 0, 0}) {
  cv::putText(image, text, origin, cv::FONT_HERSHEY_SIMPLEX, 0.45, colour, 1,
              cv::LINE_AA);
}

}  // namespace

absl::StatusOr<std::string> RenderRocCurvesPng(const RunResult& result) {
  cv::Mat image(kHeight, kWidth, CV_8UC3, cv::Scalar(255, 255, 255));

  // Axes, grid and the chance diagonal.
  for (int tick = 0; tick <= 10; ++tick) {
    const double value = tick / 10.0;
    cv::line(image, ToPixel(value, 0), ToPixel(value, 1), {230, 230, 230});
    cv::line(image, ToPixel(0, value), ToPixel(1, value), {230, 230, 230});
    if (tick % 2 == 0) {
      DrawText(image, absl::StrFormat("%.1f", value),
               ToPixel(value, 0) + cv::Point(-10, 18));
      DrawText(image, absl::StrFormat("%.1f", value),
               ToPixel(0, value) + cv::Point(-32, 5));
    }
  }
  cv::rectangle(image, ToPixel(0, 1), ToPixel(1, 0), {0, 0, 0});
  cv::line(image, ToPixel(0, 0), ToPixel(1, 1), {160, 160, 160}, 1, cv::LINE_AA);
  DrawText(image, "false positive rate", {kLeft + kPlotSize / 2 - 70, kHeight - 12});
  DrawText(image, "true positive rate", {4, kTop - 10});

  // One curve per class of the first seed, with a legend entry.
  int legend_row = 0;
  const int first_seed = result.classes_size() > 0 ? result.classes(0).seed() : 0;
  for (const ClassResult& row : result.classes()) {
    if (row.seed() != first_seed) continue;
    const int steps = row.roc_true_positive_rates_size() - 1;
    if (steps < 1) continue;
    const cv::Scalar& colour = kColours[legend_row % 10];
    std::vector<cv::Point> points;
    for (int i = 0; i <= steps; ++i) {
      points.push_back(ToPixel(static_cast<double>(i) / steps,
                               row.roc_true_positive_rates(i)));
    }
    cv::polylines(image, points, /*isClosed=*/false, colour, 2, cv::LINE_AA);

    const cv::Point entry(kLeft + kPlotSize + 14, kTop + 12 + 20 * legend_row);
    cv::line(image, entry + cv::Point(0, -4), entry + cv::Point(18, -4), colour, 3);
    DrawText(image,
             absl::StrFormat("%d %.12s %.1f", row.normal_class(),
                             row.class_name(), 100 * row.roc_auc()),
             entry + cv::Point(24, 0));
    ++legend_row;
  }

  std::vector<uchar> png;
  if (!cv::imencode(".png", image, png)) {
    return absl::InternalError("OpenCV failed to encode the ROC chart as PNG");
  }
  return std::string(png.begin(), png.end());
}

}  // namespace panda
