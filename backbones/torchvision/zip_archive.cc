#include "backbones/torchvision/zip_archive.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace panda::torchvision {
namespace {

// Signatures and fixed sizes from PKWARE's APPNOTE.TXT (version 6.3).
constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kCentralSignature = 0x02014b50;
constexpr uint32_t kLocalSignature = 0x04034b50;
constexpr uint64_t kEndSize = 22;
constexpr uint64_t kZip64LocatorSize = 20;
constexpr uint64_t kZip64EndSize = 56;
constexpr uint64_t kCentralSize = 46;
constexpr uint64_t kLocalSize = 30;
constexpr uint64_t kMaxCommentSize = 65535;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kStored = 0;
constexpr uint16_t kDeflated = 8;
// Bytes read (and inflated) at a time by VerifyRecords.
constexpr uint64_t kVerifyChunkBytes = uint64_t{1} << 20;

uint64_t LittleEndian(const unsigned char* bytes, int size) {
  uint64_t value = 0;
  for (int i = size - 1; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

uint16_t U16(const std::vector<unsigned char>& bytes, uint64_t at) {
  return static_cast<uint16_t>(LittleEndian(bytes.data() + at, 2));
}
uint32_t U32(const std::vector<unsigned char>& bytes, uint64_t at) {
  return static_cast<uint32_t>(LittleEndian(bytes.data() + at, 4));
}
uint64_t U64(const std::vector<unsigned char>& bytes, uint64_t at) {
  return LittleEndian(bytes.data() + at, 8);
}

// Whether [offset, offset + size) lies within [0, limit).
bool Inside(uint64_t offset, uint64_t size, uint64_t limit) {
  return offset <= limit && size <= limit - offset;
}

}  // namespace

absl::StatusOr<ZipArchive> ZipArchive::Open(const std::string& path) {
  ZipArchive archive;
  archive.path_ = path;
  std::error_code error;
  archive.file_size_ = std::filesystem::file_size(path, error);
  archive.stream_ = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (error || !*archive.stream_) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path));
  }
  PANDA_RETURN_IF_ERROR(archive.ReadCentralDirectory());
  return archive;
}

absl::Status ZipArchive::DataLoss(const std::string& problem) const {
  return absl::DataLossError(absl::StrCat(path_, ": ", problem));
}

absl::Status ZipArchive::ReadAt(uint64_t offset, void* buffer, uint64_t size) {
  if (!Inside(offset, size, file_size_)) {
    return DataLoss(absl::StrCat("reading ", size, " bytes at offset ", offset,
                                 " runs past the end of the file (", file_size_, " bytes)"));
  }
  stream_->clear();
  stream_->seekg(static_cast<std::streamoff>(offset));
  stream_->read(static_cast<char*>(buffer), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(stream_->gcount()) != size) {
    return DataLoss(absl::StrCat("read failed at offset ", offset));
  }
  return absl::OkStatus();
}

