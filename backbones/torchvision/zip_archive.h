// A reader for the zip archives that torch.save and torch.jit.save write:
// uncompressed ("stored") records under one top folder, zip64 where needed.
// It checks the CRC-32 of every record it reads, which LibTorch 1.13's own
// reader (caffe2::serialize::PyTorchStreamReader, built with miniz's CRC
// checks turned off) does not, so a flipped byte is caught. VerifyRecords
// also checks the deflated code/ records of torch.jit.save archives, which
// ReadRecord does not read.
//
//   PANDA_ASSIGN_OR_RETURN(ZipArchive archive, ZipArchive::Open(path));
//   PANDA_ASSIGN_OR_RETURN(std::string pickle, archive.ReadRecord("data.pkl"));
//
// Record names are relative to the top folder ("data.pkl" for
// "resnet18/data.pkl"), as torch.save's reader treats them.
#ifndef PANDA_BACKBONES_TORCHVISION_ZIP_ARCHIVE_H_
#define PANDA_BACKBONES_TORCHVISION_ZIP_ARCHIVE_H_

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace panda::torchvision {

class ZipArchive {
 public:
  // Reads the central directory of the archive at `path`. Returns NotFound
  // for a file that cannot be opened and DataLoss naming the file for
  // anything that is not a well-formed archive with one top folder.
  static absl::StatusOr<ZipArchive> Open(const std::string& path);

  // The top folder, such as "resnet18".
  const std::string& folder() const { return folder_; }

  bool HasRecord(const std::string& name) const { return records_.count(name) > 0; }

  // Size in bytes of record `name`, or NotFound.
  absl::StatusOr<uint64_t> RecordSize(const std::string& name) const;

  // Reads record `name` into `buffer`, which has room for exactly `size`
  // bytes, the record's size. Returns NotFound for an unknown record,
  // InvalidArgument for a size mismatch and DataLoss for a record that is
  // compressed, lies outside the file or fails its CRC-32 check.
  absl::Status ReadRecord(const std::string& name, void* buffer, uint64_t size);

  // Reads a whole record as a string; errors as above.
  absl::StatusOr<std::string> ReadRecord(const std::string& name);

  // Checks the CRC-32 of every record, inflating the records that are
  // compressed with deflate (method 8, as torch.jit.save writes its code/
  // records), piece by piece. Returns DataLoss naming the file and the record
  // for a record that lies outside the file, another compression method, a
  // corrupt deflate stream, a size other than the central directory's, or a
  // CRC mismatch.
  absl::Status VerifyRecords();

 private:
  struct Record {
    uint64_t local_header_offset = 0;
    uint64_t size = 0;
    uint64_t compressed_size = 0;
    uint32_t crc32 = 0;
    uint16_t method = 0;
  };

  ZipArchive() = default;

  absl::Status DataLoss(const std::string& problem) const;
  // Reads `size` bytes at `offset` of the file.
  absl::Status ReadAt(uint64_t offset, void* buffer, uint64_t size);
  absl::Status ReadCentralDirectory();
  // Offset of the data of `record`, after its local header.
  absl::StatusOr<uint64_t> DataOffset(const std::string& name, const Record& record);
  absl::Status VerifyRecord(const std::string& name, const Record& record);

  std::string path_;
  uint64_t file_size_ = 0;
  std::unique_ptr<std::ifstream> stream_;
  std::string folder_;
  std::map<std::string, Record> records_;
};

}  // namespace panda::torchvision

#endif  // PANDA_BACKBONES_TORCHVISION_ZIP_ARCHIVE_H_
