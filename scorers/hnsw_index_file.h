// HNSW index files: a checked header in front of hnswlib's serialisation
// (the payload), so that an index is reused only for the training features
// and parameters it was built from, and hnswlib never reads damaged bytes.
//
// Layout, integers in the machine's byte order (little-endian on x86-64 and
// arm64):
//   8 bytes magic "PANDAHNS", uint32 format version, uint32 space
//   (HnswSpace), int64 dim, int64 count, int64 m, int64 ef_construction,
//   uint64 FNV-1a of the training features, uint64 FNV-1a of the payload,
//   uint64 payload bytes, then the payload.
#ifndef PANDA_SCORERS_HNSW_INDEX_FILE_H_
#define PANDA_SCORERS_HNSW_INDEX_FILE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "scorers/hnsw_index.h"

namespace panda {

// Provenance that an index file must match to be reused.
struct HnswIndexIdentity {
  HnswSpace space = HnswSpace::kSquaredL2;
  int64_t dim = 0;
  int64_t count = 0;
  int64_t m = 0;
  int64_t ef_construction = 0;
  // FNV-1a (core/fnv1a.h) of the float32 training features as given to the
  // scorer, row-major.
  uint64_t features_checksum = 0;
};

// Bytes before the payload.
inline constexpr int64_t kHnswIndexHeaderBytes = 8 + 4 + 4 + 4 * 8 + 3 * 8;

// Writes `index` with `identity` to `path` through an AtomicFileWriter, so
// an interrupted write leaves no partial file. hnswlib first serialises to a
// temporary file beside `path`, which is removed afterwards.
absl::Status WriteHnswIndexFile(const std::string& path,
                                const HnswIndexIdentity& identity,
                                const HnswIndex& index);

// Loads the index at `path` if its header matches `expected` and its payload
// checksum verifies. The verified payload is copied to a temporary file
// beside `path` for hnswlib, which reads only from named files. Errors:
//   NotFound: no file at `path`.
//   DataLoss: not an index file, another format version, shorter or longer
//     than its header declares, a payload checksum mismatch, or a payload
//     that hnswlib rejects.
//   FailedPrecondition: an intact file built from other features or
//     parameters; the message names the first field that differs.
//   Internal: the temporary copy could not be written.
absl::StatusOr<std::unique_ptr<HnswIndex>> ReadHnswIndexFile(
    const std::string& path, const HnswIndexIdentity& expected);

}  // namespace panda

#endif  // PANDA_SCORERS_HNSW_INDEX_FILE_H_
