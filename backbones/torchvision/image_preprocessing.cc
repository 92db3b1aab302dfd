#include "backbones/torchvision/image_preprocessing.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "torch/torch.h"

namespace panda::torchvision {
namespace {

constexpr std::array<float, 3> kImagenetMean = {0.485f, 0.456f, 0.406f};
constexpr std::array<float, 3> kImagenetStd = {0.229f, 0.224f, 0.225f};

absl::StatusOr<std::array<float, 3>> ChannelValues(
    const google::protobuf::RepeatedField<float>& values, const std::array<float, 3>& fallback,
    const std::string& field, bool positive) {
  if (values.empty()) return fallback;
  if (values.size() != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " needs 3 values (R, G, B) or none for ImageNet's, got ", values.size()));
  }
  std::array<float, 3> result{};
  for (int i = 0; i < 3; ++i) {
    if (!std::isfinite(values[i]) || (positive && values[i] <= 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " values must be finite", positive ? " and positive" : "", ", got ",
          absl::StrJoin(values, ", ")));
    }
    result[i] = values[i];
  }
  return result;
}

// torchvision's Resize(size) with one int: the shorter side becomes `size`
// and the longer one size * long / short, rounded down.
std::array<int64_t, 2> ResizedSize(int64_t height, int64_t width, int64_t size) {
  const int64_t shorter = std::min(height, width);
  const int64_t longer = std::max(height, width);
  const auto scaled = static_cast<int64_t>(static_cast<double>(size * longer) / shorter);
  return width <= height ? std::array<int64_t, 2>{scaled, size}
                         : std::array<int64_t, 2>{size, scaled};
}

// torchvision's center_crop: pads with zeros to at least `crop` on each
// side, then takes the window starting at round((size - crop) / 2), where
// Python's round() takes halves to even, as std::nearbyint does in the
// default rounding mode.
torch::Tensor CenterCrop(torch::Tensor x, int64_t crop) {
  const int64_t height = x.size(2);
  const int64_t width = x.size(3);
  if (crop > height || crop > width) {
    const int64_t pad_width = std::max<int64_t>(crop - width, 0);
    const int64_t pad_height = std::max<int64_t>(crop - height, 0);
    x = torch::constant_pad_nd(
        x, {pad_width / 2, (pad_width + 1) / 2, pad_height / 2, (pad_height + 1) / 2}, 0);
  }
  const auto top = static_cast<int64_t>(std::nearbyint((x.size(2) - crop) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint((x.size(3) - crop) / 2.0));
  return x.slice(2, top, top + crop).slice(3, left, left + crop);
}

}  // namespace

absl::StatusOr<PreprocessSettings> ResolvePreprocessing(const ImagePreprocessing& options,
                                                        const std::string& field) {
  PreprocessSettings settings;
  if (options.resize() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".resize must be 0 (keep the size) or positive, got ", options.resize()));
  }
  if (options.center_crop() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".center_crop must be 0 (no crop) or positive, got ", options.center_crop()));
  }
  settings.resize = options.resize();
  settings.center_crop = options.center_crop();
  settings.antialias = options.antialias();
  auto mean = ChannelValues(options.mean(), kImagenetMean, field + ".mean", false);
  if (!mean.ok()) return mean.status();
  auto std = ChannelValues(options.std(), kImagenetStd, field + ".std", true);
  if (!std.ok()) return std.status();
  settings.mean = *mean;
  settings.std = *std;
  return settings;
}

std::array<int64_t, 2> PreprocessedSize(int64_t height, int64_t width,
                                        const PreprocessSettings& settings) {
  std::array<int64_t, 2> size = {height, width};
  if (settings.resize > 0) size = ResizedSize(height, width, settings.resize);
  if (settings.center_crop > 0) size = {settings.center_crop, settings.center_crop};
  return size;
}

torch::Tensor PreprocessImages(const torch::Tensor& images, const PreprocessSettings& settings) {
  TORCH_CHECK(images.defined() && images.dim() == 4 && images.scalar_type() == torch::kByte &&
                  (images.size(3) == 1 || images.size(3) == 3) && images.size(1) > 0 &&
                  images.size(2) > 0,
              "expected uint8 images [N, H, W, C] with C = 1 or 3, got ",
              images.defined() ? images.toString() : "an undefined tensor", " ",
              images.defined() ? images.sizes() : torch::IntArrayRef());

  torch::Tensor x = images.permute({0, 3, 1, 2}).to(torch::kFloat);
  if (settings.resize > 0) {
    const std::array<int64_t, 2> size = ResizedSize(x.size(2), x.size(3), settings.resize);
    if (size[0] != x.size(2) || size[1] != x.size(3)) {
      x = settings.antialias
              ? torch::_upsample_bilinear2d_aa(x, {size[0], size[1]}, /*align_corners=*/false)
              : torch::upsample_bilinear2d(x, {size[0], size[1]}, /*align_corners=*/false);
    }
  }
  if (settings.center_crop > 0) x = CenterCrop(x, settings.center_crop);
  if (x.size(1) == 1) x = x.expand({-1, 3, -1, -1});

  const auto options = torch::TensorOptions().dtype(torch::kFloat).device(x.device());
  const torch::Tensor mean =
      torch::tensor({settings.mean[0], settings.mean[1], settings.mean[2]}, options)
          .view({1, 3, 1, 1});
  const torch::Tensor std =
      torch::tensor({settings.std[0], settings.std[1], settings.std[2]}, options)
          .view({1, 3, 1, 1});
  return x.div(255).sub_(mean).div_(std).contiguous();
}

std::string DescribePreprocessing(const PreprocessSettings& settings) {
  return absl::StrCat("resize=", settings.resize, "/crop=", settings.center_crop,
                      "/mean=", absl::StrJoin(settings.mean, ","),
                      "/std=", absl::StrJoin(settings.std, ","),
                      "/antialias=", settings.antialias ? 1 : 0);
}

}  // namespace panda::torchvision
