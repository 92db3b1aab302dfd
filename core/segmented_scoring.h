// Anomaly segmentation of one normal class: patch features of the class's
// training images fit a segmenter, whose patch scores on the test images
// become anomaly maps at the image size. The maps give the pixel metrics,
// the image scores (each map's maximum) and the pictures of a run.
#ifndef PANDA_CORE_SEGMENTED_SCORING_H_
#define PANDA_CORE_SEGMENTED_SCORING_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backbones/backbone.h"
#include "config/pipeline.pb.h"
#include "config/results.pb.h"
#include "core/run_file.h"
#include "scorers/scorer.h"
#include "segmenters/segmenter.h"
#include "torch/types.h"

namespace panda {

struct SegmentationJob {
  Backbone* backbone = nullptr;
  Segmenter* segmenter = nullptr;
  const SegmentationConfig* config = nullptr;
  // Makes an unfitted scorer; needed only when config->image_score() is
  // SCORER.
  std::function<absl::StatusOr<std::unique_ptr<Scorer>>()> make_scorer;
  torch::Device device = torch::kCPU;
  int64_t batch_size = 64;
  // uint8 [N, H, W, C] normal training images.
  torch::Tensor train_images;
  // uint8 [M, H, W, C] test images, their uint8 [M, H, W] ground-truth
  // masks and their labels, 1 for anomalous.
  torch::Tensor test_images;
  torch::Tensor test_masks;
  std::vector<int> test_labels;
  // Held-out normal images for the deployment threshold; may be undefined.
  torch::Tensor holdout_images;
  // Names the pictures: "pictures/<prefix>-<test image index>.png".
  std::string picture_prefix;
};

struct SegmentedScores {
  // float32 CPU image scores of the test and held-out images.
  torch::Tensor test;
  torch::Tensor holdout;
  SegmentationResult result;
  std::vector<RunFile> pictures;
};

absl::StatusOr<SegmentedScores> SegmentAndScore(const SegmentationJob& job);

}  // namespace panda

#endif  // PANDA_CORE_SEGMENTED_SCORING_H_
