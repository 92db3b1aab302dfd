// Pictures of anomaly segmentation: one PNG per test image with three
// panels side by side, each as large as the image and kPictureGap white
// pixels apart:
//
//   1. the image;
//   2. the image blended half and half with the anomaly map in the jet
//      colormap (blue = low, red = high);
//   3. the image with the outline of the ground-truth defects in pure green
//      (RGB 0, 255, 0), or the image alone when the mask is absent or has
//      no defect.
//
//   PANDA_RETURN_IF_ERROR(WriteAnomalyMapPicture(
//       "results/run/maps/0007.png", images[7], maps[7], masks[7], range));
#ifndef PANDA_CORE_ANOMALY_MAP_PICTURE_H_
#define PANDA_CORE_ANOMALY_MAP_PICTURE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "torch/types.h"

namespace panda {

// White pixels between two panels.
inline constexpr int kPictureGap = 4;

// Scores that the colormap spans: `low` and below get its coldest colour,
// `high` and above its hottest. One range for all images of a run keeps
// their colours comparable.
struct HeatRange {
  float low = 0;
  float high = 1;
};

// Returns the PNG bytes of the picture of one test image.
//
//   image: uint8 [H, W, C], C = 1 (grey) or 3 (RGB).
//   map: float32 [H, W], the anomaly map at the image's resolution.
//   mask: uint8 [H, W], nonzero on defect pixels, or an undefined tensor
//     when there is no ground truth.
//
// Tensors on another device are copied to the CPU. Returns InvalidArgument
// for a wrong dtype or shape, a NaN in the map, or a range whose ends are
// not finite or whose low is not below its high.
absl::StatusOr<std::string> RenderAnomalyMapPicture(const torch::Tensor& image,
                                                    const torch::Tensor& map,
                                                    const torch::Tensor& mask,
                                                    HeatRange range);

// Renders the picture and writes it to `path` through an AtomicFileWriter,
// so a failed write leaves no partial file. Errors name `path`.
absl::Status WriteAnomalyMapPicture(const std::string& path,
                                    const torch::Tensor& image,
                                    const torch::Tensor& map,
                                    const torch::Tensor& mask, HeatRange range);

}  // namespace panda

#endif  // PANDA_CORE_ANOMALY_MAP_PICTURE_H_
