#include "core/anomaly_map_picture.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/atomic_file.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"
#include "opencv2/imgproc.hpp"

namespace panda {
namespace {

const cv::Scalar kOutlineColour(0, 255, 0);  // BGR

std::string ShapeText(const torch::Tensor& tensor) {
  std::string text = "[";
  for (int64_t d = 0; d < tensor.dim(); ++d) {
    absl::StrAppend(&text, d > 0 ? ", " : "", tensor.size(d));
  }
  return text + "]";
}

absl::Status CheckInputs(const torch::Tensor& image, const torch::Tensor& map,
                         const torch::Tensor& mask, HeatRange range) {
  if (!image.defined() || image.scalar_type() != torch::kUInt8 ||
      image.dim() != 3 || image.size(0) < 1 || image.size(1) < 1 ||
      (image.size(2) != 1 && image.size(2) != 3)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "anomaly map picture: the image must be uint8 [H, W, C] with H and "
        "W at least 1 and C = 1 or 3, but got ",
        image.defined() ? absl::StrCat(c10::toString(image.scalar_type()), " ",
                                       ShapeText(image))
                        : "no tensor"));
  }
  const int64_t height = image.size(0);
  const int64_t width = image.size(1);
  const std::string expected = absl::StrCat("[", height, ", ", width, "]");
  if (!map.defined() || map.scalar_type() != torch::kFloat32 ||
      map.dim() != 2 || map.size(0) != height || map.size(1) != width) {
    return absl::InvalidArgumentError(absl::StrCat(
        "anomaly map picture: the map must be float32 ", expected,
        " like the image, but got ",
        map.defined() ? absl::StrCat(c10::toString(map.scalar_type()), " ",
                                     ShapeText(map))
                      : "no tensor"));
  }
  if (mask.defined() &&
      (mask.scalar_type() != torch::kUInt8 || mask.dim() != 2 ||
       mask.size(0) != height || mask.size(1) != width)) {
    return absl::InvalidArgumentError(
        absl::StrCat("anomaly map picture: the mask must be uint8 ", expected,
                     " like the image, but got ",
                     c10::toString(mask.scalar_type()), " ", ShapeText(mask)));
  }
  if (!std::isfinite(range.low) || !std::isfinite(range.high) ||
      !(range.low < range.high)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "anomaly map picture: the heat range must be finite with low below "
        "high, but got low ",
        range.low, " and high ", range.high));
  }
  if (map.isnan().any().item<bool>()) {
    return absl::InvalidArgumentError(
        "anomaly map picture: the map has NaN scores");
  }
  return absl::OkStatus();
}

// Returns the image as an 8-bit BGR cv::Mat that owns its pixels.
cv::Mat ToBgr(const torch::Tensor& image) {
  const torch::Tensor pixels = image.to(torch::kCPU).contiguous();
  const int height = static_cast<int>(pixels.size(0));
  const int width = static_cast<int>(pixels.size(1));
  const int channels = static_cast<int>(pixels.size(2));
  const cv::Mat view(height, width, CV_8UC(channels), pixels.data_ptr());
  cv::Mat bgr;
  cv::cvtColor(view, bgr,
               channels == 1 ? cv::COLOR_GRAY2BGR : cv::COLOR_RGB2BGR);
  return bgr;
}

// Returns the image blended half and half with the map in the jet colormap.
cv::Mat HeatOverlay(const cv::Mat& bgr, const torch::Tensor& map,
                    HeatRange range) {
  const torch::Tensor levels =
      ((map.to(torch::kCPU) - range.low) / (range.high - range.low))
          .clamp(0, 1)
          .mul(255)
          .round()
          .to(torch::kUInt8)
          .contiguous();
  const cv::Mat view(bgr.rows, bgr.cols, CV_8UC1, levels.data_ptr());
  cv::Mat heat;
  cv::applyColorMap(view, heat, cv::COLORMAP_JET);
  cv::Mat blended;
  cv::addWeighted(bgr, 0.5, heat, 0.5, 0, blended);
  return blended;
}

// Returns the image with the borders of the mask's defects drawn on it,
// holes included.
cv::Mat DefectOutline(const cv::Mat& bgr, const torch::Tensor& mask) {
  cv::Mat outlined = bgr.clone();
  if (!mask.defined()) return outlined;
  const torch::Tensor binary =
      mask.to(torch::kCPU).ne(0).to(torch::kUInt8).contiguous();
  const cv::Mat view(bgr.rows, bgr.cols, CV_8UC1, binary.data_ptr());
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(view, contours, cv::RETR_LIST, cv::CHAIN_APPROX_NONE);
  cv::drawContours(outlined, contours, /*contourIdx=*/-1, kOutlineColour,
                   /*thickness=*/1);
  return outlined;
}

}  // namespace

absl::StatusOr<std::string> RenderAnomalyMapPicture(const torch::Tensor& image,
                                                    const torch::Tensor& map,
                                                    const torch::Tensor& mask,
                                                    HeatRange range) {
  absl::Status status = CheckInputs(image, map, mask, range);
  if (!status.ok()) return status;

  const cv::Mat bgr = ToBgr(image);
  const int width = bgr.cols;
  cv::Mat picture(bgr.rows, 3 * width + 2 * kPictureGap, CV_8UC3,
                  cv::Scalar(255, 255, 255));
  bgr.copyTo(picture(cv::Rect(0, 0, width, bgr.rows)));
  HeatOverlay(bgr, map, range)
      .copyTo(picture(cv::Rect(width + kPictureGap, 0, width, bgr.rows)));
  DefectOutline(bgr, mask).copyTo(
      picture(cv::Rect(2 * (width + kPictureGap), 0, width, bgr.rows)));

  std::vector<uchar> png;
  if (!cv::imencode(".png", picture, png)) {
    return absl::InternalError(
        "OpenCV failed to encode the anomaly map picture as PNG");
  }
  return std::string(png.begin(), png.end());
}

absl::Status WriteAnomalyMapPicture(const std::string& path,
                                    const torch::Tensor& image,
                                    const torch::Tensor& map,
                                    const torch::Tensor& mask,
                                    HeatRange range) {
  absl::StatusOr<std::string> png =
      RenderAnomalyMapPicture(image, map, mask, range);
  absl::Status status = png.status();
  if (status.ok()) status = WriteFileAtomically(path, *png);
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat("failed to write the anomaly map picture ",
                                   path, ": ", status.message()));
}

}  // namespace panda
