// The "patch_knn" segmenter (SPADE): a test patch's score is its distance to
// the nearest patches of the test image's nearest training images, found by
// pooled image features. Restricting the search to similar images keeps it
// small and aligned with the image's own kind of content.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/plugin_options.h"
#include "core/registry.h"
#include "core/status_macros.h"
#include "scorers/exact_knn.h"
#include "segmenters/patch_knn_segmenter_options.pb.h"
#include "segmenters/segmenter.h"
#include "torch/torch.h"

namespace panda {
namespace {

constexpr char kPlugin[] = "patch_knn segmenter";
constexpr int64_t kBytesPerMebibyte = int64_t{1} << 20;

class PatchKnnSegmenter : public Segmenter {
 public:
  explicit PatchKnnSegmenter(PatchKnnSegmenterOptions options)
      : options_(std::move(options)) {
    spec_ = PatchSpecOf(options_);
  }

  const PatchSpec& patch_spec() const override { return spec_; }

  absl::Status Fit(const PatchFeatures& train) override {
    PANDA_RETURN_IF_ERROR(CheckTrainingPatches(train, kPlugin));
    PANDA_ASSIGN_OR_RETURN(
        image_bank_, PrepareKnnBank(train.pooled, KnnMetric::kSquaredL2,
                                    KnnPrecision::kFloat32, budget()));
    patches_ = train.patches;
    return absl::OkStatus();
  }

  absl::StatusOr<torch::Tensor> Score(const PatchFeatures& test) override {
    if (!patches_.defined()) {
      return absl::FailedPreconditionError(absl::StrCat(kPlugin, ": Score called before Fit"));
    }
    const int64_t train_images = patches_.size(0);
    const int64_t height = patches_.size(1), width = patches_.size(2);
    if (test.patches.dim() != 4 || test.patches.size(1) != height ||
        test.patches.size(2) != width || test.patches.size(3) != patches_.size(3)) {
      return absl::InvalidArgumentError(absl::StrCat(
          kPlugin, ": test patches of shape ", ShapeText(test.patches),
          " do not match the training patches' grid and channels ",
          ShapeText(patches_)));
    }

    const int64_t images = std::min<int64_t>(options_.nearest_images(), train_images);
    PANDA_ASSIGN_OR_RETURN(
        const KnnResult nearest_images,
        SearchKnn(test.pooled.to(patches_.device()), image_bank_, images, budget()));

    const int64_t count = test.patches.size(0);
    torch::Tensor scores = torch::empty({count, height, width}, torch::kFloat32);
    for (int64_t i = 0; i < count; ++i) {
      const torch::Tensor gallery =
          patches_.index_select(0, nearest_images.indices[i])
              .reshape({-1, patches_.size(3)});
      PANDA_ASSIGN_OR_RETURN(
          const KnnBank bank, PrepareKnnBank(gallery, KnnMetric::kSquaredL2,
                                             KnnPrecision::kFloat32, budget()));
      const torch::Tensor queries =
          test.patches[i].to(patches_.device()).reshape({-1, patches_.size(3)});
      PANDA_ASSIGN_OR_RETURN(
          const KnnResult nearest,
          SearchKnn(queries, bank, options_.nearest_patches(), budget()));
      scores[i].copy_(nearest.distances.sqrt().mean(/*dim=*/1).view({height, width}));
    }
    return scores;
  }

  int64_t memory_bank_patches() const override {
    return patches_.defined() ? patches_.numel() / patches_.size(3) : 0;
  }

  int64_t memory_bank_bytes() const override {
    return patches_.defined() ? patches_.numel() * 4 : 0;
  }

 private:
  int64_t budget() const { return options_.memory_budget_mb() * kBytesPerMebibyte; }

  static std::string ShapeText(const torch::Tensor& tensor) {
    return tensor.defined() ? c10::str(tensor.sizes()) : "(none)";
  }

  PatchKnnSegmenterOptions options_;
  PatchSpec spec_;
  KnnBank image_bank_;
  torch::Tensor patches_;
};

absl::StatusOr<std::unique_ptr<Segmenter>> CreatePatchKnnSegmenter(
    const google::protobuf::Any& any) {
  PANDA_ASSIGN_OR_RETURN(
      PatchKnnSegmenterOptions options,
      UnpackPluginOptions<PatchKnnSegmenterOptions>(any, "patch_knn"));
  if (options.taps().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": PatchKnnSegmenterOptions.taps is empty; list the backbone's "
                 "feature maps that make a patch feature"));
  }
  if (options.nearest_images() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": PatchKnnSegmenterOptions.nearest_images must be at least 1, got ",
        options.nearest_images()));
  }
  if (options.nearest_patches() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": PatchKnnSegmenterOptions.nearest_patches must be at least 1, got ",
        options.nearest_patches()));
  }
  if (options.memory_budget_mb() < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        kPlugin, ": PatchKnnSegmenterOptions.memory_budget_mb must be at least 1, got ",
        options.memory_budget_mb()));
  }
  return std::make_unique<PatchKnnSegmenter>(std::move(options));
}

PANDA_REGISTER_PLUGIN(SegmenterRegistry, "patch_knn", CreatePatchKnnSegmenter);

}  // namespace
}  // namespace panda
