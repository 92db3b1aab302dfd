// Batched feature extraction with a progress bar.
#ifndef PANDA_CORE_FEATURE_EXTRACTOR_H_
#define PANDA_CORE_FEATURE_EXTRACTOR_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "backbones/backbone.h"
#include "torch/types.h"

namespace panda {

// Runs `backbone` in eval mode without gradients over uint8 [N, H, W, C] CPU
// `images` in batches of `batch_size` on `device`, and returns the "pooled"
// features as float32 [N, D] on the CPU. `label` titles the progress bar.
// Non-finite features (NaN or infinity) are an InvalidArgument error that
// names the first offending image.
absl::StatusOr<torch::Tensor> ExtractPooledFeatures(
    Backbone& backbone, const torch::Tensor& images, int64_t batch_size,
    const torch::Device& device, const std::string& label);

}  // namespace panda

#endif  // PANDA_CORE_FEATURE_EXTRACTOR_H_
