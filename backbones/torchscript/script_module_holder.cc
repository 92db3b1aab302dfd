#include "backbones/torchscript/script_module_holder.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "torch/torch.h"

namespace panda::torchscript {
namespace {

// Registers the direct parameters and buffers of `script` on `mirror` and
// recurses into the children.
void Mirror(const torch::jit::Module& script, torch::nn::Module& mirror) {
  for (const torch::jit::NameTensor& parameter : script.named_parameters(/*recurse=*/false)) {
    mirror.register_parameter(parameter.name, parameter.value,
                              parameter.value.requires_grad());
  }
  for (const torch::jit::NameTensor& buffer : script.named_buffers(/*recurse=*/false)) {
    mirror.register_buffer(buffer.name, buffer.value);
  }
  for (const torch::jit::NameModule& child : script.named_children()) {
    auto child_mirror = std::make_shared<torch::nn::Module>();
    Mirror(child.value, *child_mirror);
    mirror.register_module(child.name, child_mirror);
  }
}

bool IsBatchNorm(const torch::jit::Module& module) {
  const auto name = module.type()->name();
  return name.has_value() && absl::StrContains(name->name(), "BatchNorm");
}

}  // namespace

ScriptModuleHolder::ScriptModuleHolder(torch::jit::Module script) : script_(std::move(script)) {
  Mirror(script_, *this);
}

void ScriptModuleHolder::train(bool on) {
  torch::nn::Module::train(on);
  script_.train(on);
  if (!on || !batchnorm_frozen_) return;
  for (torch::jit::Module module : script_.modules()) {
    if (IsBatchNorm(module)) module.train(false);
  }
}

void ScriptModuleHolder::SetBatchNormFrozen(bool frozen) {
  batchnorm_frozen_ = frozen;
  train(is_training());
}

std::vector<std::string> ScriptModuleHolder::StageNames() const {
  std::vector<std::string> names;
  for (const torch::jit::NameModule& child : script_.named_children()) {
    names.push_back(child.name);
  }
  return names;
}

absl::Status ScriptModuleHolder::SetTrainableFrom(const std::string& stage) {
  const std::vector<std::string> names = StageNames();
  size_t first = 0;
  if (!stage.empty()) {
    const auto found = std::find(names.begin(), names.end(), stage);
    if (found == names.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown stage \"", stage, "\"; the stages are the module's direct submodules: ",
          absl::StrJoin(names, ", ")));
    }
    first = found - names.begin();
  }
  for (const torch::jit::NameTensor& parameter : script_.named_parameters(false)) {
    parameter.value.set_requires_grad(stage.empty());
  }
  size_t index = 0;
  for (const torch::jit::NameModule& child : script_.named_children()) {
    for (const torch::Tensor& parameter : child.value.parameters()) {
      parameter.set_requires_grad(index >= first);
    }
    ++index;
  }
  return absl::OkStatus();
}

void ScriptModuleHolder::SetParameterFormat(bool channels_last) {
  const auto format =
      channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& parameter : script_.parameters()) {
    if (parameter.dim() == 4) {
      torch::Tensor target = parameter;
      target.set_data(parameter.contiguous(format));
    }
  }
}

}  // namespace panda::torchscript
