// Fuzzes the image decoding wrapper (datasets/image_folder_decoding.h):
// DecodeRgbImage, and DecodeImageFile at a size that shrinks and one that
// enlarges the seed images.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/image_folder_decoding.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/image_seeds.h"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::ImageSeeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = panda::fuzz::WriteTempFile("input.img", data, size);
  (void)panda::DecodeRgbImage(path, panda::fuzz::kMaxImagePixels);
  for (int side : {2, 16}) {
    std::vector<uint8_t> rgb(static_cast<size_t>(side) * side * 3);
    cv::Size decoded_size;
    (void)panda::DecodeImageFile(path, side, panda::fuzz::kMaxImagePixels,
                                 rgb.data(), &decoded_size);
  }
  return 0;
}
