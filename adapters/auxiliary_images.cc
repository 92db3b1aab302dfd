#include "adapters/auxiliary_images.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "core/logging.h"
#include "core/status_macros.h"
#include "datasets/dataset.h"
#include "torch/torch.h"

namespace panda {

absl::StatusOr<torch::Tensor> LoadAuxiliaryImages(const PluginConfig& dataset,
                                                  const std::string& split,
                                                  int64_t max_images, int64_t seed,
                                                  const std::string& field) {
  if (dataset.name().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": a dataset is required"));
  }
  if (split != "train" && split != "test") {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": split must be \"train\" or \"test\", got \"", split, "\""));
  }
  absl::StatusOr<std::unique_ptr<Dataset>> source =
      DatasetRegistry().Create(dataset.name(), dataset.options());
  if (!source.ok()) {
    return absl::Status(source.status().code(),
                        absl::StrCat(field, ": ", source.status().message()));
  }
  absl::StatusOr<ImageSet> images =
      (*source)->Load(split == "train" ? Split::kTrain : Split::kTest);
  if (!images.ok()) {
    return absl::Status(images.status().code(),
                        absl::StrCat(field, ": ", images.status().message()));
  }
  const int64_t count = images->images.size(0);
  if (count == 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": the ", split, " split has no images"));
  }
  torch::Tensor selected = images->images;
  if (max_images > 0 && max_images < count) {
    torch::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
    const torch::Tensor rows =
        torch::randperm(count, generator, torch::kLong).slice(0, 0, max_images);
    selected = selected.index_select(0, std::get<0>(rows.sort()));
  }
  PANDA_LOG(INFO) << field << ": " << selected.size(0) << " images from the " << split
                  << " split of " << dataset.name();
  return selected;
}

}  // namespace panda
