#include "core/feature_extractor.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/progress_bar.h"
#include "core/status_macros.h"
#include "torch/torch.h"

namespace panda {

absl::StatusOr<torch::Tensor> ExtractPooledFeatures(
    Backbone& backbone, const torch::Tensor& images, int64_t batch_size,
    const torch::Device& device, const std::string& label) {
  const int64_t count = images.size(0);
  torch::Tensor features =
      torch::empty({count, backbone.feature_dim()}, torch::kFloat32);
  const std::vector<std::string> taps = {"pooled"};

  torch::NoGradGuard no_grad;
  backbone.module().eval();
  backbone.module().to(device);
  ProgressBar progress(label, count, "images");

  for (int64_t begin = 0; begin < count; begin += batch_size) {
    const int64_t end = std::min(count, begin + batch_size);
    torch::Tensor batch = images.slice(0, begin, end).to(device);
    torch::Tensor input = backbone.Preprocess(batch);
    PANDA_ASSIGN_OR_RETURN(TapMap outputs, backbone.Forward(input, taps));

    torch::Tensor pooled = outputs.at("pooled").to(torch::kCPU, torch::kFloat32);
    torch::Tensor finite = torch::isfinite(pooled).all(/*dim=*/1);
    if (!finite.all().item<bool>()) {
      const int64_t first =
          begin + torch::nonzero(finite.logical_not())[0][0].item<int64_t>();
      return absl::InvalidArgumentError(absl::StrCat(
          label, ": the backbone produced NaN or infinite features for image ",
          first, "; the weights or the adaptation have diverged"));
    }
    features.slice(0, begin, end).copy_(pooled);
    progress.Advance(end - begin);
  }
  return features;
}

}  // namespace panda
