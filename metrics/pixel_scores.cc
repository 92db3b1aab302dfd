#include "metrics/pixel_scores.h"

#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace panda {
namespace {

// Checks the three sizes and returns images * height * width.
absl::StatusOr<int64_t> PixelCount(absl::string_view metric,
                                   const PixelScores& pixels) {
  if (pixels.images < 0 || pixels.height < 0 || pixels.width < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        metric, ": sizes must not be negative, but got ", pixels.images,
        " images of ", pixels.height, " x ", pixels.width, " pixels"));
  }
  const int64_t max = std::numeric_limits<int64_t>::max();
  const bool overflows =
      (pixels.height > 0 && pixels.width > max / pixels.height) ||
      (pixels.height * pixels.width > 0 &&
       pixels.images > max / (pixels.height * pixels.width));
  if (overflows) {
    return absl::InvalidArgumentError(absl::StrCat(
        metric, ": ", pixels.images, " images of ", pixels.height, " x ",
        pixels.width, " pixels are more than int64 can count"));
  }
  return pixels.images * pixels.height * pixels.width;
}

}  // namespace

absl::StatusOr<PixelCounts> CountPixelLabels(absl::string_view metric,
                                             const PixelScores& pixels) {
  absl::StatusOr<int64_t> size = PixelCount(metric, pixels);
  if (!size.ok()) return size.status();
  const std::string shape = absl::StrCat(pixels.images, " images of ",
                                         pixels.height, " x ", pixels.width);
  if (pixels.maps.size() != static_cast<uint64_t>(*size)) {
    return absl::InvalidArgumentError(
        absl::StrCat(metric, ": anomaly maps of ", shape, " pixels need ",
                     *size, " scores, but got ", pixels.maps.size()));
  }
  if (pixels.masks.size() != pixels.maps.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        metric, ": masks of ", shape, " pixels need ", pixels.maps.size(),
        " labels, one per score, but got ", pixels.masks.size()));
  }

  PixelCounts counts;
  const int64_t per_image = pixels.height * pixels.width;
  for (size_t i = 0; i < pixels.maps.size(); ++i) {
    if (std::isnan(pixels.maps[i])) {
      const int64_t index = static_cast<int64_t>(i);
      return absl::InvalidArgumentError(
          absl::StrCat(metric, ": the score of image ", index / per_image,
                       ", row ", index % per_image / pixels.width, ", column ",
                       index % pixels.width, " is NaN"));
    }
    if (pixels.masks[i] != 0) {
      ++counts.defect;
    } else {
      ++counts.normal;
    }
  }

  if (counts.defect == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(metric, " needs defect pixels, but the masks of ", shape,
                     " pixels are 0 everywhere"));
  }
  if (counts.normal == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        metric, " needs normal pixels, but every pixel of the masks of ", shape,
        " pixels is a defect"));
  }
  return counts;
}

}  // namespace panda
