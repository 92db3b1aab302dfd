// Example plugin: scores a feature by its distance to the mean training
// feature. It lives outside every core folder to show that a plugin needs
// only its own files and a line in the app's plugin list
// (docs/adding_a_plugin.md).
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "examples/centroid_scorer/centroid_scorer_options.pb.h"
#include "scorers/scorer.h"
#include "torch/torch.h"

namespace panda::examples {
namespace {

class CentroidScorer : public Scorer {
 public:
  explicit CentroidScorer(CentroidScorerOptions options)
      : options_(std::move(options)) {}

  absl::Status Fit(const torch::Tensor& train_features) override {
    if (train_features.dim() != 2 || train_features.size(0) == 0) {
      return absl::InvalidArgumentError(
          "centroid_distance: Fit needs a non-empty [N, D] feature matrix");
    }
    centroid_ = train_features.mean(/*dim=*/0);
    return absl::OkStatus();
  }

  absl::StatusOr<torch::Tensor> Score(const torch::Tensor& test_features) override {
    if (!centroid_.defined()) {
      return absl::FailedPreconditionError(
          "centroid_distance: Score called before Fit");
    }
    if (test_features.dim() != 2 || test_features.size(1) != centroid_.size(0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "centroid_distance: test features must be [M, ", centroid_.size(0),
          "]"));
    }
    torch::Tensor squared =
        (test_features.to(centroid_.device()) - centroid_).pow(2).sum(1);
    return (options_.squared() ? squared : squared.sqrt()).to(torch::kCPU);
  }

 private:
  CentroidScorerOptions options_;
  torch::Tensor centroid_;
};

absl::StatusOr<std::unique_ptr<Scorer>> CreateCentroidScorer(
    const google::protobuf::Any& any) {
  PANDA_ASSIGN_OR_RETURN(
      CentroidScorerOptions options,
      UnpackPluginOptions<CentroidScorerOptions>(any, "centroid_distance"));
  return std::make_unique<CentroidScorer>(std::move(options));
}

PANDA_REGISTER_PLUGIN(ScorerRegistry, "centroid_distance", CreateCentroidScorer);

}  // namespace
}  // namespace panda::examples
