// Fuzzes FeatureCache::Load (core/feature_cache.h): the input is written as
// the cache file of a fixed key and loaded. Each input runs as it is and,
// when its checksum does not match, once more with the checksum of its
// feature bytes recomputed, so that mutated features get past the check.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "absl/status/status.h"
#include "core/feature_cache.h"
#include "core/fnv1a.h"
#include "fuzz/fuzz_support.h"
#include "torch/torch.h"

namespace panda::fuzz {
namespace {

FeatureCacheKey Key() {
  FeatureCacheKey key;
  key.dataset = "name: \"idx\"";
  key.split = "train";
  key.subset = "max_train_per_class: 10";
  key.backbone = "name: \"keras\"";
  key.data_fingerprint = "data-1";
  key.backbone_fingerprint = "weights-1";
  return key;
}

const FeatureCache& Cache() {
  static const FeatureCache* const cache = new FeatureCache(TempDirectory());
  return *cache;
}

// Bytes of the file that Store() writes for `key` and `features`.
std::string Stored(const FeatureCacheKey& key, const torch::Tensor& features) {
  const FeatureCache cache(TempDirectory() + "/seeds");
  const absl::Status status = cache.Store(key, features);
  if (!status.ok()) {
    std::cerr << "fuzz: " << status << "\n";
    std::exit(1);
  }
  std::ifstream file(cache.PathFor(key), std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

SeedList Seeds() {
  FeatureCacheKey stale = Key();
  stale.backbone_fingerprint = "weights-2";
  return {{"features", Stored(Key(), torch::arange(12, torch::kFloat32)
                                         .reshape({3, 4}))},
          {"no_rows", Stored(Key(), torch::zeros({0, 5}))},
          {"stale", Stored(stale, torch::ones({1, 2}))}};
}

uint64_t ReadLittleEndian(const std::string& bytes, size_t at, int size) {
  uint64_t value = 0;
  for (int i = size - 1; i >= 0; --i) {
    value = (value << 8) | static_cast<uint8_t>(bytes[at + i]);
  }
  return value;
}

// Recomputes the FNV-1a of the features when the key fields and the feature
// count add up to the file's size. Returns whether the checksum changed.
bool FixChecksum(std::string& bytes) {
  uint64_t at = 12;  // Magic and version.
  for (int field = 0; field < 6; ++field) {
    if (bytes.size() < at + 4) return false;
    const uint64_t length = ReadLittleEndian(bytes, at, 4);
    if (length > bytes.size() - at - 4) return false;
    at += 4 + length;
  }
  if (bytes.size() < at + 16 + 8) return false;
  const uint64_t data_start = at + 16;
  const uint64_t data_bytes = bytes.size() - data_start - 8;
  const uint64_t checksum = Fnv1a64(bytes.data() + data_start, data_bytes);
  if (ReadLittleEndian(bytes, data_start + data_bytes, 8) == checksum) {
    return false;
  }
  std::memcpy(bytes.data() + data_start + data_bytes, &checksum, 8);
  return true;
}

void Load(const std::string& bytes) {
  const FeatureCacheKey key = Key();
  WriteTempFile(
      std::filesystem::path(Cache().PathFor(key)).filename().string(), bytes);
  (void)Cache().Load(key);
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
  panda::fuzz::Load(bytes);
  if (panda::fuzz::FixChecksum(bytes)) panda::fuzz::Load(bytes);
  return 0;
}
