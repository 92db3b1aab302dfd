#include "backbones/keras/keras_preprocess.h"

namespace panda::keras {

torch::Tensor PreprocessImages(const torch::Tensor& images, int64_t height,
                               int64_t width,
                               KerasBackboneOptions::InputScaling scaling) {
  TORCH_CHECK(images.defined() && images.dim() == 4 &&
                  images.scalar_type() == torch::kByte &&
                  (images.size(3) == 1 || images.size(3) == 3),
              "expected uint8 images [N, H, W, C] with C = 1 or 3, got ",
              images.defined() ? images.toString() : "an undefined tensor",
              " ", images.defined() ? images.sizes() : torch::IntArrayRef());
  TORCH_CHECK(height > 0 && width > 0, "invalid target size ", height, "x", width);

  // nsfwjs scales before resizing. Bilinear weights sum to 1, so the order
  // changes nothing beyond float rounding.
  torch::Tensor input = images.permute({0, 3, 1, 2}).to(torch::kFloat);
  if (scaling == KerasBackboneOptions::SYMMETRIC) {
    input = input / 127.5 - 1;
  } else {
    input = input / 255;
  }
  if (input.size(2) != height || input.size(3) != width) {
    input = torch::upsample_bilinear2d(input, {height, width},
                                       /*align_corners=*/true);
  }
  if (input.size(1) == 1) input = input.expand({-1, 3, -1, -1});
  return input.contiguous();
}

}  // namespace panda::keras
