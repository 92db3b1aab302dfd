#include "core/device.h"

#include "absl/strings/str_cat.h"
#include "torch/cuda.h"

namespace panda {

absl::StatusOr<torch::Device> ResolveDevice(const std::string& name) {
  if (name == "auto") {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA)
                                       : torch::Device(torch::kCPU);
  }
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "cuda") {
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError(
          "device: \"cuda\" was requested, but LibTorch finds no CUDA device "
          "(is this a CPU-only LibTorch build?); use \"auto\" or \"cpu\"");
    }
    return torch::Device(torch::kCUDA);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "device: invalid value \"", name, "\"; expected auto, cpu or cuda"));
}

}  // namespace panda
