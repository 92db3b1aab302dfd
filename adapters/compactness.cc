#include "adapters/compactness.h"

#include "adapters/feature_trainer.h"
#include "core/logging.h"
#include "core/status_macros.h"
#include "torch/torch.h"

namespace panda {

TrainingOptions PandaTrainingDefaults() {
  TrainingOptions defaults;
  defaults.set_trainable_from("");
  defaults.set_freeze_batchnorm(true);
  OptimizerOptions* optimizer = defaults.mutable_optimizer();
  optimizer->set_kind(OptimizerOptions::SGD);
  optimizer->set_learning_rate(1e-2);
  optimizer->set_momentum(0.9);
  optimizer->set_weight_decay(5e-5);
  defaults.set_clip_grad_norm(1e-3);
  defaults.set_batch_size(32);
  defaults.set_epochs(15);
  defaults.set_max_iterations(0);
  defaults.set_collapse_warning_fraction(0.1);
  return defaults;
}

torch::Tensor CompactnessLoss(const torch::Tensor& features, const torch::Tensor& center) {
  return (features - center).pow(2).sum(1).mean();
}

absl::StatusOr<torch::Tensor> TrainCompactness(Backbone& backbone,
                                               const ImageSet& normal_train,
                                               const TrainingOptions& options,
                                               const AdaptationContext& context,
                                               const PenaltyFactory& make_penalty,
                                               const CenterRule& center_rule) {
  PANDA_ASSIGN_OR_RETURN(const std::string stage, SelectTrainableStages(backbone, options));
  PANDA_LOG(INFO) << "compactness training from stage " << stage;

  // The centre stays where the pretrained features are; only the network moves.
  PANDA_ASSIGN_OR_RETURN(torch::Tensor initial_features,
                         InitialFeatures(backbone, normal_train.images,
                                         !options.freeze_batchnorm(), context));
  torch::Tensor center = initial_features.mean(0);
  if (center_rule) center = center_rule(center);
  EpochStats initial = FeatureStats(initial_features, center);

  TrainingObjective objective;
  objective.batch_loss = [center](const torch::Tensor& features, const torch::Tensor&) {
    return CompactnessLoss(features, center);
  };
  if (make_penalty) {
    PANDA_ASSIGN_OR_RETURN(objective.penalty, make_penalty(backbone));
  }
  TrainingData data;
  data.images = normal_train.images;
  data.targets = torch::zeros({normal_train.images.size(0)}, torch::kFloat32);
  PANDA_RETURN_IF_ERROR(
      TrainBackbone(backbone, data, center, options, objective, context, initial));
  return center;
}

}  // namespace panda
