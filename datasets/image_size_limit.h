// A limit on the pixels of an image file, checked from the file's header
// before OpenCV decodes it, so that a huge image is rejected before its
// pixels are allocated.
#ifndef PANDA_DATASETS_IMAGE_SIZE_LIMIT_H_
#define PANDA_DATASETS_IMAGE_SIZE_LIMIT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"

namespace panda {

// Default of the data set option `max_image_pixels`: 50 megapixels, 150 MB
// as 8-bit RGB and 400 MB while a 16-bit RGBA file is decoded.
inline constexpr int64_t kDefaultMaxImagePixels = 50'000'000;

// Width and height of an image, in pixels.
struct ImageDimensions {
  int64_t width = 0;
  int64_t height = 0;
};

// Reads the width and height of the image at `path` from its header: the
// IHDR chunk of PNG, the first SOF segment of JPEG, the info header of BMP,
// the VP8, VP8L or VP8X chunk of WebP, and the first directory of TIFF.
// Returns nullopt for other formats and for a header it cannot read; the
// decoder then reports what is wrong with the file.
std::optional<ImageDimensions> ReadImageDimensions(const std::string& path);

// Checks that an image of `dimensions` has at most `max_pixels` pixels; 0
// means no limit. Sides are taken as at most 2^32 - 1, the largest a header
// can store. Returns ResourceExhausted naming `what` (e.g. "image
// /data/a.png"), its size, the limit and the option that sets it.
absl::Status CheckImagePixels(const std::string& what,
                              const ImageDimensions& dimensions,
                              int64_t max_pixels);

// Checks the header of the image at `path` against `max_pixels` (0: no
// limit), as CheckImagePixels does. A file whose header ReadImageDimensions
// cannot read passes; the caller checks the decoded size as well.
absl::Status CheckImageFilePixels(const std::string& what,
                                  const std::string& path, int64_t max_pixels);

}  // namespace panda

#endif  // PANDA_DATASETS_IMAGE_SIZE_LIMIT_H_
