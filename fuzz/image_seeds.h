// Small images in every format that the image decoders accept, encoded by
// OpenCV, as seeds for the image and mask decoding fuzz targets.
#ifndef PANDA_FUZZ_IMAGE_SEEDS_H_
#define PANDA_FUZZ_IMAGE_SEEDS_H_

#include "fuzz/fuzz_support.h"

namespace panda::fuzz {

// PNG (grey, RGB, RGBA, 16-bit), JPEG, BMP, TIFF and WebP files of a few
// pixels each.
SeedList ImageSeeds();

}  // namespace panda::fuzz

#endif  // PANDA_FUZZ_IMAGE_SEEDS_H_
