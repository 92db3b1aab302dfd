#include "core/chart.h"

#include "absl/strings/str_cat.h"
#include "opencv2/imgcodecs.hpp"
#include "opencv2/imgproc.hpp"

namespace panda {
namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
constexpr double kFontScale = 0.45;

// Legend geometry: rows 20 pixels apart, each a swatch 18 pixels long and
// text 24 pixels right of the row's start.
constexpr int kLegendGap = 14;
constexpr int kLegendRowHeight = 20;
constexpr int kLegendTextOffset = 24;

const cv::Scalar kGridColour(230, 230, 230);
const cv::Scalar kReferenceColour(160, 160, 160);
const cv::Scalar kMutedTextColour(128, 128, 128);

}  // namespace

cv::Scalar ChartColour(int index) {
  static const cv::Scalar kColours[] = {
      {180, 119, 31},  {14, 127, 255}, {44, 160, 44},   {40, 39, 214},
      {189, 103, 148}, {75, 86, 140},  {194, 119, 227}, {127, 127, 127},
      {34, 189, 188},  {207, 190, 23}};
  return kColours[index % 10];
}

LineChart::LineChart(const ChartLayout& layout)
    : layout_(layout),
      image_(layout.height, layout.width, CV_8UC3, cv::Scalar(255, 255, 255)) {}

cv::Point LineChart::ToPixel(double x_fraction, double y_fraction) const {
  return {layout_.left +
              static_cast<int>(x_fraction * layout_.plot_width + 0.5),
          layout_.top + layout_.plot_height -
              static_cast<int>(y_fraction * layout_.plot_height + 0.5)};
}

int LineChart::TextWidth(const std::string& text) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, kFontScale, 1, &baseline).width;
}

std::string LineChart::FitText(const std::string& text, int max_width) {
  if (TextWidth(text) <= max_width) return text;
  std::string prefix = text;
  while (!prefix.empty() && TextWidth(prefix + "...") > max_width) {
    prefix.pop_back();
  }
  return prefix + "...";
}

int LineChart::LegendTextWidth() const {
  return layout_.width -
         (layout_.left + layout_.plot_width + kLegendGap + kLegendTextOffset) -
         4;
}

void LineChart::DrawText(const std::string& text, cv::Point origin,
                         const cv::Scalar& colour) {
  cv::putText(image_, text, origin, kFont, kFontScale, colour, 1, cv::LINE_AA);
}

void LineChart::DrawVerticalGridLine(double x_fraction) {
  cv::line(image_, ToPixel(x_fraction, 0), ToPixel(x_fraction, 1),
           kGridColour);
}

void LineChart::DrawHorizontalGridLine(double y_fraction) {
  cv::line(image_, ToPixel(0, y_fraction), ToPixel(1, y_fraction),
           kGridColour);
}

void LineChart::DrawFrame() {
  cv::rectangle(image_, ToPixel(0, 1), ToPixel(1, 0), {0, 0, 0});
}

void LineChart::DrawReferenceLine(cv::Point from, cv::Point to) {
  cv::line(image_, from, to, kReferenceColour, 1, cv::LINE_AA);
}

void LineChart::DrawSeries(const std::vector<cv::Point>& points,
                           const cv::Scalar& colour) {
  // A polyline through one point draws nothing visible.
  if (points.size() == 1) {
    cv::circle(image_, points[0], 2, colour, cv::FILLED, cv::LINE_AA);
    return;
  }
  cv::polylines(image_, points, /*isClosed=*/false, colour, 2, cv::LINE_AA);
}

void LineChart::AddLegendEntry(const std::string& text,
                               std::optional<cv::Scalar> colour) {
  legend_.emplace_back(text, colour);
}

void LineChart::DrawLegend() {
  const int first_baseline = layout_.top + 12;
  const int max_rows =
      (layout_.height - 6 - first_baseline) / kLegendRowHeight + 1;
  const int rows = static_cast<int>(legend_.size());
  const int visible_rows = rows > max_rows ? max_rows - 1 : rows;
  auto row_start = [&](int row) {
    return cv::Point(layout_.left + layout_.plot_width + kLegendGap,
                     first_baseline + kLegendRowHeight * row);
  };
  const cv::Point text_offset(kLegendTextOffset, 0);

  for (int row = 0; row < visible_rows; ++row) {
    const cv::Point entry = row_start(row);
    const auto& [text, colour] = legend_[row];
    if (colour.has_value()) {
      cv::line(image_, entry + cv::Point(0, -4), entry + cv::Point(18, -4),
               *colour, 3);
      DrawText(text, entry + text_offset);
    } else {
      DrawText(text, entry + text_offset, kMutedTextColour);
    }
  }
  if (visible_rows < rows) {
    DrawText(absl::StrCat("... ", rows - visible_rows, " more"),
             row_start(visible_rows) + text_offset, kMutedTextColour);
  }
}

absl::StatusOr<std::string> LineChart::EncodePng(absl::string_view chart_name) {
  DrawLegend();
  std::vector<uchar> png;
  if (!cv::imencode(".png", image_, png)) {
    return absl::InternalError(
        absl::StrCat("OpenCV failed to encode the ", chart_name, " as PNG"));
  }
  return std::string(png.begin(), png.end());
}

}  // namespace panda
