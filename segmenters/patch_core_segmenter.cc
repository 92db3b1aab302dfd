// The "patch_core" segmenter (PatchCore): every training patch goes into one
// memory bank, greedy coreset selection keeps a share of it, and a scorer
// plugin (exact "knn" or approximate "hnsw") scores each test patch against
// the kept ones. Unlike patch_knn, every test patch is compared with the
// whole bank.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/logging.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "scorers/knn_scorer_options.pb.h"
#include "scorers/scorer.h"
#include "segmenters/coreset.h"
#include "segmenters/patch_core_segmenter_options.pb.h"
#include "segmenters/segmenter.h"
#include "torch/torch.h"

namespace panda {
namespace {

constexpr char kPlugin[] = "patch_core segmenter";

class PatchCoreSegmenter : public Segmenter {
 public:
  PatchCoreSegmenter(PatchCoreSegmenterOptions options, std::unique_ptr<Scorer> search)
      : options_(std::move(options)), search_(std::move(search)) {
    spec_ = PatchSpecOf(options_);
  }

  const PatchSpec& patch_spec() const override { return spec_; }

  absl::Status Fit(const PatchFeatures& train) override {
    PANDA_RETURN_IF_ERROR(CheckTrainingPatches(train, kPlugin));
    grid_ = {train.patches.size(1), train.patches.size(2), train.patches.size(3)};
    torch::Tensor bank = train.patches.reshape({-1, grid_[2]});
    const int64_t all = bank.size(0);

    if (options_.coreset_fraction() < 1.0) {
      const int64_t keep = std::max<int64_t>(
          1, std::llround(static_cast<double>(all) * options_.coreset_fraction()));
      // The run seeds LibTorch's generator before Fit; drawing the
      // selection's seed from it makes the coreset follow the run's seed.
      const uint64_t seed = static_cast<uint64_t>(
          torch::randint(int64_t{1} << 62, {1}, torch::kInt64).item<int64_t>());
      PANDA_ASSIGN_OR_RETURN(
          const torch::Tensor kept,
          GreedyCoresetIndices(bank, keep, options_.projection_dim(), seed,
                               "coreset selection"));
      bank = bank.index_select(0, kept.to(bank.device())).contiguous();
      PANDA_LOG(INFO) << absl::StrFormat(
          "%s: kept %d of %d training patches (%.3g%%)", kPlugin, keep, all,
          100.0 * keep / all);
    }
    bank_patches_ = bank.size(0);
    bank_bytes_ = bank.numel() * static_cast<int64_t>(sizeof(float));
    absl::Status fitted = search_->Fit(bank);
    if (!fitted.ok()) {
      return absl::Status(fitted.code(),
                          absl::StrCat(kPlugin, ": search: ", fitted.message()));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<torch::Tensor> Score(const PatchFeatures& test) override {
    if (bank_patches_ == 0) {
      return absl::FailedPreconditionError(absl::StrCat(kPlugin, ": Score called before Fit"));
    }
    if (test.patches.dim() != 4 || test.patches.size(1) != grid_[0] ||
        test.patches.size(2) != grid_[1] || test.patches.size(3) != grid_[2]) {
      return absl::InvalidArgumentError(absl::StrCat(
          kPlugin, ": test patches of shape ",
          test.patches.defined() ? c10::str(test.patches.sizes()) : "(none)",
          " do not match the training grid and channels [", grid_[0], ", ", grid_[1],
          ", ", grid_[2], "]"));
    }
    absl::StatusOr<torch::Tensor> scores =
        search_->Score(test.patches.reshape({-1, grid_[2]}));
    if (!scores.ok()) {
      return absl::Status(scores.status().code(),
                          absl::StrCat(kPlugin, ": search: ", scores.status().message()));
    }
    return scores->to(torch::kCPU, torch::kFloat32)
        .view({test.patches.size(0), grid_[0], grid_[1]});
  }

  int64_t memory_bank_patches() const override { return bank_patches_; }
  int64_t memory_bank_bytes() const override { return bank_bytes_; }

 private:
  PatchCoreSegmenterOptions options_;
  PatchSpec spec_;
  std::unique_ptr<Scorer> search_;
  std::vector<int64_t> grid_;
  int64_t bank_patches_ = 0;
  int64_t bank_bytes_ = 0;
};

absl::StatusOr<std::unique_ptr<Segmenter>> CreatePatchCoreSegmenter(
    const google::protobuf::Any& any) {
  PANDA_ASSIGN_OR_RETURN(
      PatchCoreSegmenterOptions options,
      UnpackPluginOptions<PatchCoreSegmenterOptions>(any, "patch_core"));
  if (options.taps().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": PatchCoreSegmenterOptions.taps is empty; list the backbone's "
                 "feature maps that make a patch feature"));
  }
  if (!(options.coreset_fraction() > 0 && options.coreset_fraction() <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": PatchCoreSegmenterOptions.coreset_fraction must lie in (0, 1], got ",
        options.coreset_fraction()));
  }
  if (options.projection_dim() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": PatchCoreSegmenterOptions.projection_dim must be 0 or more, got ",
        options.projection_dim()));
  }
  if (!options.has_search()) {
    KnnScorerOptions nearest;
    nearest.set_k(1);
    options.mutable_search()->set_name("knn");
    options.mutable_search()->mutable_options()->PackFrom(nearest);
  }
  absl::StatusOr<std::unique_ptr<Scorer>> search =
      ScorerRegistry().Create(options.search().name(), options.search().options());
  if (!search.ok()) {
    return absl::Status(search.status().code(),
                        absl::StrCat(kPlugin, ": search: ", search.status().message()));
  }
  if ((*search)->needs_score_head()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": search scorer \"", options.search().name(),
        "\" scores with a trained head; use \"knn\" or \"hnsw\""));
  }
  return std::make_unique<PatchCoreSegmenter>(std::move(options), *std::move(search));
}

PANDA_REGISTER_PLUGIN(SegmenterRegistry, "patch_core", CreatePatchCoreSegmenter);

}  // namespace
}  // namespace panda
