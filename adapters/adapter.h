// Adapter plugins: adapt a pretrained backbone to the normal class before
// features are extracted (PANDA's compactness fine-tuning and its variants).
//
// Lifecycle: create from options, then Adapt() once per normal class on a
// fresh copy of the pretrained backbone. Errors during training (diverged
// loss, NaN features) are returned as Status; the backbone is then unusable.
#ifndef PANDA_ADAPTERS_ADAPTER_H_
#define PANDA_ADAPTERS_ADAPTER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backbones/backbone.h"
#include "core/registry.h"
#include "datasets/dataset.h"
#include "scorers/score_head.h"
#include "torch/types.h"

namespace panda {

// Statistics of the features after one training epoch. Epoch 0 describes
// the pretrained features before any step.
struct EpochStats {
  int epoch = 0;
  // Mean training loss over the epoch's batches, penalty included.
  double loss = 0;
  // Mean of the regularisation term (EWC), 0 without one.
  double penalty = 0;
  // Mean squared L2 distance of the normal training features to the centre.
  double center_distance = 0;
  // Variance of the normal training features per dimension, averaged over
  // dimensions. Collapse drives it towards 0.
  double feature_variance = 0;
  // Optimizer steps taken so far.
  int64_t iterations = 0;
  double seconds = 0;
  // True for an epoch that a resumed run replays from its checkpoint.
  bool resumed = false;
};

// Settings the pipeline shares with the adapter.
struct AdaptationContext {
  torch::Device device = torch::kCPU;
  int64_t batch_size = 32;
  // Seeds the order of training batches and any random choice.
  int64_t seed = 0;
  // Folder for per-epoch checkpoints; empty trains without them. A
  // checkpoint found there is resumed from.
  std::string checkpoint_dir;
  // Called after each epoch (before its checkpoint is written) and once with
  // epoch 0 before training. A resumed run first replays the epochs its
  // checkpoint contains, marked resumed. It may run the backbone in eval mode; training
  // switches back to training mode itself. A non-OK status stops training
  // and Adapt returns it.
  std::function<absl::Status(const EpochStats&)> on_epoch_end;
};

class Adapter {
 public:
  virtual ~Adapter() = default;

  // True when Adapt() leaves the backbone's features unchanged, so features
  // cached from the pretrained backbone remain valid.
  virtual bool preserves_features() const = 0;

  // Adapts `backbone` in place to `normal_train`, the normal class's
  // training images.
  virtual absl::Status Adapt(Backbone& backbone, const ImageSet& normal_train,
                             const AdaptationContext& context) = 0;

  // Epochs after which the pipeline scores the test images with the weights
  // of that moment and combines the checkpoints sample-wise (PANDA's
  // sample-wise early stopping). Empty: the test images are scored once,
  // after Adapt.
  virtual std::vector<int> scoring_epochs() const { return {}; }

  // True for adapters whose Adapt() learns a score head.
  virtual bool trains_score_head() const { return false; }

  // A scoring rule learnt by the last Adapt() (the outlier-exposure
  // classifier, DeepSVDD's distance to its centre), for the "head" scorer;
  // empty for adapters without one.
  virtual ScoreHead score_head() const { return nullptr; }
};

Registry<Adapter>& AdapterRegistry();

}  // namespace panda

#endif  // PANDA_ADAPTERS_ADAPTER_H_
