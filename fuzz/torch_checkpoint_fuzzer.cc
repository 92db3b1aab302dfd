// Fuzzes the torchvision checkpoint reader: ReadStateDict
// (backbones/torchvision/torch_checkpoint.h, which reads the zip container
// with zip_archive.h and the pickle with pickle_reader.h), then
// LoadStateDict (state_dict.h) into a small module. Each input runs as it
// is and, when its CRC-32 fields do not match, once more with them
// recomputed, so that mutated pickles and storages get past the CRC check.
//
// The seeds are the checkpoints in backbones/testdata, which
// fuzz/run_fuzzers.sh copies into the corpus; --write_seeds writes none.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backbones/torchvision/state_dict.h"
#include "backbones/torchvision/torch_checkpoint.h"
#include "fuzz/fuzz_support.h"
#include "fuzz/zip_crc_fixup.h"
#include "torch/torch.h"

namespace panda::fuzz {
namespace {

SeedList Seeds() { return {}; }

// The module of backbones/testdata/checkpoint_plain_dict.pth: a Linear(2, 2)
// named "a", plus an integer buffer.
struct SmallNet : torch::nn::Module {
  SmallNet() {
    a = register_module("a", torch::nn::Linear(2, 2));
    steps = register_buffer("steps", torch::zeros({1}, torch::kInt64));
  }
  torch::nn::Linear a{nullptr};
  torch::Tensor steps;
};

void ReadAndLoad(const std::string& bytes) {
  const std::string path = WriteTempFile("checkpoint.pth", bytes);
  absl::StatusOr<std::vector<torchvision::NamedTensor>> state =
      torchvision::ReadStateDict(path);
  if (!state.ok()) return;
  SmallNet net;
  (void)torchvision::LoadStateDict(*state, net, path, "small net");
}

}  // namespace
}  // namespace panda::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::Seeds);
  torch::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  panda::fuzz::ReadAndLoad(bytes);
  if (panda::fuzz::FixZipCrcs(bytes)) panda::fuzz::ReadAndLoad(bytes);
  return 0;
}
