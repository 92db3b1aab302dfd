#include "datasets/image_folder_decoding.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "datasets/image_size_limit.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"
#include "opencv2/imgproc.hpp"

namespace panda {
namespace {

// Returns a CV_8U copy of a CV_16U image holding the high byte of each
// sample. (cv::Mat::convertTo would round value / 256 instead.)
cv::Mat HighBytes(const cv::Mat& image) {
  cv::Mat out(image.rows, image.cols, CV_MAKETYPE(CV_8U, image.channels()));
  const int samples_per_row = image.cols * image.channels();
  for (int row = 0; row < image.rows; ++row) {
    const uint16_t* in = image.ptr<uint16_t>(row);
    uint8_t* high = out.ptr<uint8_t>(row);
    for (int i = 0; i < samples_per_row; ++i) {
      high[i] = static_cast<uint8_t>(in[i] >> 8);
    }
  }
  return out;
}

absl::Status Unsupported(const std::string& path, const cv::Mat& image) {
  return absl::UnimplementedError(absl::StrCat(
      "image ", path, " has OpenCV type ", cv::typeToString(image.type()), " (",
      image.channels(),
      " channels); supported are 8- or 16-bit "
      "unsigned samples with 1 (grey), 3 (colour) or 4 (colour and alpha) "
      "channels"));
}

// Converts a decoded image to 8-bit RGB of its own size.
absl::Status ToRgb(const std::string& path, const cv::Mat& decoded,
                   cv::Mat& rgb) {
  cv::Mat eight_bit;
  switch (decoded.depth()) {
    case CV_8U:
      eight_bit = decoded;
      break;
    case CV_16U:
      eight_bit = HighBytes(decoded);
      break;
    default:
      return Unsupported(path, decoded);
  }

  switch (eight_bit.channels()) {
    case 1:
      cv::cvtColor(eight_bit, rgb, cv::COLOR_GRAY2RGB);
      return absl::OkStatus();
    case 3:
      cv::cvtColor(eight_bit, rgb, cv::COLOR_BGR2RGB);
      return absl::OkStatus();
    case 4:
      cv::cvtColor(eight_bit, rgb, cv::COLOR_BGRA2RGB);
      return absl::OkStatus();
    default:
      return Unsupported(path, decoded);
  }
}

}  // namespace

absl::StatusOr<cv::Mat> DecodeRgbImage(const std::string& path,
                                       int64_t max_pixels) {
  const std::string what = absl::StrCat("image ", path);
  if (absl::Status status = CheckImageFilePixels(what, path, max_pixels);
      !status.ok()) {
    return status;
  }

  try {
    // NOTE: libjpeg fills the missing rows of a truncated JPEG with grey and
    // only warns, so such a file decodes without an error.
    const cv::Mat decoded = cv::imread(path, cv::IMREAD_UNCHANGED);
    if (decoded.empty()) {
      return absl::DataLossError(absl::StrCat(
          "failed to decode image ", path,
          ": the file is unreadable, corrupt or not in an image format "
          "that OpenCV reads"));
    }
    // The header check above misses formats it cannot read.
    if (absl::Status status = CheckImagePixels(
            what, {decoded.cols, decoded.rows}, max_pixels);
        !status.ok()) {
      return status;
    }

    cv::Mat rgb;
    if (absl::Status status = ToRgb(path, decoded, rgb); !status.ok()) {
      return status;
    }
    return rgb;
  } catch (const cv::Exception& e) {
    return absl::DataLossError(
        absl::StrCat("failed to decode image ", path, ": ", e.what()));
  }
}

absl::Status DecodeImageFile(const std::string& path, int size,
                             int64_t max_pixels, uint8_t* rgb,
                             cv::Size* decoded_size) {
  absl::StatusOr<cv::Mat> converted = DecodeRgbImage(path, max_pixels);
  if (!converted.ok()) return converted.status();
  if (decoded_size != nullptr) *decoded_size = converted->size();

  try {
    cv::Mat resized;
    if (converted->cols == size && converted->rows == size) {
      resized = *converted;
    } else {
      const bool shrinking = converted->cols >= size && converted->rows >= size;
      cv::resize(*converted, resized, cv::Size(size, size), 0, 0,
                 shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
    }

    // Copies row by row: `resized` may be a view with padded rows.
    const size_t row_bytes = static_cast<size_t>(size) * 3;
    for (int row = 0; row < size; ++row) {
      std::memcpy(rgb + row * row_bytes, resized.ptr<uint8_t>(row), row_bytes);
    }
    return absl::OkStatus();
  } catch (const cv::Exception& e) {
    return absl::DataLossError(
        absl::StrCat("failed to decode image ", path, ": ", e.what()));
  }
}

}  // namespace panda
