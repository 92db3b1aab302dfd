// Adapter "outlier_exposure": fine-tunes the backbone together with a
// one-logit classifier that separates the normal class from auxiliary
// outlier images (Hendrycks et al., 2019; PANDA-OE).
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/adapter.h"
#include "adapters/auxiliary_images.h"
#include "adapters/compactness.h"
#include "adapters/feature_trainer.h"
#include "adapters/outlier_exposure_options.pb.h"
#include "core/logging.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "torch/torch.h"

namespace panda {
namespace {

class OutlierExposureAdapter : public Adapter {
 public:
  OutlierExposureAdapter(OutlierExposureOptions options, TrainingOptions training)
      : options_(std::move(options)), training_(std::move(training)) {}

  bool preserves_features() const override { return false; }

  absl::Status Adapt(Backbone& backbone, const ImageSet& normal_train,
                     const AdaptationContext& context) override {
    PANDA_RETURN_IF_ERROR(SelectTrainableStages(backbone, training_).status());
    const int64_t normal_count = normal_train.images.size(0);
    PANDA_ASSIGN_OR_RETURN(
        torch::Tensor outliers,
        LoadAuxiliaryImages(options_.outlier_dataset(), options_.outlier_split(),
                            options_.max_outliers() > 0 ? options_.max_outliers() : normal_count,
                            context.seed, "outlier_exposure.outlier_dataset"));
    if (outliers.sizes().slice(1) != normal_train.images.sizes().slice(1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "outlier_exposure.outlier_dataset: outlier images are ",
          c10::str(outliers.sizes().slice(1)), " (height, width, channels) but the normal images are ",
          c10::str(normal_train.images.sizes().slice(1))));
    }

    PANDA_ASSIGN_OR_RETURN(torch::Tensor initial_features,
                           InitialFeatures(backbone, normal_train.images,
                                           !training_.freeze_batchnorm(), context));
    const torch::Tensor center = initial_features.mean(0);
    const EpochStats initial = FeatureStats(initial_features, center);

    torch::manual_seed(static_cast<uint64_t>(context.seed));
    head_ = torch::nn::Linear(backbone.feature_dim(), 1);
    TrainingObjective objective;
    std::shared_ptr<torch::nn::LinearImpl> head = head_.ptr();
    objective.batch_loss = [head](const torch::Tensor& features, const torch::Tensor& targets) {
      return torch::binary_cross_entropy_with_logits(head->forward(features).squeeze(1), targets);
    };
    objective.extra_modules.emplace_back("head", head_.ptr());

    TrainingData data;
    data.images = torch::cat({normal_train.images, outliers});
    data.targets = torch::cat({torch::zeros({normal_count}, torch::kFloat32),
                               torch::ones({outliers.size(0)}, torch::kFloat32)});
    PANDA_LOG(INFO) << "outlier exposure: " << normal_count << " normal images, "
                    << outliers.size(0) << " outliers";
    return TrainBackbone(backbone, data, center, training_, objective, context, initial);
  }

  bool trains_score_head() const override { return true; }

  ScoreHead score_head() const override {
    if (head_.is_empty()) return nullptr;
    std::shared_ptr<torch::nn::LinearImpl> head = head_.ptr();
    return [head](const torch::Tensor& features) {
      torch::NoGradGuard no_grad;
      return torch::sigmoid(head->forward(features.to(head->weight.device())).squeeze(1));
    };
  }

 private:
  OutlierExposureOptions options_;
  TrainingOptions training_;
  torch::nn::Linear head_{nullptr};
};

absl::StatusOr<std::unique_ptr<Adapter>> CreateOutlierExposureAdapter(
    const google::protobuf::Any& any) {
  PANDA_ASSIGN_OR_RETURN(
      const OutlierExposureOptions options,
      UnpackPluginOptions<OutlierExposureOptions>(any, "outlier_exposure"));
  if (options.outlier_dataset().name().empty()) {
    return absl::InvalidArgumentError(
        "outlier_exposure: outlier_dataset is required (the auxiliary outlier images)");
  }
  if (options.max_outliers() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "outlier_exposure: max_outliers must be 0 or positive, got ", options.max_outliers()));
  }
  TrainingOptions defaults = PandaTrainingDefaults();
  defaults.mutable_optimizer()->set_learning_rate(1e-3);
  defaults.set_clip_grad_norm(0);
  const TrainingOptions training = WithDefaults(options.training(), defaults);
  PANDA_RETURN_IF_ERROR(ValidateTrainingOptions(training, "outlier_exposure"));
  return std::make_unique<OutlierExposureAdapter>(options, training);
}

PANDA_REGISTER_PLUGIN(AdapterRegistry, "outlier_exposure", CreateOutlierExposureAdapter);

}  // namespace
}  // namespace panda
