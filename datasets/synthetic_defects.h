// Draws images of a textured surface with synthetic defects and their exact
// ground-truth masks, with OpenCV. The "synthetic_defects" dataset plugin
// builds its splits from these samples.
//
//   std::mt19937_64 engine = DefectSampleEngine(seed, /*stream=*/1,
//                                               DefectKind::kBlob, index);
//   DefectSample sample =
//       DrawDefectSample(texture, 128, DefectKind::kBlob, engine);
//
// Every random choice comes from the engine through this file's own
// arithmetic rather than std:: distributions, whose results differ between
// standard libraries, so a seed gives the same images everywhere that
// OpenCV draws the same shapes.
#ifndef PANDA_DATASETS_SYNTHETIC_DEFECTS_H_
#define PANDA_DATASETS_SYNTHETIC_DEFECTS_H_

#include <cstdint>
#include <random>

#include "opencv2/core.hpp"

namespace panda {

// Kinds of defect. Their values are the class labels of the dataset.
enum class DefectKind {
  // No defect: the surface alone.
  kNone = 0,
  // A line or polyline of 1 to 4 pixels, clearly lighter or darker than the
  // surface under it.
  kScratch = 1,
  // A filled ellipse or irregular polygon holding the texture from another
  // offset, rotated by a multiple of 90 degrees and shifted in colour.
  kBlob = 2,
  // A disc or ellipse whose colour is shifted strongly.
  kColourSpot = 3,
};

inline constexpr int kNumDefectKinds = 4;

// Returns "good", "scratch", "blob" or "colour_spot".
const char* DefectKindName(DefectKind kind);

// One generated image.
struct DefectSample {
  // The defect-free surface: CV_8UC3 RGB, image_size x image_size.
  cv::Mat surface;
  // `surface` with the defect drawn on it, of the same type and size; a
  // copy of `surface` for DefectKind::kNone.
  cv::Mat image;
  // CV_8UC1 of the same size: 1 on every pixel the defect was drawn on, 0
  // elsewhere, and all 0 for DefectKind::kNone. Drawing sets each of those
  // pixels to the defect's colour. Where that colour happens to equal the
  // surface (a lighter scratch over a pixel already at 255), the pixel of
  // `image` equals `surface` but the mask is still 1 there.
  cv::Mat mask;
};

// Returns the engine for sample `index` of kind `kind` in stream `stream`
// (the dataset uses 0 for training and 1 for test images), seeded through
// std::seed_seq, whose output the C++ standard fixes. Each sample has its
// own engine, so that changing how many samples of one kind are drawn
// leaves the others unchanged.
std::mt19937_64 DefectSampleEngine(int64_t seed, int stream, DefectKind kind,
                                   int64_t index);

// Draws one sample from `texture` (CV_8UC3 RGB of any size, a seamless tile)
// with `engine`. The surface is the texture tiled to cover `image_size` x
// `image_size`, cut at a random offset and scaled in brightness by a random
// factor from 0.9 to 1.1. The defect, if any, has hard edges and lies at a
// random place. Blobs and spots have a radius of 3% to 15% of `image_size`
// (at least 2 pixels). Scratches run for 25% to 60% of it.
// `image_size` must be at least 8.
DefectSample DrawDefectSample(const cv::Mat& texture, int image_size,
                              DefectKind kind, std::mt19937_64& engine);

}  // namespace panda

#endif  // PANDA_DATASETS_SYNTHETIC_DEFECTS_H_
