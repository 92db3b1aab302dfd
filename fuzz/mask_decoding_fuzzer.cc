// Fuzzes DecodeMaskFile (datasets/mask_decoding.h) at a size that shrinks
// and one that enlarges the seed images.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/mask_decoding.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/image_seeds.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::ImageSeeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = panda::fuzz::WriteTempFile("mask.png", data, size);
  for (int side : {2, 16}) {
    std::vector<uint8_t> mask(static_cast<size_t>(side) * side);
    cv::Size decoded_size;
    (void)panda::DecodeMaskFile(path, side, panda::fuzz::kMaxImagePixels,
                                mask.data(), &decoded_size);
  }
  return 0;
}
