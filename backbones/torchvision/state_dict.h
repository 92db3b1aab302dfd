// Copies a state dict into a LibTorch module by parameter and buffer name,
// the way PyTorch's load_state_dict(strict=True) does.
#ifndef PANDA_BACKBONES_TORCHVISION_STATE_DICT_H_
#define PANDA_BACKBONES_TORCHVISION_STATE_DICT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backbones/torchvision/torch_checkpoint.h"
#include "torch/nn/module.h"

namespace panda::torchvision {

// Copies each tensor of `state` into the parameter or buffer of `module`
// with the same dotted name ("layer1.0.conv1.weight"), converting the dtype
// within floating-point and within integer types. Every parameter and buffer
// must receive a tensor of its shape and every entry must be used. Otherwise
// returns InvalidArgument that names `source` and `model` and lists the
// first missing, unexpected and mis-shaped entries with their shapes. A
// failed load leaves `module` unchanged.
absl::Status LoadStateDict(const std::vector<NamedTensor>& state, torch::nn::Module& module,
                           const std::string& source, const std::string& model);

}  // namespace panda::torchvision

#endif  // PANDA_BACKBONES_TORCHVISION_STATE_DICT_H_
