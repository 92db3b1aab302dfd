// Scorer "head": scores with the head the adapter trained with the
// features, so every adapter pairs with a scorer in a config: the outlier
// exposure classifier's probability of "outlier", or Deep SVDD's squared
// distance to its centre. It takes no options and ignores the training
// features.
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/registry.h"
#include "scorers/scorer.h"
#include "torch/torch.h"

namespace panda {
namespace {

class HeadScorer : public Scorer {
 public:
  bool needs_score_head() const override { return true; }
  void SetScoreHead(ScoreHead head) override { head_ = std::move(head); }

  absl::Status Fit(const torch::Tensor& train_features) override {
    if (!head_) {
      return absl::FailedPreconditionError(
          "scorer \"head\" needs an adapter that trains a score head "
          "(outlier_exposure or deep_svdd); this adapter has none");
    }
    device_ = train_features.device();
    fitted_ = true;
    return absl::OkStatus();
  }

  absl::StatusOr<torch::Tensor> Score(const torch::Tensor& test_features) override {
    if (!fitted_) return absl::FailedPreconditionError("scorer \"head\": Score() before Fit()");
    torch::NoGradGuard no_grad;
    torch::Tensor scores = head_(test_features.to(device_, torch::kFloat32));
    if (scores.dim() != 1 || scores.size(0) != test_features.size(0)) {
      return absl::InternalError(absl::StrCat("scorer \"head\": the head returned shape ",
                                              c10::str(scores.sizes()), " for ",
                                              test_features.size(0), " features"));
    }
    return scores.to(torch::kCPU, torch::kFloat32);
  }

 private:
  ScoreHead head_;
  torch::Device device_ = torch::kCPU;
  bool fitted_ = false;
};

absl::StatusOr<std::unique_ptr<Scorer>> CreateHeadScorer(const google::protobuf::Any& options) {
  if (!options.type_url().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "scorer \"head\" takes no options, but the config gives ", options.type_url()));
  }
  return std::make_unique<HeadScorer>();
}

PANDA_REGISTER_PLUGIN(ScorerRegistry, "head", CreateHeadScorer);

}  // namespace
}  // namespace panda
