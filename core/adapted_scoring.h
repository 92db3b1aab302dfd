// Scores for one normal class under an adapter that trains: a fresh
// pretrained backbone is adapted to the class, and features extracted with
// the adapted weights are scored. Adapters that name scoring epochs get
// PANDA's sample-wise early stopping. The test images are scored at each of
// those epochs, each checkpoint's scores are divided by the median score of
// normal training images at that checkpoint, and each image keeps its
// largest ratio.
#ifndef PANDA_CORE_ADAPTED_SCORING_H_
#define PANDA_CORE_ADAPTED_SCORING_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "adapters/adapter.h"
#include "backbones/backbone.h"
#include "config/results.pb.h"
#include "datasets/dataset.h"
#include "scorers/scorer.h"
#include "torch/types.h"

namespace panda {

struct AdaptationJob {
  std::function<absl::StatusOr<std::unique_ptr<Backbone>>()> make_backbone;
  // Makes an unfitted scorer.
  std::function<absl::StatusOr<std::unique_ptr<Scorer>>()> make_scorer;
  Adapter* adapter = nullptr;
  torch::Device device = torch::kCPU;
  int64_t batch_size = 64;
  int64_t seed = 0;
  // Folder for training checkpoints and checkpoint scores; empty for none.
  std::string checkpoint_dir;
  ImageSet normal_train;
  // uint8 [M, H, W, C] test images and their labels, 1 for anomalous.
  torch::Tensor test_images;
  std::vector<int> test_labels;
  // Held-out normal images for the deployment threshold; may be undefined.
  torch::Tensor holdout_images;
};

struct AdaptedScores {
  // float32 CPU scores of the test and held-out images.
  torch::Tensor test;
  torch::Tensor holdout;
  std::vector<EpochRecord> epochs;
};

absl::StatusOr<AdaptedScores> AdaptAndScore(const AdaptationJob& job);

// Combines per-checkpoint scores sample-wise: result[i] = max over t of
// scores[t][i] / typical[t]. Each typical score must be positive.
absl::StatusOr<torch::Tensor> CombineSampleWise(const std::vector<torch::Tensor>& scores,
                                                const std::vector<double>& typical);

}  // namespace panda

#endif  // PANDA_CORE_ADAPTED_SCORING_H_
