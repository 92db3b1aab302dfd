// Helpers for tests that read PyTorch files written by
// tools/make_torchvision_fixtures.py.
#ifndef PANDA_BACKBONES_TORCHVISION_TEST_FILES_H_
#define PANDA_BACKBONES_TORCHVISION_TEST_FILES_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "torch/types.h"

namespace panda::torchvision::testing {

// Path of `name` in data/fixtures/, which ./setup.sh fills.
std::string FixturePath(const std::string& name);

// Path of `name` in backbones/testdata/, which is committed.
std::string TestdataPath(const std::string& name);

// Reads a dict of tensors saved by torch.save. A missing file is NotFound,
// with ./setup.sh named as the fix.
absl::StatusOr<std::map<std::string, torch::Tensor>> ReadTensors(const std::string& path);

// max |actual - expected| / max |expected|, the tolerance measure of the
// parity tests; infinity when the shapes differ.
double RelativeDifference(const torch::Tensor& actual, const torch::Tensor& expected);

// Writes `bytes` to a new file in the test's temporary directory and
// returns its path.
std::string WriteTemporaryFile(const std::string& name, const std::string& bytes);

// The whole content of `path`.
std::string ReadFileBytes(const std::string& path);

}  // namespace panda::torchvision::testing

#endif  // PANDA_BACKBONES_TORCHVISION_TEST_FILES_H_
