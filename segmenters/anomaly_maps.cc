#include "segmenters/anomaly_maps.h"

#include <cmath>
#include <vector>

#include "torch/torch.h"

namespace panda {
namespace {

namespace F = torch::nn::functional;

// Smooths float32 [M, 1, H, W] `maps` along one axis with `kernel`, whose
// shape ([1, 1, K, 1] or [1, 1, 1, K]) picks the axis. "reflect" padding in
// scipy's sense repeats the edge pixel (d c b a | a b c d), which is
// LibTorch's replicate-then-reflect; it needs a map at least the kernel
// radius long, so longer kernels mirror repeatedly.
torch::Tensor SmoothAxis(torch::Tensor maps, const torch::Tensor& kernel, bool vertical) {
  const int64_t radius = (kernel.numel() - 1) / 2;
  const int64_t length = maps.size(vertical ? 2 : 3);
  std::vector<int64_t> index;
  index.reserve(length + 2 * radius);
  for (int64_t i = -radius; i < length + radius; ++i) {
    // Mirror with the edge repeated: period 2 * length.
    int64_t j = ((i % (2 * length)) + 2 * length) % (2 * length);
    if (j >= length) j = 2 * length - 1 - j;
    index.push_back(j);
  }
  const torch::Tensor padded = maps.index_select(
      vertical ? 2 : 3, torch::tensor(index, torch::kInt64).to(maps.device()));
  const torch::Tensor weight =
      vertical ? kernel.view({1, 1, -1, 1}) : kernel.view({1, 1, 1, -1});
  return F::conv2d(padded, weight.to(maps.device()));
}

}  // namespace

torch::Tensor GaussianKernel(double sigma) {
  const int64_t radius = static_cast<int64_t>(std::lround(4.0 * sigma));
  torch::Tensor x = torch::arange(-radius, radius + 1, torch::kFloat64);
  torch::Tensor kernel = torch::exp(-0.5 * (x / sigma).pow(2));
  return (kernel / kernel.sum()).to(torch::kFloat32);
}

torch::Tensor PatchScoresToAnomalyMaps(const torch::Tensor& patch_scores,
                                       int64_t height, int64_t width,
                                       double sigma) {
  torch::Tensor maps = patch_scores.to(torch::kFloat32).unsqueeze(1);
  maps = F::interpolate(maps, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{height, width})
                                  .mode(torch::kBilinear)
                                  .align_corners(false));
  if (sigma > 0) {
    const torch::Tensor kernel = GaussianKernel(sigma);
    maps = SmoothAxis(maps, kernel, /*vertical=*/true);
    maps = SmoothAxis(maps, kernel, /*vertical=*/false);
  }
  return maps.squeeze(1).contiguous();
}

}  // namespace panda
