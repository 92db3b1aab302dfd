// The training loop that the training adapters share: minibatches of
// images through the backbone's "pooled" tap, an adapter-defined loss,
// gradient clipping, per-epoch collapse statistics and atomic per-epoch
// checkpoints that a restarted run resumes from.
//
//   TrainingObjective objective;
//   objective.batch_loss = [&](const torch::Tensor& features, const torch::Tensor&) {
//     return CompactnessLoss(features, center);
//   };
//   PANDA_RETURN_IF_ERROR(TrainBackbone(backbone, data, center, options,
//                                       objective, context));
#ifndef PANDA_ADAPTERS_FEATURE_TRAINER_H_
#define PANDA_ADAPTERS_FEATURE_TRAINER_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "adapters/adapter.h"
#include "adapters/training_options.pb.h"
#include "backbones/backbone.h"
#include "torch/nn/module.h"
#include "torch/types.h"

namespace panda {

struct TrainingObjective {
  // Loss of one batch from its pooled features [B, D] and targets [B]
  // (float, 0 for normal images and 1 for outliers), on the device.
  std::function<torch::Tensor(const torch::Tensor& features,
                              const torch::Tensor& targets)>
      batch_loss;
  // A term added to every batch's loss, such as EWC's penalty; optional.
  std::function<torch::Tensor()> penalty;
  // Trainable modules beside the backbone (the outlier-exposure head), by
  // name; they train with it and are saved in its checkpoints.
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>>
      extra_modules;
};

struct TrainingData {
  // uint8 [N, H, W, C] images on the CPU.
  torch::Tensor images;
  // float32 [N]: 0 for normal images, 1 for outliers.
  torch::Tensor targets;
};

// Fills the fields of `options` that are unset from `defaults`.
TrainingOptions WithDefaults(const TrainingOptions& options,
                             const TrainingOptions& defaults);

// Checks resolved options: a positive learning rate and batch size,
// momentum in [0, 1), non-negative weight decay, clip, epochs and step
// limit, and a collapse fraction in [0, 1]. Errors name
// "<adapter>: training.<field>" and the value.
absl::Status ValidateTrainingOptions(const TrainingOptions& options,
                                     const std::string& adapter);

// Makes the stages from options.trainable_from() on trainable (the last two
// stages when it is empty) and applies freeze_batchnorm. Returns the name of
// the first trainable stage, or InvalidArgument for a backbone without
// stages or an unknown stage.
absl::StatusOr<std::string> SelectTrainableStages(Backbone& backbone,
                                                  const TrainingOptions& options);

// Pooled features of `images` without gradients, float32 [N, D] on the
// context's device: in eval mode, or in training mode when BatchNorm layers
// train too (`batchnorm_trains`), since their running statistics are not
// yet those of this data and the loss uses batch statistics. Training mode
// also moves the running statistics towards this data.
absl::StatusOr<torch::Tensor> InitialFeatures(Backbone& backbone,
                                              const torch::Tensor& images,
                                              bool batchnorm_trains,
                                              const AdaptationContext& context);

// Collapse statistics of normal features [N, D] around `center` [D].
EpochStats FeatureStats(const torch::Tensor& features, const torch::Tensor& center);

// Trains the trainable parameters of `backbone` (SelectTrainableStages must
// have run) and of objective.extra_modules on `data`. `center` [D] is where
// EpochStats measure distances from; `initial` contains the pretrained
// statistics reported as epoch 0. Returns InvalidArgument when the loss
// turns NaN or infinite, naming the epoch and step.
//
// In a multi-process run (ProcessDistributedContext()) the training is data
// parallel: every rank passes the same data and starts from the same
// weights, takes its ShardRows share of each batch and scales its loss by
// that share, and the ranks sum their gradients before clipping and the
// step. objective.batch_loss must therefore be a mean over the batch's
// images. The weights then equal one process's up to float rounding, unless
// BatchNorm layers train, because each rank normalises its share of the
// batch with that share's statistics. Rank 0 alone writes checkpoints.
absl::Status TrainBackbone(Backbone& backbone, const TrainingData& data,
                           const torch::Tensor& center,
                           const TrainingOptions& options,
                           const TrainingObjective& objective,
                           const AdaptationContext& context,
                           const EpochStats& initial);

}  // namespace panda

#endif  // PANDA_ADAPTERS_FEATURE_TRAINER_H_
