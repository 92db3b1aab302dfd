// Adapter "early_stopping": PANDA's compactness fine-tuning stopped after a
// fixed number of epochs or steps, or combined sample-wise over several
// epochs by the pipeline (EarlyStoppingOptions.sample_wise).
#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/adapter.h"
#include "adapters/compactness.h"
#include "adapters/early_stopping_options.pb.h"
#include "adapters/feature_trainer.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"

namespace panda {
namespace {

class EarlyStoppingAdapter : public Adapter {
 public:
  EarlyStoppingAdapter(TrainingOptions training, std::vector<int> scoring_epochs)
      : training_(std::move(training)), scoring_epochs_(std::move(scoring_epochs)) {}

  bool preserves_features() const override { return false; }

  absl::Status Adapt(Backbone& backbone, const ImageSet& normal_train,
                     const AdaptationContext& context) override {
    return TrainCompactness(backbone, normal_train, training_, context, nullptr)
        .status();
  }

  std::vector<int> scoring_epochs() const override { return scoring_epochs_; }

 private:
  TrainingOptions training_;
  std::vector<int> scoring_epochs_;
};

absl::StatusOr<std::unique_ptr<Adapter>> CreateEarlyStoppingAdapter(
    const google::protobuf::Any& any) {
  PANDA_ASSIGN_OR_RETURN(const EarlyStoppingOptions options,
                         UnpackPluginOptions<EarlyStoppingOptions>(any, "early_stopping"));
  const TrainingOptions training = WithDefaults(options.training(), PandaTrainingDefaults());
  PANDA_RETURN_IF_ERROR(ValidateTrainingOptions(training, "early_stopping"));

  std::vector<int> scoring_epochs;
  if (options.sample_wise()) {
    scoring_epochs.assign(options.scoring_epochs().begin(), options.scoring_epochs().end());
    if (scoring_epochs.empty()) {
      for (int epoch = 0; epoch <= training.epochs(); ++epoch) scoring_epochs.push_back(epoch);
    }
    std::sort(scoring_epochs.begin(), scoring_epochs.end());
    scoring_epochs.erase(std::unique(scoring_epochs.begin(), scoring_epochs.end()),
                         scoring_epochs.end());
    for (int epoch : scoring_epochs) {
      if (epoch < 0 || epoch > training.epochs()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "early_stopping: scoring_epochs contains ", epoch,
            ", outside 0 to training.epochs (", training.epochs(), ")"));
      }
    }
  } else if (!options.scoring_epochs().empty()) {
    return absl::InvalidArgumentError(
        "early_stopping: scoring_epochs is given but sample_wise is false");
  }
  return std::make_unique<EarlyStoppingAdapter>(training, std::move(scoring_epochs));
}

PANDA_REGISTER_PLUGIN(AdapterRegistry, "early_stopping", CreateEarlyStoppingAdapter);

}  // namespace
}  // namespace panda
