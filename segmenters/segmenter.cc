#include "segmenters/segmenter.h"

#include "absl/strings/str_cat.h"

namespace panda {

absl::Status CheckTrainingPatches(const PatchFeatures& train, const std::string& plugin) {
  if (train.patches.defined() && train.patches.dim() == 4 && train.patches.size(0) > 0) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(plugin, ": Fit needs the patch features of at least one image"));
}

Registry<Segmenter>& SegmenterRegistry() {
  static auto* registry = new Registry<Segmenter>("segmenter");
  return *registry;
}

}  // namespace panda
