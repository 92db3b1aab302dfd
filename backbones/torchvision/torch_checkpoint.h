// Reads the tensors of a PyTorch checkpoint written by torch.save, without
// Python:
//
//   PANDA_ASSIGN_OR_RETURN(std::vector<NamedTensor> state,
//                          ReadStateDict("resnet50-0676ba61.pth"));
//
// Accepted layouts: the zip archive that torch.save writes since PyTorch 1.6
// (`<name>/data.pkl` plus one `<name>/data/<key>` record per storage), whose
// pickle contains a state dict: an OrderedDict (what model.state_dict() returns
// and torchvision's downloads contain) or a plain dict of tensors, either
// at the top or under the key "state_dict" or "model" of a top-level dict.
// LibTorch 1.13's own torch::pickle_load rejects the OrderedDict, so the
// pickle is read by pickle_reader.h and only the calls that rebuild tensors
// (torch._utils._rebuild_tensor_v2 and _rebuild_parameter) are honoured.
// The zip container is read by zip_archive.h, which checks every CRC-32.
// Storages saved on a GPU are loaded on the CPU.
#ifndef PANDA_BACKBONES_TORCHVISION_TORCH_CHECKPOINT_H_
#define PANDA_BACKBONES_TORCHVISION_TORCH_CHECKPOINT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "torch/types.h"

namespace panda::torchvision {

// One entry of a state dict.
struct NamedTensor {
  std::string name;
  torch::Tensor tensor;  // On the CPU, with its own contiguous memory.
};

// Returns the state dict in `path` in the order it was saved. Errors:
// NotFound for a missing file; DataLoss naming the file for a truncated or
// corrupt archive (zip structure, CRC, pickle, storage sizes); InvalidArgument
// naming the file for a readable file that contains no state dict (a pickled
// nn.Module, a non-tensor entry, the pre-1.6 non-zip format).
absl::StatusOr<std::vector<NamedTensor>> ReadStateDict(const std::string& path);

}  // namespace panda::torchvision

#endif  // PANDA_BACKBONES_TORCHVISION_TORCH_CHECKPOINT_H_
