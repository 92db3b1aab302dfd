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

namespace {

// The pixel limit the decoders check from the file's header (image
// headers are fuzzed too) and after decoding. One megapixel keeps a mutated
// header that claims a huge image from slowing the run down.
constexpr int64_t kMaxPixels = 1 << 20;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::ImageSeeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = panda::fuzz::WriteTempFile("input.img", data, size);
  (void)panda::DecodeRgbImage(path, kMaxPixels);
  for (int side : {2, 16}) {
    std::vector<uint8_t> rgb(static_cast<size_t>(side) * side * 3);
    cv::Size decoded_size;
    (void)panda::DecodeImageFile(path, side, kMaxPixels, rgb.data(),
                                 &decoded_size);
  }
  return 0;
}
