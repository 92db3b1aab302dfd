#include "segmenters/patch_features.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/feature_extractor.h"
#include "core/status_macros.h"
#include "torch/torch.h"

namespace panda {
namespace {

namespace F = torch::nn::functional;

absl::Status ValidateSpec(const PatchSpec& spec, const std::string& label) {
  if (spec.taps.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": no taps; list the backbone's spatial outputs "
                            "that make a patch feature"));
  }
  for (const std::string& tap : spec.taps) {
    if (tap == "pooled") {
      return absl::InvalidArgumentError(absl::StrCat(
          label, ": tap \"pooled\" has no spatial extent; list feature maps"));
    }
  }
  if (spec.neighbourhood < 1 || spec.neighbourhood % 2 == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": neighbourhood must be an odd number of at least 1, got ",
                     spec.neighbourhood));
  }
  return absl::OkStatus();
}

// Brings the taps of one batch to the largest tap's grid and concatenates
// them: float32 [B, H, W, C] on the CPU.
absl::StatusOr<torch::Tensor> BatchPatches(const TapMap& outputs, const PatchSpec& spec,
                                           const std::string& label) {
  int64_t height = 0, width = 0;
  for (const std::string& tap : spec.taps) {
    const torch::Tensor& map = outputs.at(tap);
    if (map.dim() != 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          label, ": tap \"", tap, "\" is not a spatial map (it has ", map.dim(),
          " dimensions, not 4)"));
    }
    height = std::max(height, map.size(2));
    width = std::max(width, map.size(3));
  }

  std::vector<torch::Tensor> aligned;
  for (const std::string& tap : spec.taps) {
    torch::Tensor map = outputs.at(tap).to(torch::kFloat32);
    if (spec.neighbourhood > 1) {
      map = F::avg_pool2d(map, F::AvgPool2dFuncOptions(spec.neighbourhood)
                                   .stride(1)
                                   .padding(spec.neighbourhood / 2)
                                   .count_include_pad(false));
    }
    if (map.size(2) != height || map.size(3) != width) {
      map = F::interpolate(map, F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{height, width})
                                    .mode(torch::kBilinear)
                                    .align_corners(false));
    }
    aligned.push_back(map);
  }
  return torch::cat(aligned, /*dim=*/1).permute({0, 2, 3, 1}).to(torch::kCPU).contiguous();
}

}  // namespace

absl::StatusOr<PatchFeatures> ExtractPatchFeatures(Backbone& backbone,
                                                   const torch::Tensor& images,
                                                   const PatchSpec& spec,
                                                   int64_t batch_size,
                                                   const torch::Device& device,
                                                   const std::string& label) {
  PANDA_RETURN_IF_ERROR(ValidateSpec(spec, label));
  std::vector<std::string> taps = spec.taps;
  taps.push_back("pooled");

  const int64_t count = images.size(0);
  PatchFeatures features;
  features.pooled = torch::empty({count, backbone.feature_dim()}, torch::kFloat32);
  PANDA_RETURN_IF_ERROR(ForEachFeatureBatch(
      backbone, images, batch_size, device, label, taps,
      [&](const TapMap& outputs, int64_t begin, int64_t end) -> absl::Status {
        const torch::Tensor pooled = outputs.at("pooled").to(torch::kCPU, torch::kFloat32);
        PANDA_RETURN_IF_ERROR(CheckFiniteRows(pooled, begin, label));
        features.pooled.slice(0, begin, end).copy_(pooled);

        PANDA_ASSIGN_OR_RETURN(const torch::Tensor patches, BatchPatches(outputs, spec, label));
        PANDA_RETURN_IF_ERROR(CheckFiniteRows(patches, begin, label));
        if (!features.patches.defined()) {
          features.patches = torch::empty(
              {count, patches.size(1), patches.size(2), patches.size(3)}, torch::kFloat32);
        }
        features.patches.slice(0, begin, end).copy_(patches);
        return absl::OkStatus();
      }));
  return features;
}

}  // namespace panda