absl::Status ZipArchive::ReadCentralDirectory() {
  if (file_size_ < kEndSize) return DataLoss("too short to be a zip archive");

  // The end-of-central-directory record closes the file, followed only by a
  // comment of up to 65535 bytes.
  const uint64_t tail_size = std::min(file_size_, kEndSize + kMaxCommentSize);
  std::vector<unsigned char> tail(tail_size);
  PANDA_RETURN_IF_ERROR(ReadAt(file_size_ - tail_size, tail.data(), tail_size));
  int64_t end = -1;
  for (int64_t at = static_cast<int64_t>(tail_size - kEndSize); at >= 0; --at) {
    if (U32(tail, at) == kEndSignature && U16(tail, at + 20) == tail_size - at - kEndSize) {
      end = at;
      break;
    }
  }
  if (end < 0) return DataLoss("no end-of-central-directory record: truncated or not a zip archive");

  uint64_t entries = U16(tail, end + 10);
  uint64_t directory_size = U32(tail, end + 12);
  uint64_t directory_offset = U32(tail, end + 16);
  if (entries == 0xFFFF || directory_size == 0xFFFFFFFF || directory_offset == 0xFFFFFFFF) {
    const uint64_t end_offset = file_size_ - tail_size + end;
    if (end_offset < kZip64LocatorSize) return DataLoss("missing zip64 locator");
    std::vector<unsigned char> locator(kZip64LocatorSize);
    PANDA_RETURN_IF_ERROR(ReadAt(end_offset - kZip64LocatorSize, locator.data(), locator.size()));
    if (U32(locator, 0) != kZip64LocatorSignature) return DataLoss("invalid zip64 locator");
    std::vector<unsigned char> zip64_end(kZip64EndSize);
    PANDA_RETURN_IF_ERROR(ReadAt(U64(locator, 8), zip64_end.data(), zip64_end.size()));
    if (U32(zip64_end, 0) != kZip64EndSignature) {
      return DataLoss("invalid zip64 end-of-central-directory record");
    }
    entries = U64(zip64_end, 32);
    directory_size = U64(zip64_end, 40);
    directory_offset = U64(zip64_end, 48);
  }
  if (!Inside(directory_offset, directory_size, file_size_) ||
      entries > directory_size / kCentralSize) {
    return DataLoss("the central directory lies outside the file");
  }

  std::vector<unsigned char> directory(directory_size);
  PANDA_RETURN_IF_ERROR(ReadAt(directory_offset, directory.data(), directory_size));
  uint64_t at = 0;
  for (uint64_t index = 0; index < entries; ++index) {
    if (!Inside(at, kCentralSize, directory_size) || U32(directory, at) != kCentralSignature) {
      return DataLoss(absl::StrCat("central directory entry ", index, " is invalid"));
    }
    Record record;
    record.method = U16(directory, at + 10);
    record.crc32 = U32(directory, at + 16);
    record.compressed_size = U32(directory, at + 20);
    record.size = U32(directory, at + 24);
    const uint64_t name_size = U16(directory, at + 28);
    const uint64_t extra_size = U16(directory, at + 30);
    const uint64_t comment_size = U16(directory, at + 32);
    record.local_header_offset = U32(directory, at + 42);
    const uint64_t entry_size = kCentralSize + name_size + extra_size + comment_size;
    if (!Inside(at, entry_size, directory_size)) {
      return DataLoss(absl::StrCat("central directory entry ", index, " is truncated"));
    }
    const std::string name(reinterpret_cast<const char*>(directory.data() + at + kCentralSize),
                           name_size);

    // Zip64 extra field: 64-bit values for the fields saturated above, in
    // this order.
    uint64_t extra = at + kCentralSize + name_size;
    const uint64_t extra_end = extra + extra_size;
    while (extra + 4 <= extra_end) {
      const uint16_t id = U16(directory, extra);
      const uint64_t field_size = U16(directory, extra + 2);
      if (extra + 4 + field_size > extra_end) return DataLoss("invalid zip extra field");
      if (id == kZip64ExtraId) {
        uint64_t field = extra + 4;
        for (uint64_t* value : {&record.size, &record.compressed_size,
                                &record.local_header_offset}) {
          if (*value != 0xFFFFFFFF) continue;
          if (field + 8 > extra + 4 + field_size) return DataLoss("invalid zip64 extra field");
          *value = U64(directory, field);
          field += 8;
        }
      }
      extra += 4 + field_size;
    }
    at += entry_size;
    if (record.compressed_size > file_size_) {
      return DataLoss(absl::StrCat("central directory entry ", index, " claims ",
                                   record.compressed_size, " bytes, more than the file has"));
    }

    const size_t slash = name.find('/');
    if (slash == std::string::npos || slash == 0) {
      return DataLoss(absl::StrCat("record \"", name, "\" is not inside a folder"));
    }
    if (index == 0) folder_ = name.substr(0, slash);
    if (name.compare(0, slash, folder_) != 0 || slash != folder_.size()) {
      return DataLoss(absl::StrCat("record \"", name, "\" is outside the folder ", folder_));
    }
    if (!records_.emplace(name.substr(slash + 1), record).second) {
      return DataLoss(absl::StrCat("record \"", name, "\" appears twice"));
    }
  }
  if (records_.empty()) return DataLoss("the archive is empty");
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ZipArchive::RecordSize(const std::string& name) const {
  auto found = records_.find(name);
  if (found == records_.end()) {
    return absl::NotFoundError(absl::StrCat(path_, ": no record ", folder_, "/", name));
  }
  return found->second.size;
}

absl::Status ZipArchive::ReadRecord(const std::string& name, void* buffer, uint64_t size) {
  auto found = records_.find(name);
  if (found == records_.end()) {
    return absl::NotFoundError(absl::StrCat(path_, ": no record ", folder_, "/", name));
  }
  const Record& record = found->second;
  if (size != record.size) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": record ", name, " has ",
                                                   record.size, " bytes, not ", size));
  }
  if (record.method != kStored || record.compressed_size != record.size) {
    return DataLoss(absl::StrCat("record ", name, " is compressed (method ", record.method,
                                 "); torch.save stores records uncompressed"));
  }

  PANDA_ASSIGN_OR_RETURN(const uint64_t data_offset, DataOffset(name, record));
  PANDA_RETURN_IF_ERROR(ReadAt(data_offset, buffer, size));

  // zlib's crc32 takes at most 4 GiB per call.
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* bytes = static_cast<const Bytef*>(buffer);
  for (uint64_t done = 0; done < size;) {
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(size - done, 1u << 30));
    crc = crc32(crc, bytes + done, chunk);
    done += chunk;
  }
  if (crc != record.crc32) {
    return DataLoss(absl::StrCat("record ", name, " fails its CRC-32 check (stored ",
                                 absl::Hex(record.crc32, absl::kZeroPad8), ", computed ",
                                 absl::Hex(crc, absl::kZeroPad8), "): the file is corrupt"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ZipArchive::DataOffset(const std::string& name,
                                                 const Record& record) {
  std::vector<unsigned char> local(kLocalSize);
  PANDA_RETURN_IF_ERROR(ReadAt(record.local_header_offset, local.data(), local.size()));
  if (U32(local, 0) != kLocalSignature) {
    return DataLoss(absl::StrCat("record ", name, " has an invalid local header"));
  }
  return record.local_header_offset + kLocalSize + U16(local, 26) + U16(local, 28);
}

absl::Status ZipArchive::VerifyRecords() {
  for (const auto& [name, record] : records_) {
    PANDA_RETURN_IF_ERROR(VerifyRecord(name, record));
  }
  return absl::OkStatus();
}

absl::Status ZipArchive::VerifyRecord(const std::string& name, const Record& record) {
  if (record.method != kStored && record.method != kDeflated) {
    return DataLoss(absl::StrCat("record ", name, " uses compression method ", record.method,
                                 "; only stored (0) and deflate (8) records can be read"));
  }
  if (record.method == kStored && record.compressed_size != record.size) {
    return DataLoss(absl::StrCat("record ", name, " is stored uncompressed in ",
                                 record.compressed_size, " bytes but has ", record.size));
  }
  PANDA_ASSIGN_OR_RETURN(const uint64_t data_offset, DataOffset(name, record));
  if (!Inside(data_offset, record.compressed_size, file_size_)) {
    return DataLoss(absl::StrCat("record ", name, " runs past the end of the file"));
  }

  // inflateInit2 with negative window bits reads a raw deflate stream, as
  // zip stores it. `stream` is unused for stored records.
  const bool deflated = record.method == kDeflated;
  z_stream stream = {};
  if (deflated && inflateInit2(&stream, -MAX_WBITS) != Z_OK) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path_, ": failed to set up inflation of record ", name));
  }
  absl::Cleanup end_inflation = [&] {
    if (deflated) inflateEnd(&stream);
  };

  std::vector<unsigned char> input(std::min<uint64_t>(record.compressed_size, kVerifyChunkBytes));
  std::vector<unsigned char> output(deflated ? kVerifyChunkBytes : 0);
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t read = 0;
  uint64_t produced = 0;
  bool ended = !deflated;
  while (read < record.compressed_size) {
    const uint64_t piece = std::min<uint64_t>(record.compressed_size - read, input.size());
    PANDA_RETURN_IF_ERROR(ReadAt(data_offset + read, input.data(), piece));
    read += piece;
    if (!deflated) {
      crc = crc32(crc, input.data(), static_cast<uInt>(piece));
      produced += piece;
      continue;
    }

    stream.next_in = input.data();
    stream.avail_in = static_cast<uInt>(piece);
    while (stream.avail_in > 0 && !ended) {
      stream.next_out = output.data();
      stream.avail_out = static_cast<uInt>(output.size());
      const int result = inflate(&stream, Z_NO_FLUSH);
      if (result != Z_OK && result != Z_STREAM_END) {
        return DataLoss(absl::StrCat("record ", name, " has a corrupt deflate stream (",
                                     stream.msg != nullptr ? stream.msg : zError(result), ")"));
      }
      const uint64_t got = output.size() - stream.avail_out;
      crc = crc32(crc, output.data(), static_cast<uInt>(got));
      produced += got;
      ended = result == Z_STREAM_END;
      if (produced > record.size) break;
    }
    if (produced > record.size) break;
  }
  if (produced > record.size) {
    return DataLoss(absl::StrCat("record ", name, " inflates to more than the ", record.size,
                                 " bytes that the central directory gives"));
  }
  if (!ended) {
    return DataLoss(absl::StrCat("record ", name, " has a truncated deflate stream"));
  }
  if (produced != record.size) {
    return DataLoss(absl::StrCat("record ", name, " holds ", produced,
                                 " bytes, but the central directory gives ", record.size));
  }
  if (crc != record.crc32) {
    return DataLoss(absl::StrCat("record ", name, " fails its CRC-32 check (stored ",
                                 absl::Hex(record.crc32, absl::kZeroPad8), ", computed ",
                                 absl::Hex(crc, absl::kZeroPad8), "): the file is corrupt"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ZipArchive::ReadRecord(const std::string& name) {
  PANDA_ASSIGN_OR_RETURN(const uint64_t size, RecordSize(name));
  if (size > file_size_) return DataLoss(absl::StrCat("record ", name, " is larger than the file"));
  std::string bytes(size, '\0');
  PANDA_RETURN_IF_ERROR(ReadRecord(name, bytes.data(), size));
  return bytes;
}

}  // namespace panda::torchvision
