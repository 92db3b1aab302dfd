// Presents a TorchScript module as the torch::nn::Module that the Backbone
// interface hands to adapters. The holder registers the script module's
// parameters and buffers (the same tensors, not copies) under the same
// dotted names, in child modules that mirror the script module's tree. So
// parameters(), named_parameters(), to(device) and optimisers act on the
// script module's own tensors, and train()/eval() switch both.
#ifndef PANDA_BACKBONES_TORCHSCRIPT_SCRIPT_MODULE_HOLDER_H_
#define PANDA_BACKBONES_TORCHSCRIPT_SCRIPT_MODULE_HOLDER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "torch/csrc/jit/api/module.h"
#include "torch/nn/module.h"

namespace panda::torchscript {

class ScriptModuleHolder : public torch::nn::Module {
 public:
  explicit ScriptModuleHolder(torch::jit::Module script);

  torch::jit::Module& script() { return script_; }

  // Switches training mode of the holder and the script module; while
  // SetBatchNormFrozen(true) is in effect, submodules whose class name
  // contains "BatchNorm" stay in eval mode.
  void train(bool on = true) override;

  void SetBatchNormFrozen(bool frozen);

  // Names of the script module's direct submodules, in registration order.
  std::vector<std::string> StageNames() const;

  // Sets requires_grad on the parameters of direct submodule `stage` and
  // every later one. Clears it on the earlier ones and on the root module's
  // own parameters. "" makes every parameter trainable. An unknown name is
  // InvalidArgument listing StageNames().
  absl::Status SetTrainableFrom(const std::string& stage);

  // Stores 4-D parameters in channels-last (or the default) memory format.
  void SetParameterFormat(bool channels_last);

 private:
  torch::jit::Module script_;
  bool batchnorm_frozen_ = false;
};

}  // namespace panda::torchscript

#endif  // PANDA_BACKBONES_TORCHSCRIPT_SCRIPT_MODULE_HOLDER_H_
