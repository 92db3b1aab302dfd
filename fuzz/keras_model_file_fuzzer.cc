// Fuzzes the .pkm reader (backbones/keras/keras_model_file.h) and what the
// keras backbone does next with a file that reads: BuildGraphSpec, shape
// inference at another input size and FindStages. Each input runs as it is
// and, when its data checksum does not match, once more with the checksum
// recomputed, so that mutated weight data gets past the check.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "backbones/keras/keras_graph_spec.h"
#include "backbones/keras/keras_model_file.h"
#include "backbones/keras/keras_shape_inference.h"
#include "backbones/keras/keras_stages.h"
#include "backbones/keras/keras_test_models.h"
#include "core/fnv1a.h"
#include "fuzz/fuzz_support.h"

namespace panda::fuzz {
namespace {

SeedList Seeds() {
  keras::testing::ModelBuilder dense("dense", 2, 2, 3);
  dense.AddLayer("Flatten", "flatten", {"input"});
  keras::Layer* layer = dense.AddLayer("Dense", "fc", {"flatten"});
  layer->set_units(2);
  layer->set_activation("linear");
  layer->set_use_bias(true);
  dense.AddWeight("fc", "kernel", {12, 2});
  dense.AddWeight("fc", "bias", {2});
  return {{"tiny.pkm", keras::testing::TinyModel().Encode()},
          {"dense.pkm", dense.Encode()}};
}

uint64_t ReadLittleEndian(const std::string& bytes, size_t at, int size) {
  uint64_t value = 0;
  for (int i = size - 1; i >= 0; --i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[at + i]);
  }
  return value;
}

// Recomputes the FNV-1a of the data section when the lengths in the file
// add up to its size. Returns whether the checksum changed.
bool FixChecksum(std::string& bytes) {
  if (bytes.size() < 16) return false;
  const uint64_t header_bytes = ReadLittleEndian(bytes, 12, 4);
  if (header_bytes > bytes.size() - 16 ||
      bytes.size() - 16 - header_bytes < 16) {
    return false;
  }
  const uint64_t data_bytes = ReadLittleEndian(bytes, 16 + header_bytes, 8);
  const uint64_t data_start = 24 + header_bytes;
  if (data_bytes != bytes.size() - data_start - 8) return false;
  const uint64_t checksum = Fnv1a64(bytes.data() + data_start, data_bytes);
  if (ReadLittleEndian(bytes, data_start + data_bytes, 8) == checksum) {
    return false;
  }
  std::memcpy(bytes.data() + data_start + data_bytes, &checksum, 8);
  return true;
}

void ParseAndBuild(const std::string& bytes) {
  std::istringstream stream(bytes);
  absl::StatusOr<keras::ModelFile> file =
      keras::ParseModelFile(stream, bytes.size(), "fuzz.pkm");
  if (!file.ok()) return;
  absl::StatusOr<keras::GraphSpec> spec = keras::BuildGraphSpec(*file);
  if (!spec.ok()) return;

  const std::vector<bool> needed(spec->layers.size(), true);
  (void)keras::InferShapes(*spec, 37, 53, needed);
  (void)keras::InferShapes(*spec, 1, 1, needed);
  for (size_t i = 0; i < spec->layers.size(); ++i) {
    if (spec->layers[i].kind == keras::LayerKind::kAveragePooling2D) {
      (void)keras::FindStages(*spec, static_cast<int>(i));
    }
  }
}

}  // namespace
}  // namespace panda::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::Seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  panda::fuzz::ParseAndBuild(bytes);
  if (panda::fuzz::FixChecksum(bytes)) panda::fuzz::ParseAndBuild(bytes);
  return 0;
}
