// Adapter plugins: adapt a pretrained backbone to the normal class before
// features are extracted (PANDA's compactness fine-tuning and its variants).
//
// Lifecycle: create from options, then Adapt() once per normal class on a
// fresh copy of the pretrained backbone. Errors during training (diverged
// loss, NaN features) are returned as Status; the backbone is then unusable.
#ifndef PANDA_ADAPTERS_ADAPTER_H_
#define PANDA_ADAPTERS_ADAPTER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "backbones/backbone.h"
#include "core/registry.h"
#include "datasets/dataset.h"
#include "torch/types.h"

namespace panda {

// Settings the pipeline shares with the adapter.
struct AdaptationContext {
  torch::Device device = torch::kCPU;
  int64_t batch_size = 32;
};

class Adapter {
 public:
  virtual ~Adapter() = default;

  // True when Adapt() leaves the backbone's features unchanged, so features
  // cached from the pretrained backbone remain valid.
  virtual bool preserves_features() const = 0;

  // Adapts `backbone` in place to `normal_train`, the normal class's
  // training images.
  virtual absl::Status Adapt(Backbone& backbone, const ImageSet& normal_train,
                             const AdaptationContext& context) = 0;
};

Registry<Adapter>& AdapterRegistry();

}  // namespace panda

#endif  // PANDA_ADAPTERS_ADAPTER_H_
