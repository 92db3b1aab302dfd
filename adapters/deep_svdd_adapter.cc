// Adapter "deep_svdd": the one-class Deep SVDD objective (Ruff et al.,
// 2018) on the whole network, for comparison with PANDA. Its score head is
// the squared distance to the centre, Deep SVDD's anomaly score.
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/adapter.h"
#include "adapters/compactness.h"
#include "adapters/deep_svdd_options.pb.h"
#include "adapters/feature_trainer.h"
#include "core/logging.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "torch/torch.h"

namespace panda {
namespace {

TrainingOptions DeepSvddDefaults() {
  TrainingOptions defaults;
  defaults.set_trainable_from("");
  defaults.set_freeze_batchnorm(false);
  OptimizerOptions* optimizer = defaults.mutable_optimizer();
  optimizer->set_kind(OptimizerOptions::ADAM);
  optimizer->set_learning_rate(1e-4);
  optimizer->set_momentum(0);
  optimizer->set_weight_decay(5e-7);
  defaults.set_clip_grad_norm(0);
  defaults.set_batch_size(200);
  defaults.set_epochs(150);
  defaults.set_max_iterations(0);
  defaults.set_collapse_warning_fraction(0.1);
  return defaults;
}

class DeepSvddAdapter : public Adapter {
 public:
  DeepSvddAdapter(DeepSvddOptions options, TrainingOptions training)
      : options_(std::move(options)), training_(std::move(training)) {}

  bool preserves_features() const override { return false; }

  absl::Status Adapt(Backbone& backbone, const ImageSet& normal_train,
                     const AdaptationContext& context) override {
    // Every stage trains unless the config names a first stage.
    TrainingOptions training = training_;
    if (training.trainable_from().empty()) {
      const std::vector<std::string> stages = backbone.stage_names();
      if (stages.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "deep_svdd: the backbone (", backbone.Fingerprint(), ") names no stages to train"));
      }
      training.set_trainable_from(stages.front());
    }

    // Ruff et al. keep the centre's coordinates away from 0, where zero
    // weights would reach them trivially.
    const double epsilon = options_.center_epsilon();
    const CenterRule away_from_zero = [epsilon](const torch::Tensor& mean) {
      const torch::Tensor small = mean.abs() < epsilon;
      torch::Tensor center =
          torch::where(small & (mean < 0), torch::full_like(mean, -epsilon), mean);
      return torch::where(small & (mean >= 0), torch::full_like(mean, epsilon), center);
    };
    PANDA_ASSIGN_OR_RETURN(center_, TrainCompactness(backbone, normal_train, training, context,
                                                     nullptr, away_from_zero));
    return absl::OkStatus();
  }

  bool trains_score_head() const override { return true; }

  ScoreHead score_head() const override {
    if (!center_.defined()) return nullptr;
    torch::Tensor center = center_;
    return [center](const torch::Tensor& features) {
      return (features - center.to(features.device())).pow(2).sum(1);
    };
  }

 private:
  DeepSvddOptions options_;
  TrainingOptions training_;
  torch::Tensor center_;
};

absl::StatusOr<std::unique_ptr<Adapter>> CreateDeepSvddAdapter(const google::protobuf::Any& any) {
  PANDA_ASSIGN_OR_RETURN(const DeepSvddOptions options,
                         UnpackPluginOptions<DeepSvddOptions>(any, "deep_svdd"));
  if (!(options.center_epsilon() >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "deep_svdd: center_epsilon must be zero or positive, got ", options.center_epsilon()));
  }
  const TrainingOptions training = WithDefaults(options.training(), DeepSvddDefaults());
  PANDA_RETURN_IF_ERROR(ValidateTrainingOptions(training, "deep_svdd"));
  return std::make_unique<DeepSvddAdapter>(options, training);
}

PANDA_REGISTER_PLUGIN(AdapterRegistry, "deep_svdd", CreateDeepSvddAdapter);

}  // namespace
}  // namespace panda
