// Decodes a ground-truth mask image into 0/1 bytes of a fixed square size,
// with OpenCV.
#ifndef PANDA_DATASETS_MASK_DECODING_H_
#define PANDA_DATASETS_MASK_DECODING_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "opencv2/core.hpp"

namespace panda {

// Decodes the mask image at `path` and writes it to `mask` as `size` x
// `size` bytes in row-major order: 1 on defect pixels and 0 elsewhere.
//
// The file is read as grey (cv::IMREAD_GRAYSCALE, which also converts
// colour and 16-bit files), and a pixel is a defect where its value is not
// 0. A mask of another size is then resized to `size` x `size` as
// DecodeImageFile resizes images: by area averaging when neither side
// grows, bilinearly otherwise. A resized pixel is 1 where the interpolated
// defect fraction is at least 0.5, so by area averaging where at least half
// of the area it covers is defect. When `decoded_size` is not null, it
// receives the mask's width and height before resizing.
//
// A mask of more than `max_pixels` pixels (0: no limit) is rejected with
// ResourceExhausted, as DecodeImageFile rejects images.
//
// Returns DataLoss naming `path` when the file cannot be decoded. `size`
// must be positive.
absl::Status DecodeMaskFile(const std::string& path, int size,
                            int64_t max_pixels, uint8_t* mask,
                            cv::Size* decoded_size = nullptr);

}  // namespace panda

#endif  // PANDA_DATASETS_MASK_DECODING_H_
