#include "datasets/mask_decoding.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "datasets/image_size_limit.h"
#include "opencv2/core.hpp"
#include "opencv2/imgcodecs.hpp"
#include "opencv2/imgproc.hpp"

namespace panda {

absl::Status DecodeMaskFile(const std::string& path, int size,
                            int64_t max_pixels, uint8_t* mask,
                            cv::Size* decoded_size) {
  const std::string what = absl::StrCat("mask ", path);
  if (absl::Status status = CheckImageFilePixels(what, path, max_pixels);
      !status.ok()) {
    return status;
  }

  try {
    const cv::Mat grey = cv::imread(path, cv::IMREAD_GRAYSCALE);
    if (grey.empty()) {
      return absl::DataLossError(absl::StrCat(
          "failed to decode mask ", path,
          ": the file is unreadable, corrupt or not in an image format "
          "that OpenCV reads"));
    }
    // The header check above misses formats it cannot read.
    if (absl::Status status =
            CheckImagePixels(what, {grey.cols, grey.rows}, max_pixels);
        !status.ok()) {
      return status;
    }
    if (decoded_size != nullptr) *decoded_size = grey.size();

    // 1 where the mask is not 0. cv::compare writes 255 for true.
    cv::Mat binary;
    cv::compare(grey, 0, binary, cv::CMP_NE);
    binary /= 255;

    cv::Mat resized;
    if (binary.cols == size && binary.rows == size) {
      resized = binary;
    } else {
      // Interpolates the defect fraction in floating point, so that the
      // threshold compares exact area averages, not rounded bytes.
      cv::Mat fraction;
      binary.convertTo(fraction, CV_32F);
      const bool shrinking = binary.cols >= size && binary.rows >= size;
      cv::Mat resized_fraction;
      cv::resize(fraction, resized_fraction, cv::Size(size, size), 0, 0,
                 shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
      cv::compare(resized_fraction, 0.5, resized, cv::CMP_GE);
      resized /= 255;
    }

    // Copies row by row: `resized` may be a view with padded rows.
    for (int row = 0; row < size; ++row) {
      std::memcpy(mask + static_cast<size_t>(row) * size,
                  resized.ptr<uint8_t>(row), static_cast<size_t>(size));
    }
    return absl::OkStatus();
  } catch (const cv::Exception& e) {
    return absl::DataLossError(
        absl::StrCat("failed to decode mask ", path, ": ", e.what()));
  }
}

}  // namespace panda
