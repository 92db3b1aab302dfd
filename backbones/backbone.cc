#include "backbones/backbone.h"

#include "absl/strings/str_cat.h"

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

}  // namespace panda
