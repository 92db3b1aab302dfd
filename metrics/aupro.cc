#include "metrics/aupro.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "metrics/connected_regions.h"

namespace panda {
namespace {

struct RankedPixel {
  float score;
  // Index of the pixel's defect region over all images, or kNoRegion.
  int32_t region;
};

// Returns every pixel's score and region, and the size of each region, with
// regions numbered across images.
std::vector<RankedPixel> LabelPixels(const PixelScores& pixels,
                                     std::vector<int64_t>& region_sizes) {
  const int64_t per_image = pixels.height * pixels.width;
  std::vector<RankedPixel> ranked(pixels.maps.size());
  std::vector<int32_t> labels(per_image);
  int32_t first_region = 0;
  for (int64_t image = 0; image < pixels.images; ++image) {
    const int64_t offset = image * per_image;
    const int32_t regions = LabelConnectedRegions(
        pixels.masks.subspan(offset, per_image), pixels.height, pixels.width,
        absl::MakeSpan(labels));
    region_sizes.resize(first_region + regions, 0);
    for (int64_t i = 0; i < per_image; ++i) {
      int32_t region = kNoRegion;
      if (labels[i] != kNoRegion) {
        region = first_region + labels[i];
        ++region_sizes[region];
      }
      ranked[offset + i] = {pixels.maps[offset + i], region};
    }
    first_region += regions;
  }
  return ranked;
}

// Integrates the PRO curve and samples it on the plotting grid as its points
// arrive in ascending order of false positive rate.
class ProCurveIntegrator {
 public:
  explicit ProCurveIntegrator(double fpr_limit) : fpr_limit_(fpr_limit) {}

  // Adds the curve's next point. Returns false once the curve has passed
  // the limit, so later points change nothing.
  bool Add(double fpr, double pro) {
    // Grid values in [last_fpr_, fpr) lie on the segment to this point. A
    // grid value equal to `fpr` waits, in case more points share that rate.
    while (next_step_ <= kPixelCurveSteps && GridFpr(next_step_) < fpr) {
      pro_curve_.push_back(Interpolate(GridFpr(next_step_), fpr, pro));
      ++next_step_;
    }

    if (fpr <= fpr_limit_) {
      area_ += (fpr - last_fpr_) * (last_pro_ + pro) / 2;
    } else {
      const double pro_at_limit = Interpolate(fpr_limit_, fpr, pro);
      area_ += (fpr_limit_ - last_fpr_) * (last_pro_ + pro_at_limit) / 2;
    }
    last_fpr_ = fpr;
    last_pro_ = pro;
    return fpr <= fpr_limit_;
  }

  // Returns the result once the last point (1, 1) or the first point past
  // the limit has been added.
  AuproResult Finish() {
    while (next_step_ <= kPixelCurveSteps) {
      pro_curve_.push_back(last_pro_);
      ++next_step_;
    }
    AuproResult result;
    result.aupro = area_ / fpr_limit_;
    result.fpr_limit = fpr_limit_;
    result.pro_curve = std::move(pro_curve_);
    return result;
  }

 private:
  double GridFpr(int step) const {
    // Dividing first makes the last grid value exactly the limit.
    return fpr_limit_ * (static_cast<double>(step) / kPixelCurveSteps);
  }

  // Returns the PRO at `at` on the segment from the last point to (fpr,
  // pro), where last_fpr_ <= at < fpr.
  double Interpolate(double at, double fpr, double pro) const {
    return last_pro_ + (pro - last_pro_) * (at - last_fpr_) / (fpr - last_fpr_);
  }

  const double fpr_limit_;
  double last_fpr_ = 0;
  double last_pro_ = 0;
  double area_ = 0;
  int next_step_ = 0;
  std::vector<double> pro_curve_;
};

}  // namespace

absl::StatusOr<AuproResult> Aupro(const PixelScores& pixels, double fpr_limit) {
  // Written so that NaN fails too.
  if (!(fpr_limit > 0 && fpr_limit <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AUPRO: the false positive rate limit must be in (0, 1], "
                     "but got ",
                     fpr_limit));
  }
  absl::StatusOr<PixelCounts> counts = CountPixelLabels("AUPRO", pixels);
  if (!counts.ok()) return counts.status();
  // Region indices are int32, and every region contains at least one pixel.
  if (counts->defect > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("AUPRO supports at most 2^31 - 1 defect pixels, but the "
                     "masks have ",
                     counts->defect));
  }

  std::vector<int64_t> region_sizes;
  std::vector<RankedPixel> ranked = LabelPixels(pixels, region_sizes);
  std::sort(ranked.begin(), ranked.end(),
            [](const RankedPixel& a, const RankedPixel& b) {
              return a.score > b.score;
            });

  // Lowers the threshold one distinct score at a time. Each flagged defect
  // pixel adds 1 / (its region's size) to the sum of the regions' overlaps.
  // Scores compare with ==, so -0.0 and 0.0 are one threshold.
  ProCurveIntegrator integrator(fpr_limit);
  const double normal = static_cast<double>(counts->normal);
  const double regions = static_cast<double>(region_sizes.size());
  int64_t flagged_normal = 0;
  double overlap_sum = 0;
  for (size_t begin = 0; begin < ranked.size();) {
    size_t end = begin;
    while (end < ranked.size() && ranked[end].score == ranked[begin].score) {
      const int32_t region = ranked[end].region;
      if (region == kNoRegion) {
        ++flagged_normal;
      } else {
        overlap_sum += 1.0 / static_cast<double>(region_sizes[region]);
      }
      ++end;
    }
    if (!integrator.Add(flagged_normal / normal, overlap_sum / regions)) break;
    begin = end;
  }

  AuproResult result = integrator.Finish();
  result.regions = static_cast<int64_t>(region_sizes.size());
  return result;
}

}  // namespace panda
