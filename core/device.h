// Run-time choice of the compute device: the same binary uses CUDA where
// LibTorch finds a GPU and the CPU elsewhere.
#ifndef PANDA_CORE_DEVICE_H_
#define PANDA_CORE_DEVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "torch/types.h"

namespace panda {

// Maps a config value to a device: "auto" picks CUDA when available, else
// the CPU; "cpu"; "cuda" (FailedPrecondition when LibTorch finds no GPU).
absl::StatusOr<torch::Device> ResolveDevice(const std::string& name);

}  // namespace panda

#endif  // PANDA_CORE_DEVICE_H_
