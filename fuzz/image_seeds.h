// Small images in every format that the image decoders accept, encoded by
// OpenCV, as seeds for the image and mask decoding fuzz targets.
#ifndef PANDA_FUZZ_IMAGE_SEEDS_H_
#define PANDA_FUZZ_IMAGE_SEEDS_H_

#include <cstdint>

#include "fuzz/fuzz_support.h"

namespace panda::fuzz {

// The pixel limit that the image and mask decoding targets pass to the
// decoders, which check it from the file's header and after decoding. One
// megapixel keeps a mutated header that claims a huge image from slowing
// the run down.
constexpr int64_t kMaxImagePixels = 1 << 20;

// PNG (grey, RGB, RGBA, 16-bit), JPEG, BMP, TIFF and WebP files of a few
// pixels each.
SeedList ImageSeeds();

}  // namespace panda::fuzz

#endif  // PANDA_FUZZ_IMAGE_SEEDS_H_
