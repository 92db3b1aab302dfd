// The "knn" scorer: PANDA's anomaly score, the sum (or mean) of the
// distances from a test feature to its k nearest normal training features,
// by exact search. In a multi-process run every rank keeps one shard of the
// training features and the ranks search together (distributed/sharded_knn.h).
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "distributed/process_group.h"
#include "distributed/sharded_knn.h"
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

KnnMetric ToKernelMetric(KnnScorerOptions::Metric metric) {
  return metric == KnnScorerOptions::COSINE ? KnnMetric::kCosine
                                            : KnnMetric::kSquaredL2;
}

KnnPrecision ToKernelPrecision(KnnScorerOptions::Precision precision) {
  switch (precision) {
    case KnnScorerOptions::FP16:
      return KnnPrecision::kFloat16;
    case KnnScorerOptions::BF16:
      return KnnPrecision::kBFloat16;
    case KnnScorerOptions::FP32:
      break;
  }
  return KnnPrecision::kFloat32;
}

class KnnScorer : public Scorer {
 public:
  explicit KnnScorer(KnnScorerOptions options) : options_(std::move(options)) {}

  // Prepares `train_features` as the bank. For L2 in FP32 the bank shares
  // their storage; COSINE keeps a normalised copy.
  absl::Status Fit(const torch::Tensor& train_features) override {
    if (options_.precision() != KnnScorerOptions::FP32 &&
        train_features.defined() && !train_features.is_cuda()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "knn scorer Fit: KnnScorerOptions.precision = ",
          KnnScorerOptions::Precision_Name(options_.precision()),
          " needs the features on a CUDA device, but they are on ",
          train_features.device().str(),
          "; use precision: FP32 on the CPU"));
    }
    if (train_features.defined() && train_features.dim() == 2 &&
        options_.k() > train_features.size(0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "knn scorer Fit: k = ", options_.k(), " exceeds the ",
          train_features.size(0), " training features"));
    }
    DistributedContext& distributed = ProcessDistributedContext();
    if (distributed.is_distributed()) {
      absl::StatusOr<KnnBankShard> shard = PrepareKnnBankShard(
          train_features, ToKernelMetric(options_.metric()),
          ToKernelPrecision(options_.precision()), MemoryBudgetBytes(),
          distributed);
      if (!shard.ok()) return InStep(shard.status(), "Fit");
      shard_ = *std::move(shard);
      bank_rows_ = train_features.size(0);
      fitted_ = true;
      return absl::OkStatus();
    }
    absl::StatusOr<KnnBank> bank = PrepareKnnBank(
        train_features, ToKernelMetric(options_.metric()),
        ToKernelPrecision(options_.precision()), MemoryBudgetBytes());
    if (!bank.ok()) return InStep(bank.status(), "Fit");
    bank_ = *std::move(bank);
    fitted_ = true;
    return absl::OkStatus();
  }

  absl::StatusOr<torch::Tensor> Score(
      const torch::Tensor& test_features) override {
    if (!fitted_) {
      return absl::FailedPreconditionError(
          "knn scorer: Score() was called before Fit()");
    }
    if (!test_features.defined()) {
      return absl::InvalidArgumentError(
          "knn scorer: test features are an undefined tensor");
    }
    absl::StatusOr<KnnResult> nearest =
        shard_.has_value()
            ? SearchShardedKnn(test_features, *shard_, bank_rows_, options_.k(),
                               MemoryBudgetBytes(), ProcessDistributedContext())
            : SearchKnn(test_features.to(bank_.rows.device()), bank_,
                        options_.k(), MemoryBudgetBytes());
    if (!nearest.ok()) return InStep(nearest.status(), "Score");
    const torch::Tensor scores =
        options_.aggregation() == KnnScorerOptions::MEAN
            ? nearest->distances.mean(/*dim=*/1)
            : nearest->distances.sum(/*dim=*/1);
    return scores.to(torch::kCPU);
  }

 private:
  int64_t MemoryBudgetBytes() const {
    return options_.memory_budget_mb() * kBytesPerMebibyte;
  }

  KnnScorerOptions options_;
  // The normal training features, prepared by Fit().
  KnnBank bank_;
  // This rank's shard of them instead, in a multi-process run.
  std::optional<KnnBankShard> shard_;
  int64_t bank_rows_ = 0;
  bool fitted_ = false;
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
