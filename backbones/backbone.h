// Backbone plugins: pretrained networks that turn images into features.
//
// Lifecycle: the registry creates a backbone from its options, which loads
// the weights (a missing file is NotFound, a file that does not match the
// architecture is InvalidArgument or DataLoss naming the first offending
// tensors). Preprocess() then Forward() run on batches; adapters may train
// module()'s parameters in between.
//
// Threading: one backbone is used by one thread at a time, except that
// Preprocess() may run on a second thread while Forward() runs (feature
// extraction prepares the next batch meanwhile), so Preprocess() must not
// touch state that Forward() changes. LibTorch's intra-op threads
// parallelise each forward pass.
#ifndef PANDA_BACKBONES_BACKBONE_H_
#define PANDA_BACKBONES_BACKBONE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/registry.h"
#include "torch/nn/module.h"
#include "torch/types.h"

namespace panda {

// Named outputs of a forward pass. "pooled" is the image feature, float32
// [N, D]; other names are spatial maps, float32 [N, C, H, W].
using TapMap = std::map<std::string, torch::Tensor>;

class Backbone {
 public:
  virtual ~Backbone() = default;

  // The module holding every parameter and buffer, for moving the network to
  // a device, switching train/eval mode and training.
  virtual torch::nn::Module& module() = 0;

  // Converts uint8 images [N, H, W, C] (C = 1 or 3, any device) to the float32
  // input [N, C', S, S] the network expects, on the same device: channel
  // expansion (C' = 3) or reduction (C' = 1 for "lenet"), resizing and the
  // model's input scaling.
  virtual torch::Tensor Preprocess(const torch::Tensor& images) const = 0;

  // Runs the network on preprocessed input and returns the outputs named in
  // `taps`. An unknown tap name is InvalidArgument listing the valid names.
  virtual absl::StatusOr<TapMap> Forward(const torch::Tensor& input,
                                         const std::vector<std::string>& taps) = 0;

  // Names Forward accepts, "pooled" first.
  virtual std::vector<std::string> tap_names() const = 0;

  // Dimension D of the "pooled" feature.
  virtual int64_t feature_dim() const = 0;

  // Everything that determines the features: architecture, a checksum of the
  // weights and the preprocessing. Feature caches are keyed by it.
  virtual std::string Fingerprint() const = 0;

  // Stage names that SetTrainableFrom accepts, input side first. Empty for
  // backbones without that switch.
  virtual std::vector<std::string> stage_names() const { return {}; }

  // Lets adaptation train the parameters of stage `stage` and of every later
  // stage (requires_grad true) and freezes the earlier ones. Returns
  // InvalidArgument for a name outside stage_names() and Unimplemented for a
  // backbone without stages.
  virtual absl::Status SetTrainableFrom(const std::string& stage);

  // Keeps the BatchNorm layers in eval mode (normalising with their running
  // statistics and not updating them) while module() is in training mode.
  // Returns Unimplemented for a backbone that cannot.
  virtual absl::Status SetBatchNormFrozen(bool frozen);
};

Registry<Backbone>& BackboneRegistry();

// Sets requires_grad on the parameters of stage `stage` of `names` and of
// every later stage, and clears it on the earlier ones. `stage_modules(i)`
// lists the modules of stage i. Shared by backbones whose stages are lists
// of submodules. An unknown stage is InvalidArgument naming `network` and
// the valid stages.
absl::Status SetTrainableStages(
    const std::string& network, const std::vector<std::string>& names,
    const std::string& stage,
    const std::function<std::vector<std::shared_ptr<torch::nn::Module>>(size_t)>&
        stage_modules);

}  // namespace panda

#endif  // PANDA_BACKBONES_BACKBONE_H_
