#include "backbones/torchvision/network_input.h"

#include "absl/strings/string_view.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace panda::torchvision {

absl::Status CheckNetworkInput(const torch::Tensor& input, const torch::Device& device,
                               const std::string& backbone) {
  if (!input.defined()) {
    return absl::InvalidArgumentError(absl::StrCat(backbone, ": the input tensor is undefined"));
  }
  const bool valid_shape = input.dim() == 4 && input.size(0) > 0 && input.size(1) == 3 &&
                           input.size(2) > 0 && input.size(3) > 0;
  if (!valid_shape || input.scalar_type() != torch::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat(
        backbone, ": expected float32 input [N, 3, H, W] (the output of Preprocess), got ",
        c10::toString(input.scalar_type()), " [", absl::StrJoin(input.sizes(), ", "), "]"));
  }
  if (input.device() != device) {
    return absl::InvalidArgumentError(absl::StrCat(
        backbone, ": the input is on ", input.device().str(), " but the network is on ",
        device.str(), "; move one of them with .to()"));
  }
  return absl::OkStatus();
}

absl::Status ForwardErrorStatus(const c10::Error& error, const std::string& backbone) {
  const absl::string_view message = error.what_without_backtrace();
  const std::string first_line(message.substr(0, message.find('\n')));
  if (absl::StrContains(message, "out of memory") ||
      absl::StrContains(message, "not enough memory")) {
    return absl::ResourceExhaustedError(absl::StrCat(
        backbone, ": the forward pass ran out of memory; use a smaller batch_size: ",
        first_line));
  }
  return absl::InternalError(absl::StrCat(backbone, ": the forward pass failed: ", first_line));
}

}  // namespace panda::torchvision
