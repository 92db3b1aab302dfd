// Reader for IDX files, the format of MNIST and Fashion-MNIST.
//
// An IDX file is a big-endian header followed by the array in row-major
// order:
//
//   bytes 0-1  zero
//   byte  2    element type (0x08 = uint8, the only type read here)
//   byte  3    number of dimensions R
//   4 * R      each dimension as a uint32
//   ...        the elements
//
// Files may be gzip'd. The reader recognises gzip by its first two bytes
// (1f 8b), regardless of the file name.
//
//   absl::StatusOr<IdxArray> images =
//       ReadIdxFile("/data/train-images-idx3-ubyte.gz", /*rank=*/3);
#ifndef PANDA_DATASETS_IDX_FILE_H_
#define PANDA_DATASETS_IDX_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace panda {

// Upper bound on the element bytes a header may promise, so that a corrupt
// header fails before any allocation. Fashion-MNIST's training images take
// 47,040,000 bytes, so the bound leaves room for far larger data sets.
// Headers beyond it are rejected as corrupt.
inline constexpr uint64_t kMaxIdxPayloadBytes = uint64_t{1} << 32;

// A uint8 array read from an IDX file.
struct IdxArray {
  // Dimensions from the header, outermost first, e.g. {N, rows, cols}.
  std::vector<int64_t> dims;
  // Elements in row-major order, as many as the product of `dims`.
  std::vector<uint8_t> data;
};

// Reads the uint8 IDX file at `path`, which must have `rank` dimensions
// (3 for images, 1 for labels), i.e. the magic number 0x0800 + rank.
//
// Errors, each naming `path`:
//   InvalidArgument  `rank` outside [1, 255], the ranks IDX can express.
//   NotFound         the file does not exist.
//   DataLoss         wrong magic number, element type other than uint8, a
//                    zero or oversized dimension (see kMaxIdxPayloadBytes),
//                    fewer or more bytes than the header promises, or a
//                    corrupt gzip stream.
// Other I/O failures map from errno (e.g. PermissionDenied).
absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path, int rank);

}  // namespace panda

#endif  // PANDA_DATASETS_IDX_FILE_H_
