#include "datasets/cifar_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/status_macros.h"

namespace panda {
namespace {

constexpr int kPlaneBytes = kCifarImageSide * kCifarImageSide;
// Records per fread(), so the raw bytes never need a whole file of memory.
constexpr int64_t kRecordsPerRead = 1024;

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

absl::Status OpenError(const std::string& path) {
  if (errno == ENOENT) {
    return absl::NotFoundError(absl::StrCat("CIFAR file not found: ", path));
  }
  return absl::ErrnoToStatus(errno, absl::StrCat("failed to open ", path));
}

// Returns the number of records in the file at `path`, checking that its
// size is a positive whole number of `record_bytes`-byte records.
absl::StatusOr<int64_t> CountRecords(const std::string& path,
                                     int64_t record_bytes) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) return OpenError(path);
  const int64_t size = info.st_size;
  if (size == 0) {
    return absl::DataLossError(absl::StrCat("CIFAR file ", path, " is empty"));
  }
  if (size % record_bytes != 0) {
    return absl::DataLossError(absl::StrCat(
        "CIFAR file ", path, " has ", size,
        " bytes, which is not a whole "
        "number of ",
        record_bytes, "-byte records: ", size / record_bytes, " records and ",
        size % record_bytes,
        " bytes left over; the file is truncated or not in this format"));
  }
  return size / record_bytes;
}

// Reads `count` records from `path` into `records`, starting at record
// `first`. `records` is already sized for them.
absl::Status ReadRecords(const std::string& path, int64_t count,
                         absl::Span<const CifarLabelField> label_fields,
                         int64_t first, CifarRecords& records) {
  FilePtr file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) return OpenError(path);

  const int64_t label_bytes = static_cast<int64_t>(label_fields.size());
  const int64_t record_bytes = label_bytes + kCifarImageBytes;
  std::vector<uint8_t> buffer(
      static_cast<size_t>(kRecordsPerRead * record_bytes));

  for (int64_t done = 0; done < count;) {
    const int64_t batch = std::min(kRecordsPerRead, count - done);
    const size_t want = static_cast<size_t>(batch * record_bytes);
    if (std::fread(buffer.data(), 1, want, file.get()) != want) {
      if (std::ferror(file.get())) {
        return absl::ErrnoToStatus(errno,
                                   absl::StrCat("failed to read ", path));
      }
      return absl::DataLossError(absl::StrCat(
          "CIFAR file ", path, " ended early: it shrank while being read"));
    }

    for (int64_t r = 0; r < batch; ++r) {
      const uint8_t* record = buffer.data() + r * record_bytes;
      const int64_t index = first + done + r;
      for (int64_t f = 0; f < label_bytes; ++f) {
        const CifarLabelField& field = label_fields[f];
        if (record[f] >= field.num_classes) {
          return absl::DataLossError(
              absl::StrCat("CIFAR file ", path, ": record ", done + r, " has ",
                           field.name, " ", int{record[f]}, ", but valid ",
                           field.name, "s are 0 to ", field.num_classes - 1));
        }
        records.labels[f][index] = record[f];
      }

      // Planar RGB to interleaved RGB.
      const uint8_t* planes = record + label_bytes;
      uint8_t* out = records.pixels.data() + index * kCifarImageBytes;
      for (int p = 0; p < kPlaneBytes; ++p) {
        for (int c = 0; c < kCifarChannels; ++c) {
          out[p * kCifarChannels + c] = planes[c * kPlaneBytes + p];
        }
      }
    }
    done += batch;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CifarRecords> ReadCifarFiles(
    absl::Span<const std::string> paths,
    absl::Span<const CifarLabelField> label_fields) {
  const int64_t record_bytes =
      static_cast<int64_t>(label_fields.size()) + kCifarImageBytes;

  // Checks every file's size before reading, and sizes the output once.
  std::vector<int64_t> counts;
  int64_t total = 0;
  for (const std::string& path : paths) {
    PANDA_ASSIGN_OR_RETURN(int64_t count, CountRecords(path, record_bytes));
    counts.push_back(count);
    total += count;
  }

  CifarRecords records;
  records.count = total;
  records.pixels.resize(static_cast<size_t>(total * kCifarImageBytes));
  records.labels.assign(label_fields.size(),
                        std::vector<uint8_t>(static_cast<size_t>(total)));
  int64_t first = 0;
  for (size_t i = 0; i < paths.size(); ++i) {
    PANDA_RETURN_IF_ERROR(
        ReadRecords(paths[i], counts[i], label_fields, first, records));
    first += counts[i];
  }
  return records;
}

absl::StatusOr<std::vector<std::string>> ReadCifarClassNames(
    const std::string& path, int expected_count) {
  std::ifstream file(path);
  if (!file.is_open()) return OpenError(path);

  std::vector<std::string> names;
  int line_number = 0;
  int first_blank_line = 0;
  for (std::string line; std::getline(file, line);) {
    ++line_number;
    const absl::string_view name = absl::StripAsciiWhitespace(line);
    if (name.empty()) {
      if (first_blank_line == 0) first_blank_line = line_number;
      continue;
    }
    if (first_blank_line != 0) {
      return absl::DataLossError(absl::StrCat(
          "CIFAR class-name file ", path, ": line ", first_blank_line,
          " is blank but a name follows on line ", line_number,
          "; every line before the last name must hold one name"));
    }
    names.emplace_back(name);
  }
  if (file.bad()) {
    return absl::DataLossError(absl::StrCat("failed to read ", path));
  }
  if (static_cast<int>(names.size()) != expected_count) {
    return absl::DataLossError(absl::StrCat(
        "CIFAR class-name file ", path, " lists ", names.size(),
        " names, but the data set has ", expected_count, " classes"));
  }
  return names;
}

}  // namespace panda
