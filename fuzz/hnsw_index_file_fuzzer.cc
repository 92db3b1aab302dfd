// Fuzzes ReadHnswIndexFile (scorers/hnsw_index_file.h), the checked header
// in front of an hnswlib index, against a fixed expected identity.
//
// The payload checksum is not recomputed, so mutated payloads stop at the
// checksum check, as they should: hnswlib trusts its input and may crash on
// damaged bytes, and the header's checksum exists to keep such bytes away
// from it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/fnv1a.h"
#include "fuzz/fuzz_support.h"
#include "scorers/hnsw_index.h"
#include "scorers/hnsw_index_file.h"

namespace panda::fuzz {
namespace {

constexpr int64_t kCount = 12;
constexpr int64_t kDim = 3;

std::vector<float> Features() {
  std::vector<float> features(kCount * kDim);
  for (size_t i = 0; i < features.size(); ++i) {
    features[i] = static_cast<float>((i * 7) % 11) - 5.0f;
  }
  return features;
}

HnswIndexIdentity Identity() {
  const std::vector<float> features = Features();
  HnswIndexIdentity identity;
  identity.space = HnswSpace::kSquaredL2;
  identity.dim = kDim;
  identity.count = kCount;
  identity.m = 4;
  identity.ef_construction = 8;
  identity.features_checksum =
      Fnv1a64(features.data(), features.size() * sizeof(float));
  return identity;
}

SeedList Seeds() {
  const std::vector<float> features = Features();
  const HnswIndexIdentity identity = Identity();
  absl::StatusOr<std::unique_ptr<HnswIndex>> index =
      HnswIndex::Build(features.data(), kCount, kDim, identity.space,
                       identity.m, identity.ef_construction, 1);
  const std::string path = TempDirectory() + "/seed.hnsw";
  absl::Status status = index.status();
  if (status.ok()) status = WriteHnswIndexFile(path, identity, **index);
  if (!status.ok()) {
    std::cerr << "fuzz: " << status << "\n";
    std::exit(1);
  }
  std::ifstream file(path, std::ios::binary);
  return {{"index.hnsw", std::string(std::istreambuf_iterator<char>(file), {})}};
}

}  // namespace
}  // namespace panda::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  panda::fuzz::WriteSeedsIfRequested(argc, argv, panda::fuzz::Seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const panda::HnswIndexIdentity* const identity =
      new panda::HnswIndexIdentity(panda::fuzz::Identity());
  const std::string path =
      panda::fuzz::WriteTempFile("index.hnsw", data, size);
  (void)panda::ReadHnswIndexFile(path, *identity);
  return 0;
}
