// Checks and error conversions shared by the LibTorch backbones.
#ifndef PANDA_BACKBONES_TORCHVISION_NETWORK_INPUT_H_
#define PANDA_BACKBONES_TORCHVISION_NETWORK_INPUT_H_

#include <string>

#include "absl/status/status.h"
#include "c10/util/Exception.h"
#include "torch/types.h"

namespace panda::torchvision {

// Returns InvalidArgument, prefixed with `backbone`, unless `input` is
// float32 [N, 3, H, W] with N, H, W > 0 on `device`.
absl::Status CheckNetworkInput(const torch::Tensor& input, const torch::Device& device,
                               const std::string& backbone);

// Converts an exception from a forward pass: ResourceExhausted when
// LibTorch ran out of memory, Internal otherwise, with the first line of
// the message prefixed by `backbone`.
absl::Status ForwardErrorStatus(const c10::Error& error, const std::string& backbone);

}  // namespace panda::torchvision

#endif  // PANDA_BACKBONES_TORCHVISION_NETWORK_INPUT_H_
