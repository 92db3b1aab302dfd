// Fuzzes the loading of TorchScript modules by the "torchscript" backbone:
// TorchscriptBackbone::Create (backbones/torchscript/torchscript_backbone.h)
// on the input as module_file, with a submodule tap, so that a module that
// loads is also probed with a forward pass.
//
// The CRC-32s are not recomputed. The backbone verifies every record before
// torch::jit::load reads the file, so damaged files get a clear error and
// LibTorch's unpickler and TorchScript compiler see only intact records.
// Those are not built to resist crafted input: with recomputed CRC-32s,
// mutated inputs made LibTorch request 8.6 GB (docs/robustness.md).
//
// The seed is backbones/testdata/tiny_scripted.pt, which
// fuzz/run_fuzzers.sh copies into the corpus; --write_seeds writes none.
#include <cstddef>
#include <cstdint>
#include <string>

#include "backbones/torchscript/torchscript_backbone.h"
#include "fuzz/fuzz_support.h"
#include "torch/torch.h"

namespace panda::fuzz {
namespace {

SeedList Seeds() { return {}; }

}  // namespace
}  // namespace panda::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::Seeds);
  torch::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  panda::TorchscriptBackboneOptions options;
  options.set_module_file(
      panda::fuzz::WriteTempFile("module.pt", data, size));
  options.add_taps()->set_submodule("body");
  // A small probe image keeps each run short.
  options.mutable_preprocessing()->set_resize(16);
  options.mutable_preprocessing()->set_center_crop(16);
  (void)panda::TorchscriptBackbone::Create(options);
  return 0;
}
