// The "knn" scorer: PANDA's anomaly score, the sum of the squared L2
// distances from a test feature to its k nearest normal training features.
#include <cstdint>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "google/protobuf/any.pb.h"
#include "scorers/exact_knn.h"
#include "scorers/knn_scorer_options.pb.h"
#include "scorers/scorer.h"

namespace panda {
namespace {

constexpr int64_t kBytesPerMebibyte = int64_t{1} << 20;

// Prefixes `status` with the scorer and the step that failed, because the
// kernel's messages name its own arguments ("bank", "queries").
absl::Status InStep(const absl::Status& status, absl::string_view step) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat("knn scorer ", step, ": ", status.message()));
}

class KnnScorer : public Scorer {
 public:
  explicit KnnScorer(KnnScorerOptions options) : options_(std::move(options)) {}

  // Keeps `train_features` as the bank, sharing its storage.
  absl::Status Fit(const torch::Tensor& train_features) override {
    PANDA_RETURN_IF_ERROR(
        InStep(ValidateKnnBank(train_features, options_.k()), "Fit"));
    bank_ = train_features;
    return absl::OkStatus();
  }

  absl::StatusOr<torch::Tensor> Score(
      const torch::Tensor& test_features) override {
    if (!bank_.defined()) {
      return absl::FailedPreconditionError(
          "knn scorer: Score() was called before Fit()");
    }
    if (!test_features.defined()) {
      return absl::InvalidArgumentError(
          "knn scorer: test features are an undefined tensor");
    }
    absl::StatusOr<KnnResult> nearest =
        ExactKnn(test_features.to(bank_.device()), bank_, options_.k(),
                 options_.memory_budget_mb() * kBytesPerMebibyte);
    if (!nearest.ok()) return InStep(nearest.status(), "Score");
    return nearest->distances.sum(/*dim=*/1).to(torch::kCPU);
  }

 private:
  KnnScorerOptions options_;
  // float32 [N, D] normal training features, undefined until Fit().
  torch::Tensor bank_;
};

absl::StatusOr<std::unique_ptr<Scorer>> CreateKnnScorer(
    const google::protobuf::Any& any_options) {
  PANDA_ASSIGN_OR_RETURN(
      KnnScorerOptions options,
      UnpackPluginOptions<KnnScorerOptions>(any_options, "knn"));
  if (options.k() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "knn scorer: KnnScorerOptions.k = ", options.k(),
        " is invalid because k must be at least 1"));
  }
  if (options.memory_budget_mb() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "knn scorer: KnnScorerOptions.memory_budget_mb = ",
        options.memory_budget_mb(),
        " is invalid because the budget must be at least 1 MiB"));
  }
  return std::make_unique<KnnScorer>(std::move(options));
}

}  // namespace

PANDA_REGISTER_PLUGIN(ScorerRegistry, "knn", CreateKnnScorer);

}  // namespace panda
