// Captures the outputs of submodules of a TorchScript module, which has no
// forward hooks in LibTorch 1.13, by adding a method to its class:
//
//   PANDA_ASSIGN_OR_RETURN(std::string method,
//                          AddTapMethod(module, {"layer3", "layer4.2"}));
//   c10::IValue result = module.get_method(method)({input});
//   // result is a tuple: (forward's output, layer3's output, layer4.2's output)
//
// The new method is a copy of forward's graph in which each tapped
// submodule call also feeds a clone of its output to the returned tuple, so
// later in-place operations (ReLU(inplace=True), `out += identity`) do not
// change it. A nested path ("layer4.2") rewrites every module on the path in
// the same way. Each module on a path must call the next one's forward
// exactly once, outside branches and loops, for the output to be
// well-defined. Modules frozen by torch.jit.freeze have no submodule calls
// left, so they cannot be tapped.
#ifndef PANDA_BACKBONES_TORCHSCRIPT_MODULE_TAPS_H_
#define PANDA_BACKBONES_TORCHSCRIPT_MODULE_TAPS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "torch/csrc/jit/api/module.h"

namespace panda::torchscript {

// Adds the method to `module`'s class and returns its name. `paths` are
// dotted submodule names relative to `module`, each a Tensor-valued call.
// Returns InvalidArgument naming the path for a submodule that does not
// exist, is never called by its parent's forward, is called more than once
// or inside a branch or loop, or returns something other than a tensor.
absl::StatusOr<std::string> AddTapMethod(torch::jit::Module& module,
                                         const std::vector<std::string>& paths);

}  // namespace panda::torchscript

#endif  // PANDA_BACKBONES_TORCHSCRIPT_MODULE_TAPS_H_
