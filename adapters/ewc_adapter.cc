// Adapter "ewc": PANDA's compactness fine-tuning regularised by elastic
// weight consolidation against the pretraining task, with the Fisher
// diagonal estimated in C++ from the backbone's own classification head.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/adapter.h"
#include "adapters/auxiliary_images.h"
#include "adapters/compactness.h"
#include "adapters/ewc_options.pb.h"
#include "adapters/feature_trainer.h"
#include "adapters/fisher_information.h"
#include "core/logging.h"
#include "core/pipeline_config.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "torch/torch.h"

namespace panda {
namespace {

class EwcAdapter : public Adapter {
 public:
  EwcAdapter(EwcOptions options, TrainingOptions training)
      : options_(std::move(options)), training_(std::move(training)) {}

  bool preserves_features() const override { return false; }

  absl::Status Adapt(Backbone& backbone, const ImageSet& normal_train,
                     const AdaptationContext& context) override {
    PenaltyFactory make_penalty = [&](Backbone& model)
        -> absl::StatusOr<std::function<torch::Tensor()>> {
      PANDA_ASSIGN_OR_RETURN(FisherDiagonal fisher, Fisher(model, context));
      return MakePenalty(model, fisher, context.device);
    };
    return TrainCompactness(backbone, normal_train, training_, context, make_penalty)
        .status();
  }

 private:
  // The Fisher of the stages now trainable, from fisher_file or estimated.
  absl::StatusOr<FisherDiagonal> Fisher(Backbone& backbone, const AdaptationContext& context) {
    // Without fisher_dataset, a given fisher_file is taken whatever images
    // it was estimated on.
    std::string identity = absl::StrCat(backbone.Fingerprint(), "|tap ", options_.fisher_tap());
    if (options_.has_fisher_dataset()) {
      absl::StrAppend(&identity, "|", SingleLineText(options_.fisher_dataset()), "|split ",
                      options_.fisher_split(), "|images ", options_.fisher_images());
    }
    if (!options_.fisher_file().empty()) {
      absl::StatusOr<FisherDiagonal> stored =
          LoadFisher(options_.fisher_file(), identity, backbone);
      if (stored.ok()) {
        PANDA_LOG(INFO) << "ewc: Fisher diagonal read from " << options_.fisher_file();
        return stored;
      }
      if (!absl::IsNotFound(stored.status())) return stored.status();
    }

    if (!options_.has_fisher_dataset()) {
      return absl::NotFoundError(absl::StrCat(
          "ewc.fisher_file ", options_.fisher_file(),
          " does not exist, and there is no fisher_dataset to compute it from"));
    }
    PANDA_ASSIGN_OR_RETURN(
        torch::Tensor images,
        LoadAuxiliaryImages(options_.fisher_dataset(), options_.fisher_split(),
                            options_.fisher_images(), /*seed=*/0, "ewc.fisher_dataset"));
    FisherSettings settings;
    settings.tap = options_.fisher_tap();
    settings.device = context.device;
    PANDA_ASSIGN_OR_RETURN(FisherDiagonal fisher, EstimateFisher(backbone, images, settings));
    if (!options_.fisher_file().empty()) {
      PANDA_RETURN_IF_ERROR(SaveFisher(options_.fisher_file(), identity, fisher));
      PANDA_LOG(INFO) << "ewc: Fisher diagonal written to " << options_.fisher_file();
    }
    return fisher;
  }

  // lambda / 2 * sum F (theta - theta*)^2, with theta* the weights now.
  std::function<torch::Tensor()> MakePenalty(Backbone& backbone, const FisherDiagonal& fisher,
                                             const torch::Device& device) {
    struct Term {
      torch::Tensor parameter, pretrained, fisher;
    };
    auto terms = std::make_shared<std::vector<Term>>();
    double fisher_sum = 0;
    for (const auto& item : backbone.module().named_parameters()) {
      if (!item.value().requires_grad()) continue;
      const torch::Tensor& values = fisher.at(item.key());
      fisher_sum += values.sum().item<double>();
      terms->push_back({item.value(), item.value().detach().clone().to(device),
                        values.to(device)});
    }
    PANDA_LOG(INFO) << "ewc: lambda " << options_.lambda() << ", " << terms->size()
                    << " parameter tensors, Fisher trace " << fisher_sum;
    const double half_lambda = options_.lambda() / 2;
    return [terms, half_lambda]() {
      if (terms->empty()) return torch::zeros({});
      torch::Tensor sum = torch::zeros({}, terms->front().parameter.options());
      for (const Term& term : *terms) {
        sum = sum + (term.fisher * (term.parameter - term.pretrained).pow(2)).sum();
      }
      return sum * half_lambda;
    };
  }

  EwcOptions options_;
  TrainingOptions training_;
};

absl::StatusOr<std::unique_ptr<Adapter>> CreateEwcAdapter(const google::protobuf::Any& any) {
  PANDA_ASSIGN_OR_RETURN(const EwcOptions options, UnpackPluginOptions<EwcOptions>(any, "ewc"));
  if (!(options.lambda() >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ewc: lambda must be zero or positive, got ", options.lambda()));
  }
  if (options.fisher_file().empty() && options.fisher_dataset().name().empty()) {
    return absl::InvalidArgumentError(
        "ewc: give fisher_dataset (images to estimate the Fisher diagonal on) or an existing "
        "fisher_file");
  }
  const TrainingOptions training = WithDefaults(options.training(), PandaTrainingDefaults());
  PANDA_RETURN_IF_ERROR(ValidateTrainingOptions(training, "ewc"));
  return std::make_unique<EwcAdapter>(options, training);
}

PANDA_REGISTER_PLUGIN(AdapterRegistry, "ewc", CreateEwcAdapter);

}  // namespace
}  // namespace panda
