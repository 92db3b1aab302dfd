// Resize, centre crop and normalisation of uint8 images for networks
// trained on ImageNet with torchvision's transforms:
//
//   Resize(256) -> CenterCrop(224) -> ToTensor() -> Normalize(mean, std)
//
// PANDA (Reiss et al., CVPR 2021) prepares every data set this way.
#ifndef PANDA_BACKBONES_TORCHVISION_IMAGE_PREPROCESSING_H_
#define PANDA_BACKBONES_TORCHVISION_IMAGE_PREPROCESSING_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "backbones/torchvision/image_preprocessing.pb.h"
#include "torch/types.h"

namespace panda::torchvision {

// ImagePreprocessing with defaults filled in and values checked.
struct PreprocessSettings {
  int64_t resize = 256;      // shorter side after resizing; 0 keeps the size
  int64_t center_crop = 224;  // crop side; 0 for no crop
  std::array<float, 3> mean{};
  std::array<float, 3> std{};
  bool antialias = true;
};

// Checks `options` and fills in the ImageNet mean and std where they are
// empty. Returns InvalidArgument naming the field `field` + ".resize" etc.
// for a negative size, a mean or std without exactly 3 values, or a std
// value that is not positive.
absl::StatusOr<PreprocessSettings> ResolvePreprocessing(const ImagePreprocessing& options,
                                                        const std::string& field);

// Converts uint8 images [N, H, W, C], C = 1 or 3, on any device to float32
// [N, 3, H', W'] on the same device: resizes (the shorter side to
// settings.resize), crops the centre (padding with zeros like torchvision's
// center_crop when the image is smaller), repeats a grey channel three times,
// scales to [0, 1] and normalises with mean and std. Throws c10::Error for
// another dtype or shape, which is a caller's bug.
//
// NOTE: PIL-based pipelines round the resized image to uint8 before
// normalising. This function works in float throughout, so its values can
// differ from theirs by up to 0.5 / 255 / std (about 0.009).
torch::Tensor PreprocessImages(const torch::Tensor& images, const PreprocessSettings& settings);

// The size [H', W'] that PreprocessImages produces for an H x W image.
std::array<int64_t, 2> PreprocessedSize(int64_t height, int64_t width,
                                        const PreprocessSettings& settings);

// Everything in `settings` that changes the output, for fingerprints:
// "resize=256/crop=224/mean=0.485,0.456,0.406/std=0.229,0.224,0.225/antialias=1".
std::string DescribePreprocessing(const PreprocessSettings& settings);

}  // namespace panda::torchvision

#endif  // PANDA_BACKBONES_TORCHVISION_IMAGE_PREPROCESSING_H_
