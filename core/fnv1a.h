// FNV-1a, 64-bit: the checksum in the headers of the files this project
// writes (feature caches, converted weights). Fast and dependency-free; it
// detects corruption, not tampering.
#ifndef PANDA_CORE_FNV1A_H_
#define PANDA_CORE_FNV1A_H_

#include <cstddef>
#include <cstdint>

namespace panda {

constexpr uint64_t kFnv1aOffsetBasis = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnv1aPrime = 0x100000001b3ULL;

// Folds `size` bytes into `hash`; start from kFnv1aOffsetBasis.
inline uint64_t Fnv1a64(const void* data, size_t size,
                        uint64_t hash = kFnv1aOffsetBasis) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= kFnv1aPrime;
  }
  return hash;
}

}  // namespace panda

#endif  // PANDA_CORE_FNV1A_H_
