#include "backbones/backbone.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace panda {

Registry<Backbone>& BackboneRegistry() {
  static auto* registry = new Registry<Backbone>("backbone");
  return *registry;
}

absl::Status Backbone::SetTrainableFrom(const std::string& stage) {
  return absl::UnimplementedError(absl::StrCat(
      "this backbone (", Fingerprint(), ") has no trainable-stage switch; cannot train from \"",
      stage, "\""));
}

absl::Status Backbone::SetBatchNormFrozen(bool /*frozen*/) {
  return absl::UnimplementedError(absl::StrCat(
      "this backbone (", Fingerprint(), ") cannot freeze its BatchNorm statistics"));
}

absl::Status SetTrainableStages(
    const std::string& network, const std::vector<std::string>& names,
    const std::string& stage,
    const std::function<std::vector<std::shared_ptr<torch::nn::Module>>(size_t)>&
        stage_modules) {
  const auto found = std::find(names.begin(), names.end(), stage);
  if (found == names.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown ", network, " stage \"", stage, "\"; valid stages are ",
        absl::StrJoin(names, ", ")));
  }
  const size_t first = found - names.begin();
  for (size_t index = 0; index < names.size(); ++index) {
    for (const std::shared_ptr<torch::nn::Module>& module : stage_modules(index)) {
      for (torch::Tensor& parameter : module->parameters()) {
        parameter.set_requires_grad(index >= first);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace panda
