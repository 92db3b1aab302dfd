// Decodes image files into 8-bit RGB pixels, at their own size or a fixed
// square size, with OpenCV.
#ifndef PANDA_DATASETS_IMAGE_FOLDER_DECODING_H_
#define PANDA_DATASETS_IMAGE_FOLDER_DECODING_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "opencv2/core.hpp"

namespace panda {

// Decodes the image at `path` into 8-bit RGB (CV_8UC3) of its own size,
// converting samples and channels as DecodeImageFile does. Errors, and the
// meaning of `max_pixels`, are those of DecodeImageFile.
absl::StatusOr<cv::Mat> DecodeRgbImage(const std::string& path,
                                       int64_t max_pixels);

// Decodes the image at `path` and writes it to `rgb` as `size` x `size`
// pixels in row-major order, 3 bytes (R, G, B) each.
//
// The file is read as stored (cv::IMREAD_UNCHANGED, so EXIF orientation is
// ignored). 16-bit samples keep their high byte (value >> 8). One channel is
// grey and is copied to R, G and B, three channels are BGR, and four
// channels are BGRA whose alpha channel is dropped. The image is then
// resized to `size` x `size` without keeping the aspect ratio: by area
// averaging (cv::INTER_AREA) when neither side grows, bilinearly otherwise,
// and not at all when it already has that size.
//
// An image of more than `max_pixels` pixels (0: no limit) is rejected with
// ResourceExhausted naming `path`, its size and the limit: before decoding
// when its header gives the size (image_size_limit.h), after decoding
// otherwise.
//
// Returns DataLoss naming `path` when the file cannot be decoded, and
// Unimplemented naming `path` and the OpenCV type for other sample types or
// channel counts. `size` must be positive. When `decoded_size` is not null,
// it receives the image's width and height before resizing.
absl::Status DecodeImageFile(const std::string& path, int size,
                             int64_t max_pixels, uint8_t* rgb,
                             cv::Size* decoded_size = nullptr);

}  // namespace panda

#endif  // PANDA_DATASETS_IMAGE_FOLDER_DECODING_H_
