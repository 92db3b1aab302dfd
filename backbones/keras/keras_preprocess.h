// Turns uint8 images into the float input of a Keras backbone, the way
// nsfwjs 4.2.1 prepares images for its models.
#ifndef PANDA_BACKBONES_KERAS_KERAS_PREPROCESS_H_
#define PANDA_BACKBONES_KERAS_KERAS_PREPROCESS_H_

#include <cstdint>

#include "backbones/keras/keras_backbone_options.pb.h"
#include "torch/types.h"

namespace panda::keras {

// Converts `images`, uint8 [N, H, W, C] with C = 1 or 3 on any device, to
// float32 [N, 3, height, width] on the same device: scales the pixel values
// as `scaling` says, resizes with bilinear interpolation and aligned corners
// (TensorFlow's resize_bilinear with align_corners=true) unless the size
// already matches, and repeats a grey channel three times. Throws
// c10::Error for any other dtype or shape, which is a caller's bug.
torch::Tensor PreprocessImages(const torch::Tensor& images, int64_t height,
                               int64_t width,
                               KerasBackboneOptions::InputScaling scaling);

}  // namespace panda::keras

#endif  // PANDA_BACKBONES_KERAS_KERAS_PREPROCESS_H_
