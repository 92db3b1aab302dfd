// Line charts drawn with OpenCV and encoded as PNG: a white canvas with a
// square-cornered plot area, grid lines, text and a legend column to the
// right of the plot. The ROC and training charts share it.
//
//   LineChart chart(ChartLayout{});
//   chart.DrawFrame();
//   chart.DrawSeries({chart.ToPixel(0, 0), chart.ToPixel(1, 1)},
//                    ChartColour(0));
//   chart.AddLegendEntry("0 cat", ChartColour(0));
//   absl::StatusOr<std::string> png = chart.EncodePng("example chart");
#ifndef PANDA_CORE_CHART_H_
#define PANDA_CORE_CHART_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "opencv2/core.hpp"

namespace panda {

// Pixel geometry of a chart. The plot area's top-left corner is at
// (left, top); the legend column starts 14 pixels right of the plot area.
struct ChartLayout {
  int width = 720;
  int height = 560;
  int left = 60;
  int top = 30;
  int plot_width = 480;
  int plot_height = 480;
};

// Returns the BGR colour of series `index`: ten distinguishable colours,
// repeated from the eleventh series on.
cv::Scalar ChartColour(int index);

// A chart being drawn. Lines, grid and text go onto the canvas at once. The
// legend waits for EncodePng, which then knows how many rows overflow.
class LineChart {
 public:
  explicit LineChart(const ChartLayout& layout);

  const ChartLayout& layout() const { return layout_; }

  // Returns the pixel of a point given as fractions of the plot area's width
  // and height, from its bottom-left corner; 0 and 1 are the plot's edges.
  cv::Point ToPixel(double x_fraction, double y_fraction) const;

  // Returns the width in pixels of `text` in the chart's font.
  static int TextWidth(const std::string& text);

  // Returns `text` cut at the end, with "..." appended, so that it is at
  // most `max_width` pixels wide; unchanged when it already fits.
  static std::string FitText(const std::string& text, int max_width);

  // Width in pixels available to a legend entry's text.
  int LegendTextWidth() const;

  // Draws `text` with its baseline starting at `origin`.
  void DrawText(const std::string& text, cv::Point origin,
                const cv::Scalar& colour = {0, 0, 0});

  // Draws light grey grid lines across the plot area at a fraction of its
  // width (vertical line) or of its height (horizontal line).
  void DrawVerticalGridLine(double x_fraction);
  void DrawHorizontalGridLine(double y_fraction);

  // Draws the black border of the plot area.
  void DrawFrame();

  // Draws a thin grey anti-aliased line, such as the chance diagonal.
  void DrawReferenceLine(cv::Point from, cv::Point to);

  // Draws an anti-aliased polyline, 2 pixels wide, or a dot for one point.
  void DrawSeries(const std::vector<cv::Point>& points,
                  const cv::Scalar& colour);

  // Adds a legend row: a colour swatch and black text, or grey text alone
  // when `colour` is empty (a series that has nothing to draw).
  void AddLegendEntry(const std::string& text,
                      std::optional<cv::Scalar> colour);

  // Draws the legend and returns the PNG bytes. When the legend has more
  // rows than fit in the chart's height, the last row that fits gives the
  // number left out. `chart_name` names the chart in an error.
  absl::StatusOr<std::string> EncodePng(absl::string_view chart_name);

 private:
  void DrawLegend();

  ChartLayout layout_;
  cv::Mat image_;
  std::vector<std::pair<std::string, std::optional<cv::Scalar>>> legend_;
};

}  // namespace panda

#endif  // PANDA_CORE_CHART_H_
