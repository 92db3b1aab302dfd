// Reader for the "binary version" files of CIFAR-10 and CIFAR-100.
//
// A file is a sequence of fixed-size records and nothing else:
//
//   CIFAR-10   1 byte label, then 3072 pixel bytes         (3073 bytes)
//   CIFAR-100  1 byte coarse label, 1 byte fine label,
//              then 3072 pixel bytes                       (3074 bytes)
//
// The pixels of a record are three 32x32 planes, red then green then blue,
// each in row-major order. The reader returns them interleaved (HWC).
//
//   const CifarLabelField fields[] = {{"label", 10}};
//   PANDA_ASSIGN_OR_RETURN(CifarRecords records,
//                          ReadCifarFiles({dir + "/test_batch.bin"}, fields));
#ifndef PANDA_DATASETS_CIFAR_FILE_H_
#define PANDA_DATASETS_CIFAR_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace panda {

inline constexpr int kCifarImageSide = 32;
inline constexpr int kCifarChannels = 3;
inline constexpr int kCifarImageBytes =
    kCifarImageSide * kCifarImageSide * kCifarChannels;

// One label byte at the start of each record.
struct CifarLabelField {
  // Name in error messages, e.g. "coarse label".
  std::string name;
  // Valid labels are 0 to num_classes - 1.
  int num_classes = 0;
};

// The records of one or more files, in file order.
struct CifarRecords {
  int64_t count = 0;
  // count * 32 * 32 * 3 bytes: channel c of pixel (row, col) of image i is at
  // ((i * 32 + row) * 32 + col) * 3 + c, with channels in RGB order.
  std::vector<uint8_t> pixels;
  // labels[f][i] is label field f of image i.
  std::vector<std::vector<uint8_t>> labels;
};

// Reads every record of the files at `paths`. Each record starts with one
// byte per entry of `label_fields`, in that order, followed by the pixels.
//
// Errors, each naming the file:
//   NotFound  a file does not exist.
//   DataLoss  a file is empty, its size is not a whole number of records,
//             it shrank while being read, or a label is out of range (the
//             message gives the record index and the label).
// Other I/O failures map from errno (e.g. PermissionDenied).
absl::StatusOr<CifarRecords> ReadCifarFiles(
    absl::Span<const std::string> paths,
    absl::Span<const CifarLabelField> label_fields);

// Reads a class-name file (batches.meta.txt, coarse_label_names.txt,
// fine_label_names.txt): one name per line, surrounding whitespace removed,
// blank lines allowed only at the end. Returns NotFound for a missing file
// and DataLoss naming the file when it holds other than `expected_count`
// names or a blank line precedes a name.
absl::StatusOr<std::vector<std::string>> ReadCifarClassNames(
    const std::string& path, int expected_count);

}  // namespace panda

#endif  // PANDA_DATASETS_CIFAR_FILE_H_
