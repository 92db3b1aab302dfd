// Anomaly maps and ground-truth masks of a test set, the input of the
// pixel-level metrics (pixel ROC-AUC, AUPRO).
//
//   PixelScores pixels{maps, masks, images, height, width};
//   PANDA_ASSIGN_OR_RETURN(PixelRoc roc, ComputePixelRoc(pixels));
#ifndef PANDA_METRICS_PIXEL_SCORES_H_
#define PANDA_METRICS_PIXEL_SCORES_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace panda {

// Views of the anomaly maps and masks of `images` images of `height` x
// `width` pixels, both laid out [images, height, width] in row-major order.
// The views do not own the data.
struct PixelScores {
  // One score per pixel; higher means more anomalous. Infinities are
  // allowed, NaN is not.
  absl::Span<const float> maps;
  // One label per pixel: nonzero marks a defect pixel, 0 a normal one.
  absl::Span<const uint8_t> masks;
  int64_t images = 0;
  int64_t height = 0;
  int64_t width = 0;
};

// Number of equal steps of the false positive rate grid on which the pixel
// ROC and PRO curves are sampled for plotting.
inline constexpr int kPixelCurveSteps = 100;

// Number of pixels of each kind.
struct PixelCounts {
  int64_t normal = 0;
  int64_t defect = 0;
};

// Validates `pixels` for `metric` (the name used in messages, e.g. "AUPRO")
// and counts the pixels of each kind. Returns InvalidArgument for a negative
// size, maps or masks whose length is not images * height * width, a NaN
// score, or masks without defect pixels or without normal pixels.
absl::StatusOr<PixelCounts> CountPixelLabels(absl::string_view metric,
                                             const PixelScores& pixels);

}  // namespace panda

#endif  // PANDA_METRICS_PIXEL_SCORES_H_
