// Adapter "none": the pretrained features as they are. With the kNN scorer
// this is the DN2 baseline of Bergman, Cohen and Hoshen (2020), which PANDA
// builds on.
#include <memory>

#include "absl/strings/str_cat.h"
#include "adapters/adapter.h"
#include "core/registry.h"

namespace panda {
namespace {

class NoneAdapter : public Adapter {
 public:
  bool preserves_features() const override { return true; }

  absl::Status Adapt(Backbone&, const ImageSet&,
                     const AdaptationContext&) override {
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<Adapter>> CreateNoneAdapter(
    const google::protobuf::Any& options) {
  if (!options.type_url().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "adapter \"none\" takes no options, but the config gives ",
        options.type_url()));
  }
  return std::make_unique<NoneAdapter>();
}

PANDA_REGISTER_PLUGIN(AdapterRegistry, "none", CreateNoneAdapter);

}  // namespace
}  // namespace panda
