#include "backbones/torchvision/test_files.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backbones/torchvision/torch_checkpoint.h"
#include "torch/torch.h"

namespace panda::torchvision::testing {

std::string FixturePath(const std::string& name) { return "data/fixtures/" + name; }

std::string TestdataPath(const std::string& name) { return "backbones/testdata/" + name; }

absl::StatusOr<std::map<std::string, torch::Tensor>> ReadTensors(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat(
        path, " is missing. Run ./setup.sh, which writes it with "
              "tools/make_torchvision_fixtures.py"));
  }
  absl::StatusOr<std::vector<NamedTensor>> state = ReadStateDict(path);
  if (!state.ok()) return state.status();
  std::map<std::string, torch::Tensor> tensors;
  for (NamedTensor& entry : *state) tensors[entry.name] = std::move(entry.tensor);
  return tensors;
}

double RelativeDifference(const torch::Tensor& actual, const torch::Tensor& expected) {
  if (actual.sizes() != expected.sizes()) return std::numeric_limits<double>::infinity();
  const torch::Tensor a = actual.to(torch::kCPU, torch::kDouble);
  const torch::Tensor e = expected.to(torch::kCPU, torch::kDouble);
  return (a - e).abs().max().item<double>() / e.abs().max().item<double>();
}

std::string WriteTemporaryFile(const std::string& name, const std::string& bytes) {
  const char* directory = std::getenv("TEST_TMPDIR");
  const std::string path =
      absl::StrCat(directory != nullptr ? directory : "/tmp", "/", name);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

std::string ReadFileBytes(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  std::stringstream bytes;
  bytes << stream.rdbuf();
  return bytes.str();
}

}  // namespace panda::torchvision::testing
